"""Reading tickets, and the views each audience gets.

Privacy: `public_ticket` (webhooks, Open311) and `department_ticket` (department API and console)
are built field by field from the ticket; they never touch Resident, and name tips by nothing but
their count. Staff views add tip ids (moderators already see tips). Photos leave only as signed,
expiring URLs of the EXIF-free copies.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, or_, select

from app.errors import NotFound
from app.extensions import db
from app.ids import parse_cursor, parse_id
from app.hazards.lifecycle import allowed_moves, status_label
from app.hazards.models import OPEN_HAZARD_STATUSES, Category, Department, Hazard, HazardEvent, HazardTip
from app.models.photo import Photo

MAX_PAGE = 100


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def hazard_brief(hazard_id: int) -> dict | None:
    """{"id", "status", "status_label"} for the residents' tip view; None when there is no ticket."""
    if hazard_id is None:
        return None
    hazard = db.session.get(Hazard, hazard_id)
    if hazard is None:
        return None
    return {"id": hazard.id, "status": hazard.status, "status_label": status_label(hazard.status)}


def get_hazard(hazard_id: int, department_code: str | None = None) -> Hazard:
    """The ticket, or 404; with department_code, only that department's (another's is 404 too)."""
    hazard = db.session.get(Hazard, hazard_id)
    if hazard is None or (department_code is not None and hazard.department.code != department_code):
        raise NotFound("工单不存在", code="hazard_not_found")
    return hazard


def list_hazards(*, department: str | None = None, status: str | None = None, grid: str | None = None,
                 town: str | None = None, category: str | None = None, overdue: bool | None = None,
                 cursor: str | None = None, limit: int = 20) -> tuple[list[Hazard], str | None]:
    """Newest first; `cursor` is the last id of the previous page. status may be a comma list or "open"."""
    limit = max(1, min(int(limit or 20), MAX_PAGE))
    query = select(Hazard).order_by(Hazard.id.desc()).limit(limit + 1)
    if department:
        # by id, not by a join on the code: the planner then walks (department_id, id) backwards and
        # stops after a page (1,936 → 107 pages for a small department's open tickets at 1 M tickets)
        department_id = db.session.scalar(select(Department.id).where(Department.code == department))
        if department_id is None:
            return [], None
        query = query.where(Hazard.department_id == department_id)
    if status:
        statuses = OPEN_HAZARD_STATUSES if status == "open" else tuple(s for s in status.split(",") if s)
        query = query.where(Hazard.status.in_(statuses))
    if grid:  # a grid code, or its numeric id
        grid_id = parse_id(grid)
        query = query.where(or_(Hazard.grid_code == grid, Hazard.grid_id == grid_id) if grid_id is not None
                            else Hazard.grid_code == grid)
    if town:
        query = query.where(Hazard.town_code == town)
    if category:
        query = query.where(Hazard.category_code == category)
    if overdue is not None:
        query = query.where(Hazard.overdue.is_(bool(overdue)))
    after = parse_cursor(cursor)
    if after is not None:
        query = query.where(Hazard.id < after)
    rows = list(db.session.scalars(query).unique())
    next_cursor = str(rows[limit - 1].id) if len(rows) > limit else None
    return rows[:limit], next_cursor


def list_overdue(limit: int = 100) -> list[Hazard]:
    """Flagged overdue tickets, longest overdue first (the supervisors' list)."""
    return list(db.session.scalars(select(Hazard).where(Hazard.overdue.is_(True),
                                                        Hazard.status.in_(OPEN_HAZARD_STATUSES))
                                   .order_by(Hazard.due_at, Hazard.id).limit(limit)).unique())


def _category(code: str) -> Category | None:
    return db.session.scalar(select(Category).where(Category.code == code))


def _category_brief(code: str) -> dict:
    category = _category(code)
    return {"code": code, "name": category.name if category else code,
            "group": category.group if category else None}


def public_ticket(hazard: Hazard, category: dict | None = None) -> dict:
    """The ticket as webhooks and outside systems see it: no reporter, no tip ids."""
    return {
        "id": hazard.id,
        "status": hazard.status,
        "status_label": status_label(hazard.status),
        "category": category or _category_brief(hazard.category_code),
        "severity": hazard.severity,
        "department": hazard.department.to_brief(),
        "grid": {"id": hazard.grid_id, "code": hazard.grid_code} if hazard.grid_code else None,
        "town_code": hazard.town_code,
        "location": {"lat": hazard.lat, "lng": hazard.lng, "coord": "wgs84", "address": hazard.address},
        "description": hazard.description,
        "tip_count": hazard.tip_count,
        "created_at": iso(hazard.created_at),
        "updated_at": iso(hazard.updated_at),
        "status_changed_at": iso(hazard.status_changed_at),
        "due_at": iso(hazard.due_at),
        "overdue": hazard.overdue,
        "resolution_note": hazard.resolution_note,
        "return_reason": hazard.return_reason,
        "reopen_count": hazard.reopen_count,
        "closed_at": iso(hazard.closed_at),
    }


def department_ticket(hazard: Hazard, *, with_history: bool = True) -> dict:
    """What a department sees: the public view, the tips' photos, its resolution photos, history."""
    view = public_ticket(hazard)
    view["photos"] = tip_photos(hazard.id)
    view["resolution_photos"] = photo_views(hazard.resolution_photo_ids or [])
    view["allowed"] = allowed_moves(hazard.status)
    if with_history:
        view["history"] = history(hazard.id)
    return view


def department_tickets(hazards: list[Hazard]) -> list[dict]:
    """department_ticket(with_history=False) for a page of tickets in three queries (categories,
    tips' photos, resolution photos), not two or three per ticket."""
    if not hazards:
        return []
    codes = {h.category_code for h in hazards}
    categories = {c.code: {"code": c.code, "name": c.name, "group": c.group}
                  for c in db.session.scalars(select(Category).where(Category.code.in_(codes)))}
    photos = _tip_photos_of([h.id for h in hazards])
    resolution = photo_views(sorted({i for h in hazards for i in (h.resolution_photo_ids or [])}))
    by_id = {view["id"]: view for view in resolution}
    views = []
    for h in hazards:
        view = public_ticket(h, categories.get(h.category_code)
                             or {"code": h.category_code, "name": h.category_code, "group": None})
        view["photos"] = photos.get(h.id, [])
        view["resolution_photos"] = [by_id[i] for i in (h.resolution_photo_ids or []) if i in by_id]
        view["allowed"] = allowed_moves(h.status)
        views.append(view)
    return views


def staff_tickets(hazards: list[Hazard]) -> list[dict]:
    """staff_ticket(with_history=False) for a page: department_tickets plus the tip links in one query."""
    views = department_tickets(hazards)
    links: dict[int, list[dict]] = {h.id: [] for h in hazards}
    if hazards:
        for hazard_id, t, r, f in db.session.execute(
                select(HazardTip.hazard_id, HazardTip.tip_id, HazardTip.relation, HazardTip.first_valid)
                .where(HazardTip.hazard_id.in_(list(links))).order_by(HazardTip.hazard_id, HazardTip.id)):
            links[hazard_id].append({"tip_id": t, "relation": r, "first_valid": f})
    for h, view in zip(hazards, views):
        view["tips"] = links[h.id]
        view["first_tip_id"] = h.first_tip_id
    return views


def staff_ticket(hazard: Hazard, *, with_history: bool = True) -> dict:
    view = department_ticket(hazard, with_history=with_history)
    links = db.session.execute(select(HazardTip.tip_id, HazardTip.relation, HazardTip.first_valid)
                               .where(HazardTip.hazard_id == hazard.id).order_by(HazardTip.id)).all()
    view["tips"] = [{"tip_id": t, "relation": r, "first_valid": f} for t, r, f in links]
    view["first_tip_id"] = hazard.first_tip_id
    return view


def history(hazard_id: int) -> list[dict]:
    events = db.session.scalars(select(HazardEvent).where(HazardEvent.hazard_id == hazard_id)
                                .order_by(HazardEvent.id)).all()
    from app.display import actor_name

    return [{"id": e.uid, "kind": e.kind, "from_status": e.from_status, "to_status": e.to_status,
             "actor_type": e.actor_type, "department": e.department_code,
             "actor_name": actor_name(e.actor_type, e.actor_id, e.department_code), "note": e.note,
             "photo_ids": list(e.photo_ids or []), "at": iso(e.at)} for e in events]


def tip_photos(hazard_id: int, limit: int = 18) -> list[dict]:
    """Photos of the ticket's valid tips (duplicates left out), oldest tip first."""
    tip_ids = select(HazardTip.tip_id).where(HazardTip.hazard_id == hazard_id, HazardTip.relation != "duplicate")
    photos = db.session.scalars(select(Photo).where(Photo.tip_id.in_(tip_ids))
                                .order_by(Photo.tip_id, Photo.position, Photo.id).limit(limit)).all()
    return [_photo_view(p) for p in photos]


def _tip_photos_of(hazard_ids: list[int], limit: int = 18) -> dict[int, list[dict]]:
    """tip_photos for several tickets in one query (the first `limit` of each, same order)."""
    rank = func.row_number().over(partition_by=HazardTip.hazard_id,
                                  order_by=(Photo.tip_id, Photo.position, Photo.id)).label("rank")
    ranked = (select(HazardTip.hazard_id.label("hazard_id"), Photo.id.label("photo_id"), rank)
              .join(Photo, Photo.tip_id == HazardTip.tip_id)
              .where(HazardTip.hazard_id.in_(hazard_ids), HazardTip.relation != "duplicate").subquery())
    rows = db.session.execute(select(ranked.c.hazard_id, Photo).join(Photo, Photo.id == ranked.c.photo_id)
                              .where(ranked.c.rank <= limit).order_by(ranked.c.hazard_id, ranked.c.rank)).all()
    out: dict[int, list[dict]] = {}
    for hazard_id, photo in rows:
        out.setdefault(hazard_id, []).append(_photo_view(photo))
    return out


def photo_views(photo_ids: list[int]) -> list[dict]:
    if not photo_ids:
        return []
    photos = {p.id: p for p in db.session.scalars(select(Photo).where(Photo.id.in_(list(photo_ids))))}
    return [_photo_view(photos[i]) for i in photo_ids if i in photos]


def _photo_view(photo: Photo) -> dict:
    from app.media.photos import photo_urls

    return {"id": photo.id, **photo_urls(photo.display_key, photo.thumb_key)}
