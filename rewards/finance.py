"""Finance operations behind the API and the console: summary, payout lists and exports, manual
review actions, and dual control (a top-up or policy change takes effect only when a second
finance user approves it). Every action is audited; functions flush, the view commits."""
from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import and_, func, or_, select, update

from app.audit import record_audit
from app.display import business_day, day_bounds_utc
from app.errors import Conflict, Forbidden, NotFound, Unprocessable
from app.extensions import db
from app.ids import parse_cursor
from app.models.base import utcnow
from app.display import REWARD_STATUS
from app.wechat import PayOutcome
from rewards import ledger, payouts
from rewards.budget import check_period
from rewards.channels import CHANNEL_LABELS
from rewards.models import BudgetPeriod, FinanceRequest, LedgerEntry, LedgerTransaction, Payout
from rewards.policy import active_policy, validate_policy

FLOW_KINDS = ("reserve", "sent", "claimed", "refunded", "failed")
STATUS_LABELS = REWARD_STATUS  # one set of words with the residents' API and the console


def fen_from_yuan(text: str | None, field: str) -> int | None:
    """A form's amount in 元 ("12", "12.5", "12.50") → integer fen; blank → None. Exact (Decimal)."""
    from decimal import Decimal, InvalidOperation

    text = (text or "").strip().replace(",", "").replace("，", "").lstrip("¥￥")
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise Unprocessable(fields={field: ["请填写金额（元），如 12.50"]}) from None
    if not value.is_finite() or value != value.quantize(Decimal("0.01")) or value < 0:
        raise Unprocessable(fields={field: ["金额须为不小于 0 的元数，最多两位小数"]})
    return int(value * 100)


def parse_range(start: date | None, end: date | None) -> tuple[date, date]:
    end = end or business_day()
    start = start or end.replace(day=1)
    if start > end:
        raise Unprocessable(fields={"from": ["开始日期不能晚于结束日期"]})
    if (end - start).days > 366:
        raise Unprocessable(fields={"to": ["查询范围不能超过一年"]})
    return start, end


def summary(start: date | None = None, end: date | None = None) -> dict:
    """What finance reads for two Shanghai days, inclusive (fen).

    The cards follow the rewards RESERVED in the range (by reservation day) to where they are now,
    each term read from the ledger or the payouts on its own, so the identities below are a check,
    not arithmetic: 已预留 = 已发出 + 待发出 + 发放失败 and 已发出 = 已领取 + 已退回 + 在途.
    `flows` and `by_day` are money by the day it moved (sent, claimed, refunded on WeChat's dates,
    which is what reconciliation matches): 期初在途 + 发出 − 领取 − 退回 = 期末在途."""
    start, end = parse_range(start, end)
    cohort = (select(LedgerTransaction.payout_id)
              .where(LedgerTransaction.kind == "reserve", LedgerTransaction.business_day.between(start, end)))
    by_kind = dict(db.session.execute(
        select(LedgerTransaction.kind, func.sum(Payout.amount_fen))
        .join(Payout, Payout.id == LedgerTransaction.payout_id)
        .where(LedgerTransaction.payout_id.in_(cohort), LedgerTransaction.kind.in_(FLOW_KINDS))
        .group_by(LedgerTransaction.kind)).all())
    cards = {kind: int(by_kind.get(kind) or 0) for kind in FLOW_KINDS}
    cards["pending"] = int(db.session.scalar(
        select(func.coalesce(func.sum(Payout.amount_fen), 0))
        .where(Payout.id.in_(cohort), or_(Payout.status.in_(payouts.OPEN_STATUSES),
                                          and_(Payout.status == "manual_review", Payout.sent_at.is_(None))))))
    cards["in_flight"] = int(db.session.scalar(  # by the cohort's payouts (ix_ledger_entries_payout), not the account
        select(func.coalesce(func.sum(LedgerEntry.amount_fen), 0))
        .where(LedgerEntry.payout_id.in_(cohort), LedgerEntry.account == ledger.IN_FLIGHT)))

    rows = db.session.execute(
        select(LedgerTransaction.business_day, LedgerTransaction.kind, func.sum(Payout.amount_fen))
        .join(Payout, Payout.id == LedgerTransaction.payout_id)
        .where(LedgerTransaction.business_day.between(start, end), LedgerTransaction.kind.in_(FLOW_KINDS))
        .group_by(LedgerTransaction.business_day, LedgerTransaction.kind)).all()
    days: dict[date, dict] = {}
    for offset in range((end - start).days + 1):
        days[start + timedelta(days=offset)] = {kind: 0 for kind in FLOW_KINDS}
    moved = {kind: 0 for kind in FLOW_KINDS}
    for day, kind, total in rows:
        days[day][kind] = int(total or 0)
        moved[kind] += int(total or 0)
    # balances as at a day from the per-day totals (O(days), not a sum over every entry ever posted)
    flows = {"opening_in_flight_fen": ledger.balance_through(ledger.IN_FLIGHT, start, before=True),
             "sent_fen": moved["sent"], "claimed_fen": moved["claimed"], "refunded_fen": moved["refunded"],
             "closing_in_flight_fen": ledger.balance_through(ledger.IN_FLIGHT, end)}

    periods = sorted({d.strftime("%Y-%m") for d in days})
    # the budget table, not a sum over every budget entry ever posted (O(history): a full scan of
    # ledger_entries at a province's scale); `rewards check` holds it equal to the ledger
    budgets = {b.period: {"available": b.available_fen, "reserved": b.reserved_fen, "committed": b.committed_fen}
               for b in db.session.scalars(select(BudgetPeriod))}
    funded = dict(db.session.execute(  # funding carries no payout: the payout index finds them
        select(LedgerTransaction.period, func.count())
        .where(LedgerTransaction.kind == "funding", LedgerTransaction.payout_id.is_(None),
               LedgerTransaction.period.in_(periods))
        .group_by(LedgerTransaction.period)).all())
    return {
        "from": start.isoformat(), "to": end.isoformat(),
        "basis": "reserved_day",
        "budget": [{"period": p, **budgets.get(p, {"available": 0, "reserved": 0, "committed": 0}),
                    "topups": int(funded.get(p, 0))} for p in periods],
        "reserved_fen": cards["reserve"], "sent_fen": cards["sent"], "pending_fen": cards["pending"],
        "failed_fen": cards["failed"], "claimed_fen": cards["claimed"], "refunded_fen": cards["refunded"],
        "in_flight_fen": cards["in_flight"],
        "identities": _identities(cards, flows),
        "flows": flows,
        "open_reserved_fen": sum(b["reserved"] for b in budgets.values()),
        "manual_review": db.session.execute(select(func.count()).where(Payout.status == "manual_review")).scalar(),
        "by_day": [{"date": d.isoformat(), **{f"{k}_fen": v for k, v in flows_.items()}} for d, flows_ in days.items()],
    }


def _identities(cards: dict, flows: dict) -> list[dict]:
    """Each identity as finance reads it: the left side, the terms on the right, and whether it holds."""
    def identity(code, left, terms):
        total = sum(sign * value for _, value, sign in terms)
        return {"code": code, "left": left, "terms": [{"label": label, "fen": value, "sign": sign}
                                                      for label, value, sign in terms],
                "holds": left[1] == total}

    return [
        identity("reserved", ("已预留", cards["reserve"]),
                 [("已发出", cards["sent"], 1), ("待发出", cards["pending"], 1), ("发放失败", cards["failed"], 1)]),
        identity("sent", ("已发出", cards["sent"]),
                 [("已领取", cards["claimed"], 1), ("已退回", cards["refunded"], 1), ("在途", cards["in_flight"], 1)]),
        identity("flows", ("期末在途", flows["closing_in_flight_fen"]),
                 [("期初在途", flows["opening_in_flight_fen"], 1), ("本期发出", flows["sent_fen"], 1),
                  ("本期领取", flows["claimed_fen"], -1), ("本期退回", flows["refunded_fen"], -1)]),
    ]


def payouts_query(status: str | None = None, start: date | None = None, end: date | None = None):
    query = select(Payout)
    if status:
        query = query.where(Payout.status == status)
    if start:
        query = query.where(Payout.created_at >= day_bounds_utc(start)[0])
    if end:
        query = query.where(Payout.created_at < day_bounds_utc(end)[1])
    return query


def list_payouts(status=None, start=None, end=None, cursor=None, limit=50) -> tuple[list[dict], str | None]:
    query = payouts_query(status, start, end).order_by(Payout.id.desc()).limit(limit + 1)
    after = parse_cursor(cursor)
    if after is not None:
        query = query.where(Payout.id < after)
    rows = db.session.execute(query).scalars().all()
    return [payout_row(p) for p in rows[:limit]], (str(rows[limit - 1].id) if len(rows) > limit else None)


def payout_row(p: Payout) -> dict:
    """A payout for finance: never the resident's openid (resident_id only)."""
    def iso(value):
        return value.isoformat() if value else None

    return {"id": p.id, "tip_id": p.tip_id, "resident_id": p.resident_id, "category": p.category,
            "severity": p.severity, "amount_fen": p.amount_fen, "status": p.status,
            "status_label": STATUS_LABELS.get(p.status, p.status), "reason": p.reason, "mch_billno": p.mch_billno,
            "period": p.period, "created_at": iso(p.created_at), "sent_at": iso(p.sent_at),
            "settled_at": iso(p.settled_at), "last_code": p.last_code, "attempts": p.attempts,
            "channel": p.channel, "channel_label": CHANNEL_LABELS.get(p.channel, p.channel),
            "out_bill_no": p.mch_billno if p.channel == "transfer" else None,
            "previous_billnos": list(p.previous_billnos or [])}


# --- manual review ------------------------------------------------------------------------------------

def act_on_payout(payout_id: int, action: str, note: str | None, staff) -> dict:
    """recheck: ask WeChat (the payout's channel) and settle; retry: send again with the SAME billno;
    mark_failed: only when WeChat confirms it has no such packet or bill (and a note says why);
    cancel: 撤销 a transfer bill still waiting for the resident (the budget comes back)."""
    from rewards.channels import channel_of

    payout = db.session.get(Payout, payout_id)
    if payout is None:
        raise NotFound()
    before = {"status": payout.status, "reason": payout.reason}
    if action not in ("recheck", "retry", "mark_failed", "cancel"):
        raise Unprocessable(fields={"action": ["须为 recheck、retry、mark_failed 或 cancel"]})
    if action == "cancel":
        if payout.channel != "transfer" or payout.status not in ("waiting_confirm", "manual_review") \
                or payout.sent_at is not None:
            raise Conflict("只有等待居民确认收款的转账可以撤销", code="not_cancellable")
    elif payout.status != "manual_review" and action != "recheck":
        raise Conflict("只有待人工核对的红包可以这样处理", code="not_in_manual_review")
    if payout.mch_billno is None:
        raise Conflict("该奖励没有红包单号", code="no_billno")
    billno = payout.mch_billno
    channel = channel_of(payout)
    db.session.rollback()
    if action == "recheck":
        info = channel.query(billno)
        if info.outcome is not PayOutcome.SUCCESS and info.code != "NOT_FOUND":
            raise Conflict(f"微信查询未成功（{info.code}），请稍后再试", code="wechat_query_failed")
        result = channel.settle(payout_id, info) if info.outcome is PayOutcome.SUCCESS else "not_found"
    elif action == "cancel":
        try:
            result = channel.cancel(payout_id)
        except payouts.PayoutPending as exc:
            raise Conflict(f"微信撤销未成功（{exc}），请稍后再试", code="wechat_query_failed") from None
    elif action == "retry":
        if payout.sent_at is not None:
            raise Conflict("该红包已发出，不能重发", code="already_sent")
        if not payouts.transition(payout_id, ("manual_review",), "sending", reason=None,
                                  next_check_at=utcnow() + timedelta(minutes=2)):
            raise Conflict()
        from app.outbox import publish

        publish("rewards.payout", {"payout_id": payout_id}, dedup_key=f"payout:{payout_id}:retry:{utcnow().timestamp()}")
        result = "sending"
    else:
        if not note:
            raise Unprocessable(fields={"note": ["请填写核对说明"]})
        info = channel.query(billno)
        if info.outcome is PayOutcome.SUCCESS:
            raise Conflict(f"微信显示该单状态为 {info.status}，不能标记为失败", code="wechat_has_packet")
        if info.code != "NOT_FOUND":
            raise Conflict(f"微信查询未成功（{info.code}），请稍后再试", code="wechat_query_failed")
        result = payouts.mark_failed(payout_id, "manual_failed")
    record_audit(f"payout.{action}", "payout", payout_id, actor=staff, before=before, after={"status": result},
                 note=note)
    db.session.flush()
    return {"id": payout_id, "status": result}


# --- merchant-wide pauses (rewards/pauses.py) --------------------------------------------------------

def list_pauses() -> dict:
    """The open pause (if any), how many payouts it holds, and the recent pauses."""
    from rewards import pauses

    current = pauses.open_pause()
    rows = [pauses.describe(p) for p in pauses.list_pauses()]
    held = pauses.count_held()
    db.session.rollback()
    return {"paused": current is not None, "current": pauses.describe(current) if current else None,
            "held": held, "items": rows}


def resume_payouts(note: str | None, staff) -> dict:
    """已充值，恢复发放: end the open pause; the held payouts are sent by the next sweep (with their own
    billnos). A condition that has not cleared pauses again at the first packet."""
    from rewards import pauses

    current = pauses.open_pause()
    if current is None:
        db.session.rollback()
        raise Conflict("红包发放没有暂停", code="not_paused")
    before = pauses.describe(current)
    released = pauses.end_pause("finance", staff_id=staff.id, note=note)
    record_audit("payouts.resume", "payout_pause", before["id"], actor=staff,
                 before={"code": before["code"]}, after={"held": released}, note=note)
    db.session.flush()
    return {"paused": False, "resumed": before["id"], "held": released}


# --- dual control -------------------------------------------------------------------------------------

def request_change(kind: str, payload: dict, staff, note: str | None = None) -> FinanceRequest:
    if kind == "topup":
        period, amount = payload.get("period"), payload.get("amount_fen")
        check_period(period, window=True)
        if not isinstance(amount, int) or isinstance(amount, bool) or not 0 < amount <= 10 ** 10:
            raise Unprocessable(fields={"amount_fen": ["须为正整数（分）"]})
        payload = {"period": period, "amount_fen": amount}
    elif kind == "policy":
        payload = {"settings": validate_policy({**_policy_settings(), **(payload.get("settings") or {})})}
    else:
        raise Unprocessable(fields={"kind": ["须为 topup 或 policy"]})
    req = FinanceRequest(kind=kind, payload=payload, requested_by=staff.id, note=note)
    db.session.add(req)
    db.session.flush()
    record_audit("finance.request", "finance_request", req.id, actor=staff, after={"kind": kind, **payload},
                 note=note)
    return req


def _policy_settings() -> dict:
    policy = active_policy()
    return {k: v for k, v in policy.items()}


def decide_request(request_id: int, approve: bool, staff, note: str | None = None) -> FinanceRequest:
    req = db.session.get(FinanceRequest, request_id)
    if req is None:
        raise NotFound()
    if req.requested_by == staff.id:
        raise Forbidden("须由另一位财务人员审批", code="dual_control")
    changed = db.session.execute(
        update(FinanceRequest).where(FinanceRequest.id == request_id, FinanceRequest.status == "pending")
        .values(status="approved" if approve else "rejected", decided_by=staff.id, decided_at=utcnow())
        .execution_options(synchronize_session=False)).rowcount
    if not changed:
        raise Conflict("该申请已处理", code="already_decided")
    if approve and req.kind == "topup":
        from rewards.budget import fund_period

        fund_period(req.payload["period"], int(req.payload["amount_fen"]), created_by=staff.id,
                    memo=f"预算追加申请 #{req.id}")
    elif approve and req.kind == "policy":
        from rewards.policy import save_policy

        save_policy(req.payload["settings"], created_by=req.requested_by, approved_by=staff.id)
    record_audit("finance.approve" if approve else "finance.reject", "finance_request", req.id, actor=staff,
                 before={"status": "pending"}, after={"status": "approved" if approve else "rejected"}, note=note)
    db.session.flush()
    db.session.refresh(req)
    return req


def describe_request(req: FinanceRequest) -> dict:
    return {"id": req.id, "kind": req.kind, "payload": req.payload, "status": req.status,
            "requested_by": req.requested_by, "decided_by": req.decided_by, "note": req.note,
            "created_at": req.created_at.isoformat(),
            "decided_at": req.decided_at.isoformat() if req.decided_at else None}
