"""Login through the sandbox's code2session; bearer tokens that expire and can be revoked."""
from datetime import timedelta

from sqlalchemy import select, update

from app.extensions import db
from app.models.base import utcnow
from app.models.resident import Resident, ResidentToken


def test_login_creates_the_resident_once_and_stores_only_the_token_hash(mp_client, wechat_sandbox, login):
    first = login("o_alice")
    second = login("o_alice")
    assert first.id == second.id and first.token != second.token
    assert db.session.scalar(select(Resident.openid).where(Resident.id == first.id)) == "o_alice"
    hashes = db.session.scalars(select(ResidentToken.token_hash)).all()
    assert len(hashes) == 2 and first.token not in hashes and all(len(h) == 64 for h in hashes)
    answer = first.get("/categories")
    assert answer.status_code == 200


def test_a_used_or_made_up_code_is_401_wechat_code_invalid(mp_client, wechat_sandbox):
    code = wechat_sandbox.login_code("o_bob")
    assert mp_client.post("/api/mp/v1/auth/login", json={"code": code}).status_code == 200
    again = mp_client.post("/api/mp/v1/auth/login", json={"code": code})
    assert again.status_code == 401 and again.get_json()["error"]["code"] == "wechat_code_invalid"
    made_up = mp_client.post("/api/mp/v1/auth/login", json={"code": "not-a-code"})
    assert made_up.status_code == 401 and made_up.get_json()["error"]["code"] == "wechat_code_invalid"
    assert db.session.scalar(select(Resident).where(Resident.openid == "o_bob")) is not None
    assert db.session.scalars(select(ResidentToken)).all().__len__() == 1


def test_login_body_is_validated(mp_client, wechat_sandbox):
    for body in ({}, {"code": ""}, {"code": 5}, {"code": "x" * 200}):
        answer = mp_client.post("/api/mp/v1/auth/login", json=body)
        assert answer.status_code == 422, body
        assert answer.get_json()["error"]["code"] == "validation_error"
        assert "code" in answer.get_json()["error"]["fields"]
    garbled = mp_client.post("/api/mp/v1/auth/login", data="{not json", content_type="application/json")
    assert garbled.status_code in (400, 422)


def test_wechat_outage_is_503_and_creates_nothing(mp_client, wechat_sandbox):
    wechat_sandbox.fault("jscode2session", "http_500", count=3)
    answer = mp_client.post("/api/mp/v1/auth/login", json={"code": wechat_sandbox.login_code("o_carol")})
    assert answer.status_code == 503
    assert answer.get_json()["error"]["code"] == "wechat_unavailable"
    assert db.session.scalars(select(Resident)).all() == []


def test_every_resident_endpoint_needs_a_token(mp_client):
    for method, path in (("get", "/categories"), ("post", "/photos"), ("post", "/tips"), ("get", "/tips"),
                         ("get", "/tips/1"), ("post", "/tips/1/withdraw"), ("get", "/rewards"),
                         ("get", "/hazards/nearby?lat=23&lng=113.7&category=lpg_illegal"),
                         ("post", "/auth/logout"), ("get", "/me/export"), ("delete", "/me")):
        answer = getattr(mp_client, method)(f"/api/mp/v1{path}")
        assert answer.status_code == 401, (method, path)
        assert answer.get_json()["error"]["code"] == "unauthorized"
        bad = getattr(mp_client, method)(f"/api/mp/v1{path}", headers={"Authorization": "Bearer rsd_nope"})
        assert bad.status_code == 401 and bad.get_json()["error"]["code"] == "token_invalid"


def test_expired_revoked_and_blocked_tokens_are_refused(login):
    resident = login()
    assert resident.get("/tips").status_code == 200
    db.session.execute(update(ResidentToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert resident.get("/tips").status_code == 401

    fresh = login(resident.openid)
    assert fresh.post("/auth/logout").status_code == 200
    assert fresh.get("/tips").status_code == 401
    assert fresh.post("/auth/logout").status_code == 401

    third = login(resident.openid)
    db.session.execute(update(Resident).values(blocked=True))
    db.session.commit()
    assert third.get("/tips").status_code == 401


def test_a_blocked_resident_cannot_log_in(mp_client, wechat_sandbox, login):
    resident = login("o_blocked")
    db.session.execute(update(Resident).where(Resident.id == resident.id).values(blocked=True))
    db.session.commit()
    answer = mp_client.post("/api/mp/v1/auth/login", json={"code": wechat_sandbox.login_code("o_blocked")})
    assert answer.status_code == 403 and answer.get_json()["error"]["code"] == "resident_blocked"


def test_token_ttl_comes_from_config(make_app, sandbox_config, reference_data, db, wechat_sandbox):
    application = make_app(**sandbox_config, RESIDENT_TOKEN_TTL=60)
    with application.app_context():
        answer = application.test_client().post("/api/mp/v1/auth/login",
                                                json={"code": wechat_sandbox.login_code("o_ttl")})
        assert answer.status_code == 200 and answer.get_json()["expires_in"] == 60
        row = db.session.scalars(select(ResidentToken)).one()
        assert timedelta(seconds=50) < row.expires_at - utcnow() <= timedelta(seconds=60)
