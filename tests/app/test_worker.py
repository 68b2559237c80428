import signal
import subprocess
import sys
import time

import pytest

from app.queue import PERIODIC, Periodic, register_periodic
from app.worker import run_due_periodics
from tests.conftest import ROOT

register_periodic(Periodic(id="test.periodic", func="tests.app.jobs.periodic_tick", every=60, inline=True))


def test_forking_worker_runs_jobs_in_a_subprocess_with_an_app_context(db, flask_cli, redis_conn):
    from app.models import AuditEntry
    from app.queue import enqueue_after_commit

    enqueue_after_commit("notify", "tests.app.jobs.record", "forked")
    db.session.commit()
    flask_cli("worker", "--role", "rq", "--queues", "notify", "--burst")
    assert redis_conn.lrange("test:records", 0, -1) == [b"forked"]
    db.session.expire_all()
    assert db.session.query(AuditEntry).filter_by(action="job-ran", note="forked").count() == 1


def test_periodic_runs_once_per_interval_across_clocks(app, db, redis_conn):
    first, second = {}, {}
    assert "test.periodic" in run_due_periodics(app, first)
    # a second clock (another machine) in the same interval does not run it again
    assert "test.periodic" not in run_due_periodics(app, second)
    assert redis_conn.get("test:ticks") == b"1"


def test_the_periodic_lock_says_who_holds_it(make_app, db, redis_conn):
    """"host pid time": an operator reading periodic:<id> sees which machine's clock ran it last."""
    import os
    from datetime import datetime, timezone

    redis_conn.delete("periodic:test.periodic")
    assert "test.periodic" in run_due_periodics(make_app(HOST_NAME="worker-b"), {})
    host, pid, moment = redis_conn.get("periodic:test.periodic").decode().split(" ")
    assert (host, pid) == ("worker-b", str(os.getpid()))
    assert abs((datetime.now(timezone.utc) - datetime.fromisoformat(moment)).total_seconds()) < 60


def test_worker_supervisor_starts_children_and_stops_them_all(subprocess_env):
    proc = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--rq-workers", "1",
                             "--payout-workers", "1"],
                            cwd=ROOT, env=subprocess_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        children: list[str] = []
        deadline = time.monotonic() + 60  # a loaded CI machine can take several seconds per child
        while time.monotonic() < deadline and len(children) < 3:
            time.sleep(0.5)
            children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        assert len(children) == 3  # one clock, one forking RQ worker, one in-process payouts worker
        commands = sorted(open(f"/proc/{pid}/cmdline").read().split("\0")[5:-1] for pid in children)
        assert commands == [
            ["worker", "--role", "clock"],
            ["worker", "--role", "rq", "--in-process", "--queues", "payouts"],
            ["worker", "--role", "rq", "--queues", "intake,notify,webhooks,maintenance"],
        ]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=40) == 0
        for pid in children:
            assert subprocess.run(["kill", "-0", pid], capture_output=True).returncode != 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_periodics_are_declared_with_stable_ids():
    assert PERIODIC["outbox.relay"].inline is True


def test_payouts_go_to_the_forking_workers_when_no_payout_worker_is_asked_for():
    from app.worker import plan_children

    assert [cmd[-4:] for _, cmd in plan_children(2, ("intake", "payouts"), 0)[1:]] == [
        ["--role", "rq", "--queues", "intake,payouts"]] * 2
    # a machine that only serves payouts runs only in-process workers (and its clock)
    assert [name for name, _ in plan_children(2, ("payouts",), 2)] == ["clock", "payouts-0", "payouts-1"]


@pytest.mark.parametrize("in_process", [True, False])
def test_in_process_worker_runs_jobs_without_forking(db, flask_cli, redis_conn, in_process):
    import os

    from app.queue import enqueue_after_commit

    enqueue_after_commit("payouts", "tests.app.jobs.record_pid")
    db.session.commit()
    flask_cli("worker", "--role", "rq", "--queues", "payouts", "--burst", *(["--in-process"] if in_process else []))
    [pids] = redis_conn.lrange("test:pids", 0, -1)
    _job_pid, parent = map(int, pids.split())
    # the worker is this test's child: its jobs run in it, or in a horse forked from it
    assert (parent == os.getpid()) is in_process
