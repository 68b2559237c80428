"""Hostile input is answered 4xx in the one error shape, never 500 (issue #16 point 3): ids past int4
(a DataError on PostgreSQL) or written with non-ASCII digits, through the one id converter and
app/ids.py; bodies nested 50,000 deep, lone surrogates, NUL, 5,000-digit numbers, NaN, not JSON or
not sent as JSON, through the one JSON loader (app/json_body.py).

The app propagates unexpected errors in tests, so a 500 here fails with its traceback."""
import json

import pytest

from app.ids import MAX_ID, IdConverter, parse_cursor, parse_id
from app.errors import BadRequest
from app.json_body import InvalidJson, load_json

BAD_IDS = ["99999999999999999999", "3000000000", str(MAX_ID + 1), "²", "１２"]
HOSTILE_BODIES = {
    "deep": "[" * 50_000 + "]" * 50_000,
    "deep_object": '{"a":' * 100 + "1" + "}" * 100,
    "surrogate": '{"code": "\\ud800", "username": "\\ud800", "password": "\\udfffxxxxxxxx"}',
    "nul": '{"code": "a\\u0000b", "username": "a\\u0000", "password": "xxxxxxxx\\u0000"}',
    "huge_int": '{"code": ' + "9" * 5000 + ', "username": 1, "password": 2}',
    "huge_float": '{"code": 1e999}',
    "nan": '{"code": NaN}',
    "not_json": "code=abc",
    "truncated": '{"code": "abc"',
    "bad_utf8": b'{"code": "\xff\xfe"}',
}


@pytest.fixture
def hostile(make_app, db, reference_data):
    """An app without rate limits; staff of every role, a department key, a resident token."""
    from miniprogram_api.auth import issue_resident_token
    from app.models.resident import Resident
    from tests.hazards.conftest import Helpers

    app = make_app(RATELIMIT_ENABLED=False)
    helpers = Helpers(db)
    _, admin = helpers.staff("hostile_admin", ["admin"])
    dept = helpers.dept_key("fire")
    resident = Resident(openid="o-hostile-0001")
    db.session.add(resident)
    db.session.flush()
    token, _ = issue_resident_token(resident)
    db.session.commit()
    return app.test_client(), admin, dept, {"Authorization": f"Bearer {token}"}


def _assert_error(reply, status, code=None):
    assert reply.status_code == status, (reply.status_code, reply.get_data(as_text=True)[:300])
    error = reply.get_json()["error"]
    assert set(error) == {"code", "message", "fields"}
    if code:
        assert error["code"] == code


@pytest.mark.parametrize("bad", BAD_IDS)
def test_ids_that_cannot_exist_are_404(hostile, bad):
    client, admin, dept, resident = hostile
    for path in (f"/api/staff/v1/tips/{bad}", f"/api/staff/v1/hazards/{bad}"):
        _assert_error(client.get(path, headers=admin), 404)
    reply = client.get(f"/open311/v2/requests/{bad}.json")  # GeoReport's error list under its prefix
    assert reply.status_code == 404 and reply.get_json() == [{"code": 404, "description": reply.get_json()[0]["description"]}]
    for path, body in ((f"/api/staff/v1/tips/{bad}/decision", {"action": "reject", "reason": "x"}),
                       (f"/api/staff/v1/review/{bad}/release", None),
                       (f"/api/staff/v1/hazards/{bad}/transition", {"to": "dispatched"}),
                       (f"/api/staff/v1/finance/payouts/{bad}/actions", {"action": "recheck"}),
                       (f"/api/staff/v1/finance/requests/{bad}/decision", {"approve": True}),
                       (f"/api/staff/v1/finance/reconciliation-exceptions/{bad}/resolve", {"note": "x"})):
        _assert_error(client.post(path, json=body, headers=admin), 404)
    _assert_error(client.get(f"/api/dept/v1/tickets/{bad}", headers=dept), 404)
    _assert_error(client.post(f"/api/dept/v1/tickets/{bad}/ack", json={}, headers=dept), 404)
    _assert_error(client.get(f"/api/mp/v1/tips/{bad}", headers=resident), 404)


@pytest.mark.parametrize("bad", BAD_IDS + ["-1", "abc", "1.5"])
def test_cursors_that_the_server_never_gave_are_400_invalid_cursor(hostile, bad):
    client, admin, dept, resident = hostile
    for path, headers in (("/api/staff/v1/hazards", admin), ("/api/staff/v1/finance/payouts", admin),
                          ("/api/dept/v1/tickets", dept), ("/api/mp/v1/tips", resident),
                          ("/api/mp/v1/rewards", resident)):
        _assert_error(client.get(path, query_string={"cursor": bad}, headers=headers), 400, "invalid_cursor")


@pytest.mark.parametrize("bad", BAD_IDS)
def test_id_like_query_arguments_are_bounded(hostile, bad):
    client, admin, _, _ = hostile
    reply = client.get("/api/staff/v1/hazards", query_string={"grid": bad}, headers=admin)
    assert reply.status_code == 200 and reply.get_json()["items"] == []  # no such grid (a code, or an id)
    for name in ("service_request_id", "page", "page_size"):  # Open311 answers GeoReport's error list
        reply = client.get("/open311/v2/requests.json", query_string={name: bad})
        assert reply.status_code == 422 and reply.get_json()[0]["code"] == 422
    if bad != "１２":  # marshmallow reads full-width digits as the number (12): harmless
        _assert_error(client.get("/api/staff/v1/review/queue", query_string={"cursor": bad}, headers=admin), 422)


@pytest.mark.parametrize("bad", [3_000_000_000, 10 ** 18, 0, -1])
def test_ids_in_bodies_are_bounded(hostile, bad):
    client, admin, _, _ = hostile
    for path, body in (("/api/staff/v1/tips/1/reassign", {"staff_id": bad}),
                       ("/api/staff/v1/tips/1/decision", {"action": "duplicate", "duplicate_of": {"tip_id": bad}}),
                       ("/api/staff/v1/hazards/1/transition", {"to": "resolved", "photo_ids": [bad]})):
        reply = client.post(path, json=body, headers=admin)
        _assert_error(reply, 422, "validation_error")


@pytest.mark.parametrize("name", sorted(HOSTILE_BODIES))
def test_hostile_json_bodies_are_400_bad_request(hostile, name):
    client, admin, dept, resident = hostile
    body = HOSTILE_BODIES[name]
    for path, headers in (("/api/mp/v1/auth/login", {}), ("/api/staff/v1/auth/login", {}),
                          ("/api/mp/v1/tips", {**resident, "Idempotency-Key": "hostile-key-1"}),
                          ("/api/staff/v1/finance/requests", admin), ("/api/dept/v1/tickets/1/resolve", dept)):
        reply = client.post(path, data=body, content_type="application/json", headers=headers)
        _assert_error(reply, 400, "bad_request")
        assert "JSON" in reply.get_json()["error"]["message"]


def test_a_body_sent_with_another_content_type_is_400_and_no_body_is_the_schemas_call(hostile):
    client, admin, _, _ = hostile
    reply = client.post("/api/staff/v1/auth/login", data=json.dumps({"username": "a", "password": "b"}),
                        content_type="text/plain")
    _assert_error(reply, 400, "bad_request")
    _assert_error(client.post("/api/staff/v1/auth/login"), 422, "validation_error")  # nothing sent: fields missing
    non_object = client.post("/api/staff/v1/auth/login", json=[1, 2])
    _assert_error(non_object, 422, "validation_error")


def test_the_loader_and_the_id_helpers():
    assert load_json(b'{"a": [1, 2.5, "\\u4e2d", null, true]}') == {"a": [1, 2.5, "中", None, True]}
    assert load_json('{"n": -9223372036854775808}') == {"n": -(2 ** 63)}
    for bad in (HOSTILE_BODIES["deep"], '{"k\\ud800": 1}', "Infinity", '"\\u0000"', "9" * 20):
        with pytest.raises(InvalidJson):
            load_json(bad)
    assert [parse_id(v) for v in ("0", "7", str(MAX_ID), str(MAX_ID + 1), "²", "", None, "07", " 7", 7, -7)] \
        == [0, 7, MAX_ID, None, None, None, None, 7, None, 7, None]
    assert parse_cursor("") is None and parse_cursor("12") == 12
    with pytest.raises(BadRequest):
        parse_cursor("12abc")
    assert IdConverter.regex == "[0-9]+"


def test_the_openapi_document_bounds_path_ids(hostile):
    client, _, _, _ = hostile
    spec = client.get("/api/openapi.json").get_json()
    param = next(p for p in spec["paths"]["/api/staff/v1/hazards/{hazard_id}"]["parameters"] if p["name"] == "hazard_id")
    assert param["schema"]["maximum"] == MAX_ID


@pytest.mark.parametrize("where", ["query_key", "query_value", "path", "form"])
def test_nul_in_query_path_or_form_is_400_on_every_engine(hostile, where):
    """PostgreSQL text cannot hold NUL: `?category=%00` was a DataError (500) there, found by the fuzzing."""
    client, admin, _, _ = hostile
    if where == "query_value":
        _assert_error(client.get("/api/staff/v1/hazards", query_string={"category": "a\x00"}, headers=admin),
                      400, "bad_request")
        reply = client.get("/open311/v2/requests.json", query_string={"service_code": "\x00"})
        assert reply.status_code == 400 and reply.get_json()[0]["code"] == 400  # GeoReport's shape there
    elif where == "query_key":
        _assert_error(client.get("/api/staff/v1/hazards?ca%00t=1", headers=admin), 400, "bad_request")
    elif where == "path":
        reply = client.get("/open311/v2/services/lpg%00illegal.json")
        assert reply.status_code == 400 and reply.get_json()[0]["code"] == 400
    else:
        reply = client.post("/console/login", data={"username": "a\x00", "password": "x"})
        assert reply.status_code == 400 and "无效字符" in reply.get_data(as_text=True)


def _all_messages(fields):
    if isinstance(fields, dict):
        for value in fields.values():
            yield from _all_messages(value)
    elif isinstance(fields, list):
        for value in fields:
            yield from _all_messages(value)
    else:
        yield fields


def test_validation_messages_residents_and_staff_read_are_chinese(hostile):
    """marshmallow's English defaults ("Missing data for required field.", "Not a valid integer.",
    "Invalid input type." …) are translated in one place (app/errors.py); the codes stay the same."""
    import re

    client, admin, _, resident = hostile
    replies = [
        client.post("/api/staff/v1/tips/1/decision", json={"action": 5, "severity": "x", "message": ["a"]}, headers=admin),
        client.post("/api/staff/v1/tips/1/decision", json=[1, 2], headers=admin),
        client.post("/api/staff/v1/tips/1/decision", json={}, headers=admin),
        client.post("/api/staff/v1/hazards/1/transition", json={"to": "resolved", "photo_ids": ["a", 1.5]}, headers=admin),
        client.get("/api/staff/v1/review/queue", query_string={"cursor": "abc"}, headers=admin),
        client.post("/api/staff/v1/auth/login", json={"username": 1}),
        client.post("/api/mp/v1/auth/login", json=[1]),
        client.post("/api/mp/v1/auth/login", json={"code": None}),
        client.post("/api/mp/v1/tips", json={"lat": "north", "lng": True, "photo_ids": "x"}, headers=resident),
    ]
    seen = []
    for reply in replies:
        _assert_error(reply, 422, "validation_error")
        messages = list(_all_messages(reply.get_json()["error"]["fields"]))
        assert messages, reply.get_json()
        for message in messages:
            assert re.search("[\u4e00-\u9fff]", message) and not re.search("[A-Za-z]{4,}", message.replace("ISO", "")), message
        seen += messages
    assert {"必填", "须为整数", "类型不正确"} <= set(seen), seen
