"""Residents' API through HTTP: an app pointed at the real WeChat sandbox, the catalogue and grids
loaded, and helpers that log a resident in and upload real photo bytes."""
from __future__ import annotations

import itertools
import uuid

import pytest

from app.extensions import db
from app.geo.coords import wgs84_to_gcj02
from app.queue import run_burst
from tests.moderation.factories import make_staff, staff_headers
from tests.rewards.helpers import fund
from tests.media import corpus

# 南城, Dongguan (WGS-84) and the same point as wx.getLocation reports it (GCJ-02).
INSIDE_WGS84 = (23.0209, 113.7518)
INSIDE_GCJ02 = wgs84_to_gcj02(*INSIDE_WGS84)
OUTSIDE_GCJ02 = (39.9087, 116.3975)  # Beijing
_photo_seed = itertools.count(1)


@pytest.fixture
def mp_app(sandbox_app, reference_data):
    return sandbox_app


@pytest.fixture
def mp_client(mp_app):
    return mp_app.test_client()


class Resident:
    def __init__(self, client, token, resident_id, openid):
        self.client, self.token, self.id, self.openid = client, token, resident_id, openid

    @property
    def headers(self):
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, path, **kwargs):
        return self.client.get(f"/api/mp/v1{path}", headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs)

    def post(self, path, **kwargs):
        return self.client.post(f"/api/mp/v1{path}", headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs)

    def upload(self, data: bytes | None = None, filename="photo.jpg"):
        import io

        data = corpus.jpeg(corpus.street_photo(next(_photo_seed), (640, 480))) if data is None else data
        return self.post("/photos", data={"file": (io.BytesIO(data), filename)}, content_type="multipart/form-data")

    def photo_id(self, data: bytes | None = None) -> int:
        response = self.upload(data)
        assert response.status_code == 201, response.get_json()
        return response.get_json()["id"]

    def submit(self, body: dict | None = None, key: str | None = None, **overrides):
        if body is None:
            body = tip_body(photo_ids=[self.photo_id()], **overrides)
        return self.post("/tips", json=body, headers={"Idempotency-Key": key or str(uuid.uuid4())})


def tip_body(photo_ids, category="lpg_illegal", description="小区楼下有人用黑气瓶", location=None, **extra):
    lat, lng = INSIDE_GCJ02
    return {"category": category, "description": description,
            "location": location or {"lat": lat, "lng": lng, "coord": "gcj02", "address": "东莞市南城街道"},
            "photo_ids": photo_ids, **extra}


@pytest.fixture
def login(mp_client, wechat_sandbox):
    """login(openid=None) → a Resident logged in through the sandbox's code2session."""

    def _login(openid: str | None = None) -> Resident:
        openid = openid or f"o_{uuid.uuid4().hex[:20]}"
        code = wechat_sandbox.login_code(openid)
        response = mp_client.post("/api/mp/v1/auth/login", json={"code": code})
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        return Resident(mp_client, body["token"], body["resident"]["id"], openid)

    return _login


# --- through the other side: staff approval and the queued jobs -----------------------------------

def drain(app, queues=None):
    """Run the queued jobs in-process. The test's session ends its transaction first: after a POST
    the test client leaves it open (no app context pops), and on SQLite it would hold the write lock."""
    db.session.rollback()
    run_burst(app, queues) if queues else run_burst(app)


def approve_next(client, staff, severity=2):
    claimed = client.post("/api/staff/v1/review/claim", headers=staff)
    assert claimed.status_code == 200, claimed.get_data(as_text=True)
    tip_id = claimed.get_json()["id"]
    decision = client.post(f"/api/staff/v1/tips/{tip_id}/decision", headers=staff,
                           json={"action": "approve", "category": "lpg_illegal", "severity": severity})
    assert decision.status_code == 200, decision.get_json()
    return decision.get_json()


@pytest.fixture
def staff(mp_client):
    make_staff("mp-moderator", ["moderator"])
    return staff_headers(mp_client, "mp-moderator")


def send_tip(resident, app, photo=None, **body) -> int:
    photo_id = resident.photo_id(photo)
    answer = resident.submit(tip_body(photo_ids=[photo_id], **body))
    assert answer.status_code == 201, answer.get_json()
    drain(app, ["intake"])
    return answer.get_json()["id"]


def packet_sent(resident, app, client, staff, wechat_sandbox) -> dict:
    """A tip approved through the staff API, its red packet sent by the payouts worker."""
    fund()
    send_tip(resident, app)
    decision = approve_next(client, staff)
    assert decision["reward"]["status"] == "reserved"
    drain(app, ["payouts", "notify"])
    rewards = resident.get("/rewards").get_json()["items"]
    assert rewards[0]["status"] == "sent" and rewards[0]["package"]
    return rewards[0]
