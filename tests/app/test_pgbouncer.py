"""PgBouncer in transaction mode in front of PostgreSQL (issue 18 point 3): with DATABASE_PGBOUNCER=1
psycopg prepares no statements, and the whole journey (gunicorn, `flask worker`, migrations, the
money path) runs through it. Without the setting the same traffic fails: the proof that it matters."""
import os
import re
import subprocess
import sys

import pytest
from sqlalchemy import create_engine, text

from app.config import ConfigError, load_config
from tests.conftest import ROOT


def test_the_setting_turns_prepared_statements_off():
    cfg = load_config(env={"DATABASE_URL": "postgresql://u@bouncer:6432/rrp", "DATABASE_PGBOUNCER": "1"})
    assert cfg["SQLALCHEMY_ENGINE_OPTIONS"]["connect_args"] == {"prepare_threshold": None}
    assert cfg["SQLALCHEMY_ENGINE_OPTIONS"]["pool_pre_ping"] is True
    plain = load_config(env={"DATABASE_URL": "postgresql://u@db/rrp"})
    assert "connect_args" not in plain["SQLALCHEMY_ENGINE_OPTIONS"]


def test_the_setting_wants_postgresql():
    with pytest.raises(ConfigError, match="DATABASE_PGBOUNCER"):
        load_config(env={"DATABASE_PGBOUNCER": "1"})


def _traffic(url, connect_args) -> None:
    """Three clients taking turns, each statement more often than psycopg's prepare threshold (5)."""
    engine = create_engine(url, connect_args=connect_args)
    conns = [engine.connect() for _ in range(3)]
    try:
        for i in range(10):
            for conn in conns:
                assert conn.execute(text("SELECT CAST(:x AS integer) + 1"), {"x": i}).scalar() == i + 1
                conn.commit()
    finally:
        for conn in conns:
            conn.close()
        engine.dispose()


@pytest.mark.slow
def test_prepared_statements_break_behind_transaction_pooling(pgbouncer):
    with pytest.raises(Exception, match="prepared statement"):
        _traffic(pgbouncer.url, {})
    cfg = load_config(env={"DATABASE_URL": pgbouncer.url.render_as_string(hide_password=False),
                           "DATABASE_PGBOUNCER": "1"})
    _traffic(pgbouncer.url, cfg["SQLALCHEMY_ENGINE_OPTIONS"]["connect_args"])


@pytest.mark.slow
@pytest.mark.timeout(1200)  # two journeys (one per payout channel) in a child pytest
def test_the_whole_journey_runs_through_pgbouncer(pgbouncer, tmp_path):
    """tests/test_journey.py in a child pytest, its DATABASE_URL pgbouncer's: migrations, web, workers."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "REDIS_URL"))}  # its own embedded Redis, not an xdist worker
    env.update({"DATABASE_URL": pgbouncer.url.render_as_string(hide_password=False), "DATABASE_PGBOUNCER": "1",
                "PYTHONPATH": str(ROOT)})
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                             "--basetemp", str(tmp_path / "run"), "tests/test_journey.py"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=1140)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    # every variant of the journey (one per payout channel) ran and passed, none skipped
    assert re.search(r"\b\d+ passed", result.stdout) and not re.search(r"skipped|deselected", result.stdout)
