"""Real RQ workers (`flask worker --role rq`, forking and in-process, as production runs the payouts
queue) killed with SIGKILL at each step of a payout, then the outbox relay redelivering: zero packets
paid twice, zero fen unaccounted. Every test runs on both payout channels: red packets and 商家转账
(a transfer's bill then waits for the resident, who confirms it; `rewards check` holds throughout)."""
import subprocess
import sys
import time

from datetime import timedelta

import pytest

from app.models.base import utcnow
from app.outbox import relay_due
from rewards.sweeper import sweep_payouts
from rewards.models import Payout
from tests.conftest import ROOT
from tests.rewards.helpers import (approve, assert_books_hold, assert_sandbox_matches_ledger, fund, make_resident,
                                   make_tip)


def _worker_command(kind):
    """`fork`: the job runs in a forked horse (SIGKILL takes only it); `in_process`: the worker dies too."""
    return [sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--role", "rq", "--queues", "payouts",
            "--burst", *(["--in-process"] if kind == "in_process" else [])]


def _worker(kind, env, extra=None):
    return subprocess.run(_worker_command(kind), cwd=ROOT, env={**env, **(extra or {})}, capture_output=True,
                          text=True, timeout=120)


WORKER_KINDS = pytest.mark.parametrize("kind", ["fork", "in_process"])
CHANNELS = pytest.mark.parametrize("channel", ["redpack", "transfer"])
# the reward status once WeChat has the payout: a packet is sent, a transfer waits for the resident
DELIVERED = {"redpack": "sent", "transfer": "waiting_confirm"}


def _wechat_holds(sandbox, channel) -> list[str]:
    """The bill numbers WeChat holds for the channel: packets or transfer bills."""
    if channel == "redpack":
        return [p["mch_billno"] for p in sandbox.redpacks()]
    return [b["out_bill_no"] for b in sandbox.transfers()]


def _assert_wechat_matches(sandbox, channel):
    if channel == "redpack":
        assert_sandbox_matches_ledger(sandbox)
    else:
        from tests.rewards.test_transfer_payouts import assert_sandbox_matches_transfers

        assert_sandbox_matches_transfers(sandbox)


@pytest.fixture
def worker_env(subprocess_env, wechat_sandbox):
    return {**subprocess_env, "WECHAT_API_BASE": wechat_sandbox.url + "/",
            "WECHAT_PAY_API_BASE": wechat_sandbox.url + "/", "WECHAT_TIMEOUT": "1", "WECHAT_PAY_TIMEOUT": "1",
            "OUTBOX_LEASE_SECONDS": "1",
            # transfer results are found by the sweeper here (nothing listens on the discard port)
            "WECHAT_TRANSFER_NOTIFY_URL": "http://127.0.0.1:9/wechat/pay/transfer-notify"}


@pytest.mark.slow
@CHANNELS
@WORKER_KINDS
@pytest.mark.parametrize("crash_at, paid_at_crash, status_at_crash", [
    ("before_call", 0, "sending"),
    ("after_call", 1, "sending"),       # WeChat accepted, our commit never happened
    ("after_commit", 1, "delivered"),   # committed, but the outbox row was never marked done
])
def test_worker_killed_mid_payout(make_app, sandbox_config, wechat_sandbox, db, reference_data, worker_env,
                                  tmp_path, kind, crash_at, paid_at_crash, status_at_crash, channel):
    app = make_app(**sandbox_config, OUTBOX_LEASE_SECONDS=1, PAYOUT_CHANNEL=channel)
    if status_at_crash == "delivered":
        status_at_crash = DELIVERED[channel]
    flag = tmp_path / "crashed"
    with app.app_context():
        fund()
        pid = approve(make_tip(make_resident()))["id"]

        _worker(kind, worker_env, {"RENRENPAI_CRASH_AT": crash_at, "RENRENPAI_CRASH_FLAG": str(flag)})
        assert flag.exists(), "the worker's job process should have been killed"
        db.session.rollback()
        assert db.session.get(Payout, pid).status == status_at_crash
        assert len(_wechat_holds(wechat_sandbox, channel)) == paid_at_crash
        assert_books_hold()

        time.sleep(1.2)
        assert relay_due() == 1           # the outbox row is due again: redispatched
        _worker(kind, worker_env, {"RENRENPAI_CRASH_AT": crash_at, "RENRENPAI_CRASH_FLAG": str(flag)})
        db.session.rollback()
        payout = db.session.get(Payout, pid)
        assert payout.channel == channel and payout.status == DELIVERED[channel] and payout.package
        assert _wechat_holds(wechat_sandbox, channel) == [payout.mch_billno]
        assert_books_hold()
        _assert_wechat_matches(wechat_sandbox, channel)

        time.sleep(1.2)
        assert relay_due() == 0           # done: nothing left to redeliver
        if channel == "transfer":         # the resident confirms; the sweeper books it once
            wechat_sandbox.confirm_transfer(payout.mch_billno)
            db.session.rollback()
            for minutes in range(20, 120, 20):  # a query that times out on a busy machine is asked again
                if sweep_payouts(now=utcnow() + timedelta(minutes=minutes)) == {"claimed": 1}:
                    break
            db.session.rollback()
            assert db.session.get(Payout, pid).status == "claimed"
            assert sweep_payouts(now=utcnow() + timedelta(minutes=200)) == {}
            assert_books_hold()
            _assert_wechat_matches(wechat_sandbox, channel)


@pytest.mark.slow
@CHANNELS
@WORKER_KINDS
def test_two_workers_drain_duplicates_without_paying_twice(make_app, sandbox_config, wechat_sandbox, db,
                                                           reference_data, worker_env, kind, channel):
    """Every job enqueued twice (fast path + a forced relay), two workers at once: one packet each."""
    from app.extensions import redis
    from app.queue import enqueue

    app = make_app(**sandbox_config, OUTBOX_LEASE_SECONDS=1, PAYOUT_CHANNEL=channel)
    with app.app_context():
        fund()
        pids = [approve(make_tip(make_resident()))["id"] for _ in range(6)]
        for pid in pids:  # the same payout job delivered again under another job id
            enqueue("payouts", "rewards.jobs.send_payout", pid, job_id=f"dup-{pid}")
        procs = [subprocess.Popen(_worker_command(kind), cwd=ROOT, env=worker_env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(2)]
        for proc in procs:
            proc.wait(120)
        db.session.rollback()
        assert {db.session.get(Payout, p).status for p in pids} == {DELIVERED[channel]}
        assert sorted(_wechat_holds(wechat_sandbox, channel)) == sorted(db.session.get(Payout, p).mch_billno
                                                                        for p in pids)
        assert_books_hold()
        _assert_wechat_matches(wechat_sandbox, channel)
        assert redis.conn.llen("rq:queue:payouts") == 0


@pytest.mark.slow
@pytest.mark.parametrize("code, crash_at", [
    ("NOTENOUGH", "after_call"),            # the merchant's balance: WeChat answered, our hold never committed
    ("SENDAMOUNT_LIMIT", "after_call"),     # the merchant's daily total
    ("SIGN_ERROR", "after_call"),           # the merchant's key
    ("NO_AUTH", "after_call"),              # the merchant's permission for the API
    ("CA_ERROR", "after_call"),             # the merchant's client certificate
    ("API_METHOD_CLOSED", "after_call"),    # the merchant's API closed
    ("MSGAPPID_ERROR", "after_call"),       # the merchant's appid binding
    ("RCVDAMOUNT_LIMIT", "after_call"),     # the resident's daily amount: the deferral never committed
    ("SENDNUM_LIMIT", "after_call"),
    ("OPENID_ERROR", "after_call"),         # final for the resident: the failure never committed
    ("PROCESSING", "after_call"),           # in flight
    ("SEND_FAILED", "after_reissue"),       # the new billno committed, never sent
])
def test_worker_killed_on_each_decision_code(make_app, sandbox_config, wechat_sandbox, db, reference_data,
                                             worker_env, tmp_path, code, crash_at):
    """Issue #15: each new code once with the worker killed at its worst moment; then the outbox
    redelivers (the fault is used up, or the pause ended) and the books stay right: one packet at most."""
    from rewards import pauses
    from rewards.sweeper import sweep_payouts

    app = make_app(**sandbox_config, OUTBOX_LEASE_SECONDS=1)
    flag = tmp_path / "crashed"
    with app.app_context():
        fund()
        pid = approve(make_tip(make_resident()))["id"]
        wechat_sandbox.fault("sendminiprogramhb", code)
        _worker("fork", worker_env, {"RENRENPAI_CRASH_AT": crash_at, "RENRENPAI_CRASH_FLAG": str(flag)})
        assert flag.exists(), "the worker's job process should have been killed"
        db.session.rollback()
        assert len(wechat_sandbox.redpacks()) == 0
        assert_books_hold()

        time.sleep(1.2)
        assert relay_due() == 1
        _worker("fork", worker_env)
        db.session.rollback()
        pauses.end_pause("finance")                      # a pause opened by the redelivery, if any
        if code in ("RCVDAMOUNT_LIMIT", "SENDNUM_LIMIT"):
            sweep_payouts()                              # what the redelivery did not settle, the sweeper does
            wechat_sandbox.advance(24)
            sweep_payouts(now=__import__("app.models.base", fromlist=["utcnow"]).utcnow() + __import__(
                "datetime").timedelta(hours=24))
        else:
            sweep_payouts()
        db.session.rollback()
        payout = db.session.get(Payout, pid)
        packets = wechat_sandbox.redpacks()
        if code == "OPENID_ERROR":
            assert payout.status in ("sent", "failed")   # the redelivery may pay: the fault was used up
        elif code in ("RCVDAMOUNT_LIMIT", "SENDNUM_LIMIT"):
            assert payout.status in ("sent", "refunded"), (payout.status, payout.reason, payout.last_code)  # paid on redelivery, unclaimed 24 h later
        else:
            assert payout.status == "sent", (payout.status, payout.last_code)
        assert len(packets) <= 1 and all(p["mch_billno"] == payout.mch_billno for p in packets)
        assert_books_hold()
        assert_sandbox_matches_ledger(wechat_sandbox)


def _sweep_in_a_process(env, hours: float, extra=None):
    """`sweep_payouts` as the clock runs it, `hours` ahead, in a process of its own that can be killed."""
    code = ("import datetime\nfrom wsgi import app\nfrom app.models.base import utcnow\n"
            "from rewards.sweeper import sweep_payouts\nwith app.app_context():\n"
            f"    print(sweep_payouts(now=utcnow() + datetime.timedelta(hours={hours})))\n")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**env, **(extra or {})},
                          capture_output=True, text=True, timeout=120)


@pytest.mark.slow
@pytest.mark.parametrize("state", ["SENDING", "FAILED", "RFUND_ING"])
def test_sweeper_killed_after_each_state_query(make_app, sandbox_config, wechat_sandbox, db, reference_data,
                                               worker_env, tmp_path, state):
    """Issue #15: gethbinfo's states, each once with the sweeping process killed right after WeChat
    answered (nothing of it committed); the next sweep settles it: one packet, books right."""
    from rewards import ledger, payouts

    app = make_app(**sandbox_config)
    flag = tmp_path / "crashed"
    crash = {"RENRENPAI_CRASH_AT": "after_query", "RENRENPAI_CRASH_FLAG": str(flag)}
    with app.app_context():
        fund(10_000)
        pid = approve(make_tip(make_resident()))["id"]
        hours = 1
        if state == "RFUND_ING":   # paid, unclaimed; WeChat is refunding it when the sweeper asks
            assert payouts.send_payout(pid) == "sent"
            wechat_sandbox.fault("gethbinfo", "refund_slow", count=1)
            wechat_sandbox.advance(25)
            hours = 25
        else:                      # the send's reply lost; gethbinfo says SENDING, then SENT or FAILED
            mode = "sending_then_sent" if state == "SENDING" else "sending_then_failed"
            wechat_sandbox.fault("sendminiprogramhb", mode, count=2)
            assert payouts.send_payout(pid) == "sending"   # one SENDING used by the send's own query
        db.session.rollback()  # hold no SQLite lock while the other process sweeps

        died = _sweep_in_a_process(worker_env, hours, crash)
        assert flag.exists() and died.returncode != 0, died.stderr[-2000:]
        db.session.rollback()
        assert_books_hold()

        later = _sweep_in_a_process(worker_env, hours + 1)
        assert later.returncode == 0, later.stderr[-2000:]
        if state == "RFUND_ING":   # RFUND_ING seen by the killed sweep, so REFUND now
            assert _sweep_in_a_process(worker_env, hours + 2).returncode == 0
        db.session.rollback()
        payout = db.session.get(Payout, pid)
        packets = wechat_sandbox.redpacks()
        if state == "RFUND_ING":
            assert payout.status == "refunded"
            assert ledger.balances().get(ledger.IN_FLIGHT, 0) == 0
        else:
            assert payout.status == "sent", (payout.status, payout.last_code)
            paid = [p for p in packets if p["status"] != "FAILED"]
            assert len(paid) == 1 and paid[0]["mch_billno"] == payout.mch_billno
        assert_books_hold()
        if state == "FAILED":  # reissued once, under a new billno; the old one recorded, never paid
            old = payout.previous_billnos
            assert len(old) == 1 and {p["mch_billno"]: p["status"] for p in packets} == {
                old[0]: "FAILED", payout.mch_billno: "SENT"}
        else:
            assert_sandbox_matches_ledger(wechat_sandbox)


@pytest.mark.slow
@CHANNELS
@pytest.mark.parametrize("api_of", [{"redpack": "sendminiprogramhb", "transfer": "transfer_bills"}])
def test_a_lost_reply_is_resolved_by_a_query_never_a_second_payment(make_app, sandbox_config, wechat_sandbox, db,
                                                                    reference_data, worker_env, channel, api_of):
    """WeChat does it, then its reply is lost (the worker times out): the next delivery asks
    WeChat about the same number and settles; one packet or bill, books balanced."""
    app = make_app(**sandbox_config, OUTBOX_LEASE_SECONDS=1, PAYOUT_CHANNEL=channel)
    with app.app_context():
        fund()
        pid = approve(make_tip(make_resident()))["id"]
        wechat_sandbox.fault(api_of[channel], "accept_then_timeout", count=1)
        _worker("in_process", worker_env)
        time.sleep(1.2)
        relay_due()
        _worker("in_process", worker_env)
        db.session.rollback()
        payout = db.session.get(Payout, pid)
        assert payout.status == DELIVERED[channel]
        assert _wechat_holds(wechat_sandbox, channel) == [payout.mch_billno]
        assert_books_hold()
        _assert_wechat_matches(wechat_sandbox, channel)
