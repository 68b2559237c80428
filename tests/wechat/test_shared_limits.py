"""What is shared through Redis between processes: the pay call rate and the access-token refresh.

"Another process" is either another app (its own wechatpy clients, the same Redis) in a thread, or a
real child process started from the command line.
"""
import json
import os
import subprocess
import sys
import threading
import time

import pytest

from app.extensions import redis, wechat
from app.wechat import PayOutcome
from tests.fixtures.sandbox import new_billno

# Timeouts are not what these tests are about: a loaded CI machine must not turn a slow reply into one.
SLOW_OK = {"WECHAT_TIMEOUT": 10.0, "WECHAT_PAY_TIMEOUT": 10.0}
CHILD = """
import json, os, sys, time
from app import create_app
from app.extensions import wechat
app = create_app({"WECHAT_PAY_RATE_WAIT": 60})
with app.app_context():
    start = float(os.environ["START_AT"])
    while time.time() < start:
        time.sleep(0.01)
    if sys.argv[1] == "token":
        print(json.dumps([wechat.access_token() for _ in range(3)]))
    else:
        print(json.dumps([wechat.get_hb_info(b).code for b in sys.argv[2:]]))
"""


def run_in_threads(apps, per_app, threads_per_app, call):
    results, errors = [], []
    barrier = threading.Barrier(len(apps) * threads_per_app)

    def worker(app):
        try:
            with app.app_context():
                barrier.wait()
                for _ in range(per_app):
                    results.append(call())
        except Exception as exc:  # asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(a,)) for a in apps for _ in range(threads_per_app)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return results, time.monotonic() - started


def children(subprocess_env, sandbox_config, args_list, start_in=4.0, **env):
    start_at = time.time() + start_in  # every child has imported the app by then
    child_env = {**subprocess_env, "START_AT": str(start_at), "WECHAT_API_BASE": sandbox_config["WECHAT_API_BASE"],
                 "WECHAT_PAY_API_BASE": sandbox_config["WECHAT_PAY_API_BASE"], "WECHAT_TIMEOUT": "5", **env}
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, *args], env=child_env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for args in args_list]
    return start_at, procs


def collect(procs):
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outputs.append(json.loads(out.strip().splitlines()[-1]))
    return outputs


# --- pay call rate -------------------------------------------------------------------------------
def test_without_our_limiter_the_sandbox_answers_freq_limit(make_app, sandbox_config, wechat_sandbox, db):
    """The control: WeChat (the sandbox, here at 5 calls/s) does refuse a burst."""
    wechat_sandbox.configure(pay_rate_limit=5)
    apps = [make_app(**{**sandbox_config, **SLOW_OK}, WECHAT_PAY_RATE_LIMIT=1000) for _ in range(2)]

    codes, _elapsed = run_in_threads(apps, 4, 4, lambda: wechat.get_hb_info(new_billno()).code)

    assert "FREQ_LIMIT" in codes
    assert set(codes) <= {"FREQ_LIMIT", "NOT_FOUND"}
    assert wechat_sandbox.stats()["pay_freq_limited"] == codes.count("FREQ_LIMIT")  # the counter tests read


def test_limiter_is_shared_by_apps_and_threads(make_app, sandbox_config, wechat_sandbox, db):
    wechat_sandbox.configure(pay_rate_limit=30)  # WeChat's; ours at 10 leaves room for a loaded machine
    apps = [make_app(**{**sandbox_config, **SLOW_OK}, WECHAT_PAY_RATE_LIMIT=10, WECHAT_PAY_RATE_WAIT=60)
            for _ in range(3)]

    codes, elapsed = run_in_threads(apps, 3, 3, lambda: wechat.get_hb_info(new_billno()).code)

    assert codes == ["NOT_FOUND"] * 27  # no call refused by WeChat, none dropped by us
    assert wechat_sandbox.stats()["pay_freq_limited"] == 0
    assert elapsed >= 1.5  # 27 calls at 10/s need at least two full windows


@pytest.mark.slow
def test_limiter_is_shared_across_processes(make_app, sandbox_config, wechat_sandbox, db, subprocess_env):
    wechat_sandbox.configure(pay_rate_limit=30)
    start_at, procs = children(subprocess_env, sandbox_config,
                               [["pay", *[new_billno() for _ in range(10)]] for _ in range(2)],
                               WECHAT_PAY_RATE_LIMIT="10")
    app = make_app(**{**sandbox_config, **SLOW_OK}, WECHAT_PAY_RATE_LIMIT=10, WECHAT_PAY_RATE_WAIT=60)
    with app.app_context():
        while time.time() < start_at:
            time.sleep(0.01)
        ours = [wechat.get_hb_info(new_billno()).code for _ in range(10)]
    theirs = collect(procs)
    elapsed = time.time() - start_at

    assert ours + theirs[0] + theirs[1] == ["NOT_FOUND"] * 30
    assert elapsed >= 1.8  # 30 calls at 10/s, three processes together


def test_calls_that_would_wait_too_long_are_not_sent(make_app, sandbox_config, wechat_sandbox, db):
    app = make_app(**sandbox_config, WECHAT_PAY_RATE_LIMIT=2, WECHAT_PAY_RATE_WAIT=0)
    with app.app_context():
        results = [wechat.send_miniprogram_hb(new_billno(), "oRate", 100, act_name="a", remark="r", wishing="w")
                   for _ in range(3)]

    assert [r.outcome for r in results] == [PayOutcome.SUCCESS, PayOutcome.SUCCESS, PayOutcome.RETRY_SAME]
    assert results[2].code == "LOCAL_RATE_LIMIT"
    assert len(wechat_sandbox.redpacks()) == 2  # the third never left the building


def test_limit_is_per_merchant(make_app, sandbox_config, wechat_sandbox, db):
    ours = make_app(**sandbox_config, WECHAT_PAY_RATE_LIMIT=1, WECHAT_PAY_RATE_WAIT=0)
    other = make_app(**{**sandbox_config, "WECHAT_PAY_RATE_LIMIT": 1, "WECHAT_PAY_RATE_WAIT": 0,
                        "WECHAT_MCH_ID": "1900000110"})
    with ours.app_context():
        assert wechat.get_hb_info(new_billno()).code == "NOT_FOUND"
        assert wechat.get_hb_info(new_billno()).code == "LOCAL_RATE_LIMIT"
    with other.app_context():  # another merchant's budget is untouched (the sandbox refuses its id)
        assert wechat.get_hb_info(new_billno("1900000110")).code != "LOCAL_RATE_LIMIT"


# --- access token refresh -------------------------------------------------------------------------
def test_many_threads_fetch_the_token_once_even_when_wechat_is_slow(make_app, sandbox_config, wechat_sandbox, db):
    wechat_sandbox.configure(token_delay=0.5)
    apps = [make_app(**{**sandbox_config, **SLOW_OK}) for _ in range(4)]

    tokens, _elapsed = run_in_threads(apps, 2, 4, wechat.access_token)

    assert len(tokens) == 32 and len(set(tokens)) == 1
    assert wechat_sandbox.stats()["token_fetches"] == 1


def test_refresh_before_expiry_is_done_once_while_the_old_token_serves(make_app, sandbox_config, sandbox_app,
                                                                         wechat_sandbox):
    old = wechat.access_token()
    key = f"wechat:access_token:{sandbox_app.config['WECHAT_APPID']}"
    entry = json.loads(redis.conn.get(key))
    entry["expires_at"] = time.time() + 120  # inside the refresh margin, still valid
    redis.conn.set(key, json.dumps(entry))
    wechat_sandbox.configure(token_delay=0.5)
    apps = [make_app(**{**sandbox_config, **SLOW_OK}) for _ in range(3)]

    tokens, elapsed = run_in_threads(apps, 1, 4, wechat.access_token)

    new = wechat.access_token()
    assert new != old and set(tokens) <= {old, new}
    assert old in tokens  # callers that found the refresh under way used the still-valid token
    assert wechat_sandbox.stats()["token_fetches"] == 2


def test_token_fetch_failure_releases_the_lock(make_app, sandbox_config, sandbox_app, wechat_sandbox):
    from app.wechat import WeChatUnavailable

    wechat_sandbox.fault("token", "SYSTEMERROR")
    with pytest.raises(WeChatUnavailable):
        wechat.access_token()
    assert not redis.conn.exists(f"wechat:access_token:lock:{sandbox_app.config['WECHAT_APPID']}")
    assert wechat.access_token().startswith("sbxtoken_")


@pytest.mark.slow
def test_token_fetched_once_across_processes(make_app, sandbox_config, wechat_sandbox, db, subprocess_env):
    wechat_sandbox.configure(token_delay=0.3)
    start_at, procs = children(subprocess_env, sandbox_config, [["token"], ["token"], ["token"]])
    app = make_app(**{**sandbox_config, **SLOW_OK})
    with app.app_context():
        while time.time() < start_at:
            time.sleep(0.01)
        ours = wechat.access_token()
    tokens = {ours, *[t for out in collect(procs) for t in out]}

    assert len(tokens) == 1
    assert wechat_sandbox.stats()["token_fetches"] == 1


def test_a_call_in_flight_holds_its_slot_until_its_reply_and_a_second_after(make_app, sandbox_config, db):
    """WeChat counts a call when it arrives: a call that leaves late (a stalled worker, a slow
    network) must still count in the second it may arrive in, so it holds its slot until it ends."""
    app = make_app(**{**sandbox_config, "WECHAT_PAY_TIMEOUT": 5}, WECHAT_PAY_RATE_LIMIT=2, WECHAT_PAY_RATE_WAIT=0)
    with app.app_context():
        gateway = wechat  # the app's gateway: the slots are its own (private) business
        slow = gateway._acquire_pay_slot()
        time.sleep(1.1)  # longer than the window: a limiter stamping only the start would forget it
        quick = gateway._acquire_pay_slot()
        assert slow and quick
        gateway._release_pay_slot(quick)
        assert gateway._acquire_pay_slot() is None  # slow is still in flight, quick ended just now
        gateway._release_pay_slot(slow)
        assert gateway._acquire_pay_slot() is None  # both ended within the last second
        time.sleep(1.05)
        assert gateway._acquire_pay_slot() is not None
