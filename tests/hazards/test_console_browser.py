"""A real browser (Debian's chromium, headless, through Playwright) works a ticket in the console with
CSRF on: a department accepts and resolves it with a note and a photo; a supervisor verifies and
closes it. Fails (never skips) when chromium is missing."""
import threading

import pytest
from werkzeug.serving import make_server

from app.hazards.models import Hazard

from .test_dept_api import jpeg_bytes

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture
def live_console(make_app, hz):
    application = make_app(WTF_CSRF_ENABLED=True, RATELIMIT_ENABLED=False)
    server = make_server("127.0.0.1", 0, application, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


def _login(page, base, username):
    page.goto(f"{base}/console/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "password-123")
    page.click("button[type=submit]")


@pytest.mark.slow
def test_a_ticket_is_worked_to_closed_in_the_browser(live_console, hz, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    base = live_console
    hazard, _ = hz.new_hazard(0)
    hazard_id = hazard.id
    hz.staff("fire_browser", ["department"], "fire")
    hz.staff("sup_browser", ["supervisor"])
    photo = tmp_path / "after.jpg"
    photo.write_bytes(jpeg_bytes((30, 160, 60), (320, 240)))
    hz.db.session.remove()  # hold no SQLite lock while the server works

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page()
            _login(page, base, "fire_browser")
            page.goto(f"{base}/console/hazards/")
            expect(page.locator("h1")).to_have_text("工单")
            page.click(f"text=#{hazard_id}")
            page.wait_for_url(f"**/console/hazards/{hazard_id}")
            page.click("button:has-text('受理')")
            expect(page.locator(".flash")).to_contain_text("已变为「已受理」")
            form = page.locator("form:has(input[name=to][value=resolved])")
            form.locator("textarea[name=note]").fill("已清理楼道杂物")
            form.locator("input[type=file]").set_input_files(str(photo))
            form.locator("button").click()
            expect(page.locator(".flash")).to_contain_text("已变为「已处置」")
            expect(page.locator("img[alt^=处置照片]")).to_have_count(1)
            page.click("button:has-text('退出登录')")

            _login(page, base, "sup_browser")
            page.goto(f"{base}/console/hazards/{hazard_id}")
            page.click("button:has-text('核查通过')")
            expect(page.locator(".flash")).to_contain_text("已变为「已核查」")
            page.click("button:has-text('结案')")
            expect(page.locator(".flash")).to_contain_text("已变为「已结案」")
            expect(page.locator("text=当前状态没有可进行的操作")).to_be_visible()
        finally:
            browser.close()
    hz.db.session.expire_all()
    hazard = hz.db.session.get(Hazard, hazard_id)
    assert hazard.status == "closed" and hazard.resolution_note == "已清理楼道杂物"
    assert len(hazard.resolution_photo_ids) == 1
