"""Tickets and their tips: open a ticket for a tip, add a tip to a ticket, find open tickets nearby.

A ticket remembers every tip that pointed at it (HazardTip) and marks the first valid reporter's
tip; nothing here copies a reporter's identity onto the ticket.
"""
from __future__ import annotations

import math

from sqlalchemy import select, update

from app.errors import NotFound, Unprocessable
from app.extensions import db
from app.geo.coords import haversine_m
from app.hazards.catalogue import get_category, get_department
from app.hazards.lifecycle import Actor, deadline_for, record_hazard_event, transition_hazard
from app.hazards.models import OPEN_HAZARD_STATUSES, Hazard, HazardTip
from app.models.base import utcnow
from app.models.tip import Tip
from app.tips import record_tip_event

_M_PER_DEG_LAT = 111_320.0


def find_open_hazards_near(category_code: str | None, lat: float, lng: float, radius_m: float | None = None,
                           limit: int = 5) -> list[Hazard]:
    """Open tickets of this category (None: any) within radius_m (default: the category's dedup
    radius, else 100 m) of a WGS-84 point, nearest first. A bounding box in SQL narrows, the
    haversine distance decides."""
    if radius_m is None:
        category = get_category(category_code) if category_code else None
        radius_m = category.dedup_radius_m if category else 100.0
    if not (math.isfinite(lat) and math.isfinite(lng)) or radius_m <= 0:
        return []
    d_lat = radius_m / _M_PER_DEG_LAT
    d_lng = radius_m / (_M_PER_DEG_LAT * max(math.cos(math.radians(lat)), 0.01))
    rows = db.session.scalars(
        select(Hazard).where(Hazard.status.in_(OPEN_HAZARD_STATUSES),
                             Hazard.lat.between(lat - d_lat, lat + d_lat),
                             Hazard.lng.between(lng - d_lng, lng + d_lng),
                             *([Hazard.category_code == category_code] if category_code else []))
    ).all()
    near = [(haversine_m((lat, lng), (h.lat, h.lng)), h.id, h) for h in rows]
    near = [item for item in near if item[0] <= radius_m]
    near.sort(key=lambda item: (item[0], item[1]))
    return [h for _, _, h in near[:limit]]


def open_hazard_for_tip(tip: Tip, category_code: str, severity: int, *, department_code: str | None = None,
                        actor: Actor | None = None) -> Hazard:
    """A new ticket for an approved tip: category → department (unless overridden), point → grid.

    Dispatched to that department at once (HAZARD_AUTO_DISPATCH, on by default): routing is the
    catalogue's job, so a supervisor only steps in when a department returns a ticket.
    """
    from flask import current_app

    from app.geo.index import locate

    category = get_category(category_code)
    if category is None:
        raise Unprocessable("隐患类别不存在", code="unknown_category", fields={"category": [category_code]})
    department = category.department
    if department_code and department_code != department.code:
        department = get_department(department_code)
        if department is None or not department.active:
            raise Unprocessable("部门不存在", code="unknown_department", fields={"department": [department_code]})
    hit = locate(tip.lat, tip.lng)
    now = utcnow()
    hazard = Hazard(status="reported", category_code=category.code, department_id=department.id,
                    severity=int(severity or 1), lat=tip.lat, lng=tip.lng, address=tip.address,
                    grid_id=hit.grid_id if hit else tip.grid_id, grid_code=hit.grid_code if hit else tip.grid_code,
                    town_code=hit.town_code if hit else tip.town_code, description=tip.description or "",
                    first_tip_id=tip.id, tip_count=0, status_changed_at=now, updated_at=now, created_at=now)
    hazard.department = department
    hazard.due_at = deadline_for(hazard, "reported", now)
    db.session.add(hazard)
    db.session.flush()
    _link(hazard, tip, "origin", first_valid=True)
    record_hazard_event(hazard, "created", actor, to_status="reported")
    if current_app.config.get("HAZARD_AUTO_DISPATCH", True):
        transition_hazard(hazard.id, "dispatched", Actor.system())
    return hazard


def join_hazard(hazard: Hazard, tip: Tip, severity: int | None = None, *, actor: Actor | None = None) -> Hazard:
    """An approved tip about a hazard that already has an open ticket: record it there."""
    first = not db.session.scalar(select(HazardTip.id).where(HazardTip.hazard_id == hazard.id,
                                                             HazardTip.first_valid.is_(True)))
    _link(hazard, tip, "joined", first_valid=first)
    if severity and int(severity) > hazard.severity:
        db.session.execute(update(Hazard).where(Hazard.id == hazard.id, Hazard.severity < int(severity))
                           .values(severity=int(severity)).execution_options(synchronize_session=False))
        db.session.refresh(hazard)
    record_hazard_event(hazard, "tip_added", actor, to_status=hazard.status)
    return hazard


def attach_duplicate_tip(tip: Tip, hazard_id: int) -> Hazard:
    """Moderation judged `tip` a duplicate of this ticket: record it (no reward, no notice)."""
    hazard = db.session.get(Hazard, hazard_id)
    if hazard is None:
        raise NotFound("工单不存在", code="hazard_not_found")
    existing = db.session.scalar(select(HazardTip).where(HazardTip.tip_id == tip.id))
    if existing is not None and existing.hazard_id == hazard.id:  # decided twice (retry): already recorded
        return hazard
    _link(hazard, tip, "duplicate", first_valid=False)  # (moves a link left by a reversed decision)
    record_hazard_event(hazard, "tip_added", None, to_status=hazard.status)
    return hazard


def detach_tip(tip: Tip) -> int | None:
    """Take a tip off its ticket (moderation reversed the decision that put it there); returns the
    ticket id it was on. The ticket itself stays: it may have other tips, and its history is kept."""
    link = db.session.scalar(select(HazardTip).where(HazardTip.tip_id == tip.id))
    tip.hazard_id = None
    if link is None:
        return None
    hazard_id = link.hazard_id
    db.session.delete(link)
    _count_tip(hazard_id, -1)
    db.session.flush()
    hazard = db.session.get(Hazard, hazard_id)
    db.session.refresh(hazard)
    record_hazard_event(hazard, "tip_removed", None, to_status=hazard.status)
    return hazard_id


def _count_tip(hazard_id: int, delta: int) -> None:
    db.session.execute(update(Hazard).where(Hazard.id == hazard_id)
                       .values(tip_count=Hazard.tip_count + delta, updated_at=utcnow())
                       .execution_options(synchronize_session=False))


def linked_tip_ids(hazard_id: int) -> list[tuple[int, str]]:
    """(tip_id, relation) of every tip on the ticket, oldest first."""
    rows = db.session.execute(select(HazardTip.tip_id, HazardTip.relation)
                              .where(HazardTip.hazard_id == hazard_id).order_by(HazardTip.id)).all()
    return [(tip_id, relation) for tip_id, relation in rows]


def _link(hazard: Hazard, tip: Tip, relation: str, *, first_valid: bool) -> HazardTip:
    from app.hazards.lifecycle import status_label

    link = db.session.scalar(select(HazardTip).where(HazardTip.tip_id == tip.id))
    if link is None:
        link = HazardTip(hazard_id=hazard.id, tip_id=tip.id, relation=relation, first_valid=first_valid)
        db.session.add(link)
        _count_tip(hazard.id, +1)
    else:  # recorded before as a duplicate, the decision reversed, now decided again
        if link.hazard_id != hazard.id:
            _count_tip(link.hazard_id, -1)
            _count_tip(hazard.id, +1)
        link.hazard_id, link.relation, link.first_valid = hazard.id, relation, first_valid
    tip.hazard_id = hazard.id
    db.session.flush()
    db.session.refresh(hazard)
    if relation != "origin":  # the origin tip's timeline gets the dispatch step itself
        record_tip_event(tip.id, "hazard_linked",
                         f"已并入隐患工单 #{hazard.id}（当前状态：{status_label(hazard.status)}）")
    return link
