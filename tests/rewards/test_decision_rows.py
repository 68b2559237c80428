"""Every row of the decision table (rewards/decisions.py, docs/WECHAT.md §Decision table) driven through
the sandbox over HTTP: the sandbox answers with WeChat's code or state, the payout does what the row
says, the books hold and WeChat's packets match the ledger. Run on SQLite and on PostgreSQL
(DATABASE_URL)."""
from datetime import datetime, timedelta

import pytest

from app.clock import set_clock
from app.display import SHANGHAI, period_of
from app.extensions import db, wechat
from app.models.base import utcnow
from rewards import decisions, ledger, payouts
from rewards.models import Payout, PayoutPause
from rewards.sweeper import sweep_payouts
from tests.fixtures.sandbox import new_billno
from tests.rewards.helpers import (approve, assert_books_hold, assert_sandbox_matches_ledger, fund, make_resident,
                                   make_tip)

PAUSE_BY_FAULT = ["NOTENOUGH", "NO_AUTH", "CA_ERROR", "SIGN_ERROR", "API_METHOD_CLOSED", "MSGAPPID_ERROR",
                  "ILLEGAL_APPID", "ACCEPTMODE_ERROR"]


def _approved(openid=None):
    reward = approve(make_tip(make_resident(openid)), severity=2)
    assert reward["status"] == "reserved"
    return reward["id"]


def _payout(pid):
    db.session.rollback()
    return db.session.get(Payout, pid)


def _sweep(hours_ahead=0.0):
    return sweep_payouts(now=utcnow() + timedelta(hours=hours_ahead))


def _open_pause():
    db.session.rollback()
    return db.session.query(PayoutPause).filter(PayoutPause.open_key.is_not(None)).one_or_none()


def _finance_headers():
    from app.accounts import create_staff, issue_staff_token

    user = create_staff("fin-pause", "correct-horse-1", ["finance"])
    token, _ = issue_staff_token(user)
    db.session.commit()
    return {"Authorization": f"Bearer {token}"}


def _books(sandbox):
    assert_books_hold()
    assert_sandbox_matches_ledger(sandbox)


# --- send rows --------------------------------------------------------------------------------------

def test_send_success_is_paid(pay_app, wechat_sandbox):
    fund()
    pid = _approved()
    assert payouts.send_payout(pid) == "sent"
    assert decisions.decide("send", "SUCCESS").action == decisions.PAID
    _books(wechat_sandbox)


@pytest.mark.parametrize("code", ["SYSTEMERROR", "FREQ_LIMIT"])
def test_send_retry_same_billno(pay_app, wechat_sandbox, code):
    fund()
    pid = _approved()
    billno = _payout(pid).mch_billno
    wechat_sandbox.fault("sendminiprogramhb", code)
    with pytest.raises(payouts.PayoutPending, match=code):
        payouts.send_payout(pid)
    assert payouts.send_payout(pid) == "sent"
    assert [p["mch_billno"] for p in wechat_sandbox.redpacks()] == [billno]
    _books(wechat_sandbox)


def test_send_local_rate_limit_is_retry_same_billno(make_app, sandbox_config, wechat_sandbox, db, reference_data):
    app = make_app(**{**sandbox_config, "WECHAT_PAY_RATE_LIMIT": 1, "WECHAT_PAY_RATE_WAIT": 0})
    with app.app_context():
        fund()
        pid = _approved()
        slot = wechat._acquire_pay_slot()      # another process holds this second's only call
        assert slot is not None
        with pytest.raises(payouts.PayoutPending, match="LOCAL_RATE_LIMIT"):
            payouts.send_payout(pid)
        assert wechat_sandbox.redpacks() == [] and _payout(pid).status == "sending"
        wechat._release_pay_slot(slot)
        import time

        time.sleep(1.1)
        assert payouts.send_payout(pid) == "sent"
        _books(wechat_sandbox)


def test_send_processing_is_in_flight_then_settled_by_the_sweeper(pay_app, wechat_sandbox):
    fund()
    pid = _approved()
    wechat_sandbox.fault("sendminiprogramhb", "PROCESSING")
    assert payouts.send_payout(pid) == "sending"
    assert _payout(pid).last_code == "PROCESSING" and wechat_sandbox.redpacks() == []
    assert _sweep(1) == {"sent": 1}          # gethbinfo NOT_FOUND → the same billno again
    _books(wechat_sandbox)


@pytest.mark.parametrize("code", PAUSE_BY_FAULT)
def test_send_merchant_condition_pauses_and_finance_resumes(pay_app, wechat_sandbox, code):
    fund()
    first, second = _approved(), _approved()
    wechat_sandbox.fault("sendminiprogramhb", code)
    assert payouts.send_payout(first) == "reserved"
    pause = _open_pause()
    assert pause.code == code and pause.resume_at is None
    assert payouts.send_payout(second) == "reserved"    # held without calling WeChat
    assert {_payout(first).last_code, _payout(second).last_code} == {code, "PAUSED"}
    assert wechat_sandbox.redpacks() == [] and db.session.query(Payout).filter_by(status="failed").count() == 0
    _sweep(0.1)                                          # nothing is sent while the pause holds
    assert wechat_sandbox.redpacks() == [] and _payout(first).status == "reserved"
    _books(wechat_sandbox)

    api = pay_app.test_client()
    headers = _finance_headers()
    listed = api.get("/api/staff/v1/finance/payouts/pauses", headers=headers).get_json()
    assert listed["paused"] and listed["current"]["code"] == code and listed["held"] == 2
    assert listed["current"]["label"] == decisions.pause_label(code)
    reply = api.post("/api/staff/v1/finance/payouts/resume", json={"note": "已充值"}, headers=headers)
    assert reply.status_code == 200 and reply.get_json()["held"] == 2
    assert api.post("/api/staff/v1/finance/payouts/resume", json={}, headers=headers).status_code == 409
    assert _sweep() == {"sent": 2}
    assert _open_pause() is None
    _books(wechat_sandbox)


def test_notenough_pause_ends_with_a_probe_once_topped_up(make_app, sandbox_config, wechat_sandbox, db,
                                                          reference_data):
    app = make_app(**sandbox_config, REWARDS_PAUSE_PROBE=60)
    with app.app_context():
        fund()
        pids = [_approved() for _ in range(3)]
        wechat_sandbox.configure(balance_fen=100)
        assert payouts.send_payout(pids[0]) == "reserved"
        assert [payouts.send_payout(p) for p in pids[1:]] == ["reserved", "reserved"]
        assert _open_pause().code == "NOTENOUGH"
        assert _sweep() == {}                                 # no probe before its time
        assert _sweep(0.05) == {"probe_reserved": 1}          # the probe meets NOTENOUGH again: still paused
        assert _open_pause() is not None
        wechat_sandbox.configure(balance_fen=1_000_000)
        assert _sweep(0.1)["probe_sent"] == 1
        assert {_payout(p).status for p in pids} == {"sent"}
        assert _open_pause() is None and len(wechat_sandbox.redpacks()) == 3
        _books(wechat_sandbox)


def test_cert_missing_pauses_without_calling(make_app, sandbox_config, wechat_sandbox, db, reference_data, tmp_path):
    app = make_app(**{**sandbox_config, "WECHAT_PAY_CERT": str(tmp_path / "gone.pem"),
                      "WECHAT_PAY_KEY_FILE": str(tmp_path / "gone.key")})
    with app.app_context():
        fund()
        pid = _approved()
        assert payouts.send_payout(pid) == "reserved"
        assert _open_pause().code == "CERT_MISSING" and wechat_sandbox.redpacks() == []
        assert_books_hold()


def test_merchant_daily_total_pauses_until_the_next_beijing_day(pay_app, wechat_sandbox):
    """A day with the merchant's cap hit pays every packet the next day; no resident sees a failure."""
    evening = datetime(2026, 12, 10, 22, 0, tzinfo=SHANGHAI)
    set_clock(evening)
    wechat_sandbox.set_clock(evening)
    try:
        fund()
        wechat_sandbox.configure(merchant_day_fen=1000)    # two ¥5 packets a day for the whole merchant
        pids = [_approved() for _ in range(5)]
        statuses = [payouts.send_payout(p) for p in pids]
        assert statuses == ["sent", "sent", "reserved", "reserved", "reserved"]
        pause = _open_pause()
        assert pause.code == "SENDAMOUNT_LIMIT"
        assert pause.resume_at == datetime(2026, 12, 11, 0, 0, tzinfo=SHANGHAI)
        _sweep(1)                                           # still the same Beijing day: held
        assert [_payout(p).status for p in pids[2:]] == ["reserved"] * 3
        assert db.session.query(Payout).filter(Payout.status.in_(("failed", "manual_review"))).count() == 0
        _books(wechat_sandbox)

        wechat_sandbox.configure(merchant_day_fen=1_000_000)
        next_morning = datetime(2026, 12, 11, 0, 5, tzinfo=SHANGHAI)
        set_clock(next_morning)
        wechat_sandbox.set_clock(next_morning)
        _sweep()
        assert _open_pause() is None
        assert {_payout(p).status for p in pids} == {"sent"}
        assert db.session.query(PayoutPause).one().ended_how == "next_day"
        _books(wechat_sandbox)
    finally:
        wechat_sandbox.set_clock(None)


@pytest.mark.parametrize("code", ["RCVDAMOUNT_LIMIT", "SENDNUM_LIMIT"])
def test_resident_daily_limit_defers_to_the_next_day(pay_app, wechat_sandbox, code):
    fund()
    pid = _approved()
    wechat_sandbox.fault("sendminiprogramhb", code)
    assert payouts.send_payout(pid) == "reserved"
    payout = _payout(pid)
    assert payout.last_code == code and payout.next_check_at > utcnow()
    assert _open_pause() is None                           # the merchant goes on paying others
    other = _approved()
    assert payouts.send_payout(other) == "sent"
    _sweep(1)
    assert _payout(pid).status == "reserved"
    _sweep(24)
    assert _payout(pid).status == "sent"
    assert _payout(pid).mch_billno == payout.mch_billno    # the same billno
    _books(wechat_sandbox)


def test_send_failed_reissues_only_after_gethbinfo_proves_the_old_billno_unpaid(pay_app, wechat_sandbox):
    fund()
    pid = _approved()
    old = _payout(pid).mch_billno
    wechat_sandbox.fault("sendminiprogramhb", "SEND_FAILED")
    assert payouts.send_payout(pid) == "sent"
    payout = _payout(pid)
    assert payout.mch_billno != old and payout.previous_billnos == [old]
    assert [p["mch_billno"] for p in wechat_sandbox.redpacks()] == [payout.mch_billno]
    from rewards.models import LedgerTransaction

    sent = db.session.query(LedgerTransaction).filter_by(payout_id=pid, kind="sent").one()
    assert old in sent.memo and payout.mch_billno in sent.memo
    from rewards.finance import payout_row

    assert payout_row(payout)["previous_billnos"] == [old]
    _books(wechat_sandbox)


def test_send_failed_with_an_unanswered_query_waits(pay_app, wechat_sandbox):
    fund()
    pid = _approved()
    old = _payout(pid).mch_billno
    wechat_sandbox.fault("sendminiprogramhb", "SEND_FAILED")
    wechat_sandbox.fault("gethbinfo", "SYSTEMERROR")
    with pytest.raises(payouts.PayoutPending, match="SEND_FAILED; query SYSTEMERROR"):
        payouts.send_payout(pid)
    assert _payout(pid).mch_billno == old and _payout(pid).previous_billnos is None
    assert payouts.send_payout(pid) == "sent"
    _books(wechat_sandbox)


@pytest.mark.parametrize("code", ["OPENID_ERROR", "USER_ERROR"])
def test_final_for_the_resident_with_a_reason_they_read(pay_app, wechat_sandbox, code):
    from rewards.queries import list_rewards_for_resident

    fund(10_000)
    pid = _approved()
    wechat_sandbox.fault("sendminiprogramhb", code)
    assert payouts.send_payout(pid) == "failed"
    payout = _payout(pid)
    items, _ = list_rewards_for_resident(payout.resident_id)
    assert items[0]["status"] == "failed"
    assert items[0]["failure_reason"] == decisions.resident_reason(code)
    assert ledger.budget_by_period()[period_of()]["available"] == 10_000
    _books(wechat_sandbox)


@pytest.mark.parametrize("code", ["MONEY_LIMIT", "PARAM_ERROR", "XML_ERROR"])
def test_our_request_wrong_goes_to_manual_review(pay_app, wechat_sandbox, code):
    fund()
    pid = _approved()
    wechat_sandbox.fault("sendminiprogramhb", code)
    assert payouts.send_payout(pid) == "manual_review"
    assert _payout(pid).reason == f"request:{code}" and _open_pause() is None
    _books(wechat_sandbox)


def test_invalid_billno_goes_to_manual_review_without_a_call(pay_app, wechat_sandbox):
    fund()
    pid = _approved()
    db.session.query(Payout).filter_by(id=pid).update({"mch_billno": "123"})
    db.session.commit()
    assert payouts.send_payout(pid) == "manual_review"
    assert _payout(pid).reason == "request:INVALID_BILLNO" and wechat_sandbox.redpacks() == []


@pytest.mark.parametrize("mode, code", [("FATAL_ERROR", "FATAL_ERROR"), ("http_500", "HTTP_500"),
                                        ("not_xml", "NOT_XML"), ("unknown_code", "NEW_RISK_CONTROL")])
def test_unclear_answers_are_asked_about_never_reminted(pay_app, wechat_sandbox, mode, code):
    fund()
    pid = _approved()
    billno = _payout(pid).mch_billno
    wechat_sandbox.fault("sendminiprogramhb", mode)
    with pytest.raises(payouts.PayoutPending, match=f"{code}; query NOT_FOUND"):
        payouts.send_payout(pid)
    assert payouts.send_payout(pid) == "sent"
    assert _payout(pid).mch_billno == billno and _payout(pid).previous_billnos is None
    _books(wechat_sandbox)


UNREADABLE = [("bad_sign", "INVALID_SIGNATURE"), ("missing_field", "MISSING_FIELD"), ("mismatch", "MISMATCH"),
              ("unparseable", "UNPARSEABLE")]


@pytest.mark.parametrize("mode, code", UNREADABLE)
def test_replies_that_cannot_be_trusted_read_as_unclear(pay_app, wechat_sandbox, mode, code):
    wechat_sandbox.fault("sendminiprogramhb", mode)
    result = wechat.send_miniprogram_hb(new_billno(), "o_probe_unreadable", 100, "报料奖励", "感谢", "感谢报料")
    assert result.code == code
    assert decisions.decide("send", code).action == decisions.QUERY_FIRST


@pytest.mark.parametrize("mode", [mode for mode, _ in UNREADABLE])
def test_paid_but_unreadable_replies_are_settled_by_the_query(pay_app, wechat_sandbox, mode):
    fund()
    pid = _approved()
    billno = _payout(pid).mch_billno
    wechat_sandbox.fault("sendminiprogramhb", mode)
    assert payouts.send_payout(pid) == "sent"      # gethbinfo: SENT
    assert len([p for p in wechat_sandbox.redpacks() if p["mch_billno"] == billno]) == 1
    _books(wechat_sandbox)


def test_no_connection_is_asked_about_never_reminted(make_app, sandbox_config, wechat_sandbox, db, reference_data):
    import socket

    with socket.socket() as probe:                 # a port nobody listens on: the connection is refused
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    app = make_app(**{**sandbox_config, "WECHAT_PAY_API_BASE": f"http://127.0.0.1:{closed}/"})
    with app.app_context():
        fund()
        pid = _approved()
        billno = _payout(pid).mch_billno
        with pytest.raises(payouts.PayoutPending, match="CONNECTION_ERROR; query CONNECTION_ERROR"):
            payouts.send_payout(pid)
        assert _payout(pid).status == "sending" and _payout(pid).mch_billno == billno
        assert_books_hold()


# --- query rows -------------------------------------------------------------------------------------

@pytest.mark.parametrize("code", ["SYSTEMERROR", "FREQ_LIMIT", "PROCESSING", "unknown_code"])
def test_query_failure_asks_again(pay_app, wechat_sandbox, code):
    fund()
    pid = _approved()
    payouts.send_payout(pid)
    wechat_sandbox.fault("gethbinfo", code)
    assert _sweep(1) == {"sent": 1}
    wechat_sandbox.claim(_payout(pid).mch_billno)
    assert _sweep(2) == {"claimed": 1}
    _books(wechat_sandbox)


@pytest.mark.parametrize("code", ["NO_AUTH", "CA_ERROR", "SIGN_ERROR"])
def test_query_with_the_merchant_condition_pauses(pay_app, wechat_sandbox, code):
    fund()
    pid = _approved()
    payouts.send_payout(pid)
    wechat_sandbox.fault("gethbinfo", code)
    assert _sweep(1) == {"sent": 1}
    assert _open_pause().code == code
    assert payouts.send_payout(_approved()) == "reserved"   # held
    _books(wechat_sandbox)


# --- status rows ------------------------------------------------------------------------------------

def test_sending_is_in_flight_not_paid_then_sent(pay_app, wechat_sandbox):
    fund()
    pid = _approved()
    wechat_sandbox.fault("sendminiprogramhb", "sending_then_sent", count=1)
    assert payouts.send_payout(pid) == "sending"       # reply lost; gethbinfo: SENDING
    payout = _payout(pid)
    assert payout.sent_at is None and payout.last_code == "SENDING"
    assert ledger.balances().get(ledger.IN_FLIGHT, 0) == 0
    assert_books_hold()
    assert _sweep(1) == {"sent": 1}                     # SENT now: paid, the package fetched
    assert _payout(pid).package
    _books(wechat_sandbox)


def test_sending_that_outlives_the_window_goes_to_manual_review(pay_app, wechat_sandbox):
    fund()
    pid = _approved()
    wechat_sandbox.fault("sendminiprogramhb", "sending_then_sent", count=5)
    assert payouts.send_payout(pid) == "sending"
    assert _sweep(25) == {"manual_review": 1}
    assert _payout(pid).reason == "sending_after_window" and _payout(pid).sent_at is None
    assert_books_hold()


def test_failed_is_reissued_under_a_new_billno(pay_app, wechat_sandbox):
    fund()
    pid = _approved()
    old = _payout(pid).mch_billno
    wechat_sandbox.fault("sendminiprogramhb", "sending_then_failed", count=1)
    assert payouts.send_payout(pid) == "sending"
    assert _sweep(1) == {"sent": 1}                     # FAILED → a new billno, sent
    payout = _payout(pid)
    assert payout.previous_billnos == [old] and payout.mch_billno != old
    statuses = {p["mch_billno"]: p["status"] for p in wechat_sandbox.redpacks()}
    assert statuses == {old: "FAILED", payout.mch_billno: "SENT"}
    assert_books_hold()


def test_rfund_ing_is_refunding_then_refund(pay_app, wechat_sandbox):
    fund(10_000)
    pid = _approved()
    payouts.send_payout(pid)
    wechat_sandbox.fault("gethbinfo", "refund_slow", count=1)
    wechat_sandbox.advance(25)
    assert _sweep(25) == {"sent": 1}                    # RFUND_ING: still in flight
    assert ledger.balances()[ledger.IN_FLIGHT] == 500
    assert_books_hold()
    assert _sweep(26) == {"refunded": 1}
    assert ledger.budget_by_period()[period_of()]["available"] == 10_000
    assert_books_hold()


def test_received_is_claimed(pay_app, wechat_sandbox):
    fund()
    pid = _approved()
    payouts.send_payout(pid)
    wechat_sandbox.claim(_payout(pid).mch_billno)
    assert _sweep(1) == {"claimed": 1}
    _books(wechat_sandbox)


def test_one_packet_per_payout_is_checked(pay_app, wechat_sandbox):
    from rewards.invariants import check_one_payout_per_tip

    fund()
    a, b = _approved(), _approved()
    billno_a = _payout(a).mch_billno
    db.session.query(Payout).filter_by(id=b).update({"previous_billnos": [billno_a]})
    db.session.commit()
    assert any("given up by payout" in m for m in check_one_payout_per_tip())


def test_a_config_error_is_logged_as_an_error_once_per_incident(pay_app, wechat_sandbox, caplog):
    import logging

    fund()
    pids = [_approved() for _ in range(3)]
    wechat_sandbox.fault("sendminiprogramhb", "CA_ERROR", count=3)
    with caplog.at_level(logging.WARNING):
        assert [payouts.send_payout(p) for p in pids] == ["reserved"] * 3   # one call; two held without one
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == ["payouts paused for the merchant"]
