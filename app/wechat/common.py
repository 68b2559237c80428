"""Small helpers the modules share: masked openids, WeChat's XML, its Beijing time strings."""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import xmltodict

from app.display import SHANGHAI


def mask_openid(openid: str | None) -> str:
    """For logs: never the openid itself."""
    if not openid:
        return "-"
    return "o…" + hashlib.sha256(openid.encode()).hexdigest()[:10]


def _parse_xml(body) -> dict | None:
    try:
        doc = xmltodict.parse(body)
    except Exception:  # expat errors on non-XML: the caller decides what that means
        return None
    data = doc.get("xml") if isinstance(doc, dict) else None
    return dict(data) if isinstance(data, dict) else None


def _int_or_none(value):
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _wx_time(value: str | None) -> datetime | None:
    """WeChat Pay's Beijing wall-clock strings → aware UTC datetimes."""
    if not value:
        return None
    text = value.strip()
    digits = text[0:4] + text[5:7] + text[8:10] + text[11:13] + text[14:16] + text[17:19]
    if len(text) == 19 and text[4] + text[7] + text[10] + text[13] + text[16] == "-- ::" and digits.isascii() \
            and digits.isdigit():  # the fixed format without strptime: a bill has one per row (300 k a day)
        local = datetime(int(text[0:4]), int(text[5:7]), int(text[8:10]), int(text[11:13]), int(text[14:16]),
                         int(text[17:19]), tzinfo=SHANGHAI)
    else:
        local = datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHANGHAI)
    return local.astimezone(timezone.utc)
