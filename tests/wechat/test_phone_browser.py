"""A resident's whole journey on the sandbox's phone page, in a real browser (Debian's chromium,
headless, through Playwright), against real processes: gunicorn + `flask worker` for the app and the
sandbox's own server for the page. Log in, read the privacy notice, send a tip with a photo, see it
in 我的报料 with its timeline; a moderator approves it; open the red packet in 我的奖励 (or, paying by
商家转账, 确认收款: the wx.requestMerchantTransfer stand-in); a neighbour
on the same phone sees 附近已有人报过. Screenshots go to tests/output/screenshots/ (git-ignored).
Fails (never skips) when chromium is missing."""
from datetime import datetime
from pathlib import Path

import pytest

from app.demo_data import make_demo_photo
from tests.test_journey import SHANGHAI, System, staff_login, wait_for

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SHOTS = Path(__file__).resolve().parents[1] / "output" / "screenshots"
PHONE = {"width": 390, "height": 844}

pytestmark = pytest.mark.slow


@pytest.fixture(params=["redpack", "transfer"])
def system(request, subprocess_env, wechat_sandbox, reference_data, db):
    running = System(subprocess_env, wechat_sandbox, channel=request.param)
    try:
        running.start()
        wechat_sandbox.configure(app_url=running.base)
        yield running
    finally:
        running.stop()


@pytest.mark.timeout(600)  # real processes and a browser on a machine shared with other suites
def test_a_resident_reports_and_claims_on_the_phone_page(system, db, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    engine = db.engine.dialect.name
    SHOTS.mkdir(parents=True, exist_ok=True)

    def shot(page, name):
        """The whole scrolling page, as on a phone tall enough to show it."""
        height = page.evaluate("document.querySelector('main').scrollHeight + 150")
        page.set_viewport_size({"width": PHONE["width"], "height": max(PHONE["height"], height)})
        suffix = "" if system.channel == "redpack" else "-transfer"
        page.screenshot(path=str(SHOTS / f"phone-{engine}{suffix}-{name}.png"))
        page.set_viewport_size(PHONE)

    def tab(name):
        page.click(f".tabs button[data-go={name}]")

    from app.accounts import create_staff

    for username, role in (("mod", "moderator"), ("cash", "finance"), ("cash2", "finance")):
        create_staff(username, "renrenpai-demo", [role], None)
    db.session.commit()
    db.session.remove()  # hold no SQLite lock while the servers work
    cash = staff_login(system, "cash")
    month = datetime.now(SHANGHAI).strftime("%Y-%m")
    asked = system.call("POST", "/api/staff/v1/finance/requests", token=cash, expect=201,
                        json={"kind": "topup", "payload": {"period": month, "amount_fen": 100_000}})
    system.call("POST", f"/api/staff/v1/finance/requests/{asked['id']}/decision", token=staff_login(system, "cash2"),
                json={"approve": True})
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(make_demo_photo(seed=11))
    description = "楼道里有电动车在充电，电线从窗户拉进来"

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_context(viewport=PHONE, locale="zh-CN", timezone_id="UTC").new_page()
            errors = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(system.sandbox.url + "/__sandbox__/phone/")

            # 1. Logged in as the first demo resident; the privacy notice comes first.
            expect(page.locator("#privacy")).to_be_visible()
            expect(page.locator("#privacy-text")).to_contain_text("个人信息保护告知")
            shot(page, "1-privacy")
            page.click("text=同意并继续")
            expect(page.locator("#login-state")).to_contain_text("已登录：张阿姨")

            # 2. A photo, a place, a category, a description: the tip is sent.
            page.set_input_files("#photo-input", str(photo))
            expect(page.locator("#photos figcaption")).to_have_text("已上传", timeout=20_000)
            page.locator("#map").click(position={"x": 170, "y": 120})  # a tap on the map sets a point
            expect(page.locator("#place")).to_contain_text("地图选点")
            page.select_option("#town", label="东城街道")
            expect(page.locator("#place")).to_contain_text("东城街道：北纬 23.01")
            page.select_option("#category", value="ebike_indoor_charging")
            page.fill("#description", description)
            shot(page, "2-report")
            page.click("text=提交报料")
            expect(page.locator("#tip")).to_contain_text(description, timeout=20_000)
            tip_id = int(page.locator("#tip .meta").first.inner_text().split("#")[1].split()[0])
            expect(page.locator("#tip .timeline")).to_contain_text("已提交")

            # 3. 我的报料: the tip is there; the intake checks put it before a moderator.
            tab("tips")
            card = page.locator(f"#tips li[data-tip='{tip_id}']")
            expect(card).to_contain_text(description)
            wait_for(lambda: tab("tips") or card.locator(".badge").inner_text() == "待审核", timeout=90,
                     interval=2, what="the tip before a moderator")
            shot(page, "3-tips")

            # 4. A moderator approves it; the packet goes out; 领取 opens it as WeChat would.
            mod = staff_login(system, "mod")
            assert system.call("POST", "/api/staff/v1/review/claim", token=mod)["id"] == tip_id
            decision = system.call("POST", f"/api/staff/v1/tips/{tip_id}/decision", token=mod,
                                   json={"action": "approve", "category": "ebike_indoor_charging", "severity": 2})
            assert decision["tip"]["status"] == "accepted"
            transfer = system.channel == "transfer"
            waiting = "待确认收款" if transfer else "待领取"
            wait_for(lambda: tab("rewards") or page.locator("#rewards .badge").inner_text() == waiting,
                     timeout=90, interval=2, what="the reward sent")
            expect(page.locator("#rewards")).to_contain_text("¥10.00")
            shot(page, "4-rewards")
            page.click("#rewards button[data-confirm]" if transfer else "text=领取红包")  # text= would hit 待确认收款
            expect(page.locator("#rewards")).to_contain_text("已存入微信零钱")
            if transfer:
                assert system.sandbox.transfers()[0]["state"] == "SUCCESS"
            else:
                assert system.sandbox.redpacks()[0]["status"] == "RECEIVED"
            wait_for(lambda: tab("rewards") or
                     page.locator("#rewards .badge").inner_text() == "已领取", timeout=60, interval=2,
                     what="the reward shown as claimed")
            shot(page, "5-claimed")
            tab("tips")
            card.click()
            expect(page.locator("#tip .timeline")).to_contain_text("已采纳")
            expect(page.locator("#tip .timeline")).to_contain_text("工单已分拨")  # the ticket's progress, in words
            expect(page.locator("#tip .timeline")).not_to_contain_text("hazard_")
            shot(page, "6-detail")

            # 5. A neighbour on the same phone: the same place and category say 附近已有人报过.
            page.select_option("#resident", label="李师傅")
            expect(page.locator("#login-state")).to_contain_text("已登录：李师傅")
            page.click("text=同意并继续")
            tab("report")
            page.select_option("#town", label="东城街道")
            page.select_option("#category", value="ebike_indoor_charging")
            expect(page.locator("#nearby")).to_contain_text("附近已有人报过")
            shot(page, "7-nearby")

            # 6. 我的: export and close the account.
            tab("me")
            page.click("text=导出我的数据")
            expect(page.locator("#export-json")).to_contain_text("demo-resident-02")
            page.once("dialog", lambda dialog: dialog.accept())
            page.click("text=注销账号")
            expect(page.locator("#login-state")).to_contain_text("已注销")
            shot(page, "8-closed")
            assert errors == []
        finally:
            browser.close()
