"""The console's maps carry what they should: a ticket's and a tip's point in its grid with the address,
the grid's name, its 镇街 and a 导航 link in GCJ-02; the tickets' map view coloured by status; the
review queue's tips. No page loads anything from another site (Leaflet is served by the app)."""
import html
import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select, update

from app.geo.coords import wgs84_to_gcj02
from app.geo.webmap import STATUS_COLOURS
from app.hazards.models import Hazard

from .test_console import login

ALLOWED_EXTERNAL = {"uri.amap.com"}  # the 导航 link, opened by a person, never loaded by the page


def map_data(page: str) -> list[dict]:
    return [json.loads(html.unescape(raw)) for raw in re.findall(r"data-map='([^']*)'", page)]


def external_references(page: str) -> set[str]:
    """Hosts of every absolute URL in the page, and of every src/href that is not a local path."""
    hosts = {urlsplit(html.unescape(u)).hostname for u in re.findall(r"(?:https?:)?//[^\s\"'<>)]+", page)}
    for attr in re.findall(r"\b(?:src|href)=[\"']([^\"']*)[\"']", page):
        if not (attr.startswith("/") or attr.startswith("?") or attr.startswith("#")) or attr.startswith("//"):
            hosts.add(urlsplit(html.unescape(attr)).hostname or attr)
    return {h for h in hosts if h} - ALLOWED_EXTERNAL


@pytest.fixture
def places(hz, client):
    """Three tickets in three grids (one handling, one returned), a pending tip, a supervisor signed in."""
    tickets = []
    for index, status, address in ((0, None, "东莞市莞城街道可园北路 12 号"), (40, "handling", "东莞市东城街道东纵大道 8 号"),
                                   (80, "returned", None)):
        hazard, _tip = hz.new_hazard(index)
        hz.db.session.execute(update(Hazard).where(Hazard.id == hazard.id).values(address=address))
        hz.db.session.commit()
        if status:
            hz.set_status(hazard.id, status)
        tickets.append(hazard.id)
    lat, lng, grid = hz.grid_point(120)
    tip = hz.tip(lat, lng, grid_id=grid.id, grid_code=grid.code, address="东莞市南城街道鸿福路 200 号", flagged=True)
    hz.db.session.commit()
    login(client, hz, "sup_map", ["supervisor"])
    return {"tickets": tickets, "tip": tip.id, "tip_grid": grid, "client": client}


def test_a_ticket_page_shows_its_point_grid_address_and_a_gcj02_navigation_link(places, hz):
    from app.geo.models import Grid

    client, hazard_id = places["client"], places["tickets"][0]
    hazard = hz.db.session.get(Hazard, hazard_id)
    grid = hz.db.session.get(Grid, hazard.grid_id)
    page = client.get(f"/console/hazards/{hazard_id}").get_data(as_text=True)
    (data,) = map_data(page)
    assert data["tiles"] is None  # the tests run offline: vectors on a plain background
    assert (data["points"][0]["lat"], data["points"][0]["lng"]) == (hazard.lat, hazard.lng)
    main = [g for g in data["grids"] if g["properties"]["main"]]
    assert len(main) == 1 and main[0]["geometry"] == json.loads(grid.geometry)
    assert grid.community and main[0]["properties"]["label"] == f"{grid.name} · {grid.community} · {grid.town.name}"
    assert len(data["grids"]) > 1  # neighbouring grids, faint, for a sense of place
    # the map is about four grid widths wide around the grid it fits: the grids beside it, almost two widths to
    # each side, are drawn too (no blank holes), as is every grid touching it
    from shapely.geometry import Point, shape

    nearby = {g.id: shape(json.loads(g.geometry)) for g in hz.db.session.scalars(
        select(Grid).where(Grid.max_lat >= grid.min_lat - 0.05, Grid.min_lat <= grid.max_lat + 0.05,
                           Grid.max_lng >= grid.min_lng - 0.05, Grid.min_lng <= grid.max_lng + 0.05))}
    own = nearby[grid.id]
    c_lat, c_lng, width = (grid.min_lat + grid.max_lat) / 2, (grid.min_lng + grid.max_lng) / 2, grid.max_lng - grid.min_lng
    wanted = {i for i, g in nearby.items() if i != grid.id and g.intersects(own.buffer(1e-6))}
    wanted |= {i for i, g in nearby.items() for dx in (-1.9 * width, 1.9 * width) if g.contains(Point(c_lng + dx, c_lat))}
    drawn = [g["geometry"] for g in data["grids"]]
    assert wanted and all(json.loads(hz.db.session.get(Grid, i).geometry) in drawn for i in wanted)
    assert "东莞市莞城街道可园北路 12 号" in page and grid.name in page and f"镇街：</strong>{grid.town.name}" in page
    assert f"社区：</strong>{grid.community}" in page
    nav = html.unescape(re.search(r'<a class="map-nav" href="([^"]+)"', page).group(1))
    query = parse_qs(urlsplit(nav).query)
    lng, lat = map(float, query["position"][0].split(","))
    assert (lat, lng) == pytest.approx(wgs84_to_gcj02(hazard.lat, hazard.lng), abs=1e-6)
    assert query["name"] == ["东莞市莞城街道可园北路 12 号"]
    blank = client.get(f"/console/hazards/{places['tickets'][2]}").get_data(as_text=True)
    assert "报料人未填写地址" in blank


def test_the_tickets_map_view_colours_open_tickets_by_status(places, hz):
    from app.geo.models import Grid

    client = places["client"]
    page = client.get("/console/hazards/?view=map").get_data(as_text=True)
    (data,) = map_data(page)
    by_id = {int(re.search(r"#(\d+)", p["label"]).group(1)): p for p in data["points"]}
    assert set(by_id) >= set(places["tickets"])
    first, handling, returned = (by_id[i] for i in places["tickets"])
    assert (first["colour"], handling["colour"], returned["colour"]) == (
        STATUS_COLOURS["dispatched"], STATUS_COLOURS["handling"], STATUS_COLOURS["returned"])
    assert handling["href"] == f"/console/hazards/{places['tickets'][1]}" and "处置中" in handling["lines"]
    legend = re.findall(r'<li data-status="(\w+)"><i style="background: (#\w+)"></i>([^<]+)</li>', page)
    assert {(s, c, label.split()[0]) for s, c, label in legend} >= {
        ("dispatched", STATUS_COLOURS["dispatched"], "已分拨"), ("handling", STATUS_COLOURS["handling"], "处置中"),
        ("returned", STATUS_COLOURS["returned"], "已退回")}
    assert 'id="list-view"' in page and "<table>" in page  # the list stays below the map
    listed = client.get("/console/hazards/").get_data(as_text=True)
    assert map_data(listed) == [] and 'href="/console/hazards/?view=map"' in listed
    # filters apply to the map too, and the map view keeps itself across a filter
    only = map_data(client.get("/console/hazards/?view=map&status=handling").get_data(as_text=True))[0]
    assert [p["status"] for p in only["points"]] == ["handling"]
    closed = map_data(client.get("/console/hazards/?view=map&status=closed").get_data(as_text=True))[0]
    assert closed["points"] == []
    grid = hz.db.session.get(Grid, hz.db.session.get(Hazard, places["tickets"][1]).grid_id)
    by_name = map_data(client.get(f"/console/hazards/?view=map&grid={grid.name}").get_data(as_text=True))[0]
    assert [p["href"] for p in by_name["points"]] == [f"/console/hazards/{places['tickets'][1]}"]


def test_the_review_queue_and_a_tip_show_the_tip_in_its_grid(places):
    client, grid = places["client"], places["tip_grid"]
    queue = client.get("/console/review/").get_data(as_text=True)
    (data,) = map_data(queue)
    (point,) = [p for p in data["points"] if p["href"] == f"/console/review/{places['tip']}"]
    assert point["status"] == "flagged" and "东莞市南城街道鸿福路 200 号" in point["lines"]
    assert any(g["geometry"] == json.loads(grid.geometry) for g in data["grids"])
    assert "待审核" in queue and "需注意" in queue
    page = client.get(f"/console/review/{places['tip']}").get_data(as_text=True)
    (tip_map,) = map_data(page)
    assert [g["properties"]["label"] for g in tip_map["grids"] if g["properties"]["main"]] == [
        f"{grid.name} · {grid.community} · {grid.town.name}"]
    assert "东莞市南城街道鸿福路 200 号" in page and 'class="map-nav"' in page


def test_a_tip_outside_every_grid_still_shows_its_point(places, hz):
    outside = hz.tip(22.5, 113.5, address=None)  # in the Pearl River, no grid
    hz.db.session.commit()
    page = places["client"].get(f"/console/review/{outside.id}").get_data(as_text=True)
    (data,) = map_data(page)
    assert data["grids"] == [] and (data["points"][0]["lat"], data["points"][0]["lng"]) == (22.5, 113.5)
    assert "不在任何网格内" in page and "报料人未填写地址" in page
    nav = html.unescape(re.search(r'<a class="map-nav" href="([^"]+)"', page).group(1))
    assert parse_qs(urlsplit(nav).query)["name"] == [f"报料 #{outside.id}"]  # the place still has a name


def test_no_console_page_loads_anything_from_another_site(places, hz, app):
    client = places["client"]
    with_maps = [f"/console/hazards/{places['tickets'][0]}", "/console/hazards/?view=map", "/console/review/",
                 f"/console/review/{places['tip']}"]
    for path in with_maps:
        page = client.get(path).get_data(as_text=True)
        assert external_references(page) == set(), path
        assert '<script src="/static/vendor/leaflet/leaflet.js">' in page and "/static/console/map.js" in page, path
    # every other console page without a parameter, as someone holding every role
    client.post("/console/logout")
    login(client, hz, "all_roles_map", ["supervisor", "finance", "admin"])
    others = sorted(r.rule for r in app.url_map.iter_rules()
                    if r.rule.startswith("/console") and "GET" in r.methods and not r.arguments
                    and r.rule not in ("/console/", "/console/login"))
    assert "/console/hazards/" in others and len(others) >= 5
    for path in others:
        reply = client.get(path)
        assert reply.status_code == 200, path
        assert external_references(reply.get_data(as_text=True)) == set(), path
    for asset in ("vendor/leaflet/leaflet.js", "vendor/leaflet/leaflet.css", "console/map.js",
                  "vendor/leaflet/LICENSE"):
        reply = client.get(f"/static/{asset}")
        assert reply.status_code == 200, asset
        reply.close()
    assert external_references('<script src="https://unpkg.com/leaflet.js"></script>') == {"unpkg.com"}
    assert external_references('<link href="//cdn.example/x.css">') == {"cdn.example"}
