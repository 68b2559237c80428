"""Payouts on the 商家转账 channel (PAYOUT_CHANNEL=transfer) through the sandbox over real HTTP: the bill
number committed before the first call and reused, the bill's states as reward statuses (decision
table), the resident's confirmation, expiry and cancellation giving the budget back, the result
notification (verified, idempotent) and the sweeper as fallback, a channel switch with payouts in
flight, and reconciliation of a transfer day. `rewards check` holds after each."""
from __future__ import annotations

import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
import requests

from app.display import business_day, period_of
from app.extensions import db
from app.models.base import utcnow
from app.queue import run_burst
from rewards import payouts
from rewards.channels import channel_of
from rewards.channels.transfer import CREATE_ROWS, REMARK, STATE_ROWS, state_row
from rewards.models import BudgetPeriod, Payout
from rewards.queries import list_rewards_for_resident
from rewards.reconciliation import reconcile_day
from rewards.sweeper import sweep_payouts
from tests.rewards.helpers import advance_both_clocks, approve, assert_books_hold, fund, make_resident, make_tip
from tests.wechat.conftest import LiveApp


@pytest.fixture
def transfer_app(make_app, sandbox_config, db, reference_data):
    """An app paying by transfer, served on loopback so the sandbox's notifications reach it."""
    app = make_app(**sandbox_config, PAYOUT_CHANNEL="transfer")
    live = LiveApp(app)
    app.config["WECHAT_TRANSFER_NOTIFY_URL"] = live.url + "/wechat/pay/transfer-notify"
    with app.app_context():
        yield app
    live.stop()


def _granted(n=1, severity=2):
    fund()
    return [approve(make_tip(make_resident()), severity=severity)["id"] for _ in range(n)]


def _payout(pid):
    """The payout's columns, read in a transaction that ends at once (on SQLite an open one would
    hold the write lock the worker and the live app need)."""
    db.session.rollback()
    row = db.session.get(Payout, pid)
    snapshot = SimpleNamespace(**{c.key: getattr(row, c.key) for c in Payout.__table__.columns})
    db.session.rollback()
    return snapshot


def _rewards(resident_id):
    items = list_rewards_for_resident(resident_id)[0]
    db.session.rollback()
    return items


def _budget(name):
    value = getattr(db.session.get(BudgetPeriod, period_of()), name)
    db.session.rollback()
    return value


def _bill(sandbox, billno):
    return next(b for b in sandbox.transfers() if b["out_bill_no"] == billno)


def _wait_for(pid, status, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _payout(pid).status == status:
            return True
        time.sleep(0.1)
    return False


def assert_sandbox_matches_transfers(sandbox) -> None:
    """Every bill is one payout, in the matching state; no payout counts as paid without its paid bill."""
    bills = {b["out_bill_no"]: b for b in sandbox.transfers()}
    db.session.rollback()
    expected = {"waiting_confirm": {"WAIT_USER_CONFIRM"}, "claimed": {"SUCCESS"},
                "cancelled": {"FAIL", "CANCELLED"}, "failed": {"FAIL"}}
    for payout in db.session.query(Payout).filter(Payout.channel == "transfer").all():
        bill = bills.get(payout.mch_billno)
        if payout.status == "failed" and bill is None:
            continue  # refused at creation: WeChat never made the bill
        if payout.status in expected:
            assert bill is not None, f"payout {payout.id} is {payout.status} without a bill"
            assert bill["state"] in expected[payout.status], (payout.status, bill["state"])
            assert bill["amount_fen"] == payout.amount_fen
    ours = {p.mch_billno for p in db.session.query(Payout).filter(Payout.mch_billno.is_not(None))}
    assert set(bills) <= ours
    db.session.rollback()


def test_decision_table_names_every_state_and_outcome():
    from app.wechat import PayOutcome, TRANSFER_STATES

    assert {row.state for row in STATE_ROWS} == set(TRANSFER_STATES)
    assert set(CREATE_ROWS) == set(PayOutcome)
    assert state_row("FAIL", "OVERDUE_CLOSE").status == "cancelled"
    assert state_row("FAIL", "ACCOUNT_FROZEN").status == "failed"
    assert state_row("CANCELING", None).status is None
    assert 1 <= len(REMARK) <= 32 and all("\u4e00" <= ch <= "\u9fff" for ch in REMARK)


def test_a_transfer_waits_for_the_resident_then_is_claimed(transfer_app, wechat_sandbox):
    pid, = _granted()
    payout = _payout(pid)
    assert payout.channel == "transfer" and payout.status == "reserved" and payout.mch_billno
    billno = payout.mch_billno
    run_burst(transfer_app, ("payouts",))
    payout = _payout(pid)
    assert payout.status == "waiting_confirm" and payout.package and payout.last_code == "WAIT_USER_CONFIRM"
    bill = _bill(wechat_sandbox, billno)
    assert bill["state"] == "WAIT_USER_CONFIRM" and bill["remark"] == REMARK
    assert bill["amount_fen"] == payout.amount_fen
    assert_books_hold()

    item, = _rewards(payout.resident_id)
    assert item["status"] == "waiting_confirm" and item["package"] is None
    assert item["transfer"] == {"mch_id": transfer_app.config["WECHAT_MCH_ID"],
                                "app_id": transfer_app.config["WECHAT_APPID"], "package": payout.package}
    before = _budget("committed_fen")

    # the sweeper asks again while it waits: nothing changes, no second bill
    sweep_payouts(now=utcnow() + timedelta(minutes=20))
    assert _payout(pid).status == "waiting_confirm" and len(wechat_sandbox.transfers()) == 1

    confirmed = requests.post(f"{wechat_sandbox.url}/__sandbox__/client/transfers/confirm",
                              json={**item["transfer"], "openid": _openid(pid)}, timeout=10)
    assert confirmed.status_code == 200, confirmed.text
    assert _wait_for(pid, "claimed")  # the notification settles it
    payout = _payout(pid)
    assert payout.sent_at is not None and payout.settled_at is not None
    assert _budget("committed_fen") == before + payout.amount_fen
    item, = _rewards(payout.resident_id)
    assert item["status"] == "claimed" and "transfer" not in item
    assert_books_hold()
    assert_sandbox_matches_transfers(wechat_sandbox)


def _openid(pid):
    from app.models.resident import Resident

    payout = _payout(pid)
    openid = db.session.get(Resident, payout.resident_id).wechat_openid
    db.session.rollback()
    return openid


def test_the_confirm_stand_in_checks_the_parameters(transfer_app, wechat_sandbox):
    pid, = _granted()
    run_burst(transfer_app, ("payouts",))
    params = _rewards(_payout(pid).resident_id)[0]["transfer"]
    url = f"{wechat_sandbox.url}/__sandbox__/client/transfers/confirm"
    assert requests.post(url, json={**params, "mch_id": "1900000000", "openid": _openid(pid)}).status_code == 400
    assert requests.post(url, json={**params, "package": "forged", "openid": _openid(pid)}).status_code == 400
    assert requests.post(url, json={**params, "openid": "someone-else"}).status_code == 403
    assert _bill(wechat_sandbox, _payout(pid).mch_billno)["state"] == "WAIT_USER_CONFIRM"


def test_expiry_returns_the_budget_and_the_caps(transfer_app, wechat_sandbox):
    pid, = _granted()
    available = _budget("available_fen")
    run_burst(transfer_app, ("payouts",))
    billno = _payout(pid).mch_billno
    assert wechat_sandbox.expire_transfer(billno)["state"] == "FAIL"
    assert _wait_for(pid, "cancelled")
    payout = _payout(pid)
    assert payout.reason == "OVERDUE_CLOSE" and payout.sent_at is None
    assert _budget("available_fen") == available + payout.amount_fen
    item, = _rewards(payout.resident_id)
    assert item["status"] == "cancelled" and "transfer" not in item
    assert_books_hold()
    assert_sandbox_matches_transfers(wechat_sandbox)


def test_the_sweeper_settles_when_no_notification_arrives(make_app, sandbox_config, db, reference_data,
                                                          wechat_sandbox):
    app = make_app(**sandbox_config, PAYOUT_CHANNEL="transfer", WECHAT_TRANSFER_NOTIFY_URL="http://127.0.0.1:9/x")
    with app.app_context():
        confirmed, lapsed = _granted(2)
        run_burst(app, ("payouts",))
        wechat_sandbox.confirm_transfer(_payout(confirmed).mch_billno)
        wechat_sandbox.expire_transfer(_payout(lapsed).mch_billno)
        time.sleep(0.3)
        assert _payout(confirmed).status == "waiting_confirm"  # nobody told us yet
        counts = sweep_payouts(now=utcnow() + timedelta(minutes=20))
        assert counts == {"claimed": 1, "cancelled": 1}
        assert sweep_payouts(now=utcnow() + timedelta(minutes=40)) == {}  # settled: nothing left to ask
        assert_books_hold()
        assert_sandbox_matches_transfers(wechat_sandbox)


def test_a_bill_left_a_day_closes_overdue_and_the_sweeper_books_it(transfer_app, wechat_sandbox):
    transfer_app.config["WECHAT_TRANSFER_NOTIFY_URL"] = ""
    pid, = _granted()
    run_burst(transfer_app, ("payouts",))
    advance_both_clocks(wechat_sandbox, 24.5)
    sweep_payouts()
    payout = _payout(pid)
    assert (payout.status, payout.reason) == ("cancelled", "OVERDUE_CLOSE")
    assert_books_hold()


def test_finance_cancels_a_waiting_transfer(transfer_app, wechat_sandbox):
    from rewards.finance import act_on_payout

    pid, = _granted()
    run_burst(transfer_app, ("payouts",))
    answer = act_on_payout(pid, "cancel", "居民联系不上", None)
    db.session.commit()
    assert answer["status"] == "cancelled"
    assert _bill(wechat_sandbox, _payout(pid).mch_billno)["state"] == "CANCELLED"
    assert_books_hold()
    from app.errors import Conflict

    with pytest.raises(Conflict):
        act_on_payout(pid, "cancel", None, None)  # only a waiting transfer can be cancelled
    db.session.rollback()
    assert_sandbox_matches_transfers(wechat_sandbox)


def test_notifications_are_verified_and_idempotent(transfer_app, wechat_sandbox):
    from app.wechat_sandbox.transfer import build_notification  # noqa: F401  (the sandbox's own builder)

    pid, = _granted()
    run_burst(transfer_app, ("payouts",))
    url = transfer_app.config["WECHAT_TRANSFER_NOTIFY_URL"]
    unsigned = requests.post(url, data=b'{"id":"x","resource":{}}', headers={
        "Wechatpay-Timestamp": str(int(time.time())), "Wechatpay-Nonce": "n", "Wechatpay-Serial": "s",
        "Wechatpay-Signature": "bad", "Content-Type": "application/json"}, timeout=10)
    assert unsigned.status_code == 401 and unsigned.json()["code"] == "FAIL"
    assert _payout(pid).status == "waiting_confirm"

    wechat_sandbox.confirm_transfer(_payout(pid).mch_billno)
    assert _wait_for(pid, "claimed")
    # WeChat delivering it again (our 2xx lost): answered 2xx, nothing booked twice
    from rewards.channels.transfer import settle_notification

    bill = _bill(wechat_sandbox, _payout(pid).mch_billno)
    assert settle_notification({"out_bill_no": bill["out_bill_no"], "state": "SUCCESS",
                                "transfer_amount": bill["amount_fen"], "update_time": bill["update_time"]}) == "claimed"
    assert settle_notification({"out_bill_no": bill["out_bill_no"], "state": "CANCELLED"}) == "claimed"
    assert settle_notification({"out_bill_no": "nosuchbill", "state": "SUCCESS"}) == "unknown"
    assert_books_hold()


@pytest.mark.parametrize("mode, status", [
    ("PARAM_ERROR", "failed"),           # FAILED_FINAL: nothing paid, budget back
    ("ACCOUNT_ERROR", "failed"),
    ("SIGN_ERROR", "manual_review"),     # CONFIG_ERROR: an operator looks
    ("NO_AUTH", "manual_review"),
    ("accept_then_timeout", "waiting_confirm"),   # UNKNOWN: the query finds the bill
    ("bad_sign", "waiting_confirm"),
    ("missing_field", "waiting_confirm"),
    ("INVALID_REQUEST", "pending"),      # UNKNOWN, the query finds nothing: the same number later
    ("SYSTEMERROR", "pending"),          # RETRY_SAME
    ("NOTENOUGH", "pending"),
    ("FREQ_LIMIT", "pending"),
    ("http_500", "pending"),
    ("timeout", "pending"),
])
def test_each_creation_outcome_through_the_sandbox(transfer_app, wechat_sandbox, mode, status):
    transfer_app.config["WECHAT_TRANSFER_NOTIFY_URL"] = ""
    pid, = _granted()
    wechat_sandbox.fault("transfer_bills", mode)
    try:
        got = payouts.send_payout(pid)
    except payouts.PayoutPending:
        got = "pending"
    assert got == status
    assert_books_hold()
    if status == "pending":  # the retry sends the same number: one bill
        assert payouts.send_payout(pid) == "waiting_confirm"
        assert [b["out_bill_no"] for b in wechat_sandbox.transfers()] == [_payout(pid).mch_billno]
    if status == "failed":
        assert wechat_sandbox.transfers() == []
    assert_books_hold()
    assert_sandbox_matches_transfers(wechat_sandbox)


def test_switching_channels_never_strands_a_payout(make_app, sandbox_config, db, reference_data, wechat_sandbox):
    """A red packet in flight when PAYOUT_CHANNEL becomes transfer settles as a red packet; new rewards
    are transfers; and back."""
    redpack_app = make_app(**sandbox_config, PAYOUT_CHANNEL="redpack")
    with redpack_app.app_context():
        old, = _granted()
        run_burst(redpack_app, ("payouts",))
        assert _payout(old).status == "sent"
        queued, = _granted()   # granted on red packets, not sent yet
    transfer_app = make_app(**sandbox_config, PAYOUT_CHANNEL="transfer", WECHAT_TRANSFER_NOTIFY_URL="")
    with transfer_app.app_context():
        new, = _granted()
        run_burst(transfer_app, ("payouts",))
        assert (_payout(queued).channel, _payout(queued).status) == ("redpack", "sent")
        assert (_payout(new).channel, _payout(new).status) == ("transfer", "waiting_confirm")
        wechat_sandbox.claim(_payout(old).mch_billno)
        sweep_payouts(now=utcnow() + timedelta(minutes=20))
        assert _payout(old).status == "claimed"
        assert len(wechat_sandbox.redpacks()) == 2 and len(wechat_sandbox.transfers()) == 1
        assert_books_hold()
    with redpack_app.app_context():
        wechat_sandbox.confirm_transfer(_payout(new).mch_billno)
        sweep_payouts(now=utcnow() + timedelta(minutes=40))
        assert _payout(new).status == "claimed"   # still settled as a transfer
        assert channel_of(_payout(new)).name == "transfer"
        assert_books_hold()


def test_a_transfer_day_reconciles_with_no_exceptions(transfer_app, wechat_sandbox):
    transfer_app.config["WECHAT_TRANSFER_NOTIFY_URL"] = ""
    day = business_day()
    pids = _granted(4)
    run_burst(transfer_app, ("payouts",))
    for pid in pids[:3]:
        wechat_sandbox.confirm_transfer(_payout(pid).mch_billno)
    wechat_sandbox.expire_transfer(_payout(pids[3]).mch_billno)
    sweep_payouts(now=utcnow() + timedelta(minutes=20))
    assert [_payout(p).status for p in pids] == ["claimed"] * 3 + ["cancelled"]
    advance_both_clocks(wechat_sandbox, 25)
    run = reconcile_day(day)   # the APIv3 fund-flow bill: download URL, SHA1 checked
    assert (run.status, run.exception_count, run.matched, run.bill_rows) == ("done", 0, 3, 3), run.error
    assert run.bill_expense_fen == run.ledger_expense_fen == sum(_payout(p).amount_fen for p in pids[:3])
    assert_books_hold()


def test_the_finance_console_cancels_a_waiting_transfer(transfer_app, wechat_sandbox):
    from app.accounts import create_staff

    pid, = _granted()
    run_burst(transfer_app, ("payouts",))
    create_staff("fin-transfer", "correct-horse-1", ["finance"])
    db.session.commit()
    client = transfer_app.test_client()
    assert client.post("/console/login", data={"username": "fin-transfer", "password": "correct-horse-1"}
                       ).status_code == 302
    page = client.get("/console/finance/payouts").get_data(as_text=True)
    assert "待确认收款" in page and "撤销转账" in page and "商家转账" in page
    db.session.rollback()
    reply = client.post(f"/console/finance/payouts/{pid}", data={"action": "cancel"})
    assert reply.status_code == 302
    assert _payout(pid).status == "cancelled"
    assert_books_hold()


@pytest.mark.parametrize("state, reason, before, after", [
    ("ACCEPTED", None, "sending", "sending"),
    ("PROCESSING", None, "sending", "sending"),
    ("TRANSFERING", None, "waiting_confirm", "sending"),   # the resident confirmed; no params shown any more
    ("CANCELING", None, "waiting_confirm", "waiting_confirm"),
    ("FAIL", "ACCOUNT_FROZEN", "waiting_confirm", "failed"),
    ("SUCCESS", None, "sending", "claimed"),
])
def test_states_the_sandbox_does_not_linger_in(transfer_app, wechat_sandbox, state, reason, before, after):
    """WeChat's passing states (the sandbox moves through them at once), as a query would report them."""
    from app.wechat import PayOutcome, PayResult

    transfer_app.config["WECHAT_TRANSFER_NOTIFY_URL"] = ""
    pid, = _granted()
    run_burst(transfer_app, ("payouts",))
    if before == "sending":
        assert payouts.transition(pid, ("waiting_confirm",), "sending")
        db.session.commit()
    payout = _payout(pid)
    info = PayResult(PayOutcome.SUCCESS, "SUCCESS", status=state, reason=reason, amount_fen=payout.amount_fen,
                     detail_id="1330000" + "0" * 20, rcv_time=utcnow() if state == "SUCCESS" else None)
    assert channel_of(payout).settle(pid, info) == after
    assert _payout(pid).last_code == (reason or state)
    items = _rewards(payout.resident_id)
    assert ("transfer" in items[0]) == (after == "waiting_confirm")
    assert_books_hold()
