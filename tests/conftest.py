"""Fixtures shared by every test: a throwaway signing key and a log that commits for real."""

from __future__ import annotations

import pytest
from django.db import connection

from audit.keys import SigningKey
from tests.owner import APPEND_ONLY_TABLES, triggers_always_on


def pytest_collection_modifyitems(config, items):
    """Browser tests run last (they share one served demo), and of them the one that makes
    administrators show a second factor runs at the very end."""

    def order(item) -> int:
        path = str(item.path)
        if "/tests/browser/" not in path:
            return 0
        return 2 if path.endswith("test_second_factor.py") else 1

    items.sort(key=order)


@pytest.fixture(autouse=True)
def signing_key_file(tmp_path, settings):
    """Every test signs with its own key file, publishes to its own witness directory and stores
    data files in its own media root: never the demo's."""
    path = tmp_path / "keys" / "signing.pem"
    SigningKey.generate().save(path)
    settings.AUDIT_SIGNING_KEY_FILE = path
    settings.AUDIT_TRUST_ANCHOR = tmp_path / "trust-anchor.pem"  # where a worker of DATA_DIR tmp_path looks
    settings.AUDIT_WITNESSES = [
        {"class": "audit.witnesses.DirectoryWitness", "options": {"path": str(tmp_path / "witness")}}
    ]
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.DATA_DIR = tmp_path / "data"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # test users only: fast
    return path


@pytest.fixture(autouse=True, scope="session")
def tasks_in_the_test_process():
    """Tests run Celery tasks where they are sent, unless a test starts real workers (see
    tests/workers.py). The product itself never does: settings keep a broker."""
    from config.celery import app as celery_app

    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


@pytest.fixture(scope="session")
def django_db_setup(request, django_test_environment, django_db_blocker, django_db_keepdb):
    """Always create the test database, even for tests that commit without the django_db mark
    (pytest-django would otherwise leave them on the real database)."""
    from django.test.utils import setup_databases, teardown_databases

    verbosity = request.config.option.verbose
    with django_db_blocker.unblock():
        config = setup_databases(
            verbosity=verbosity,
            interactive=False,
            keepdb=django_db_keepdb,
            aliases={"default"},
            serialized_aliases=set(),
        )
    yield
    with django_db_blocker.unblock():
        _end_other_sessions()
        teardown_databases(config, verbosity=verbosity, keepdb=django_db_keepdb)


def _end_other_sessions() -> None:
    """A server or worker process a test started may still hold a connection to the test
    database for a moment after it was told to stop; dropping the database must not fail on it."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    connection.close()


def wipe_log() -> None:
    """Empty the log and read models as the superuser who owns them (triggers off, then ALWAYS on)."""
    from django.apps import apps

    with connection.cursor() as cursor:
        cursor.execute("SELECT current_database()")
        (name,) = cursor.fetchone()
    assert name.startswith("test_"), f"refusing to wipe {name!r}: not a test database"

    read_models = [m._meta.db_table for m in apps.get_app_config("monitoring").get_models()]
    read_models += ["audit_evidence_export", "audit_log_verification", "audit_witness_delivery", "audit_log_segment"]
    read_models += ["auth_user_groups"]
    read_models += ["auth_user"]
    with connection.cursor() as cursor:
        for table in APPEND_ONLY_TABLES:
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        cursor.execute("SELECT name FROM audit_log_partition")
        for (partition,) in cursor.fetchall():  # each refuses TRUNCATE itself: dropped, made again as needed
            cursor.execute(f"DROP TABLE {partition}")
        cursor.execute(f"TRUNCATE {', '.join(APPEND_ONLY_TABLES + tuple(read_models))}, audit_log_partition CASCADE")
        for table in APPEND_ONLY_TABLES:
            triggers_always_on(cursor, table)
    from audit import store

    store._rooms.clear()  # the partitions this process knew are gone


@pytest.fixture
def committed_log(django_db_setup, django_db_blocker):
    """A real, committing database session for tests that need other connections to see the log.
    (Do not combine with fixtures that need `db`, such as django_user_model: they wrap the test in
    a transaction that is never committed.)"""
    from audit.sequencer import stop_listening

    with django_db_blocker.unblock():
        assert not connection.in_atomic_block, "committed_log cannot commit inside the db fixture's transaction"
        wipe_log()
        yield
        stop_listening()  # a sequenced append's listening connection: the database is dropped at the end
        wipe_log()
        connection.close()


@pytest.fixture
def running_server(committed_log):
    """The real application served over HTTP on a free port by a threaded WSGI server, on the
    committed test database. Yields its base URL."""
    import threading
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    from django.core.wsgi import get_wsgi_application
    from django.db import connections

    django_app = get_wsgi_application()

    def app(environ, start_response):
        try:
            return django_app(environ, start_response)
        finally:
            connections.close_all()  # each request runs on its own short-lived thread

    class Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = make_server("127.0.0.1", 0, app, server_class=Server, handler_class=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
