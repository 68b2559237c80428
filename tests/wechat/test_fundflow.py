"""The daily fund-flow bill: downloaded from the sandbox, parsed to exactly the packets it paid."""
from datetime import datetime, timedelta, timezone

import pytest

from app.extensions import wechat
from app.wechat import FundFlowBill, PayOutcome, WeChatBillIncomplete, yuan_to_fen
from tests.fixtures.sandbox import new_billno

SHANGHAI = timezone(timedelta(hours=8))


def _sandbox_day(wechat_sandbox):
    now = wechat_sandbox.control("POST", "clock", {"advance_hours": 0})["now"]
    return datetime.strptime(now, "%Y-%m-%d %H:%M:%S").date()


def _pay(amounts, openid="oBill"):
    billnos = []
    for amount in amounts:
        billno = new_billno()
        assert wechat.send_miniprogram_hb(billno, openid, amount, "act", "remark", "wish").ok
        billnos.append(billno)
    return billnos


def test_bill_parses_to_the_packets_paid(sandbox_app, wechat_sandbox):
    day = _sandbox_day(wechat_sandbox)
    paid = dict(zip(_pay([100, 1234, 20000]), [100, 1234, 20000]))
    wechat_sandbox.advance(25)  # the day's bill exists once the sandbox day is over

    bill = wechat.download_fundflow(day)
    assert (bill.outcome, bill.status) == (PayOutcome.SUCCESS, "READY")
    rows = list(bill)

    assert {r.voucher_no: r.amount_fen for r in rows if r.direction == "expense"} == paid
    assert all(r.booked_at.astimezone(SHANGHAI).date() == day for r in rows)
    assert bill.summary.expense_count == 3 and bill.summary.expense_fen == 21334
    assert bill.summary.total_count == len(rows)
    balances = [r.balance_fen for r in rows]
    assert balances == [10_000_000 - 100, 10_000_000 - 1334, 10_000_000 - 21334]


def test_refunds_appear_on_the_day_they_happen(sandbox_app, wechat_sandbox):
    day = _sandbox_day(wechat_sandbox)
    claimed, unclaimed = _pay([150, 260])
    wechat_sandbox.claim(claimed)
    wechat_sandbox.advance(49)  # unclaimed refunded 24 h later; that day's bill exists too

    refund_day = day + timedelta(days=1)
    rows = []
    for d in (day, refund_day):
        bill = wechat.download_fundflow(d)
        if bill.status == "READY":
            rows += list(bill)
        else:
            assert bill.status == "NO_BILL"
    income = [r for r in rows if r.direction == "income"]
    assert [(r.voucher_no, r.amount_fen) for r in income] == [(unclaimed, 260)]
    assert {r.voucher_no for r in rows if r.direction == "expense"} == {claimed, unclaimed}


def test_empty_day_is_no_bill(sandbox_app, wechat_sandbox):
    bill = wechat.download_fundflow(_sandbox_day(wechat_sandbox) - timedelta(days=3))
    assert (bill.outcome, bill.status, bill.code) == (PayOutcome.SUCCESS, "NO_BILL", "NO_BILL_EXIST")
    assert list(bill) == []


def test_todays_bill_is_not_ready(sandbox_app, wechat_sandbox):
    _pay([100])
    bill = wechat.download_fundflow(_sandbox_day(wechat_sandbox))
    assert (bill.outcome, bill.status, bill.code) == (PayOutcome.RETRY_SAME, "NOT_READY", "BILL_CREATING")


@pytest.mark.parametrize("mode, outcome, code", [
    ("SYSTEMERROR", PayOutcome.RETRY_SAME, "SYSTEMERROR"),
    ("timeout", PayOutcome.UNKNOWN, "TIMEOUT"),
    ("http_500", PayOutcome.UNKNOWN, "HTTP_500"),
    ("not_xml", PayOutcome.UNKNOWN, "NOT_A_BILL"),
])
def test_bill_faults_are_typed(sandbox_app, wechat_sandbox, mode, outcome, code):
    day = _sandbox_day(wechat_sandbox)
    _pay([100])
    wechat_sandbox.advance(25)
    wechat_sandbox.fault("downloadfundflow", mode)

    bill = wechat.download_fundflow(day)
    assert (bill.outcome, bill.status, bill.code) == (outcome, "FAILED", code)
    assert list(bill) == []
    assert len(list(wechat.download_fundflow(day))) == 1


def test_wrong_key_is_config_error(make_app, sandbox_config, wechat_sandbox, db):
    app = make_app(**{**sandbox_config, "WECHAT_PAY_KEY": "f" * 32})
    with app.app_context():
        bill = wechat.download_fundflow("20200101")
    assert (bill.outcome, bill.code) == (PayOutcome.CONFIG_ERROR, "SIGN_ERROR")


@pytest.mark.parametrize("text, fen", [("0.01", 1), ("1.00", 100), ("199.99", 19999), ("1000", 100000),
                                       ("0.1", 10), ("10000000.07", 1000000007)])
def test_yuan_to_fen_is_exact(text, fen):
    assert yuan_to_fen(text) == fen


def test_yuan_finer_than_a_fen_is_refused():
    with pytest.raises(ValueError):
        yuan_to_fen("0.005")


HEADER = "记账时间,微信支付业务单号,资金流水单号,业务名称,业务类型,收支类型,收支金额（元）,账户结余（元）,资金变更提交申请人,备注,业务凭证号"
ROW = "`2026-11-26 10:00:00,`1,`2,`现金红包,`红包发放,`支出,`1.50,`98.50,`api,`红包发放,`190000010920261126000000001"


def _bill(lines):
    return FundFlowBill(PayOutcome.SUCCESS, "READY", "SUCCESS", lines=iter(lines))


def test_summary_that_disagrees_with_rows_is_incomplete():
    bill = _bill([ROW, "资金流水总笔数,收入笔数,收入金额,支出笔数,支出金额", "`2,`0,`0.00,`2,`3.00"])
    with pytest.raises(WeChatBillIncomplete):
        list(bill)
    assert bill.summary is None


def test_bill_cut_before_the_summary_is_incomplete():
    with pytest.raises(WeChatBillIncomplete):
        list(_bill([ROW]))


def test_summary_counts_written_as_decimals_parse():
    bill = _bill([ROW, "资金流水总笔数,收入笔数,收入金额,支出笔数,支出金额", "`1.0,`0.0,`0.00,`1.0,`1.50"])
    [row] = list(bill)
    assert (row.amount_fen, row.balance_fen, row.voucher_no) == (150, 9850, "190000010920261126000000001")
    assert row.booked_at == datetime(2026, 11, 26, 2, 0, tzinfo=timezone.utc)
    assert bill.summary.expense_fen == 150
