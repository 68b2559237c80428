"""Business time: store UTC, count days and budget periods in Asia/Shanghai (docs/DESIGN.md §Rules)."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

from app.models.base import utcnow

SHANGHAI = timezone(timedelta(hours=8))


def shanghai_day(at: datetime | None = None) -> date:
    return (at or utcnow()).astimezone(SHANGHAI).date()


def period_of(at: datetime | date | None = None) -> str:
    """The budget month, 'YYYY-MM'."""
    day = at if isinstance(at, date) and not isinstance(at, datetime) else shanghai_day(at)
    return day.strftime("%Y-%m")


def day_bounds_utc(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a Shanghai day, in UTC."""
    start = datetime.combine(day, time(0), SHANGHAI).astimezone(timezone.utc)
    return start, start + timedelta(days=1)
