"""商家转账 throughput: a backlog of approved rewards on the transfer channel drained through outbox →
RQ → WeChat sandbox (APIv3, signed requests and replies) → ledger, against WECHAT_TRANSFER_RATE_LIMIT.

    .venv/bin/python bench/transfers.py [--count 2000] [--workers 6]

Scratch database (DATABASE_URL when set, else a temp SQLite file), Redis from REDIS_URL or the
embedded one, and the WeChat sandbox on a free port sharing the development APIv3 key pairs. The
backlog is approved through the real reservation step with PAYOUT_CHANNEL=transfer (its outbox rows
enqueue the jobs after commit); `--workers` in-process payout workers (`flask worker --role rq
--queues payouts --in-process`, what `flask worker` runs for payouts) drain it until every payout is
`waiting_confirm` (the bill made, waiting for its resident). Reported: bills per second from the
first to the last bill against the limit (WeChat documents 100 creations/s per merchant; goal ≥ 95 %),
the codes seen (FREQUENCY_LIMIT_EXCEED from the sandbox: goal 0), the busiest second at the sandbox
(≤ the limit), the workers' CPU per payout, and the invariants at the end.
"""
from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.payouts import _approve_backlog, _cpu_seconds, _start_workers, _stop  # noqa: E402


def _wait_waiting(ids, timeout):
    from sqlalchemy import func, select

    from app.db import deferred_sqlite_transactions
    from app.extensions import db
    from app.outbox import relay_due
    from rewards.models import Payout

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with deferred_sqlite_transactions():  # a read must not take SQLite's write lock from the workers
            done = db.session.execute(select(func.count()).where(Payout.id.in_(ids),
                                                                 Payout.status == "waiting_confirm")).scalar()
            db.session.rollback()
        if done == len(ids):
            return True
        relay_due()  # the worker command's clock would do this: redeliver what was refused for now
        time.sleep(0.2)
    return False


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=6)
    args = parser.parse_args()

    from tests.fixtures.sandbox import SandboxServer

    tmp = Path(tempfile.mkdtemp(prefix="bench-transfers-"))
    inst = tmp / "inst"
    db_url = os.environ.get("DATABASE_URL") or f"sqlite:///{tmp / 'bench.db'}"
    base_env = {**os.environ, "APP_ENV": "development", "DATABASE_URL": db_url, "INSTANCE_PATH": str(inst),
                "PAYOUT_CHANNEL": "transfer", "WECHAT_TRANSFER_NOTIFY_URL": "http://127.0.0.1:9/none"}
    os.environ.update({k: v for k, v in base_env.items()
                       if k in ("APP_ENV", "DATABASE_URL", "INSTANCE_PATH", "PAYOUT_CHANNEL")})
    sandbox = SandboxServer(tmp / "sandbox.db", env={"SANDBOX_V3_KEYS_DIR": str(inst)}).start()
    try:
        from app import create_app
        from bench.common import reset_database

        reset_database(db_url)
        app = create_app({"WECHAT_API_BASE": sandbox.url + "/", "WECHAT_PAY_API_BASE": sandbox.url + "/",
                          "LOG_LEVEL": "WARNING", "LOG_JSON": False, "PAYOUT_CHANNEL": "transfer"})
        limit = int(app.config["WECHAT_TRANSFER_RATE_LIMIT"])
        base_env["REDIS_URL"] = app.config["REDIS_URL"]
        env = {**base_env, "WECHAT_API_BASE": sandbox.url + "/", "WECHAT_PAY_API_BASE": sandbox.url + "/",
               "WECHAT_PAY_RATE_WAIT": "30", "LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)}
        with app.app_context():
            from app.commands import run_init
            from app.display import period_of
            from app.extensions import db
            from rewards.budget import fund_period
            from rewards.policy import save_policy

            run_init(echo=lambda *_: None)
            save_policy({"resident_day_count": 10, "program_day_fen": 10 ** 10}, created_by=None, approved_by=None)
            fund_period(period_of(), 10 ** 10)
            db.session.commit()
            sandbox.configure(balance_fen=10 ** 12)
            ids = _approve_backlog(args.count)
        procs = _start_workers("in-process", args.workers, env)
        with app.app_context():
            from sqlalchemy import select

            from rewards.models import Payout

            ok = _wait_waiting(ids, 1200)
            codes = collections.Counter(c for (c,) in db.session.execute(select(Payout.last_code)
                                                                         .where(Payout.id.in_(ids))))
            attempts = sum(a for (a,) in db.session.execute(select(Payout.attempts).where(Payout.id.in_(ids))))
            db.session.rollback()
        time.sleep(0.5)
        cpu = _cpu_seconds(procs)
        _stop(procs)
        bills = sandbox.transfers()
        stamps = sorted(b["create_time"] for b in bills)
        per_second = collections.Counter(stamps)
        elapsed = max(len(per_second) - 1, 1)  # whole seconds from the first bill's second to the last's
        # the full seconds in between carry the rate; the first and last are partial
        full = [per_second[s] for s in sorted(per_second)[1:-1]]
        rate = sum(full) / len(full) if full else len(bills) / elapsed
        print(f"{args.count} transfers, {args.workers} in-process workers, {db_url.split(':')[0]}, "
              f"limit {limit}/s")
        print(f"  all waiting for their residents: {ok}; bills at the sandbox {len(bills)} "
              f"(one per payout: {len({b['out_bill_no'] for b in bills}) == len(ids)})")
        print(f"  {len(per_second)} seconds from first to last bill; {rate:.1f} bills/s over the full seconds = "
              f"{rate / limit * 100:.1f} % of the limit; busiest second {max(per_second.values())}")
        print(f"  last codes {dict(codes)}; {attempts} create calls; worker CPU {cpu * 1000 / args.count:.1f} ms "
              f"per payout")
        with app.app_context():
            from rewards.invariants import check_all

            print("invariants:", check_all() or "all hold")
    finally:
        sandbox.stop()
        from bench.common import stop_scratch_redis

        stop_scratch_redis(inst)


if __name__ == "__main__":
    main()
