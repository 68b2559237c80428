"""Open311 GeoReport v2 read endpoints, and the staff tickets API (filters, roles, own department)."""
from app.hazards.catalogue import list_categories
from app.hazards.lifecycle import Actor, transition_hazard
from app.models.resident import Resident

from .test_dept_api import add_tip_photo


def test_services_are_the_active_categories(hz, client):
    services = client.get("/open311/v2/services.json").json
    assert [s["service_code"] for s in services] == [c.code for c in list_categories()]
    lpg = next(s for s in services if s["service_code"] == "lpg_illegal")
    assert lpg["group"] == "燃气" and lpg["metadata"] is False and lpg["type"] == "realtime"


def test_requests_list_filters_and_detail(hz, client):
    fire, tip = hz.new_hazard(0, "fire_exit_blocked")
    gas, _ = hz.new_hazard(9, "lpg_illegal")
    add_tip_photo(hz.db, tip)
    hz.set_status(gas.id, "closed")
    everything = client.get("/open311/v2/requests.json").json
    assert {r["service_request_id"] for r in everything} == {str(fire.id), str(gas.id)}
    opened = client.get("/open311/v2/requests.json?status=open").json
    assert [r["service_request_id"] for r in opened] == [str(fire.id)]
    closed = client.get("/open311/v2/requests.json?status=closed").json
    assert [r["status"] for r in closed] == ["closed"]
    by_code = client.get("/open311/v2/requests.json?service_code=lpg_illegal").json
    assert [r["service_request_id"] for r in by_code] == [str(gas.id)]
    assert client.get("/open311/v2/requests.json?start_date=2999-01-01T00:00:00Z").json == []
    assert len(client.get("/open311/v2/requests.json?page_size=1").json) == 1
    for bad in ("status=maybe", "start_date=yesterday", "page_size=x"):
        assert client.get(f"/open311/v2/requests.json?{bad}").status_code == 422
    detail = client.get(f"/open311/v2/requests/{fire.id}.json").json
    assert len(detail) == 1
    item = detail[0]
    assert item["status"] == "open" and item["agency_responsible"] == "市消防救援支队"
    assert (item["lat"], item["long"]) == (fire.lat, fire.lng) and item["media_url"]
    assert item["service_name"] == "消防通道、安全出口堵塞锁闭" and item["status_notes"] == "已分拨"
    assert client.get("/open311/v2/requests/999999.json").status_code == 404


def test_no_reporter_identity_in_open311(hz, client):
    hazard, tip = hz.new_hazard(0)
    openid = hz.db.session.get(Resident, tip.resident_id).openid
    text = client.get("/open311/v2/requests.json").get_data(as_text=True)
    text += client.get(f"/open311/v2/requests/{hazard.id}.json").get_data(as_text=True)
    assert openid not in text and "openid" not in text and "resident" not in text
    assert f'"{tip.id}"' not in text.replace(f'"service_request_id":"{hazard.id}"', "")


def test_staff_list_filters_by_department_status_and_grid(hz, client):
    fire, _ = hz.new_hazard(0, "fire_exit_blocked")
    gas, _ = hz.new_hazard(9, "lpg_illegal")
    _, sup = hz.staff("sup", ["supervisor"])
    get = lambda q: [h["id"] for h in client.get(f"/api/staff/v1/hazards{q}", headers=sup).json["items"]]  # noqa: E731
    assert get("") == [gas.id, fire.id]
    assert get("?department=fire") == [fire.id]
    assert get(f"?grid={gas.grid_code}") == [gas.id]
    assert get(f"?grid={gas.grid_id}") == [gas.id]
    assert get("?status=accepted") == []
    assert get("?status=dispatched,accepted") == [gas.id, fire.id]
    assert get("?status=open") == [gas.id, fire.id]
    detail = client.get(f"/api/staff/v1/hazards/{fire.id}", headers=sup).json
    assert detail["tips"][0]["first_valid"] and detail["first_tip_id"] == detail["tips"][0]["tip_id"]


def test_department_staff_see_and_move_only_their_departments_tickets(hz, client):
    fire, _ = hz.new_hazard(0, "fire_exit_blocked")
    gas, _ = hz.new_hazard(9, "lpg_illegal")
    _, firefighter = hz.staff("fire1", ["department"], "fire")
    listed = client.get("/api/staff/v1/hazards?department=urban_mgmt", headers=firefighter).json["items"]
    assert [h["id"] for h in listed] == [fire.id]  # the filter cannot widen their view
    assert client.get(f"/api/staff/v1/hazards/{gas.id}", headers=firefighter).status_code == 404
    moved = client.post(f"/api/staff/v1/hazards/{fire.id}/transition", json={"to": "accepted"}, headers=firefighter)
    assert moved.status_code == 200 and moved.json["status"] == "accepted"
    assert client.post(f"/api/staff/v1/hazards/{gas.id}/transition", json={"to": "accepted"},
                       headers=firefighter).status_code == 404
    client.post(f"/api/staff/v1/hazards/{fire.id}/transition", json={"to": "resolved", "note": "好了"},
                headers=firefighter)
    refused = client.post(f"/api/staff/v1/hazards/{fire.id}/transition", json={"to": "verified"}, headers=firefighter)
    assert refused.status_code == 403 and refused.json["error"]["code"] == "transition_forbidden"


def test_roles_and_credentials(hz, client):
    hazard, _ = hz.new_hazard(0)
    _, moderator = hz.staff("mod", ["moderator"])
    _, finance = hz.staff("fin", ["finance"])
    assert client.get("/api/staff/v1/hazards").status_code == 401
    assert client.get("/api/staff/v1/hazards", headers=finance).status_code == 403
    assert client.get("/api/staff/v1/hazards", headers=moderator).status_code == 200
    assert client.post(f"/api/staff/v1/hazards/{hazard.id}/transition", json={"to": "accepted"},
                       headers=moderator).status_code == 403


def test_openapi_documents_the_hazard_paths(hz, client):
    spec = client.get("/api/openapi.json").json
    for path in ("/api/staff/v1/hazards", "/api/staff/v1/hazards/{hazard_id}/transition", "/api/dept/v1/tickets",
                 "/api/dept/v1/tickets/{hazard_id}/ack", "/api/dept/v1/tickets/{hazard_id}/resolve"):
        assert path in spec["paths"], path
    ticket = spec["components"]["schemas"]["Ticket"]["properties"]
    assert "openid" not in ticket and "resident_id" not in ticket and "tips" not in ticket


def test_staff_transition_with_department_photos(hz, client):
    import io

    from .test_dept_api import jpeg_bytes

    hazard, _ = hz.new_hazard(0)
    transition_hazard(hazard.id, "accepted", Actor("department", None, "fire"))
    hz.db.session.commit()
    _, firefighter = hz.staff("fire1", ["department"], "fire")
    photo = client.post("/api/dept/v1/photos", headers=hz.dept_key("fire"),
                        data={"file": (io.BytesIO(jpeg_bytes()), "a.jpg")}).json["id"]
    reply = client.post(f"/api/staff/v1/hazards/{hazard.id}/transition",
                        json={"to": "resolved", "note": "现场已整改", "photo_ids": [photo]}, headers=firefighter)
    assert reply.status_code == 200 and [p["id"] for p in reply.json["resolution_photos"]] == [photo]


def test_open311_is_rate_limited_per_client(hz, client):
    codes = [client.get("/open311/v2/services.json").status_code for _ in range(121)]
    assert codes[:120] == [200] * 120 and codes[120] == 429
    reply = client.get("/open311/v2/requests.json")
    assert reply.status_code == 200  # each endpoint has its own budget


def test_operator_indicators_count_open_overdue_and_failing_webhooks(hz, client):
    from app.hazards.models import Hazard, WebhookDelivery
    from app.ops import read_indicators

    hazard, _ = hz.new_hazard(0)
    hz.new_hazard(9, "lpg_illegal")
    hz.db.session.execute(Hazard.__table__.update().where(Hazard.id == hazard.id).values(overdue=True))
    hz.db.session.commit()
    readings = {r.indicator.name: r for r in read_indicators()}
    assert readings["hazards_open"].values["dispatched"] == 2 and readings["hazards_open"].values["accepted"] == 0
    assert readings["hazards_overdue"].values == {"": 1.0} and readings["hazards_overdue"].alerting
    assert readings["webhook_deliveries_failing"].values == {"": 0.0}
    assert not hz.db.session.query(WebhookDelivery).count()
    metrics = client.get("/metrics")  # no METRICS_TOKEN in the test configuration
    assert metrics.status_code == 200 and "renrenpai_hazards_overdue 1.0" in metrics.get_data(as_text=True)
