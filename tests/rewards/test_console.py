"""Finance console pages: finance role only, Chinese pages, the actions go through the same functions."""
from app.accounts import create_staff
from app.display import period_of
from app.extensions import db
from rewards import payouts
from rewards.models import FinanceRequest, Payout
from tests.rewards.helpers import approve, fund, make_resident, make_tip


def _login(client, username, roles=("finance",)):
    create_staff(username, "correct-horse-1", list(roles))
    db.session.commit()
    reply = client.post("/console/login", data={"username": username, "password": "correct-horse-1"})
    assert reply.status_code == 302


def test_pages_need_the_finance_role(client, rdb):
    assert client.get("/console/finance/").status_code == 302          # to the login page
    _login(client, "mod9", ("moderator",))
    assert client.get("/console/finance/").status_code == 403


def test_overview_payouts_reconciliation_render(client, rdb):
    fund(50_000)
    pid = approve(make_tip(make_resident()))["id"]
    payouts.to_manual_review(pid, "not_found_after_window")
    _login(client, "fin9")
    page = client.get("/console/finance/").get_data(as_text=True)
    assert "财务概览" in page and "月度预算" in page and "<svg" in page
    page = client.get("/console/finance/payouts").get_data(as_text=True)
    assert "待人工核对（1）" in page and db.session.get(Payout, pid).mch_billno in page and "导出 Excel" in page
    assert "对账日期" in client.get("/console/finance/reconciliation").get_data(as_text=True)


def test_topup_needs_a_second_finance_user(app, rdb):
    first, second = app.test_client(), app.test_client()
    _login(first, "finA")
    _login(second, "finB")
    reply = first.post("/console/finance/requests", data={"kind": "topup", "period": period_of(),
                                                          "amount_yuan": "100.50", "note": "十一月"})
    assert reply.status_code == 302
    req = db.session.query(FinanceRequest).one()
    assert req.payload == {"period": period_of(), "amount_fen": 10050}
    first.post(f"/console/finance/requests/{req.id}", data={"decision": "approve"})
    db.session.rollback()
    assert db.session.get(FinanceRequest, req.id).status == "pending"   # not by the requester
    second.post(f"/console/finance/requests/{req.id}", data={"decision": "approve"})
    db.session.rollback()
    assert db.session.get(FinanceRequest, req.id).status == "approved"
    from rewards import ledger

    assert ledger.budget_by_period()[period_of()]["available"] == 10050


def test_a_merchant_pause_shows_on_the_overview_and_finance_resumes_it(client, rdb):
    from rewards import pauses

    pauses.start_pause("NOTENOUGH")
    _login(client, "finP")
    page = client.get("/console/finance/").get_data(as_text=True)
    assert "红包发放已暂停：商户号余额不足" in page and "已充值，恢复发放" in page
    reply = client.post("/console/finance/payouts/resume", data={"note": "已充值 5 万元"})
    assert reply.status_code == 302
    assert pauses.open_pause() is None
    assert "红包发放已暂停" not in client.get("/console/finance/").get_data(as_text=True)
