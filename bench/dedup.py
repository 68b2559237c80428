"""Near-duplicate photo lookup at city scale, on PostgreSQL: the band index against two scans.

    .venv/bin/python bench/dedup.py [--rows 1000000] [--queries 1000] [--scan-queries 20]
        [--database postgresql://postgres@127.0.0.1:5432/bench_moderation]

Builds a fresh database with the project's migrations, loads N random 64-bit hashes into
`photos` and their bands into `photo_hash_bands` with COPY, then answers the same queries three
ways, in the same run:
  - the index: moderation.dedup.find_near_hashes (the production code path, through SQLAlchemy);
  - a sequential scan in SQL: bit_count(int8send(phash # q)) <= d over every row;
  - an in-memory NumPy scan of the same hashes (numpy.bitwise_count), which is also the truth.
Half the queries are stored hashes with 0..d random bits flipped (each has at least one answer),
half are random. Prints p50/p99 per method, recall and precision of the index against the truth,
and the speed-up over the SQL scan. Hashes are uniform random (real pHashes cluster more, which
makes candidates per probe somewhat larger).
"""
from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def fresh_database(url: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()


def load(app, hashes: np.ndarray) -> float:
    """COPY the photos and their bands; indexes rebuilt after the load. Returns seconds."""
    from app.extensions import db
    from moderation import dedup

    started = time.perf_counter()
    raw = db.engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("ALTER TABLE photo_hash_bands DROP CONSTRAINT fk_photo_hash_bands_photo_id_photos")
        cur.execute("ALTER TABLE photo_hash_bands DROP CONSTRAINT pk_photo_hash_bands")
        cur.execute("DROP INDEX ix_photo_hash_bands_lookup")
        with cur.copy("COPY photos (id, sha256, phash, width, height, mime, size_bytes, original_key, display_key, "
                      "thumb_key, created_at) FROM STDIN") as copy:
            for start in range(0, len(hashes), 50_000):
                buf = io.StringIO()
                for i in range(start, min(start + 50_000, len(hashes))):
                    buf.write(f"{i + 1}\t{i + 1:064x}\t{int(hashes[i])}\t1\t1\timage/jpeg\t1\tk\tk\tk\t2026-01-01 00:00:00+00\n")
                copy.write(buf.getvalue())
        unsigned = hashes.view(np.uint64)
        with cur.copy("COPY photo_hash_bands (photo_id, band_key, phash) FROM STDIN") as copy:
            for start in range(0, len(hashes), 50_000):
                chunk = unsigned[start:start + 50_000]
                ids = np.arange(start + 1, start + 1 + len(chunk))
                buf = io.StringIO()
                for no, (offset, width) in enumerate(dedup.BANDS):
                    keys = (np.uint64(no) << np.uint64(dedup.BAND_SHIFT)) | ((chunk >> np.uint64(offset)) & np.uint64((1 << width) - 1))
                    for pid, key, value in zip(ids.tolist(), keys.tolist(), hashes[start:start + 50_000].tolist()):
                        buf.write(f"{pid}\t{key}\t{value}\n")
                copy.write(buf.getvalue())
        cur.execute("SELECT setval('photos_id_seq', %s)", (len(hashes),))
        cur.execute("ALTER TABLE photo_hash_bands ADD CONSTRAINT pk_photo_hash_bands PRIMARY KEY (photo_id, band_key)")
        cur.execute("CREATE INDEX ix_photo_hash_bands_lookup ON photo_hash_bands (band_key, phash, photo_id)")
        cur.execute("ALTER TABLE photo_hash_bands ADD CONSTRAINT fk_photo_hash_bands_photo_id_photos "
                    "FOREIGN KEY (photo_id) REFERENCES photos (id) ON DELETE CASCADE")
        raw.commit()
        driver = raw.driver_connection
        driver.autocommit = True
        cur = driver.cursor()
        cur.execute("VACUUM ANALYZE photos")
        cur.execute("VACUUM ANALYZE photo_hash_bands")  # visibility map: index-only scans
        driver.autocommit = False
    finally:
        raw.close()
    return time.perf_counter() - started


def make_queries(rng, hashes, count, distance):
    queries = []
    for i in range(count):
        if i % 2 == 0:
            value = int(hashes[rng.integers(len(hashes))]) & ((1 << 64) - 1)
            for bit in rng.choice(64, size=int(rng.integers(0, distance + 1)), replace=False):
                value ^= 1 << int(bit)
        else:
            value = int(rng.integers(0, 2 ** 63, dtype=np.int64)) * 2 + int(rng.integers(0, 2))
        queries.append(value - (1 << 64) if value >= 1 << 63 else value)
    return queries


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--scan-queries", type=int, default=20)
    parser.add_argument("--distance", type=int, default=8)
    parser.add_argument("--database", default=os.environ.get("BENCH_DATABASE_URL",
                                                             "postgresql://postgres@127.0.0.1:5432/bench_moderation"))
    parser.add_argument("--redis", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/6"))
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()

    from flask_migrate import upgrade
    from sqlalchemy import text

    from app import create_app
    from app.config import normalize_database_url
    from app.extensions import db
    from moderation import dedup

    fresh_database(args.database)
    app = create_app({"APP_ENV": "testing", "SQLALCHEMY_DATABASE_URI": normalize_database_url(args.database),
                      "REDIS_URL": args.redis, "LOG_LEVEL": "WARNING", "LOG_JSON": False})
    rng = np.random.default_rng(args.seed)
    hashes = rng.integers(-(2 ** 63), 2 ** 63 - 1, size=args.rows, dtype=np.int64, endpoint=True)
    with app.app_context():
        upgrade()
        load_s = load(app, hashes)
        print(f"loaded {args.rows:,} hashes ({args.rows * len(dedup.BANDS):,} band rows) in {load_s:.1f} s")
        queries = make_queries(rng, hashes, args.queries, args.distance)
        unsigned = hashes.view(np.uint64)

        # truth and the in-memory scan
        numpy_ms, truth = [], []
        for q in queries:
            started = time.perf_counter()
            hits = np.flatnonzero(np.bitwise_count(unsigned ^ np.uint64(q & ((1 << 64) - 1))) <= args.distance)
            numpy_ms.append((time.perf_counter() - started) * 1000)
            truth.append({int(i) + 1 for i in hits})

        # the index (warm up first: connection pool, plan cache, the OS page cache)
        for q in queries[:50]:
            dedup.find_near_hashes(q, args.distance)
        db.session.rollback()
        # The lookup runs inside the intake job's open transaction: the connection is checked out
        # and BEGIN sent already. Those two round trips (pool pre-ping, BEGIN) are timed apart.
        index_ms, begin_ms, found = [], [], []
        for q in queries:
            started = time.perf_counter()
            db.session.execute(text("SELECT 1"))
            begun = time.perf_counter()
            result = dedup.find_near_hashes(q, args.distance)
            index_ms.append((time.perf_counter() - begun) * 1000)
            begin_ms.append((begun - started) * 1000)
            found.append({pid for pid, _ in result})
            db.session.rollback()

        # the sequential scan in SQL (a few queries: each reads every row)
        scan_ms = []
        scan_sql = text("SELECT id FROM photos WHERE bit_count(int8send(phash # :q)) <= :d")
        for q in queries[:args.scan_queries]:
            started = time.perf_counter()
            ids = set(db.session.execute(scan_sql, {"q": q, "d": args.distance}).scalars())
            scan_ms.append((time.perf_counter() - started) * 1000)
            truth_ids = truth[queries.index(q)]
            assert ids == truth_ids, "SQL scan and NumPy scan disagree"
            db.session.rollback()

    relevant = sum(len(t) for t in truth)
    retrieved = sum(len(f & t) for f, t in zip(found, truth))
    false_pos = sum(len(f - t) for f, t in zip(found, truth))
    print(f"queries: {len(queries)} (half near a stored hash), distance {args.distance}, "
          f"answers in truth: {relevant}")
    for name, values in (("band index (SQL)", index_ms), ("checkout, ping, BEGIN", begin_ms),
                         ("sequential SQL scan", scan_ms),
                         ("NumPy in-memory scan", numpy_ms)):
        print(f"{name:22s} n={len(values):5d}  p50 {statistics.median(values):8.2f} ms  "
              f"p99 {percentile(values, 99):8.2f} ms  max {max(values):8.2f} ms")
    print(f"recall {retrieved / relevant if relevant else 1.0:.4f}  false positives {false_pos}")
    print(f"speed-up at p50 over the SQL scan: {statistics.median(scan_ms) / statistics.median(index_ms):.0f}x; "
          f"over the NumPy scan: {statistics.median(numpy_ms) / statistics.median(index_ms):.1f}x")
    return 0 if retrieved == relevant and false_pos == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
