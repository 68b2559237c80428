"""Signed, expiring media URLs for local storage: HMAC-SHA256 over key and expiry.

The expiry is rounded up to a 5-minute step so the same photo listed twice in a few minutes gets
the same URL (the mini-program's image cache then works); a URL lives between ttl and ttl + 300 s.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import math
import time

EXPIRY_STEP = 300
PRIVATE_PREFIX = "private/"  # originals: never served, never signed


def expiry_for(ttl: int, now: float | None = None) -> int:
    now = time.time() if now is None else now
    return int(math.ceil((now + ttl) / EXPIRY_STEP) * EXPIRY_STEP)


def sign(secret: str, key: str, exp: int) -> str:
    message = f"media-url\n{key}\n{exp}".encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def check_any(secrets: list[str], key: str, exp, sig, now: float | None = None) -> str | None:
    """check() against each key in turn (the current one, then those retired by a rotation)."""
    refusal = "media_url_invalid"
    for secret in secrets:
        refusal = check(secret, key, exp, sig, now)
        if refusal != "media_url_invalid":
            return refusal
    return refusal


def check(secret: str, key: str, exp: str | int | None, sig: str | None, now: float | None = None) -> str | None:
    """None when the URL is good, else the refusal code: media_url_invalid or media_url_expired."""
    if not secret or not sig or exp is None or key.startswith(PRIVATE_PREFIX):
        return "media_url_invalid"
    try:
        exp_value = int(exp)
    except (TypeError, ValueError):
        return "media_url_invalid"
    if not hmac.compare_digest(sign(secret, key, exp_value), sig):
        return "media_url_invalid"
    if exp_value < (time.time() if now is None else now):
        return "media_url_expired"
    return None
