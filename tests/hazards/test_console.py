"""Console pages for tickets: departments work their own, supervisors re-route and watch the overdue list."""
import io
from datetime import timedelta

from sqlalchemy import update

from app.hazards.lifecycle import Actor, transition_hazard
from app.hazards.models import Hazard
from app.hazards.sla import flag_overdue
from app.models.base import utcnow

from .test_dept_api import jpeg_bytes


def login(client, hz, username, roles, department=None):
    hz.staff(username, roles, department)
    reply = client.post("/console/login", data={"username": username, "password": "password-123"})
    assert reply.status_code == 302, reply.get_data(as_text=True)
    return client


def test_a_department_works_its_own_tickets_in_the_console(hz, client):
    mine, _ = hz.new_hazard(0, "fire_exit_blocked")
    theirs, _ = hz.new_hazard(9, "lpg_illegal")
    login(client, hz, "fire1", ["department"], "fire")
    page = client.get("/console/hazards/").get_data(as_text=True)
    assert f">#{mine.id}<" in page and f">#{theirs.id}<" not in page and "工单" in page
    other = client.get(f"/console/hazards/{theirs.id}")
    assert other.status_code == 404 and "工单不存在" in other.get_data(as_text=True) and "<html" in other.get_data(as_text=True)
    assert client.post(f"/console/hazards/{theirs.id}/move", data={"to": "accepted"}).status_code == 404
    detail = client.get(f"/console/hazards/{mine.id}").get_data(as_text=True)
    assert "受理" in detail and "退回（非本部门职责）" in detail and "核查通过" not in detail
    assert client.post(f"/console/hazards/{mine.id}/move", data={"to": "accepted"}).status_code == 302
    # resolving without a note is refused with a message, and nothing changes
    reply = client.post(f"/console/hazards/{mine.id}/move", data={"to": "resolved"}, follow_redirects=True)
    assert "请填写处置说明" in reply.get_data(as_text=True)
    hz.db.session.expire_all()
    assert hz.db.session.get(Hazard, mine.id).status == "accepted"
    reply = client.post(f"/console/hazards/{mine.id}/move", content_type="multipart/form-data",
                        data={"to": "resolved", "note": "已清理",
                              "photos": [(io.BytesIO(jpeg_bytes()), "after.jpg")]}, follow_redirects=True)
    text = reply.get_data(as_text=True)
    assert "已变为「已处置」" in text and "处置照片" in text
    hz.db.session.expire_all()
    hazard = hz.db.session.get(Hazard, mine.id)
    assert hazard.status == "resolved" and len(hazard.resolution_photo_ids) == 1
    # supervisors' pages are not theirs
    assert client.get("/console/hazards/overdue").status_code == 403


def test_supervisors_reroute_returned_tickets_and_see_overdue_ones(hz, client):
    hazard, _ = hz.new_hazard(0)
    late, _ = hz.new_hazard(20)
    transition_hazard(hazard.id, "returned", Actor("department", None, "fire"), "应由住建处理")
    hz.db.session.execute(update(Hazard).where(Hazard.id == late.id).values(due_at=utcnow() - timedelta(hours=1)))
    hz.db.session.commit()
    flag_overdue()
    login(client, hz, "sup", ["supervisor"])
    home = client.get("/console/hazards/returned").get_data(as_text=True)
    assert f">#{hazard.id}<" in home and "退回待改派" in home and "超时督办" in home
    overdue = client.get("/console/hazards/overdue").get_data(as_text=True)
    assert f">#{late.id}<" in overdue and f">#{hazard.id}<" not in overdue
    detail = client.get(f"/console/hazards/{hazard.id}").get_data(as_text=True)
    assert "应由住建处理" in detail and "分拨 / 改派" in detail
    reply = client.post(f"/console/hazards/{hazard.id}/move", data={"to": "dispatched", "department": "housing"})
    assert reply.status_code == 302
    hz.db.session.expire_all()
    moved = hz.db.session.get(Hazard, hazard.id)
    assert moved.status == "dispatched" and moved.department.code == "housing"
    assert f">#{hazard.id}<" not in client.get("/console/hazards/returned").get_data(as_text=True)


def test_console_pages_need_a_session(client, hz):
    assert client.get("/console/hazards/").status_code == 302
