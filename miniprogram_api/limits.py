"""Rate limits of the residents' API: per resident and per IP (Flask-Limiter on Redis), and the
daily tip limit per resident (counted in the database, where the tips are).

Limits are configuration (MP_RATELIMIT_* below, overridable through create_app); a limited
request answers 429 `rate_limited` with Retry-After (app.errors renders it).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from flask import current_app
from flask_limiter.util import get_remote_address
from sqlalchemy import func, select

from app.display import day_start
from app.errors import RateLimited
from app.extensions import db, limiter
from app.models.tip import Tip

DEFAULTS = {
    # Per IP: generous, because carrier NAT puts many phones behind one address.
    "MP_RATELIMIT_IP": "600/minute",
    "MP_RATELIMIT_LOGIN_IP": "60/minute",
    # Per resident, on top of the IP limit.
    "MP_RATELIMIT_RESIDENT": "120/minute",
    "MP_RATELIMIT_PHOTOS": "30/minute;300/day",
    "MP_RATELIMIT_TIPS": "10/minute",
    "MP_RATELIMIT_EXPORT": "10/hour",  # a whole copy of the resident's data: heavy, and rarely needed
}


def init_app(app) -> None:
    for name, value in DEFAULTS.items():
        app.config.setdefault(name, value)


def resident_key() -> str:
    """The caller's resident id when the token is good; otherwise the IP (the request then gets 401)."""
    from miniprogram_api.auth import load_resident_id

    resident_id = load_resident_id()
    return f"resident:{resident_id}" if resident_id is not None else f"anon:{get_remote_address()}"


def _setting(name):
    return lambda: current_app.config[name]


def per_ip(name: str = "MP_RATELIMIT_IP"):
    return limiter.limit(_setting(name), key_func=get_remote_address, scope=f"mp-ip-{name}")


def per_resident(name: str = "MP_RATELIMIT_RESIDENT"):
    return limiter.limit(_setting(name), key_func=resident_key, scope=f"mp-resident-{name}")


def shanghai_day_start(now: datetime) -> datetime:
    return day_start(now)


def tips_sent_today(resident_id: int, now: datetime):
    """A scalar subquery: the resident's tips since midnight Asia/Shanghai."""
    day_start = shanghai_day_start(now).astimezone(timezone.utc)
    return (select(func.count(Tip.id)).where(Tip.resident_id == resident_id, Tip.created_at >= day_start)
            .scalar_subquery())


def refuse_over_daily_limit(sent_today: int, now: datetime) -> None:
    """429 daily_tip_limit when the resident already sent the day's allowance (Asia/Shanghai day)."""
    allowance = int(current_app.config["TIPS_PER_RESIDENT_PER_DAY"])
    if sent_today >= allowance:
        retry_after = int((shanghai_day_start(now) + timedelta(days=1) - now).total_seconds()) + 1
        raise RateLimited(f"每人每天最多提交 {allowance} 条报料，请明天再来", code="daily_tip_limit",
                          headers={"Retry-After": str(max(1, retry_after))})


def check_daily_tip_limit(resident_id: int, now: datetime) -> None:
    refuse_over_daily_limit(db.session.scalar(select(tips_sent_today(resident_id, now))), now)
