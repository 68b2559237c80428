"""Finance API: roles, summary, payouts with filters and CSV/Excel export, manual review actions,
reconciliation runs (202 then the result), exception resolution, dual control. All audited."""
import csv
import io
from datetime import timedelta

import pytest

from app.accounts import create_staff, issue_staff_token
from app.display import business_day, period_of
from app.extensions import db
from app.models.audit import AuditEntry
from app.queue import run_burst
from rewards import payouts
from rewards.models import Payout
from tests.rewards.helpers import advance_both_clocks, approve, assert_books_hold, fund, make_resident, make_tip


def _token(username, roles=("finance",)):
    user = create_staff(username, "correct-horse-1", list(roles))
    token, _ = issue_staff_token(user)
    db.session.commit()
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def fin(pay_app):
    return _token("fin1")


@pytest.fixture
def api(pay_app):
    return pay_app.test_client()


def _paid(app, n=2):
    fund(100_000)
    pids = [approve(make_tip(make_resident()), severity=2)["id"] for _ in range(n)]
    run_burst(app, ("payouts",))
    return pids


def test_finance_role_required(api, pay_app):
    moderator = _token("mod1", ("moderator",))
    assert api.get("/api/staff/v1/finance/summary").status_code == 401
    reply = api.get("/api/staff/v1/finance/summary", headers=moderator)
    assert reply.status_code == 403 and reply.json["error"]["code"] == "wrong_role"


def test_summary_counts_every_flow(api, fin, pay_app, wechat_sandbox):
    pids = _paid(pay_app, 3)
    db.session.rollback()
    wechat_sandbox.claim(db.session.get(Payout, pids[0]).mch_billno)
    from rewards.sweeper import sweep_payouts
    from app.models.base import utcnow

    sweep_payouts(now=utcnow() + timedelta(hours=1))
    today = business_day().isoformat()
    body = api.get(f"/api/staff/v1/finance/summary?from={today}&to={today}", headers=fin).json
    assert (body["reserved_fen"], body["sent_fen"], body["claimed_fen"]) == (1500, 1500, 500)
    assert body["in_flight_fen"] == 1000 and body["refunded_fen"] == body["failed_fen"] == 0
    [budget] = body["budget"]
    assert budget == {"period": period_of(), "available": 98_500, "reserved": 0, "committed": 1500, "topups": 1}
    assert body["by_day"] == [{"date": today, "reserve_fen": 1500, "sent_fen": 1500, "claimed_fen": 500,
                               "refunded_fen": 0, "failed_fen": 0}]
    bad = api.get("/api/staff/v1/finance/summary?from=2026-11-30&to=2026-11-01", headers=fin)
    assert bad.status_code == 422 and "from" in bad.json["error"]["fields"]


def test_payouts_list_filter_and_exports(api, fin, pay_app, wechat_sandbox):
    _paid(pay_app, 3)
    approve(make_tip(make_resident(no_reward=True)))
    body = api.get("/api/staff/v1/finance/payouts?status=sent&limit=2", headers=fin).json
    assert len(body["items"]) == 2 and body["next"]
    assert all(i["status"] == "sent" and len(i["mch_billno"]) == 28 for i in body["items"])
    rest = api.get(f"/api/staff/v1/finance/payouts?status=sent&limit=2&cursor={body['next']}", headers=fin).json
    assert len(rest["items"]) == 1 and rest["next"] is None
    assert "openid" not in str(body)

    exported = api.get("/api/staff/v1/finance/payouts?format=csv", headers=fin)
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True).lstrip("\ufeff"))))[:-1]  # less totals
    assert sorted(r["状态"] for r in rows) == ["待领取", "待领取", "待领取", "未发放"]
    assert all(len(r["商户订单号"]) == 28 for r in rows if r["状态"] == "待领取")

    from openpyxl import load_workbook

    xlsx = api.get("/api/staff/v1/finance/payouts?format=xlsx&status=sent", headers=fin)
    sheet = load_workbook(io.BytesIO(xlsx.data)).active
    assert sheet.max_row == 5 and sheet.cell(1, 9).value == "商户订单号"   # header, 3 rows, totals
    assert api.get("/api/staff/v1/finance/payouts?status=bogus", headers=fin).status_code == 422


def test_manual_review_retry_and_mark_failed(api, fin, pay_app, wechat_sandbox):
    fund(100_000)
    stuck = [approve(make_tip(make_resident()))["id"] for _ in range(2)]
    for pid in stuck:
        payouts.to_manual_review(pid, "not_found_after_window")
    url = "/api/staff/v1/finance/payouts/{}/actions"

    reply = api.post(url.format(stuck[0]), json={"action": "retry"}, headers=fin)
    assert reply.status_code == 200 and reply.json["status"] == "sending"
    run_burst(pay_app, ("payouts",))
    db.session.rollback()
    assert db.session.get(Payout, stuck[0]).status == "sent"
    assert api.post(url.format(stuck[0]), json={"action": "retry"}, headers=fin).status_code == 409

    assert api.post(url.format(stuck[1]), json={"action": "mark_failed"}, headers=fin).status_code == 422
    reply = api.post(url.format(stuck[1]), json={"action": "mark_failed", "note": "微信查无此单"}, headers=fin)
    assert reply.json["status"] == "failed"
    audit = {a.action for a in db.session.query(AuditEntry).filter_by(object_type="payout")}
    assert audit == {"payout.retry", "payout.mark_failed"}
    assert_books_hold()


def test_mark_failed_refused_when_wechat_has_the_packet(api, fin, pay_app, wechat_sandbox):
    [pid] = _paid(pay_app, 1)
    db.session.rollback()
    # pretend the sweeper lost track of it
    payouts.transition(pid, ("sent",), "manual_review", reason="unanswered:TIMEOUT")
    db.session.commit()
    reply = api.post(f"/api/staff/v1/finance/payouts/{pid}/actions",
                     json={"action": "mark_failed", "note": "?"}, headers=fin)
    assert reply.status_code == 409 and reply.json["error"]["code"] == "wechat_has_packet"
    reply = api.post(f"/api/staff/v1/finance/payouts/{pid}/actions", json={"action": "recheck"}, headers=fin)
    assert reply.json["status"] == "sent"
    assert_books_hold()


def test_reconciliation_is_202_then_readable_and_exceptions_resolvable(api, fin, pay_app, wechat_sandbox):
    _paid(pay_app, 2)
    day = business_day().isoformat()
    today = api.post("/api/staff/v1/finance/reconciliations", json={"date": day}, headers=fin)
    assert today.status_code == 422 and today.json["error"]["code"] == "bill_not_ready"
    assert "账单次日 10 点后生成" in today.json["error"]["message"]
    advance_both_clocks(wechat_sandbox, 25)
    fin = _token("fin_next_day")   # a staff token lasts a working day
    reply = api.post("/api/staff/v1/finance/reconciliations", json={"date": day}, headers=fin)
    assert reply.status_code == 202 and reply.json["id"]
    assert api.get(f"/api/staff/v1/finance/reconciliations/{day}", headers=fin).json["status"] == "running"
    db.session.rollback()  # the test client shares this app context's session; end its transaction
    run_burst(pay_app, ("maintenance",))
    body = api.get(f"/api/staff/v1/finance/reconciliations/{day}", headers=fin).json
    assert (body["status"], body["matched"], body["exceptions"]) == ("done", 2, [])
    assert api.get("/api/staff/v1/finance/reconciliations/2020-01-01", headers=fin).status_code == 404
    assert api.post("/api/staff/v1/finance/reconciliations", json={"date": "x"}, headers=fin).status_code == 422
    by_default = api.post("/api/staff/v1/finance/reconciliations", json={}, headers=fin)
    assert by_default.status_code == 202
    yesterday = (business_day() - timedelta(days=1)).isoformat()
    assert api.get(f"/api/staff/v1/finance/reconciliations/{yesterday}", headers=fin).json["id"] == by_default.json["id"]


def test_dual_control_topup_and_policy(api, fin, pay_app):
    other = _token("fin2")
    period = period_of()
    reply = api.post("/api/staff/v1/finance/requests", headers=fin,
                     json={"kind": "topup", "payload": {"period": period, "amount_fen": 50_000}})
    assert reply.status_code == 201
    rid = reply.json["id"]
    own = api.post(f"/api/staff/v1/finance/requests/{rid}/decision", json={"approve": True}, headers=fin)
    assert own.status_code == 403 and own.json["error"]["code"] == "dual_control"
    ok = api.post(f"/api/staff/v1/finance/requests/{rid}/decision", json={"approve": True}, headers=other)
    assert ok.json["status"] == "approved"
    again = api.post(f"/api/staff/v1/finance/requests/{rid}/decision", json={"approve": True}, headers=other)
    assert again.status_code == 409
    from rewards import ledger

    assert ledger.budget_by_period()[period]["available"] == 50_000

    bad = api.post("/api/staff/v1/finance/requests", headers=fin,
                   json={"kind": "policy", "payload": {"settings": {"resident_day_count": 50}}})
    assert bad.status_code == 422
    rid = api.post("/api/staff/v1/finance/requests", headers=fin,
                   json={"kind": "policy", "payload": {"settings": {"resident_day_count": 5}}}).json["id"]
    assert api.get("/api/staff/v1/finance/policy", headers=fin).json["resident_day_count"] == 3
    api.post(f"/api/staff/v1/finance/requests/{rid}/decision", json={"approve": True}, headers=other)
    assert api.get("/api/staff/v1/finance/policy", headers=fin).json["resident_day_count"] == 5
    actions = [a.action for a in db.session.query(AuditEntry).filter_by(object_type="finance_request")]
    assert actions.count("finance.request") == 2 and actions.count("finance.approve") == 2
    assert_books_hold()
