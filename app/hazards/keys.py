"""Department API keys: shown once at creation, stored as SHA-256 only, looked up by that hash.

A key is 256 random bits, so a plain SHA-256 (not a slow password hash) is the right digest: there
is nothing to brute-force, and every API call can afford the lookup.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select, update

from app.errors import Unauthorized, Unprocessable
from app.extensions import db
from app.hazards.catalogue import get_department
from app.hazards.models import Department, DepartmentApiKey
from app.models.base import utcnow

KEY_PREFIX = "rrpd_"
TOUCH_EVERY = timedelta(minutes=1)  # last_used_at is advisory: at most one write a minute per key


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_department_key(department_code: str, label: str | None = None) -> tuple[str, DepartmentApiKey]:
    """A new key for the department: (the key — show it once, it is not stored — and its row)."""
    department = get_department(department_code)
    if department is None or not department.active:
        raise Unprocessable(f"部门不存在：{department_code}", code="unknown_department",
                            fields={"department": [department_code]})
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = DepartmentApiKey(department_id=department.id, prefix=key[:12], key_hash=key_digest(key), label=label)
    db.session.add(row)
    db.session.flush()
    return key, row


def department_for_key(key: str | None) -> Department:
    """The department a key belongs to, or 401."""
    if not key:
        raise Unauthorized("缺少 API 密钥", code="api_key_missing")
    row = db.session.scalar(select(DepartmentApiKey).where(DepartmentApiKey.key_hash == key_digest(key.strip())))
    if row is None or row.revoked_at is not None or not row.department.active:
        raise Unauthorized("API 密钥无效", code="api_key_invalid")
    now = utcnow()
    if _may_write() and (row.last_used_at is None or now - row.last_used_at > TOUCH_EVERY):
        db.session.execute(update(DepartmentApiKey).where(DepartmentApiKey.id == row.id)
                           .values(last_used_at=now).execution_options(synchronize_session=False))
    return row.department


def _may_write() -> bool:
    """SQLite read-only requests run in deferred transactions: a write there could fail on a busy
    database, so a GET with SQLite leaves last_used_at alone (every POST still records it)."""
    from flask import has_request_context, request

    from app.db import is_sqlite

    return not (has_request_context() and request.method in ("GET", "HEAD") and is_sqlite(db.session))


def revoke_department_key(prefix: str) -> int:
    changed = db.session.execute(update(DepartmentApiKey)
                                 .where(DepartmentApiKey.prefix == prefix, DepartmentApiKey.revoked_at.is_(None))
                                 .values(revoked_at=utcnow())).rowcount
    return changed


def list_department_keys(department_code: str | None = None) -> list[DepartmentApiKey]:
    query = select(DepartmentApiKey).order_by(DepartmentApiKey.id)
    if department_code:
        query = query.join(Department, Department.id == DepartmentApiKey.department_id).where(
            Department.code == department_code)
    return list(db.session.scalars(query).unique())
