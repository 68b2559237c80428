"""What residents see of their rewards (docs/REWARDS.md §For the other areas), for miniprogram_api."""
from __future__ import annotations

from sqlalchemy import func, select

from app.extensions import db
from app.ids import parse_cursor
from rewards.models import RESIDENT_STATUSES, Payout
from rewards.policy import NOT_GRANTED_LABELS

# Nothing more will happen to a payout in these statuses (no WeChat call, no money moving).
SETTLED_STATUSES = ("not_granted", "claimed", "refunded", "failed", "cancelled")


def _brief(payout: Payout) -> dict:
    return {"id": payout.id, "amount_fen": payout.amount_fen, "status": payout.status}


def reward_for_tip(tip_id: int) -> dict | None:
    """{"id", "amount_fen", "status"} once a reward is granted; None otherwise (not granted, waiting)."""
    payout = db.session.execute(select(Payout).filter_by(tip_id=tip_id)).scalar_one_or_none()
    if payout is None or payout.status not in RESIDENT_STATUSES:
        return None
    return _brief(payout)


def list_rewards_for_resident(resident_id: int, cursor: str | None = None, limit: int = 20) -> tuple[list[dict], str | None]:
    """Newest first. `package` (for wx.sendBizRedPacket) only while the packet waits to be opened;
    what the resident must do to receive, from the payout's channel: `redpacket` (a packet to open)
    or `transfer` (a 商家转账 bill to confirm with wx.requestMerchantTransfer)."""
    from rewards.channels import channel_of

    limit = max(1, min(int(limit or 20), 100))
    query = (select(Payout).where(Payout.resident_id == resident_id, Payout.status.in_(RESIDENT_STATUSES))
             .order_by(Payout.id.desc()).limit(limit + 1))
    after = parse_cursor(cursor)
    if after is not None:
        query = query.where(Payout.id < after)
    rows = db.session.execute(query).scalars().all()
    items = [{**_brief(p), "tip_id": p.tip_id, "package": p.package if p.status == "sent" else None,
              "failure_reason": failure_reason(p), **channel_of(p).receive_params(p)} for p in rows[:limit]]
    return items, (str(rows[limit - 1].id) if len(rows) > limit else None)


GENERIC_FAILURE = "微信支付未能发放该红包"


def failure_reason(payout: Payout) -> str | None:
    """Why a reward failed, in words the resident can read (我的奖励); None unless it failed."""
    from rewards.decisions import resident_reason

    if payout.status != "failed":
        return None
    return resident_reason(payout.reason) or GENERIC_FAILURE


def count_payouts_in_flight(resident_id: int) -> int:
    """Payouts of the resident that are not settled yet: a closing account waits for them. Any
    status not known to be final counts (a new channel's states included)."""
    return int(db.session.scalar(select(func.count(Payout.id)).where(
        Payout.resident_id == resident_id, Payout.status.notin_(SETTLED_STATUSES))) or 0)


def rewards_for_export(resident_id: int) -> list[dict]:
    """Every reward row of the resident, oldest first, with its dates and why one was not granted
    (the resident's data export)."""
    rows = db.session.execute(select(Payout).where(Payout.resident_id == resident_id)
                              .order_by(Payout.id)).scalars().all()
    return [{**_brief(p), "tip_id": p.tip_id, "reason": NOT_GRANTED_LABELS.get(p.reason, p.reason),
             "created_at": p.created_at, "sent_at": p.sent_at, "settled_at": p.settled_at} for p in rows]
