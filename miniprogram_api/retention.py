"""Retention limits for residents' photos and precise locations (periodic purge).

A tip's photos and its exact point are kept PHOTO_RETENTION_DAYS / LOCATION_RETENTION_DAYS from
its submission (0: no limit), and never while anything still needs them: a tip not yet decided,
or one whose hazard ticket is not closed. Then:
- photos: rows and files deleted (the tip stays, without pictures);
- location: the point rounded to 3 decimals (about 100 m: the grid and town stay right), the
  address and the photos' EXIF position dropped. The hazard keeps its own point: that is the
  public-safety record, not the resident's whereabouts.
Work goes in batches, each committed on its own; a run that stops halfway resumes next time.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import Numeric, cast, delete, func, or_, select, update

from app.extensions import db
from app.hazards.models import Hazard
from app.media.photos import delete_photo_files
from app.models.base import utcnow
from app.models.photo import Photo
from app.models.tip import OPEN_TIP_STATUSES, Tip

log = logging.getLogger(__name__)

COARSE_DECIMALS = 3  # ~110 m of latitude, ~100 m of longitude at Dongguan


def apply_retention(now: datetime | None = None, batch: int = 500) -> dict[str, int]:
    """Periodic: purge what is past its retention. Returns {"photos": n, "locations": n}."""
    now = now or utcnow()
    done = {"photos": purge_expired_photos(now, batch), "locations": purge_expired_locations(now, batch)}
    if any(done.values()):
        log.info("retention purge", extra=done)
    return done


def settled_tips_before(cutoff: datetime):
    """Ids of tips submitted before `cutoff` that nothing needs any more: decided, and with no
    hazard ticket or a closed one."""
    return (select(Tip.id).outerjoin(Hazard, Hazard.id == Tip.hazard_id)
            .where(Tip.created_at < cutoff, Tip.status.notin_(OPEN_TIP_STATUSES),
                   or_(Tip.hazard_id.is_(None), Hazard.status == "closed")))


def _cutoff(setting: str, now: datetime) -> datetime | None:
    days = int(current_app.config[setting])
    return now - timedelta(days=days) if days > 0 else None


def purge_expired_photos(now: datetime, batch: int = 500) -> int:
    cutoff = _cutoff("PHOTO_RETENTION_DAYS", now)
    if cutoff is None:
        return 0
    total = 0
    while True:
        ids = list(db.session.scalars(
            select(Photo.id).where(Photo.resident_id.isnot(None), Photo.tip_id.in_(settled_tips_before(cutoff)))
            .order_by(Photo.id).limit(batch)))
        if not ids:
            db.session.rollback()
            return total
        rows = db.session.execute(delete(Photo).where(Photo.id.in_(ids))
                                  .returning(Photo.original_key, Photo.display_key, Photo.thumb_key)).all()
        db.session.commit()  # rows first: a file delete that fails only leaves an unreachable object
        delete_photo_files([key for row in rows for key in row])
        total += len(rows)
        if len(ids) < batch:
            return total


def purge_expired_locations(now: datetime, batch: int = 500) -> int:
    cutoff = _cutoff("LOCATION_RETENTION_DAYS", now)
    if cutoff is None:
        return 0
    total = 0
    while True:
        ids = list(db.session.scalars(
            settled_tips_before(cutoff).where(Tip.location_purged_at.is_(None)).order_by(Tip.id).limit(batch)))
        if not ids:
            db.session.rollback()
            return total
        # round() takes numeric on PostgreSQL (not double precision); the column casts it back
        db.session.execute(update(Tip).where(Tip.id.in_(ids), Tip.location_purged_at.is_(None)).values(
            lat=func.round(cast(Tip.lat, Numeric), COARSE_DECIMALS),
            lng=func.round(cast(Tip.lng, Numeric), COARSE_DECIMALS),
            address=None, location_purged_at=now).execution_options(synchronize_session=False))
        db.session.execute(update(Photo).where(Photo.tip_id.in_(ids)).values(exif_lat=None, exif_lng=None)
                           .execution_options(synchronize_session=False))
        db.session.commit()
        total += len(ids)
        if len(ids) < batch:
            return total
