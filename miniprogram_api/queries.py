"""What a resident reads: own tips (list, detail with timeline), own rewards, categories, nearby
open hazards. Every query filters by the caller's resident id: another resident's tip is a 404.

Rewards and hazards come from their areas (app.hazards.queries, rewards.queries), imported inside the
functions. While an area is not installed its part is empty (null / []); once it is, its errors
are not hidden.
"""
from __future__ import annotations

import importlib.util

from sqlalchemy import select

from app.display import REWARD_STATUS, TIP_STATUS, label
from app.errors import NotFound, Unprocessable
from app.extensions import db
from app.geo.coords import haversine_m, to_wgs84, wgs84_to_gcj02
from app.hazards.catalogue import get_category, list_categories
from app.ids import parse_cursor
from app.media.photos import pending_display_ids, photo_urls
from app.models.photo import Photo
from app.models.tip import Tip, TipEvent

STATUS_LABELS = TIP_STATUS  # one set of words with the console and the subscribe messages
NEARBY_LIMIT = 5


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # the parent package is missing
        return False


# --- cursors ----------------------------------------------------------------------------------

def parse_id_cursor(cursor: str | None) -> int | None:
    """Cursors are the last id seen, as a decimal string; anything else is a 400 (app/ids.py)."""
    return parse_cursor(cursor)


# --- tips -------------------------------------------------------------------------------------

def location_out(lat: float, lng: float, coord: str = "gcj02", address: str | None = None) -> dict:
    """A stored WGS-84 point as the mini-program wants it (gcj02 unless it asked for wgs84)."""
    if coord == "gcj02":
        lat, lng = wgs84_to_gcj02(lat, lng)
    return {"lat": round(lat, 7), "lng": round(lng, 7), "coord": coord, "address": address}


def serialize_photos(photos) -> list[dict]:
    """Signed URLs; until the display copy is made (a job, seconds) `url` is the thumbnail's."""
    photos = list(photos)
    if photos and all(hasattr(p, "pending") for p in photos):  # rows that already say (photo claim)
        pending = {p.id for p in photos if p.pending}
    else:
        pending = pending_display_ids(p.id for p in photos)
    return [{"id": p.id, **photo_urls(p.thumb_key if p.id in pending else p.display_key, p.thumb_key)}
            for p in photos]


def serialize_tip(tip: Tip, category_names: dict[str, str] | None = None, photos=None) -> dict:
    """`photos`: objects with id, display_key, thumb_key (default: the tip's, loaded)."""
    if category_names is None:
        category = get_category(tip.category)
        category_names = {tip.category: category.name} if category else {}
    names = category_names
    return {
        "id": tip.id, "status": tip.status, "status_label": STATUS_LABELS.get(tip.status, tip.status),
        "category": tip.category, "category_name": names.get(tip.category),
        "description": tip.description,
        "location": location_out(tip.lat, tip.lng, tip.coord_in or "gcj02", tip.address),
        "created_at": tip.created_at, "photos": serialize_photos(tip.photos if photos is None else photos),
    }


def category_names() -> dict[str, str]:
    return {c.code: c.name for c in list_categories(active=None)}


def list_tips(resident_id: int, status: str | None = None, cursor: str | None = None,
              limit: int = 20) -> tuple[list[dict], str | None]:
    """The caller's tips, newest first, `limit` at a time; next is the cursor for the page after."""
    before = parse_id_cursor(cursor)
    query = select(Tip).where(Tip.resident_id == resident_id)
    if status:
        query = query.where(Tip.status == status)
    if before is not None:
        query = query.where(Tip.id < before)
    tips = list(db.session.scalars(query.order_by(Tip.id.desc()).limit(limit + 1)))
    page = tips[:limit]
    names = category_names()
    items = [serialize_tip(t, names) for t in page]
    return items, (str(page[-1].id) if len(tips) > limit else None)


MAX_ID = 2 ** 31 - 1


def get_own_tip(resident_id: int, tip_id: int) -> Tip:
    tip = None
    if 0 < tip_id <= MAX_ID:  # a path id beyond the column's range is simply not found
        tip = db.session.scalar(select(Tip).where(Tip.id == tip_id, Tip.resident_id == resident_id))
    if tip is None:
        raise NotFound("找不到该报料", code="tip_not_found")
    return tip


def tip_detail(resident_id: int, tip_id: int) -> dict:
    tip = get_own_tip(resident_id, tip_id)
    detail = serialize_tip(tip)
    events = db.session.scalars(select(TipEvent).where(TipEvent.tip_id == tip.id, TipEvent.internal.is_(False))
                                .order_by(TipEvent.id))
    detail["timeline"] = [{"status": e.status, "status_label": label("timeline_event", e.status), "at": e.at,
                           "note": e.note} for e in events]
    detail["message"] = tip.decision_message if tip.status in ("rejected", "need_info", "duplicate") else None
    if tip.duplicate_of_hazard_id:
        detail["duplicate_of"] = {"hazard_id": tip.duplicate_of_hazard_id}
    elif tip.duplicate_of_tip_id:
        detail["duplicate_of"] = {"tip_id": tip.duplicate_of_tip_id}
    else:
        detail["duplicate_of"] = None
    detail["hazard"] = hazard_for_tip(tip)
    detail["reward"] = with_status_label(reward_for_tip(tip.id))
    return detail


def hazard_for_tip(tip: Tip) -> dict | None:
    if tip.hazard_id is None:
        return None
    if not _installed("app.hazards.queries"):
        return {"id": tip.hazard_id, "status": None, "status_label": None}
    from app.hazards.queries import hazard_brief

    return hazard_brief(tip.hazard_id)


def reward_for_tip(tip_id: int) -> dict | None:
    if not _installed("rewards.queries"):
        return None
    from rewards.queries import reward_for_tip as rewards_reward_for_tip

    return rewards_reward_for_tip(tip_id)


# --- rewards ----------------------------------------------------------------------------------

def list_rewards(resident_id: int, cursor: str | None = None, limit: int = 20) -> tuple[list[dict], str | None]:
    if not _installed("rewards.queries"):
        return [], None
    from rewards.queries import list_rewards_for_resident

    parse_id_cursor(cursor)  # the same id cursors as tips; refuse junk before it reaches the query
    items, next_cursor = list_rewards_for_resident(resident_id, cursor=cursor or None, limit=limit)
    items = [with_status_label(item) for item in items]  # `redpacket` / `transfer`: from the payout's channel
    return items, (str(next_cursor) if next_cursor is not None else None)


def with_status_label(item: dict | None) -> dict | None:
    """A reward in the words finance and the console use for it."""
    if item is None:
        return None
    return {**item, "status_label": REWARD_STATUS.get(item["status"], item["status"])}


# --- catalogue and hazards --------------------------------------------------------------------

def list_category_items() -> list[dict]:
    return [{"code": c.code, "name": c.name, "group": c.group, "kind": c.kind,
             "department": {"code": c.department.code, "name": c.department.name}}
            for c in list_categories(active=True)]


def nearby_hazards(category_code: str | None, lat: float, lng: float, coord: str = "gcj02") -> list[dict]:
    """Open hazards of the same category within the category's radius (no category: of any
    category within 100 m): "already reported?"."""
    category = get_category(category_code, active_only=True) if category_code else None
    if category_code and category is None:
        raise Unprocessable("请选择有效的隐患类别", code="unknown_category", fields={"category": ["未知的隐患类别"]})
    w_lat, w_lng = to_wgs84(lat, lng, coord)
    if not _installed("app.hazards.tickets"):
        return []
    from app.hazards.tickets import find_open_hazards_near

    hazards = find_open_hazards_near(category.code if category else None, w_lat, w_lng, limit=NEARBY_LIMIT)
    items = []
    for hazard in hazards[:NEARBY_LIMIT]:
        items.append({
            "id": hazard.id, "status": hazard.status, "category": hazard.category_code,
            "distance_m": int(round(haversine_m((w_lat, w_lng), (hazard.lat, hazard.lng)))),
            "location": location_out(hazard.lat, hazard.lng, coord),
            "created_at": getattr(hazard, "created_at", None),
        })
    return items
