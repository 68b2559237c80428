"""The console's maps in a real browser (Debian's chromium through Playwright): Leaflet draws the
ticket's grid and point and the tickets' map view by status, every request stays on this machine, and
a configured tile layer is fetched with its key. Screenshots go to tests/output/screenshots/ (not
committed). Fails (never skips) when chromium is missing."""
import io
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from PIL import Image
from sqlalchemy import update
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from app.geo.webmap import POINT_COLOUR, STATUS_COLOURS
from app.hazards.models import Hazard

from .test_console_browser import CHROMIUM, CHROMIUM_ARGS

SCREENSHOTS = Path(__file__).resolve().parent.parent / "output" / "screenshots"
# (grid index, status): tickets spread over the city, in every open state
TICKETS = [(0, None), (300, "accepted"), (600, "handling"), (900, "resolved"), (1200, "returned"),
           (1500, "reopened"), (1800, "handling"), (2100, "verified"), (2400, None), (2700, "accepted")]
STREETS = ["鸿福路", "可园北路", "中山东路", "连升中路", "长青南路", "常平大道", "新竹路", "康乐南路", "香市路", "花园街"]


def serve(application):
    server = make_server("127.0.0.1", 0, application, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


@pytest.fixture
def tickets(hz):
    ids = {}
    for n, (index, status) in enumerate(TICKETS):
        hazard, _tip = hz.new_hazard(index)
        address = f"东莞市{hz.grid_point(index)[2].town.name}{STREETS[n]}{12 + 7 * n}号"
        hz.db.session.execute(update(Hazard).where(Hazard.id == hazard.id).values(address=address))
        hz.db.session.commit()
        if status:
            hz.set_status(hazard.id, status)
        ids[hazard.id] = status or "dispatched"
    hz.staff("sup_mapview", ["supervisor"])
    hz.db.session.remove()  # hold no SQLite lock while the server works
    return ids


def _login(page, base):
    page.goto(f"{base}/console/login")
    page.fill("input[name=username]", "sup_mapview")
    page.fill("input[name=password]", "password-123")
    page.click("button[type=submit]")


def _browser(p):
    return p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


def _count(page, selector):
    return page.evaluate("s => document.querySelectorAll(s).length", selector)


@pytest.mark.slow
def test_the_ticket_page_and_the_map_view_draw_in_a_browser(make_app, tickets):
    from playwright.sync_api import expect, sync_playwright

    server, thread = serve(make_app(WTF_CSRF_ENABLED=True, RATELIMIT_ENABLED=False))
    base = f"http://127.0.0.1:{server.server_port}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    first = next(iter(tickets))
    hosts, errors = set(), []
    try:
        with sync_playwright() as p:
            browser = _browser(p)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.on("request", lambda request: hosts.add(urlsplit(request.url).hostname))
                page.on("pageerror", lambda error: errors.append(str(error) + (error.stack or "")))
                page.on("console", lambda message: errors.append(message.text)
                        if message.type == "error" and "Failed to load resource" not in message.text else None)
                _login(page, base)
                page.goto(f"{base}/console/hazards/{first}")
                page.wait_for_selector(".webmap[data-ready], .webmap[data-error]", state="attached")
                assert (page.get_attribute(".webmap", "data-error"), errors) == (None, [])
                # the grid (and its faint neighbours) and the point, drawn as SVG inside the map's box
                assert _count(page, ".webmap path.leaflet-interactive") >= 3
                pin = page.locator(f'.webmap path.leaflet-interactive[fill="{POINT_COLOUR}"]')
                expect(pin).to_have_count(1)
                box, frame = pin.bounding_box(), page.locator(".webmap").bounding_box()
                assert frame["width"] > 300 and frame["height"] > 250
                assert frame["x"] < box["x"] < frame["x"] + frame["width"] - box["width"]
                assert frame["y"] < box["y"] < frame["y"] + frame["height"] - box["height"]
                expect(page.locator(".map-caption")).to_contain_text("东莞市莞城街道鸿福路12号")
                expect(page.locator(".map-nav")).to_have_text("导航")
                page.screenshot(path=str(SCREENSHOTS / "ticket-map.png"), full_page=True)

                page.goto(f"{base}/console/hazards/")
                page.click("#map-view")
                page.wait_for_selector('.webmap[data-ready="1"]')
                for status in set(tickets.values()):
                    expected = sum(1 for s in tickets.values() if s == status)
                    drawn = _count(page, f'.webmap path.leaflet-interactive[fill="{STATUS_COLOURS[status]}"]')
                    assert drawn >= expected, status  # other tests' tickets may share the database
                expect(page.locator('.map-legend li[data-status="handling"]')).to_contain_text("处置中")
                page.screenshot(path=str(SCREENSHOTS / "hazards-map.png"), full_page=True)
                # a point opens its ticket: popup with the link, which leads to the ticket page
                page.locator(f'.webmap path.leaflet-interactive[fill="{STATUS_COLOURS["reopened"]}"]').first.click()
                link = page.locator(".leaflet-popup-content a")
                expect(link).to_contain_text("工单 #")
                link.click()
                page.wait_for_url("**/console/hazards/*")
                expect(page.locator("h1")).to_contain_text("工单 #")
            finally:
                browser.close()
    finally:
        server.shutdown()
        thread.join(timeout=10)
    assert hosts == {"127.0.0.1"}  # Leaflet and the map script come from the app: nothing from a CDN
    for name in ("ticket-map.png", "hazards-map.png"):
        with Image.open(SCREENSHOTS / name) as shot:
            assert shot.width >= 1400 and len(shot.convert("RGB").resize((140, 100)).getcolors(maxcolors=14000)) > 50, name


def _tile_server(requests_seen):
    """A tile service on loopback: a 256 px light-blue PNG for every tile asked for."""
    buffer = io.BytesIO()
    Image.new("RGB", (256, 256), (200, 225, 245)).save(buffer, "PNG")
    png = buffer.getvalue()

    @Request.application
    def tiles(request):
        requests_seen.append(request.full_path)
        return Response(png, mimetype="image/png")

    return serve(tiles)


@pytest.mark.slow
def test_a_configured_tile_layer_is_drawn_under_the_vectors_with_its_key(make_app, tickets):
    from playwright.sync_api import sync_playwright

    seen = []
    tile_server, tile_thread = _tile_server(seen)
    template = f"http://127.0.0.1:{tile_server.server_port}/t{{s}}/{{z}}/{{x}}/{{y}}.png?tk={{key}}"
    server, thread = serve(make_app(WTF_CSRF_ENABLED=True, RATELIMIT_ENABLED=False, MAP_TILE_URL=template,
                                    MAP_TILE_KEY="browser-key-1", MAP_TILE_SUBDOMAINS="01"))
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        with sync_playwright() as p:
            browser = _browser(p)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                _login(page, base)
                page.goto(f"{base}/console/hazards/{next(iter(tickets))}")
                page.wait_for_selector('.webmap[data-ready="1"]')
                page.wait_for_function("document.querySelectorAll('.webmap img.leaflet-tile-loaded').length >= 4")
                assert _count(page, ".webmap path.leaflet-interactive") >= 3  # vectors still over the tiles
                assert "天地图" not in page.inner_text(".leaflet-control-attribution")
                page.screenshot(path=str(SCREENSHOTS / "ticket-map-tiles.png"), full_page=True)
            finally:
                browser.close()
    finally:
        server.shutdown()
        tile_server.shutdown()
        thread.join(timeout=10)
        tile_thread.join(timeout=10)
    assert seen and all(path.endswith("?tk=browser-key-1") for path in seen)
    assert {path.split("/")[1] for path in seen} <= {"t0", "t1"}
    z, x, y = (int(part) for part in seen[0].split("?")[0].removesuffix(".png").split("/")[2:5])
    assert 12 <= z <= 18 and 0 <= x < 2 ** z and 0 <= y < 2 ** z
