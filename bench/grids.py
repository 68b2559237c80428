"""Grid lookup benchmark: locate() through the STRtree index vs a brute-force scan of every polygon.

    python bench/grids.py [--points 20000] [--database-url URL]

Without --database-url it works on a throw-away SQLite file with the synthetic demo grids
(~2,900 polygons), so it touches no real database. Prints lookups/s (per CPU second of this
process, so other load on the machine skews it less) and the ratios.
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import shapely  # noqa: E402
from shapely.geometry import Point  # noqa: E402


def _clock() -> float:
    """CPU time of this process: the figures stay comparable on a busy, shared machine."""
    return time.process_time()


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:>12,.0f} lookups/s  ({seconds / count * 1e6:8.1f} µs each)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=20000)
    parser.add_argument("--brute-points", type=int, default=200, help="points for the slow pure-Python scan")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    from bench.common import scratch_app

    with scratch_app("bench-grids-", args.database_url):
        run(args)
    return 0


def run(args) -> None:
    from flask_migrate import upgrade

    from app.geo.dongguan import BBOX
    from app.geo.grids import ensure_demo_grids
    from app.geo.index import get_index, locate

    upgrade()
    print("grids:", ensure_demo_grids())
    index = get_index()
    started = _clock()
    snap = index.snapshot()
    build = _clock() - started
    geoms, hits = snap.geometries, snap.hits
    print(f"index: {len(geoms):,} polygons, built from the database in {build * 1000:.0f} ms")

    rng = random.Random(42)  # the same points every run: ~1/4 fall outside Dongguan's outline
    points = [(rng.uniform(BBOX["min_lat"], BBOX["max_lat"]), rng.uniform(BBOX["min_lng"], BBOX["max_lng"]))
              for _ in range(args.points)]

    started = _clock()
    via_locate = [locate(lat, lng) for lat, lng in points]
    t_locate = _clock() - started

    tree = snap.tree
    started = _clock()
    via_tree = [tree.query(Point(lng, lat), predicate="intersects") for lat, lng in points]
    t_tree = _clock() - started

    started = _clock()
    via_vector = [shapely.intersects(geoms, Point(lng, lat)).nonzero()[0] for lat, lng in points]
    t_vector = _clock() - started

    sample = points[: args.brute_points]
    started = _clock()
    via_loop = [[i for i, g in enumerate(geoms) if g.intersects(Point(lng, lat))] for lat, lng in sample]
    t_loop = _clock() - started

    def code_of(found):
        return min((hits[int(i)].grid_code for i in found), default=None)

    assert [h.grid_code if h else None for h in via_locate] == [code_of(f) for f in via_tree]
    assert [code_of(f) for f in via_tree] == [code_of(f) for f in via_vector]
    assert [code_of(f) for f in via_tree[: len(sample)]] == [code_of(f) for f in via_loop]
    inside = sum(h is not None for h in via_locate)
    print(f"points: {len(points):,} uniform in the bounding box, {inside:,} inside a grid; all methods agree")
    print(f"locate() (index + exact test, public API)   {_rate(len(points), t_locate)}")
    print(f"STRtree.query(predicate='intersects') only  {_rate(len(points), t_tree)}")
    print(f"brute force, vectorised over all polygons   {_rate(len(points), t_vector)}")
    print(f"brute force, Python loop over all polygons  {_rate(len(sample), t_loop)}")
    print(f"ratio locate() / vectorised brute force: {t_vector / t_locate:,.1f}x")
    print(f"ratio locate() / Python-loop brute force: {(t_loop / len(sample)) / (t_locate / len(points)):,.1f}x")


if __name__ == "__main__":
    sys.exit(main())
