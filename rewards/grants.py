"""The reward acceptance step (order 20, app.tips acceptance steps): inside the approval transaction,
decide whether the tip earns a reward, take every cap, mint the mch_billno, reserve in the ledger
and write the outbox row that drives the payout. Flush only; moderation commits.

A tip is accepted even when its reward is not granted: the payout row then says why.
"""
from __future__ import annotations

from datetime import timedelta

from flask import current_app
from sqlalchemy import select, update

from app import outbox
from app.display import business_day, period_of
from app.extensions import db
from app.models.base import utcnow
from app.models.resident import Resident
from app.wechat import make_mch_billno
from rewards import budget, ledger
from rewards.budget import insert_ignore
from rewards.channels import new_payout_channel
from rewards.models import Payout, RewardClaim
from rewards.policy import NOT_GRANTED_LABELS, active_policy, amount_for

PAYOUT_TOPIC = "rewards.payout"


def reward_step(tip, decision: dict, actor) -> dict:
    payout = reserve_reward(tip, decision or {})
    return {"reward": describe(payout) if payout is not None else None}


def describe(payout: Payout) -> dict:
    out = {"id": payout.id, "amount_fen": payout.amount_fen, "status": payout.status}
    if payout.reason:
        out.update(reason=payout.reason, reason_label=NOT_GRANTED_LABELS.get(payout.reason, payout.reason))
    return out


def reserve_reward(tip, decision: dict) -> Payout | None:
    existing = db.session.execute(select(Payout).filter_by(tip_id=tip.id)).scalar_one_or_none()
    if existing is not None:  # the step ran already for this tip (the unique tip_id keeps it to one)
        return existing
    policy = active_policy()
    category = decision.get("category") or tip.category
    severity = int(decision.get("severity") or tip.severity or 1)
    amount = amount_for(category, severity, policy)
    now = utcnow()
    payout = Payout(tip_id=tip.id, resident_id=tip.resident_id, hazard_id=tip.hazard_id, category=category,
                    severity=severity, amount_fen=amount or 0, status="not_granted", attempts=0, updated_at=now)
    db.session.add(payout)
    reason = _ineligible(tip, amount, policy)
    if reason is None and policy["trigger"] == "verification" and tip.hazard_id is not None:
        payout.status = "awaiting_verification"
        db.session.flush()
        return payout
    if reason is None:
        reason = _grant(payout, policy, now)
    else:
        payout.reason = reason
    db.session.flush()
    return payout


def _ineligible(tip, amount, policy) -> str | None:
    if amount is None:
        return "no_amount"
    resident = db.session.get(Resident, tip.resident_id)
    if resident is not None and resident.closing_at is not None:
        return "account_closed"
    if resident is None or resident.no_reward:
        return "no_reward_list"
    if tip.hazard_id is not None:
        # same reporter on the same hazard once; first valid reporter only (both race-free by primary key)
        if not insert_ignore(RewardClaim, key=f"hazard:{tip.hazard_id}:resident:{tip.resident_id}", tip_id=tip.id,
                             created_at=utcnow()):
            return "already_rewarded"
        if policy["first_reporter_only"] and not insert_ignore(RewardClaim, key=f"hazard:{tip.hazard_id}",
                                                               tip_id=tip.id, created_at=utcnow()):
            return "not_first_reporter"
    return None


def _grant(payout: Payout, policy: dict, now) -> str | None:
    """Take the caps and reserve; returns the reason when a cap is full (payout stays not_granted)."""
    day, period = business_day(now), period_of(now)
    ok, reason, _taken = budget.take_caps(payout.resident_id, day.isoformat(), period, payout.amount_fen, policy)
    if not ok:
        payout.reason = reason
        return reason
    payout.status, payout.reason = "reserved", None
    payout.channel = new_payout_channel()   # kept for the payout's life (rewards/channels/)
    payout.period, payout.business_day, payout.reserved_at = period, day, now
    payout.next_check_at = now + timedelta(minutes=5)  # the sweeper's safety net behind the outbox
    db.session.flush()
    # committed with the approval, before any WeChat call; every retry reuses it (a transfer's out_bill_no too)
    payout.mch_billno = make_mch_billno(current_app.config["WECHAT_MCH_ID"], day, payout.id)
    ledger.post_reservation(payout)
    outbox.publish(PAYOUT_TOPIC, {"payout_id": payout.id}, dedup_key=f"payout:{payout.id}")
    return None


def forgo_waiting_rewards(resident_id: int) -> int:
    """A closing account gives up rewards not granted yet (waiting for the hazard's verification:
    no money is reserved for them). Flush only; returns how many."""
    return db.session.execute(
        update(Payout).where(Payout.resident_id == resident_id, Payout.status == "awaiting_verification")
        .values(status="not_granted", reason="account_closed", updated_at=utcnow())
        .execution_options(synchronize_session=False)).rowcount


def on_hazard_transition(hazard, from_status: str, to_status: str) -> None:
    """Policy 'verification': rewards waiting for this hazard are granted once it is verified."""
    if to_status != "verified":
        return
    policy = active_policy()
    waiting = db.session.execute(select(Payout).filter_by(hazard_id=hazard.id, status="awaiting_verification")
                                 .order_by(Payout.id)).scalars().all()
    now = utcnow()
    for payout in waiting:
        payout.updated_at = now
        _grant(payout, policy, now)
    db.session.flush()
