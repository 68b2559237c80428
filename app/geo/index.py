"""Point → grid lookup: an STRtree over every grid polygon, built once per process from the database.

The tree narrows a point to the few polygons whose bounding boxes hold it, then the exact
point-in-polygon test (`intersects`, so a point on a boundary counts) decides. A point on the
edge two grids share belongs to the one with the smaller code, so the answer is deterministic.

Freshness: an import in this process drops the index at once (`invalidate_index`); other
processes compare a cheap fingerprint of the grids table (count, max id, max updated_at) at most
every GEO_INDEX_CHECK_SECONDS and rebuild when it moved.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import asdict, dataclass

import numpy as np
import shapely
from flask import current_app
from shapely.geometry import Point
from shapely.strtree import STRtree
from sqlalchemy import func, select

from app.extensions import db
from app.geo.dongguan import in_outline
from app.geo.models import Grid, Town

DEFAULT_CHECK_SECONDS = 30.0


@dataclass(frozen=True)
class GridHit:
    grid_id: int
    grid_code: str
    grid_name: str
    town_code: str
    town_name: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class _Snapshot:
    tree: STRtree | None
    geometries: np.ndarray
    hits: tuple[GridHit, ...]
    fingerprint: tuple


class GridIndex:
    """One per app per process (in app.extensions["geo_index"]); safe to share between threads."""

    def __init__(self, check_seconds: float = DEFAULT_CHECK_SECONDS):
        self.check_seconds = check_seconds
        self._snapshot: _Snapshot | None = None
        self._checked_at = 0.0
        self._lock = threading.Lock()
        self.builds = 0  # how many times the tree was (re)built; tests and the bench read it

    def invalidate(self) -> None:
        self._snapshot = None

    def snapshot(self) -> _Snapshot:
        snap = self._snapshot
        now = time.monotonic()
        if snap is not None and now - self._checked_at < self.check_seconds:
            return snap
        with self._lock:
            snap = self._snapshot
            if snap is not None and time.monotonic() - self._checked_at < self.check_seconds:
                return snap
            fingerprint = _fingerprint()
            if snap is None or snap.fingerprint != fingerprint:
                snap = self._snapshot = _build(fingerprint)
                self.builds += 1
            self._checked_at = time.monotonic()
            return snap

    def locate(self, lat: float, lng: float) -> GridHit | None:
        if not (_finite(lat) and _finite(lng)):
            return None
        snap = self.snapshot()
        if snap.tree is None:
            return None
        found = snap.tree.query(Point(lng, lat), predicate="intersects")
        if len(found) == 0:
            return None
        if len(found) == 1:
            return snap.hits[int(found[0])]
        return min((snap.hits[int(i)] for i in found), key=lambda hit: hit.grid_code)


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _fingerprint() -> tuple:
    row = db.session.execute(select(func.count(Grid.id), func.max(Grid.id), func.max(Grid.updated_at))).one()
    return tuple(row)


def _build(fingerprint: tuple) -> _Snapshot:
    rows = db.session.execute(
        select(Grid.id, Grid.code, Grid.name, Grid.geometry, Town.code, Town.name)
        .join(Town, Grid.town_id == Town.id).order_by(Grid.id)
    ).all()
    if not rows:
        return _Snapshot(None, np.empty(0, dtype=object), (), fingerprint)
    geometries = shapely.from_geojson([row[3] for row in rows])
    shapely.prepare(geometries)
    hits = tuple(GridHit(r[0], r[1], r[2], r[4], r[5]) for r in rows)
    return _Snapshot(STRtree(geometries), geometries, hits, fingerprint)


def get_index() -> GridIndex:
    """The current app's index, created on first use."""
    index = current_app.extensions.get("geo_index")
    if index is None:
        seconds = float(current_app.config.get("GEO_INDEX_CHECK_SECONDS", DEFAULT_CHECK_SECONDS))
        index = current_app.extensions.setdefault("geo_index", GridIndex(seconds))
    return index


def invalidate_index() -> None:
    """Drop this process's index so the next lookup rebuilds it (after grids change)."""
    index = current_app.extensions.get("geo_index")
    if index is not None:
        index.invalidate()


def locate(lat: float, lng: float) -> GridHit | None:
    """The grid holding a WGS-84 point, or None when no grid does."""
    return get_index().locate(lat, lng)


def in_service_area(lat: float, lng: float) -> bool:
    """Inside some grid, or inside Dongguan's outline (for areas no grid covers yet)."""
    if not (_finite(lat) and _finite(lng)):
        return False
    return locate(lat, lng) is not None or in_outline(lat, lng)
