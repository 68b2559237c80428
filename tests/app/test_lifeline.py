"""Processes end with their parent (issue 13): after `kill -9` of `flask worker`, its payouts and intake
workers kept running unsupervised. Now every process it started, and every process those forked
(an RQ job horse, RQ's scheduler), ends."""
import os
import signal
import subprocess
import sys
import time

import pytest

from app.lifeline import PARENT_PID_ENV, child_options, parent_gone, started_by
from tests.conftest import ROOT


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        out = subprocess.run(["pgrep", "-P", str(todo.pop())], capture_output=True, text=True).stdout.split()
        found += [int(p) for p in out]
        todo += out
    return found


def running(pid: int) -> bool:
    """Alive and not a zombie (a container's init may never reap what it inherits)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_all_gone(pids, timeout) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(running(p) for p in pids):
        time.sleep(0.5)
    return [p for p in pids if running(p)]


def test_a_child_knows_who_started_it(monkeypatch):
    options = child_options({"A": "1"})
    assert options["env"] == {"A": "1", PARENT_PID_ENV: str(os.getpid())}
    monkeypatch.setenv(PARENT_PID_ENV, str(os.getppid()))
    assert started_by() == os.getppid() and not parent_gone(started_by())
    assert parent_gone(os.getppid() + 1_000_000)
    assert not parent_gone(None)  # started by systemd or a shell: never stops for that reason


def test_a_grandchild_dies_with_its_parent_on_linux(tmp_path):
    """The kernel part alone: a middle process starts a sleeper with child_options() and is SIGKILLed."""
    code = ("import subprocess, sys, time; from app.lifeline import child_options; "
            "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'], **child_options()); "
            "print(p.pid, flush=True); time.sleep(300)")
    middle = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}, start_new_session=True)
    try:
        sleeper = int(middle.stdout.readline())
        assert running(sleeper)
        middle.kill()
        middle.wait()
        assert wait_all_gone([sleeper], 10) == []
    finally:
        os.killpg(middle.pid, signal.SIGKILL)


@pytest.mark.slow
def test_every_process_of_flask_worker_ends_when_it_is_killed(subprocess_env, app, redis_conn):
    from app.queue import enqueue

    enqueue("intake", "tests.app.jobs.nap", 8)  # a forked job process (horse) is running when we kill
    proc = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--rq-workers", "1",
                             "--payout-workers", "1"], cwd=ROOT, env=subprocess_env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    seen: set[int] = set()
    try:
        deadline = time.monotonic() + 120  # a loaded machine takes seconds per child
        while time.monotonic() < deadline and not (len(seen) >= 5 and redis_conn.llen("rq:queue:intake") == 0):
            seen |= set(descendants(proc.pid))  # clock, 2 workers, the horse, rq's scheduler
            time.sleep(0.3)
        tree = {pid: open(f"/proc/{pid}/cmdline").read().replace("\0", " ")[-80:] for pid in seen if running(pid)}
        assert len(tree) >= 5, tree
        proc.kill()  # SIGKILL: the supervisor cannot pass anything on
        proc.wait()
        # the busy worker lets its job finish (8 s) as on any SIGTERM, then everything is gone
        assert wait_all_gone(seen, 90) == [], {p: tree.get(p) for p in seen if running(p)}
        assert b"napped 8" in redis_conn.lrange("test:records", 0, -1)
    finally:
        for pid in seen | set(descendants(proc.pid)):
            if running(pid):
                os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
