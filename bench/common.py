"""What the benches share: a scratch app on its own database, and cleaning up after it.

Benches run as scripts (`.venv/bin/python bench/X.py`) with the repository root on sys.path.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def reset_database(url: str) -> None:
    """A PostgreSQL bench database starts empty (its name must contain 'bench' or 'test')."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from app.config import normalize_database_url

    parsed = make_url(normalize_database_url(url))
    if parsed.get_backend_name() != "postgresql":
        return
    if "bench" not in (parsed.database or "") and "test" not in (parsed.database or ""):
        raise SystemExit("refusing to reset a database whose name has neither 'bench' nor 'test' in it")
    engine = create_engine(parsed, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def stop_scratch_redis(instance: Path) -> None:
    """Stop the embedded Redis an app started under `instance` (it outlives the process otherwise)."""
    if not os.environ.get("REDIS_URL"):
        from app.embedded import stop_embedded_redis

        stop_embedded_redis(instance)


@contextlib.contextmanager
def embedded_redis_stopped(instance: Path):
    try:
        yield
    finally:
        stop_scratch_redis(instance)


@contextlib.contextmanager
def scratch_app(prefix: str, database_url: str | None = None):
    """An app on a fresh SQLite file under a temp folder (or on `database_url`), REDIS_URL or an
    embedded Redis, inside its app context; the embedded Redis is stopped afterwards."""
    from app import create_app

    scratch = Path(tempfile.mkdtemp(prefix=prefix))
    config = {"APP_ENV": "development", "INSTANCE_PATH": str(scratch), "LOG_LEVEL": "WARNING", "LOG_JSON": False,
              "SQLALCHEMY_DATABASE_URI": database_url or f"sqlite:///{scratch / 'bench.db'}"}
    if os.environ.get("REDIS_URL"):
        config["REDIS_URL"] = os.environ["REDIS_URL"]
    with embedded_redis_stopped(scratch):
        app = create_app(config)
        with app.app_context():
            yield app
