"""Routing: the "hazard" acceptance step (order 10) of an approve decision.

decision["duplicate_of"] naming a ticket (or a tip that has one) joins that ticket while it is open;
otherwise an open ticket of the same category within the category's duplicate radius is joined
(when the moderator did not send it to another department); otherwise a new ticket is opened for
category → department (or the moderator's `department`) and point → grid and town.
The step only flushes: the approval commits once, for every step.
"""
from __future__ import annotations

import zlib

from sqlalchemy import text

from app.db import is_sqlite
from app.extensions import db
from app.hazards.lifecycle import Actor
from app.hazards.models import OPEN_HAZARD_STATUSES, Hazard
from app.hazards.notify import queue_notice
from app.hazards.tickets import find_open_hazards_near, join_hazard, open_hazard_for_tip
from app.models.tip import Tip


def route_tip(tip: Tip, decision: dict, actor=None) -> dict:
    category = decision.get("category") or tip.category
    severity = int(decision.get("severity") or tip.severity or 1)
    department_code = decision.get("department") or None
    who = Actor.for_staff(actor) if actor is not None and hasattr(actor, "role_names") else Actor.system()
    _serialize_category(category)
    hazard = _target(tip, decision.get("duplicate_of"), category, department_code)
    if hazard is not None:
        join_hazard(hazard, tip, severity, actor=who)
        joined = True
    else:
        hazard = open_hazard_for_tip(tip, category, severity, department_code=department_code, actor=who)
        joined = False
    queue_notice(tip.id, "accepted")
    return {"hazard": hazard_answer(hazard, joined)}


def _serialize_category(category: str) -> None:
    """Two approvals of the same category at once must not both miss each other's new ticket and
    open two: on PostgreSQL a transaction-scoped advisory lock per category orders them (approvals
    are human-paced, the lock lasts until the approval commits). SQLite's BEGIN IMMEDIATE already
    serializes every write transaction."""
    if is_sqlite(db.session):
        return
    key = zlib.crc32(f"hazard-route:{category}".encode()) - 2 ** 31  # a signed 32-bit key
    db.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def _target(tip: Tip, duplicate_of: dict | None, category: str, department_code: str | None) -> Hazard | None:
    hazard_id = None
    if duplicate_of:
        hazard_id = duplicate_of.get("hazard_id")
        if hazard_id is None and duplicate_of.get("tip_id"):
            target = db.session.get(Tip, int(duplicate_of["tip_id"]))
            hazard_id = target.hazard_id if target is not None else None
    if hazard_id is not None:
        hazard = db.session.get(Hazard, int(hazard_id))
        if hazard is not None and hazard.status in OPEN_HAZARD_STATUSES:
            return hazard
        # closed (the hazard came back) or gone: an open ticket nearby, else a new one
    for hazard in find_open_hazards_near(category, tip.lat, tip.lng):
        if department_code is None or hazard.department.code == department_code:
            return hazard
    return None


def hazard_answer(hazard: Hazard, joined: bool = False) -> dict:
    from app.hazards.lifecycle import status_label

    grid = None
    if hazard.grid_code:
        grid = {"id": hazard.grid_id, "code": hazard.grid_code, "town_code": hazard.town_code}
    return {"id": hazard.id, "status": hazard.status, "status_label": status_label(hazard.status),
            "department": hazard.department.to_brief(), "grid": grid, "joined": joined}
