"""The review queue: claim the next tip with a lease; no two moderators ever hold the same tip.

Order: category severity (tips.priority) first, then oldest first. A lease lasts
REVIEW_LEASE_SECONDS (5 minutes); an expired lease is simply claimable again ("released on
timeout") — the decision compare-and-sets on claimed_by, so a moderator whose tip was taken over
gets a 409, never a double decision.

PostgreSQL: SELECT ... FOR UPDATE SKIP LOCKED, so concurrent claimers skip each other's rows
instead of queueing. SQLite: the transaction began with BEGIN IMMEDIATE (app/db.py), so the
select-then-update runs alone. Both engines finish with a conditional UPDATE that re-checks the
row is still claimable (belt and braces).

The ORDER BY mixes directions (priority DESC, created_at ASC), which the (status, priority,
created_at) index cannot serve in one scan; so we pick the highest claimable priority first (a
short backward index scan) and then the oldest tip of that priority (a forward scan).
"""
from __future__ import annotations

from datetime import timedelta

from flask import current_app
from sqlalchemy import and_, or_, select, update

from app.audit import record_audit
from app.db import is_sqlite
from app.errors import Conflict, NotFound, Unprocessable
from app.extensions import db
from app.models.base import utcnow
from app.models.staff import StaffUser
from app.models.tip import Tip

DEFAULT_LEASE_SECONDS = 300


def lease_seconds() -> int:
    return int(current_app.config.get("REVIEW_LEASE_SECONDS", DEFAULT_LEASE_SECONDS))


def _claimable(now):
    return and_(Tip.status == "pending_review", or_(Tip.lease_until.is_(None), Tip.lease_until < now))


def claim_next(staff: StaffUser) -> Tip | None:
    """The caller's current tip (lease renewed) or the next one in the queue; None when empty.
    Commits (the lease must be visible to the other moderators at once)."""
    now = utcnow()
    until = now + timedelta(seconds=lease_seconds())
    held = db.session.scalar(
        select(Tip.id).where(Tip.status == "pending_review", Tip.claimed_by == staff.id, Tip.lease_until >= now)
        .order_by(Tip.id).limit(1))
    if held is not None:
        db.session.execute(update(Tip).where(Tip.id == held, Tip.claimed_by == staff.id)
                           .values(lease_until=until).execution_options(synchronize_session=False))
        db.session.commit()
        return db.session.get(Tip, held)
    tip_id = _take_next(staff.id, now, until)
    if tip_id is None:
        db.session.commit()
        return None
    record_audit("review.claim", "tip", tip_id, actor=staff, after={"claimed_by": staff.id,
                                                                    "lease_until": until.isoformat()})
    db.session.commit()
    return db.session.get(Tip, tip_id)  # expired by the commit: loads the claimed row afresh


def _take_next(staff_id: int, now, until) -> int | None:
    sqlite = is_sqlite(db.session)
    below = None
    for _attempt in range(50):  # each round moves to a lower priority; 50 distinct weights is plenty
        top = select(Tip.priority).where(_claimable(now)).order_by(Tip.priority.desc()).limit(1)
        if below is not None:
            top = top.where(Tip.priority < below)
        priority = db.session.scalar(top)
        if priority is None:
            return None
        pick = (select(Tip.id).where(_claimable(now), Tip.priority == priority)
                .order_by(Tip.created_at, Tip.id).limit(1))
        if not sqlite:
            pick = pick.with_for_update(skip_locked=True)
        tip_id = db.session.scalar(pick)
        if tip_id is None:  # every claimable tip of this priority is being claimed right now
            below = priority
            continue
        taken = db.session.execute(
            update(Tip).where(Tip.id == tip_id, _claimable(now))
            .values(claimed_by=staff_id, lease_until=until)
            .returning(Tip.id).execution_options(synchronize_session=False)
        ).scalar()
        if taken is not None:
            return taken
    return None


def release(tip_id: int, staff: StaffUser, *, force: bool = False) -> Tip:
    """Give a tip back to the queue. Its holder may; a supervisor may release anyone's (force)."""
    tip = _pending(tip_id)
    if tip.claimed_by is None:
        raise Conflict("该报料未被领取", code="not_claimed")
    if tip.claimed_by != staff.id and not force:
        raise Conflict("该报料不在您的审核中", code="not_your_claim")
    before = {"claimed_by": tip.claimed_by}
    changed = db.session.execute(
        update(Tip).where(Tip.id == tip_id, Tip.status == "pending_review", Tip.claimed_by == tip.claimed_by)
        .values(claimed_by=None, lease_until=None).execution_options(synchronize_session=False)
    ).rowcount
    if not changed:
        db.session.rollback()
        raise Conflict("报料状态已变化，请刷新", code="state_changed")
    record_audit("review.release", "tip", tip_id, actor=staff, before=before, after={"claimed_by": None})
    db.session.commit()
    db.session.refresh(tip)
    return tip


def reassign(tip_id: int, to_staff_id: int, supervisor: StaffUser) -> Tip:
    """A supervisor hands a pending tip to another moderator (with a fresh lease)."""
    tip = _pending(tip_id)
    target = db.session.get(StaffUser, to_staff_id)
    if target is None or not target.active or not target.has_role("moderator", "supervisor"):
        raise Unprocessable("只能转交给在岗的审核员", code="invalid_assignee", fields={"staff_id": ["不是审核员"]})
    until = utcnow() + timedelta(seconds=lease_seconds())
    before = {"claimed_by": tip.claimed_by}
    changed = db.session.execute(
        update(Tip).where(Tip.id == tip_id, Tip.status == "pending_review")
        .values(claimed_by=target.id, lease_until=until).execution_options(synchronize_session=False)
    ).rowcount
    if not changed:
        db.session.rollback()
        raise Conflict("报料状态已变化，请刷新", code="state_changed")
    record_audit("review.reassign", "tip", tip_id, actor=supervisor, before=before,
                 after={"claimed_by": target.id, "lease_until": until.isoformat()})
    db.session.commit()
    db.session.refresh(tip)
    return tip


def _pending(tip_id: int) -> Tip:
    tip = db.session.get(Tip, tip_id)
    if tip is None:
        raise NotFound("报料不存在", code="tip_not_found")
    if tip.status != "pending_review":
        raise Conflict("该报料已不在审核队列中", code="not_pending")
    return tip


def queue_page(limit: int = 50, cursor: int | None = None) -> tuple[list[Tip], int | None]:
    """Pending tips in queue order (for the console's list); cursor = offset."""
    offset = int(cursor or 0)
    rows = db.session.scalars(
        select(Tip).where(Tip.status == "pending_review")
        .order_by(Tip.priority.desc(), Tip.created_at, Tip.id).offset(offset).limit(limit + 1)).all()
    return rows[:limit], (offset + limit if len(rows) > limit else None)
