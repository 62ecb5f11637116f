"""Browser tests: the demo served for real (`manage.py serve`: gunicorn, a Celery worker and
beat) on a database of its own, driven by Playwright in Debian's Chromium.

Each test's page fails the test on any console error or uncaught exception, which includes
every Content-Security-Policy violation (Chromium reports them on the console)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
AXE = Path(__file__).parent / "vendor" / "axe-4.14.1.min.js"
DEMO_PASSWORD = "demo-only-password"
SHOTS = os.environ.get("DRIFTLEDGER_SCREENSHOTS")  # e.g. docs/ui: where the tests leave screenshots


@dataclass(frozen=True)
class Site:
    url: str
    data_dir: Path
    database_url: str


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _maintenance_connection() -> psycopg.Connection:
    db = settings.DATABASES["default"]
    return psycopg.connect(
        dbname="postgres",
        user=db.get("USER") or None,
        host=db.get("HOST") or None,
        port=db.get("PORT") or None,
        password=db.get("PASSWORD") or None,
        autocommit=True,
    )


def _database_url(name: str) -> str:
    db = settings.DATABASES["default"]
    host = quote(db.get("HOST") or "127.0.0.1", safe="")  # a Unix socket directory, percent-encoded
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{db.get('USER') or 'postgres'}@{host}{port}/{name}"


@pytest.fixture(scope="session")
def demo_site(tmp_path_factory) -> Iterator[Site]:
    """The demo's story on a fresh database, then the product served on it for the session."""
    name = f"driftledger_browser_{os.getpid()}"
    with _maintenance_connection() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    data_dir = tmp_path_factory.mktemp("site")
    env = {**os.environ, "DATABASE_URL": _database_url(name), "DRIFTLEDGER_DATA_DIR": str(data_dir)}
    env.pop("CELERY_BROKER_URL", None)  # the served site's own broker, in files under its data directory
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    manage = [sys.executable, str(ROOT / "manage.py")]
    for step in (["migrate", "--verbosity", "0"], ["demo"]):
        done = subprocess.run([*manage, *step], env=env, cwd=ROOT, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
    port = _free_port()
    log = (data_dir / "serve.log").open("w")
    server = subprocess.Popen(
        [*manage, "serve", "--bind", f"127.0.0.1:{port}", "--web-workers", "2", "--concurrency", "1"],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        process_group=0,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, server, data_dir / "serve.log")
        yield Site(url, data_dir, env["DATABASE_URL"])
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()
        with _maintenance_connection() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _wait_until_up(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"serve exited with {server.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"serve did not answer within 90 s:\n{log.read_text()}")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """Debian's Chromium: Playwright's own browser download is not possible here."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"the browser tests need Chromium at {CHROMIUM}: apt-get install -y chromium")
    return {**browser_type_launch_args, "executable_path": CHROMIUM}


@pytest.fixture(autouse=True)
def _playwright_with_django():
    """Playwright's sync API runs an event loop in this thread; the tests never touch the test
    database from it (the site has its own), so Django's async guard can stand down."""
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def console_problems(page) -> list[str]:
    """Console errors and uncaught exceptions of `page`, as they come. A page answered with a
    4xx on purpose (a refused sign-in, a 403 page) is not one: Chromium reports its status on
    the console, and the tests check those statuses themselves."""
    documents: set[str] = set()
    problems: list[str] = []
    page.on("response", lambda answer: answer.request.resource_type == "document" and documents.add(answer.url))

    def on_console(message) -> None:
        if message.type != "error":
            return
        status_only = message.text.startswith("Failed to load resource: the server responded with a status of 4")
        if status_only and message.location.get("url", "").split("#")[0] in documents:
            return
        problems.append(f"{message.text} ({message.location.get('url')})")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(str(error)))
    return problems


@pytest.fixture
def watched(page):
    """The page, failing the test on any console error or uncaught exception (CSP included)."""
    problems = console_problems(page)
    yield page
    assert not problems, f"errors in the browser: {problems}"


def sign_in(page, site: Site, username: str, password: str = DEMO_PASSWORD) -> None:
    page.goto(f"{site.url}/signin/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def assert_accessible(page) -> None:
    """axe-core in the page (evaluated through the DevTools protocol, which the page's CSP does
    not govern): no serious or critical violation of WCAG 2 A/AA."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())
    violations = page.evaluate(
        "async () => (await axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']})).violations"
    )
    grave = [
        f"{item['id']} ({item['impact']}): {item['help']} at {[node['target'] for node in item['nodes']][:3]}"
        for item in violations
        if item["impact"] in ("serious", "critical")
    ]
    assert not grave, f"accessibility on {page.url}: {grave}"


def screenshot(page, name: str) -> None:
    if SHOTS:
        page.evaluate("() => window.scrollTo(0, 0)")  # sticky table headers would otherwise float mid-page
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)
