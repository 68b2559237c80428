"""Payouts against the real sandbox over HTTP: every money path, each ending with the invariants
checked and WeChat's packet list compared to the ledger."""
import threading
from datetime import timedelta

import pytest

from app.display import period_of
from app.extensions import db, wechat
from app.models.base import utcnow
from app.queue import run_burst
from rewards import ledger, payouts
from rewards.models import Payout, RewardCounter
from rewards.sweeper import sweep_payouts
from tests.rewards.helpers import (approve, assert_books_hold, assert_sandbox_matches_ledger, fund, make_resident,
                                   make_tip)

LATER = timedelta(days=2)


def _approved(severity=2, openid=None):
    resident = make_resident(openid)
    reward = approve(make_tip(resident), severity=severity)
    assert reward["status"] == "reserved"
    return reward["id"]


def _payout(pid):
    db.session.rollback()
    return db.session.get(Payout, pid)


def _drain(app):
    run_burst(app, ("payouts",))


def _sweep(hours_ahead=48):
    return sweep_payouts(now=utcnow() + timedelta(hours=hours_ahead))


def test_send_then_claim(pay_app, wechat_sandbox):
    fund()
    pid = _approved()
    _drain(pay_app)

    payout = _payout(pid)
    assert payout.status == "sent" and payout.package and f"spbillid={payout.mch_billno}" in payout.package
    assert ledger.balances()[ledger.IN_FLIGHT] == 500
    assert_books_hold()
    assert_sandbox_matches_ledger(wechat_sandbox)

    wechat_sandbox.claim(payout.mch_billno)
    assert _sweep() == {"claimed": 1}
    assert _payout(pid).status == "claimed"
    raw = ledger.balances()
    assert raw[ledger.EXPENSE] == 500 and raw[ledger.IN_FLIGHT] == 0
    assert_books_hold()
    assert_sandbox_matches_ledger(wechat_sandbox)


def test_unclaimed_packet_is_refunded_and_budget_comes_back(pay_app, wechat_sandbox):
    fund(10_000)
    pid = _approved()
    _drain(pay_app)
    wechat_sandbox.advance(23)
    assert _sweep(1) == {"sent": 1}          # still SENT at 23 h: checked again later
    wechat_sandbox.advance(2)
    assert _sweep() == {"refunded": 1}
    assert _payout(pid).status == "refunded"
    assert ledger.budget_by_period()[period_of()] == {"available": 10_000, "reserved": 0, "committed": 0}
    assert ledger.balances()[ledger.MERCHANT] == 10_000
    assert_books_hold()
    assert_sandbox_matches_ledger(wechat_sandbox)


def test_refund_after_the_period_closed_goes_to_expired(pay_app, wechat_sandbox):
    from rewards.budget import close_period

    fund(10_000)
    pid = _approved()
    _drain(pay_app)
    close_period(period_of())
    db.session.commit()
    wechat_sandbox.advance(25)
    assert _sweep() == {"refunded": 1}
    assert ledger.natural(ledger.EXPIRED, ledger.balances()[ledger.EXPIRED]) == 10_000
    assert ledger.budget_by_period()[period_of()]["available"] == 0
    assert_books_hold()


@pytest.mark.parametrize("mode", ["SYSTEMERROR", "FREQ_LIMIT", "http_500", "not_xml"])
def test_transient_failure_retries_with_the_same_billno(pay_app, wechat_sandbox, mode):
    fund()
    pid = _approved()
    billno = _payout(pid).mch_billno
    wechat_sandbox.fault("sendminiprogramhb", mode)
    with pytest.raises(payouts.PayoutPending):
        payouts.send_payout(pid)
    payout = _payout(pid)
    assert payout.status == "sending" and payout.mch_billno == billno
    assert wechat_sandbox.redpacks() == []
    assert_books_hold()

    assert payouts.send_payout(pid) == "sent"
    assert [p["mch_billno"] for p in wechat_sandbox.redpacks()] == [billno]
    assert _payout(pid).attempts == 2
    assert_books_hold()
    assert_sandbox_matches_ledger(wechat_sandbox)


@pytest.mark.slow
def test_timeout_is_unknown_then_query_then_same_billno(pay_app, wechat_sandbox):
    fund()
    pid = _approved()
    wechat_sandbox.fault("sendminiprogramhb", "timeout")
    with pytest.raises(payouts.PayoutPending, match="TIMEOUT; query NOT_FOUND"):
        payouts.send_payout(pid)
    assert wechat_sandbox.redpacks() == [] and _payout(pid).status == "sending"
    assert payouts.send_payout(pid) == "sent"
    assert len(wechat_sandbox.redpacks()) == 1
    assert_books_hold()
    assert_sandbox_matches_ledger(wechat_sandbox)


@pytest.mark.slow
def test_accepted_then_reply_lost_is_settled_by_query_without_paying_twice(pay_app, wechat_sandbox):
    fund()
    pid = _approved()
    wechat_sandbox.fault("sendminiprogramhb", "accept_then_timeout")
    assert payouts.send_payout(pid) == "sent"     # gethbinfo says SENT
    payout = _payout(pid)
    assert payout.package and payout.attempts == 1  # the package came back from the same billno
    assert len(wechat_sandbox.redpacks()) == 1
    assert payouts.send_payout(pid) == "sent"       # and again: nothing more is called or paid
    assert len(wechat_sandbox.redpacks()) == 1
    assert_books_hold()
    assert_sandbox_matches_ledger(wechat_sandbox)


def test_notenough_pauses_and_pays_once_topped_up(pay_app, wechat_sandbox):
    from rewards import pauses

    fund()
    pid = _approved()
    wechat_sandbox.configure(balance_fen=100)
    assert payouts.send_payout(pid) == "reserved"       # held: the merchant's balance, not the resident's fault
    assert _payout(pid).last_code == "NOTENOUGH" and pauses.open_pause().code == "NOTENOUGH"
    wechat_sandbox.configure(balance_fen=1_000_000)
    assert pauses.end_pause("finance") == 1
    assert payouts.send_payout(pid) == "sent"
    assert_books_hold()
    assert_sandbox_matches_ledger(wechat_sandbox)


def test_wechat_daily_count_defers_and_releases_nothing(pay_app, wechat_sandbox):
    fund(10_000)
    openid = "oFullToday"
    for _ in range(10):  # WeChat's 10 packets a day for this openid are used up elsewhere
        from tests.fixtures.sandbox import new_billno

        assert wechat.send_miniprogram_hb(new_billno(), openid, 100, "a", "r", "w").ok
    pid = _approved(openid=openid)
    assert payouts.send_payout(pid) == "reserved"        # deferred to the next Beijing day, not failed
    payout = _payout(pid)
    assert payout.last_code == "SENDNUM_LIMIT" and payout.sent_at is None and payout.next_check_at > utcnow()
    assert ledger.budget_by_period()[period_of()]["reserved"] == 500
    assert_books_hold()
    wechat_sandbox.advance(24)
    assert _sweep(24).get("sent") == 1
    assert _payout(pid).status == "sent"
    assert_books_hold()


def test_wrong_key_pauses_the_merchant(make_app, sandbox_config, wechat_sandbox, db, reference_data):
    from rewards import pauses

    app = make_app(**{**sandbox_config, "WECHAT_PAY_KEY": "0" * 32})
    with app.app_context():
        fund()
        pid = _approved()
        assert payouts.send_payout(pid) == "reserved"
        assert _payout(pid).last_code == "SIGN_ERROR" and pauses.open_pause().code == "SIGN_ERROR"
        assert_books_hold()
    assert wechat_sandbox.redpacks() == []


def test_duplicate_delivery_after_success_calls_nothing(pay_app, wechat_sandbox):
    fund()
    pid = _approved()
    assert payouts.send_payout(pid) == "sent"
    assert payouts.send_payout(pid) == "sent"
    assert _payout(pid).attempts == 1
    assert len(wechat_sandbox.redpacks()) == 1
    assert_books_hold()


def test_the_same_job_delivered_twice_at_once_pays_once(pay_app, wechat_sandbox):
    fund()
    pids = [_approved() for _ in range(4)]
    results, barrier = [], threading.Barrier(8)

    def deliver(pid):
        with pay_app.app_context():
            barrier.wait(10)
            try:
                results.append(payouts.send_payout(pid))
            except Exception as exc:
                results.append(repr(exc))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=deliver, args=(p,)) for p in pids for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == ["sent"] * 8, results
    assert len(wechat_sandbox.redpacks()) == 4
    assert_books_hold()
    assert_sandbox_matches_ledger(wechat_sandbox)


def test_redis_losing_every_job_loses_no_payout(make_app, sandbox_config, wechat_sandbox, db, reference_data):
    import time

    from app.extensions import redis
    from app.outbox import relay_due

    app = make_app(**sandbox_config, OUTBOX_LEASE_SECONDS=1)
    with app.app_context():
        fund()
        pids = [_approved() for _ in range(3)]
        redis.conn.flushdb()                  # every queued job is gone
        run_burst(app, ("payouts",))
        assert wechat_sandbox.redpacks() == []
        time.sleep(1.1)
        assert relay_due() == 3
        run_burst(app, ("payouts",))
        assert {_payout(p).status for p in pids} == {"sent"}
        redis.conn.flushdb()                  # lost again after the work was done: nothing is redone
        time.sleep(1.1)
        relay_due()
        run_burst(app, ("payouts",))
        assert len(wechat_sandbox.redpacks()) == 3
        assert_books_hold()
        assert_sandbox_matches_ledger(wechat_sandbox)


@pytest.mark.parametrize("failing_commit", [1, 2])  # before the call; after it (the sent commit)
def test_database_unavailable_at_each_step(pay_app, wechat_sandbox, monkeypatch, failing_commit):
    """The k-th commit of a send fails as if the database went away; a redelivery settles it, once."""
    from sqlalchemy.exc import OperationalError

    fund()
    pid = _approved()
    real_commit, calls = db.session.commit, {"n": 0}

    def flaky_commit():
        calls["n"] += 1
        if calls["n"] == failing_commit:
            db.session.rollback()
            raise OperationalError("COMMIT", {}, Exception("server closed the connection"))
        return real_commit()

    monkeypatch.setattr(db.session, "commit", flaky_commit)
    with pytest.raises(OperationalError):
        payouts.send_payout(pid)
    monkeypatch.undo()
    assert payouts.send_payout(pid) == "sent"
    assert len(wechat_sandbox.redpacks()) == 1
    assert_books_hold()
    assert_sandbox_matches_ledger(wechat_sandbox)


def test_job_timeout_during_the_call(pay_app, wechat_sandbox, monkeypatch):
    """RQ's job timeout fires while WeChat is paying: the redelivery finds the packet, pays nothing more."""
    from rq.timeouts import JobTimeoutException

    fund()
    pid = _approved()
    real = wechat.send_miniprogram_hb

    def paid_then_killed(*args, **kwargs):
        real(*args, **kwargs)
        raise JobTimeoutException("Task exceeded maximum timeout value (60 seconds)")

    monkeypatch.setattr(wechat, "send_miniprogram_hb", paid_then_killed)
    with pytest.raises(JobTimeoutException):
        payouts.send_payout(pid)
    monkeypatch.undo()
    assert _payout(pid).status == "sending"
    assert _sweep(0.1) == {"sent": 1}        # the sweeper's gethbinfo settles it as well as a redelivery would
    assert len(wechat_sandbox.redpacks()) == 1
    assert_books_hold()
    assert_sandbox_matches_ledger(wechat_sandbox)


def test_sweeper_sends_what_was_never_called(pay_app, wechat_sandbox):
    fund()
    pid = _approved()
    payouts.transition(pid, ("reserved",), "sending", first_call_at=utcnow(), next_check_at=utcnow())
    db.session.commit()
    assert _sweep(0.1) == {"sent": 1}
    assert len(wechat_sandbox.redpacks()) == 1
    assert_books_hold()


def test_sweeper_gives_up_to_manual_review_after_the_window(pay_app, wechat_sandbox):
    fund()
    pid = _approved()
    payouts.transition(pid, ("reserved",), "sending", first_call_at=utcnow() - timedelta(hours=30),
                       next_check_at=utcnow())
    db.session.commit()
    assert _sweep(0) == {"manual_review": 1}
    assert _payout(pid).reason == "not_found_after_window"
    assert_books_hold()


def test_sent_packet_unanswered_beyond_the_window_goes_to_manual_review(pay_app, wechat_sandbox):
    fund()
    pid = _approved()
    _drain(pay_app)
    wechat_sandbox.fault("gethbinfo", "http_500", count=1)
    assert sweep_payouts(now=utcnow() + timedelta(hours=80)) == {"manual_review": 1}
    assert _payout(pid).reason == "unanswered:HTTP_500"
    assert_books_hold()   # in flight still counts it: the packet may yet be claimed
    wechat_sandbox.claim(_payout(pid).mch_billno)
    info = wechat.get_hb_info(_payout(pid).mch_billno)
    assert payouts.apply_hb_info(pid, info) == "claimed"
    assert_books_hold()
    assert_sandbox_matches_ledger(wechat_sandbox)


def test_claim_racing_the_24_hour_refund(pay_app, wechat_sandbox):
    fund()
    early, late = _approved(), _approved()
    _drain(pay_app)
    wechat_sandbox.advance(23.9)
    assert wechat_sandbox.claim(_payout(early).mch_billno)["status"] == "RECEIVED"
    wechat_sandbox.advance(0.2)              # 24.1 h: the other one is refunded before its claim
    assert wechat_sandbox.claim(_payout(late).mch_billno)["status"] == "REFUND"
    assert sorted(_sweep().items()) == [("claimed", 1), ("refunded", 1)]
    assert (_payout(early).status, _payout(late).status) == ("claimed", "refunded")
    assert_books_hold()
    assert_sandbox_matches_ledger(wechat_sandbox)


def test_rate_refusal_is_retried_within_the_job(pay_app, wechat_sandbox):
    from rewards import jobs

    fund()
    pid = _approved()
    wechat_sandbox.fault("sendminiprogramhb", "FREQ_LIMIT", count=2)
    assert jobs.send_payout(pid) == "sent"
    assert _payout(pid).attempts == 3
    assert len(wechat_sandbox.redpacks()) == 1
    wechat_sandbox.fault("sendminiprogramhb", "SYSTEMERROR")
    other = _approved()
    with pytest.raises(payouts.PayoutPending):   # other pending outcomes wait for the outbox's backoff
        jobs.send_payout(other)
    assert_books_hold()


@pytest.mark.parametrize("schedule, first_check_after", [("wechat", timedelta(minutes=15)),
                                                         ("every_sweep", timedelta(0))])
def test_sent_packets_are_checked_on_the_configured_schedule(make_app, sandbox_config, wechat_sandbox, db,
                                                             reference_data, schedule, first_check_after):
    app = make_app(**sandbox_config, REWARDS_CHECK_SCHEDULE=schedule)
    with app.app_context():
        fund()
        pid = _approved()
        assert payouts.send_payout(pid) == "sent"
        payout = _payout(pid)
        assert abs((payout.next_check_at - payout.sent_at) - first_check_after) < timedelta(seconds=5)
        assert sweep_payouts() == ({} if schedule == "wechat" else {"sent": 1})


def test_sweep_periodic_is_registered_with_an_rq_safe_id(app):
    from rq.job import validate_job_id

    from app.queue import PERIODIC

    periodic = PERIODIC["rewards_sweep"]
    validate_job_id(f"periodic-{periodic.id}")   # the clock enqueues it under this job id
    assert periodic.func == "rewards.sweeper.sweep_payouts" and periodic.every == 60.0
