from sqlalchemy import JSON, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import TimestampMixin


class AuditEntry(TimestampMixin, db.Model):
    """Append-only record of staff actions: who did what to which object, before and after."""

    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    actor_type: Mapped[str] = mapped_column(String(16), nullable=False)  # staff | system | department | resident
    actor_id: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    object_type: Mapped[str] = mapped_column(String(32), nullable=False)
    object_id: Mapped[int | None] = mapped_column(Integer)
    before: Mapped[dict | None] = mapped_column(JSON)
    after: Mapped[dict | None] = mapped_column(JSON)
    note: Mapped[str | None] = mapped_column(Text)
    # Where a staff member or department system acted from (never a resident's address).
    client_addr: Mapped[str | None] = mapped_column(String(45))

    __table_args__ = (Index("ix_audit_entries_object", "object_type", "object_id"),)
