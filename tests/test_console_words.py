"""Every console page as every role, in a real browser (Debian's chromium through Playwright), over
the demo data (tips, tickets and payouts in every state): the visible text must read as Chinese for
a city's staff — no internal identifier (snake_case, dotted action names), no "UTC", no ISO "T"
timestamps, no English word outside a short allow-list. Screenshots of every page are kept in
tests/output/screenshots/ (git-ignored) to look at. Fails (never skips) when chromium is missing."""
from __future__ import annotations

import re
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = Path(__file__).resolve().parent / "output" / "screenshots"
PASSWORD = "renrenpai-demo"

# What may stay Latin on a console page: keys on the keyboard, file formats, brand and unit words.
ALLOWED_WORDS = {"Enter", "Esc", "CSV", "Excel", "WGS", "GCJ", "App", "ID", "OK"}
PATTERNS = {
    "snake_case": re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b"),
    "dotted name": re.compile(r"\b[a-z]+\.[a-z_]+\b"),
    "UTC": re.compile(r"\bUTC\b"),
    "ISO timestamp": re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}"),
    "English word": re.compile(r"\b[A-Za-z][A-Za-z]+\b"),
    "empty brackets": re.compile(r"（\s*）|\(\s*\)"),  # a detail that rendered as nothing
}


def find_identifiers(text: str) -> list[str]:
    """The pieces of `text` that look like a code rather than words (each with what it looks like)."""
    found = []
    for name, pattern in PATTERNS.items():
        for match in pattern.finditer(text):
            word = match.group(0)
            if name == "English word" and word in ALLOWED_WORDS:
                continue
            start = max(0, match.start() - 12)
            found.append(f"{name}: {word!r} in …{text[start:match.end() + 12]!r}…")
    return found


def test_the_scanner_catches_what_it_should():
    assert find_identifiers("类别 pollution_discharge") and find_identifiers("review.claim")
    assert find_identifiers("提交于 07:32 UTC") and find_identifiers("2026-12-05T07:34")
    assert find_identifiers("状态 dispatched") and find_identifiers("网格 shilong-033")
    assert find_identifiers("图片未送检（无公网地址）（）")
    assert not find_identifiers("2026-12-05 15:34 已采纳 ¥5.00 导出 CSV 确认 Enter")


@pytest.fixture
def demo_console(make_app, sandbox_config, db, reference_data, wechat_sandbox):
    """The demo data (made through the APIs and the sandbox) and the app serving it on a free port."""
    from app.demo import ensure_demo_staff
    from app.demo_data import seed_demo_tips

    application = make_app(**sandbox_config, WTF_CSRF_ENABLED=True, RATELIMIT_ENABLED=False)
    with application.app_context():
        ensure_demo_staff()
        seed_demo_tips()
        _more_states()
        targets = _targets()
        db.session.remove()  # hold no SQLite lock while the server works
        server = make_server("127.0.0.1", 0, application, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_port}", targets
        finally:
            server.shutdown()
            thread.join(timeout=10)
            db.session.remove()


def _more_states():
    """States the demo does not reach on its own: a failed reconciliation, a pending rules change,
    a packet waiting for a person, a department ticket overdue."""
    from app.display import business_day
    from app.extensions import db
    from app.hazards.models import Hazard
    from app.models.outbox import OutboxMessage
    from app.models.staff import StaffUser
    from rewards import finance
    from rewards.models import Payout, ReconciliationRun

    finance_user = db.session.scalar(select(StaffUser).where(StaffUser.username == "finance"))
    finance.request_change("policy", {"settings": {"trigger": "verification", "resident_day_fen": 2000}},
                           finance_user, "演示：规则变更")
    db.session.add(ReconciliationRun(bill_date=business_day() - timedelta(days=1), status="failed",
                                     error="not_ready:bill_creating", requested_by=finance_user.id))
    payout = db.session.scalar(select(Payout).where(Payout.status == "sent").limit(1))
    if payout is not None:
        payout.status, payout.reason, payout.last_code = "manual_review", "config:NO_AUTH", "NO_AUTH"
    hazard = db.session.scalar(select(Hazard).where(Hazard.status == "dispatched").limit(1))
    hazard.overdue = True
    db.session.add(OutboxMessage(topic="hazard.notify", payload={"notice_id": 0}, status="dead", attempts=8,
                                 last_error="ConnectionError: sandbox unreachable"))
    db.session.commit()


def _targets() -> dict:
    """One tip per status, one ticket per status, a reporter with history."""
    from app.extensions import db
    from app.hazards.models import Hazard
    from app.models.tip import Tip

    tips = {}
    for tip in db.session.scalars(select(Tip).order_by(Tip.id)):
        tips.setdefault("flagged" if tip.flagged and tip.status == "pending_review" else tip.status, tip.id)
    tickets = {}
    fire_ticket = None
    for hazard in db.session.scalars(select(Hazard).order_by(Hazard.id)):
        tickets.setdefault(hazard.status, hazard.id)
        if hazard.department.code == "fire" and fire_ticket is None:
            fire_ticket = hazard.id
    accepted = db.session.get(Tip, tips["accepted"])
    return {"tips": tips, "tickets": tickets, "fire_ticket": fire_ticket, "resident": accepted.resident_id}


def _pages(targets) -> dict[str, list[str]]:
    tips = [f"/console/review/{t}" for t in targets["tips"].values()]
    tickets = [f"/console/hazards/{h}" for h in targets["tickets"].values()]
    resident = f"/console/review/residents/{targets['resident']}"
    review = ["/console/review/", *tips, resident, "/console/review/99999"]
    hazards = ["/console/hazards/", "/console/hazards/?view=map", "/console/hazards/returned",
               "/console/hazards/overdue", *tickets]
    finance = ["/console/finance/", "/console/finance/payouts", "/console/finance/reconciliation",
               f"/console/finance/payouts?tip={targets['tips']['accepted']}", tips[0], resident]
    return {
        "moderator": [*review, tickets[0], "/console/finance/"],  # the last: the 403 page
        "supervisor": [*review, *hazards, "/console/ops"],
        "fire": ["/console/hazards/", "/console/hazards/?view=map"]
                + ([f"/console/hazards/{targets['fire_ticket']}"] if targets["fire_ticket"] else []),
        "finance": finance,
        "admin": ["/console/ops", "/console/review/", "/console/hazards/", "/console/finance/",
                  "/console/no-such-page"],
    }


def _approve_and_follow(page, base) -> list[str]:
    """The moderator's main task: claim (N), approve (A), read where it led, follow the ticket link."""
    page.goto(f"{base}/console/review/")
    page.keyboard.press("n")
    page.wait_for_url(re.compile(r".*/console/review/\d+$"))
    page.keyboard.press("a")
    page.wait_for_url(re.compile(r".*/console/review/$"))
    flash = page.locator(".flash").first.inner_text()
    assert re.search(r"报料 #\d+：已采纳 · 工单 #\d+（(新建工单|并入已有工单)） · 奖励", flash), flash
    page.screenshot(path=str(SCREENSHOTS / "moderator--after-approve.png"), full_page=True)
    problems = [f"moderator after approve: {p}" for p in find_identifiers(page.inner_text("body"))]
    page.click(".flash a.ticket-link")
    page.wait_for_url(re.compile(r".*/console/hazards/\d+$"))
    assert page.locator("h1").inner_text().startswith("工单 #")
    page.screenshot(path=str(SCREENSHOTS / "moderator--ticket-after-approve.png"), full_page=True)
    return problems + [f"moderator ticket after approve: {p}" for p in find_identifiers(page.inner_text("body"))]


# Each web map on a page: drawn (data-ready), no error, and some grid or point on it.
MAP_STATE = """els => els.map(e => ({ready: e.dataset.ready || null, error: e.dataset.error || null,
                                   shapes: e.querySelectorAll('path').length}))"""


def _slug(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-") or "home"


def test_every_console_page_reads_as_chinese_for_every_role(demo_console):
    from playwright.sync_api import sync_playwright

    base, targets = demo_console
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    visited = 0
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            for role, paths in _pages(targets).items():
                context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN")
                page = context.new_page()
                page.goto(f"{base}/console/login")
                page.screenshot(path=str(SCREENSHOTS / "login.png"))
                page.fill("input[name=username]", role)
                page.fill("input[name=password]", PASSWORD)
                page.click("button[type=submit]")
                page.wait_for_load_state()
                assert "/console/login" not in page.url, f"{role} could not log in"
                for path in paths:
                    response = page.goto(base + path)
                    page.wait_for_load_state()
                    visited += 1
                    assert response is not None and response.status < 500, f"{role} {path}: {response and response.status}"
                    assert "text/html" in response.headers.get("content-type", ""), f"{role} {path} is not a page"
                    page.screenshot(path=str(SCREENSHOTS / f"{role}--{_slug(path)}.png"), full_page=True)
                    for problem in find_identifiers(page.inner_text("body")):
                        problems.append(f"{role} {path}: {problem}")
                    maps = page.eval_on_selector_all("[data-map]", MAP_STATE)
                    problems += [f"{role} {path}: map not drawn ({m})" for m in maps
                                 if m["error"] or not m["ready"] or not m["shapes"]]
                if role == "moderator":
                    problems += _approve_and_follow(page, base)
                context.close()
        finally:
            browser.close()
    assert visited >= 40
    assert not problems, "\n".join(problems)
