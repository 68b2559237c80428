"""A province's data in PostgreSQL, measured through the product's own query functions.

    .venv/bin/python bench/province.py --database postgresql://postgres@127.0.0.1:5432/bench_province \
        [--scale 1.0] [--skip-load] [--only claim,dedup,...] [--samples 300]

Load (set-based SQL: generate_series, INSERT … SELECT; secondary indexes dropped during the load and
rebuilt from the migrations' own definitions afterwards; FK triggers off for the load session only):
the schema from `flask db upgrade` (alembic head), the catalogue, and at --scale 1.0

    10,000,000 tips (1,000,000 pending review, the rest decided) with their timeline events, 2,000,000 residents
    10,000,000 photos (one per tip, uniform random 64-bit pHash) + 40,000,000 hash-band rows
     1,000,000 tickets (hazards, 20 % open) over 21 city centres and 30,000 grids, with their tip links
     3,000,000 payouts over 2026-01 … 2026-10 with their ledger (reserve, sent, claimed/refunded/failed)
    + one business day of --day-packets (300,000) sent packets on 2026-11-20 and its tips, for reconciliation

Every count scales with --scale except the reconciliation day (a day's size does not depend on
how much history lies behind it). Then, for each operation, --samples timed calls of the PRODUCT
function (wall clock, p50/p99), every SQL statement those calls sent is EXPLAINed afterwards, the
plan's node types are printed, and the script exits 1 if any plan holds a Seq Scan on a table of more
than 50,000 rows:

    claim     moderation.queue.claim_next with 1 M pending: 50 moderators, each deciding every 10 s
    mytips    miniprogram_api.queries.list_tips (a resident's tips, first and second page)
    nearby    app.hazards.tickets.find_open_hazards_near (open tickets near a point)
    dedup     moderation.dedup.find_near_hashes (goal p99 ≤ 3 ms; recall against a NumPy scan of all hashes)
    intake    moderation.intake.process_tip on fresh one-photo tips (wall and process CPU; WeChat's checks apart)
    hazards   app.hazards.queries.list_hazards by department/status/grid (the console's list)
    feed      a department's ticket feed: list_hazards + department_tickets, as GET /api/dept/v1/tickets
    finance   rewards.finance.summary for one month
    reconcile rewards.reconciliation.reconcile_day of the 300 k-packet day in a fresh process
              (bench/reconcile.py's child; goal ≤ 60 s, < 200 MB peak RSS)

The database name must contain "bench" (its schema is dropped at the start of a load).
"""
from __future__ import annotations

import argparse
import http.server
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DAY = date(2026, 11, 20)  # the reconciliation day (bench/reconcile.py's child reconciles this date)
BIG_TABLE_ROWS = 50_000
FULL = {"tips": 10_000_000, "residents": 2_000_000, "hazards": 1_000_000, "payouts": 3_000_000, "grids": 30_000}
# 21 city centres across Guangdong (approximate; only the spread matters)
CITIES = [(23.13, 113.26), (22.54, 114.06), (23.02, 113.75), (23.02, 113.12), (22.27, 113.58), (22.52, 113.39),
          (22.58, 113.08), (23.11, 114.42), (22.82, 115.37), (23.37, 116.68), (23.66, 116.63), (23.55, 116.37),
          (24.29, 116.12), (23.74, 114.70), (24.81, 113.60), (23.70, 113.04), (23.05, 112.47), (23.10, 111.65),
          (21.86, 111.98), (21.27, 110.36), (21.66, 110.92)]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


# --- load -------------------------------------------------------------------------------------------

def counts_for(scale: float, day_packets: int) -> dict:
    c = {k: max(1, int(v * scale)) for k, v in FULL.items()}
    c["tips"] = max(1000, c["tips"] - c["tips"] % 10)
    c["pending"] = c["tips"] // 10
    c["day_packets"] = day_packets
    return c


def load(app, scale: float, day_packets: int) -> dict:
    from flask_migrate import upgrade
    from sqlalchemy import text

    from app.extensions import db
    from app.hazards.catalogue import load_catalogue
    from app.hazards.models import OPEN_HAZARD_STATUSES

    c = counts_for(scale, day_packets)
    timings = {}
    t0 = time.perf_counter()
    upgrade()
    load_catalogue()
    db.session.commit()
    cats = db.session.execute(text("SELECT code, department_id FROM categories ORDER BY id")).all()
    db.session.rollback()  # no snapshot held open: VACUUM below must be able to mark every page all-visible
    mch = app.config["WECHAT_MCH_ID"]
    timings["schema + catalogue"] = time.perf_counter() - t0

    raw = db.engine.raw_connection()
    cur = raw.cursor()
    cur.execute("SET session_replication_role = replica")  # no FK triggers during the load (set-based, consistent by construction)
    cur.execute("SET synchronous_commit = off")
    cur.execute("SET maintenance_work_mem = '512MB'")
    cur.execute("SET work_mem = '256MB'")
    big = ("tips", "tip_events", "photos", "photo_hash_bands", "hazards", "hazard_tips", "residents", "payouts",
           "ledger_transactions", "ledger_entries")
    # secondary indexes and unique constraints: dropped for the load, rebuilt from their own definitions
    cur.execute("""SELECT i.relname, t.relname, pg_get_indexdef(i.oid), con.conname
                   FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
                   LEFT JOIN pg_constraint con ON con.conindid = i.oid AND con.contype = 'u'
                   WHERE t.relname = ANY(%s) AND NOT x.indisprimary""", (list(big),))
    indexes = cur.fetchall()
    for name, table, _, constraint in indexes:
        cur.execute(f"ALTER TABLE {table} DROP CONSTRAINT {constraint}" if constraint else f"DROP INDEX {name}")
    raw.commit()

    def step(label, sql, params=None):
        s = time.perf_counter()
        for statement in sql.split(";\n"):  # one statement per execute (parameters go through the extended protocol)
            cur.execute(statement, params if params and "%(" in statement else None)
        raw.commit()
        timings[label] = time.perf_counter() - s
        print(f"  {label}: {timings[label]:.1f} s", flush=True)

    n, pending, residents = c["tips"], c["pending"], c["residents"]
    cat_codes = [code for code, _ in cats]
    cat_depts = [dept for _, dept in cats]
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    span_s = (datetime(2026, 11, 30, tzinfo=timezone.utc) - start).total_seconds()
    step("residents", """INSERT INTO residents (id, openid, no_reward, blocked, created_at)
        SELECT g, 'oBench' || g, false, false, %(start)s FROM generate_series(1, %(r)s::bigint) g""",
         {"start": start, "r": residents})
    # tips: ids in time order; the newest 10 % are pending review; of the rest, id mod 10 in 0..5 accepted
    step("tips", """INSERT INTO tips (id, resident_id, idempotency_key, request_hash, category, description, lat, lng,
            coord_in, status, status_changed_at, grid_code, town_code, severity, priority, signals, candidates,
            flagged, created_at)
        SELECT g, 1 + (g::bigint * 48271) %% %(r)s, 'k' || g, 'h' || g, (%(cats)s::text[])[1 + g %% %(nc)s],
               '路边有隐患，请处理', 23.0 + (g %% 1000) / 1000.0, 113.7 + (g %% 997) / 1000.0, 'gcj02',
               CASE WHEN g > %(decided)s THEN 'pending_review'
                    WHEN g %% 10 < 6 THEN 'accepted' WHEN g %% 10 < 8 THEN 'rejected'
                    WHEN g %% 10 = 8 THEN 'duplicate' ELSE 'need_info' END,
               ts, 'G' || lpad(((g * 7919) %% %(grids)s)::text, 5, '0'), 'T' || (g %% 21), 1 + g %% 3,
               1 + (g * 31) %% 5, '{}', '[]', false, ts
        FROM (SELECT g, %(start)s::timestamptz + (g * %(step)s) * interval '1 second' AS ts
              FROM generate_series(1, %(n)s::bigint) g) s""",
         {"r": residents, "cats": cat_codes, "nc": len(cat_codes), "decided": n - pending, "grids": c["grids"],
          "start": start, "step": span_s / n, "n": n})
    step("tip_events", """INSERT INTO tip_events (tip_id, status, internal, actor_type, at)
        SELECT id, 'received', false, 'resident', created_at FROM tips;
        INSERT INTO tip_events (tip_id, status, internal, actor_type, at)
        SELECT id, status, false, 'staff', created_at + interval '1 hour' FROM tips WHERE status <> 'pending_review'""")
    step("photos", """INSERT INTO photos (id, resident_id, tip_id, position, sha256, phash, width, height, mime,
            size_bytes, original_key, display_key, thumb_key, created_at)
        SELECT id, resident_id, id, 0, md5(id::text) || md5((-id)::text),
               (floor(random() * 4294967296)::bigint << 32) | floor(random() * 4294967296)::bigint,
               1920, 1440, 'image/jpeg', 496195, 'o/' || id || '.jpg', 'd/' || id || '.jpg', 't/' || id || '.jpg',
               created_at
        FROM tips""")
    step("photo_hash_bands", """INSERT INTO photo_hash_bands (photo_id, band_key, phash)
        SELECT p.id, (b.no << 24) | ((p.phash >> b.start) & ((1 << b.width) - 1))::integer, p.phash
        FROM photos p CROSS JOIN (VALUES (0, 0, 17), (1, 17, 17), (2, 34, 15), (3, 49, 15)) b(no, start, width)""")
    # tickets: hazard j's first tip is tip 5j (accepted: 5j mod 10 ∈ {0, 5}); 20 % open
    open_statuses = list(OPEN_HAZARD_STATUSES)
    step("hazards", """INSERT INTO hazards (id, status, category_code, department_id, severity, grid_code, town_code,
            lat, lng, description, first_tip_id, tip_count, status_changed_at, due_at, overdue,
            resolution_photo_ids, reopen_count, closed_at, updated_at, created_at)
        SELECT j, CASE WHEN j %% 5 = 0 THEN (%(open)s::text[])[1 + (j / 5) %% %(nopen)s] ELSE 'closed' END,
               (%(cats)s::text[])[1 + j %% %(nc)s], (%(depts)s::int[])[1 + j %% %(nc)s], 1 + j %% 3,
               'G' || lpad(((j * 7919) %% %(grids)s)::text, 5, '0'), 'T' || (j %% 21),
               (%(clat)s::float8[])[1 + (j * 13) %% 21] + (random() - 0.5) * 0.3,
               (%(clng)s::float8[])[1 + (j * 13) %% 21] + (random() - 0.5) * 0.3,
               '隐患描述', 5 * j, 1, t.created_at, t.created_at + interval '3 days', j %% 50 = 0, '[]', 0,
               CASE WHEN j %% 5 = 0 THEN NULL ELSE t.created_at + interval '2 days' END, t.created_at, t.created_at
        FROM generate_series(1, %(h)s::bigint) j JOIN tips t ON t.id = 5 * j""",
         {"open": open_statuses, "nopen": len(open_statuses), "cats": cat_codes, "depts": cat_depts,
          "nc": len(cat_codes), "grids": c["grids"], "clat": [p[0] for p in CITIES], "clng": [p[1] for p in CITIES],
          "h": c["hazards"]})
    step("hazard_tips + tips.hazard_id", """INSERT INTO hazard_tips (id, hazard_id, tip_id, relation, first_valid, created_at)
        SELECT id, id, first_tip_id, 'first', true, created_at FROM hazards;
        UPDATE tips SET hazard_id = id / 5 WHERE id %% 5 = 0 AND id / 5 <= %(h)s""", {"h": c["hazards"]})
    # payouts k → accepted tip 10·⌊(k−1)/6⌋ + (k−1) mod 6 + 10, spread evenly over 2026-01-01 … 2026-10-31;
    # then the reconciliation day's packets on fresh accepted tips after the last one
    p = c["payouts"]
    step("payouts", """INSERT INTO payouts (id, tip_id, resident_id, category, severity, amount_fen, status, period,
            business_day, mch_billno, attempts, reserved_at, sent_at, settled_at, updated_at, created_at)
        SELECT k, tip, 1 + (tip::bigint * 48271) %% %(r)s, 'road_damage', 2, 100 + k %% 900,
               CASE WHEN k %% 100 < 90 THEN 'claimed' WHEN k %% 100 < 97 THEN 'refunded' ELSE 'failed' END,
               to_char(d, 'YYYY-MM'), d, %(mch)s || to_char(d, 'YYYYMMDD') || lpad(k::text, 10, '0'), 1,
               d + interval '9 hours', CASE WHEN k %% 100 < 97 THEN d + interval '9 hours' END,
               CASE WHEN k %% 100 < 97 THEN d + interval '10 hours' END, d + interval '10 hours', d + interval '9 hours'
        FROM (SELECT k, 10 * ((k - 1) / 6) + (k - 1) %% 6 + 10 AS tip,
                     (date '2026-01-01' + ((k - 1) * 304 / %(p)s)::int)::timestamp AS d
              FROM generate_series(1, %(p)s::bigint) k) s""", {"r": residents, "mch": mch, "p": p})
    d = c["day_packets"]
    step("reconciliation day: tips + payouts", """INSERT INTO tips (id, resident_id, idempotency_key, request_hash,
            category, description, lat, lng, coord_in, status, status_changed_at, priority, signals, candidates,
            flagged, created_at)
        SELECT %(n)s + g, 1 + (g::bigint * 48271) %% %(r)s, 'k' || (%(n)s + g), 'h', 'road_damage', '', 23.0, 113.7,
               'gcj02', 'accepted', %(at)s, 1, '{}', '[]', false, %(at)s FROM generate_series(1, %(d)s) g;
        INSERT INTO payouts (id, tip_id, resident_id, category, severity, amount_fen, status, period, business_day,
            mch_billno, attempts, reserved_at, sent_at, updated_at, created_at)
        SELECT %(p)s + g, %(n)s + g, 1 + (g::bigint * 48271) %% %(r)s, 'road_damage', 2, 100 + g %% 19900, 'sent',
               '2026-11', %(day)s, %(mch)s || to_char(%(day)s::date, 'YYYYMMDD') || lpad((%(p)s + g)::text, 10, '0'),
               1, %(at)s, %(at)s, %(at)s, %(at)s FROM generate_series(1, %(d)s) g""",
         {"n": n + 1000, "r": residents, "d": d, "p": p, "mch": mch, "day": DAY,
          "at": datetime(2026, 11, 20, 1, tzinfo=timezone.utc)})
    # ledger: transaction ids 3k−2 (reserve), 3k−1 (sent or failed), 3k (claimed or refunded)
    step("ledger_transactions", """INSERT INTO ledger_transactions (id, kind, payout_id, period, business_day, created_at)
        SELECT 3 * id - 2 + x.o, x.kind, id, period, business_day, created_at
        FROM payouts CROSS JOIN LATERAL (VALUES
            (0, 'reserve'),
            (1, CASE WHEN status = 'failed' THEN 'failed' ELSE 'sent' END),
            (2, CASE status WHEN 'claimed' THEN 'claimed' WHEN 'refunded' THEN 'refunded' END)) x(o, kind)
        WHERE x.kind IS NOT NULL""")
    step("ledger_entries", """INSERT INTO ledger_entries (transaction_id, account, amount_fen, payout_id)
        SELECT t.id, e.account, e.amount, p.id
        FROM ledger_transactions t JOIN payouts p ON p.id = t.payout_id
        CROSS JOIN LATERAL (VALUES
            ('reserve', 'budget_available:' || p.period, p.amount_fen), ('reserve', 'budget_reserved:' || p.period, -p.amount_fen),
            ('sent', 'packets_in_flight', p.amount_fen), ('sent', 'wechat_merchant', -p.amount_fen),
            ('sent', 'budget_reserved:' || p.period, p.amount_fen), ('sent', 'budget_committed:' || p.period, -p.amount_fen),
            ('claimed', 'reward_expense', p.amount_fen), ('claimed', 'packets_in_flight', -p.amount_fen),
            ('refunded', 'wechat_merchant', p.amount_fen), ('refunded', 'packets_in_flight', -p.amount_fen),
            ('refunded', 'budget_committed:' || p.period, p.amount_fen), ('refunded', 'budget_available:' || p.period, -p.amount_fen),
            ('failed', 'budget_reserved:' || p.period, p.amount_fen), ('failed', 'budget_available:' || p.period, -p.amount_fen)
        ) e(kind, account, amount)
        WHERE e.kind = t.kind""")
    # funding per period: exactly what the period's payouts reserved, so every balance is what rewards check expects
    step("funding + budget periods", """
        INSERT INTO ledger_transactions (id, kind, period, business_day, created_at)
        SELECT (SELECT max(id) FROM ledger_transactions) + row_number() OVER (ORDER BY period), 'funding', period,
               min(business_day), min(created_at) FROM payouts GROUP BY period;
        INSERT INTO ledger_entries (transaction_id, account, amount_fen)
        SELECT t.id, e.account, e.amount FROM ledger_transactions t
        JOIN (SELECT period, sum(amount_fen) AS total FROM payouts GROUP BY period) f ON f.period = t.period
        CROSS JOIN LATERAL (VALUES ('wechat_merchant', f.total), ('program_funding', -f.total),
                                   ('budget_control', f.total), ('budget_available:' || t.period, -f.total)) e(account, amount)
        WHERE t.kind = 'funding';
        INSERT INTO budget_periods (period, funded_fen, available_fen, reserved_fen, committed_fen, expired_fen, closed)
        SELECT period, sum(amount_fen),
               sum(CASE WHEN status IN ('refunded', 'failed') THEN amount_fen ELSE 0 END), 0,
               sum(CASE WHEN status IN ('claimed', 'sent') THEN amount_fen ELSE 0 END), 0, false
        FROM payouts GROUP BY period""")
    # the per-day totals ledger.post keeps (migration 0015 backfills them the same way)
    cur.execute("SELECT to_regclass('ledger_day_balances') IS NOT NULL")
    if cur.fetchone()[0]:
        step("ledger_day_balances", """INSERT INTO ledger_day_balances (account, business_day, amount_fen)
            SELECT e.account, t.business_day, sum(e.amount_fen) FROM ledger_entries e
            JOIN ledger_transactions t ON t.id = e.transaction_id GROUP BY e.account, t.business_day""")
    s = time.perf_counter()
    for name, table, definition, constraint in indexes:
        if constraint:
            cols = definition[definition.index("(") + 1:definition.rindex(")")]
            cur.execute(f"ALTER TABLE {table} ADD CONSTRAINT {constraint} UNIQUE ({cols})")
        else:
            cur.execute(definition)
        raw.commit()
    timings["indexes"] = time.perf_counter() - s
    print(f"  indexes ({len(indexes)}): {timings['indexes']:.1f} s", flush=True)
    for table in ("tips", "tip_events", "photos", "hazards", "hazard_tips", "residents", "payouts", "ledger_transactions",
                  "ledger_entries"):
        cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
    raw.commit()
    driver = raw.driver_connection
    driver.autocommit = True
    s = time.perf_counter()
    driver.cursor().execute("VACUUM (ANALYZE)")  # the visibility map too: index-only scans as in a settled database
    timings["vacuum analyze"] = time.perf_counter() - s
    driver.autocommit = False
    raw.close()
    timings["total"] = time.perf_counter() - t0
    return c


def sizes(app) -> list[tuple[str, int, int, int]]:
    from sqlalchemy import text

    from app.extensions import db

    rows = db.session.execute(text("""
        SELECT c.relname, c.reltuples::bigint, pg_table_size(c.oid), pg_indexes_size(c.oid)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY pg_total_relation_size(c.oid) DESC""")).all()
    db.session.rollback()
    return [tuple(r) for r in rows]


# --- plans ------------------------------------------------------------------------------------------

class Captured:
    """Every statement the product code sends while `on`: EXPLAINed afterwards, outside the timings."""

    def __init__(self, engine):
        from sqlalchemy import event

        self.on = False
        self.statements: dict[str, tuple] = {}
        self.settings: list[str] = []
        self.pages: dict[str, int] = {}  # per operation: pages the SELECTs of one call of each shape touched
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, conn, cursor, statement, parameters, context, executemany):
        if self.on and statement.lstrip().upper().startswith("SET LOCAL"):
            self.settings.append(statement)  # replayed before the EXPLAINs: the plans the product got
        if self.on and not executemany and statement.lstrip().upper().startswith(("SELECT", "UPDATE", "WITH", "DELETE")):
            self.statements.setdefault(statement, parameters)

    def explain(self, engine, label: str, big_tables: set[str]) -> list[str]:
        """Prints each distinct statement's node types; returns the failures (Seq Scan on a big table)."""
        failures = []
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            for setting in self.settings:
                if setting.rstrip().endswith("off"):
                    cur.execute(setting)
            for statement, params in self.statements.items():
                # SELECTs run for real (ANALYZE, BUFFERS: pages touched, a figure the machine's load does not
                # move); writes are only planned. Rolled back below either way.
                analyze = statement.lstrip().upper().startswith(("SELECT", "WITH"))
                cur.execute(f"EXPLAIN ({'ANALYZE, BUFFERS, ' if analyze else ''}FORMAT JSON) " + statement, params)
                top = cur.fetchone()[0][0]
                plan = top["Plan"]
                nodes = []

                def walk(node):
                    kind = node["Node Type"]
                    rel = node.get("Relation Name")
                    idx = node.get("Index Name")
                    nodes.append(kind + (f" {rel}" if rel else "") + (f" [{idx}]" if idx else ""))
                    if kind == "Seq Scan" and rel in big_tables:
                        failures.append(f"{label}: Seq Scan on {rel} in: {statement[:160]}")
                    for child in node.get("Plans", []):
                        walk(child)

                walk(plan)
                head = " ".join(statement.split())[:90]
                cost = ""
                if analyze:
                    pages = plan.get("Shared Hit Blocks", 0) + plan.get("Shared Read Blocks", 0)
                    cost = f" [{pages} pages, {top.get('Execution Time', 0):.2f} ms in the server]"
                    self.pages[label] = self.pages.get(label, 0) + pages
                print(f"    plan: {' → '.join(nodes)}{cost}\n          ({head}…)")
            raw.rollback()
        finally:
            raw.close()
        self.statements, self.settings = {}, []
        return failures


def timed(label: str, calls, captured, results: dict) -> list[float]:
    from app.extensions import db

    samples, cpu = [], []
    for i, call in enumerate(calls):
        captured.on = i < 3  # the plans of the first calls (every statement shape appears there)
        t0, c0 = time.perf_counter(), time.process_time()
        call()
        samples.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
        captured.on = False
        db.session.rollback()
    report(label, samples, results, cpu)
    return samples


def report(label: str, samples: list[float], results: dict, cpu: list[float] | None = None) -> None:
    results[label] = {"n": len(samples), "p50": pct(samples, 50), "p99": pct(samples, 99), "max": max(samples)}
    extra = ""
    if cpu:
        results[label]["cpu_p50"] = pct(cpu, 50)
        extra = f"  (this process's CPU p50 {pct(cpu, 50):7.2f} ms)"
    print(f"  {label:<52} n={len(samples):>5}  p50 {pct(samples, 50):8.2f} ms  p99 {pct(samples, 99):8.2f} ms  "
          f"max {max(samples):8.2f} ms{extra}", flush=True)


# --- the operations ---------------------------------------------------------------------------------

def bench_mytips(app, c, samples, rng):
    from miniprogram_api.queries import list_tips

    calls = []
    for _ in range(samples):
        resident = rng.randint(1, c["residents"])
        calls.append(lambda r=resident: list_tips(r))
    return [("a resident's tips (list_tips, first page)", calls)]


def bench_nearby(app, c, samples, rng):
    from app.hazards.tickets import find_open_hazards_near
    from sqlalchemy import text

    from app.extensions import db

    # points where tickets are: the location of a random ticket (any status), any category or its own
    ids = [rng.randint(1, c["hazards"]) for _ in range(samples)]
    rows = db.session.execute(text("SELECT id, category_code, lat, lng FROM hazards WHERE id = ANY(:ids)"),
                              {"ids": ids}).all()
    db.session.rollback()
    return [("nearby open tickets, same category (100 m)",
             [lambda r=r: find_open_hazards_near(r.category_code, r.lat, r.lng) for r in rows]),
            ("nearby open tickets, any category (500 m)",
             [lambda r=r: find_open_hazards_near(None, r.lat, r.lng, radius_m=500) for r in rows])]


def bench_hazards(app, c, samples, rng):
    from sqlalchemy import text

    from app.extensions import db
    from app.hazards.queries import list_hazards

    depts = [r[0] for r in db.session.execute(text(
        "SELECT DISTINCT d.code FROM departments d JOIN categories c ON c.department_id = d.id")).all()]
    db.session.rollback()
    grid = lambda: f"G{rng.randrange(c['grids']):05d}"  # noqa: E731
    out = [
        ("hazards list: department + open", [lambda d=rng.choice(depts): list_hazards(department=d, status="open")
                                              for _ in range(samples)]),
        ("hazards list: department + closed, pages 1 and 2", [
            lambda d=rng.choice(depts): list_hazards(department=d, status="closed",
                                                     cursor=str(list_hazards(department=d, status="closed")[1]))
            for _ in range(samples)]),
        ("hazards list: grid (any status)", [lambda g=grid(): list_hazards(grid=g) for _ in range(samples)]),
        ("hazards list: department + open + grid", [
            lambda d=rng.choice(depts), g=grid(): list_hazards(department=d, status="open", grid=g)
            for _ in range(samples)]),
        ("hazards list: overdue + open (all departments)", [lambda: list_hazards(status="open", overdue=True)
                                                            for _ in range(max(20, samples // 5))]),
    ]
    return out


def bench_feed(app, c, samples, rng):
    from sqlalchemy import text

    from app.extensions import db
    from app.hazards.queries import department_tickets, list_hazards

    depts = [r[0] for r in db.session.execute(text(
        "SELECT DISTINCT d.code FROM departments d JOIN categories c ON c.department_id = d.id")).all()]
    db.session.rollback()

    def feed(dept, status):
        rows, _ = list_hazards(department=dept, status=status, limit=20)  # as GET /api/dept/v1/tickets
        return department_tickets(rows)

    return [("department ticket feed (20 tickets + photos), open",
             [lambda d=rng.choice(depts): feed(d, "open") for _ in range(samples)]),
            ("department ticket feed, all statuses",
             [lambda d=rng.choice(depts): feed(d, None) for _ in range(samples)])]


def bench_finance(app, c, samples, rng):
    from rewards.finance import summary

    n = max(5, samples // 20)
    return [("finance summary, one month (2026-10)", [lambda: summary(date(2026, 10, 1), date(2026, 10, 31))
                                                        for _ in range(n)]),
            ("finance summary, one day (2026-10-15)", [lambda: summary(date(2026, 10, 15), date(2026, 10, 15))
                                                       for _ in range(n)])]


def bench_dedup(app, c, samples, rng, results):
    import numpy as np
    from sqlalchemy import text

    from app.extensions import db
    from moderation.dedup import find_near_hashes

    raw = db.engine.raw_connection()
    cur = raw.cursor()
    t0 = time.perf_counter()
    cur.execute("SELECT id, phash FROM photos")
    ids = np.empty(0, dtype=np.int64)
    hashes_parts, id_parts = [], []
    while True:
        chunk = cur.fetchmany(500_000)
        if not chunk:
            break
        arr = np.array(chunk, dtype=np.int64)
        id_parts.append(arr[:, 0])
        hashes_parts.append(arr[:, 1])
    ids = np.concatenate(id_parts)
    hashes = np.concatenate(hashes_parts).view(np.uint64)
    raw.rollback()
    raw.close()
    print(f"  (read {len(ids):,} hashes for the NumPy truth in {time.perf_counter() - t0:.1f} s)")
    queries = []
    for i in range(samples):
        if i % 2 == 0:  # a stored hash with 0–8 bits flipped
            h = int(hashes[rng.randrange(len(hashes))])
            for b in rng.sample(range(64), rng.randint(0, 8)):
                h ^= 1 << b
        else:
            h = rng.getrandbits(64)
        queries.append(h - (1 << 64) if h >= 1 << 63 else h)
    answers = []
    db.session.execute(text("SELECT 1"))  # one open transaction, as the intake job runs the lookup
    lat = []
    for i, q in enumerate(queries):
        CAPTURED.on = i < 2
        t = time.perf_counter()
        answers.append(find_near_hashes(q))
        lat.append((time.perf_counter() - t) * 1000)
        CAPTURED.on = False
    db.session.rollback()
    report("dedup lookup (find_near_hashes, d ≤ 8)", lat, results)
    found = expected = false_pos = 0
    for q, got in zip(queries, answers):
        qu = np.uint64(q & ((1 << 64) - 1))
        dist = np.bitwise_count(hashes ^ qu)
        truth = {int(ids[k]): int(dist[k]) for k in np.nonzero(dist <= 8)[0]}
        got_d = dict(got)
        expected += len(truth)
        found += sum(1 for k in truth if got_d.get(k) == truth[k])
        false_pos += sum(1 for k in got_d if k not in truth)
    recall = found / expected if expected else 1.0
    results["dedup recall"] = {"recall": recall, "answers": expected, "false_positives": false_pos}
    print(f"  dedup recall {recall:.4f} ({found} of {expected} true matches), {false_pos} false positives")


def bench_claim(app, c, args, results):
    """50 moderators (threads, one connection each): claim → decide `think` seconds later → claim …"""
    from sqlalchemy import text, update

    from app.extensions import db
    from app.models.staff import StaffUser
    from app.models.tip import Tip
    from moderation.queue import claim_next

    staff_ids = []
    for i in range(args.moderators):
        sid = db.session.execute(text(
            "INSERT INTO staff_users (username, password_hash, active, created_at) VALUES (:u, 'x', true, now()) "
            "ON CONFLICT (username) DO UPDATE SET active = true RETURNING id"), {"u": f"bench_mod_{i}"}).scalar()
        db.session.execute(text("INSERT INTO staff_roles (staff_id, role) VALUES (:s, 'moderator') "
                                "ON CONFLICT DO NOTHING"), {"s": sid})
        staff_ids.append(sid)
    db.session.commit()
    pending = db.session.scalar(text("SELECT count(*) FROM tips WHERE status = 'pending_review'"))
    db.session.rollback()
    lat: list[float] = []
    claimed: list[int] = []
    errors: list[str] = []
    stop_at = time.monotonic() + args.claim_seconds

    def moderator(staff_id, offset):
        try:
            with app.app_context():
                me = db.session.get(StaffUser, staff_id)
                db.session.commit()
                time.sleep(offset)  # moderators start spread over the think time
                while time.monotonic() < stop_at:
                    t0 = time.perf_counter()
                    tip = claim_next(me)
                    lat.append((time.perf_counter() - t0) * 1000)
                    if tip is None:
                        break
                    claimed.append(tip.id)
                    time.sleep(args.think)
                    t0 = time.perf_counter()
                    done = db.session.execute(update(Tip).where(Tip.id == tip.id, Tip.claimed_by == staff_id)
                                              .values(status="rejected", claimed_by=None, lease_until=None)).rowcount
                    db.session.commit()
                    if done != 1:
                        errors.append(f"moderator {staff_id} lost tip {tip.id}")
                db.session.remove()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(f"{type(exc).__name__}: {exc}")

    # one claim with the statements captured, for the plans
    with app.app_context():
        me = db.session.get(StaffUser, staff_ids[0])
        CAPTURED.on = True
        tip = claim_next(me)
        CAPTURED.on = False
        db.session.execute(update(Tip).where(Tip.id == tip.id).values(status="rejected"))
        db.session.commit()
        CAPTURED.on = True
        claim_next(me)  # the "held lease" path is the first statement of every claim: captured above; this is the next one
        CAPTURED.on = False
        db.session.execute(update(Tip).where(Tip.claimed_by == me.id, Tip.status == "pending_review")
                           .values(status="rejected"))
        db.session.commit()
    threads = [threading.Thread(target=moderator, args=(sid, args.think * i / len(staff_ids)), daemon=True)
               for i, sid in enumerate(staff_ids)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=args.claim_seconds + args.think + 60)
    elapsed = time.monotonic() - began
    doubles = len(claimed) - len(set(claimed))
    report(f"moderators' claim ({len(staff_ids)} moderators, {pending:,} pending)", lat, results)
    results["claim"] = {"claims": len(claimed), "seconds": elapsed, "doubles": doubles, "errors": errors[:5],
                        "pending": pending}
    print(f"  {len(claimed)} claims in {elapsed:.0f} s ({len(claimed) / elapsed:.1f}/s), double claims {doubles}, "
          f"errors {len(errors)} {errors[:3]}")
    return not errors and doubles == 0


def bench_intake(app, c, samples, rng, results):
    """The intake job (moderation.intake.process_tip) on fresh tips with one photo each, at this table
    size: photo checks (sha256, the dedup lookup, indexing the hash), nearby tickets, reporter signals,
    grid, the decision to pending_review. WeChat's text/media checks are skipped (the residents are
    closing accounts with no openid): their cost is the HTTP calls, measured apart in bench/intake.py."""
    from sqlalchemy import text

    from app.extensions import db
    from moderation.intake import process_tip

    now = datetime.now(timezone.utc)
    rid = db.session.scalar(text("INSERT INTO residents (openid, no_reward, blocked, created_at, closing_at) "
                                 "VALUES (:o, false, false, :now, :now) RETURNING id"),
                            {"o": f"oBenchIntake{rng.getrandbits(32)}", "now": now})
    tip_ids = []
    for i in range(samples):
        lat, lng = CITIES[i % len(CITIES)]
        tip_id = db.session.scalar(text(
            "INSERT INTO tips (resident_id, idempotency_key, request_hash, category, description, lat, lng, coord_in, "
            "status, status_changed_at, priority, signals, candidates, flagged, created_at) VALUES (:r, :k, 'h', "
            "'road_damage', '路面坑洞', :lat, :lng, 'wgs84', 'received', :now, 0, '{}', '[]', false, :now) RETURNING id"),
            {"r": rid, "k": f"intake{i}", "lat": lat + rng.uniform(-0.1, 0.1), "lng": lng + rng.uniform(-0.1, 0.1),
             "now": now})
        phash = rng.getrandbits(64)
        db.session.execute(text(
            "INSERT INTO photos (resident_id, tip_id, position, sha256, phash, width, height, mime, size_bytes, "
            "original_key, display_key, thumb_key, created_at) VALUES (:r, :t, 0, :sha, :ph, 1920, 1440, "
            "'image/jpeg', 496195, 'o/x', 'd/x', 't/x', :now)"),
            {"r": rid, "t": tip_id, "sha": f"{rng.getrandbits(256):064x}",
             "ph": phash - (1 << 64) if phash >= 1 << 63 else phash, "now": now})
        tip_ids.append(tip_id)
    db.session.commit()
    wall, cpu = [], []
    for i, tip_id in enumerate(tip_ids):
        CAPTURED.on = i < 2
        t0, c0 = time.perf_counter(), time.process_time()
        outcome = process_tip(tip_id)
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
        CAPTURED.on = False
        if outcome != "pending_review":
            print(f"  tip {tip_id}: {outcome}")
    report("intake job (process_tip, WeChat checks apart)", wall, results)
    results["intake cpu"] = {"p50": pct(cpu, 50), "mean": statistics.fmean(cpu)}
    print(f"  intake job CPU in the process: p50 {pct(cpu, 50):.2f} ms, mean {statistics.fmean(cpu):.2f} ms")


class BillHandler(http.server.BaseHTTPRequestHandler):
    bill_path: Path = None

    def do_POST(self):  # noqa: N802
        from bench.reconcile import BillHandler as Base

        Base.bill_path = self.bill_path
        Base.do_POST(self)

    def log_message(self, *args):
        pass


def bench_reconcile(app, c, db_url, results, tmp: Path) -> bool:
    """The day's bill (all its packets, one 1 fen off, one missing) served over HTTP; reconcile_day in a
    fresh process (bench/reconcile.py's child) with its peak RSS."""
    from sqlalchemy import text

    from app.extensions import db
    from bench.reconcile import _yuan

    rows = db.session.execute(text("SELECT id, mch_billno, amount_fen FROM payouts WHERE business_day = :d "
                                   "AND status = 'sent' ORDER BY id"), {"d": DAY}).all()
    db.session.rollback()
    mch = app.config["WECHAT_MCH_ID"]
    bill = tmp / "bill.csv"
    balance = 10 ** 12
    count = expense = 0
    with bill.open("w", encoding="utf-8") as out:
        out.write("记账时间,微信支付业务单号,资金流水单号,业务名称,业务类型,收支类型,收支金额（元）,账户结余（元）,"
                  "资金变更提交申请人,备注,业务凭证号\r\n")
        for n, (pid, billno, amount) in enumerate(rows):
            if n == 7:
                continue  # missing in the bill
            amount += 1 if n == 11 else 0  # one row 1 fen off
            balance -= amount
            count += 1
            expense += amount
            cells = [f"2026-11-20 09:{(n // 60) % 60:02d}:{n % 60:02d}", f"1000041701{pid:018d}", f"{pid:028d}",
                     "现金红包", "红包发放", "支出", _yuan(amount), _yuan(balance), "api", "红包发放", billno]
            out.write(",".join("`" + x for x in cells) + "\r\n")
        out.write("资金流水总笔数,收入笔数,收入金额,支出笔数,支出金额\r\n")
        out.write(f"`{count},`0,`0.00,`{count},`{_yuan(expense)}\r\n")
    assert mch
    BillHandler.bill_path = bill
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), BillHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    pay_base = f"http://127.0.0.1:{server.server_address[1]}/"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BENCH_INSTANCE": str(tmp / "instance")}
    outs = {}
    for mode in ("import", "run"):
        profile = ["-m", "cProfile", "-o", os.environ["BENCH_PROFILE"]] if mode == "run" and os.environ.get("BENCH_PROFILE") else []
        proc = subprocess.run([sys.executable, *profile, str(ROOT / "bench" / "reconcile.py"), "--child", mode, "--db", db_url,
                               "--pay-base", pay_base], capture_output=True, text=True, env=env, cwd=ROOT)
        if proc.returncode != 0:
            print(proc.stderr[-3000:])
            server.shutdown()
            return False
        outs[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
    server.shutdown()
    run = outs["run"]
    results["reconcile"] = {"packets": len(rows), "bill_mb": bill.stat().st_size / 1e6, **run,
                            "import_peak_mb": outs["import"]["peak_mb"]}
    print(f"  reconcile_day: {run['seconds']:.1f} s ({run['cpu_seconds']:.1f} s CPU in the process) for {run['rows']:,} bill rows ({len(rows):,} packets in the "
          f"ledger) — {run['status']}, matched {run['matched']:,}, exceptions {run['exceptions']} (goal ≤ 60 s)")
    print(f"  peak RSS: imports only {outs['import']['peak_mb']:.1f} MB, reconciling {run['peak_mb']:.1f} MB "
          f"(goal < 200 MB)")
    return run["status"] != "failed" and run["seconds"] <= 60 and run["peak_mb"] < 200


CAPTURED: Captured = None  # set in main


def main() -> int:
    global CAPTURED
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default=os.environ.get("BENCH_DATABASE_URL",
                                                             "postgresql://postgres@127.0.0.1:5432/bench_province"))
    parser.add_argument("--redis", default=os.environ.get("REDIS_URL"))
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = 10 M tips (see the docstring)")
    parser.add_argument("--day-packets", type=int, default=300_000)
    parser.add_argument("--skip-load", action="store_true", help="measure the data already loaded")
    parser.add_argument("--load-only", action="store_true")
    parser.add_argument("--only", default="claim,mytips,nearby,dedup,intake,hazards,feed,finance,reconcile")
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--dedup-samples", type=int, default=1000)
    parser.add_argument("--moderators", type=int, default=50)
    parser.add_argument("--think", type=float, default=10.0, help="seconds a moderator takes per decision")
    parser.add_argument("--claim-seconds", type=float, default=40.0)
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()

    import tempfile

    from app import create_app
    from app.config import normalize_database_url
    from app.extensions import db
    from bench.common import embedded_redis_stopped, reset_database

    db_url = normalize_database_url(args.database)
    if "bench" not in db_url.rsplit("/", 1)[-1]:
        raise SystemExit("the database name must contain 'bench'")
    tmp = Path(tempfile.mkdtemp(prefix="bench-province-"))
    config = {"APP_ENV": "development", "SQLALCHEMY_DATABASE_URI": db_url, "INSTANCE_PATH": str(tmp / "instance"),
              "LOG_LEVEL": "WARNING", "LOG_JSON": False,
              "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": args.moderators + 5, "max_overflow": 5}}
    if args.redis:
        config["REDIS_URL"] = args.redis
    results: dict = {"scale": args.scale, "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    failures: list[str] = []
    with embedded_redis_stopped(tmp / "instance"):
        if not args.skip_load:
            reset_database(db_url)
        app = create_app(config)
        with app.app_context():
            c = counts_for(args.scale, args.day_packets)
            if not args.skip_load:
                print(f"loading scale {args.scale}: {c}", flush=True)
                load(app, args.scale, args.day_packets)
            else:  # the counts of what is there
                from sqlalchemy import text

                c["residents"] = db.session.scalar(text("SELECT max(id) FROM residents"))
                c["hazards"] = db.session.scalar(text("SELECT max(id) FROM hazards"))
                db.session.rollback()
            table_sizes = sizes(app)
            results["tables"] = {name: {"rows": rows, "table_bytes": tb, "index_bytes": ib}
                                 for name, rows, tb, ib in table_sizes}
            print("tables (rows, table, indexes):")
            for name, rows, tb, ib in table_sizes[:14]:
                print(f"  {name:<24} {rows:>12,}  {tb / 2**20:9.1f} MB  {ib / 2**20:9.1f} MB")
            big = {name for name, rows, _, _ in table_sizes if rows > BIG_TABLE_ROWS}
            if args.load_only:
                return 0
            CAPTURED = Captured(db.engine)
            rng = random.Random(18)
            only = set(args.only.split(","))
            builders = {"mytips": bench_mytips, "nearby": bench_nearby, "hazards": bench_hazards,
                        "feed": bench_feed, "finance": bench_finance}
            for name in ("claim", "mytips", "nearby", "dedup", "intake", "hazards", "feed", "finance", "reconcile"):
                if name not in only:
                    continue
                print(f"[{name}]", flush=True)
                if name == "claim":
                    if not bench_claim(app, c, args, results):
                        failures.append("claim: errors or double claims")
                elif name == "intake":
                    bench_intake(app, c, max(50, args.samples // 2), rng, results)
                elif name == "dedup":
                    bench_dedup(app, c, args.dedup_samples, rng, results)
                    if results["dedup recall"]["recall"] < 1.0:
                        failures.append("dedup: recall below 1.0")
                elif name == "reconcile":
                    if not bench_reconcile(app, c, db_url, results, tmp):
                        failures.append("reconcile: failed or over its goals")
                    continue
                else:
                    for label, calls in builders[name](app, c, args.samples, rng):
                        timed(label, calls, CAPTURED, results)
                failures += CAPTURED.explain(db.engine, name, big)
    results["failures"] = failures
    if CAPTURED is not None:
        results["pages"] = CAPTURED.pages
        print("pages touched by one call of each statement shape (EXPLAIN ANALYZE, BUFFERS):",
              ", ".join(f"{k} {v:,}" for k, v in CAPTURED.pages.items()))
    if args.json:
        Path(args.json).write_text(json.dumps(results, ensure_ascii=False, indent=1, default=str))
    for line in failures:
        print("FAIL:", line)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
