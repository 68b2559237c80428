"""The sweeper (periodic): asks WeChat (gethbinfo; a transfer's query through its channel) about payouts that are due a check and settles
them — sending → sent | failed, sent → claimed | refunded. What cannot be settled within WeChat's
windows goes to manual_review for finance. It also keeps the merchant's pause (rewards/pauses.py):
ends it at the next day when that is its rule, and sends a probe packet when one is due.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select, update

from app.extensions import db, wechat
from app.models.base import utcnow
from app.wechat import PayOutcome
from rewards import decisions, pauses, payouts
from rewards.models import Payout

log = logging.getLogger(__name__)

SENDING_WINDOW = timedelta(hours=24)     # a billno WeChat still does not know after this: a person looks
SENT_WINDOW = timedelta(hours=72)        # claimed within 24 h or refunded at 24 h; beyond this: a person looks
RETRY_CHECK = timedelta(minutes=10)


def sweep_payouts(now: datetime | None = None, limit: int = 200) -> dict[str, int]:
    """Check every payout whose next_check_at has passed. Returns counts by resulting status."""
    now = now or utcnow()
    counts: dict[str, int] = {}
    pause = pauses.open_pause(now)        # a pause whose day has passed ends here (its payouts fall due)
    probe_id = pauses.take_probe(pause, now) if pause is not None else None
    db.session.rollback()
    if probe_id is not None:
        try:
            status = payouts.send_redpack(probe_id, probe=True)
        except payouts.PayoutPending:
            status = "pending"
        except Exception:
            db.session.rollback()
            log.exception("probe payout failed", extra={"payout_id": probe_id})
            status = "error"
        counts[f"probe_{status}"] = 1
    ids = list(db.session.execute(
        select(Payout.id).where(Payout.status.in_(("reserved", "sending", "sent", "waiting_confirm")),
                                Payout.next_check_at <= now)
        .order_by(Payout.next_check_at).limit(limit)).scalars())
    db.session.rollback()
    for payout_id in ids:
        try:
            status = check_payout(payout_id, now)
        except payouts.PayoutPending:
            status = "pending"
        except Exception:  # one bad payout must not stop the sweep
            db.session.rollback()
            log.exception("sweeper failed on a payout", extra={"payout_id": payout_id})
            status = "error"
        counts[status] = counts.get(status, 0) + 1
    return counts


def check_payout(payout_id: int, now: datetime | None = None) -> str:
    """Ask WeChat about one payout through its own channel (rewards/channels/)."""
    from rewards.channels import channel_named

    channel = db.session.execute(select(Payout.channel).where(Payout.id == payout_id)).scalar()
    db.session.rollback()
    if channel is None:
        return "missing"
    return channel_named(channel).check_payout(payout_id, now)


def check_redpack(payout_id: int, now: datetime | None = None) -> str:
    now = now or utcnow()
    payout = db.session.get(Payout, payout_id)
    if payout is None:
        return "missing"
    status, billno = payout.status, payout.mch_billno
    started = payout.first_call_at or payout.reserved_at or payout.created_at
    sent_at = payout.sent_at
    db.session.rollback()
    if status == "reserved":  # the outbox should have sent it; send now (same billno, harmless twice)
        return payouts.send_payout(payout_id)
    info = wechat.get_hb_info(billno)
    payouts.crash_point("after_query")  # WeChat answered; nothing of it is committed yet
    if info.outcome is PayOutcome.SUCCESS:
        result = payouts.apply_hb_info(payout_id, info)
        if result == "sent":
            _reschedule(payout_id, now, sent_at or now)
            if now - (sent_at or now) > SENT_WINDOW:
                return payouts.to_manual_review(payout_id, "unsettled_after_window")
        elif result == "sending" and info.status == "SENDING":
            # in flight, not paid: asked again on WeChat's schedule; a person looks when it outlives it
            if now - started > SENDING_WINDOW:
                return payouts.to_manual_review(payout_id, "sending_after_window")
            _reschedule(payout_id, now, started)
        return result
    if decisions.decide("query", info.code).action == decisions.PAUSE:
        pauses.start_pause(info.code, now)   # our key or certificate: every payout waits, none fails
    if status == "sending" and info.code == "NOT_FOUND":
        if now - started > SENDING_WINDOW and pauses.open_pause(now) is None:
            return payouts.to_manual_review(payout_id, "not_found_after_window")
        _reschedule(payout_id, now, None)
        return payouts.send_payout(payout_id)  # WeChat never saw it: send (the same billno)
    # the query itself failed: try again later, unless we are past the window
    window_start, window = (started, SENDING_WINDOW) if status == "sending" else (sent_at or started, SENT_WINDOW)
    if now - window_start > window:
        return payouts.to_manual_review(payout_id, f"unanswered:{info.code}")
    _reschedule(payout_id, now, None)
    return status


def _reschedule(payout_id: int, now: datetime, sent_at: datetime | None) -> None:
    if sent_at is not None:
        when = max(payouts.next_sent_check(sent_at, now), now + timedelta(seconds=1))
    else:
        when = now + RETRY_CHECK
    db.session.execute(update(Payout).where(Payout.id == payout_id).values(next_check_at=when)
                       .execution_options(synchronize_session=False))
    db.session.commit()
