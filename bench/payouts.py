"""Payout throughput: approved rewards drained through outbox → RQ → WeChat sandbox → ledger.

    .venv/bin/python bench/payouts.py [--limited 900] [--noop 300] [--workers 2] [--mode fork|in-process|both]

Scratch database (DATABASE_URL when set, else a temp SQLite file), Redis from REDIS_URL or the
embedded one, and the WeChat sandbox on a free port. Each phase approves a backlog of rewards
through the real reservation step (its outbox rows enqueue the jobs after commit), then starts
`--workers` worker processes on the payouts queue and times until every payout is `sent`:

1. no-op: no-op RQ jobs (`os.getpid`) — the queue's own wall time and worker CPU per job;
2. limited: payouts at WeChat's 30 calls/s merchant limit (the shared Redis limiter at the config's
   WECHAT_PAY_RATE_LIMIT, 30 by default; BENCH_PAY_RATE overrides it) — the achieved rate against the limit (goal ≥ 95 %), and FREQ_LIMIT / local
   rate-limit codes seen (goal 0); the busiest second seen by the sandbox must hold ≤ 30 packets;
   and the pipeline's worker CPU per payout (workers + their job processes, from /proc) against the
   no-op job's. The bench relays outbox rows as the worker's clock would (FREQ_LIMIT → redelivery).

Worker kinds: `fork` is `flask worker --role rq` (RQ forks a job process per job); `in-process` is
`flask worker --role rq --in-process`, what `flask worker` runs for the payouts queue (RQ's
SimpleWorker: no fork per job). The invariants are checked at the end.
"""
from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _env(base, sandbox_url):
    """The workers' settings: the config's own pay rate limit unless BENCH_PAY_RATE overrides it."""
    env = {**base, "WECHAT_API_BASE": sandbox_url + "/", "WECHAT_PAY_API_BASE": sandbox_url + "/",
           "WECHAT_PAY_RATE_WAIT": "30", "LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)}
    if os.environ.get("BENCH_PAY_RATE"):
        env["WECHAT_PAY_RATE_LIMIT"] = os.environ["BENCH_PAY_RATE"]
    return env


def _start_workers(mode, n, env):
    cmd = [sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--role", "rq", "--queues", "payouts"]
    if mode == "in-process":
        cmd.append("--in-process")
    return [subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(n)]


def _stop(procs):
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()


def _approve_backlog(n):
    """n residents, n tips, each approved through the reward step (outbox row + enqueue after commit)."""
    from app.extensions import db
    from app.models import Resident, Tip
    from rewards.grants import reserve_reward

    ids = []
    for start in range(0, n, 100):
        for i in range(start, min(start + 100, n)):
            resident = Resident(openid=f"oBench{time.time_ns()}{i}")
            db.session.add(resident)
            db.session.flush()
            tip = Tip(resident_id=resident.id, idempotency_key=f"b{i}", request_hash="0" * 64,
                      category="road_damage", description="", lat=23.0, lng=113.7, status="accepted")
            db.session.add(tip)
            db.session.flush()
            payout = reserve_reward(tip, {"severity": 1})
            assert payout.status == "reserved", payout.reason
            ids.append(payout.id)
        db.session.commit()
    return ids


def _wait_sent(ids, timeout, relay=False):
    from sqlalchemy import func, select

    from app.db import deferred_sqlite_transactions
    from app.extensions import db
    from rewards.models import Payout

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with deferred_sqlite_transactions():  # a read must not take SQLite's write lock from the workers
            done = db.session.execute(select(func.count()).where(Payout.id.in_(ids),
                                                                 Payout.status == "sent")).scalar()
            db.session.rollback()
        if done == len(ids):
            return True
        if relay:  # the worker command's clock would do this: redeliver what was refused for now
            from app.outbox import relay_due

            relay_due()
        time.sleep(0.2)
    return False


def _wait_queue_empty(redis_conn, timeout):
    from rq import Queue

    q = Queue("payouts", connection=redis_conn)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if q.count == 0 and q.started_job_registry.count == 0:
            return True
        time.sleep(0.05)
    return False


def _cpu_seconds(procs):
    """utime + stime of the worker processes and their reaped job processes (forked horses)."""
    total = 0
    for p in procs:
        with open(f"/proc/{p.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += sum(int(v) for v in fields[11:15])
    return total / os.sysconf("SC_CLK_TCK")


def run_mode(mode, args, app, sandbox, base_env):
    from sqlalchemy import select

    from app.extensions import db, redis
    from app.queue import enqueue
    from rewards.models import Payout

    out = {}
    # 1. no-op jobs: what the queue itself costs per job
    procs = _start_workers(mode, args.workers, _env(base_env, sandbox.url))
    time.sleep(5)  # workers up and idle before the clock starts
    cpu0, started = _cpu_seconds(procs), time.perf_counter()
    for _ in range(args.noop):
        enqueue("payouts", "os.getpid")
    _wait_queue_empty(redis.conn, 300)
    time.sleep(0.5)
    out["noop_ms"] = (time.perf_counter() - started) * 1000 / args.noop
    out["noop_cpu_ms"] = (_cpu_seconds(procs) - cpu0) * 1000 / args.noop
    _stop(procs)

    # 2. payouts at WeChat's 30 calls/s limit
    sandbox.reset()
    with app.app_context():
        ids = _approve_backlog(args.limited)   # the backlog: approved, outbox rows written, jobs queued
    procs = _start_workers(mode, args.workers, _env(base_env, sandbox.url))
    cpu0 = 0.0  # the workers' whole life: start-up is part of draining a backlog
    with app.app_context():
        ok = _wait_sent(ids, 600, relay=True)
        first = db.session.execute(select(Payout.sent_at).where(Payout.id.in_(ids)).order_by(Payout.sent_at)
                                   .limit(1)).scalar()
        last = db.session.execute(select(Payout.sent_at).where(Payout.id.in_(ids))
                                  .order_by(Payout.sent_at.desc()).limit(1)).scalar()
        codes = collections.Counter(c for (c,) in db.session.execute(select(Payout.last_code)
                                                                     .where(Payout.id.in_(ids))))
        attempts = sum(a for (a,) in db.session.execute(select(Payout.attempts).where(Payout.id.in_(ids))))
        db.session.rollback()
    time.sleep(0.5)
    cpu = _cpu_seconds(procs) - cpu0
    _stop(procs)
    elapsed = (last - first).total_seconds()
    per_second = collections.Counter(p["send_time"] for p in sandbox.redpacks())
    out["limited"] = {"ok": ok, "count": args.limited, "seconds": elapsed, "rate": (args.limited - 1) / elapsed,
                      "codes": dict(codes), "attempts": attempts, "cpu_ms": cpu * 1000 / args.limited,
                      "busiest_second": max(per_second.values())}
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--limited", type=int, default=900)
    parser.add_argument("--noop", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--mode", choices=("fork", "in-process", "both"), default="both")
    args = parser.parse_args()

    from tests.fixtures.sandbox import SandboxServer

    tmp = Path(tempfile.mkdtemp(prefix="bench-payouts-"))
    db_url = os.environ.get("DATABASE_URL") or f"sqlite:///{tmp / 'bench.db'}"
    base_env = {**os.environ, "APP_ENV": "development", "DATABASE_URL": db_url, "INSTANCE_PATH": str(tmp / "inst")}
    os.environ.update({k: v for k, v in base_env.items() if k in ("APP_ENV", "DATABASE_URL", "INSTANCE_PATH")})
    sandbox = SandboxServer(tmp / "sandbox.db").start()
    try:
        from app import create_app
        from bench.common import reset_database

        reset_database(db_url)
        app = create_app({"WECHAT_API_BASE": sandbox.url + "/", "WECHAT_PAY_API_BASE": sandbox.url + "/",
                          "LOG_LEVEL": "WARNING", "LOG_JSON": False})
        base_env["REDIS_URL"] = app.config["REDIS_URL"]
        with app.app_context():
            from app.commands import run_init
            from rewards.budget import fund_period
            from app.display import period_of
            from rewards.policy import save_policy
            from app.extensions import db

            run_init(echo=lambda *_: None)
            save_policy({"resident_day_count": 10, "program_day_fen": 10 ** 10}, created_by=None, approved_by=None)
            fund_period(period_of(), 10 ** 10)
            db.session.commit()
        modes = ("fork", "in-process") if args.mode == "both" else (args.mode,)
        for mode in modes:
            sandbox.reset()
            r = run_mode(mode, args, app, sandbox, base_env)
            lim = r["limited"]
            print(f"[{mode}] {args.workers} workers, {db_url.split(':')[0]}")
            print(f"  no-op RQ job: {r['noop_ms']:.1f} ms wall/job, {r['noop_cpu_ms']:.1f} ms worker CPU/job")
            print(f"  payout pipeline: {lim['cpu_ms']:.1f} ms worker CPU per payout "
                  f"({lim['cpu_ms'] - r['noop_cpu_ms']:.1f} ms above a no-op job)")
            print(f"  at the 30 calls/s limit: {lim['count']} payouts in {lim['seconds']:.1f} s = "
                  f"{lim['rate']:.2f}/s = {lim['rate'] / 30 * 100:.1f} % of the limit; last codes {lim['codes']}; "
                  f"{lim['attempts']} send calls; busiest second at the sandbox {lim['busiest_second']} packets "
                  f"(all sent: {lim['ok']})")
        with app.app_context():
            from rewards.invariants import check_all

            print("invariants:", check_all() or "all hold")
    finally:
        sandbox.stop()
        from bench.common import stop_scratch_redis

        stop_scratch_redis(tmp / "inst")


if __name__ == "__main__":
    main()
