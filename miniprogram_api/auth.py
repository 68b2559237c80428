"""Residents' login and bearer tokens.

A wx.login code goes through the gateway (code2session); the resident is found or created by
openid; the token handed out is random and only its SHA-256 is stored, with an expiry. Logging out
revokes it. The session_key WeChat returns is not stored (nothing here needs it).
"""
from __future__ import annotations

import functools
import secrets
from datetime import timedelta

from flask import current_app, g, request
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from app.accounts import token_digest
from app.auth import bearer_token
from app.db import deferred_sqlite_transactions
from app.errors import Forbidden, Unauthorized
from app.extensions import db, wechat
from app.models.base import utcnow
from app.models.resident import Resident, ResidentToken

TOKEN_PREFIX = "rsd_"


class ResidentBlocked(Forbidden):
    status, code, message = 403, "resident_blocked", "该账号已被限制使用，如有疑问请联系客服"


def login_resident(code: str) -> tuple[str, int, Resident]:
    """Exchange a wx.login code for (token, ttl seconds, resident). Flushes; the caller commits."""
    result = wechat.code_to_session(code)  # 401 wechat_code_invalid, 429, 403, 503 come from here
    resident = find_or_create_resident(result.openid, result.unionid)
    if resident.blocked:
        raise ResidentBlocked()
    resident.last_login_at = utcnow()
    token, ttl = issue_resident_token(resident)
    return token, ttl, resident


def find_or_create_resident(openid: str, unionid: str | None = None) -> Resident:
    resident = db.session.scalar(select(Resident).where(Resident.openid == openid))
    if resident is None:
        try:
            with db.session.begin_nested():  # two first logins at once: one insert wins
                resident = Resident(openid=openid, unionid=unionid)
                db.session.add(resident)
        except IntegrityError:
            resident = db.session.scalar(select(Resident).where(Resident.openid == openid))
    elif unionid and resident.unionid != unionid:
        resident.unionid = unionid
    return resident


def issue_resident_token(resident: Resident) -> tuple[str, int]:
    ttl = int(current_app.config["RESIDENT_TOKEN_TTL"])
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    db.session.add(ResidentToken(token_hash=token_digest(token), resident_id=resident.id,
                                 expires_at=utcnow() + timedelta(seconds=ttl)))
    db.session.flush()
    return token, ttl


def revoke_resident_token(token: str) -> bool:
    """Revoke one token (logout). True when a live token was revoked."""
    return bool(db.session.execute(
        update(ResidentToken)
        .where(ResidentToken.token_hash == token_digest(token), ResidentToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    ).rowcount)


def revoke_all_tokens(resident_id: int) -> int:
    """Every live token of a resident (blocking an account, a stolen phone)."""
    return db.session.execute(
        update(ResidentToken)
        .where(ResidentToken.resident_id == resident_id, ResidentToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    ).rowcount


def resident_id_for_token(token: str) -> int | None:
    """The resident a live token belongs to; None for unknown, expired, revoked or blocked."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 128:
        return None
    row = db.session.execute(
        select(ResidentToken.resident_id, ResidentToken.expires_at, ResidentToken.revoked_at, Resident.blocked)
        .join(Resident, Resident.id == ResidentToken.resident_id)
        .where(ResidentToken.token_hash == token_digest(token))
    ).first()
    if row is None or row.revoked_at is not None or row.expires_at <= utcnow() or row.blocked:
        return None
    return row.resident_id


def load_resident_id() -> int | None:
    """The caller's resident id, looked up once per request (rate-limit keys ask too)."""
    cached = g.get("mp_resident")
    if cached is not None and cached[0] is request._get_current_object():
        return cached[1]
    token = bearer_token()
    resident_id = None
    if token:
        if db.session.get_bind().dialect.name == "sqlite":
            # A read in its own short transaction: a POST would otherwise take SQLite's write lock
            # here and hold it through the whole request (photo processing included).
            fresh = not db.session().in_transaction()
            with deferred_sqlite_transactions():
                resident_id = resident_id_for_token(token)
                if fresh:
                    db.session.commit()
        else:
            resident_id = resident_id_for_token(token)
    g.mp_resident = (request._get_current_object(), resident_id)
    return resident_id


def current_resident_id() -> int:
    resident_id = load_resident_id()
    if resident_id is None:
        if bearer_token():
            raise Unauthorized("登录已过期，请重新登录", code="token_invalid")
        raise Unauthorized("请先登录", code="unauthorized")
    return resident_id


def resident_required(view):
    """Every resident endpoint but login: a live bearer token, else 401."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        current_resident_id()
        return view(*args, **kwargs)

    return wrapper
