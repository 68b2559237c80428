"""Moderation tables: the near-duplicate index over photo hashes, and the record of review decisions."""
from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import TimestampMixin, UTCDateTime


class PhotoHashBand(db.Model):
    """One band of one photo's 64-bit perceptual hash (moderation/dedup.py explains the layout).

    `band_key` = band number << 24 | the band's bits; `phash` is repeated so the lookup index
    covers the exact Hamming check without visiting the photos table.
    """

    __tablename__ = "photo_hash_bands"

    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"), primary_key=True)
    band_key: Mapped[int] = mapped_column(Integer, primary_key=True)
    phash: Mapped[int] = mapped_column(BigInteger, nullable=False)

    __table_args__ = (Index("ix_photo_hash_bands_lookup", "band_key", "phash", "photo_id"),)


class TipMediaCheck(db.Model):
    """A photo sent to WeChat's asynchronous image check for a tip; the verdict arrives by push
    (app.wechat records it by trace_id) and the sweep applies it to the tip once."""

    __tablename__ = "tip_media_checks"

    id: Mapped[int] = mapped_column(primary_key=True)
    tip_id: Mapped[int] = mapped_column(ForeignKey("tips.id", ondelete="CASCADE"), nullable=False, index=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"), nullable=False)
    trace_id: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    verdict: Mapped[str | None] = mapped_column(String(16))  # pass | review | risky | error, once applied
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)


class ReviewDecision(TimestampMixin, db.Model):
    """Every decision on a tip, in order; a supervisor's reversal marks one reversed (never deletes it)."""

    __tablename__ = "review_decisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    tip_id: Mapped[int] = mapped_column(ForeignKey("tips.id", ondelete="CASCADE"), nullable=False, index=True)
    action: Mapped[str] = mapped_column(String(16), nullable=False)  # approve|reject|duplicate|need_info|auto_*
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    from_status: Mapped[str] = mapped_column(String(16), nullable=False)
    to_status: Mapped[str] = mapped_column(String(16), nullable=False)
    category: Mapped[str | None] = mapped_column(String(48))
    severity: Mapped[int | None] = mapped_column(SmallInteger)
    reason: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str | None] = mapped_column(Text)
    department: Mapped[str | None] = mapped_column(String(32))
    duplicate_of: Mapped[dict | None] = mapped_column(JSON)
    answer: Mapped[dict | None] = mapped_column(JSON)
    reversed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reversed_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
