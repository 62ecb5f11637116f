"""What production mode refuses to start with (pure): the development defaults that are safe for
a demo on one machine and unsafe anywhere else. Settings raise ImproperlyConfigured with every
problem at once, so the web server, the workers and beat all refuse alike."""

from __future__ import annotations

from pathlib import Path

DEVELOPMENT_SECRET_KEY = "driftledger-development-only-secret-key"  # noqa: S105 - the one it refuses
MIN_SECRET_KEY_LENGTH = 50


def production_problems(
    *,
    debug: bool,
    secret_key: str,
    signing_key_file: Path | None,
    data_dir: Path,
    metrics_public: bool,
    metrics_token: str,
    database_url: str,
    broker_url: str,
    secure_cookies: bool,
) -> list[str]:
    problems = []
    if debug:
        problems.append("DEBUG is on (it shows internals to anyone who triggers an error)")
    if secret_key == DEVELOPMENT_SECRET_KEY or len(secret_key) < MIN_SECRET_KEY_LENGTH:
        problems.append(f"SECRET_KEY is the development default or shorter than {MIN_SECRET_KEY_LENGTH} characters")
    if signing_key_file is None:
        problems.append(
            "AUDIT_SIGNING_KEY_FILE is unset: a development signing key would be generated under the data directory"
        )
    elif signing_key_file.resolve().is_relative_to(data_dir.resolve()):
        problems.append(
            "AUDIT_SIGNING_KEY_FILE lies under DRIFTLEDGER_DATA_DIR: keep the log's key apart from its data"
        )
    if metrics_public:
        problems.append("METRICS_PUBLIC opens /metrics to anyone: set METRICS_TOKEN for the scraper instead")
    elif not metrics_token:
        problems.append("METRICS_TOKEN is unset: Prometheus could not scrape /metrics")
    if not database_url:
        problems.append("DATABASE_URL is unset: the embedded PostgreSQL is for trying the product on one machine")
    if not broker_url:
        problems.append("CELERY_BROKER_URL is unset: the file broker serves one machine; use Redis or RabbitMQ")
    if not secure_cookies:
        problems.append("SECURE_COOKIES is off: session and CSRF cookies would travel without TLS")
    return problems
