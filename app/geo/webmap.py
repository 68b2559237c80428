"""What the console's web maps draw: tile settings, grid outlines and points, and a 导航 link.

Pages pass the dict these functions build to the `console/_map.html` macros, which hand it as JSON to
`static/console/map.js` (Leaflet, vendored under static/vendor/leaflet). Everything stored is WGS-84;
when the configured tiles are drawn in GCJ-02 (高德/腾讯 tiles, MAP_TILE_COORD=gcj02) every coordinate
is shifted here, so the browser never converts anything.
"""
from __future__ import annotations

import json
from urllib.parse import urlencode, urlsplit

from flask import current_app
from sqlalchemy import func, select

from app.extensions import db
from app.geo.coords import wgs84_to_gcj02
from app.geo.models import Grid

# A ticket's colour on the overview map, one per status (the legend reads STATUS_LABELS).
STATUS_COLOURS = {
    "reported": "#7f7f7f", "dispatched": "#1f77b4", "accepted": "#17becf", "handling": "#ff7f0e",
    "resolved": "#2ca02c", "verified": "#006d2c", "returned": "#d62728", "reopened": "#9467bd",
    "closed": "#444444",
}
POINT_COLOUR = "#d62728"
NEIGHBOUR_LIMIT = 40  # grids drawn around the one a point is in, for a sense of place offline
AMAP_MARKER = "https://uri.amap.com/marker"


def tile_settings(config=None) -> dict | None:
    """{"layers", "subdomains", "attribution"} for Leaflet, or None: vectors on a plain background.

    The default 天地图 layers need MAP_TILE_KEY (a 浏览器端 key bound to the console's domain); without
    one the map says so instead of showing broken tiles."""
    config = config if config is not None else current_app.config
    raw = (config.get("MAP_TILE_URL") or "none").strip()
    if raw.lower() == "none":
        return None
    key = config.get("MAP_TILE_KEY") or ""
    templates = raw.split()
    if any("{key}" in t for t in templates) and not key:
        return {"layers": [], "subdomains": "", "attribution": "", "missing": "底图未配置（缺少地图服务密钥）"}
    hosts = {urlsplit(t).hostname or "" for t in templates}
    attribution = "© 天地图" if any(h.endswith("tianditu.gov.cn") for h in hosts) else "底图 © " + "、".join(sorted(hosts))
    return {"layers": [t.replace("{key}", key) for t in templates],
            "subdomains": config.get("MAP_TILE_SUBDOMAINS") or "01234567", "attribution": attribution}


def amap_marker_url(lat: float, lng: float, name: str) -> str:
    """Opens the place in 高德地图 (its app on a phone, the web map elsewhere), which wants GCJ-02."""
    g_lat, g_lng = wgs84_to_gcj02(lat, lng)
    query = {"position": f"{g_lng:.6f},{g_lat:.6f}", "name": name or "隐患位置", "src": "renrenpai",
             "coordinate": "gaode", "callnative": "1"}
    return AMAP_MARKER + "?" + urlencode(query)


def place_map(lat: float, lng: float, *, grid_id: int | None, address: str | None, title: str,
              others: list[dict] | None = None) -> dict:
    """One point in its grid (neighbouring grids faint), the caption's facts and the 导航 link."""
    grid = db.session.get(Grid, grid_id) if grid_id is not None else None
    grids = []
    if grid is not None:
        grids.append(_grid_feature(grid, main=True))
        grids += [_grid_feature(g) for g in _neighbours(grid)]
    points = [_point(lat, lng, POINT_COLOUR, title, radius=8)] + list(others or [])
    return {
        "data": _payload(grids, points, focus="first"),
        "address": address or "",
        "grid": {"name": grid.name, "code": grid.code, "town": grid.town.name, "community": grid.community}
        if grid is not None else None,
        "lat": lat, "lng": lng,
        "nav_url": amap_marker_url(lat, lng, address or title),
    }


def tickets_map(hazards, *, category_names: dict, status_labels: dict, detail_url) -> dict:
    """Open tickets as points coloured by status, with a legend of the statuses shown."""
    points, shown = [], []
    for h in hazards:
        if h.status not in shown:
            shown.append(h.status)
        lines = [status_labels.get(h.status, h.status) + ("（已超时）" if h.overdue else ""),
                 h.department.name, h.address or ""]
        points.append(_point(h.lat, h.lng, STATUS_COLOURS.get(h.status, POINT_COLOUR),
                             f"工单 #{h.id} · {category_names.get(h.category_code, h.category_code)}",
                             href=detail_url(h.id), lines=[line for line in lines if line], status=h.status))
    order = list(STATUS_COLOURS)
    legend = [{"status": s, "label": status_labels.get(s, s), "colour": STATUS_COLOURS.get(s, POINT_COLOUR),
               "count": sum(1 for p in points if p["status"] == s)}
              for s in sorted(shown, key=lambda s: order.index(s) if s in order else len(order))]
    return {"data": _payload([_city_outline()], points, focus="all", towns=True), "legend": legend,
            "count": len(points)}


def tips_map(tips, *, category_names: dict, detail_url) -> dict:
    """The review queue: each pending tip in its grid (flagged ones stand out)."""
    grid_ids = {t.grid_id for t in tips if t.grid_id is not None}
    grids = db.session.scalars(select(Grid).where(Grid.id.in_(grid_ids))).unique().all() if grid_ids else []
    points = [_point(t.lat, t.lng, "#ff7f0e" if t.flagged else "#1f77b4",
                     f"报料 #{t.id} · {category_names.get(t.category, t.category)}", href=detail_url(t.id),
                     lines=[t.address or ""] if t.address else [], status="flagged" if t.flagged else "pending")
              for t in tips]
    legend = [{"status": "pending", "label": "待审核", "colour": "#1f77b4"},
              {"status": "flagged", "label": "需注意", "colour": "#ff7f0e"}]
    return {"data": _payload([_city_outline()] + [_grid_feature(g, main=True) for g in grids], points, focus="all",
                             towns=True),
            "legend": legend, "count": len(points)}


def _point(lat, lng, colour, label, *, radius=7, href=None, lines=(), status=None) -> dict:
    return {"lat": lat, "lng": lng, "colour": colour, "label": label, "radius": radius, "href": href,
            "lines": list(lines), "status": status}


def _grid_feature(grid: Grid, main: bool = False) -> dict:
    return {"type": "Feature", "geometry": json.loads(grid.geometry),
            "properties": {"label": " · ".join(filter(None, (grid.name, grid.community, grid.town.name))),
                           "main": main}}


def _city_outline() -> dict:
    """The city's outline (app/geo/dongguan.py, approximate): the frame of an overview map."""
    from app.geo.dongguan import OUTLINE

    return {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[list(p) for p in OUTLINE]]},
            "properties": {"label": "东莞市", "main": False, "frame": True}}


def _neighbours(grid: Grid) -> list[Grid]:
    """The grids around this one, nearest first, as far as the map shows: the map is about twice as wide
    as high and fits the grid's height, so the box reaches 1.5 grid widths to each side and one grid
    height above and below (a bounding-box test is enough). Nearest first, so the limit never leaves
    holes beside the point while far corners are drawn."""
    d_lat, d_lng = grid.max_lat - grid.min_lat, 1.5 * (grid.max_lng - grid.min_lng)
    c_lat, c_lng = (grid.min_lat + grid.max_lat) / 2, (grid.min_lng + grid.max_lng) / 2
    distance = (func.abs((Grid.min_lat + Grid.max_lat) / 2 - c_lat)
                + func.abs((Grid.min_lng + Grid.max_lng) / 2 - c_lng))
    query = (select(Grid).where(Grid.id != grid.id, Grid.max_lat >= grid.min_lat - d_lat,
                                Grid.min_lat <= grid.max_lat + d_lat, Grid.max_lng >= grid.min_lng - d_lng,
                                Grid.min_lng <= grid.max_lng + d_lng)
             .order_by(distance, Grid.id).limit(NEIGHBOUR_LIMIT))
    return list(db.session.scalars(query).unique())


def _payload(grids: list[dict], points: list[dict], *, focus: str, towns: bool = False) -> dict:
    """The JSON map.js reads, in the datum of the configured tiles. `towns`: the 镇街 names at their
    centres, drawn only without tiles (tiles carry their own names)."""
    from app.geo.dongguan import TOWNS

    tiles = tile_settings()
    labels = [{"label": name, "lat": lat, "lng": lng} for _code, name, lat, lng in TOWNS] if towns else []
    if current_app.config.get("MAP_TILE_COORD") == "gcj02" and tiles and tiles.get("layers"):
        grids = [_shift_feature(f) for f in grids]
        points, labels = ([{**p, **dict(zip(("lat", "lng"), wgs84_to_gcj02(p["lat"], p["lng"])))} for p in items]
                          for items in (points, labels))
    return {"tiles": tiles, "grids": grids, "points": points, "labels": labels, "focus": focus}


def _shift_feature(feature: dict) -> dict:
    def shift(coords):
        if coords and isinstance(coords[0], (int, float)):
            lat, lng = wgs84_to_gcj02(coords[1], coords[0])
            return [lng, lat]
        return [shift(c) for c in coords]

    geometry = feature["geometry"]
    return {**feature, "geometry": {**geometry, "coordinates": shift(geometry["coordinates"])}}
