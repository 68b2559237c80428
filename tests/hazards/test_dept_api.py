"""The department API: keys, own tickets only, the full round trip to closed, photos, privacy."""
import io

from PIL import Image
from sqlalchemy import select

from app.hazards.keys import key_digest
from app.hazards.models import DepartmentApiKey, Hazard
from app.models.photo import Photo
from app.models.resident import Resident
from app.models.tip import Tip

from .conftest import dumps


def jpeg_bytes(color=(200, 30, 30), size=(64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "JPEG")
    return buffer.getvalue()


def add_tip_photo(db, tip):
    from app.media.photos import store_photo
    from app.media.processing import inspect_upload, process_photo

    with inspect_upload(io.BytesIO(jpeg_bytes())) as upload:
        processed = process_photo(upload)
        keys = store_photo(upload, processed)
    photo = Photo(resident_id=tip.resident_id, tip_id=tip.id, position=0, sha256=processed.sha256,
                  phash=processed.phash, width=processed.width, height=processed.height, mime=processed.mime,
                  size_bytes=processed.size_bytes, original_key=keys.original_key, display_key=keys.display_key,
                  thumb_key=keys.thumb_key)
    db.session.add(photo)
    db.session.commit()
    return photo


def test_keys_are_stored_hashed_and_checked(hz, client):
    headers = hz.dept_key("fire")
    key = headers["X-Api-Key"]
    row = hz.db.session.scalar(select(DepartmentApiKey))
    assert row.key_hash == key_digest(key) and key not in dumps(row.__dict__) and row.prefix == key[:12]
    assert client.get("/api/dept/v1/tickets", headers=headers).status_code == 200
    for bad in ({}, {"X-Api-Key": ""}, {"X-Api-Key": key + "x"}, {"X-Api-Key": "rrpd_guess"}):
        reply = client.get("/api/dept/v1/tickets", headers=bad)
        assert reply.status_code == 401 and reply.json["error"]["code"] in ("api_key_missing", "api_key_invalid")
    from app.hazards.keys import revoke_department_key

    assert revoke_department_key(row.prefix) == 1
    hz.db.session.commit()
    assert client.get("/api/dept/v1/tickets", headers=headers).status_code == 401


def test_dept_key_create_command_prints_a_working_key(hz, client, flask_cli):
    result = flask_cli("dept-key", "create", "--department", "water", "--label", "水务系统")
    key = result.stdout.strip().splitlines()[-1]
    assert key.startswith("rrpd_") and "water" in result.stderr
    hz.db.session.expire_all()
    row = hz.db.session.scalar(select(DepartmentApiKey))
    assert row.department.code == "water" and row.key_hash == key_digest(key)
    assert client.get("/api/dept/v1/tickets", headers={"X-Api-Key": key}).status_code == 200
    refused = flask_cli("dept-key", "create", "--department", "nobody", check=False)
    assert refused.returncode == 1 and "部门不存在" in refused.stderr


def test_a_department_sees_only_its_own_tickets(hz, client):
    fire_ticket, _ = hz.new_hazard(0, "fire_exit_blocked")
    gas_ticket, _ = hz.new_hazard(1, "lpg_illegal")
    fire, gas = hz.dept_key("fire"), hz.dept_key("urban_mgmt")
    assert [t["id"] for t in client.get("/api/dept/v1/tickets", headers=fire).json["items"]] == [fire_ticket.id]
    assert [t["id"] for t in client.get("/api/dept/v1/tickets", headers=gas).json["items"]] == [gas_ticket.id]
    assert client.get(f"/api/dept/v1/tickets/{gas_ticket.id}", headers=fire).status_code == 404
    assert client.post(f"/api/dept/v1/tickets/{gas_ticket.id}/ack", headers=fire).status_code == 404
    assert client.get("/api/dept/v1/tickets?status=closed", headers=fire).json["items"] == []
    assert client.get("/api/dept/v1/tickets?status=dispatched", headers=fire).json["items"][0]["id"] == fire_ticket.id


def test_list_pages_with_a_cursor(hz, client):
    ids = [hz.new_hazard(i * 7)[0].id for i in range(5)]
    fire = hz.dept_key("fire")
    page = client.get("/api/dept/v1/tickets?limit=2", headers=fire).json
    seen = [t["id"] for t in page["items"]]
    while page["next"]:
        page = client.get(f"/api/dept/v1/tickets?limit=2&cursor={page['next']}", headers=fire).json
        seen += [t["id"] for t in page["items"]]
    assert seen == sorted(ids, reverse=True)
    assert client.get("/api/dept/v1/tickets?cursor=abc", headers=fire).status_code == 400


def test_round_trip_through_the_department_api_to_closed_shows_on_the_timeline(hz, sandbox_app, wechat_sandbox):
    from app.queue import run_burst

    client = sandbox_app.test_client()
    hazard, tip = hz.new_hazard(11, "fire_exit_blocked")
    openid = hz.db.session.get(Resident, tip.resident_id).openid
    add_tip_photo(hz.db, tip)
    fire = hz.dept_key("fire")
    _, supervisor = hz.staff("sup", ["supervisor"])

    ticket = client.get(f"/api/dept/v1/tickets/{hazard.id}", headers=fire).json
    assert ticket["status"] == "dispatched" and ticket["allowed"] == ["accepted", "returned"]
    assert ticket["photos"] and ticket["photos"][0]["url"]
    assert client.post(f"/api/dept/v1/tickets/{hazard.id}/ack", headers=fire).json["status"] == "accepted"
    again = client.post(f"/api/dept/v1/tickets/{hazard.id}/ack", headers=fire)  # a retry after a timeout
    assert again.status_code == 200 and again.json["status"] == "accepted"
    assert client.post(f"/api/dept/v1/tickets/{hazard.id}/start", headers=fire).json["status"] == "handling"

    upload = client.post("/api/dept/v1/photos", headers=fire,
                         data={"file": (io.BytesIO(jpeg_bytes((20, 200, 20))), "after.jpg")})
    assert upload.status_code == 201
    photo_id = upload.json["id"]
    assert hz.db.session.get(Photo, photo_id).uploaded_by_department == "fire"
    assert client.post(f"/api/dept/v1/tickets/{hazard.id}/resolve", headers=fire,
                       json={"photo_ids": [photo_id]}).status_code == 422  # a note is required
    resolved = client.post(f"/api/dept/v1/tickets/{hazard.id}/resolve", headers=fire,
                           json={"note": "已清理楼道杂物，恢复通行", "photo_ids": [photo_id]})
    assert resolved.status_code == 200, resolved.json
    assert resolved.json["status"] == "resolved" and resolved.json["resolution_photos"][0]["id"] == photo_id
    assert resolved.json["resolution_note"] == "已清理楼道杂物，恢复通行"

    for to in ("verified", "closed"):
        reply = client.post(f"/api/staff/v1/hazards/{hazard.id}/transition", json={"to": to, "note": "核查现场"},
                            headers=supervisor)
        assert reply.status_code == 200 and reply.json["status"] == to
    hz.db.session.rollback()  # hold no SQLite lock while the jobs run
    run_burst(sandbox_app)

    # the reporter was told three times: accepted, resolved, closed (subscribe messages via the gateway)
    sent = [m for m in wechat_sandbox.messages() if m["openid"] == openid]
    assert len(sent) == 3, sent
    assert [m["data"]["phrase2"]["value"] for m in sent] == ["已采纳", "已处置", "已结案"]
    steps = [status for status, _ in hz.timeline(tip.id)]
    assert steps[-6:] == ["hazard_dispatched", "hazard_accepted", "hazard_handling", "hazard_resolved",
                          "hazard_verified", "hazard_closed"]
    assert hz.timeline(tip.id)[-1][1] == "隐患已结案，感谢您的报料"
    history = client.get(f"/api/dept/v1/tickets/{hazard.id}", headers=fire).json["history"]
    assert [h["to_status"] for h in history] == ["reported", "dispatched", "accepted", "handling", "resolved",
                                                 "verified", "closed"]


def test_resolve_photos_must_be_the_departments_own(hz, client):
    hazard, tip = hz.new_hazard(2)
    tip_photo = add_tip_photo(hz.db, tip)
    fire, water = hz.dept_key("fire"), hz.dept_key("water")
    client.post(f"/api/dept/v1/tickets/{hazard.id}/ack", headers=fire)
    theirs = client.post("/api/dept/v1/photos", headers=water,
                         data={"file": (io.BytesIO(jpeg_bytes()), "x.jpg")}).json["id"]
    for photo_ids in ([tip_photo.id], [theirs], [10 ** 6]):
        reply = client.post(f"/api/dept/v1/tickets/{hazard.id}/resolve", headers=fire,
                            json={"note": "好了", "photo_ids": photo_ids})
        assert reply.status_code == 422 and reply.json["error"]["code"] == "photo_not_found"
    assert hz.db.session.get(Hazard, hazard.id).status == "accepted"


def test_bad_uploads_get_a_clear_4xx(hz, client):
    fire = hz.dept_key("fire")
    assert client.post("/api/dept/v1/photos", headers=fire, data={}).status_code == 400
    reply = client.post("/api/dept/v1/photos", headers=fire, data={"file": (io.BytesIO(b"not an image"), "a.jpg")})
    assert reply.status_code == 415


def test_returning_a_ticket_sends_it_back_to_supervisors(hz, client):
    hazard, tip = hz.new_hazard(4)
    fire = hz.dept_key("fire")
    assert client.post(f"/api/dept/v1/tickets/{hazard.id}/return", headers=fire, json={}).status_code == 422
    reply = client.post(f"/api/dept/v1/tickets/{hazard.id}/return", headers=fire, json={"reason": "属于住建职责"})
    assert reply.status_code == 200 and reply.json["status"] == "returned"
    _, supervisor = hz.staff("sup", ["supervisor"])
    listed = client.get("/api/staff/v1/hazards?status=returned", headers=supervisor).json["items"]
    assert [h["id"] for h in listed] == [hazard.id] and listed[0]["return_reason"] == "属于住建职责"
    # the reporter sees no internal detail for a return
    assert all("住建" not in (note or "") for _, note in hz.timeline(tip.id))


def test_no_reporter_identity_in_anything_a_department_reads(hz, client):
    hazard, tip = hz.new_hazard(6)
    resident = hz.db.session.get(Resident, tip.resident_id)
    joined = hz.tip(hazard.lat, hazard.lng, resident=hz.resident("o-second-reporter-openid"))
    hz.approve(joined)
    add_tip_photo(hz.db, tip)
    fire = hz.dept_key("fire")
    client.post(f"/api/dept/v1/tickets/{hazard.id}/ack", headers=fire)
    texts = [client.get("/api/dept/v1/tickets", headers=fire).get_data(as_text=True),
             client.get(f"/api/dept/v1/tickets/{hazard.id}", headers=fire).get_data(as_text=True)]
    for text in texts:
        assert resident.openid not in text and "o-second-reporter-openid" not in text
        assert "resident" not in text and "openid" not in text
        assert f'"tip_id": {tip.id}' not in text and "tip_id" not in text
    assert hz.db.session.get(Tip, tip.id).hazard_id == hazard.id


def test_dept_key_list_and_revoke_commands(hz, client, flask_cli):
    headers = hz.dept_key("fire")
    prefix = headers["X-Api-Key"][:12]
    listed = flask_cli("dept-key", "list", "--department", "fire").stdout
    assert prefix in listed and "active" in listed and headers["X-Api-Key"] not in listed
    assert "1 key(s) revoked" in flask_cli("dept-key", "revoke", prefix + "…").stdout
    assert flask_cli("dept-key", "revoke", prefix, check=False).returncode == 1  # already revoked
    assert client.get("/api/dept/v1/tickets", headers=headers).status_code == 401


def test_a_retried_move_is_answered_unchanged_but_other_moves_stay_409(hz, client):
    from sqlalchemy import func

    from app.hazards.models import HazardEvent

    hazard, _ = hz.new_hazard(0)
    fire = hz.dept_key("fire")
    _, supervisor = hz.staff("sup", ["supervisor"])
    for _ in range(3):
        assert client.post(f"/api/dept/v1/tickets/{hazard.id}/ack", headers=fire).status_code == 200
    count = select(func.count(HazardEvent.id)).where(HazardEvent.to_status == "accepted")
    assert hz.db.session.scalar(count) == 1
    body = {"note": "已处置", "photo_ids": []}
    assert client.post(f"/api/dept/v1/tickets/{hazard.id}/resolve", headers=fire, json=body).status_code == 200
    assert client.post(f"/api/dept/v1/tickets/{hazard.id}/resolve", headers=fire, json=body).status_code == 200
    reply = client.post(f"/api/dept/v1/tickets/{hazard.id}/ack", headers=fire)  # not the last move: a conflict
    assert reply.status_code == 409 and reply.json["error"]["code"] == "illegal_transition"
    client.post(f"/api/staff/v1/hazards/{hazard.id}/transition", json={"to": "verified"}, headers=supervisor)
    # the supervisor moved it on: the department's resolve is now stale, not a replay
    assert client.post(f"/api/dept/v1/tickets/{hazard.id}/resolve", headers=fire, json=body).status_code == 409


def test_a_page_of_tickets_is_built_in_a_few_queries_and_reads_as_ticket_by_ticket(hz, app):
    """department_tickets / staff_tickets (the lists) answer exactly what department_ticket /
    staff_ticket answer per ticket, in a fixed number of queries whatever the page size."""
    from sqlalchemy import event, update

    from app.hazards.queries import department_ticket, department_tickets, staff_ticket, staff_tickets

    hazards = []
    for index in range(4):
        hazard, tip = hz.new_hazard(20 + index, "fire_exit_blocked" if index % 2 else "road_damage")
        if index != 1:
            add_tip_photo(hz.db, tip)
        hazards.append(hazard)
    extra = add_tip_photo(hz.db, hz.tip(hazards[0].lat, hazards[0].lng))  # a photo that is no tip's of the ticket
    hz.db.session.execute(update(Hazard).where(Hazard.id == hazards[2].id).values(resolution_photo_ids=[extra.id]))
    hz.db.session.commit()
    rows = list(hz.db.session.scalars(select(Hazard).where(Hazard.id.in_([h.id for h in hazards]))
                                      .order_by(Hazard.id.desc())))
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(hz.db.engine, "before_cursor_execute", listener)
    try:
        batch = department_tickets(rows)
        staff = staff_tickets(rows)
    finally:
        event.remove(hz.db.engine, "before_cursor_execute", listener)
    assert len(statements) <= 7
    assert batch == [department_ticket(h, with_history=False) for h in rows]
    assert staff == [staff_ticket(h, with_history=False) for h in rows]
    assert any(view["photos"] for view in batch) and any(view["resolution_photos"] for view in batch)
    assert department_tickets([]) == [] and staff_tickets([]) == []
