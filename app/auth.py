"""Who is calling: staff by bearer token (API) or session cookie (console); role checks.

Residents' tokens live in miniprogram_api; department API keys in app/hazards.
"""
from __future__ import annotations

import functools

from flask import g, request, session

from app.accounts import staff_for_token
from app.errors import Forbidden, Unauthorized
from app.extensions import db
from app.models.staff import StaffUser


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
    elif session.get("staff_id"):
        candidate = db.session.get(StaffUser, session["staff_id"])
        # a password change or deactivation ends console sessions
        if candidate and candidate.active and session.get("staff_pw") == candidate.password_hash[-16:]:
            user = candidate
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
    session.clear()
    session["staff_id"] = user.id
    session["staff_pw"] = user.password_hash[-16:]
    session.permanent = True
