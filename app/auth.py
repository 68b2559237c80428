"""Who is calling: staff by bearer token (API) or session cookie (console); role checks.

A console session is held server-side: the signed cookie carries only a console token (a
`staff_tokens` row, STAFF_TOKEN_TTL long), so logout, a password change or disabling the account
ends it for every copy of the cookie. Idle sessions end after STAFF_SESSION_IDLE seconds without a
request (a Redis key per session, refreshed by each request).

Residents' tokens live in miniprogram_api; department API keys in app/hazards.
"""
from __future__ import annotations

import functools
import logging

from flask import current_app, g, request, session
from redis.exceptions import RedisError

from app.accounts import issue_staff_token, revoke_staff_token, staff_for_token, token_digest
from app.errors import Forbidden, Unauthorized
from app.extensions import redis
from app.models.staff import StaffUser

log = logging.getLogger(__name__)


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def load_current_staff() -> StaffUser | None:
    # Cached per request (keyed by the request object): a test client can make several requests
    # inside one app context, and `g` alone would hand a later caller the earlier caller's identity.
    cached = g.get("current_staff_cache")
    if cached is not None and cached[0] is request._get_current_object():
        return cached[1]
    user = None
    token = bearer_token()
    if token:
        user = staff_for_token(token)
    elif session.get("staff_session"):
        user = staff_for_token(session["staff_session"], kind="console")
        if user is not None and not _still_active(session["staff_session"]):
            user = None
    g.current_staff_cache = (request._get_current_object(), user)
    return user


def current_staff() -> StaffUser:
    user = load_current_staff()
    if user is None:
        raise Unauthorized("请先登录", code="unauthorized")
    return user


def staff_required(*roles: str):
    """Require a signed-in staff member holding one of `roles` (admin holds every role)."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            user = current_staff()
            if roles and not user.has_role(*roles):
                raise Forbidden("您的角色无权进行此操作", code="wrong_role")
            return view(*args, **kwargs)

        wrapper._staff_roles = roles
        return wrapper

    return decorator


def start_console_session(user: StaffUser) -> None:
    """A new server-side session in a fresh cookie (flush only; the caller commits)."""
    session.clear()
    token, _ttl = issue_staff_token(user, kind="console")
    session["staff_session"] = token
    session.permanent = True  # the cookie lives PERMANENT_SESSION_LIFETIME = STAFF_TOKEN_TTL
    _mark_active(token)


def end_console_session() -> None:
    """Logout: the session ends server-side, so a copy of the cookie is worthless (caller commits)."""
    token = session.get("staff_session")
    if token:
        revoke_staff_token(token)
        try:
            redis.conn.delete(_idle_key(token))
        except RedisError:
            pass  # revoked in the database already
    session.clear()


def _idle_key(token: str) -> str:
    return f"console:active:{token_digest(token)[:32]}"


def _mark_active(token: str) -> None:
    try:
        redis.conn.set(_idle_key(token), 1, ex=current_app.config["STAFF_SESSION_IDLE"])
    except RedisError:
        log.warning("console idle timeout unavailable (Redis)")


def _still_active(token: str) -> bool:
    """Refresh the idle timer; False when the session sat idle past STAFF_SESSION_IDLE."""
    try:
        return bool(redis.conn.set(_idle_key(token), 1, ex=current_app.config["STAFF_SESSION_IDLE"], xx=True))
    except RedisError:  # like the rate limits: an outage must not sign every member of staff out
        log.warning("console idle timeout unavailable (Redis)")
        return True
