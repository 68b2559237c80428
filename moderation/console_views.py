"""Review pages of the staff console (/console/review): the queue, one tip at a time, decisions.

Server-rendered; the same functions as the staff API (moderation.queue / moderation.decisions).
"""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from markupsafe import Markup
from sqlalchemy import select

from app.console import console_required, console_user
from app.display import DECISION, TIP_STATUS, format_yuan, label, staff_names
from app.errors import AppError, NotFound
from app.extensions import db
from app.geo.webmap import place_map, tips_map
from app.ids import parse_id
from app.models.base import utcnow
from app.models.staff import StaffRole, StaffUser
from app.models.tip import Tip
from moderation import decisions, queue
from moderation.present import tip_view
from moderation.reasons import reasons_for_console

bp = Blueprint("review_console", __name__, url_prefix="/console/review")
REVIEWERS = ("moderator", "supervisor")
# Who may read a tip (finance follows a payout to what it paid for); only reviewers act on it.
READERS = (*REVIEWERS, "finance")
# The buttons say the decision, the tip then shows the status it led to: display's one set of words.
ACTION_LABELS = {a: DECISION[a] for a in ("approve", "reject", "duplicate", "need_info")}
STATUS_LABELS = TIP_STATUS


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
    from app.hazards.catalogue import list_categories

    webmap = tips_map(rows, category_names={c.code: c.name for c in list_categories(active=None)},
                      detail_url=lambda tip_id: url_for("review_console.tip_page", tip_id=tip_id))
    return render_template("console/review_queue.html", rows=rows, mine=mine, names=names, holders=holders,
                           status_labels=STATUS_LABELS, webmap=webmap)


@bp.route("/claim", methods=["POST"])
@console_required(*REVIEWERS)
def claim():
    tip = queue.claim_next(console_user())
    if tip is None:
        flash("队列已空，暂无待审核报料", "info")
        return redirect(url_for("review_console.queue_page"))
    return redirect(url_for("review_console.tip_page", tip_id=tip.id))


@bp.route("/<int:tip_id>")
@console_required(*READERS)
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
        categories=list_categories(), departments=list_departments(), webmap=_tip_map(tip),
        action_labels=ACTION_LABELS, status_labels=STATUS_LABELS, outcome=tip_outcome(tip),
        is_reviewer=me.has_role(*REVIEWERS))


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
        answer = decisions.decide(tip_id, console_user(), body)
    except AppError as exc:
        db.session.rollback()
        flash(f"{exc.message}（{_fields(exc)}）" if exc.fields else exc.message, "error")
        return redirect(url_for("review_console.tip_page", tip_id=tip_id))
    flash(decision_message(answer["tip"], answer.get("hazard"), answer.get("reward")), "info")
    return redirect(url_for("review_console.queue_page"))


def decision_message(tip: Tip, hazard: dict | None, reward: dict | None) -> Markup:
    """Where the decision led: the tip's status, its ticket (joined or new) and its reward, with links."""
    parts = [Markup('<a href="{}">报料 #{}</a>：{}').format(url_for("review_console.tip_page", tip_id=tip.id), tip.id,
                                                          TIP_STATUS.get(tip.status, tip.status))]
    if hazard:
        parts.append(Markup('<a href="{}" class="ticket-link">工单 #{}</a>（{}）').format(
            url_for("hazards_console.detail", hazard_id=hazard["id"]), hazard["id"],
            "并入已有工单" if hazard.get("joined") else "新建工单"))
    if tip.status == "accepted":
        parts.append(Markup('<span class="reward">{}</span>').format(reward_words(reward)))
    return Markup(" · ").join(parts)


def reward_words(reward: dict | None) -> str:
    """'奖励 ¥5.00（已预留）' or why there is none, in Chinese."""
    if reward is None:
        return "奖励：无（未设置奖励）"
    if reward.get("status") == "not_granted":
        return f"奖励：未发放（{reward.get('reason_label') or label('failure', reward.get('reason'))}）"
    return f"奖励 {format_yuan(reward['amount_fen'])}（{label('reward_status', reward['status'])}）"


def tip_outcome(tip: Tip) -> dict:
    """The tip's ticket, reward and duplicate target, for the links on its page."""
    from rewards.grants import describe
    from rewards.models import Payout

    payout = db.session.scalar(select(Payout).where(Payout.tip_id == tip.id))
    return {"hazard_id": tip.hazard_id or tip.duplicate_of_hazard_id, "duplicate_of_tip_id": tip.duplicate_of_tip_id,
            "payout": describe(payout) if payout is not None else None,
            "reward_words": reward_words(describe(payout)) if payout is not None else None}


@bp.route("/residents/<int:resident_id>")
@console_required(*READERS)
def resident_page(resident_id):
    """A reporter's history: every tip, its ticket and its reward (the resident is an id, never an openid)."""
    from rewards.grants import describe
    from rewards.models import Payout

    tips = db.session.scalars(select(Tip).where(Tip.resident_id == resident_id).order_by(Tip.id.desc()).limit(200)).all()
    if not tips:
        raise NotFound("该报料人没有报料")
    payouts = {p.tip_id: describe(p) for p in db.session.scalars(select(Payout).where(Payout.resident_id == resident_id))}
    return render_template("console/resident.html", resident_id=resident_id, tips=tips,
                           rewards={t: reward_words(p) for t, p in payouts.items()}, payouts=payouts)


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
    """A number typed in a form (an id, a severity): one that can exist, else None (app/ids.py)."""
    return parse_id(value.strip() if isinstance(value, str) else value)


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
    return staff_names(ids)


def _tip_map(tip: Tip) -> dict:
    """The tip in its grid, with the nearby tickets and tips the duplicate check found (grey)."""
    from app.hazards.models import Hazard

    nearby = [c for c in (tip.candidates or []) if c.get("kind") == "nearby"]
    hazard_ids = {c["hazard_id"] for c in nearby if c.get("hazard_id")}
    tip_ids = {c["tip_id"] for c in nearby if c.get("tip_id") and not c.get("hazard_id")}
    others = []
    if hazard_ids:
        for h_id, lat, lng in db.session.execute(select(Hazard.id, Hazard.lat, Hazard.lng).where(Hazard.id.in_(hazard_ids))):
            others.append({"lat": lat, "lng": lng, "colour": "#7f7f7f", "radius": 5, "label": f"附近工单 #{h_id}",
                           "href": url_for("hazards_console.detail", hazard_id=h_id), "lines": [], "status": "nearby"})
    if tip_ids:
        for t_id, lat, lng in db.session.execute(select(Tip.id, Tip.lat, Tip.lng).where(Tip.id.in_(tip_ids))):
            others.append({"lat": lat, "lng": lng, "colour": "#7f7f7f", "radius": 5, "label": f"附近报料 #{t_id}",
                           "href": url_for("review_console.tip_page", tip_id=t_id), "lines": [], "status": "nearby"})
    return place_map(tip.lat, tip.lng, grid_id=tip.grid_id, address=tip.address, title=f"报料 #{tip.id}",
                     others=others)
