"""Photos whose display copy is still to be made (off the request, by the `photo.display` job)."""
from datetime import datetime

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import UTCDateTime, utcnow


class PendingDisplayCopy(db.Model):
    """One row per photo accepted with its thumbnail and hashes but no display copy yet.

    The upload request writes it with the photo; app.media.photos.make_display_copy deletes it.
    While it exists the photo's `url` is its thumbnail's.
    """

    __tablename__ = "media_pending_displays"

    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
