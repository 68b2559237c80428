"""Hazard tickets benchmark: the routing step of an approval, the nearby-ticket query, transitions, SLA sweep.

    python bench/hazards.py [--tickets 20000] [--approvals 300] [--database-url URL]

Without --database-url it works on a throw-away SQLite file (catalogue + synthetic demo grids),
so it touches no real database; with a PostgreSQL URL, use an empty scratch database (it is
migrated and filled). Prints wall-clock latency percentiles (the work is database-bound) and,
for the nearby query, the same question answered by scanning every open ticket of the category.
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def line(label: str, samples: list[float]) -> str:
    ms = [s * 1000 for s in samples]
    return (f"{label:<44} n={len(ms):>6}  p50 {pct(ms, 50):7.2f} ms  p95 {pct(ms, 95):7.2f} ms  "
            f"p99 {pct(ms, 99):7.2f} ms  mean {statistics.fmean(ms):7.2f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=20000, help="open tickets in the table for the nearby query")
    parser.add_argument("--approvals", type=int, default=300, help="approvals routed one by one (each commits)")
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    from bench.common import scratch_app

    with scratch_app("bench-hazards-", args.database_url):
        run(args)
    return 0


def run(args) -> None:
    import shapely
    from sqlalchemy import insert, select

    from app.commands import INIT_STEPS, _resolve
    from app.extensions import db
    from app.geo.coords import haversine_m
    from app.geo.models import Grid
    from app.hazards.catalogue import get_category, list_categories
    from app.hazards.lifecycle import Actor, transition_hazard
    from app.hazards.models import OPEN_HAZARD_STATUSES, Hazard
    from app.hazards.sla import flag_overdue
    from app.hazards.tickets import find_open_hazards_near
    from app.models.base import utcnow
    from app.models.resident import Resident
    from app.models.tip import Tip
    from app.tips import change_tip_status, run_acceptance_steps
    from flask_migrate import upgrade

    upgrade()
    for _name, path in INIT_STEPS:
        _resolve(path)()
    rng = random.Random(7)
    grids = db.session.execute(select(Grid.geometry)).scalars().all()
    points = [(p.y, p.x) for p in (shapely.from_geojson(g).representative_point() for g in grids)]
    categories = [c for c in list_categories()]
    fire = next(c for c in categories if c.code == "fire_exit_blocked")
    print(f"engine: {db.engine.dialect.name}; {len(points)} grids; {len(categories)} categories")

    # 1. a table of open tickets spread over the city, bulk-inserted
    now = utcnow()
    rows = []
    for i in range(args.tickets):
        lat, lng = points[rng.randrange(len(points))]
        category = categories[i % len(categories)]
        rows.append({"status": rng.choice(OPEN_HAZARD_STATUSES), "category_code": category.code,
                     "department_id": category.department_id, "severity": 1, "lat": lat + rng.uniform(-.002, .002),
                     "lng": lng + rng.uniform(-.002, .002), "description": "", "tip_count": 1,
                     "status_changed_at": now, "updated_at": now, "created_at": now, "overdue": False,
                     "resolution_photo_ids": [], "reopen_count": 0, "due_at": now})
    started = time.perf_counter()
    for chunk in range(0, len(rows), 2000):
        db.session.execute(insert(Hazard), rows[chunk:chunk + 2000])
    db.session.commit()
    print(f"inserted {args.tickets} open tickets in {time.perf_counter() - started:.1f} s")

    # 2. the nearby query (every approval and the residents' "already reported?") vs a full scan
    samples, scans, agree = [], [], 0
    for _ in range(args.queries):
        lat, lng = points[rng.randrange(len(points))]
        category = categories[rng.randrange(len(categories))]
        t0 = time.perf_counter()
        found = find_open_hazards_near(category.code, lat, lng)
        samples.append(time.perf_counter() - t0)
        if len(scans) < 200:
            t0 = time.perf_counter()
            every = db.session.execute(select(Hazard.id, Hazard.lat, Hazard.lng).where(
                Hazard.category_code == category.code, Hazard.status.in_(OPEN_HAZARD_STATUSES))).all()
            brute = sorted((haversine_m((lat, lng), (a, b)), i) for i, a, b in every)
            brute = [i for d, i in brute if d <= category.dedup_radius_m][:5]
            scans.append(time.perf_counter() - t0)
            agree += brute == [h.id for h in found]
        db.session.rollback()
    print(line("find_open_hazards_near (bbox + haversine)", samples))
    print(line("full scan of the category (reference)", scans))
    print(f"answers agree with the full scan: {agree}/{len(scans)}")

    # 3. the routing step of an approval: tip CAS + acceptance steps + commit, one by one
    resident = Resident(openid="bench-resident-openid")
    db.session.add(resident)
    db.session.commit()
    samples = []
    created = []
    for i in range(args.approvals):
        lat, lng = points[rng.randrange(len(points))]
        tip = Tip(resident_id=resident.id, idempotency_key=f"bench-{i}", request_hash="0" * 64,
                  category=fire.code, description="bench", lat=lat, lng=lng, status="pending_review")
        db.session.add(tip)
        db.session.commit()
        t0 = time.perf_counter()
        change_tip_status(tip.id, ("pending_review",), "accepted", "审核通过")
        answer = run_acceptance_steps(tip, {"action": "approve", "category": fire.code, "severity": 2,
                                            "reason": None, "message": None, "department": None,
                                            "duplicate_of": None}, None)
        db.session.commit()
        samples.append(time.perf_counter() - t0)
        created.append(answer["hazard"]["id"])
    print(line("approve → route (ticket + events + outbox), commit", samples))

    # 4. transitions: a department acknowledges each ticket (CAS + event + timeline + outbox), commit
    department = Actor("department", None, get_category(fire.code).department.code)
    samples = []
    for hazard_id in dict.fromkeys(created):
        if db.session.get(Hazard, hazard_id).status != "dispatched":
            db.session.rollback()
            continue
        db.session.rollback()
        t0 = time.perf_counter()
        transition_hazard(hazard_id, "accepted", department)
        db.session.commit()
        samples.append(time.perf_counter() - t0)
    print(line("transition dispatched → accepted, commit", samples))

    # 5. the SLA sweep over every ticket past its deadline (the bulk rows are all due now)
    t0 = time.perf_counter()
    total = 0
    while flagged := flag_overdue():
        total += flagged
    seconds = time.perf_counter() - t0
    print(f"flag_overdue: {total} tickets flagged in {seconds:.1f} s ({total / seconds:,.0f}/s, one event each)")


if __name__ == "__main__":
    sys.exit(main())
