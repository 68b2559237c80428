"""The payout state machine: reserved → sending → sent → claimed | refunded, with failed and
manual_review. Every transition is a compare-and-set on the status, committed together with its
ledger transaction and budget mirror change — a transition that loses the race writes nothing.

Sending: the mch_billno was committed with the approval; every call (retry, duplicate delivery,
sweeper) repeats it with identical parameters, so WeChat pays at most once. An outcome that is not
a clear yes or no is resolved by gethbinfo, never by a new billno. What each answer leads to is
rewards/decisions.py's table (merchant-wide pauses: rewards/pauses.py); a new billno is used only once
gethbinfo has proved the old one never paid.
"""
from __future__ import annotations

import logging
import os
import signal
from datetime import datetime, timedelta

from sqlalchemy import select, update

from app.extensions import db, wechat
from app.models.base import utcnow
from app.models.resident import Resident
from app.wechat import PayOutcome, PayResult, make_mch_billno
from rewards import budget, decisions, ledger, pauses
from rewards.clock import shanghai_day
from rewards.models import Payout

log = logging.getLogger(__name__)

ACT_NAME = "隐患随手拍"
WISHING = "感谢您守护城市平安"
REMARK = "人人拍报料奖励"
OPEN_STATUSES = ("reserved", "sending", "waiting_confirm")   # reserved budget, nothing paid yet
SENT_CHECKS = (timedelta(minutes=15), timedelta(hours=1), timedelta(hours=4), timedelta(hours=12),
               timedelta(hours=24, minutes=10))       # when the sweeper asks WeChat about a sent packet
HB_PAID = ("SENT", "RECEIVED", "RFUND_ING", "REFUND")   # gethbinfo statuses of a packet that left the balance
MAX_REISSUES = 3        # new billnos for one payout (each after proof); beyond: a person looks


def next_sent_check(sent_at: datetime, now: datetime) -> datetime:
    """When the sweeper next asks WeChat about a sent packet. Production: on WeChat's schedule above
    (few gethbinfo calls). REWARDS_CHECK_SCHEDULE=every_sweep (the default outside production, where
    the sandbox's clock can jump 24 h): at every sweep."""
    from flask import current_app

    if current_app.config.get("REWARDS_CHECK_SCHEDULE") == "every_sweep":
        return now
    upcoming = [sent_at + step for step in SENT_CHECKS if sent_at + step > now]
    return upcoming[0] if upcoming else now + timedelta(hours=4)


class PayoutPending(Exception):
    """Not settled yet (WeChat busy, not enough balance, outcome unknown): the outbox redelivers the
    job later and it calls again with the same mch_billno."""


def crash_point(name: str) -> None:
    """Fault injection for tests: RENRENPAI_CRASH_AT=<name> kills this process (SIGKILL) right here;
    with RENRENPAI_CRASH_FLAG=<path> only the first process to get there dies."""
    if os.environ.get("RENRENPAI_CRASH_AT") != name:
        return
    flag = os.environ.get("RENRENPAI_CRASH_FLAG")
    if flag:
        try:
            os.close(os.open(flag, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
    os.kill(os.getpid(), signal.SIGKILL)


def transition(payout_id: int, from_statuses, to_status: str, **values) -> bool:
    """Compare-and-set; the caller commits."""
    return db.session.execute(
        update(Payout).where(Payout.id == payout_id, Payout.status.in_(tuple(from_statuses)))
        .values(status=to_status, updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    ).rowcount == 1


def _fresh(payout_id: int) -> Payout | None:
    return db.session.execute(select(Payout).where(Payout.id == payout_id)
                              .execution_options(populate_existing=True)).scalar_one_or_none()


# --- sending -----------------------------------------------------------------------------------------

def send_payout(payout_id: int) -> str:
    """Send one payout through its own channel (rewards/channels/): idempotent, any number of
    concurrent or repeated runs pay once."""
    from rewards.channels import channel_named

    channel = db.session.execute(select(Payout.channel).where(Payout.id == payout_id)).scalar()
    db.session.rollback()
    if channel is None:
        return "missing"
    return channel_named(channel).send_payout(payout_id)


def send_redpack(payout_id: int, probe: bool = False) -> str:
    """Call WeChat for one red packet (idempotent: any number of concurrent or repeated runs pay once).
    While the merchant's payouts are paused a packet not yet sent is held instead (a probe is sent)."""
    payout = _fresh(payout_id)
    if payout is None:
        db.session.rollback()
        return "missing"
    if payout.status == "reserved":
        pause = None if probe else pauses.open_pause()
        if pause is not None:
            pauses.hold(payout_id, pause, utcnow())
            return "reserved"
        transition(payout_id, ("reserved",), "sending", first_call_at=utcnow(),
                   next_check_at=utcnow() + timedelta(minutes=2))
    elif payout.status != "sending":
        db.session.rollback()
        return payout.status
    openid = db.session.get(Resident, payout.resident_id).wechat_openid
    billno, amount = payout.mch_billno, payout.amount_fen
    db.session.execute(update(Payout).where(Payout.id == payout_id)
                       .values(attempts=Payout.attempts + 1).execution_options(synchronize_session=False))
    db.session.commit()  # never hold a transaction open across an HTTP call

    crash_point("before_call")
    result = wechat.send_miniprogram_hb(billno, openid, amount, ACT_NAME, REMARK, WISHING)
    crash_point("after_call")
    return apply_send_result(payout_id, result, probe=probe)


def apply_send_result(payout_id: int, result: PayResult, probe: bool = False) -> str:
    """What the payout does with a send's answer: rewards/decisions.py's `send` rows."""
    if result.outcome is PayOutcome.SUCCESS:
        status = mark_sent(payout_id, at=utcnow(), package=result.package, detail_id=result.detail_id)
        crash_point("after_commit")
        if probe:  # the merchant's condition has cleared
            pauses.end_pause("probe")
        return status
    code = result.code
    action = decisions.decide("send", code).action
    if action == decisions.IN_FLIGHT:      # WeChat is on it: the sweeper asks gethbinfo
        _note_code(payout_id, code)
        return _fresh_status(payout_id)
    if action == decisions.RETRY_SAME:
        _note_code(payout_id, code)
        raise PayoutPending(code)
    if action == decisions.PAUSE:
        pause = pauses.start_pause(code)
        pauses.hold(payout_id, pause, utcnow(), code=code, from_statuses=("sending", "reserved"))
        return _fresh_status(payout_id)
    if action == decisions.DEFER:
        return defer_to_next_day(payout_id, code)
    if action == decisions.REISSUE:
        return reissue_after_proof(payout_id, code)
    if action == decisions.FINAL:
        return mark_failed(payout_id, code)
    if action == decisions.MANUAL:
        return to_manual_review(payout_id, f"request:{code}"[:64])
    return resolve_unknown(payout_id, code)


def defer_to_next_day(payout_id: int, code: str) -> str:
    """The resident's daily limit at WeChat (nothing was paid): the same billno on the next Beijing day."""
    now = utcnow()
    if transition(payout_id, ("sending", "reserved"), "reserved", last_code=code[:32],
                  next_check_at=pauses.next_day_start(now)):
        db.session.commit()
        return "reserved"
    db.session.rollback()
    return _fresh_status(payout_id)


def reissue_after_proof(payout_id: int, code: str) -> str:
    """WeChat wants another billno (SEND_FAILED): only once gethbinfo proves the old one never paid."""
    _note_code(payout_id, code)
    payout = _fresh(payout_id)
    billno = payout.mch_billno
    db.session.rollback()
    info = wechat.get_hb_info(billno)
    if info.outcome is PayOutcome.SUCCESS and info.status != "FAILED":
        return apply_hb_info(payout_id, info)    # it exists after all: follow WeChat
    if info.outcome is PayOutcome.SUCCESS or info.code == "NOT_FOUND":
        return reissue(payout_id, billno, info.status or info.code)
    raise PayoutPending(f"{code}; query {info.code}")


def reissue(payout_id: int, old_billno: str, proof: str) -> str:
    """A new billno for a payout whose `old_billno` gethbinfo proved unpaid (`proof`: NOT_FOUND or
    FAILED); the old one is kept in previous_billnos. Then it is sent."""
    payout = _fresh(payout_id)
    if payout is None or payout.mch_billno != old_billno or payout.sent_at is not None:
        db.session.rollback()
        return payout.status if payout else "missing"
    previous = list(payout.previous_billnos or [])
    if len(previous) >= MAX_REISSUES:
        db.session.rollback()
        return to_manual_review(payout_id, "reissued_too_often")
    new_billno = make_mch_billno(current_app_mch_id(), shanghai_day(utcnow()),
                                 (len(previous) + 1) * 10 ** 9 + payout.id)
    swapped = db.session.execute(
        update(Payout).where(Payout.id == payout_id, Payout.mch_billno == old_billno, Payout.sent_at.is_(None),
                             Payout.status.in_(("reserved", "sending", "manual_review")))
        .values(mch_billno=new_billno, previous_billnos=[*previous, old_billno], status="reserved", reason=None,
                last_code=f"REISSUED:{proof}"[:32], next_check_at=utcnow(), updated_at=utcnow())
        .execution_options(synchronize_session=False)).rowcount == 1
    db.session.commit()
    crash_point("after_reissue")
    if not swapped:
        return _fresh_status(payout_id)
    log.warning("red packet reissued under a new billno", extra={"event": "payout.reissued", "payout_id": payout_id,
                                                                  "proof": proof, "reissues": len(previous) + 1})
    return send_redpack(payout_id)


def current_app_mch_id() -> str:
    from flask import current_app

    return current_app.config["WECHAT_MCH_ID"]


def _fresh_status(payout_id: int) -> str:
    current = _fresh(payout_id)
    db.session.rollback()
    return current.status if current else "missing"


def resolve_unknown(payout_id: int, code: str) -> str:
    """The call may or may not have paid: ask WeChat about this billno."""
    _note_code(payout_id, code)
    payout = _fresh(payout_id)
    billno = payout.mch_billno
    db.session.rollback()
    info = wechat.get_hb_info(billno)
    if info.outcome is PayOutcome.SUCCESS:
        return apply_hb_info(payout_id, info)
    raise PayoutPending(f"{code}; query {info.code}")  # NOT_FOUND too: resend the same billno later


def apply_hb_info(payout_id: int, info: PayResult) -> str:
    """Bring our state up to what gethbinfo says: rewards/decisions.py's `status` rows."""
    status = info.status
    payout = _fresh(payout_id)
    db.session.rollback()
    if payout is None:
        return "missing"
    if info.mch_billno and info.mch_billno != payout.mch_billno:
        return payout.status    # an answer about a billno this payout gave up: nothing to follow
    unsent = payout.status in OPEN_STATUSES or (payout.status == "manual_review" and payout.sent_at is None)
    action = decisions.decide("status", status).action
    if action == decisions.REISSUE:   # FAILED: never paid
        if unsent:
            return reissue(payout_id, payout.mch_billno, "FAILED")
        return to_manual_review(payout_id, "wechat_failed_after_sent")
    if action == decisions.IN_FLIGHT:  # SENDING: not paid yet, whatever its reason says
        if unsent:
            _note_code(payout_id, "SENDING")
        return _fresh_status(payout_id)
    if unsent:
        mark_sent(payout_id, at=booked_at(info.send_time), detail_id=info.detail_id)
        if payout.package is None:
            _fetch_package(payout_id)
    elif status in ("SENT", "RFUND_ING") and payout.status == "manual_review":
        # in flight after all (a person asked again): back under the sweeper's watch, no money moves
        if transition(payout_id, ("manual_review",), "sent", reason=None,
                      next_check_at=next_sent_check(payout.sent_at, utcnow())):
            db.session.commit()
    if status == "RECEIVED":
        return mark_claimed(payout_id, at=booked_at(info.rcv_time))
    if status == "REFUND":
        return mark_refunded(payout_id, at=booked_at(info.refund_time))
    return _fresh_status(payout_id)


def booked_at(wechat_time: datetime | None) -> datetime:
    """When WeChat says it settled (that is the day its bill shows), never later than our now: a
    clock ahead of ours must not book money on a day that has not come yet."""
    now = utcnow()
    return min(wechat_time, now) if wechat_time is not None else now


def _fetch_package(payout_id: int) -> None:
    """A lost reply means a lost `package` (what the mini-program opens). The same billno with the
    same parameters returns the original result, so asking again is safe."""
    payout = _fresh(payout_id)
    openid = db.session.get(Resident, payout.resident_id).wechat_openid
    billno, amount = payout.mch_billno, payout.amount_fen
    db.session.rollback()
    result = wechat.send_miniprogram_hb(billno, openid, amount, ACT_NAME, REMARK, WISHING)
    if result.ok and result.package:
        db.session.execute(update(Payout).where(Payout.id == payout_id, Payout.package.is_(None))
                           .values(package=result.package).execution_options(synchronize_session=False))
        db.session.commit()


def _note_code(payout_id: int, code: str) -> None:
    db.session.execute(update(Payout).where(Payout.id == payout_id).values(last_code=(code or "")[:32])
                       .execution_options(synchronize_session=False))
    db.session.commit()


# --- transitions with their money ---------------------------------------------------------------------

def mark_sent(payout_id: int, *, at: datetime, package: str | None = None, detail_id: str | None = None) -> str:
    payout = _fresh(payout_id)
    values = {"sent_at": at, "next_check_at": next_sent_check(at, utcnow()), "last_code": "SUCCESS"}
    if package:
        values["package"] = package
    if detail_id:
        values["detail_id"] = detail_id
    from_statuses = ("sending", "reserved", "manual_review")
    if payout.status == "manual_review" and payout.sent_at is not None:
        from_statuses = ()
    if from_statuses and transition(payout_id, from_statuses, "sent", reason=None, **values):
        budget.commit_reserved(payout.period, payout.amount_fen)
        memo = None
        if payout.previous_billnos:  # both billnos in the books: the paid one and those proved unpaid
            memo = f"mch_billno {payout.mch_billno}; earlier {', '.join(payout.previous_billnos)} proved unpaid"
        ledger.post_sent(payout, at=at, memo=memo)
        event = {"event": "payout.sent", "payout_id": payout_id, "tip_id": payout.tip_id,
                 "amount_fen": payout.amount_fen}  # read before the commit expires them
        db.session.commit()
        log.info("red packet sent", extra=event)
        return "sent"
    db.session.rollback()
    return _fresh(payout_id).status


def mark_failed(payout_id: int, code: str, status: str = "failed") -> str:
    """WeChat said no and nothing was paid: the reservation and the caps come back. `status`
    cancelled: a transfer the resident let lapse or we cancelled (booked as the same release)."""
    payout = _fresh(payout_id)
    if payout.sent_at is None and transition(payout_id, ("reserved", "sending", "waiting_confirm", "manual_review"),
                                             status,
                                             reason=(code or "failed")[:64], last_code=(code or "")[:32],
                                             settled_at=utcnow(), next_check_at=None):
        budget.release_reserved(payout.period, payout.amount_fen)
        budget.release_counters(budget.counters_for(payout.resident_id, payout.business_day.isoformat(),
                                                    payout.period), payout.amount_fen)
        ledger.post_failed(payout, memo="转账已取消或逾期未确认" if status == "cancelled" else None)
        db.session.commit()
        return status
    db.session.rollback()
    return _fresh(payout_id).status


def mark_claimed(payout_id: int, at: datetime) -> str:
    payout = _fresh(payout_id)
    if payout.sent_at is not None and transition(payout_id, ("sent", "manual_review"), "claimed", settled_at=at,
                                                 next_check_at=None, reason=None):
        ledger.post_claimed(payout, at=at)
        db.session.commit()
        return "claimed"
    db.session.rollback()
    return _fresh(payout_id).status


def mark_refunded(payout_id: int, at: datetime) -> str:
    payout = _fresh(payout_id)
    if payout.sent_at is not None and transition(payout_id, ("sent", "manual_review"), "refunded", settled_at=at,
                                                 next_check_at=None, reason=None):
        closed = budget.return_refund(payout.period, payout.amount_fen)
        ledger.post_refunded(payout, period_closed=closed, at=at)
        db.session.commit()
        return "refunded"
    db.session.rollback()
    return _fresh(payout_id).status


def to_manual_review(payout_id: int, reason: str) -> str:
    if transition(payout_id, ("reserved", "sending", "sent", "waiting_confirm"), "manual_review", reason=reason[:64],
                  next_check_at=None):
        db.session.commit()
        log.warning("payout needs manual review", extra={"payout_id": payout_id, "reason": reason})
        return "manual_review"
    db.session.rollback()
    return _fresh(payout_id).status
