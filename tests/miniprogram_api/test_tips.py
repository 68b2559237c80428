"""POST /tips: Idempotency-Key, validation, photo ownership, intake enqueued on commit; withdraw."""
import threading
import uuid

import pytest
from sqlalchemy import func, select, update

from app.extensions import db
from app.models.outbox import OutboxMessage
from app.models.photo import Photo
from app.models.tip import Tip, TipEvent
from tests.media import corpus
from tests.miniprogram_api.conftest import INSIDE_GCJ02, INSIDE_WGS84, OUTSIDE_GCJ02, tip_body


def count(model):
    return db.session.scalar(select(func.count()).select_from(model))


def flat_messages(value):
    if isinstance(value, dict):
        return [m for v in value.values() for m in flat_messages(v)]
    if isinstance(value, list):
        return [m for v in value for m in flat_messages(v)]
    return [value]


def intake_messages():
    return db.session.scalar(select(func.count(OutboxMessage.id)).where(OutboxMessage.topic == "tip.intake"))


def test_submit_creates_a_received_tip_with_timeline_and_intake_message(login, redis_conn):
    resident = login()
    sideways = corpus.jpeg(corpus.street_photo(41, (480, 640)), exif=corpus.gps_exif(orientation=6))
    photos = [resident.photo_id(), resident.photo_id(sideways)]
    answer = resident.post("/tips", json=tip_body(photos), headers={"Idempotency-Key": "k-0000001"})
    assert answer.status_code == 201, answer.get_json()
    body = answer.get_json()
    assert body["status"] == "received" and body["category"] == "lpg_illegal"
    assert [p["id"] for p in body["photos"]] == photos and all(p["thumb_url"] for p in body["photos"])
    # an upright photo is its own display copy; a sideways one waits for its job, showing its thumbnail
    assert [p["url"] == p["thumb_url"] for p in body["photos"]] == [False, True]
    assert body["location"]["coord"] == "gcj02"
    assert body["location"]["lat"] == pytest.approx(INSIDE_GCJ02[0], abs=1e-6)
    tip = db.session.get(Tip, body["id"])
    assert (tip.lat, tip.lng) == pytest.approx(INSIDE_WGS84, abs=1e-6)  # stored WGS-84
    assert tip.priority == 10 and tip.resident_id == resident.id
    assert [e.status for e in tip.events] == ["received"]
    message = db.session.scalars(select(OutboxMessage).where(OutboxMessage.topic == "tip.intake")).one()
    assert message.topic == "tip.intake" and message.payload == {"tip_id": tip.id}
    assert message.dedup_key == f"tip.intake:{tip.id}"
    from app.queue import get_queue

    assert get_queue("intake").count == 2  # after each commit: the sideways photo's display copy, then the intake


def test_wgs84_location_is_taken_as_is(login):
    resident = login()
    lat, lng = INSIDE_WGS84
    body = tip_body([resident.photo_id()], location={"lat": lat, "lng": lng, "coord": "wgs84"})
    tip_id = resident.submit(body).get_json()["id"]
    tip = db.session.get(Tip, tip_id)
    assert (tip.lat, tip.lng) == (lat, lng) and tip.coord_in == "wgs84"


def test_same_key_same_body_is_the_same_tip_other_body_is_409(login):
    resident = login()
    body = tip_body([resident.photo_id()])
    first = resident.submit(body, key="retry-key-1")
    again = resident.submit(body, key="retry-key-1")
    assert first.status_code == 201 and again.status_code == 200
    assert again.get_json()["id"] == first.get_json()["id"]
    other = resident.submit({**body, "description": "另一条"}, key="retry-key-1")
    assert other.status_code == 409 and other.get_json()["error"]["code"] == "idempotency_conflict"
    assert count(Tip) == 1 and intake_messages() == 1


def test_keys_are_per_resident(login):
    alice, bob = login(), login()
    a = alice.submit(key="shared-key-1")
    b = bob.submit(key="shared-key-1")
    assert a.status_code == b.status_code == 201 and a.get_json()["id"] != b.get_json()["id"]


def test_missing_or_bad_idempotency_key_is_refused(login):
    resident = login()
    body = tip_body([resident.photo_id()])
    missing = resident.post("/tips", json=body)
    assert missing.status_code == 422 and "Idempotency-Key" in missing.get_json()["error"]["fields"]
    for bad in ("short", "x" * 129, "has space in it"):
        assert resident.post("/tips", json=body, headers={"Idempotency-Key": bad}).status_code == 422
    assert count(Tip) == 0


@pytest.mark.parametrize("change, field, code", [
    ({"category": "no_such_category"}, "category", "unknown_category"),
    ({"description": "长" * 501}, "description", "validation_error"),
    ({"photo_ids": []}, "photo_ids", "validation_error"),
    ({"photo_ids": list(range(1, 11))}, "photo_ids", "validation_error"),
    ({"photo_ids": ["1"]}, "photo_ids", "validation_error"),
    ({"location": {"lat": OUTSIDE_GCJ02[0], "lng": OUTSIDE_GCJ02[1]}}, "location", "outside_service_area"),
    ({"location": {"lat": 91, "lng": 113.7}}, "location", "validation_error"),
    ({"location": {"lat": 23.0, "lng": 113.7, "coord": "bd09"}}, "location", "validation_error"),
    ({"location": None}, "location", "validation_error"),
    ({"surprise": 1}, "surprise", "validation_error"),
    ({"category": None}, "category", "validation_error"),
])
def test_validation_with_chinese_messages(login, change, field, code):
    resident = login()
    body = {**tip_body([resident.photo_id()]), **change}
    answer = resident.submit(body)
    assert answer.status_code == 422, answer.get_json()
    error = answer.get_json()["error"]
    assert error["code"] == code and field in error["fields"]
    assert not error["message"].isascii()
    assert all(not message.isascii() for message in flat_messages(error["fields"][field])), error["fields"]
    assert count(Tip) == 0 and intake_messages() == 0
    assert db.session.scalar(select(func.count(Photo.id)).where(Photo.tip_id.isnot(None))) == 0


def test_photos_must_be_the_callers_and_unused(login):
    alice, bob = login(), login()
    bobs = bob.photo_id()
    stolen = alice.submit(tip_body([alice.photo_id(), bobs]))
    assert stolen.status_code == 422 and stolen.get_json()["error"]["code"] == "photo_unavailable"
    assert db.session.get(Photo, bobs).tip_id is None
    assert count(Tip) == 0  # the partly claimed tip rolled back with its photos
    assert db.session.scalar(select(func.count(Photo.id)).where(Photo.tip_id.isnot(None))) == 0

    mine = alice.photo_id()
    assert alice.submit(tip_body([mine])).status_code == 201
    reused = alice.submit(tip_body([mine]))
    assert reused.status_code == 422 and reused.get_json()["error"]["code"] == "photo_unavailable"
    assert alice.submit(tip_body([999999])).status_code == 422
    duplicated = alice.submit(tip_body([alice.photo_id()] * 2))
    assert duplicated.status_code == 422 and duplicated.get_json()["error"]["code"] == "duplicate_photo_ids"


def test_daily_tip_limit_from_config(make_app, sandbox_config, reference_data, db, wechat_sandbox):
    application = make_app(**sandbox_config, TIPS_PER_RESIDENT_PER_DAY=2)
    with application.app_context():
        from tests.miniprogram_api.conftest import Resident

        client = application.test_client()
        body = client.post("/api/mp/v1/auth/login", json={"code": wechat_sandbox.login_code("o_daily")}).get_json()
        resident = Resident(client, body["token"], body["resident"]["id"], "o_daily")
        assert [resident.submit().status_code for _ in range(2)] == [201, 201]
        refused = resident.submit()
        assert refused.status_code == 429 and refused.get_json()["error"]["code"] == "daily_tip_limit"
        assert 0 < int(refused.headers["Retry-After"]) <= 86400 + 1
        assert count(Tip) == 2


def _concurrently(n, target):
    barrier = threading.Barrier(n)
    results = [None] * n

    def run(i):
        barrier.wait()
        results[i] = target(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_concurrent_identical_requests_make_one_tip(mp_app, login):
    resident = login()
    body = tip_body([resident.photo_id()])
    key = str(uuid.uuid4())

    def send(_):
        with mp_app.test_client() as client:
            answer = client.post("/api/mp/v1/tips", json=body,
                                 headers={**resident.headers, "Idempotency-Key": key})
            return answer.status_code, answer.get_json().get("id")

    results = _concurrently(4, send)
    assert sorted(code for code, _ in results) == [200, 200, 200, 201], results
    assert len({tip_id for _, tip_id in results}) == 1
    db.session.remove()
    assert count(Tip) == 1 and intake_messages() == 1


def test_two_tips_racing_for_one_photo_only_one_gets_it(mp_app, login):
    resident = login()
    photo = resident.photo_id()

    def send(i):
        with mp_app.test_client() as client:
            answer = client.post("/api/mp/v1/tips", json=tip_body([photo], description=f"第{i}条"),
                                 headers={**resident.headers, "Idempotency-Key": f"race-key-{i}"})
            return answer.status_code

    assert sorted(_concurrently(3, send)) == [201, 422, 422]
    db.session.remove()
    assert count(Tip) == 1
    assert db.session.get(Photo, photo).tip_id == db.session.scalar(select(Tip.id))


def test_withdraw_before_a_decision_only(login):
    resident = login()
    tip_id = resident.submit().get_json()["id"]
    answer = resident.post(f"/tips/{tip_id}/withdraw")
    assert answer.status_code == 200 and answer.get_json()["status"] == "withdrawn"
    assert resident.post(f"/tips/{tip_id}/withdraw").status_code == 200  # retry is harmless
    statuses = db.session.scalars(select(TipEvent.status).where(TipEvent.tip_id == tip_id).order_by(TipEvent.id))
    assert list(statuses) == ["received", "withdrawn"]

    decided = resident.submit().get_json()["id"]
    db.session.execute(update(Tip).where(Tip.id == decided).values(status="accepted"))
    db.session.commit()
    refused = resident.post(f"/tips/{decided}/withdraw")
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "tip_already_decided"
    assert db.session.get(Tip, decided).status == "accepted"


def test_another_residents_tip_is_404_everywhere(login):
    alice, bob = login(), login()
    tip_id = alice.submit().get_json()["id"]
    assert bob.get(f"/tips/{tip_id}").status_code == 404
    assert bob.post(f"/tips/{tip_id}/withdraw").status_code == 404
    assert bob.get("/tips").get_json()["items"] == []
    assert db.session.get(Tip, tip_id).status == "received"


def test_intake_job_runs_after_commit_and_moves_the_tip_on(login, run_jobs):
    """Interface 5: the tip.intake outbox message reaches moderation.intake.process_tip."""
    resident = login()
    tip_id = resident.submit().get_json()["id"]
    db.session.rollback()
    run_jobs(["intake"])
    db.session.rollback()
    assert db.session.get(Tip, tip_id).status != "received"
    done = db.session.scalars(select(OutboxMessage.status).where(OutboxMessage.topic == "tip.intake")).all()
    assert done == ["done"]
    detail = resident.get(f"/tips/{tip_id}").get_json()
    assert detail["photos"][0]["url"] != detail["photos"][0]["thumb_url"]  # display copy made


def test_nul_bytes_in_text_are_422_not_500(login):
    """Found by schemathesis on PostgreSQL (text cannot hold NUL)."""
    resident = login()
    # in a JSON body the one loader refuses NUL for every API (app/json_body.py): 400 bad_request
    answer = resident.submit(tip_body([resident.photo_id()], category="lpg\x00"))
    assert answer.status_code == 400 and "body" in answer.get_json()["error"]["fields"]
    answer = resident.submit(tip_body([resident.photo_id()], description="有\x00人"))
    assert answer.status_code == 400
    assert resident.get("/hazards/nearby?lat=23.02&lng=113.75&category=a%00b").status_code == 400  # NUL in any query argument: app/json_body.py refuse_unstorable_text
    assert resident.get("/tips?cursor=1%00").status_code in (400, 422)
    assert resident.client.post("/api/mp/v1/auth/login", json={"code": "sbx:\x00x"}).status_code == 400
