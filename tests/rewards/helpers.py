"""Builders for rewards tests: residents, tips, approvals, funding, and the ledger-vs-sandbox check."""
from __future__ import annotations

import itertools
import uuid

from app.extensions import db
from app.models.resident import Resident
from app.models.tip import Tip
from rewards.models import Payout

_n = itertools.count(1)


def make_resident(openid: str | None = None, **values) -> Resident:
    resident = Resident(openid=openid or f"oRw{uuid.uuid4().hex[:20]}", **values)
    db.session.add(resident)
    db.session.flush()
    return resident


def make_tip(resident: Resident, category: str = "road_damage", hazard_id: int | None = None,
             status: str = "pending_review") -> Tip:
    n = next(_n)
    tip = Tip(resident_id=resident.id, idempotency_key=f"k{n}-{uuid.uuid4().hex[:8]}", request_hash="0" * 64,
              category=category, description="隐患", lat=23.02, lng=113.75, status=status, hazard_id=hazard_id)
    db.session.add(tip)
    db.session.flush()
    return tip


def approve(tip: Tip, severity: int = 2, category: str | None = None) -> dict | None:
    """What moderation's approve does for rewards: CAS the tip, run the reward step, commit once."""
    from app.tips import change_tip_status
    from rewards.grants import reward_step

    assert change_tip_status(tip.id, ("pending_review",), "accepted")
    answer = reward_step(tip, {"action": "approve", "category": category or tip.category, "severity": severity,
                               "reason": None, "message": None, "department": None, "duplicate_of": None}, None)
    db.session.commit()
    return answer["reward"]


def fund(amount_fen: int = 10_000_000, period: str | None = None) -> None:
    from rewards.budget import fund_period
    from app.display import period_of

    fund_period(period or period_of(), amount_fen, memo="test funding")
    db.session.commit()


def assert_books_hold() -> None:
    from rewards.invariants import check_all

    failures = check_all()
    assert failures == {}, failures


def assert_sandbox_matches_ledger(sandbox) -> None:
    """Every packet WeChat holds is one payout, in the matching state, for the same amount; no payout
    counts as paid without its packet. Zero packets paid twice (billnos are unique on both sides)."""
    packets = {p["mch_billno"]: p for p in sandbox.redpacks()}
    db.session.rollback()
    paid = {p.mch_billno: p for p in db.session.query(Payout).filter(
        Payout.status.in_(("sent", "claimed", "refunded"))).all()}
    status_map = {"sent": {"SENT", "RECEIVED", "REFUND"}, "claimed": {"RECEIVED"}, "refunded": {"REFUND"}}
    for billno, payout in paid.items():
        assert billno in packets, f"payout {payout.id} is {payout.status} but WeChat has no packet {billno}"
        assert packets[billno]["amount_fen"] == payout.amount_fen
        assert packets[billno]["status"] in status_map[payout.status], (payout.status, packets[billno]["status"])
    ours = {p.mch_billno: p for p in db.session.query(Payout).filter(Payout.mch_billno.is_not(None)).all()}
    for billno, packet in packets.items():
        assert billno in ours, f"WeChat paid {billno}, which is not ours"
        payout = ours[billno]
        assert payout.status not in ("failed", "reserved", "not_granted"), (billno, payout.status)
    db.session.rollback()


def advance_both_clocks(sandbox, hours: float) -> None:
    """Time passes for WeChat and for us alike (the autouse real_clock fixture puts ours back)."""
    from datetime import timedelta

    from app.clock import set_clock
    from app.models.base import utcnow

    sandbox.advance(hours)
    set_clock(utcnow() + timedelta(hours=hours))
