"""Liveness (/healthz: the process answers) and readiness (/readyz: database and Redis reachable)."""
from flask import Blueprint, jsonify
from sqlalchemy import text

from app.extensions import db, redis

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    checks = {"database": _check(lambda: db.session.execute(text("SELECT 1")).scalar() == 1),
              "redis": _check(lambda: redis.conn.ping())}
    db.session.rollback()
    ready = all(value == "ok" for value in checks.values())
    return jsonify({"status": "ok" if ready else "unavailable", "checks": checks}), 200 if ready else 503


def _check(probe) -> str:
    try:
        return "ok" if probe() else "failed"
    except Exception as exc:  # any failure of a dependency means "not ready", never a crash
        return f"failed: {type(exc).__name__}"
