"""Serve the product on this machine: the web server, a Celery worker and beat, one command.

On the embedded defaults (no DATABASE_URL, no CELERY_BROKER_URL) the three share the embedded
PostgreSQL and a broker in files under the data directory; with both set, the same processes
run against the configured services. Ctrl-C (or SIGTERM) stops all three cleanly; if one of
them dies, the others are stopped and the command fails, naming it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

MAX_PROCESSES = 256  # of each kind: past this many, a mistyped number forks the machine to a halt
STOP_SECONDS = 30  # how long each process gets to finish its work before it is killed


class Command(BaseCommand):
    help = "Serve Driftledger here: web server (gunicorn), Celery worker and beat. Ctrl-C stops them."

    def add_arguments(self, parser):
        parser.add_argument("--bind", default="127.0.0.1:8000", help="address:port of the web server")
        parser.add_argument(
            "--web-workers", type=int, default=2, help=f"gunicorn worker processes (1 to {MAX_PROCESSES})"
        )
        parser.add_argument(
            "--concurrency",
            type=int,
            default=2,
            help=f"Celery worker processes, runs and notifications (1 to {MAX_PROCESSES})",
        )

    def handle(self, *args, bind: str, web_workers: int, concurrency: int, **options):
        if not (1 <= web_workers <= MAX_PROCESSES and 1 <= concurrency <= MAX_PROCESSES):
            raise CommandError(f"--web-workers and --concurrency must be 1 to {MAX_PROCESSES}")
        call_command("migrate", verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)  # the web server serves them (whitenoise)
        web = ["gunicorn", "config.wsgi", "--bind", bind, "--workers", str(web_workers), "--access-logfile", "-"]
        worker = ["celery", "-A", "config", "worker", "--concurrency", str(concurrency), "--loglevel", "INFO"]
        beat = ["celery", "-A", "config", "beat", "--loglevel", "INFO"]
        commands = {
            "web": [*web, "--graceful-timeout", str(STOP_SECONDS)],
            "worker": [*worker, "--without-gossip", "--without-mingle", "-n", "driftledger@%h"],
            "beat": [*beat, "--schedule", str(settings.DATA_DIR / "celerybeat-schedule")],
        }
        processes: dict[str, subprocess.Popen] = {}
        stopping = False

        def stop(signum, frame) -> None:
            nonlocal stopping
            stopping = True

        for stopping_signal in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # Ctrl-C, kill, a closed terminal
            signal.signal(stopping_signal, stop)
        try:
            for name, command in commands.items():
                # Their own process group: Ctrl-C reaches this command only, which stops them in order.
                processes[name] = subprocess.Popen([sys.executable, "-m", *command], process_group=0)  # noqa: S603
            self.stdout.write(
                f"Serving on http://{bind}/ (API under /api/v1/, its documentation at /api/v1/docs/) with a "
                f"worker and beat; broker: {settings.CELERY_BROKER_URL.split('://')[0]}. Ctrl-C stops."
            )
            died = None
            while not stopping and died is None:
                time.sleep(0.5)
                died = next((name for name, process in processes.items() if process.poll() is not None), None)
        finally:
            _stop_all(processes)
        if died is not None:
            raise CommandError(
                f"the {died} process exited with status {processes[died].returncode}; stopped the others"
            )
        self.stdout.write("Stopped: web server, worker and beat.")


def _stop_all(processes: dict[str, subprocess.Popen]) -> None:
    """SIGTERM to each (gunicorn and Celery finish what they are doing), then SIGKILL after
    STOP_SECONDS. The web server stops first, so no new work arrives while the worker drains."""
    for name in ("web", "beat", "worker"):
        process = processes.get(name)
        if process is not None and process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + STOP_SECONDS
    for process in processes.values():
        try:
            process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
