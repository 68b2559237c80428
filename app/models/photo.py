from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import TimestampMixin, UTCDateTime


class Photo(TimestampMixin, db.Model):
    """One uploaded photo. The original stays private; display and thumbnail copies carry no EXIF.

    A photo belongs to its uploader and to at most one tip (`tip_id` is set once, compare-and-set).
    """

    __tablename__ = "photos"

    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("residents.id"), index=True)
    # Department resolution photos have no resident; they are attached to a ticket instead.
    uploaded_by_department: Mapped[str | None] = mapped_column(String(32))
    tip_id: Mapped[int | None] = mapped_column(ForeignKey("tips.id"), index=True)
    position: Mapped[int | None] = mapped_column(SmallInteger)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    phash: Mapped[int] = mapped_column(BigInteger, nullable=False)  # signed 64-bit perceptual hash
    width: Mapped[int] = mapped_column(Integer, nullable=False)
    height: Mapped[int] = mapped_column(Integer, nullable=False)
    mime: Mapped[str] = mapped_column(String(32), nullable=False)
    size_bytes: Mapped[int] = mapped_column(Integer, nullable=False)
    original_key: Mapped[str] = mapped_column(String(255), nullable=False)
    display_key: Mapped[str] = mapped_column(String(255), nullable=False)
    thumb_key: Mapped[str] = mapped_column(String(255), nullable=False)
    exif_taken_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    exif_lat: Mapped[float | None] = mapped_column(Float)
    exif_lng: Mapped[float | None] = mapped_column(Float)
