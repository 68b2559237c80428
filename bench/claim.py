"""The review queue under load, on PostgreSQL: M moderators claiming concurrently over N pending tips.

    .venv/bin/python bench/claim.py [--tips 100000] [--moderators 50] [--seconds 30]
        [--database postgresql://postgres@127.0.0.1:5432/bench_moderation]

Builds a fresh database with the migrations, loads N pending tips (COPY; priorities 1–5, ages
spread over a week), then runs M moderators (threads spread over --processes processes, each
with its own connection) for the given time:
claim (moderation.queue.claim_next, the production code) → decide at once (a conditional UPDATE
on claimed_by, as the decision does) → claim again. Prints claims/s, claim latency p50/p99, and
double claims (a tip handed to two moderators; must be 0), and checks every claim came in queue
order within its priority.
"""
from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def load_tips(count: int) -> float:
    from app.extensions import db

    started = time.perf_counter()
    raw = db.engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("INSERT INTO residents (id, openid, no_reward, blocked, created_at) "
                    "VALUES (1, 'o_bench', false, false, now())")
        with cur.copy("COPY tips (resident_id, idempotency_key, request_hash, category, description, lat, lng, "
                      "coord_in, status, status_changed_at, priority, signals, candidates, flagged, created_at) "
                      "FROM STDIN") as copy:
            buf = io.StringIO()
            for i in range(count):
                age_s = (i * 6.05) % 604800  # spread over a week, not in id order
                buf.write(f"1\tk{i}\th{i}\tlpg_illegal\tbench\t23.02\t113.75\twgs84\tpending_review\t"
                          f"now\t{1 + i % 5}\t{{}}\t[]\tf\t{_ts(age_s)}\n")
                if i % 20000 == 19999:
                    copy.write(buf.getvalue())
                    buf = io.StringIO()
            copy.write(buf.getvalue())
        raw.commit()
        driver = raw.driver_connection
        driver.autocommit = True
        driver.cursor().execute("VACUUM ANALYZE tips")
        driver.autocommit = False
    finally:
        raw.close()
    return time.perf_counter() - started


def _ts(age_seconds: float) -> str:
    from datetime import datetime, timedelta, timezone

    return (datetime(2026, 11, 1, tzinfo=timezone.utc) - timedelta(seconds=age_seconds)).isoformat()


def make_moderators(count: int) -> list[int]:
    from sqlalchemy import text

    from app.extensions import db

    ids = []
    for i in range(count):
        staff_id = db.session.execute(text(
            "INSERT INTO staff_users (username, password_hash, active, created_at) "
            "VALUES (:u, 'x', true, now()) RETURNING id"), {"u": f"bench_mod_{i}"}).scalar()
        db.session.execute(text("INSERT INTO staff_roles (staff_id, role) VALUES (:s, 'moderator')"), {"s": staff_id})
        ids.append(staff_id)
    db.session.commit()
    return ids


def run_moderators(staff_ids, database, redis_url, seconds, barrier, results):
    """One process: a thread per moderator, each with its own connection (claim → decide → claim)."""
    from sqlalchemy import update

    from app import create_app
    from app.config import normalize_database_url
    from app.extensions import db
    from app.models.staff import StaffUser
    from app.models.tip import Tip
    from moderation.queue import claim_next

    app = create_app({"APP_ENV": "testing", "SQLALCHEMY_DATABASE_URI": normalize_database_url(database),
                      "REDIS_URL": redis_url, "LOG_LEVEL": "WARNING", "LOG_JSON": False,
                      "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": len(staff_ids) + 2, "max_overflow": 5}})
    claims = {sid: [] for sid in staff_ids}
    errors = []
    local = threading.Barrier(len(staff_ids) + 1)
    stop_at = [0.0]

    def moderator(staff_id):
        try:
            with app.app_context():
                me = db.session.get(StaffUser, staff_id)
                db.session.commit()
                local.wait(timeout=120)
                while time.monotonic() < stop_at[0]:
                    t0 = time.perf_counter()
                    tip = claim_next(me)
                    latency = (time.perf_counter() - t0) * 1000
                    if tip is None:
                        break
                    claims[staff_id].append((tip.id, tip.priority, latency))
                    done = db.session.execute(update(Tip).where(Tip.id == tip.id, Tip.claimed_by == staff_id)
                                              .values(status="rejected")).rowcount
                    db.session.commit()
                    if done != 1:
                        errors.append(f"moderator {staff_id} lost tip {tip.id} it had claimed")
                db.session.remove()
        except Exception as exc:  # noqa: BLE001 - reported by the parent
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=moderator, args=(sid,), daemon=True) for sid in staff_ids]
    for t in threads:
        t.start()
    barrier.wait(timeout=120)  # every process ready: start together
    stop_at[0] = time.monotonic() + seconds
    local.wait(timeout=120)
    for t in threads:
        t.join(timeout=seconds + 120)
    results.put((claims, errors))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tips", type=int, default=100_000)
    parser.add_argument("--moderators", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--processes", type=int, default=5, help="moderators are spread over this many processes")
    parser.add_argument("--database", default=os.environ.get("BENCH_DATABASE_URL",
                                                             "postgresql://postgres@127.0.0.1:5432/bench_moderation"))
    parser.add_argument("--redis", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/6"))
    args = parser.parse_args()

    from flask_migrate import upgrade

    from app import create_app
    from app.config import normalize_database_url
    from app.extensions import db
    from app.models.tip import Tip
    from dedup import fresh_database

    fresh_database(args.database)
    app = create_app({"APP_ENV": "testing", "SQLALCHEMY_DATABASE_URI": normalize_database_url(args.database),
                      "REDIS_URL": args.redis, "LOG_LEVEL": "WARNING", "LOG_JSON": False})
    with app.app_context():
        upgrade()
        print(f"loaded {args.tips:,} pending tips in {load_tips(args.tips):.1f} s")
        staff_ids = make_moderators(args.moderators)

    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    processes = max(1, min(args.processes, args.moderators))
    barrier = ctx.Barrier(processes + 1)
    results = ctx.Queue()
    groups = [staff_ids[i::processes] for i in range(processes)]
    workers = [ctx.Process(target=run_moderators, args=(group, args.database, args.redis, args.seconds, barrier,
                                                        results)) for group in groups]
    for w in workers:
        w.start()
    barrier.wait(timeout=120)
    began = time.monotonic()
    claims: dict[int, list] = {}
    errors: list[str] = []
    for _ in workers:
        got, errs = results.get(timeout=args.seconds + 180)
        claims.update(got)
        errors.extend(errs)
    elapsed = time.monotonic() - began
    for w in workers:
        w.join(timeout=30)

    all_claims = [c for items in claims.values() for c in items]
    latencies = sorted(c[2] for c in all_claims)
    counts = Counter(c[0] for c in all_claims)
    doubles = sum(1 for n in counts.values() if n > 1)
    # queue order: no tip claimed while a tip of higher priority was never claimed at all
    top_unclaimed = None
    with app.app_context():
        from sqlalchemy import func, select

        top_unclaimed = db.session.scalar(select(func.max(Tip.priority)).where(Tip.status == "pending_review"))
    lowest_claimed = min((c[1] for c in all_claims), default=None)
    print(f"moderators {args.moderators} in {processes} processes, {elapsed:.1f} s: {len(all_claims):,} claims, "
          f"{len(all_claims) / elapsed:.0f} claims/s")
    if latencies:
        print(f"claim latency p50 {statistics.median(latencies):.1f} ms  "
              f"p99 {latencies[min(len(latencies) - 1, int(0.99 * (len(latencies) - 1)))]:.1f} ms  "
              f"max {latencies[-1]:.1f} ms")
    print(f"double claims: {doubles}; errors: {len(errors)}; highest priority still waiting {top_unclaimed}, "
          f"lowest claimed {lowest_claimed}")
    for line in errors[:5]:
        print("  ", line)
    ok = doubles == 0 and not errors and (top_unclaimed is None or lowest_claimed is None
                                          or lowest_claimed >= top_unclaimed)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
