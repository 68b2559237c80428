"""A scripted run through the public APIs: residents submit through /api/mp/v1, the intake runs from
the outbox on an RQ worker, and each automatic outcome shows in the resident's timeline and in the
staff view."""
import io
import uuid

from PIL import Image

from app.extensions import db
from app.queue import run_burst
from tests.media.corpus import encode, street_photo
from tests.moderation.factories import make_staff, point_in_grid, staff_headers


def _login(client, wechat_sandbox):
    code = wechat_sandbox.login_code(f"o_{uuid.uuid4().hex[:20]}")
    return {"Authorization": f"Bearer {client.post('/api/mp/v1/auth/login', json={'code': code}).get_json()['token']}"}


def _submit(client, headers, data, description="小区楼下有人违规存放液化气瓶", at=None):
    photo = client.post("/api/mp/v1/photos", headers=headers, content_type="multipart/form-data",
                        data={"file": (io.BytesIO(data), "p.jpg")})
    assert photo.status_code == 201, photo.get_json()
    lat, lng = at or point_in_grid()
    body = {"category": "lpg_illegal", "description": description,
            "location": {"lat": lat, "lng": lng, "coord": "wgs84"}, "photo_ids": [photo.get_json()["id"]]}
    tip = client.post("/api/mp/v1/tips", json=body, headers={**headers, "Idempotency-Key": str(uuid.uuid4())})
    assert tip.status_code == 201, tip.get_json()
    # The requests share this test's app context: a view that reads its rows again after the commit
    # would leave a write transaction open here, and SQLite's lock would stall the intake worker.
    assert not db.session().in_transaction()
    return tip.get_json()["id"]


def test_each_automatic_outcome_through_the_apis(intake_app, wechat_sandbox):
    client = intake_app.test_client()
    original = street_photo(777, (800, 600))
    half = original.resize((400, 300), Image.Resampling.BILINEAR)
    alice, bob, carol = (_login(client, wechat_sandbox) for _ in range(3))
    far = point_in_grid()
    far = (far[0] + 0.05, far[1])

    clean = _submit(client, alice, encode(original, "JPEG", quality=90))
    run_burst(intake_app, ["intake"])
    resend = _submit(client, alice, encode(half, "JPEG", quality=40))
    risky = _submit(client, bob, encode(street_photo(778, (800, 600)), "JPEG"), "【违规】广告内容", at=far)
    review = _submit(client, carol, encode(street_photo(779, (800, 600)), "JPEG"), "请看【待审】", at=far)
    run_burst(intake_app, ["intake"])

    seen = {name: client.get(f"/api/mp/v1/tips/{tip_id}", headers=who).get_json()
            for name, tip_id, who in (("clean", clean, alice), ("resend", resend, alice), ("risky", risky, bob),
                                      ("review", review, carol))}
    assert {k: v["status"] for k, v in seen.items()} == {"clean": "pending_review", "resend": "duplicate",
                                                         "risky": "rejected", "review": "pending_review"}
    assert seen["resend"]["duplicate_of"]["tip_id"] == clean
    notes = [step["note"] for step in seen["clean"]["timeline"]]
    assert "已收到报料，系统正在自动检查" in notes and notes[-1] == "自动检查完成，已进入人工审核，请耐心等待"
    assert "内容安全" in seen["risky"]["timeline"][-1]["note"]

    make_staff("checker", ["moderator"])
    staff = staff_headers(client, "checker")
    detail = client.get(f"/api/staff/v1/tips/{review}", headers=staff).get_json()
    assert detail["flagged"] and "text_review" in {f["code"] for f in detail["signals"]["flags"]}
    assert detail["grid"] is not None
    # the resident never sees internal signals; staff never see the reporter's openid
    assert "signals" not in seen["review"]
    assert "openid" not in str(detail)
