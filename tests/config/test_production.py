"""Production mode refuses the development defaults, in a real process that loads the settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from config.production import DEVELOPMENT_SECRET_KEY

ROOT = Path(__file__).resolve().parents[2]
READY = {
    "DRIFTLEDGER_PRODUCTION": "true",
    "SECRET_KEY": "k" * 64,
    "METRICS_TOKEN": "scrape-token",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/postgres",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/9",
}


def _check(tmp_path, **changes: str) -> subprocess.CompletedProcess:
    key = tmp_path / "keys" / "signing.pem"
    data = tmp_path / "data"
    environment = {**os.environ, **READY, "AUDIT_SIGNING_KEY_FILE": str(key), "DRIFTLEDGER_DATA_DIR": str(data)}
    for name, value in changes.items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    for name in ("DEBUG", "METRICS_PUBLIC", "SECURE_COOKIES"):
        if name not in changes:
            environment.pop(name, None)
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env={**environment, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_production_configuration_starts(tmp_path):
    started = _check(tmp_path)
    assert started.returncode == 0, started.stderr


def test_every_development_default_is_refused_at_once(tmp_path):
    refused = _check(
        tmp_path,
        DEBUG="true",
        SECRET_KEY=DEVELOPMENT_SECRET_KEY,
        AUDIT_SIGNING_KEY_FILE=None,
        METRICS_PUBLIC="true",
        DATABASE_URL=None,
        CELERY_BROKER_URL=None,
        SECURE_COOKIES="false",
    )
    assert refused.returncode != 0
    assert not list(tmp_path.rglob("PG_VERSION")), "an embedded server was made before the refusal"
    message = refused.stderr.strip().splitlines()[-1]
    assert message.startswith("django.core.exceptions.ImproperlyConfigured: DRIFTLEDGER_PRODUCTION is set, but:")
    for named in ("DEBUG", "SECRET_KEY", "AUDIT_SIGNING_KEY_FILE", "METRICS_PUBLIC", "DATABASE_URL",
                  "CELERY_BROKER_URL", "SECURE_COOKIES"):  # fmt: skip
        assert named in message, named


def test_a_signing_key_kept_with_the_data_is_refused(tmp_path):
    refused = _check(tmp_path, AUDIT_SIGNING_KEY_FILE=str(tmp_path / "data" / "keys" / "signing.pem"))
    assert refused.returncode != 0 and "lies under DRIFTLEDGER_DATA_DIR" in refused.stderr


def test_secure_cookies_default_on_in_production(tmp_path):
    shown = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; "
            "print(settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE)",
        ],
        cwd=ROOT,
        env={
            **os.environ,
            **READY,
            "AUDIT_SIGNING_KEY_FILE": str(tmp_path / "k.pem"),
            "DRIFTLEDGER_DATA_DIR": str(tmp_path / "d"),
            "DJANGO_SETTINGS_MODULE": "config.settings",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.stdout.split() == ["True", "True"], shown.stderr


def test_an_approval_or_report_window_of_no_hours_is_refused(tmp_path):
    """0 hours would lapse every approval before its execution, or fail every retrain at once."""
    for name in ("REMEDIATION_RETRY_HOURS", "REMEDIATION_REPORT_HOURS", "REMEDIATION_EXPIRY_HOURS"):
        refused = _check(tmp_path, **{name: "0"})
        assert refused.returncode != 0
        assert refused.stderr.strip().splitlines()[-1].endswith(f"{name} must be 1 hour or more, not 0"), name
