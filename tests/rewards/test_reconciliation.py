"""Reconciliation against the sandbox's real fund-flow bill, and against that bill with faults put in
(extra row, missing row, 1 fen off, duplicate row, totals wrong, not ready)."""
from datetime import timedelta

import pytest

from app.display import business_day
from app.extensions import db
from app.queue import run_burst
from app.wechat import FundFlowBill, PayOutcome
from rewards import ledger
from rewards.models import Payout, ReconciliationException
from rewards.reconciliation import reconcile_day
from rewards.sweeper import sweep_payouts
from tests.rewards.helpers import advance_both_clocks, approve, assert_books_hold, fund, make_resident, make_tip
from app.models.base import utcnow


def _pay(app, n=3, severities=(1, 2, 3)):
    fund()
    pids = [approve(make_tip(make_resident()), severity=severities[i % len(severities)])["id"] for i in range(n)]
    run_burst(app, ("payouts",))
    db.session.rollback()
    assert {db.session.get(Payout, p).status for p in pids} == {"sent"}
    return pids


def _bill_lines(sandbox, day):
    text = sandbox.control("GET", f"fundflow/{day.strftime('%Y%m%d')}")
    return [line for line in text.split("\r\n") if line]


def _bill(lines):
    return FundFlowBill(PayOutcome.SUCCESS, "READY", "SUCCESS", lines=iter(lines[1:]))  # header consumed


def _summary(rows):
    def yuan(fen):
        return f"{fen // 100}.{fen % 100:02d}"

    def fen(cell):
        whole, _, part = cell.strip("`").partition(".")
        return int(whole) * 100 + int((part + "00")[:2])

    income = [r for r in rows if "`收入" in r]
    expense = [r for r in rows if "`支出" in r]
    return ["资金流水总笔数,收入笔数,收入金额,支出笔数,支出金额",
            f"`{len(rows)},`{len(income)},`{yuan(sum(fen(r.split(',')[6]) for r in income))},`{len(expense)},"
            f"`{yuan(sum(fen(r.split(',')[6]) for r in expense))}"]


def _rows(lines):
    return [line for line in lines[1:] if line.startswith("`")][:-1]


def _exceptions(run):
    return sorted((e.kind, e.mch_billno) for e in db.session.query(ReconciliationException).filter_by(run_id=run.id))


def test_clean_day_matches_everything_through_the_gateway(pay_app, wechat_sandbox):
    day = business_day()
    _pay(pay_app, 3)
    advance_both_clocks(wechat_sandbox, 25)
    run = reconcile_day(day)
    assert (run.status, run.matched, run.exception_count, run.bill_rows) == ("done", 3, 0, 3)
    assert run.bill_expense_fen == run.ledger_expense_fen == 200 + 500 + 2000
    assert_books_hold()


def test_refunds_and_status_drift_are_matched_after_settling(pay_app, wechat_sandbox):
    day = business_day()
    pids = _pay(pay_app, 2)
    advance_both_clocks(wechat_sandbox, 49)  # both refunded at +24 h, which is the next day; our sweeper has not run
    next_day = day + timedelta(days=1)
    first = reconcile_day(day)
    assert (first.status, first.matched, first.exception_count) == ("done", 2, 0)
    second = reconcile_day(next_day)
    assert second.status == "done"
    kinds = {e.kind for e in db.session.query(ReconciliationException).filter_by(run_id=second.id)}
    assert kinds == {"status_drift"}
    db.session.rollback()
    assert {db.session.get(Payout, p).status for p in pids} == {"refunded"}  # settled from gethbinfo
    assert all(e.status == "resolved" for e in db.session.query(ReconciliationException).filter_by(run_id=second.id))
    assert reconcile_day(next_day).matched == 2     # and now the books agree with that day's bill
    assert_books_hold()


def test_statement_faults_are_classified_with_suspense_adjustments(pay_app, wechat_sandbox):
    day = business_day()
    pids = _pay(pay_app, 4, severities=(2,))
    billnos = [db.session.get(Payout, p).mch_billno for p in pids]
    advance_both_clocks(wechat_sandbox, 25)
    lines = _bill_lines(wechat_sandbox, day)
    header, rows = lines[0], _rows(lines)
    by_billno = {r.split(",")[10].strip("`"): r for r in rows}
    stranger = by_billno[billnos[0]].replace(billnos[0], billnos[0][:-10] + "9999999999")
    one_fen_off = by_billno[billnos[1]].replace("`5.00,", "`5.01,", 1)
    new_rows = [stranger, one_fen_off, by_billno[billnos[2]], by_billno[billnos[2]]]  # missing billnos[0], [3]
    bill = _bill([header] + new_rows + _summary(new_rows))
    merchant_before = ledger.balances()[ledger.MERCHANT]

    run = reconcile_day(day, bill=bill)

    assert run.status == "done" and run.matched == 1
    stranger_billno = billnos[0][:-10] + "9999999999"
    assert _exceptions(run) == sorted([
        ("missing_in_ledger", stranger_billno), ("amount_mismatch", billnos[1]),
        ("duplicate_in_bill", billnos[2]), ("missing_in_bill", billnos[0]), ("missing_in_bill", billnos[3])])
    missing = db.session.query(ReconciliationException).filter_by(run_id=run.id, kind="missing_in_bill").all()
    assert [e.detail for e in missing] == ["微信查询状态 REFUND"] * 2  # per-packet query: WeChat paid them (refunded since)
    # adjusting entries only, through suspense: 500 fen unknown expense, 1 fen more than we booked
    raw = ledger.balances()
    assert raw[ledger.MERCHANT] == merchant_before - 500 - 1
    assert raw[ledger.SUSPENSE] == 501
    assert_books_hold()


def test_totals_that_disagree_with_the_rows_fail_the_run(pay_app, wechat_sandbox):
    day = business_day()
    _pay(pay_app, 2)
    advance_both_clocks(wechat_sandbox, 25)
    lines = _bill_lines(wechat_sandbox, day)
    rows = _rows(lines)
    summary = _summary(rows)
    summary[1] = summary[1].replace(f"`{len(rows)},", f"`{len(rows) + 1},", 1)
    run = reconcile_day(day, bill=_bill([lines[0]] + rows + summary))
    assert (run.status, run.error) == ("failed", "bill_incomplete")
    assert db.session.query(ReconciliationException).count() == 0
    assert ledger.balances().get(ledger.SUSPENSE, 0) == 0


def test_today_and_later_are_refused_before_anything_is_written(pay_app, wechat_sandbox):
    from app.errors import Unprocessable
    from rewards.models import ReconciliationRun

    _pay(pay_app, 1)
    for day in (business_day(), business_day() + timedelta(days=3)):
        with pytest.raises(Unprocessable) as refused:
            reconcile_day(day)
        assert "账单次日 10 点后生成" in refused.value.message and refused.value.code == "bill_not_ready"
    assert db.session.query(ReconciliationRun).count() == 0


def test_bill_not_ready_fails_the_run_for_a_retry_with_a_chinese_reason(pay_app, wechat_sandbox):
    from rewards.reconciliation import error_label

    _pay(pay_app, 1)
    not_ready = FundFlowBill(PayOutcome.RETRY_SAME, "NOT_READY", "BILL_CREATING")   # WeChat before 10:00
    run = reconcile_day(business_day() - timedelta(days=1), bill=not_ready)
    assert (run.status, run.error) == ("failed", "not_ready:bill_creating")
    assert "账单次日 10 点后生成" in error_label(run.error)


@pytest.mark.parametrize("code", ["bill_incomplete", "internal_error", "not_ready:bill_creating", "failed:sign_error",
                                  "failed:http_500", "failed:systemerror", "not_ready:whatever", "odd"])
def test_every_failure_reason_reads_in_chinese(code):
    import re

    from rewards.reconciliation import error_label

    label = error_label(code)
    assert label and re.search(r"[\u4e00-\u9fff]", label) and not re.search(r"[a-z_]{3,}", label)


def test_day_without_a_bill_lists_what_we_booked(pay_app, wechat_sandbox):
    _pay(pay_app, 1)
    run = reconcile_day(business_day() - timedelta(days=3))
    assert (run.status, run.matched, run.exception_count) == ("done", 0, 0)


def test_cli_reconcile(pay_app, wechat_sandbox, flask_cli):
    from app.clock import clock_at

    with clock_at(utcnow() - timedelta(days=1)):   # paid yesterday, in both clocks
        wechat_sandbox.set_clock(utcnow())
        _pay(pay_app, 2)
    wechat_sandbox.set_clock(None)
    env = {"WECHAT_API_BASE": wechat_sandbox.url + "/", "WECHAT_PAY_API_BASE": wechat_sandbox.url + "/"}
    db.session.rollback()  # SQLite: our open transaction would hold the write lock the CLI needs
    out = flask_cli("rewards", "reconcile", env=env)   # the default: yesterday
    assert "done" in out.stdout and "matched 2, exceptions 0" in out.stdout
    assert (business_day() - timedelta(days=1)).isoformat() in out.stdout
    today = flask_cli("rewards", "reconcile", "--date", business_day().isoformat(), env=env, check=False)
    assert today.returncode == 2 and "账单次日 10 点后生成" in today.stderr
    bad = flask_cli("rewards", "reconcile", "--date", "yesterday", env=env, check=False)
    assert bad.returncode == 2
