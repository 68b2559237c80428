from datetime import datetime, timezone

from sqlalchemy import DateTime, types
from sqlalchemy.orm import Mapped, mapped_column

from app.clock import utcnow  # noqa: F401  (every model and module reads the time from here)


class UTCDateTime(types.TypeDecorator):
    """Stores UTC, always hands back an aware datetime (SQLite forgets the offset otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; store UTC-aware datetimes")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
