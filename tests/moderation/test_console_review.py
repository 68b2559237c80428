"""The review pages of the console (server-rendered): roles, claim, the tip page with photos through
signed URLs, candidates, signals, the SVG map and the audit trail, decisions by form."""
import html
import re

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models.tip import Tip
from moderation import intake
from tests.moderation.factories import make_photo, make_resident, make_staff, make_tip, point_in_grid


def _login(client, username):
    response = client.post("/console/login", data={"username": username, "password": "correct-horse-1"})
    assert response.status_code == 302, response.get_data(as_text=True)


@pytest.fixture
def console(intake_app, scene_jpegs, wechat_sandbox):
    for name, roles in (("mod", ["moderator"]), ("boss", ["supervisor"]), ("money", ["finance"])):
        make_staff(name, roles)
    resident = make_resident()
    first = make_tip(resident, [make_photo(resident, scene_jpegs[0])], at=point_in_grid())
    db.session.commit()
    intake.process_tip(first.id)
    second = make_tip(make_resident(), [], at=point_in_grid())  # nearby, same category
    db.session.commit()
    from app.models.photo import Photo

    other = make_resident()
    third = make_tip(other, [make_photo(other, scene_jpegs[0])], at=point_in_grid())  # same photo, other reporter
    db.session.commit()
    intake.process_tip(second.id)
    intake.process_tip(third.id)
    return {"first": first.id, "second": second.id, "third": third.id, "client": intake_app.test_client()}


def test_finance_cannot_review_and_moderator_sees_no_finance(console):
    client = console["client"]
    _login(client, "money")
    assert client.get("/console/review/").status_code == 403
    assert client.post("/console/review/claim").status_code == 403
    client.post("/console/logout")
    _login(client, "mod")
    page = client.get("/console/review/")
    assert page.status_code == 200 and "审核队列" in page.get_data(as_text=True)
    assert "财务" not in page.get_data(as_text=True)


def test_claim_shows_the_tip_with_everything_the_moderator_needs(console):
    client = console["client"]
    _login(client, "mod")
    response = client.post("/console/review/claim")
    tip_id = int(response.headers["Location"].rsplit("/", 1)[1])
    page = client.get(f"/console/review/{tip_id}").get_data(as_text=True)
    assert "采纳 <kbd>A</kbd>" in page and "不予采纳 <kbd>R</kbd>" in page
    assert 'class="webmap" data-map=' in page and '"main": true' in page  # the grid outline and the pin
    assert "审计记录" in page and "领取审核" in page and "review.claim" not in page
    third = client.get(f"/console/review/{console['third']}").get_data(as_text=True)
    assert "照片完全相同，汉明距离 0" in third and "疑似盗用" in third
    url = html.unescape(re.search(r'<img src="([^"]+)" alt="报料照片 1"', third).group(1))
    assert "sig=" in url and "exp=" in url
    assert client.get(url).status_code == 200  # the signed URL serves the EXIF-free copy


def test_decisions_by_form_and_conflicts_flash(console):
    client = console["client"]
    _login(client, "mod")
    tip_id = int(client.post("/console/review/claim").headers["Location"].rsplit("/", 1)[1])
    done = client.post(f"/console/review/{tip_id}/decision", data={"action": "approve", "severity": "3"},
                       follow_redirects=True)
    assert f"报料 #{tip_id}</a>：已采纳" in done.get_data(as_text=True)
    assert db.session.get(Tip, tip_id).status == "accepted"
    again = client.post(f"/console/review/{tip_id}/decision", data={"action": "approve", "severity": "3"},
                        follow_redirects=True)
    assert "不能重复处理" in again.get_data(as_text=True)
    nxt = int(client.post("/console/review/claim").headers["Location"].rsplit("/", 1)[1])
    client.post(f"/console/review/{nxt}/decision",
                data={"action": "reject", "reason_reject": "unclear_photo", "message_reject": ""})
    db.session.expire_all()
    assert db.session.get(Tip, nxt).status == "rejected"
    # a supervisor reverses it from the page
    client.post("/console/logout")
    _login(client, "boss")
    page = client.get(f"/console/review/{nxt}").get_data(as_text=True)
    assert "撤销审核结果" in page
    client.post(f"/console/review/{nxt}/reverse", data={"note": "照片其实清楚"})
    db.session.expire_all()
    assert db.session.get(Tip, nxt).status == "pending_review"


def test_an_approval_leads_to_its_ticket_reward_and_reporter(console):
    """After approving, the moderator reads the ticket number and the reward, with links; the tip
    page links its ticket, payout (for finance) and the reporter's other tips."""
    client = console["client"]
    _login(client, "mod")
    tip_id = int(client.post("/console/review/claim").headers["Location"].rsplit("/", 1)[1])
    done = client.post(f"/console/review/{tip_id}/decision", data={"action": "approve", "severity": "2"},
                       follow_redirects=True).get_data(as_text=True)
    tip = db.session.get(Tip, tip_id)
    assert tip.hazard_id is not None
    assert f'/console/hazards/{tip.hazard_id}" class="ticket-link">工单 #{tip.hazard_id}</a>' in done
    assert re.search(r"（(新建工单|并入已有工单)）", done)
    assert re.search(r'class="reward">奖励(：未发放（[^）<]+）| ¥[0-9,.]+（[^）<]+）|：无)', done), done
    page = client.get(f"/console/review/{tip_id}").get_data(as_text=True)
    assert f'id="ticket-link">工单 #{tip.hazard_id}</a>' in page
    assert f"/console/review/residents/{tip.resident_id}" in page
    mine = client.get(f"/console/review/residents/{tip.resident_id}").get_data(as_text=True)
    assert f"/console/review/{tip_id}\">#{tip_id}</a>" in mine and "已采纳" in mine
    ticket = client.get(f"/console/hazards/{tip.hazard_id}")  # a moderator reads the ticket, moves nothing
    assert ticket.status_code == 200 and f"报料 #{tip_id}" in ticket.get_data(as_text=True)
    assert 'name="to"' not in ticket.get_data(as_text=True)
    client.post("/console/logout")
    _login(client, "money")
    assert client.get(f"/console/review/{tip_id}").status_code == 200  # finance follows a payout to its tip
    assert client.post(f"/console/review/{tip_id}/decision", data={"action": "approve"}).status_code == 403


def test_console_errors_are_chinese_pages(console):
    client = console["client"]
    _login(client, "mod")
    missing = client.get("/console/review/99999")
    assert missing.status_code == 404 and missing.mimetype == "text/html"
    body = missing.get_data(as_text=True)
    assert "报料不存在" in body and "页面不存在" in body and "\\u" not in body
    nowhere = client.get("/console/no-such-page")
    assert nowhere.status_code == 404 and nowhere.mimetype == "text/html" and "找不到该资源" in nowhere.get_data(as_text=True)
    assert client.get("/api/staff/v1/nothing-here").mimetype == "application/json"  # the APIs keep JSON
