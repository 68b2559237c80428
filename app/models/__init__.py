"""Core tables shared by every area. Area packages keep their own models next to their code."""
from app.models.base import TimestampMixin, utcnow  # noqa: F401
