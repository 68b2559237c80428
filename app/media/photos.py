"""Put one processed photo into storage as three objects, and take them out again.

Keys are random, not content hashes: two residents uploading the same picture get separate
objects (deleting one never breaks the other) and a URL reveals nothing about the content.
"""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

from flask import current_app

from app.media.processing import OUTPUT_MIME, PhotoPreview, ProcessedPhoto, UploadInfo, display_copy
from app.media.signing import PRIVATE_PREFIX
from app.media.storage import Storage, get_storage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PhotoKeys:
    original_key: str  # private/, never served
    display_key: str
    thumb_key: str

    def all(self) -> tuple[str, str, str]:
        return self.original_key, self.display_key, self.thumb_key


def new_photo_keys(extension: str, now: datetime | None = None) -> PhotoKeys:
    month = (now or datetime.now(timezone.utc)).strftime("%Y/%m")
    public = uuid.uuid4().hex
    return PhotoKeys(
        original_key=f"{PRIVATE_PREFIX}originals/{month}/{uuid.uuid4().hex}.{extension}",
        display_key=f"photos/{month}/{public}.jpg",
        thumb_key=f"photos/{month}/{public}_thumb.jpg",
    )


def store_photo(upload: UploadInfo, photo: ProcessedPhoto, storage: Storage | None = None) -> PhotoKeys:
    """Write original, display copy and thumbnail. On any failure, remove what was written."""
    return _store(upload, photo.extension, photo.mime,
                  {"display_key": photo.display, "thumb_key": photo.thumb}, photo.output_mime, storage)


def store_photo_preview(upload: UploadInfo, preview: PhotoPreview, storage: Storage | None = None) -> PhotoKeys:
    """Write the original, the thumbnail and, when the original is its own display copy, that;
    otherwise the display key is reserved for make_display_copy."""
    copies = {"thumb_key": preview.thumb}
    if preview.display is not None:
        copies["display_key"] = preview.display
    return _store(upload, preview.extension, preview.mime, copies, preview.output_mime, storage)


def _store(upload: UploadInfo, extension: str, mime: str, copies: dict[str, bytes], output_mime: str,
           storage: Storage | None) -> PhotoKeys:
    """The private original, then each copy under its key; on any failure, remove all of them."""
    storage = storage or get_storage()
    keys = new_photo_keys(extension)
    try:
        with upload.open() as original:
            storage.put(keys.original_key, original, mime)
        for field, data in copies.items():
            storage.put(getattr(keys, field), data, output_mime)
    except BaseException:
        delete_photo_files([keys.original_key, *(getattr(keys, field) for field in copies)], storage)
        raise
    return keys


def queue_display_copy(photo_id: int) -> None:
    """In the upload's transaction: mark the display copy pending and record the job (outbox)."""
    from app.extensions import db
    from app.media.models import PendingDisplayCopy
    from app.outbox import publish

    db.session.add(PendingDisplayCopy(photo_id=photo_id))
    publish("photo.display", {"photo_id": photo_id}, dedup_key=f"photo.display:{photo_id}")


def make_display_copy(photo_id: int) -> str:
    """Job: make and store the display copy of an accepted photo. Idempotent: a photo without a
    pending row is done (or gone); two runs at once write the same object under the same key."""
    from sqlalchemy import delete

    from app.extensions import db
    from app.media.models import PendingDisplayCopy
    from app.models.photo import Photo

    photo = db.session.get(Photo, photo_id)
    pending = db.session.get(PendingDisplayCopy, photo_id)
    original_key, display_key = (photo.original_key, photo.display_key) if photo else (None, None)
    db.session.rollback()  # no transaction held while decoding
    if photo is None or pending is None:
        return "skipped"
    storage = get_storage()
    with storage.open(original_key) as original:
        display, _size = display_copy(original)
    storage.put(display_key, display, OUTPUT_MIME)
    db.session.execute(delete(PendingDisplayCopy).where(PendingDisplayCopy.photo_id == photo_id))
    db.session.commit()
    return "done"


def ensure_display_copies(photos) -> int:
    """For a job about to hand display URLs out (moderation's media check): make any display copy
    still pending, now, inside the caller's transaction (flush only; the caller commits). The
    `photo.display` jobs for them then find nothing to do. Returns how many were made."""
    from sqlalchemy import delete

    from app.extensions import db
    from app.media.models import PendingDisplayCopy

    photos = list(photos)
    pending = pending_display_ids(p.id for p in photos)
    storage = get_storage()
    for photo in photos:
        if photo.id in pending:
            with storage.open(photo.original_key) as original:
                display, _size = display_copy(original)
            storage.put(photo.display_key, display, OUTPUT_MIME)
    if pending:
        db.session.execute(delete(PendingDisplayCopy).where(PendingDisplayCopy.photo_id.in_(pending)))
        db.session.flush()
    return len(pending)


def pending_display_ids(photo_ids) -> set[int]:
    """Which of these photos still wait for their display copy."""
    from sqlalchemy import select

    from app.extensions import db
    from app.media.models import PendingDisplayCopy

    ids = list(photo_ids)
    if not ids:
        return set()
    return set(db.session.scalars(select(PendingDisplayCopy.photo_id).where(PendingDisplayCopy.photo_id.in_(ids))))


def delete_photo_files(keys, storage: Storage | None = None) -> None:
    """Best effort, idempotent: for rolling back a photo whose database row did not commit."""
    storage = storage or get_storage()
    for key in (keys.all() if isinstance(keys, PhotoKeys) else keys):
        try:
            storage.delete(key)
        except Exception:  # noqa: BLE001 - cleanup must not mask the original error
            log.warning("media cleanup failed", extra={"key": key}, exc_info=True)


def photo_urls(display_key: str, thumb_key: str, ttl: int | None = None, storage: Storage | None = None) -> dict:
    """{"url", "thumb_url"}: signed, expiring (MEDIA_URL_TTL seconds by default)."""
    storage = storage or get_storage()
    ttl = ttl or current_app.config.get("MEDIA_URL_TTL", 3600)
    return {"url": storage.signed_url(display_key, ttl), "thumb_url": storage.signed_url(thumb_key, ttl)}
