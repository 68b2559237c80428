"""Residents, photos and tips for moderation tests, made the way the residents' API makes them
(real photo processing and storage; the intake published through the outbox)."""
from __future__ import annotations

import io
import itertools
import uuid

from app.extensions import db
from app.models.photo import Photo
from app.models.resident import Resident
from app.models.tip import Tip

_serial = itertools.count(1)
# A point inside the demo grids (Dongguan, WGS-84).
HERE = (23.0207, 113.7518)


def make_resident(openid: str | None = None, **values) -> Resident:
    resident = Resident(openid=openid or f"o_test_{next(_serial)}_{uuid.uuid4().hex[:8]}", **values)
    db.session.add(resident)
    db.session.flush()
    return resident


def make_photo(resident: Resident, data: bytes) -> Photo:
    from app.media.photos import store_photo
    from app.media.processing import inspect_upload, process_photo

    with inspect_upload(io.BytesIO(data)) as upload:
        processed = process_photo(data)
        keys = store_photo(upload, processed)
    photo = Photo(resident_id=resident.id, sha256=processed.sha256, phash=processed.phash,
                  width=processed.width, height=processed.height, mime=processed.mime,
                  size_bytes=processed.size_bytes, original_key=keys.original_key,
                  display_key=keys.display_key, thumb_key=keys.thumb_key,
                  exif_taken_at=processed.exif.taken_at,
                  exif_lat=processed.exif.gps[0] if processed.exif.gps else None,
                  exif_lng=processed.exif.gps[1] if processed.exif.gps else None)
    db.session.add(photo)
    db.session.flush()
    return photo


def make_tip(resident: Resident, photos: list[Photo], *, category="lpg_illegal", description="楼下有人违规存放液化气瓶",
             at=HERE, status="received", publish=True, **values) -> Tip:
    from app.outbox import publish as publish_message

    tip = Tip(resident_id=resident.id, idempotency_key=uuid.uuid4().hex, request_hash=uuid.uuid4().hex,
              category=category, description=description, lat=at[0], lng=at[1], coord_in="wgs84",
              status=status, **values)
    db.session.add(tip)
    db.session.flush()
    for position, photo in enumerate(photos):
        photo.tip_id, photo.position = tip.id, position
    db.session.flush()
    if publish:
        publish_message("tip.intake", {"tip_id": tip.id}, dedup_key=f"tip.intake:{tip.id}")
    db.session.refresh(tip)
    return tip


def point_in_grid(code: str | None = None) -> tuple[float, float]:
    """(lat, lng) inside a demo grid (WGS-84)."""
    import json

    from shapely.geometry import shape
    from sqlalchemy import select

    from app.geo.models import Grid

    query = select(Grid).order_by(Grid.code).limit(1) if code is None else select(Grid).where(Grid.code == code)
    grid = db.session.scalar(query)
    point = shape(json.loads(grid.geometry)).representative_point()
    return (round(point.y, 6), round(point.x, 6))


def make_staff(username: str, roles, password: str = "correct-horse-1"):
    from app.accounts import create_staff

    user = create_staff(username, password, list(roles))
    db.session.commit()
    return user


def staff_headers(client, username: str, password: str = "correct-horse-1") -> dict:
    token = client.post("/api/staff/v1/auth/login", json={"username": username, "password": password}).json["token"]
    return {"Authorization": f"Bearer {token}"}
