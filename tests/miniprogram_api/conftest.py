"""Residents' API through HTTP: an app pointed at the real WeChat sandbox, the catalogue and grids
loaded, and helpers that log a resident in and upload real photo bytes."""
from __future__ import annotations

import itertools
import uuid

import pytest

from app.geo.coords import wgs84_to_gcj02
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
