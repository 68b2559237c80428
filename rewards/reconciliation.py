"""Reconciliation of one business day against WeChat Pay's fund-flow bill.

The bill is streamed through the gateway (which checks the bill's own summary against its rows);
each row is matched by 业务凭证号 (our mch_billno) against the ledger's `sent` (expense) and
`refunded` (income) transactions booked on that day. Classified: matched; missing_in_ledger (WeChat
moved money we never booked), missing_in_bill (we booked money WeChat does not show), amount_mismatch,
duplicate_in_bill, status_drift (the packet is ours but our state lags; settled from gethbinfo).
Only adjusting entries through suspense are posted — nothing is edited. Each run and its
exceptions stay for finance to resolve with a note.

Memory stays flat: the bill is never held whole; only the day's expected billnos (a dict of ints)
and the exceptions are kept.
"""
from __future__ import annotations

import logging
from datetime import date

from sqlalchemy import select, update

from app.extensions import db, wechat
from app.models.base import utcnow
from app.wechat import PayOutcome, WeChatBillIncomplete
from rewards import ledger, payouts
from rewards.models import LedgerTransaction, Payout, ReconciliationException, ReconciliationRun

log = logging.getLogger(__name__)

MAX_PACKET_QUERIES = 200     # per run: each query spends one of WeChat's 30 pay calls a second
EXCEPTION_LABELS = {
    "missing_in_ledger": "微信账单有、我方账本无",
    "missing_in_bill": "我方账本有、微信账单无",
    "amount_mismatch": "金额不一致",
    "duplicate_in_bill": "微信账单重复记录",
    "status_drift": "状态滞后（已按微信查询结果更新）",
}


def start_run(bill_date: date, requested_by: int | None = None) -> ReconciliationRun:
    run = ReconciliationRun(bill_date=bill_date, status="running", requested_by=requested_by, started_at=utcnow())
    db.session.add(run)
    db.session.flush()
    return run


def reconcile_day(bill_date: date, *, requested_by: int | None = None, bill=None) -> ReconciliationRun:
    """Run a reconciliation now (CLI, tests). `bill` replaces the download (tests of statement faults)."""
    run = start_run(bill_date, requested_by)
    db.session.commit()
    run_reconciliation(run.id, bill=bill)
    db.session.rollback()
    return db.session.get(ReconciliationRun, run.id)


def run_reconciliation(run_id: int, bill=None) -> str:
    """RQ entry point (maintenance queue). Idempotent: a run that is no longer running is left alone."""
    run = db.session.get(ReconciliationRun, run_id)
    if run is None or run.status != "running":
        db.session.rollback()
        return "skipped"
    bill_date = run.bill_date
    db.session.rollback()
    try:
        outcome = _reconcile(run_id, bill_date, bill)
    except WeChatBillIncomplete:
        db.session.rollback()
        return _fail(run_id, "bill_incomplete")
    except Exception:
        db.session.rollback()
        log.exception("reconciliation failed", extra={"run_id": run_id})
        _fail(run_id, "internal_error")
        raise
    return outcome


def _fail(run_id: int, error: str) -> str:
    db.session.execute(update(ReconciliationRun).where(ReconciliationRun.id == run_id,
                                                       ReconciliationRun.status == "running")
                       .values(status="failed", error=error[:64], finished_at=utcnow()))
    db.session.commit()
    return "failed"


def _expected(bill_date: date, kind: str) -> dict[str, list]:
    """{mch_billno: [payout_id, amount_fen]} of the ledger's `kind` transactions booked on the day."""
    rows = db.session.execute(
        select(Payout.mch_billno, Payout.id, Payout.amount_fen)
        .join(LedgerTransaction, LedgerTransaction.payout_id == Payout.id)
        .where(LedgerTransaction.kind == kind, LedgerTransaction.business_day == bill_date)
        .execution_options(yield_per=5000))
    return {billno: [pid, amount] for billno, pid, amount in rows}


def _reconcile(run_id: int, bill_date: date, bill) -> str:
    if bill is None:
        bill = wechat.download_fundflow(bill_date)
    if bill.status not in ("READY", "NO_BILL"):
        return _fail(run_id, f"{bill.status}:{bill.code}".lower())
    expected = {"expense": _expected(bill_date, "sent"), "income": _expected(bill_date, "refunded")}
    ledger_expense = sum(v[1] for v in expected["expense"].values())
    ledger_income = sum(v[1] for v in expected["income"].values())
    db.session.rollback()
    seen: dict[str, set] = {"expense": set(), "income": set()}
    exceptions: list[dict] = []
    unmatched: list[tuple[str, str, int]] = []
    matched = rows = bill_expense = bill_income = 0
    for row in bill:
        rows += 1
        direction, billno, amount = row.direction, row.voucher_no, row.amount_fen
        if direction == "expense":
            bill_expense += amount
        else:
            bill_income += amount
        if billno in seen[direction]:
            exceptions.append({"kind": "duplicate_in_bill", "direction": direction, "mch_billno": billno,
                               "bill_fen": amount})
            continue
        seen[direction].add(billno)
        ours = expected[direction].pop(billno, None)
        if ours is None:
            unmatched.append((direction, billno, amount))
        elif ours[1] != amount:
            exceptions.append({"kind": "amount_mismatch", "direction": direction, "mch_billno": billno,
                               "payout_id": ours[0], "bill_fen": amount, "ledger_fen": ours[1]})
        else:
            matched += 1
    queries = {"left": MAX_PACKET_QUERIES}
    for direction, billno, amount in unmatched:
        exceptions.append(_classify_unmatched(direction, billno, amount, bill_date, queries))
    for direction, rest in expected.items():
        for billno, (pid, amount) in rest.items():
            exceptions.append(_classify_missing_in_bill(direction, billno, pid, amount, queries))
    return _finish(run_id, bill_date, exceptions, matched=matched, rows=rows, bill_expense=bill_expense,
                   bill_income=bill_income, ledger_expense=ledger_expense, ledger_income=ledger_income)


def _classify_unmatched(direction, billno, amount, bill_date, queries) -> dict:
    """A bill row the day's ledger lacks: ours but lagging (query WeChat, settle), or not ours at all."""
    payout = db.session.execute(select(Payout.id, Payout.status).where(Payout.mch_billno == billno)).first()
    db.session.rollback()
    base = {"direction": direction, "mch_billno": billno, "bill_fen": amount}
    if payout is None:
        return {**base, "kind": "missing_in_ledger", "detail": "不是本系统发出的红包单号"}
    pid, before = payout
    after = before
    if queries["left"] > 0:
        queries["left"] -= 1
        info = wechat.get_hb_info(billno)
        if info.outcome is PayOutcome.SUCCESS:
            after = payouts.apply_hb_info(pid, info)
    booked_day = db.session.execute(
        select(LedgerTransaction.business_day).where(LedgerTransaction.payout_id == pid,
                                                     LedgerTransaction.kind == ("sent" if direction == "expense"
                                                                                else "refunded"))).scalar()
    db.session.rollback()
    detail = f"我方状态 {before} → {after}；记账日 {booked_day or '未记账'}"
    return {**base, "kind": "status_drift", "payout_id": pid, "detail": detail,
            "auto_resolved": booked_day == bill_date}


def _classify_missing_in_bill(direction, billno, pid, amount, queries) -> dict:
    detail = None
    if queries["left"] > 0:
        queries["left"] -= 1
        info = wechat.get_hb_info(billno)
        detail = (f"微信查询状态 {info.status}" if info.outcome is PayOutcome.SUCCESS
                  else f"微信查询未成功 {info.code}")
    return {"kind": "missing_in_bill", "direction": direction, "mch_billno": billno, "payout_id": pid,
            "ledger_fen": amount, "detail": detail}


def _finish(run_id, bill_date, exceptions, **totals) -> str:
    """One transaction: adjusting entries, the exceptions, the run marked done (only if still running)."""
    if not db.session.execute(update(ReconciliationRun)
                              .where(ReconciliationRun.id == run_id, ReconciliationRun.status == "running")
                              .values(status="done", finished_at=utcnow(), matched=totals["matched"],
                                      bill_rows=totals["rows"], bill_expense_fen=totals["bill_expense"],
                                      bill_income_fen=totals["bill_income"],
                                      ledger_expense_fen=totals["ledger_expense"],
                                      ledger_income_fen=totals["ledger_income"],
                                      exception_count=len(exceptions))).rowcount:
        db.session.rollback()
        return "skipped"
    now = utcnow()
    for item in exceptions:
        auto = item.pop("auto_resolved", False)
        row = ReconciliationException(run_id=run_id, status="resolved" if auto else "open", **item)
        if auto:
            row.note, row.resolved_at = "已按微信查询结果自动更新状态", now
        adjustment = _adjustment(item, bill_date, run_id)
        if adjustment is not None:
            row.adjustment_id = adjustment.id
        db.session.add(row)
    db.session.commit()
    return "done"


def _adjustment(item: dict, bill_date: date, run_id: int):
    """Money WeChat moved that our books do not show goes through suspense (never an edit)."""
    sign = -1 if item["direction"] == "expense" else 1   # expense: WeChat's balance went down
    if item["kind"] == "missing_in_ledger":
        delta = sign * item["bill_fen"]
    elif item["kind"] == "amount_mismatch":
        delta = sign * (item["bill_fen"] - item["ledger_fen"])
    else:
        return None
    return ledger.post_adjustment(delta, business_day=bill_date, payout_id=item.get("payout_id"),
                                  memo=f"对账 #{run_id}：{EXCEPTION_LABELS[item['kind']]} {item['mch_billno']}")


def resolve_exception(exception_id: int, note: str, staff_id: int) -> ReconciliationException:
    from app.audit import record_audit
    from app.errors import Conflict, NotFound, Unprocessable

    if not note or not note.strip():
        raise Unprocessable(fields={"note": ["请填写处理说明"]})
    row = db.session.get(ReconciliationException, exception_id)
    if row is None:
        raise NotFound()
    changed = db.session.execute(update(ReconciliationException)
                                 .where(ReconciliationException.id == exception_id,
                                        ReconciliationException.status == "open")
                                 .values(status="resolved", note=note.strip(), resolved_by=staff_id,
                                         resolved_at=utcnow())
                                 .execution_options(synchronize_session=False)).rowcount
    if not changed:
        raise Conflict("该差异已处理", code="already_resolved")
    record_audit("reconciliation.resolve", "reconciliation_exception", exception_id, actor=staff_id,
                 after={"status": "resolved"}, note=note.strip())
    db.session.flush()
    return row


def describe_run(run: ReconciliationRun, exceptions: list[ReconciliationException]) -> dict:
    return {"id": run.id, "date": run.bill_date.isoformat(), "status": run.status, "error": run.error,
            "matched": run.matched, "bill_rows": run.bill_rows,
            "totals": {"bill_expense_fen": run.bill_expense_fen, "bill_income_fen": run.bill_income_fen,
                       "ledger_expense_fen": run.ledger_expense_fen, "ledger_income_fen": run.ledger_income_fen},
            "started_at": run.started_at.isoformat(), "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "exceptions": [{"id": e.id, "kind": e.kind, "label": EXCEPTION_LABELS.get(e.kind, e.kind),
                            "direction": e.direction, "mch_billno": e.mch_billno, "payout_id": e.payout_id,
                            "bill_fen": e.bill_fen, "ledger_fen": e.ledger_fen, "detail": e.detail,
                            "adjustment_id": e.adjustment_id, "status": e.status, "note": e.note}
                           for e in exceptions]}
