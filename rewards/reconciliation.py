"""Reconciliation of one business day against WeChat Pay's fund-flow bill.

The bill is streamed through the gateway (which checks the bill's own summary against its rows);
each row is matched by 业务凭证号 (our mch_billno; a transfer's out_bill_no is the same number) against the ledger's `sent` (expense) and
`refunded` (income) transactions booked on that day. Classified: matched; missing_in_ledger (WeChat
moved money we never booked), missing_in_bill (we booked money WeChat does not show), amount_mismatch,
duplicate_in_bill, status_drift (the packet is ours but our state lags; settled from gethbinfo).
Only adjusting entries through suspense are posted — nothing is edited. Each run and its
exceptions stay for finance to resolve with a note.

Memory stays flat: the bill is streamed into reconciliation_lines in batches (kept with the run) and
matched by set-based queries in the database; the process holds one batch and the exceptions.
"""
from __future__ import annotations

import logging
from datetime import date, timedelta

from sqlalchemy import and_, func, insert, select, text, update

from app.errors import Unprocessable
from app.extensions import db
from app.models.base import utcnow
from app.wechat import PayOutcome, WeChatBillIncomplete
from rewards import ledger
from rewards.channels import channel_named
from rewards.clock import shanghai_day
from rewards.models import (LedgerTransaction, Payout, ReconciliationException, ReconciliationLine,
                            ReconciliationRun)

log = logging.getLogger(__name__)

MAX_PACKET_QUERIES = 200     # per run: each query spends one of WeChat's 30 pay calls a second
MAX_EXCEPTIONS = 10000       # listed per kind and direction; beyond that the bill is wrong wholesale
EXCEPTION_LABELS = {
    "missing_in_ledger": "微信账单有、我方账本无",
    "missing_in_bill": "我方账本有、微信账单无",
    "amount_mismatch": "金额不一致",
    "duplicate_in_bill": "微信账单重复记录",
    "status_drift": "状态滞后（已按微信查询结果更新）",
}


# Why a run failed, as finance reads it (the stored code follows in small print for support).
ERROR_LABELS = {
    "bill_incomplete": "账单不完整（汇总与明细不符或下载中断），请重新对账",
    "internal_error": "对账程序出错，请联系技术人员",
    "not_ready:bill_creating": "微信账单尚未生成（账单次日 10 点后生成），请稍后重新对账",
}
ERROR_PREFIX_LABELS = {
    "not_ready": "微信账单尚未生成，请稍后重新对账",
    "failed": "下载微信账单失败，请稍后重新对账；多次失败请联系技术人员",
}
CONFIG_ERRORS = ("sign_error", "ca_error", "no_auth", "invalid_request", "param_error")


def error_label(error: str | None) -> str | None:
    if not error:
        return None
    if error in ERROR_LABELS:
        return ERROR_LABELS[error]
    prefix, _, code = error.partition(":")
    if code in CONFIG_ERRORS:
        return "商户配置有误（签名、证书或权限），请联系技术人员"
    return ERROR_PREFIX_LABELS.get(prefix, "对账失败，请稍后重新对账")


def default_bill_date() -> date:
    """Yesterday (Asia/Shanghai): the newest day whose bill WeChat can have made."""
    return shanghai_day() - timedelta(days=1)


def check_bill_date(bill_date: date) -> None:
    """Today's and later days have no bill yet: refuse before anything is written."""
    if bill_date > default_bill_date():
        raise Unprocessable(f"{bill_date.isoformat()} 还不能对账：微信账单次日 10 点后生成，"
                            f"最近可对账的是 {default_bill_date().isoformat()}",
                            code="bill_not_ready", fields={"date": ["账单次日 10 点后生成，只能对昨天及以前的日期对账"]})


def start_run(bill_date: date, requested_by: int | None = None) -> ReconciliationRun:
    check_bill_date(bill_date)
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


LINE_BATCH = 5000
KIND_OF = {"expense": "sent", "income": "refunded"}


def _expected(bill_date: date, direction: str):
    """The ledger's side of the day: (billno, payout id, amount) of its sent / refunded transactions."""
    return (select(Payout.mch_billno.label("billno"), Payout.id.label("payout_id"),
                   Payout.amount_fen.label("amount"))
            .join(LedgerTransaction, LedgerTransaction.payout_id == Payout.id)
            .where(LedgerTransaction.kind == KIND_OF[direction], LedgerTransaction.business_day == bill_date)
            .subquery())


def _store_lines(run_id: int, bill) -> dict:
    """Stream the bill into reconciliation_lines in batches; returns the bill's own totals."""
    totals = {"rows": 0, "bill_expense": 0, "bill_income": 0}
    if db.session.get_bind().dialect.name == "postgresql":
        return _copy_lines(run_id, bill, totals)
    batch: list[dict] = []
    for row in bill:
        totals["rows"] += 1
        totals["bill_expense" if row.direction == "expense" else "bill_income"] += row.amount_fen
        batch.append({"run_id": run_id, "direction": row.direction, "mch_billno": row.voucher_no[:40],
                      "amount_fen": row.amount_fen})
        if len(batch) >= LINE_BATCH:
            db.session.execute(insert(ReconciliationLine), batch)
            db.session.commit()
            batch = []
    if batch:
        db.session.execute(insert(ReconciliationLine), batch)
    db.session.commit()
    return totals


def _copy_lines(run_id: int, bill, totals: dict) -> dict:
    """PostgreSQL: the bill streamed through COPY in the session's transaction. Row-by-row INSERTs cost
    ~50 s for a 300 k-packet day on a loaded 2-core machine (bench/province.py); COPY a few seconds."""
    cursor = db.session.connection().connection.driver_connection.cursor()
    with cursor.copy("COPY reconciliation_lines (run_id, direction, mch_billno, amount_fen) FROM STDIN") as copy:
        for row in bill:
            totals["rows"] += 1
            totals["bill_expense" if row.direction == "expense" else "bill_income"] += row.amount_fen
            copy.write_row((run_id, row.direction, row.voucher_no[:40], row.amount_fen))
    db.session.commit()
    return totals


def _reconcile(run_id: int, bill_date: date, bill) -> str:
    if bill is None:  # the account's one bill: red packets and transfers share it (APIv2 or APIv3 download)
        from rewards.channels import configured_channel

        bill = configured_channel().day_bill(bill_date)
    if bill.status not in ("READY", "NO_BILL"):
        return _fail(run_id, f"{bill.status}:{bill.code}".lower())
    totals = _store_lines(run_id, bill)   # raises WeChatBillIncomplete when the bill's totals disagree
    exceptions: list[dict] = []
    matched = 0
    unmatched: list[tuple[str, str, int]] = []
    L = ReconciliationLine
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("ANALYZE reconciliation_lines"))  # fresh statistics for the joins below
    for direction in ("expense", "income"):
        exp = _expected(bill_date, direction)
        totals[f"ledger_{direction}"] = int(db.session.execute(select(func.coalesce(func.sum(exp.c.amount), 0)))
                                            .scalar())
        # One pass over the bill's distinct billnos, each looked up by index (payouts.mch_billno is
        # unique), streamed: linear whatever the row counts, flat in memory, no plan can go quadratic.
        lines = (select(L.mch_billno.label("billno"), func.min(L.amount_fen).label("low"),
                        func.max(L.amount_fen).label("high"), func.count().label("n"))
                 .where(L.run_id == run_id, L.direction == direction).group_by(L.mch_billno).subquery())
        tx = LedgerTransaction
        if db.session.get_bind().dialect.name == "postgresql":
            # a streamed (server-side cursor) query is planned for its first rows by default, which picks
            # a nested loop over the grouped bill: plan for the whole result instead
            db.session.execute(text("SET LOCAL cursor_tuple_fraction = 1.0"))
        stream = db.session.execute(
            select(lines.c.billno, lines.c.low, lines.c.high, lines.c.n, Payout.id, Payout.amount_fen, tx.id)
            .select_from(lines.outerjoin(Payout, Payout.mch_billno == lines.c.billno)
                         .outerjoin(tx, and_(tx.payout_id == Payout.id, tx.kind == KIND_OF[direction],
                                             tx.business_day == bill_date)))
            .execution_options(yield_per=5000))
        for billno, low, high, n, pid, amount, tx_id in stream:
            for _ in range(n - 1):
                exceptions.append({"kind": "duplicate_in_bill", "direction": direction, "mch_billno": billno,
                                   "bill_fen": high})
            if pid is None or tx_id is None:
                if len(unmatched) < MAX_EXCEPTIONS:
                    unmatched.append((direction, billno, high))
            elif low == high == amount:
                matched += 1
            else:
                exceptions.append({"kind": "amount_mismatch", "direction": direction, "mch_billno": billno,
                                   "payout_id": pid, "bill_fen": high if high != amount else low,
                                   "ledger_fen": amount})
        in_bill = select(L.id).where(L.run_id == run_id, L.direction == direction, L.mch_billno == exp.c.billno)
        missing = db.session.execute(select(exp.c.billno, exp.c.payout_id, exp.c.amount)
                                     .where(~in_bill.exists()).limit(MAX_EXCEPTIONS)).all()
        db.session.rollback()
        queries = {"left": MAX_PACKET_QUERIES}
        exceptions += [_classify_missing_in_bill(direction, b, pid, amount, queries) for b, pid, amount in missing]
    queries = {"left": MAX_PACKET_QUERIES}
    for direction, billno, amount in unmatched:
        exceptions.append(_classify_unmatched(direction, billno, amount, bill_date, queries))
    return _finish(run_id, bill_date, exceptions, matched=matched, **totals)


def _classify_unmatched(direction, billno, amount, bill_date, queries) -> dict:
    """A bill row the day's ledger lacks: ours but lagging (query WeChat, settle), or not ours at all."""
    base = {"direction": direction, "mch_billno": billno, "bill_fen": amount}
    kind = KIND_OF[direction]
    payout = db.session.execute(select(Payout.id, Payout.status, Payout.channel)
                                .where(Payout.mch_billno == billno)).first()
    db.session.rollback()
    if payout is None:
        return {**base, "kind": "missing_in_ledger", "detail": "不是本系统发出的红包单号"}
    pid, before, channel_name = payout
    after = before
    if queries["left"] > 0:
        queries["left"] -= 1
        channel = channel_named(channel_name)
        info = channel.query(billno)
        if info.outcome is PayOutcome.SUCCESS:
            after = channel.settle(pid, info)
    booked_day = db.session.execute(select(LedgerTransaction.business_day).where(
        LedgerTransaction.payout_id == pid, LedgerTransaction.kind == kind)).scalar()
    db.session.rollback()
    detail = f"我方状态 {before} → {after}；记账日 {booked_day or '未记账'}"
    return {**base, "kind": "status_drift", "payout_id": pid, "detail": detail,
            "auto_resolved": booked_day == bill_date}


def _classify_missing_in_bill(direction, billno, pid, amount, queries) -> dict:
    detail = None
    if queries["left"] > 0:
        queries["left"] -= 1
        channel = db.session.execute(select(Payout.channel).where(Payout.id == pid)).scalar()
        db.session.rollback()
        info = channel_named(channel).query(billno)
        detail = (f"微信查询状态 {info.status}" if info.outcome is PayOutcome.SUCCESS
                  else f"微信查询未成功 {info.code}")
    return {"kind": "missing_in_bill", "direction": direction, "mch_billno": billno, "payout_id": pid,
            "ledger_fen": amount, "detail": detail}


def _finish(run_id, bill_date, exceptions, *, matched, rows, bill_expense, bill_income, ledger_expense,
            ledger_income) -> str:
    """One transaction: adjusting entries, the exceptions, the run marked done (only if still running)."""
    if not db.session.execute(update(ReconciliationRun)
                              .where(ReconciliationRun.id == run_id, ReconciliationRun.status == "running")
                              .values(status="done", finished_at=utcnow(), matched=matched, bill_rows=rows,
                                      bill_expense_fen=bill_expense, bill_income_fen=bill_income,
                                      ledger_expense_fen=ledger_expense, ledger_income_fen=ledger_income,
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
            "error_label": error_label(run.error),
            "matched": run.matched, "bill_rows": run.bill_rows,
            "totals": {"bill_expense_fen": run.bill_expense_fen, "bill_income_fen": run.bill_income_fen,
                       "ledger_expense_fen": run.ledger_expense_fen, "ledger_income_fen": run.ledger_income_fen},
            "started_at": run.started_at.isoformat(), "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "exceptions": [{"id": e.id, "kind": e.kind, "label": EXCEPTION_LABELS.get(e.kind, e.kind),
                            "direction": e.direction, "mch_billno": e.mch_billno, "payout_id": e.payout_id,
                            "bill_fen": e.bill_fen, "ledger_fen": e.ledger_fen, "detail": e.detail,
                            "adjustment_id": e.adjustment_id, "status": e.status, "note": e.note}
                           for e in exceptions]}
