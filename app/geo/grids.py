"""Loading grid polygons: `import_grids(FeatureCollection | path)` and `ensure_demo_grids()`.

The whole file is validated before anything is written (one bad feature → nothing imported, and
the error names the feature). Grids are upserted by code; a grid whose polygon, name or town
changed gets a new `updated_at`, which is how other processes notice and rebuild their index.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import shapely
from shapely.geometry import shape
from sqlalchemy import select

from app.extensions import db
from app.geo.coords import EARTH_RADIUS_M
from app.geo.models import Grid, Town
from app.models.base import utcnow

_WGS84_CRS = {"urn:ogc:def:crs:OGC:1.3:CRS84", "urn:ogc:def:crs:EPSG::4326", "EPSG:4326"}
_M_PER_DEG = math.pi * EARTH_RADIUS_M / 180


class GridImportError(ValueError):
    """The file cannot be imported; the message names the feature and the problem."""


def import_grids(source: str | Path | dict, *, commit: bool = True) -> dict:
    """Upsert towns and grids from a GeoJSON FeatureCollection (WGS-84 lng/lat).

    Feature properties: code, name, town_code, town_name (or town); optional community (社区/村), synthetic.
    Returns {"towns": {"created", "updated"}, "grids": {"created", "updated", "unchanged"}}.
    """
    collection = _read(source)
    features = [_parse_feature(i, f) for i, f in enumerate(collection["features"])]
    _check_unique(features)
    summary = _upsert(features)
    if commit:
        db.session.commit()
        from app.geo.index import invalidate_index

        invalidate_index()
    else:
        db.session.flush()
    return summary


def ensure_demo_grids() -> str:
    """Load the synthetic demo grids when the database has no grids at all (for `init` and demos)."""
    from app.geo.demo import generate_demo_grids

    existing = db.session.scalar(select(db.func.count(Grid.id)))
    if existing:
        official = db.session.scalar(select(db.func.count(Grid.id)).where(Grid.synthetic.is_(False)))
        lacking = db.session.scalar(select(db.func.count(Grid.id)).where(Grid.community.is_(None)))
        if not official and lacking:  # demo grids loaded before they had 社区: give them theirs
            summary = import_grids(generate_demo_grids())
            return f"{summary['grids']['updated']} synthetic demo grids given their 社区"
        return f"{existing} grids present, demo grids not loaded"
    summary = import_grids(generate_demo_grids())
    return f"{summary['grids']['created']} synthetic demo grids loaded in {summary['towns']['created']} towns"


# --- parsing ----------------------------------------------------------------------------------

def _read(source) -> dict:
    if isinstance(source, dict):
        collection = source
    else:
        path = Path(source)
        try:
            collection = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise GridImportError(f"file not found: {path}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise GridImportError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(collection, dict) or collection.get("type") != "FeatureCollection":
        raise GridImportError("expected a GeoJSON FeatureCollection at the top level")
    crs = ((collection.get("crs") or {}).get("properties") or {}).get("name")
    if crs and crs not in _WGS84_CRS:
        raise GridImportError(f"coordinates must be WGS-84 longitude/latitude; the file declares {crs}")
    if not isinstance(collection.get("features"), list) or not collection["features"]:
        raise GridImportError("the FeatureCollection has no features")
    return collection


def _text(where: str, props: dict, key: str, limit: int, required: bool = True) -> str | None:
    value = props.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, (str, int)) or isinstance(value, bool) or not str(value).strip():
        raise GridImportError(f"{where}: property '{key}' is missing or empty")
    value = str(value).strip()
    if len(value) > limit:
        raise GridImportError(f"{where}: property '{key}' is longer than {limit} characters")
    return value


def _parse_feature(index: int, feature) -> dict:
    where = f"feature {index}"
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise GridImportError(f"{where}: not a GeoJSON Feature")
    props = feature.get("properties") or {}
    code = _text(where, props, "code", 32)
    where = f"feature {index} (code {code})"
    geometry = feature.get("geometry")
    if not isinstance(geometry, dict) or geometry.get("type") not in ("Polygon", "MultiPolygon"):
        raise GridImportError(f"{where}: geometry must be a Polygon or MultiPolygon")
    try:
        geom = shape(geometry)
    except Exception as exc:  # shapely raises several types for malformed coordinates
        raise GridImportError(f"{where}: malformed coordinates ({exc})") from None
    if geom.is_empty:
        raise GridImportError(f"{where}: the polygon is empty")
    min_lng, min_lat, max_lng, max_lat = geom.bounds
    if not (-180 <= min_lng <= max_lng <= 180 and -90 <= min_lat <= max_lat <= 90):
        raise GridImportError(f"{where}: coordinates out of range; GeoJSON order is [longitude, latitude] in WGS-84")
    if not geom.is_valid:
        raise GridImportError(f"{where}: invalid polygon ({shapely.is_valid_reason(geom)})")
    if geom.area == 0:
        raise GridImportError(f"{where}: the polygon has no area")
    town_name = _text(where, props, "town_name", 64, required=False) or _text(where, props, "town", 64, required=False)
    return {
        "code": code,
        "name": _text(where, props, "name", 128),
        "town_code": _text(where, props, "town_code", 32),
        "town_name": town_name,
        "community": _text(where, props, "community", 64, required=False),
        "geometry": json.dumps({"type": geometry["type"], "coordinates": geometry["coordinates"]},
                               separators=(",", ":")),
        "min_lat": min_lat, "min_lng": min_lng, "max_lat": max_lat, "max_lng": max_lng,
        "area_m2": round(_area_m2(geom), 1),
        "synthetic": props.get("synthetic") is True,
    }


def _area_m2(geom) -> float:
    """Planar area on a local equirectangular projection: well under 0.1 % off at grid scale."""
    lat = geom.centroid.y
    return geom.area * _M_PER_DEG * _M_PER_DEG * math.cos(math.radians(lat))


def _check_unique(features: list[dict]) -> None:
    seen = set()
    for feature in features:
        if feature["code"] in seen:
            raise GridImportError(f"grid code {feature['code']} appears twice in the file")
        seen.add(feature["code"])


# --- writing ----------------------------------------------------------------------------------

def _upsert(features: list[dict]) -> dict:
    summary = {"towns": {"created": 0, "updated": 0}, "grids": {"created": 0, "updated": 0, "unchanged": 0}}
    towns = {t.code: t for t in db.session.scalars(select(Town))}
    renamed: set[str] = set()
    for feature in features:
        code, name = feature["town_code"], feature["town_name"]
        town = towns.get(code)
        if town is None:
            if not name:
                raise GridImportError(f"grid {feature['code']}: town {code} is new, so 'town_name' is required")
            towns[code] = town = Town(code=code, name=name)
            db.session.add(town)
            summary["towns"]["created"] += 1
        elif name and town.name != name:
            town.name = name
            renamed.add(code)
            summary["towns"]["updated"] += 1
    db.session.flush()

    grids = {g.code: g for g in db.session.scalars(select(Grid))}
    now = utcnow()
    for feature in features:
        values = {k: v for k, v in feature.items() if k not in ("code", "town_code", "town_name")}
        values["town_id"] = towns[feature["town_code"]].id
        grid = grids.get(feature["code"])
        if grid is None:
            db.session.add(Grid(code=feature["code"], updated_at=now, **values))
            summary["grids"]["created"] += 1
            continue
        changed = feature["town_code"] in renamed
        for key, value in values.items():
            if getattr(grid, key) != value:
                setattr(grid, key, value)
                changed = True
        if changed:
            grid.updated_at = now
            summary["grids"]["updated"] += 1
        else:
            summary["grids"]["unchanged"] += 1
    db.session.flush()
    return summary
