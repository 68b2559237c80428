"""What a resident sends: photos (one per request) and tips (with an Idempotency-Key).

Both functions only flush; the view commits once, at the edge. A photo's files are written before
its row, so the view removes them again when the commit fails (`discard_photo_files`).
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import BinaryIO

from sqlalchemy import delete, exists, select, update

from app.errors import Conflict, NotFound, Unauthorized, Unprocessable
from app.extensions import db
from app.geo.coords import to_wgs84
from app.geo.index import in_service_area
from app.hazards.catalogue import get_category
from app.media.models import PendingDisplayCopy
from app.media.photos import PhotoKeys, delete_photo_files, queue_display_copy, store_photo_preview
from app.media.processing import inspect_upload, preview_photo
from app.models.base import utcnow
from app.models.photo import Photo
from app.models.resident import Resident
from app.models.tip import OPEN_TIP_STATUSES, Tip
from app.outbox import publish
from app.tips import change_tip_status, record_tip_event
from miniprogram_api.limits import refuse_over_daily_limit, tips_sent_today


class IdempotencyConflict(Conflict):
    status, code, message = 409, "idempotency_conflict", "该请求标识已用于另一条不同的报料，请勿重复使用"


# --- photos -----------------------------------------------------------------------------------

def upload_photo(resident_id: int, stream: BinaryIO) -> tuple[Photo, PhotoKeys, bool]:
    """Check and store one uploaded photo for `resident_id`; 413/415/422 on bad files.

    The upload is spooled to a private temp file (64 KB at a time, hashed as it goes) and removed
    whatever happens; nothing is stored for a refused file. In the request: the real type, size and
    dimension limits, the whole-file decode check (at thumbnail scale), EXIF, sha256, pHash, the
    private original and the thumbnail, and the display copy when the original is its own (an
    upright sRGB JPEG ≤ 2048 px, metadata cut out: the mini-program's compressed photos). Any
    other display copy is made by the `photo.display` job (docs/PERFORMANCE.md: that split is
    what lets intake keep up).

    Returns (photo, keys, display_ready).
    """
    with inspect_upload(stream) as upload:
        preview = preview_photo(upload)
        keys = store_photo_preview(upload, preview)
    exif = preview.exif
    photo = Photo(
        resident_id=resident_id, sha256=preview.sha256, phash=preview.phash,
        width=preview.width, height=preview.height, mime=preview.mime,
        size_bytes=preview.size_bytes, original_key=keys.original_key,
        display_key=keys.display_key, thumb_key=keys.thumb_key,
        exif_taken_at=exif.taken_at,
        exif_lat=exif.gps[0] if exif.gps else None, exif_lng=exif.gps[1] if exif.gps else None,
    )
    db.session.add(photo)
    try:
        db.session.flush()
        if preview.display is None:
            queue_display_copy(photo.id)
    except BaseException:
        delete_photo_files(keys)
        raise
    return photo, keys, preview.display is not None


def discard_photo_files(keys: PhotoKeys) -> None:
    delete_photo_files(keys)


# --- tips -------------------------------------------------------------------------------------

def request_fingerprint(body: dict) -> str:
    """SHA-256 of the validated body, canonical JSON: the same tip sent twice hashes the same."""
    location = body["location"]
    canonical = {
        "category": body["category"], "description": body.get("description") or "",
        "location": {"lat": float(location["lat"]), "lng": float(location["lng"]),
                     "coord": location.get("coord") or "gcj02", "address": location.get("address")},
        "photo_ids": list(body["photo_ids"]),
    }
    return hashlib.sha256(json.dumps(canonical, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def find_tip_by_key(resident_id: int, key: str) -> Tip | None:
    return db.session.scalar(select(Tip).where(Tip.resident_id == resident_id, Tip.idempotency_key == key))


def replay_tip(existing: Tip, fingerprint: str) -> Tip:
    """The same key again: the same tip if the body matches, else 409."""
    if existing.request_hash != fingerprint:
        raise IdempotencyConflict()
    return existing


def submit_tip(resident_id: int, idempotency_key: str, body: dict) -> tuple[Tip, bool, dict | None]:
    """Create the tip (status received) and queue its intake. Flushes only.

    Returns (tip, created, answer): `answer` is the serialized new tip, built from what this
    function already holds (no re-reads); None for a replay. A retried request with the same key
    and body returns the first tip (created=False).
    """
    fingerprint = request_fingerprint(body)
    # One submission per resident at a time: the key check and the daily count stay true until commit.
    closing = db.session.execute(select(Resident.closing_at).where(Resident.id == resident_id).with_for_update()
                                 ).scalar_one()
    if closing is not None:  # the account closed while this request was on its way
        raise Unauthorized("账号已注销", code="token_invalid")
    now = utcnow()
    # A new statement after the lock (a fresh snapshot under READ COMMITTED): sees a tip that a
    # concurrent request with the same key committed while this one waited.
    existing_id, sent_today = db.session.execute(select(
        select(Tip.id).where(Tip.resident_id == resident_id, Tip.idempotency_key == idempotency_key)
        .scalar_subquery(),
        tips_sent_today(resident_id, now),
    )).one()
    if existing_id is not None:
        return replay_tip(db.session.get(Tip, existing_id), fingerprint), False, None

    refuse_over_daily_limit(sent_today, now)
    category = active_category(body["category"])
    if category is None:
        raise Unprocessable("请选择有效的隐患类别", code="unknown_category", fields={"category": ["未知的隐患类别"]})
    location = body["location"]
    lat, lng = to_wgs84(location["lat"], location["lng"], location.get("coord") or "gcj02")
    if not in_service_area(lat, lng):
        raise Unprocessable("该位置不在服务范围内（仅限东莞市）", code="outside_service_area",
                            fields={"location": ["位置不在服务范围内"]})
    photo_ids = list(body["photo_ids"])
    if len(set(photo_ids)) != len(photo_ids):
        raise Unprocessable("照片重复", code="duplicate_photo_ids", fields={"photo_ids": ["同一张照片只能提交一次"]})

    tip = Tip(resident_id=resident_id, idempotency_key=idempotency_key, request_hash=fingerprint,
              category=category.code, description=(body.get("description") or "").strip(),
              lat=lat, lng=lng, coord_in=location.get("coord") or "gcj02", address=location.get("address"),
              status="received", status_changed_at=now, priority=category.severity_weight,
              created_at=now)
    db.session.add(tip)
    db.session.flush()
    photos = claim_photos(tip.id, resident_id, photo_ids)
    record_tip_event(tip.id, "received", "报料已提交，等待审核", actor_type="resident", actor_id=resident_id)
    publish("tip.intake", {"tip_id": tip.id}, dedup_key=f"tip.intake:{tip.id}")
    from miniprogram_api.queries import serialize_tip

    return tip, True, serialize_tip(tip, {category.code: category.name}, photos)


@dataclass(frozen=True)
class CategoryFacts:
    code: str
    name: str
    severity_weight: int


CATEGORY_CACHE_SECONDS = 60.0
_category_cache: dict[str, tuple[float, CategoryFacts]] = {}


def active_category(code: str) -> CategoryFacts | None:
    """An active category's facts, cached per process for a minute (the catalogue changes with
    `flask init`, rarely; a deactivated category may be accepted for up to a minute after)."""
    cached = _category_cache.get(code)
    if cached and cached[0] > time.monotonic():
        return cached[1]
    category = get_category(code, active_only=True)
    if category is None:
        _category_cache.pop(code, None)
        return None
    facts = CategoryFacts(category.code, category.name, category.severity_weight)
    _category_cache[code] = (time.monotonic() + CATEGORY_CACHE_SECONDS, facts)
    return facts


def claim_photos(tip_id: int, resident_id: int, photo_ids: list[int]) -> list:
    """Attach the photos to the tip, compare-and-set: only the caller's photos no tip holds yet.

    Two tips racing for one photo: the second UPDATE matches no row for it and the tip is refused.
    Returns rows (id, display_key, thumb_key, pending) in the tip's order.
    """
    claimed_rows = []
    for position, photo_id in enumerate(photo_ids):
        row = db.session.execute(
            update(Photo)
            .where(Photo.id == photo_id, Photo.resident_id == resident_id, Photo.tip_id.is_(None))
            .values(tip_id=tip_id, position=position)
            .returning(Photo.id, Photo.display_key, Photo.thumb_key,
                       exists().where(PendingDisplayCopy.photo_id == Photo.id).label("pending"))
            .execution_options(synchronize_session=False)
        ).first()
        if row is None:
            raise Unprocessable("照片不存在或已被其他报料使用，请重新上传", code="photo_unavailable",
                                fields={"photo_ids": [f"照片 {photo_id} 不可用"]})
        claimed_rows.append(row)
    return claimed_rows


def withdraw_tip(resident_id: int, tip_id: int) -> Tip:
    """Withdraw an own tip that no moderator has decided yet; 404 for others' tips, 409 after a decision."""
    from miniprogram_api.queries import get_own_tip

    tip = get_own_tip(resident_id, tip_id)
    if tip.status == "withdrawn":
        return tip  # a retried withdraw is not an error
    if not change_tip_status(tip.id, OPEN_TIP_STATUSES, "withdrawn", "您已撤回该报料",
                             actor_type="resident", actor_id=resident_id):
        raise Conflict("该报料已处理，不能撤回", code="tip_already_decided")
    db.session.refresh(tip)
    return tip


# --- housekeeping -----------------------------------------------------------------------------

ORPHAN_PHOTO_AGE = timedelta(hours=24)


def purge_orphan_photos(now=None, limit: int = 500) -> int:
    """Periodic: photos a resident uploaded but never put in a tip, older than a day, go (row
    first, then files; a file delete that fails only leaves an unreachable object)."""
    cutoff = (now or utcnow()) - ORPHAN_PHOTO_AGE
    rows = db.session.execute(
        select(Photo.id, Photo.original_key, Photo.display_key, Photo.thumb_key)
        .where(Photo.tip_id.is_(None), Photo.resident_id.isnot(None), Photo.created_at < cutoff)
        .order_by(Photo.id).limit(limit)
    ).all()
    if not rows:
        db.session.rollback()
        return 0
    ids = [row.id for row in rows]
    # Compare-and-set again: a photo claimed by a tip since the select stays.
    deleted = db.session.execute(
        delete(Photo).where(Photo.id.in_(ids), Photo.tip_id.is_(None)).returning(Photo.id)).scalars().all()
    db.session.commit()
    gone = set(deleted)
    for row in rows:
        if row.id in gone:
            delete_photo_files([row.original_key, row.display_key, row.thumb_key])
    return len(gone)
