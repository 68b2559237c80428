"""Review pages of the staff console (/console/review): the queue, one tip at a time, decisions.

Server-rendered; the same functions as the staff API (moderation.queue / moderation.decisions).
"""
from __future__ import annotations

import json
import math

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from app.console import console_required, console_user
from app.errors import AppError, NotFound
from app.extensions import db
from app.models.base import utcnow
from app.models.staff import StaffRole, StaffUser
from app.models.tip import Tip
from moderation import decisions, queue
from moderation.present import tip_view
from moderation.reasons import reasons_for_console

bp = Blueprint("review_console", __name__, url_prefix="/console/review")
REVIEWERS = ("moderator", "supervisor")
ACTION_LABELS = {"approve": "受理", "reject": "驳回", "duplicate": "重复", "need_info": "补充材料"}
STATUS_LABELS = {"received": "已接收", "checking": "自动检查中", "pending_review": "待审核", "accepted": "已受理",
                 "rejected": "已驳回", "duplicate": "重复", "need_info": "待补充", "withdrawn": "已撤回"}


@bp.route("/")
@console_required(*REVIEWERS)
def queue_page():
    rows, _next = queue.queue_page(limit=100)
    me = console_user()
    mine = db.session.scalar(select(Tip.id).where(Tip.status == "pending_review", Tip.claimed_by == me.id,
                                                  Tip.lease_until >= utcnow()).limit(1))
    now = utcnow()
    # an expired lease is back in the queue: show no holder for it
    holders = {t.id: t.claimed_by for t in rows if t.claimed_by and t.lease_until and t.lease_until >= now}
    names = _staff_names(set(holders.values()))
    return render_template("console/review_queue.html", rows=rows, mine=mine, names=names, holders=holders,
                           status_labels=STATUS_LABELS)


@bp.route("/claim", methods=["POST"])
@console_required(*REVIEWERS)
def claim():
    tip = queue.claim_next(console_user())
    if tip is None:
        flash("队列已空，暂无待审核报料", "info")
        return redirect(url_for("review_console.queue_page"))
    return redirect(url_for("review_console.tip_page", tip_id=tip.id))


@bp.route("/<int:tip_id>")
@console_required(*REVIEWERS)
def tip_page(tip_id):
    tip = db.session.get(Tip, tip_id)
    if tip is None:
        raise NotFound("报料不存在", code="tip_not_found")
    me = console_user()
    view = tip_view(tip, detail=True)
    moderators = db.session.scalars(
        select(StaffUser).join(StaffRole).where(StaffRole.role.in_(REVIEWERS), StaffUser.active.is_(True))
        .order_by(StaffUser.username).distinct()).all() if me.has_role("supervisor") else []
    from app.hazards.catalogue import list_categories, list_departments

    return render_template(
        "console/review_tip.html", tip=view, holds=(tip.claimed_by == me.id and tip.status == "pending_review"),
        holder=_staff_names({tip.claimed_by}).get(tip.claimed_by) if tip.claimed_by else None,
        is_supervisor=me.has_role("supervisor"), moderators=moderators, reasons=reasons_for_console(),
        categories=list_categories(), departments=list_departments(), map_svg=grid_map_svg(tip),
        action_labels=ACTION_LABELS, status_labels=STATUS_LABELS)


@bp.route("/<int:tip_id>/decision", methods=["POST"])
@console_required(*REVIEWERS)
def decide(tip_id):
    form = request.form
    action = form.get("action")
    body = {"action": action, "category": form.get("category") or None,
            "severity": _int(form.get("severity")), "reason": form.get(f"reason_{action}") or form.get("reason"),
            "message": form.get(f"message_{action}") or form.get("message"),
            "department": form.get("department") or None, "duplicate_of": _duplicate_of(form)}
    try:
        decisions.decide(tip_id, console_user(), body)
    except AppError as exc:
        db.session.rollback()
        flash(f"{exc.message}（{_fields(exc)}）" if exc.fields else exc.message, "error")
        return redirect(url_for("review_console.tip_page", tip_id=tip_id))
    flash(f"报料 #{tip_id} 已{ACTION_LABELS.get(action, action)}", "info")
    return redirect(url_for("review_console.queue_page"))


@bp.route("/<int:tip_id>/release", methods=["POST"])
@console_required(*REVIEWERS)
def release(tip_id):
    me = console_user()
    return _run(lambda: queue.release(tip_id, me, force=me.has_role("supervisor")), tip_id, "已放回队列",
                to_queue=True)


@bp.route("/<int:tip_id>/reassign", methods=["POST"])
@console_required("supervisor")
def reassign(tip_id):
    return _run(lambda: queue.reassign(tip_id, _int(request.form.get("staff_id")) or 0, console_user()), tip_id,
                "已转交")


@bp.route("/<int:tip_id>/reverse", methods=["POST"])
@console_required("supervisor")
def reverse(tip_id):
    return _run(lambda: decisions.reverse(tip_id, console_user(), request.form.get("note")), tip_id,
                "审核结果已撤销，报料重新进入队列")


def _run(operation, tip_id, done_message, to_queue=False):
    try:
        operation()
    except AppError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    else:
        flash(done_message, "info")
        if to_queue:
            return redirect(url_for("review_console.queue_page"))
    return redirect(url_for("review_console.tip_page", tip_id=tip_id))


def _int(value):
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _duplicate_of(form):
    if form.get("action") != "duplicate" and not form.get("duplicate_tip_id"):
        return None
    raw = (form.get("duplicate_target") or "").strip()
    if raw.startswith("H") or raw.startswith("h"):
        return {"hazard_id": _int(raw[1:])}
    return {"tip_id": _int(raw.lstrip("#"))} if raw else None


def _fields(exc) -> str:
    return "；".join(f"{k}: {', '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in exc.fields.items())


def _staff_names(ids) -> dict:
    ids = {i for i in ids if i}
    if not ids:
        return {}
    return dict(db.session.execute(select(StaffUser.id, StaffUser.username).where(StaffUser.id.in_(ids))).all())


# --- the small offline map: the grid polygon and the pin as SVG --------------------------------

def grid_map_svg(tip: Tip, size: int = 260) -> dict:
    """{"width", "height", "paths": [...], "pin": (x, y), "others": [(x, y, label)]} in SVG units.

    An equirectangular projection around the pin is exact enough at grid scale (a few km)."""
    rings = []
    if tip.grid_id is not None:
        from app.geo.models import Grid

        grid = db.session.get(Grid, tip.grid_id)
        if grid is not None:
            rings = _rings(json.loads(grid.geometry))
    others = [(c["distance"], c) for c in (tip.candidates or []) if c.get("kind") == "nearby"]
    points = [(lng, lat) for ring in rings for lng, lat in ring] + [(tip.lng, tip.lat)]
    kx = math.cos(math.radians(tip.lat))
    xs = [lng * kx for lng, _ in points]
    ys = [lat for _, lat in points]
    span = max(max(xs) - min(xs), max(ys) - min(ys), 0.002)  # at least ~200 m across
    pad = span * 0.08
    scale = (size - 2) / (span + 2 * pad)

    def project(lng, lat):
        return (round((lng * kx - min(xs) + pad) * scale, 1), round((max(ys) - lat + pad) * scale, 1))

    paths = ["M" + " L".join(f"{x},{y}" for x, y in (project(lng, lat) for lng, lat in ring)) + " Z" for ring in rings]
    width = round((max(xs) - min(xs) + 2 * pad) * scale, 1)
    height = round((max(ys) - min(ys) + 2 * pad) * scale, 1)
    return {"width": max(width, 60), "height": max(height, 60), "paths": paths, "pin": project(tip.lng, tip.lat),
            "others": [], "nearby": len(others)}


def _rings(geometry: dict) -> list:
    kind, coords = geometry.get("type"), geometry.get("coordinates") or []
    if kind == "Polygon":
        return [coords[0]] if coords else []
    if kind == "MultiPolygon":
        return [poly[0] for poly in coords if poly]
    return []
