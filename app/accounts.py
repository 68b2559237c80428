"""Staff accounts: creation, password checks (Argon2id, memory-hard), bearer tokens."""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from sqlalchemy import select

from app.audit import client_address
from app.errors import Conflict, Unauthorized, Unprocessable
from app.extensions import db
from app.login_throttle import clear_login_failures, reserve_login_attempt
from app.models.base import utcnow
from app.models.staff import ROLES, StaffRole, StaffToken, StaffUser

_hasher = PasswordHasher()  # Argon2id, 64 MiB, t=3: the library's RFC 9106 low-memory profile
_DUMMY_HASH = _hasher.hash("timing-equaliser")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def create_staff(username: str, password: str, roles: list[str], department_code: str | None = None,
                 display_name: str | None = None) -> StaffUser:
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise Unprocessable(f"未知角色：{', '.join(unknown)}", code="unknown_role", fields={"role": unknown})
    if "department" in roles and not department_code:
        raise Unprocessable("部门角色必须指定部门", code="department_required", fields={"department": ["必填"]})
    if len(password) < 8:
        raise Unprocessable("密码至少 8 位", code="password_too_short", fields={"password": ["至少 8 位"]})
    if db.session.scalar(select(StaffUser.id).where(StaffUser.username == username)):
        raise Conflict("用户名已存在", code="username_taken")
    user = StaffUser(username=username, password_hash=hash_password(password),
                     department_code=department_code, display_name=display_name or username,
                     roles=[StaffRole(role=r) for r in dict.fromkeys(roles)])
    db.session.add(user)
    db.session.flush()
    return user


def authenticate(username: str, password: str, address: str | None = None) -> StaffUser:
    """The user for these credentials, or Unauthorized `invalid_credentials` — the same answer, at
    the same cost, for an unknown or disabled user. Repeated failures from one address slow that
    address down (RateLimited `login_throttled`, app/login_throttle.py); nothing locks the account."""
    address = address if address is not None else client_address()
    reserve_login_attempt(username, address)
    user = db.session.scalar(select(StaffUser).where(StaffUser.username == username))
    known = user is not None and user.active
    if not _verify(user.password_hash if known else _DUMMY_HASH, password) or not known:
        raise Unauthorized("用户名或密码错误", code="invalid_credentials")
    clear_login_failures(username, address)
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    return user


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_staff_token(user: StaffUser) -> tuple[str, int]:
    ttl = current_app.config["STAFF_TOKEN_TTL"]
    token = "stf_" + secrets.token_urlsafe(32)
    db.session.add(StaffToken(token_hash=token_digest(token), staff_id=user.id,
                              expires_at=utcnow() + timedelta(seconds=ttl)))
    return token, ttl


def staff_for_token(token: str) -> StaffUser | None:
    row = db.session.scalar(select(StaffToken).where(StaffToken.token_hash == token_digest(token)))
    if row is None or row.revoked_at is not None or row.expires_at <= utcnow():
        return None
    user = db.session.get(StaffUser, row.staff_id)
    return user if user is not None and user.active else None
