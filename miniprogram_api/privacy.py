"""The privacy notice (个人信息保护告知) the mini-program shows before a resident's first tip.

The city replaces the built-in text with its own file (PRIVACY_NOTICE_FILE, UTF-8). The version
is PRIVACY_NOTICE_VERSION when set, else derived from the text: any change to the text — the
retention periods below included — makes a new version, and the mini-program asks again.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from flask import current_app

from app.config import ConfigError

BUILT_IN = Path(__file__).resolve().parent / "texts" / "privacy_notice.txt"
# Placeholders a notice may use; they read the retention configuration.
PLACEHOLDERS = {"{photo_retention}": "PHOTO_RETENTION_DAYS", "{location_retention}": "LOCATION_RETENTION_DAYS"}


def check_privacy_notice(config) -> None:
    """At start: a configured notice that cannot be read stops the app (better than a 500 later)."""
    path = config.get("PRIVACY_NOTICE_FILE")
    if not path:
        return
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"PRIVACY_NOTICE_FILE cannot be read as UTF-8 text: {path} ({error})") from error
    if not text.strip():
        raise ConfigError(f"PRIVACY_NOTICE_FILE is empty: {path}")


def _period(days: int) -> str:
    return f" {days} 天" if days > 0 else "至不再需要时"


def privacy_notice() -> dict:
    """{"version", "text"}: the notice with its placeholders filled in."""
    config = current_app.config
    path = Path(config.get("PRIVACY_NOTICE_FILE") or BUILT_IN)
    text = path.read_text(encoding="utf-8").strip()
    for placeholder, setting in PLACEHOLDERS.items():
        text = text.replace(placeholder, _period(int(config[setting])))
    version = config.get("PRIVACY_NOTICE_VERSION") or hashlib.sha256(text.encode()).hexdigest()[:12]
    return {"version": version, "text": text}
