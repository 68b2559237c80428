"""商家转账 (WeChat Pay APIv3 merchant transfer) as a payout channel.

The bill number (`out_bill_no`) is the payout's mch_billno, committed with the approval before the
first call and sent again, with identical parameters, on every retry, duplicate delivery and sweep:
WeChat answers the same bill, so it pays at most once. A new bill waits for the resident
(WAIT_USER_CONFIRM → reward `waiting_confirm`, the residents' API gives what
wx.requestMerchantTransfer needs); money leaves the merchant account only when they confirm
(SUCCESS → `claimed`: `sent` and `claimed` booked together on WeChat's day). A bill left 24 h ends
FAIL/OVERDUE_CLOSE, a cancelled one CANCELLED (through CANCELING): `cancelled`, the reservation and
the caps back in the budget. WeChat's result notification (rewards/transfer_notify.py) and the
sweeper's queries both settle through `settle`, whichever comes first; the other finds nothing to do.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import select, update

from app.extensions import db, wechat
from app.models.base import utcnow
from app.models.resident import Resident
from app.wechat import PayOutcome, PayResult
from rewards import budget, ledger, payouts
from rewards.channels import PayoutChannel
from rewards.models import Payout

log = logging.getLogger(__name__)

# transfer_remark: what the resident reads on the bill (Chinese, at most 32 characters)
REMARK = "人人拍隐患报料奖励"
SENDING_WINDOW = timedelta(hours=24)    # a bill WeChat still does not know after this: a person looks
WAITING_WINDOW = timedelta(hours=72)    # WeChat closes unconfirmed bills at 24 h; beyond this: a person looks
RETRY_CHECK = timedelta(minutes=10)
WAITING_CHECKS = (timedelta(minutes=15), timedelta(hours=1), timedelta(hours=4), timedelta(hours=12),
                  timedelta(hours=24, minutes=10))


@dataclass(frozen=True)
class StateRow:
    """What a bill's state means for its payout: the reward status it leads to (None: unchanged,
    ask again later) and whether money moved."""
    state: str
    fail_reason: str | None     # None: any
    status: str | None
    meaning: str


# The decision table of WeChat's bill states (docs/WECHAT.md §商家转账 in rewards). First match wins.
STATE_ROWS = (
    StateRow("ACCEPTED", None, "sending", "受理成功，微信处理中：稍后再查"),
    StateRow("PROCESSING", None, "sending", "转账处理中：稍后再查"),
    StateRow("WAIT_USER_CONFIRM", None, "waiting_confirm", "待居民确认收款：小程序用 package 调起 wx.requestMerchantTransfer"),
    StateRow("TRANSFERING", None, "sending", "居民已确认，转账中：稍后再查"),
    StateRow("SUCCESS", None, "claimed", "转账成功：钱已到居民零钱，记发出与领取"),
    StateRow("FAIL", "OVERDUE_CLOSE", "cancelled", "居民 24 小时未确认，微信关单：预算退回"),
    StateRow("FAIL", None, "failed", "转账失败（如账户异常）：没有付款，预算退回"),
    StateRow("CANCELING", None, None, "撤销中：稍后再查，终态为 CANCELLED"),
    StateRow("CANCELLED", None, "cancelled", "已撤销：预算退回"),
)

# What a create call's classified outcome leads to (the codes per outcome: app/wechat/pay_v3.py).
CREATE_ROWS = {
    PayOutcome.SUCCESS: "settle",          # the bill's state, through STATE_ROWS
    PayOutcome.RETRY_SAME: "retry_same",   # SYSTEM_ERROR, NOT_ENOUGH, FREQUENCY_LIMIT_EXCEED…: same number later
    PayOutcome.FAILED_FINAL: "failed",     # PARAM_ERROR, ACCOUNT_ERROR: nothing paid, budget back
    PayOutcome.CONFIG_ERROR: "manual_review",  # SIGN_ERROR, NO_AUTH, CERT_MISSING: an operator looks
    PayOutcome.UNKNOWN: "query",           # timeout, INVALID_REQUEST, unsigned or unreadable reply: ask WeChat
}


def state_row(state: str | None, fail_reason: str | None) -> StateRow | None:
    for row in STATE_ROWS:
        if row.state == state and row.fail_reason in (None, fail_reason):
            return row
    return None


def _fresh(payout_id: int) -> Payout | None:
    return db.session.execute(select(Payout).where(Payout.id == payout_id)
                              .execution_options(populate_existing=True)).scalar_one_or_none()


def next_waiting_check(since: datetime, now: datetime) -> datetime:
    from flask import current_app

    if current_app.config.get("REWARDS_CHECK_SCHEDULE") == "every_sweep":
        return now
    upcoming = [since + step for step in WAITING_CHECKS if since + step > now]
    return upcoming[0] if upcoming else now + timedelta(hours=4)


class TransferChannel(PayoutChannel):
    name = "transfer"

    # sending ---------------------------------------------------------------------------------
    def send_payout(self, payout_id: int) -> str:
        payout = _fresh(payout_id)
        if payout is None:
            db.session.rollback()
            return "missing"
        if payout.status == "reserved":
            payouts.transition(payout_id, ("reserved",), "sending", first_call_at=utcnow(),
                               next_check_at=utcnow() + timedelta(minutes=2))
        elif payout.status != "sending":
            db.session.rollback()
            return payout.status
        openid = db.session.get(Resident, payout.resident_id).wechat_openid
        billno, amount = payout.mch_billno, payout.amount_fen
        db.session.execute(update(Payout).where(Payout.id == payout_id)
                           .values(attempts=Payout.attempts + 1).execution_options(synchronize_session=False))
        db.session.commit()  # never hold a transaction open across an HTTP call

        payouts.crash_point("before_call")
        result = wechat.create_transfer(billno, openid, amount, REMARK)
        payouts.crash_point("after_call")
        return self.apply_create_result(payout_id, result)

    def apply_create_result(self, payout_id: int, result: PayResult) -> str:
        action = CREATE_ROWS[result.outcome]
        if action == "settle":
            status = self.settle(payout_id, result)
            payouts.crash_point("after_commit")
            return status
        if action == "failed":
            return payouts.mark_failed(payout_id, result.code)
        if action == "manual_review":
            return payouts.to_manual_review(payout_id, f"config:{result.code}"[:64])
        if action == "query":
            payouts._note_code(payout_id, result.code)
            billno = _fresh(payout_id).mch_billno
            db.session.rollback()
            info = wechat.query_transfer(billno)
            if info.ok:
                return self.settle(payout_id, info)
            raise payouts.PayoutPending(f"{result.code}; query {info.code}")  # NOT_FOUND: same number later
        payouts._note_code(payout_id, result.code)
        raise payouts.PayoutPending(result.code)

    # settling ---------------------------------------------------------------------------------
    def query(self, billno: str) -> PayResult:
        return wechat.query_transfer(billno)

    def settle(self, payout_id: int, info: PayResult) -> str:
        """Bring the payout up to the bill's state (a create reply, a query or a notification).
        Every move is a compare-and-set committed with its money: a repeat finds nothing to do."""
        payout = _fresh(payout_id)
        if payout is None:
            db.session.rollback()
            return "missing"
        row = state_row(info.status, info.reason)
        status, sent_at = payout.status, payout.sent_at
        if info.amount_fen is not None and info.amount_fen != payout.amount_fen:
            db.session.rollback()
            return payouts.to_manual_review(payout_id, f"amount_mismatch:{info.amount_fen}")
        db.session.rollback()
        open_now = status in payouts.OPEN_STATUSES or (status == "manual_review" and sent_at is None)
        if row is None or row.status is None or not open_now:
            if row is not None and row.status == "claimed" and status == "manual_review" and sent_at is not None:
                return self._claim(payout_id, info)
            self._note_state(payout_id, info.status)
            return _fresh_status(payout_id)
        if row.status == "claimed":
            return self._claim(payout_id, info)
        if row.status in ("cancelled", "failed"):
            return payouts.mark_failed(payout_id, info.reason or info.status, status=row.status)
        values = {"last_code": info.status, "reason": None}
        if info.detail_id:
            values["detail_id"] = info.detail_id
        if row.status == "waiting_confirm":
            if info.package:
                values["package"] = info.package
            since = info.send_time or utcnow()
            values["next_check_at"] = next_waiting_check(since, utcnow())
        else:
            values["next_check_at"] = utcnow() + timedelta(minutes=2)
        if payouts.transition(payout_id, ("reserved", "sending", "waiting_confirm", "manual_review"), row.status,
                              **values):
            fetch = row.status == "waiting_confirm" and not info.package and payout.package is None
            event = {"event": "payout.waiting", "payout_id": payout_id, "tip_id": payout.tip_id,
                     "amount_fen": payout.amount_fen}  # read before the commit expires them
            db.session.commit()
            if row.status == "waiting_confirm" and status != "waiting_confirm":
                log.info("transfer waiting for the resident", extra=event)
            if fetch:
                self._fetch_package(payout_id)
            return row.status
        db.session.rollback()
        return _fresh_status(payout_id)

    def _claim(self, payout_id: int, info: PayResult) -> str:
        """The resident confirmed: the money left the merchant account and reached them, booked
        sent and claimed together, on WeChat's day."""
        at = payouts.booked_at(info.rcv_time)
        payout = _fresh(payout_id)
        from_statuses = ("reserved", "sending", "waiting_confirm", "manual_review")
        if payout.sent_at is None and payouts.transition(payout_id, from_statuses, "claimed", sent_at=at, settled_at=at,
                                                         next_check_at=None, reason=None, last_code=info.status,
                                                         detail_id=info.detail_id or payout.detail_id):
            budget.commit_reserved(payout.period, payout.amount_fen)
            ledger.post_sent(payout, at=at)
            ledger.post_claimed(payout, at=at)
            event = {"event": "payout.claimed", "payout_id": payout_id, "tip_id": payout.tip_id,
                     "amount_fen": payout.amount_fen}  # read before the commit expires them
            db.session.commit()
            log.info("transfer confirmed", extra=event)
            return "claimed"
        db.session.rollback()
        return _fresh_status(payout_id)

    def _fetch_package(self, payout_id: int) -> None:
        """A bill known from a query has no package_info: the same create call answers it again."""
        payout = _fresh(payout_id)
        openid = db.session.get(Resident, payout.resident_id).wechat_openid
        billno, amount = payout.mch_billno, payout.amount_fen
        db.session.rollback()
        result = wechat.create_transfer(billno, openid, amount, REMARK)
        if result.ok and result.package:
            db.session.execute(update(Payout).where(Payout.id == payout_id, Payout.package.is_(None))
                               .values(package=result.package).execution_options(synchronize_session=False))
            db.session.commit()

    @staticmethod
    def _note_state(payout_id: int, state: str | None) -> None:
        if state:
            payouts._note_code(payout_id, state)

    # the sweeper ------------------------------------------------------------------------------
    def check_payout(self, payout_id: int, now: datetime | None = None) -> str:
        now = now or utcnow()
        payout = db.session.get(Payout, payout_id)
        if payout is None:
            return "missing"
        status, billno = payout.status, payout.mch_billno
        started = payout.first_call_at or payout.reserved_at or payout.created_at
        db.session.rollback()
        if status == "reserved":  # the outbox should have sent it; send now (same number, harmless twice)
            return self.send_payout(payout_id)
        info = wechat.query_transfer(billno)
        if info.ok:
            result = self.settle(payout_id, info)
            if result in ("sending", "waiting_confirm"):
                if now - started > WAITING_WINDOW:
                    return payouts.to_manual_review(payout_id, "unsettled_after_window")
                if result == "sending":
                    _reschedule(payout_id, now + timedelta(minutes=2))
            return result
        if status == "sending" and info.code == "NOT_FOUND":
            if now - started > SENDING_WINDOW:
                return payouts.to_manual_review(payout_id, "not_found_after_window")
            _reschedule(payout_id, now + RETRY_CHECK)
            return self.send_payout(payout_id)  # WeChat never saw it: send (the same number)
        window = SENDING_WINDOW if status == "sending" else WAITING_WINDOW
        if now - started > window:
            return payouts.to_manual_review(payout_id, f"unanswered:{info.code}")
        _reschedule(payout_id, now + RETRY_CHECK)
        return status

    # the resident and the bill --------------------------------------------------------------------
    def receive_params(self, payout) -> dict:
        """While the bill waits for the resident: what wx.requestMerchantTransfer takes."""
        if payout.status == "waiting_confirm" and payout.package:
            return {"transfer": wechat.transfer_params(payout.package)}
        return {}

    def day_bill(self, day):
        return wechat.download_fundflow_v3(day)

    # cancelling -----------------------------------------------------------------------------------
    def cancel(self, payout_id: int) -> str:
        """撤销转账 of a bill still waiting for the resident: the bill ends CANCELLED and the payout
        `cancelled`, its amount back in the budget. Answers the payout's status after."""
        payout = _fresh(payout_id)
        billno = payout.mch_billno
        db.session.rollback()
        result = wechat.cancel_transfer(billno)
        info = wechat.query_transfer(billno)
        if info.ok:
            return self.settle(payout_id, info)
        if not result.ok:
            raise payouts.PayoutPending(result.code)
        return _fresh_status(payout_id)


def _fresh_status(payout_id: int) -> str:
    current = _fresh(payout_id)
    db.session.rollback()
    return current.status if current is not None else "missing"


def _reschedule(payout_id: int, when: datetime) -> None:
    db.session.execute(update(Payout).where(Payout.id == payout_id).values(next_check_at=when)
                       .execution_options(synchronize_session=False))
    db.session.commit()


def _rfc3339(value) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)).astimezone(timezone.utc) if value else None
    except ValueError:
        return None


def settle_notification(resource: dict) -> str:
    """A verified result notification (the decrypted resource): settle its payout as a query would.
    Unknown bill numbers are acknowledged and ignored."""
    billno = str(resource.get("out_bill_no") or "")
    payout_id = db.session.execute(select(Payout.id).where(Payout.mch_billno == billno,
                                                           Payout.channel == "transfer")).scalar()
    db.session.rollback()
    if payout_id is None:
        log.warning("transfer notification for an unknown bill")
        return "unknown"
    state, updated = resource.get("state"), _rfc3339(resource.get("update_time"))
    try:
        amount = int(resource["transfer_amount"]) if resource.get("transfer_amount") is not None else None
    except (TypeError, ValueError):
        amount = None
    info = PayResult(PayOutcome.SUCCESS, "SUCCESS", raw=resource, mch_billno=billno, status=state,
                     detail_id=resource.get("transfer_bill_no"), amount_fen=amount, reason=resource.get("fail_reason"),
                     rcv_time=updated if state == "SUCCESS" else None,
                     refund_time=updated if state in ("FAIL", "CANCELLED") else None)
    return TransferChannel().settle(payout_id, info)
