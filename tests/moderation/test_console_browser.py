"""A real browser (Debian's chromium, headless, through Playwright) drives the review console: log in,
claim with the keyboard, approve one tip and reject another with the keyboard; then the resident
sees the outcome through the residents' API. Fails (never skips) when chromium is missing."""
import io
import threading
import uuid

import pytest
from werkzeug.serving import make_server

from app.extensions import db
from moderation import intake
from tests.media.corpus import encode, street_photo
from tests.moderation.factories import make_staff, point_in_grid

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture
def live_console(make_app, sandbox_config, db, reference_data):
    """The app with CSRF on, served on a free loopback port from a thread."""
    application = make_app(**sandbox_config, WTF_CSRF_ENABLED=True, RATELIMIT_ENABLED=False)
    server = make_server("127.0.0.1", 0, application, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    with application.app_context():
        yield application, f"http://127.0.0.1:{server.server_port}"
        db.session.remove()
    server.shutdown()
    thread.join(timeout=10)


def _resident_tip(client, wechat_sandbox, seed: int, description: str) -> tuple[dict, int]:
    code = wechat_sandbox.login_code(f"o_{uuid.uuid4().hex[:20]}")
    token = client.post("/api/mp/v1/auth/login", json={"code": code}).get_json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    photo = client.post("/api/mp/v1/photos", headers=headers, content_type="multipart/form-data",
                        data={"file": (io.BytesIO(encode(street_photo(seed, (640, 480)), "JPEG", quality=85)),
                                       "p.jpg")})
    assert photo.status_code == 201, photo.get_json()
    lat, lng = point_in_grid()
    body = {"category": "lpg_illegal", "description": description,
            "location": {"lat": lat, "lng": lng, "coord": "wgs84"}, "photo_ids": [photo.get_json()["id"]]}
    tip = client.post("/api/mp/v1/tips", json=body, headers={**headers, "Idempotency-Key": str(uuid.uuid4())})
    assert tip.status_code == 201, tip.get_json()
    return headers, tip.get_json()["id"]


@pytest.mark.slow
def test_moderator_approves_and_rejects_with_the_keyboard(live_console, wechat_sandbox):
    from playwright.sync_api import expect, sync_playwright

    application, base = live_console
    client = application.test_client()
    make_staff("browser_mod", ["moderator"])
    first_headers, first = _resident_tip(client, wechat_sandbox, 501, "楼道里堆着液化气瓶")
    second_headers, second = _resident_tip(client, wechat_sandbox, 502, "门口有气瓶")
    assert intake.process_tip(first) == "pending_review"
    assert intake.process_tip(second) == "pending_review"
    db.session.remove()  # hold no SQLite lock while the server works

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page()
            page.goto(f"{base}/console/login")
            page.fill("input[name=username]", "browser_mod")
            page.fill("input[name=password]", "correct-horse-1")
            page.click("button[type=submit]")
            expect(page.locator("h1")).to_have_text("审核队列")
            expect(page.locator("#queue tbody tr")).to_have_count(2)

            page.keyboard.press("n")  # claim: the oldest of equal priority first
            page.wait_for_url(f"**/console/review/{first}")
            expect(page.locator("#tip-status")).to_have_attribute("data-status", "pending_review")
            page.keyboard.press("3")
            page.keyboard.press("a")  # approve
            expect(page.locator(".flash")).to_contain_text(f"报料 #{first}：已采纳")

            page.keyboard.press("n")
            page.wait_for_url(f"**/console/review/{second}")
            expect(page.locator("#do-approve")).to_be_visible()
            page.keyboard.press("r")  # the reject panel opens with the reason list focused
            expect(page.locator("#panel-reject")).to_be_visible()
            page.select_option("#reason-reject", "unclear_photo")
            page.keyboard.press("Enter")
            expect(page.locator(".flash")).to_contain_text(f"报料 #{second}：未采纳")
            expect(page.locator("#queue-empty")).to_be_visible()
        finally:
            browser.close()

    accepted = client.get(f"/api/mp/v1/tips/{first}", headers=first_headers).get_json()
    assert accepted["status"] == "accepted"
    assert accepted["hazard"] is not None
    assert any("已采纳" in (step.get("note") or "") for step in accepted["timeline"])
    rejected = client.get(f"/api/mp/v1/tips/{second}", headers=second_headers).get_json()
    assert rejected["status"] == "rejected"
    from moderation.reasons import REASONS

    assert rejected["timeline"][-1]["note"] == REASONS["reject"]["unclear_photo"]["message"]
