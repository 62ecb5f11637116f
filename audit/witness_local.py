"""Witnesses run on this machine, as separate processes (`python -m audit.witness serve`): for the
demo, the tests and the benchmarks. A real deployment runs each witness on a host of its own."""

from __future__ import annotations

import base64
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from audit.keys import public_raw_from_pem

ROOT = Path(__file__).resolve().parents[1]


def _witness(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "audit.witness", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


@dataclass
class WitnessProcess:
    name: str
    state: Path
    public_pem: bytes
    process: subprocess.Popen | None = None
    url: str = ""

    @property
    def public_raw(self) -> bytes:
        return public_raw_from_pem(self.public_pem)

    def setting(self) -> dict:
        """Its entry in AUDIT_COSIGNING_WITNESSES."""
        return {"name": self.name, "url": self.url, "public_key": base64.b64encode(self.public_raw).decode()}

    def start(self) -> WitnessProcess:
        """Serve on a free port of 127.0.0.1; returns once it listens."""
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "audit.witness", "serve", "--state", str(self.state), "--port", "0"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None  # a pipe, asked for above
        line = self.process.stdout.readline()  # "witness <id> listening on 127.0.0.1:<port>"
        if "listening on" not in line:
            self.process.kill()
            raise RuntimeError(f"witness {self.name} did not start: {line!r}")
        self.url = f"http://{line.rsplit(' ', 1)[1].strip()}"
        return self

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)


def witness_create(state: Path, name: str, log_id: str, log_key_pem: Path) -> WitnessProcess:
    """A witness in `state` (made there on first use, with its own key) that follows the log from
    `log_key_pem`; not yet serving."""
    if not (state / "witness.pem").exists():
        made = _witness("init", "--state", str(state), "--name", name)
        if made.returncode != 0:
            raise RuntimeError(made.stderr)
    if not (state / "logs" / f"{log_id}.json").exists():
        followed = _witness("trust", "--state", str(state), "--log-id", log_id, "--log-key", str(log_key_pem))
        if followed.returncode != 0:
            raise RuntimeError(followed.stderr)
    private = serialization.load_pem_private_key((state / "witness.pem").read_bytes(), password=None)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return WitnessProcess(name, state, public_pem)
