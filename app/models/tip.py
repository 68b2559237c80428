from datetime import datetime

from sqlalchemy import (JSON, Boolean, Float, ForeignKey, Index, Integer, SmallInteger, String, Text, UniqueConstraint,
                        text)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import TimestampMixin, UTCDateTime, utcnow

TIP_STATUSES = ("received", "checking", "pending_review", "accepted", "rejected", "duplicate",
                "need_info", "withdrawn")
OPEN_TIP_STATUSES = ("received", "checking", "pending_review")


class Tip(TimestampMixin, db.Model):
    """One resident submission (报料). Location is stored as WGS-84."""

    __tablename__ = "tips"

    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), nullable=False)
    idempotency_key: Mapped[str] = mapped_column(String(128), nullable=False)
    request_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    category: Mapped[str] = mapped_column(String(48), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    lat: Mapped[float] = mapped_column(Float, nullable=False)
    lng: Mapped[float] = mapped_column(Float, nullable=False)
    coord_in: Mapped[str] = mapped_column(String(8), nullable=False, default="gcj02")
    address: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="received")
    status_changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    grid_id: Mapped[int | None] = mapped_column(Integer)
    grid_code: Mapped[str | None] = mapped_column(String(32))
    town_code: Mapped[str | None] = mapped_column(String(32))
    severity: Mapped[int | None] = mapped_column(SmallInteger)
    # Review queue order: higher first (category severity weight), then oldest first.
    priority: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    signals: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)
    candidates: Mapped[list] = mapped_column(JSON, nullable=False, default=list)
    flagged: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    claimed_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decision_reason: Mapped[str | None] = mapped_column(String(64))
    decision_message: Mapped[str | None] = mapped_column(Text)
    duplicate_of_tip_id: Mapped[int | None] = mapped_column(ForeignKey("tips.id"))
    duplicate_of_hazard_id: Mapped[int | None] = mapped_column(Integer)
    hazard_id: Mapped[int | None] = mapped_column(Integer, index=True)
    # Set when the retention purge coarsened the point and dropped the address (miniprogram_api.retention).
    location_purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    events: Mapped[list["TipEvent"]] = relationship(order_by="TipEvent.id", lazy="selectin",
                                                    cascade="all, delete-orphan")
    photos: Mapped[list["Photo"]] = relationship("Photo", order_by="Photo.position", lazy="selectin",
                                                 foreign_keys="Photo.tip_id")

    __table_args__ = (
        UniqueConstraint("resident_id", "idempotency_key"),
        Index("ix_tips_resident_created", "resident_id", "id"),
        Index("ix_tips_review_queue", "status", "priority", "created_at"),
        # intake's "tips of the same category waiting for review near this one": the bounding box's
        # latitude is an index condition and longitude is checked in the index, not on the heap
        Index("ix_tips_category_status_place", "category", "status", "lat", "lng"),
        # the tips being claimed (a decision clears claimed_by): the held-lease check of every claim
        Index("ix_tips_claimed_by", "claimed_by", postgresql_where=text("claimed_by IS NOT NULL"),
              sqlite_where=text("claimed_by IS NOT NULL")),
    )


class TipEvent(db.Model):
    """The tip's timeline. `note` is what the resident reads (Chinese); internal events are hidden."""

    __tablename__ = "tip_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    tip_id: Mapped[int] = mapped_column(ForeignKey("tips.id", ondelete="CASCADE"), nullable=False, index=True)
    status: Mapped[str] = mapped_column(String(24), nullable=False)
    note: Mapped[str | None] = mapped_column(Text)
    internal: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    actor_type: Mapped[str] = mapped_column(String(16), nullable=False, default="system")
    actor_id: Mapped[int | None] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


from app.models.photo import Photo  # noqa: E402  (relationship target)
