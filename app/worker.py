"""`flask worker`: every background process in one command.

The supervisor starts N RQ workers (forking: a killed job takes only its horse), M in-process
workers for the payouts queue and one clock, restarts any that die, and stops them all on
SIGINT/SIGTERM.

Payouts run in-process because a fork per job (fresh database connections, a fresh WeChat client
and TLS connection) costs ~70 ms of CPU, which caps two forking workers at ~12 payouts/s against
WeChat's 30/s (docs/PERFORMANCE.md). Nothing needs the fork's isolation there: a payout worker
killed mid-job loses nothing (the outbox redelivers; the status compare-and-set and the committed
billno make the redelivery pay at most once — tests/rewards/test_worker_faults.py kills both kinds).

The clock runs the periodic jobs declared in app.queue.PERIODIC; a Redis lock per job id means
that several clocks (several machines) still run each job once per interval.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone

from app import lifeline
from app.extensions import redis
from app.queue import PERIODIC, QUEUES, Periodic, enqueue, make_worker, register_periodic

log = logging.getLogger(__name__)

register_periodic(Periodic(id="outbox.relay", func="app.outbox.relay_due", every=1.0, inline=True))


def run_due_periodics(app, last_run: dict[str, float]) -> list[str]:
    """Run (or enqueue) every periodic job whose interval has passed; returns the ids started."""
    started = []
    now = time.monotonic()
    for periodic in list(PERIODIC.values()):
        if now - last_run.get(periodic.id, 0.0) < periodic.every:
            continue
        last_run[periodic.id] = now
        lock_ms = max(int(periodic.every * 1000) - 50, 100)
        if not redis.conn.set(f"periodic:{periodic.id}", lock_holder(app), nx=True, px=lock_ms):
            continue  # another clock ran it this interval
        try:
            if periodic.inline:
                with app.app_context():
                    _call(periodic.func)
            else:
                # RQ refuses dots in job ids; periodic ids read like "hazards.sla_sweep"
                enqueue("maintenance", periodic.func, job_id="periodic-" + periodic.id.replace(".", "-"))
            started.append(periodic.id)
        except Exception:
            log.exception("periodic job failed", extra={"periodic": periodic.id})
    return started


def lock_holder(app) -> str:
    """The periodic lock's value: "host pid time" (UTC ISO), so an operator reading the key sees who
    ran the job last (`redis-cli get periodic:outbox.relay`)."""
    moment = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    return f"{app.config.get('HOST_NAME') or socket.gethostname()} {os.getpid()} {moment}"


def _call(path):
    import importlib

    from app.extensions import db

    module_name, _, attr = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attr)()
    finally:
        db.session.remove()


def run_clock(app, stop: threading.Event, tick: float = 0.2) -> None:
    last_run: dict[str, float] = {}
    parent = lifeline.started_by()
    log.info("clock started", extra={"periodics": sorted(PERIODIC)})
    while not stop.is_set():
        if lifeline.parent_gone(parent):
            log.warning("the process that started the clock is gone; stopping")
            break
        with app.app_context():
            run_due_periodics(app, last_run)
        stop.wait(tick)


IN_PROCESS_QUEUES = ("payouts",)


def run_rq_worker(app, queues=QUEUES, burst=False, in_process=False) -> None:
    worker = make_worker(app, queues, simple=in_process)
    worker.work(burst=burst, with_scheduler=True, logging_level=app.config.get("LOG_LEVEL", "INFO"))


def plan_children(rq_workers: int, queues: tuple[str, ...], payout_workers: int) -> list[tuple[str, list[str]]]:
    """(name, command) of every child: the clock, forking workers, in-process payout workers."""
    base = [sys.executable, "-m", "flask", "--app", "wsgi", "worker"]
    in_process = tuple(q for q in IN_PROCESS_QUEUES if q in queues) if payout_workers > 0 else ()
    forked = tuple(q for q in queues if q not in in_process)
    specs = [("clock", base + ["--role", "clock"])]
    if forked:
        specs += [(f"rq-{i}", base + ["--role", "rq", "--queues", ",".join(forked)]) for i in range(rq_workers)]
    if in_process:
        specs += [(f"payouts-{i}", base + ["--role", "rq", "--in-process", "--queues", ",".join(in_process)])
                  for i in range(payout_workers)]
    return specs


def supervise(rq_workers: int, queues: tuple[str, ...], payout_workers: int = 0) -> int:
    """Start the child processes and keep them running until told to stop."""
    specs = plan_children(rq_workers, queues, payout_workers)
    children: dict[str, subprocess.Popen] = {}
    stopping = threading.Event()
    parent = lifeline.started_by()  # None when systemd or a shell started us: then never a reason to stop

    def _stop(_sig, _frame):
        stopping.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    while not stopping.is_set():
        if lifeline.parent_gone(parent):
            log.warning("the process that started the worker supervisor is gone; stopping")
            break
        for name, cmd in specs:
            proc = children.get(name)
            if proc is None or proc.poll() is not None:
                if proc is not None:
                    log.warning("worker process exited; restarting", extra={"proc": name, "code": proc.returncode})
                # each child ends with this process, even a SIGKILLed one (app/lifeline.py)
                children[name] = subprocess.Popen(cmd, **lifeline.child_options())
        stopping.wait(1.0)
    for proc in children.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 30
    for proc in children.values():
        try:
            proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            proc.kill()
    return 0
