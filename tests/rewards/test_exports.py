"""Payout exports as finance hands them on: the console's buttons work as the page opens (no filter
set), CSV with BOM and Excel with Chinese headers, 元 with two decimals, Beijing time, category and
status names and a totals row; the Excel cells typed. Forms take 元."""
import csv
import io
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from app.accounts import create_staff
from app.extensions import db
from app.queue import run_burst
from app.display import SHANGHAI
from rewards.exports import yuan_text
from rewards.finance import fen_from_yuan
from rewards.models import FinanceRequest, Payout
from tests.rewards.helpers import approve, fund, make_resident, make_tip

HEADERS = ["奖励编号", "报料编号", "报料人编号", "类别", "严重程度", "金额（元）", "状态", "原因", "商户订单号",
           "预算期", "创建时间", "发出时间", "结清时间"]


@pytest.fixture
def console(pay_app):
    client = pay_app.test_client()
    create_staff("fin_export", "correct-horse-1", ["finance"])
    db.session.commit()
    assert client.post("/console/login", data={"username": "fin_export", "password": "correct-horse-1"}).status_code == 302
    return client


def _paid(app, severities=(1, 2, 3)):
    fund(100_000)
    pids = [approve(make_tip(make_resident(), category="fire_exit_blocked"), severity=s)["id"] for s in severities]
    run_burst(app, ("payouts",))
    db.session.rollback()
    return [db.session.get(Payout, pid) for pid in pids]


def _export_links(console):
    page = console.get("/console/finance/payouts").get_data(as_text=True)
    links = {kind: href.replace("&amp;", "&") for kind, href in
             re.findall(r'id="export-(csv|xlsx)" href="([^"]+)"', page)}
    assert set(links) == {"csv", "xlsx"}
    return links


def test_csv_export_from_the_page_as_it_opens(console, pay_app):
    payouts = _paid(pay_app)
    links = _export_links(console)
    reply = console.get(links["csv"])
    assert reply.status_code == 200 and reply.mimetype == "text/csv"
    assert "attachment" in reply.headers["Content-Disposition"]
    text = reply.get_data(as_text=True)
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0] == HEADERS
    body, totals = rows[1:-1], rows[-1]
    assert len(body) == 3
    by_id = {int(r[0]): dict(zip(HEADERS, r)) for r in body}
    for payout in payouts:
        row = by_id[payout.id]
        assert row["金额（元）"] == f"{payout.amount_fen // 100}.{payout.amount_fen % 100:02d}"
        assert row["类别"] == "消防通道、安全出口堵塞锁闭"
        assert row["状态"] == "待领取"
        assert row["创建时间"] == payout.created_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
        assert row["发出时间"] == payout.sent_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
        assert row["商户订单号"] == payout.mch_billno
    assert {r["严重程度"] for r in by_id.values()} == {"一般", "较重", "严重"}
    assert totals[0] == "合计" and totals[1] == "3 笔"
    assert totals[5] == yuan_text(sum(p.amount_fen for p in payouts))
    assert Decimal(totals[5]) == sum(Decimal(r["金额（元）"]) for r in by_id.values())


def test_excel_export_is_typed(console, pay_app):
    payouts = _paid(pay_app, (2, 3))
    reply = console.get(_export_links(console)["xlsx"])
    assert reply.status_code == 200
    sheet = load_workbook(io.BytesIO(reply.data)).active
    rows = list(sheet.iter_rows())
    assert [c.value for c in rows[0]] == HEADERS
    first = {HEADERS[i]: c for i, c in enumerate(rows[1])}
    payout = next(p for p in payouts if p.id == first["奖励编号"].value)
    assert isinstance(first["奖励编号"].value, int) and isinstance(first["报料编号"].value, int)
    assert first["金额（元）"].data_type == "n" and first["金额（元）"].number_format == "#,##0.00"
    assert first["金额（元）"].value == pytest.approx(payout.amount_fen / 100)
    created = first["创建时间"]
    assert created.is_date
    expected = payout.created_at.astimezone(SHANGHAI).replace(tzinfo=None)
    assert abs(created.value - expected) < timedelta(seconds=1)
    assert first["状态"].value == "待领取" and first["严重程度"].value in ("较重", "严重")
    totals = [c.value for c in rows[-1]]
    assert totals[0] == "合计" and totals[1] == "2 笔"
    assert totals[5] == pytest.approx(sum(p.amount_fen for p in payouts) / 100)
    assert len(rows) == 4


def test_export_answers_with_blank_filters_and_explains_bad_ones(console, pay_app):
    _paid(pay_app, (2,))
    for kind in ("csv", "xlsx", "json"):
        reply = console.get(f"/api/staff/v1/finance/payouts?format={kind}&status=&from=&to=")
        assert reply.status_code == 200, reply.get_data(as_text=True)
    bad = console.get("/api/staff/v1/finance/payouts?format=csv&from=2026-13-01")
    assert bad.status_code == 422
    assert bad.json["error"]["fields"]["from"] == ["须为 YYYY-MM-DD 日期"]
    assert console.get("/api/staff/v1/finance/payouts?status=bogus").json["error"]["fields"]["status"] == ["未知的状态"]


def test_export_of_an_empty_range_has_headers_and_a_zero_total(console, pay_app):
    reply = console.get("/api/staff/v1/finance/payouts?format=csv&from=2020-01-01&to=2020-01-31")
    rows = list(csv.reader(io.StringIO(reply.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0] == HEADERS and rows[1][:2] == ["合计", "0 笔"] and rows[1][5] == "0.00" and len(rows) == 2


@pytest.mark.parametrize("text, fen", [("12", 1200), ("12.5", 1250), ("0.01", 1), ("¥1,000.00", 100000), ("", None)])
def test_forms_take_yuan(text, fen):
    assert fen_from_yuan(text, "x") == fen


@pytest.mark.parametrize("text", ["12.345", "-1", "abc", "1e3x", "NaN"])
def test_forms_refuse_what_is_not_an_amount_in_yuan(text, app):
    from app.errors import Unprocessable

    with pytest.raises(Unprocessable) as err:
        fen_from_yuan(text, "amount_yuan")
    assert "amount_yuan" in err.value.fields


def test_rules_form_takes_yuan(console, pay_app):
    reply = console.post("/console/finance/requests", data={
        "kind": "policy", "resident_day_count": "4", "resident_day_yuan": "15.50", "program_day_yuan": "8000"})
    assert reply.status_code == 302
    request = db.session.query(FinanceRequest).one()
    settings = request.payload["settings"]
    assert settings["resident_day_count"] == 4 and settings["resident_day_fen"] == 1550
    assert settings["program_day_fen"] == 800_000
    page = console.get("/console/finance/").get_data(as_text=True)
    assert "每人每日金额（元）" in page and "（分）" not in page
    bad = console.post("/console/finance/requests", data={"kind": "policy", "resident_day_yuan": "1.234"},
                       follow_redirects=True).get_data(as_text=True)
    assert "最多两位小数" in bad and db.session.query(FinanceRequest).count() == 1
