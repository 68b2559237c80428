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

from app.media.processing import ProcessedPhoto, UploadInfo
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
    storage = storage or get_storage()
    keys = new_photo_keys(photo.extension)
    written = []
    try:
        with upload.open() as original:
            storage.put(keys.original_key, original, photo.mime)
        written.append(keys.original_key)
        storage.put(keys.display_key, photo.display, photo.output_mime)
        written.append(keys.display_key)
        storage.put(keys.thumb_key, photo.thumb, photo.output_mime)
    except BaseException:
        delete_photo_files(written + [keys.thumb_key, keys.display_key], storage)
        raise
    return keys


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
