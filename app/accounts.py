"""Staff accounts: creation, password checks (Argon2id, memory-hard), bearer tokens."""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from sqlalchemy import select, update

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
    if department_code:
        _check_department(department_code)
    _check_password(password)
    if db.session.scalar(select(StaffUser.id).where(StaffUser.username == username)):
        raise Conflict("用户名已存在", code="username_taken")
    user = StaffUser(username=username, password_hash=hash_password(password),
                     department_code=department_code, display_name=display_name or username,
                     roles=[StaffRole(role=r) for r in dict.fromkeys(roles)])
    db.session.add(user)
    db.session.flush()
    return user


def _check_department(code: str) -> None:
    """A department account of a department the catalogue lacks would see no ticket, silently."""
    from app.hazards.catalogue import get_department

    department = get_department(code)
    if department is None or not department.active:
        raise Unprocessable(f"部门不存在：{code}", code="unknown_department", fields={"department": [code]})


def _check_password(password: str) -> None:
    if len(password) < 8:
        raise Unprocessable("密码至少 8 位", code="password_too_short", fields={"password": ["至少 8 位"]})


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


# A token's kind is its prefix, inside the hashed secret: a console session's token (kept in the
# signed session cookie) is refused as a bearer token, and an API token as a console session.
TOKEN_PREFIXES = {"api": "stf_", "console": "stc_"}


def issue_staff_token(user: StaffUser, kind: str = "api") -> tuple[str, int]:
    """A new bearer token (kind "api") or console session (kind "console"), STAFF_TOKEN_TTL long."""
    ttl = current_app.config["STAFF_TOKEN_TTL"]
    token = TOKEN_PREFIXES[kind] + secrets.token_urlsafe(32)
    db.session.add(StaffToken(token_hash=token_digest(token), staff_id=user.id,
                              expires_at=utcnow() + timedelta(seconds=ttl)))
    return token, ttl


def staff_for_token(token: str, kind: str = "api") -> StaffUser | None:
    if not token.startswith(TOKEN_PREFIXES[kind]):
        return None
    row = db.session.scalar(select(StaffToken).where(StaffToken.token_hash == token_digest(token)))
    if row is None or row.revoked_at is not None or row.expires_at <= utcnow():
        return None
    user = db.session.get(StaffUser, row.staff_id)
    return user if user is not None and user.active else None


def revoke_staff_token(token: str) -> None:
    """End one token or console session now (flush only; the caller commits)."""
    db.session.execute(update(StaffToken).where(StaffToken.token_hash == token_digest(token),
                                                StaffToken.revoked_at.is_(None)).values(revoked_at=utcnow()))


def revoke_staff_tokens(user: StaffUser) -> int:
    """End every token and console session of `user`; how many were still live."""
    return db.session.execute(update(StaffToken).where(StaffToken.staff_id == user.id,
                                                       StaffToken.revoked_at.is_(None))
                              .values(revoked_at=utcnow())).rowcount


def change_staff_password(user: StaffUser, password: str) -> None:
    """A new password ends every session and token the old one opened."""
    _check_password(password)
    user.password_hash = hash_password(password)
    revoke_staff_tokens(user)
    db.session.flush()


def set_staff_active(user: StaffUser, active: bool) -> None:
    """Disable (or enable again) an account; disabling ends its sessions and tokens at once."""
    user.active = active
    if not active:
        revoke_staff_tokens(user)
    db.session.flush()
