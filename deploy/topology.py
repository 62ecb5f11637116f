"""The production topology as processes on one machine, the credit story played over HTTP, and
the faults it must survive. `.ci/run` runs it; so can an operator, from the repository's root:

    .venv/bin/python deploy/topology.py [--workdir DIR]

What runs, each as its own process, in production mode (DRIFTLEDGER_PRODUCTION=true):
- PostgreSQL (this machine's server, 127.0.0.1:5432): a fresh database with the roles of
  deploy/roles.sql; migrations as the owner role, the app as the least-privileged one, reached
  through PgBouncer in transaction pooling (Debian's pgbouncer), which reaches PostgreSQL through
  a proxy that can take it away;
- Redis of its own (append-only file on, as a broker should run), restarted in the middle;
- an S3 API server (moto in server mode) behind a proxy that can take it away;
- gunicorn with 2 workers, 2 Celery workers and beat;
- two sequencers (`manage.py run_sequencer`, AUDIT_SEQUENCER=true everywhere): one seals the
  appends, the other stands by;
- two cosigning witnesses (`python -m audit.witness serve`), each with its own key and state
  directory, following the log from its first key; a worker checkpoints every 25 events;
- Prometheus scraping /metrics with its token and evaluating deploy/prometheus's rules, and
  Alertmanager sending back to the product's receiver (Debian's packages). The rules' `for`
  durations are set to 0 s in the copy given to Prometheus, so that an alert fires within the test.

The story: an administrator made on the command line creates the people over the API (the operator
gives the engineer and the approver their roles: their registrar may not); the ML
engineer registers the credit model, its versions and its reporting key; the scoring service
reports with the Python client (driftledger.client); a run finds income drifted and raises a
critical alert; Prometheus scrapes it, the rule fires, Alertmanager posts it to the receiver, which
opens an alert of its own; a challenger goes live and is rolled back, each with a risk approver's
signature; the auditor exports evidence, which verifies offline under a witness policy (both
witnesses' keys, quorum 2).

The faults, each checked for no loss and no duplicate: a Celery worker SIGKILLed mid-run, Redis
restarted, PostgreSQL unreachable for 10 s while the service reports and a run runs, the object
store down during an export, a gunicorn worker SIGKILLed mid-request, the sealing sequencer
SIGKILLed (the standby takes over). At the end both witnesses have cosigned the newest
checkpoint, the whole log verifies (`audit_verify`: every key traced to the trust anchor, every
checkpoint stored or witnessed), every run has one start and at most one end, and every
reported row is stored once. Exit 0 when all holds, else 1 with the step that failed and the logs.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import io
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from driftledger.client import Reporter  # noqa: E402 - after the repository is on the path
from tests.proxy import Cuttable  # noqa: E402

PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
BIN = Path(PYTHON).parent
PG = {"host": "127.0.0.1", "port": 5432, "superuser": "postgres"}
DATABASE = f"driftledger_topology_{os.getpid()}"  # two runs at once never meet
PASSWORD = "topology-only-password"  # noqa: S105 - people of a throwaway database
WITNESSES = ("witness-a", "witness-b")  # python -m audit.witness, each a process with a key of its own
SCHEMA = {
    "numerical": ["income", "debt_ratio", "age"],
    "categorical": ["region"],
    "id": "application_id",
    "timestamp": "scored_at",
    "prediction": "default_score",
    "target": "defaulted",
    "segments": ["region"],
}


class Failed(Exception):
    """A step of the topology test did not hold."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def wait(what: str, condition: Callable[[], Any], seconds: float = 60, every: float = 0.25) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            value = condition()
        except (requests.RequestException, OSError):
            value = None
        if value:
            return value
        time.sleep(every)
    raise Failed(f"{what}: not within {seconds:.0f} s")


def check(condition: bool, message: str) -> None:
    if not condition:
        raise Failed(message)


class Processes:
    """The topology's processes, each in its own session (so a kill reaches its children), with
    its output in WORKDIR/logs/NAME.log."""

    def __init__(self, workdir: Path):
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.running: dict[str, subprocess.Popen] = {}

    def start(self, name: str, command: list[str], env: dict[str, str] | None = None, user: str | None = None):
        log = (self.logs / f"{name}.log").open("a")
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, user=user
        )
        self.running[name] = process
        return process

    def signal(self, name: str, sig: int) -> None:
        process = self.running[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)

    def stop(self, name: str, timeout: float = 20) -> None:
        process = self.running.pop(name, None)
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def stop_all(self) -> None:
        for name in reversed(list(self.running)):
            self.stop(name)

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def tails(self, lines: int = 25) -> str:
        out = []
        for path in sorted(self.logs.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {path.name} (last {len(text)} lines)\n" + "\n".join(text))
        return "\n".join(out)


def psql(sql: str, database: str = "postgres") -> str:
    result = subprocess.run(
        ["psql", "-h", PG["host"], "-p", str(PG["port"]), "-U", PG["superuser"], "-d", database, "-AtqXc", sql],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise Failed(f"psql {sql!r}: {result.stderr.strip()}")
    return result.stdout.strip()


def database_activity() -> str:
    """What the database's sessions were doing when a step failed (asked directly, past the
    proxy and PgBouncer): the first thing to read when requests hang."""
    try:
        return "--- pg_stat_activity\n" + psql(
            "SELECT string_agg(format('%s %s %s %s/%s %ss: %s', pid, usename, state, wait_event_type, wait_event, "
            "round(extract(epoch FROM now() - coalesce(xact_start, state_change))), left(query, 100)), E'\\n') "
            f"FROM pg_stat_activity WHERE datname = '{DATABASE}'"
        )
    except Failed as error:
        return f"--- pg_stat_activity: {error}"


def psql_file(path: Path, database: str) -> None:
    result = subprocess.run(
        ["psql", "-h", PG["host"], "-U", PG["superuser"], "-d", database, "-qX", "-v", "ON_ERROR_STOP=1", "-f", path],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise Failed(f"psql -f {path}: {result.stderr.strip()}")


class Topology:
    """The processes, their configuration and their ports. With `cuttable`, PostgreSQL and the
    S3 server are reached through proxies the faults can cut (bench/load.py goes without)."""

    def __init__(self, workdir: Path, *, cuttable: bool = True, web_workers: int = 2, sequencer: bool = True):
        self.workdir = workdir
        self.sequencer = sequencer  # AUDIT_SEQUENCER, with two run_sequencer processes
        self.processes = Processes(workdir)
        self.ports = {"s3": free_port()}
        self.cuttable = cuttable
        # The proxies take their ports first, so that none is one reserved for a server below.
        self.pg_proxy = Cuttable((PG["host"], PG["port"])) if cuttable else None
        self.s3_proxy = Cuttable(("127.0.0.1", self.ports["s3"])) if cuttable else None
        self.pg_port = self.pg_proxy.port if self.pg_proxy else PG["port"]
        self.s3_port = self.s3_proxy.port if self.s3_proxy else self.ports["s3"]
        self.ports |= {name: free_port() for name in ("web", "redis", "pgbouncer", "prometheus", "alertmanager")}
        self.witnesses = {name: free_port() for name in WITNESSES}  # cosigning witnesses: name → port
        self.witness_keys: dict[str, str] = {}  # name → public key PEM, once made
        self.web = f"http://127.0.0.1:{self.ports['web']}"
        self.tokens = {"metrics": secrets.token_urlsafe(32), "alertmanager": secrets.token_urlsafe(32)}
        self.secrets = workdir / "secrets"
        self.web_workers = web_workers
        self.workers = 0

    # -- the environment every Driftledger process reads ---------------------------------------

    def environment(self, **overrides: str) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TZ")}
        return {
            **keep,
            "DRIFTLEDGER_PRODUCTION": "true",
            "SECRET_KEY": (self.secrets / "secret-key").read_text(),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": f"postgres://driftledger_app@127.0.0.1:{self.ports['pgbouncer']}/driftledger",
            "DATABASE_TRANSACTION_POOLING": "true",
            "AUDIT_SEQUENCER": "true" if self.sequencer else "false",
            "CELERY_BROKER_URL": f"redis://127.0.0.1:{self.ports['redis']}/0",
            # A task taken by a worker that died is delivered again after this long (900 s by default).
            "CELERY_VISIBILITY_TIMEOUT": "20",
            "AUDIT_SIGNING_KEY_FILE": str(self.secrets / "audit-signing-key.pem"),
            "DRIFTLEDGER_DATA_DIR": str(self.workdir / "data"),
            "AUDIT_WITNESS_DIR": str(self.workdir / "witness"),
            "AUDIT_COSIGNING_WITNESSES_JSON": json.dumps(
                [
                    {"name": name, "url": f"http://127.0.0.1:{port}", "public_key": self.witness_keys[name]}
                    for name, port in self.witnesses.items()
                    if name in self.witness_keys
                ]
            ),
            "AUDIT_CHECKPOINT_EVERY_EVENTS": "25",  # a worker checkpoints, and the witnesses cosign, as the log grows
            "METRICS_TOKEN": self.tokens["metrics"],
            "ALERTMANAGER_TOKEN": self.tokens["alertmanager"],
            "STORAGE_S3_BUCKET": "driftledger",
            "STORAGE_S3_ENDPOINT_URL": f"http://127.0.0.1:{self.s3_port}",
            "STORAGE_S3_REGION": "eu-west-1",
            "AWS_ACCESS_KEY_ID": "topology",
            "AWS_SECRET_ACCESS_KEY": "topology-secret",
            **overrides,
        }

    def manage(self, *args: str, stdin: str | None = None, **overrides: str) -> str:
        result = subprocess.run(
            [PYTHON, "manage.py", *args],
            cwd=ROOT,
            env=self.environment(**overrides),
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise Failed(f"manage.py {' '.join(args)} exited {result.returncode}: {result.stderr.strip()[-2000:]}")
        return result.stdout.strip()

    # -- starting the parts --------------------------------------------------------------------

    def start(self) -> None:
        self.secrets.mkdir(parents=True)
        (self.secrets / "secret-key").write_text(secrets.token_urlsafe(64))
        (self.secrets / "metrics-token").write_text(self.tokens["metrics"])
        (self.secrets / "alertmanager-token").write_text(self.tokens["alertmanager"])
        subprocess.run(
            [
                PYTHON,
                "-c",
                "import sys; from pathlib import Path; from audit.keys import SigningKey; "
                "SigningKey.generate().save(Path(sys.argv[1]))",
                str(self.secrets / "audit-signing-key.pem"),
            ],
            cwd=ROOT,
            check=True,
        )
        for name in self.witnesses:  # their keys first: every process is told who its witnesses are
            made = self.witness("init", name, "--name", name)
            self.witness_keys[name] = made
        self._database()
        self._pgbouncer()
        self._redis()
        self._s3()
        self._migrate()
        self._web()
        for _ in range(2):
            self.start_worker()
        self.processes.start(
            "beat", self._celery("beat", "--schedule", str(self.workdir / "beat-schedule")), self.environment()
        )
        for name in ("sequencer1", "sequencer2") if self.sequencer else ():  # one seals, one stands by
            self.processes.start(name, [PYTHON, "manage.py", "run_sequencer", "--name", name], self.environment())
            wait(f"{name} runs", lambda name=name: "sealing when it holds the lease" in self.processes.log(name), 60)
        self._prometheus()
        self._alertmanager()

    def _database(self) -> None:
        psql(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        psql(f"CREATE DATABASE {DATABASE}")
        psql_file(ROOT / "deploy" / "roles.sql", DATABASE)

    def _pgbouncer(self) -> None:
        config = Path(tempfile.mkdtemp(prefix="driftledger-topology-pgbouncer-"))  # readable by postgres
        (config / "users.txt").write_text('"driftledger_app" ""\n')
        (config / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"driftledger = host=127.0.0.1 port={self.pg_port} dbname={DATABASE}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.ports['pgbouncer']}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {config / 'users.txt'}\npool_mode = transaction\n"
            "default_pool_size = 10\nmax_client_conn = 200\nquery_wait_timeout = 20\n"
            f"logfile = {self.processes.logs / 'pgbouncer-own.log'}\n"
        )
        for path in (config, *config.iterdir(), self.processes.logs):
            os.chmod(path, 0o777 if path.is_dir() else 0o666)
        user = "postgres" if os.geteuid() == 0 else None  # pgbouncer refuses to run as root
        binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        self.processes.start("pgbouncer", [binary, str(config / "pgbouncer.ini")], user=user)
        wait("pgbouncer listens", lambda: listening(self.ports["pgbouncer"]), 20)

    def _redis(self) -> None:
        (self.workdir / "redis").mkdir(exist_ok=True)
        self.processes.start(
            "redis",
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.ports["redis"]),
                "--dir",
                str(self.workdir / "redis"),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ],
        )
        wait("redis listens", lambda: listening(self.ports["redis"]), 20)

    def _s3(self) -> None:
        self.processes.start("s3", [PYTHON, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.ports["s3"])])
        wait("the S3 server listens", lambda: listening(self.ports["s3"]), 30)
        created = requests.put(
            f"http://127.0.0.1:{self.ports['s3']}/driftledger",
            data=b"<CreateBucketConfiguration><LocationConstraint>eu-west-1</LocationConstraint>"
            b"</CreateBucketConfiguration>",
            timeout=10,
        )
        check(created.status_code == 200, f"creating the bucket: {created.status_code} {created.text[:200]}")

    def _migrate(self) -> None:
        owner = {
            "DATABASE_URL": f"postgres://driftledger_owner@{PG['host']}:{PG['port']}/{DATABASE}",
            "DATABASE_TRANSACTION_POOLING": "false",
        }
        self.manage("migrate", "--verbosity", "0", **owner)
        self.manage("apply_audit_grants", **owner)
        privileges = psql(
            "SELECT string_agg(privilege_type, ',' ORDER BY privilege_type) FROM information_schema.table_privileges "
            "WHERE grantee = 'driftledger_app' AND table_name = 'audit_event'",
            DATABASE,
        )
        check(privileges == "INSERT,SELECT", f"the app role's privileges on the log: {privileges} (INSERT,SELECT only)")

    def _web(self) -> None:
        # As the image, compose and Kubernetes run it (gunicorn's 30 s request timeout included).
        self.processes.start(
            "web",
            [
                str(BIN / "gunicorn"),
                "config.wsgi",
                "--bind",
                f"127.0.0.1:{self.ports['web']}",
                "--workers",
                str(self.web_workers),
                "--access-logfile",
                "-",
            ],
            self.environment(),
        )
        wait("gunicorn answers /healthz", lambda: requests.get(f"{self.web}/healthz", timeout=2).ok, 60)

    def _celery(self, *args: str) -> list[str]:
        return [str(BIN / "celery"), "-A", "config", *args, "--loglevel", "INFO"]

    def start_worker(self) -> str:
        self.workers += 1
        name = f"worker{self.workers}"
        self.processes.start(
            name,
            self._celery("worker", "--concurrency", "1", "-n", f"{name}@%h", "--without-gossip", "--without-mingle"),
            self.environment(),
        )
        wait(f"{name} is ready", lambda: " ready." in self.processes.log(name), 60)
        return name

    def _prometheus(self) -> None:
        config_dir = self.workdir / "prometheus"
        config_dir.mkdir()
        rules = (ROOT / "deploy" / "prometheus" / "driftledger-rules.yml").read_text()
        rules = "\n".join(
            (line.split("for:")[0] + "for: 0s") if line.strip().startswith("for:") else line
            for line in rules.splitlines()
        )
        (config_dir / "driftledger-rules.yml").write_text(rules)
        prometheus = (ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text()
        prometheus = (
            prometheus.replace("30s", "1s")
            .replace("alertmanager:9093", f"127.0.0.1:{self.ports['alertmanager']}")
            .replace("web:8000", f"127.0.0.1:{self.ports['web']}")
            .replace("/run/secrets/metrics_token", str(self.secrets / "metrics-token"))
        )
        (config_dir / "prometheus.yml").write_text(prometheus)
        self.processes.start(
            "prometheus",
            [
                "prometheus",
                f"--config.file={config_dir / 'prometheus.yml'}",
                f"--storage.tsdb.path={config_dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.ports['prometheus']}",
            ],
        )
        wait("prometheus is ready", lambda: self.prometheus_get("/-/ready").ok, 60)

    def _alertmanager(self) -> None:
        config_dir = self.workdir / "alertmanager"
        config_dir.mkdir()
        config = (ROOT / "deploy" / "alertmanager" / "alertmanager.yml").read_text()
        config = (
            config.replace("group_wait: 30s", "group_wait: 1s")
            .replace("http://web:8000", self.web)
            .replace("/run/secrets/alertmanager_token", str(self.secrets / "alertmanager-token"))
        )
        (config_dir / "alertmanager.yml").write_text(config)
        binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager") or "alertmanager"
        self.processes.start(
            "alertmanager",
            [
                binary,
                f"--config.file={config_dir / 'alertmanager.yml'}",
                f"--storage.path={config_dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.ports['alertmanager']}",
                "--cluster.listen-address=",
            ],
        )
        wait("alertmanager is ready", lambda: requests.get(self.alertmanager_url("/-/ready"), timeout=2).ok, 60)

    def first_administrator(self) -> None:
        """dana, made on the command line as an operator makes the first administrator; the log
        begins, and the witnesses start following it from its first key."""
        self.manage(
            "create_person", "dana", "--name", "Dana Whitfield", "--role", "admin",
            "--reason", "first administrator", "--password-stdin", stdin=PASSWORD,
        )  # fmt: skip
        log_id = psql("SELECT log_id FROM audit_log", DATABASE)
        public = self.log_public_key()
        for name, port in self.witnesses.items():
            self.witness("trust", name, "--log-id", log_id, "--log-key", str(public))
            state = str(self.workdir / name)
            command = [PYTHON, "-m", "audit.witness", "serve", "--state", state, "--port", str(port)]
            self.processes.start(name, command)
            wait(f"{name} listens", lambda port=port: listening(port), 30)

    def witness(self, command: str, name: str, *args: str) -> str:
        """`python -m audit.witness COMMAND --state WORKDIR/NAME ARGS`: its standard output."""
        state = str(self.workdir / name)
        done = subprocess.run(
            [PYTHON, "-m", "audit.witness", command, "--state", state, *args],
            cwd=ROOT, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise Failed(f"audit.witness {command} {name}: {done.stderr.strip()}")
        return done.stdout

    def log_public_key(self) -> Path:
        """The log's first public key, as its operator hands it to witnesses and auditors."""
        public = self.workdir / "log-public-key.pem"
        if not public.exists():
            subprocess.run(
                [
                    PYTHON,
                    "-c",
                    "import sys; from pathlib import Path; from cryptography.hazmat.primitives import "
                    "serialization as s; k = s.load_pem_private_key(Path(sys.argv[1]).read_bytes(), None); "
                    "Path(sys.argv[2]).write_bytes(k.public_key().public_bytes(s.Encoding.PEM, "
                    "s.PublicFormat.SubjectPublicKeyInfo))",
                    str(self.secrets / "audit-signing-key.pem"),
                    str(public),
                ],
                cwd=ROOT,
                check=True,
            )
        return public

    def prometheus_get(self, path: str, **params: str) -> requests.Response:
        return requests.get(f"http://127.0.0.1:{self.ports['prometheus']}{path}", params=params, timeout=5)

    def prometheus_query(self, query: str) -> list[dict]:
        answer = self.prometheus_get("/api/v1/query", query=query).json()
        return answer["data"]["result"] if answer.get("status") == "success" else []

    def alertmanager_url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.ports['alertmanager']}{path}"

    def gunicorn_workers(self) -> list[int]:
        master = self.processes.running["web"].pid
        found = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True, check=False)
        return [int(pid) for pid in found.stdout.split()]

    def stop(self) -> None:
        self.processes.stop_all()
        try:
            psql(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        except Failed as exc:
            print(f"(cleanup) {exc}")


class Person:
    """Someone using the API with their password (HTTP Basic)."""

    def __init__(self, topology: Topology, username: str):
        self.base = f"{topology.web}/api/v1"
        self.session = requests.Session()
        self.session.auth = (username, PASSWORD)

    def use_token(self) -> Person:
        """Exchange the password for a token once: a password is hashed on every request."""
        token = self.post("/auth/token/", {})["token"]
        self.session.auth = None
        self.session.headers["Authorization"] = f"Bearer {token}"
        return self

    def get(self, path: str, **params: Any) -> Any:
        answer = self.session.get(f"{self.base}{path}", params=params, timeout=30)
        check(answer.ok, f"GET {path}: {answer.status_code} {answer.text[:500]}")
        return answer.json()

    def post(self, path: str, body: dict, expect: tuple[int, ...] = (200, 201, 202)) -> Any:
        answer = self.session.post(f"{self.base}{path}", json=body, timeout=60)
        check(answer.status_code in expect, f"POST {path}: {answer.status_code} {answer.text[:500]}")
        return answer.json() if answer.content else None


def scored_rows(day: dt.datetime, rows: int, *, income_shift: float, outcomes: bool, tag: str) -> list[dict]:
    """A day of scored credit applications; income moves by `income_shift` log-sds."""
    rng = np.random.default_rng(zlib.crc32(f"{tag}:{rows}".encode()))
    income = rng.lognormal(10.6 + 0.35 * income_shift, 0.35, rows)
    scores = rng.beta(2, 12, rows)
    start = day.replace(hour=0, minute=0, second=0, microsecond=0)
    return [
        {
            "application_id": f"{tag}-{i}",
            "scored_at": (start + dt.timedelta(seconds=int(i * 86_399 / rows))).isoformat().replace("+00:00", "Z"),
            "income": round(float(income[i]), 2),
            "debt_ratio": round(float(rng.beta(2, 5)), 4),
            "age": int(rng.integers(21, 75)),
            "region": str(rng.choice(["north", "south", "east", "west"])),
            "default_score": round(float(scores[i]), 4),
            **({"defaulted": int(rng.random() < scores[i])} if outcomes else {}),
        }
        for i in range(rows)
    ]


def parquet(rows: list[dict]) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buffer)
    return buffer.getvalue()


class Story:
    def __init__(self, topology: Topology):
        self.topology = topology
        self.today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        self.api_key = ""
        self.reported: dict[str, int] = {}  # window tag -> rows the service reported
        self.alice = self.bob = self.ada = self.dana = None  # type: ignore[assignment]

    def say(self, text: str) -> None:
        print(f"  {text}", flush=True)

    def window(self, days_ago: int) -> tuple[str, str]:
        start = self.today - dt.timedelta(days=days_ago)
        return start.isoformat(), (start + dt.timedelta(days=1)).isoformat()

    def run(self, days_ago: int, *, rerun: bool = False, expect: tuple[int, ...] = (202,)) -> str:
        start, end = self.window(days_ago)
        body = {"start": start, "end": end, "rerun": rerun}
        return self.alice.post("/models/credit/runs/", body, expect)["run_id"]

    def run_status(self, run_id: str) -> dict | None:
        answer = self.alice.session.get(f"{self.alice.base}/runs/{run_id}/", timeout=10)
        return answer.json() if answer.status_code == 200 else None

    def finished(self, run_id: str, seconds: float = 180) -> dict:
        status = wait(
            f"run {run_id} finishes",
            lambda: (s := self.run_status(run_id)) and s["status"] in ("completed", "failed") and s,
            seconds,
        )
        check(status["status"] == "completed", f"run {run_id} ended {status['status']}: {status.get('error')}")
        return status

    def post_parquet(self, kind: str, rows: list[dict]) -> None:
        """One batch as the service's Parquet upload (the client sends JSON)."""
        answer = requests.post(
            f"{self.topology.web}/api/v1/models/credit/{kind}/",
            data=parquet(rows),
            timeout=120,
            headers={"Authorization": f"Api-Key {self.api_key}", "Content-Type": "application/vnd.apache.parquet"},
        )
        check(answer.status_code == 201, f"{len(rows):,} {kind} rows: {answer.status_code} {answer.text[:300]}")

    def report(self, rows: list[dict], kind: str = "predictions") -> None:
        reporter = Reporter(f"{self.topology.web}/api/v1", model="credit", api_key=self.api_key, max_attempts=30)
        for row in rows:
            getattr(reporter, "prediction" if kind == "predictions" else "label")(row)
        check(reporter.flush(timeout=300), f"the client could not send every batch: {reporter.stats}")
        reporter.close()
        check(reporter.stats.rejected_records == 0, f"rejected: {reporter.last_rejection}")
        check(reporter.stats.dropped_records == 0, f"dropped: {reporter.stats}")

    # -- the story --------------------------------------------------------------------------------

    def people(self) -> None:
        self.topology.first_administrator()
        self.dana = Person(self.topology, "dana")
        cast = [("alice", "Alice Martin", []), ("bob", "Bob Okafor", []), ("ada", "Ada Lovelace", ["auditor"])]
        for username, name, roles in cast:
            self.dana.post(
                "/users/",
                {"username": username, "full_name": name, "password": PASSWORD, "roles": roles, "reason": "cast"},
            )
        # Whoever chose a person's first password never gives them power: here the operator does.
        for username, role in (("alice", "ml_engineer"), ("bob", "risk_approver")):
            self.topology.manage("grant_role", username, role, "--reason", "topology cast")
        self.alice, self.bob, self.ada = (Person(self.topology, u) for u in ("alice", "bob", "ada"))
        self.say("dana (admin) registered alice, bob and ada over the API; the operator gave alice and bob their roles")

    def registry(self) -> None:
        self.alice.post(
            "/models/",
            {
                "name": "credit",
                "task": "binary_classification",
                "data_schema": SCHEMA,
                "reason": "credit scoring goes live",
            },
        )
        for version in ("2026.10.1", "2026.11.0"):
            self.alice.post(
                "/models/credit/versions/", {"version": version, "artifact_uri": f"s3://models/credit/{version}"}
            )
        self.alice.post(
            "/models/credit/deployment/", {"action": "promote", "version": "2026.10.1", "reason": "first release"}
        )
        self.api_key = self.alice.post("/models/credit/keys/", {"label": "scoring service"})["key"]
        self.say("alice registered credit, its versions and the scoring service's key; 2026.10.1 serves")

    def reporting(self) -> None:
        reference = scored_rows(self.today - dt.timedelta(days=9), 5000, income_shift=0, outcomes=True, tag="ref")
        self.post_parquet("reference", reference)
        self.report(scored_rows(self.today - dt.timedelta(days=1), 5000, income_shift=1.5, outcomes=False, tag="d1"))
        self.reported["d1"] = 5000
        self.say("the scoring service reported 5,000 reference rows (Parquet) and 5,000 predictions (the client)")

    def monitoring(self) -> None:
        run_id = self.run(1)
        status = self.finished(run_id)
        check(status["level"] == "critical", f"the drifted window's run is {status['level']}, not critical")
        critical = self.alice.get("/alerts/", model_name="credit", status="open", severity="critical")
        critical = critical["results"] if isinstance(critical, dict) else critical
        check(bool(critical), "the critical run raised no open critical alert")
        self.run_id, self.alert_id = run_id, critical[0]["alert_id"]
        self.say(
            f"run {run_id[:8]}: {status['level']}; {len(critical)} critical alert(s) open: {critical[0]['summary']}"
        )

    def prometheus(self) -> None:
        topology = self.topology
        wait(
            "Prometheus scrapes /metrics",
            lambda: any(r["value"][1] == "1" for r in topology.prometheus_query('up{job="driftledger"}')),
            60,
        )
        wait(
            "Prometheus sees the open critical alert",
            lambda: topology.prometheus_query('driftledger_open_alerts{severity="critical",model="credit"} > 0'),
            60,
        )

        def in_alertmanager() -> bool:
            alerts = requests.get(topology.alertmanager_url("/api/v2/alerts"), timeout=5).json()
            return any(a["labels"].get("alertname") == "DriftledgerCriticalAlertOpen" for a in alerts)

        wait("the critical alert reaches Alertmanager", in_alertmanager, 90)

        def received() -> list:
            found = self.alice.get("/alerts/", model_name="credit", check_name="prometheus", status="open")
            return found["results"] if isinstance(found, dict) else found

        alerts = wait("Alertmanager's notification reaches the product's receiver", received, 90)
        self.say(f"Prometheus scraped /metrics; its rule fired; Alertmanager posted it back: {alerts[0]['summary']}")

    def remediation(self) -> None:
        serving = requests.Session()
        serving.headers["Authorization"] = f"Api-Key {self.api_key}"

        def champion() -> str:
            return serving.get(f"{self.topology.web}/api/v1/models/credit/deployment/", timeout=10).json()["champion"]

        for kind, parameters, evidence, expected in (
            ("promote_challenger", {"version": "2026.11.0"}, [], "2026.11.0"),
            ("rollback", {"to_version": "2026.10.1"}, [self.run_id, self.alert_id], "2026.10.1"),
        ):
            asked = self.alice.post(
                "/remediations/",
                {
                    "model": "credit",
                    "kind": kind,
                    "parameters": parameters,
                    "evidence": evidence,
                    "reason": f"topology {kind}",
                },
            )
            self.bob.post(
                f"/remediations/{asked['request_id']}/approve/", {"password": PASSWORD, "reason": "four eyes"}
            )
            wait(f"the approved {kind} executes", lambda e=expected: champion() == e, 60)
        self.say("2026.11.0 went live and was rolled back to 2026.10.1, each approved by bob; serving sees it")

    def evidence(self, *, store_down: bool = False) -> Path:
        topology = self.topology
        if store_down:
            topology.s3_proxy.cut()
        export = self.ada.post("/evidence/", {"model": "credit", "include_data": True})
        if store_down:
            waiting = wait(
                "the export waits for the object store",
                lambda: (
                    (e := self.ada.get(f"/evidence/{export['id']}/")) and "trying again" in (e.get("error") or "") and e
                ),
                60,
            )
            check(waiting["status"] == "queued", f"the waiting export is {waiting['status']}")
            time.sleep(3)
            topology.s3_proxy.open = True
        done = wait(
            "the export finishes",
            lambda: (e := self.ada.get(f"/evidence/{export['id']}/")) and e["status"] in ("done", "failed") and e,
            180,
        )
        check(done["status"] == "done", f"the export failed: {done.get('error')}")
        download = self.ada.session.get(done["download"], timeout=60)
        check(download.status_code == 200, f"download: {download.status_code}")
        bundle = topology.workdir / f"evidence-{export['id']}.zip"
        bundle.write_bytes(download.content)
        public = topology.log_public_key()
        policy = []
        for name, pem in topology.witness_keys.items():
            (topology.workdir / f"{name}.pem").write_text(pem)
            policy += ["--witness-key", str(topology.workdir / f"{name}.pem")]
        offline = subprocess.run(
            [PYTHON, "-m", "audit.verifier", str(bundle), "--trusted-key", str(public), *policy],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        check(offline.returncode == 0, f"offline verification: {offline.stdout} {offline.stderr}")
        self.say(f"ada's evidence export{' (the store down at first)' if store_down else ''}: {offline.stdout.strip()}")
        return bundle


class Faults:
    def __init__(self, topology: Topology, story: Story):
        self.topology, self.story = topology, story

    def worker_killed_mid_run(self) -> None:
        """A window big enough for its run to take seconds; the worker running it is SIGKILLed once
        the run has started, and a new worker starts (as an orchestrator would restart it)."""
        topology, story = self.topology, self.story
        rows = scored_rows(story.today - dt.timedelta(days=2), 300_000, income_shift=0.2, outcomes=False, tag="d2")
        story.post_parquet("predictions", rows)
        story.reported["d2"] = len(rows)
        marks = {name: len(topology.processes.log(name)) for name in topology.processes.running if "worker" in name}
        run_id = story.run(2)
        wait("the run starts", lambda: (s := story.run_status(run_id)) and s["status"] == "running", 60, every=0.05)
        victim = wait(
            "a worker holds the run",
            lambda: next(
                (n for n, mark in marks.items() if "run_monitoring[" in topology.processes.log(n)[mark:]), None
            ),
            10,
        )
        topology.processes.signal(victim, signal.SIGKILL)
        topology.processes.running[victim].wait(timeout=10)
        topology.processes.running.pop(victim)
        check(story.run_status(run_id)["status"] == "running", "the run finished before its worker was killed")
        replacement = topology.start_worker()
        status = story.finished(run_id, seconds=240)
        story.say(f"{victim} SIGKILLed mid-run; {replacement} started; run {run_id[:8]} {status['status']} once")

    def redis_restarted(self) -> None:
        """Redis stops (its append-only file flushed) and starts again; a run asked while it is
        down is refused with 503, one asked after it is back completes."""
        topology, story = self.topology, self.story
        topology.processes.stop("redis")
        refused = story.alice.session.post(
            f"{story.alice.base}/models/credit/runs/",
            json=dict(zip(("start", "end"), story.window(3), strict=True)),
            timeout=60,
        )
        check(
            refused.status_code == 503, f"a run asked while Redis is down: {refused.status_code} {refused.text[:300]}"
        )
        topology._redis()
        time.sleep(3)  # a run queued despite the 503 would have started by now
        start, _ = story.window(3)
        runs = story.alice.get("/models/credit/runs/")
        runs = runs["results"] if isinstance(runs, dict) else runs
        check(
            not any(r["window_start"][:10] == start[:10] for r in runs),
            "a run asked while Redis was down was queued after all",
        )
        run_id = story.run(3)
        status = story.finished(run_id, seconds=180)
        story.say(
            f"Redis restarted: a run asked meanwhile got 503 and queued nothing; run {run_id[:8]} then "
            f"{status['status']}"
        )

    def database_away(self) -> None:
        """PostgreSQL unreachable for 10 s while the scoring service reports 3,000 predictions and
        a re-run of the 300,000-row window runs; every row is stored once and the run completes once."""
        topology, story = self.topology, self.story
        run_id = story.run(2, rerun=True)
        rows = scored_rows(story.today - dt.timedelta(days=5), 3000, income_shift=0.1, outcomes=False, tag="d5")
        reporter = Reporter(
            f"{topology.web}/api/v1",
            model="credit",
            api_key=story.api_key,
            batch_size=250,
            max_attempts=30,
            max_backoff=4,
        )
        for row in rows[:1500]:
            reporter.prediction(row)
        wait("the re-run starts", lambda: (s := story.run_status(run_id)) and s["status"] == "running", 60, every=0.05)
        topology.pg_proxy.cut()  # mid-run, and while the client reports
        down_at = time.monotonic()
        for row in rows[1500:]:
            reporter.prediction(row)
        try:  # PgBouncer holds a query while no server is reachable: a probe sees 503 or no answer
            readiness = str(requests.get(f"{topology.web}/readyz", timeout=3).status_code)
        except requests.Timeout:
            readiness = "no answer within 3 s"
        time.sleep(max(0.0, 10 - (time.monotonic() - down_at)))
        topology.pg_proxy.open = True
        check(readiness != "200", "/readyz said ready while the database was away")
        check(reporter.flush(timeout=300), f"the client could not deliver after the outage: {reporter.stats}")
        reporter.close()
        check(reporter.stats.rejected_records == 0 and reporter.stats.dropped_records == 0, f"{reporter.stats}")
        story.reported["d5"] = len(rows)
        status = story.finished(run_id, seconds=240)
        story.say(
            f"PostgreSQL away 10 s: /readyz: {readiness}; the client retried {reporter.stats.retries} time(s) and "
            f"delivered all {len(rows):,} rows; run {run_id[:8]} {status['status']}"
        )

    def web_worker_killed_mid_request(self) -> None:
        """A 100,000-row JSON batch has been sent and is being processed when the gunicorn worker
        serving it is SIGKILLed; the service sends it again with the same Idempotency-Key: stored
        once, whether the kill came before the batch was committed (201) or after (200, replayed)."""
        topology, story = self.topology, self.story
        rows = scored_rows(story.today - dt.timedelta(days=6), 100_000, income_shift=0, outcomes=False, tag="d6")
        body = json.dumps(rows).encode()
        key = str(uuid.uuid4())
        headers = {
            "Authorization": f"Api-Key {story.api_key}",
            "Content-Type": "application/json",
            "Idempotency-Key": key,
            "Content-Length": str(len(body)),
        }
        source = free_port()
        connection = http.client.HTTPConnection(
            "127.0.0.1", topology.ports["web"], timeout=120, source_address=("127.0.0.1", source)
        )
        connection.putrequest("POST", "/api/v1/models/credit/predictions/")
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders()
        connection.send(body)  # the worker now parses, checks and stores it: mid-request

        def serving_pid() -> int | None:
            found = subprocess.run(
                ["ss", "-Htnp", "state", "established", f"( sport = :{topology.ports['web']} and dport = :{source} )"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout
            return int(found.split("pid=")[1].split(",")[0]) if "pid=" in found else None

        pid = wait("the gunicorn worker serving the request", serving_pid, 10, every=0.05)
        before = topology.gunicorn_workers()
        os.kill(pid, signal.SIGKILL)
        try:
            connection.getresponse().read()
            cut = False
        except (OSError, http.client.HTTPException):
            cut = True
        connection.close()
        check(cut, "the request was answered although its worker was killed")
        wait(
            "gunicorn replaces the worker",
            lambda: len(topology.gunicorn_workers()) == 2 and pid not in topology.gunicorn_workers(),
            30,
        )
        again = requests.post(
            f"{topology.web}/api/v1/models/credit/predictions/", data=body, headers=headers, timeout=120
        )
        check(again.status_code in (200, 201), f"the retry: {again.status_code} {again.text[:300]}")
        story.reported["d6"] = len(rows)
        story.say(
            f"gunicorn worker {pid} (of {before}) SIGKILLed mid-request; replaced; the retry with the "
            f"same Idempotency-Key answered {again.status_code}"
            f"{' (replayed: stored before the kill)' if again.headers.get('Idempotent-Replayed') else ''}"
        )

    def sequencer_killed(self) -> None:
        """The sequencer that holds the lease is SIGKILLed: appends wait for the lease to expire
        (or their writers seal them); the standby takes over and seals the rest."""
        topology, story = self.topology, self.story
        sealing = psql("SELECT holder FROM audit_sequencer_lease", DATABASE)
        check(sealing in ("sequencer1", "sequencer2"), f"the lease is held by {sealing!r}")
        topology.processes.running[sealing].send_signal(signal.SIGKILL)
        topology.processes.running[sealing].wait(timeout=10)
        began = time.monotonic()
        for version in ("2026.12.0", "2026.12.1"):
            story.alice.post(
                "/models/credit/versions/", {"version": version, "artifact_uri": f"s3://models/credit/{version}"}
            )
        seconds = time.monotonic() - began
        standby = "sequencer2" if sealing == "sequencer1" else "sequencer1"
        wait(
            "the standby holds the lease",
            lambda: psql("SELECT holder FROM audit_sequencer_lease", DATABASE) == standby,
            30,
        )
        story.alice.post(
            "/models/credit/versions/", {"version": "2026.12.2", "artifact_uri": "s3://models/credit/2026.12.2"}
        )
        pending = psql("SELECT count(*) FROM audit_pending", DATABASE)
        check(pending == "0", f"{pending} append(s) left pending")
        story.say(
            f"{sealing} SIGKILLed while it held the lease; two versions registered meanwhile in {seconds:.1f} s; "
            f"{standby} took over and seals"
        )


def invariants(topology: Topology, story: Story) -> None:
    """Nothing lost, nothing twice, and the log verifies."""
    duplicated_runs = psql(
        "SELECT count(*) FROM (SELECT stream_id FROM audit_event WHERE event_type = 'monitoring.RunStarted' "
        "GROUP BY stream_id HAVING count(*) > 1) AS twice",
        DATABASE,
    )
    check(duplicated_runs == "0", f"{duplicated_runs} run(s) started twice")
    ended_twice = psql(
        "SELECT count(*) FROM (SELECT stream_id FROM audit_event WHERE event_type IN "
        "('monitoring.RunCompleted', 'monitoring.RunFailed') GROUP BY stream_id HAVING count(*) > 1) AS twice",
        DATABASE,
    )
    check(ended_twice == "0", f"{ended_twice} run(s) ended twice")
    runs = psql("SELECT count(*) FROM audit_event WHERE event_type = 'monitoring.RunStarted'", DATABASE)
    stored = int(psql("SELECT coalesce(sum(rows), 0) FROM monitoring_batch WHERE kind = 'predictions'", DATABASE))
    reported = sum(story.reported.values())
    check(stored == reported, f"{stored:,} prediction rows stored, {reported:,} reported")
    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{topology.ports['s3']}",
        region_name="eu-west-1",
        aws_access_key_id="topology",
        aws_secret_access_key="topology-secret",  # noqa: S106 - moto's, on loopback
    )
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket="driftledger")
    keys = {item["Key"] for page in pages for item in page.get("Contents", [])}
    files = psql("SELECT string_agg(DISTINCT sha256, ',') FROM monitoring_batch", DATABASE).split(",")
    missing = [digest for digest in files if f"blobs/{digest}" not in keys]
    check(not missing, f"{len(missing)} batch file(s) missing from the bucket: {missing[:3]}")
    local = list((topology.workdir / "data" / "media").rglob("*"))
    check(not local, f"data files written to the local disk instead of the bucket: {local[:3]}")
    cosigned = wait(
        "both witnesses cosign the newest checkpoint",
        lambda: psql(
            "SELECT c.tree_size || ' cosigned by ' || count(s.witness_id) FROM audit_checkpoint c"
            " LEFT JOIN audit_cosignature s USING (tree_size) GROUP BY c.tree_size"
            " HAVING count(s.witness_id) = 2 AND c.tree_size = (SELECT max(tree_size) FROM audit_checkpoint)",
            DATABASE,
        ),
        120,
    )
    checkpoints = psql("SELECT count(*) FROM audit_checkpoint", DATABASE)
    story.say(f"{checkpoints} checkpoints signed as the log grew; the newest, of tree size {cosigned} witnesses")
    verified = topology.manage("audit_verify", "--witness", str(topology.workdir / "witness"))
    story.say(
        f"{runs} runs, each started once and ended at most once; {stored:,} prediction rows stored, as "
        f"reported; {len(files)} batch files and {sum(k.startswith('evidence/') for k in keys)} exports in the "
        f"bucket, none on local disk; {verified}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, help="keep the logs and data here (default: a temporary directory)")
    arguments = parser.parse_args()
    workdir = arguments.workdir or Path(tempfile.mkdtemp(prefix="driftledger-topology-"))
    workdir.mkdir(parents=True, exist_ok=True)
    os.chmod(workdir, 0o755)  # noqa: S103 - pgbouncer runs as postgres and writes its log here
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped"))  # the processes are stopped on the way out
    topology = Topology(workdir)
    story = Story(topology)
    faults = Faults(topology, story)
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("start the topology", topology.start),
        ("people", story.people),
        ("registry", story.registry),
        ("reporting", story.reporting),
        ("a monitoring run", story.monitoring),
        ("Prometheus and Alertmanager", story.prometheus),
        ("four-eyes remediation", story.remediation),
        ("evidence", story.evidence),
        ("fault: a Celery worker SIGKILLed mid-run", faults.worker_killed_mid_run),
        ("fault: Redis restarted", faults.redis_restarted),
        ("fault: PostgreSQL away for 10 s", faults.database_away),
        ("fault: the object store down during an export", lambda: story.evidence(store_down=True)),
        ("fault: a gunicorn worker SIGKILLed mid-request", faults.web_worker_killed_mid_request),
        ("fault: the sealing sequencer SIGKILLed", faults.sequencer_killed),
        ("nothing lost, nothing twice, the log verifies", lambda: invariants(topology, story)),
    ]
    started = time.monotonic()
    try:
        for name, step in steps:
            began = time.monotonic()
            print(f"- {name}", flush=True)
            step()
            print(f"  ({time.monotonic() - began:.1f} s)", flush=True)
    except (Failed, subprocess.CalledProcessError, requests.RequestException) as exc:
        print(f"\nFAILED at '{name}': {exc}\n\n{database_activity()}\n{topology.processes.tails()}", file=sys.stderr)
        return 1
    finally:
        topology.stop()
        if arguments.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"topology: the credit story and 6 faults passed in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
