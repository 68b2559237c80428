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
    assert "受理 <kbd>A</kbd>" in page and "驳回 <kbd>R</kbd>" in page
    assert 'class="webmap" data-map=' in page and '"main": true' in page  # the grid outline and the pin
    assert "审计记录" in page and "review.claim" in page
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
    assert f"报料 #{tip_id} 已受理" in done.get_data(as_text=True)
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
