"""The resident's rights (PIPL) through the residents' API, against the real sandbox: the privacy
notice, the export of everything held, closing the account (with a red packet in flight), and the
retention purge. After a closure the openid must be nowhere: not in any table, not in any log."""
from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text, update

from app.config import ConfigError, SANDBOX_SUBSCRIBE_TEMPLATES
from app.extensions import db, redis
from app.hazards.models import Hazard, HazardNotice
from app.models.base import utcnow
from app.models.photo import Photo
from app.models.resident import Resident
from app.models.tip import Tip
from app.queue import PERIODIC, run_burst
from miniprogram_api.retention import apply_retention
from miniprogram_api.rights import finish_closures
from rewards.models import LedgerEntry, LedgerTransaction, Payout
from rewards.sweeper import sweep_payouts
from tests.media import corpus
from tests.miniprogram_api.conftest import approve_next, drain, packet_sent, send_tip, tip_body
from tests.rewards.helpers import assert_books_hold


# --- helpers ------------------------------------------------------------------------------------

def database_text() -> str:
    """Every row of every table in the database (not only the models'), as text."""
    db.session.rollback()
    chunks = []
    with db.engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                chunks.append(f"{table}: " + " | ".join(repr(value) for value in row))
    return "\n".join(chunks)


def redis_text() -> str:
    conn = redis.conn
    chunks = []
    for key in conn.scan_iter(count=1000):
        chunks.append(repr(key))
        if conn.type(key) == b"string":
            chunks.append(repr(conn.get(key)))
        elif conn.type(key) == b"hash":
            chunks.append(repr(conn.hgetall(key)))
    return "\n".join(chunks)


@pytest.fixture
def app_log(mp_app):
    """What the app's own log handler writes (its redacting filter included), at DEBUG, as text."""
    import io

    handler = next(h for h in logging.getLogger().handlers if getattr(h, "_renrenpai", False))
    root, buffer = logging.getLogger(), io.StringIO()
    old_stream, old_level = handler.setStream(buffer), root.level
    root.setLevel(logging.DEBUG)
    try:
        yield buffer
    finally:
        root.setLevel(old_level)
        handler.setStream(old_stream)


# --- privacy notice -----------------------------------------------------------------------------

def test_privacy_notice_needs_no_token_and_states_the_configured_retention(mp_client, make_app):
    answer = mp_client.get("/api/mp/v1/privacy")
    assert answer.status_code == 200
    notice = answer.get_json()
    assert set(notice) == {"version", "text"}
    assert "个人信息" in notice["text"] and "注销账号" in notice["text"]
    assert "365 天" in notice["text"] and "180 天" in notice["text"] and "{" not in notice["text"]

    shorter = make_app(PHOTO_RETENTION_DAYS=90).test_client().get("/api/mp/v1/privacy").get_json()
    assert "90 天" in shorter["text"]
    assert shorter["version"] != notice["version"]  # another text: the resident is asked again


def test_the_city_supplies_its_own_notice_and_version(make_app, tmp_path):
    own = tmp_path / "notice.txt"
    own.write_text("东莞市人人拍隐私政策\n照片保存{photo_retention}。\n", encoding="utf-8")
    client = make_app(PRIVACY_NOTICE_FILE=str(own), PRIVACY_NOTICE_VERSION="2026-12-01",
                      PHOTO_RETENTION_DAYS=30).test_client()
    assert client.get("/api/mp/v1/privacy").get_json() == {"version": "2026-12-01",
                                                           "text": "东莞市人人拍隐私政策\n照片保存 30 天。"}


def test_an_unreadable_notice_or_a_negative_retention_stops_the_start(make_app, tmp_path):
    with pytest.raises(ConfigError, match="PRIVACY_NOTICE_FILE"):
        make_app(PRIVACY_NOTICE_FILE=str(tmp_path / "missing.txt"))
    (tmp_path / "latin1.txt").write_bytes("隐私".encode("gb18030"))
    with pytest.raises(ConfigError, match="PRIVACY_NOTICE_FILE"):
        make_app(PRIVACY_NOTICE_FILE=str(tmp_path / "latin1.txt"))
    with pytest.raises(ConfigError, match="PHOTO_RETENTION_DAYS"):
        make_app(PHOTO_RETENTION_DAYS=-1)


# --- export -------------------------------------------------------------------------------------

def test_export_holds_everything_about_the_caller_and_nothing_of_others(mp_app, mp_client, login, staff,
                                                                         wechat_sandbox):
    alice, bob = login(), login()
    wechat_sandbox.subscribe(alice.openid, SANDBOX_SUBSCRIBE_TEMPLATES["tip_result"], 1)
    reward = packet_sent(alice, mp_app, mp_client, staff, wechat_sandbox)
    with_gps = corpus.encode(corpus.street_photo(4711, (640, 480)), "JPEG", quality=85, exif=corpus.gps_exif())
    second = send_tip(alice, mp_app, photo=with_gps, description="楼梯间堆满杂物")
    loose = alice.photo_id()
    send_tip(bob, mp_app, description="鲍勃的报料")

    answer = alice.get("/me/export")
    assert answer.status_code == 200
    data = answer.get_json()
    assert data["profile"]["id"] == alice.id and data["profile"]["openid"] == alice.openid
    assert len(data["sessions"]) == 1 and data["sessions"][0]["revoked_at"] is None
    assert [t["description"] for t in data["tips"]] == ["小区楼下有人用黑气瓶", "楼梯间堆满杂物"]
    first = data["tips"][0]
    assert first["status"] == "accepted" and first["location"]["address"] == "东莞市南城街道"
    assert first["location"]["coord"] == "gcj02" and first["hazard"]["id"]
    assert first["reward"] == {"id": reward["id"], "amount_fen": reward["amount_fen"], "status": "sent"}
    assert [s["status"] for s in first["timeline"]][:1] == ["received"] and "accepted" in \
        [s["status"] for s in first["timeline"]]
    photo = data["tips"][1]["photos"][0]
    assert photo["url"].startswith("/media/") or photo["url"].startswith("http")
    assert mp_client.get(photo["url"]).status_code == 200  # a working signed URL
    assert photo["exif"]["taken_at"].startswith("2024-05-01")
    assert abs(photo["exif"]["location"]["lat"] - 22.975) < 0.01  # what the camera wrote, kept private
    assert data["tips"][1]["id"] == second
    assert [p["id"] for p in data["photos_not_in_tips"]] == [loose]
    assert [(r["id"], r["status"], r["amount_fen"]) for r in data["rewards"]] == \
        [(reward["id"], "sent", reward["amount_fen"])]
    assert [(m["kind"], m["status"], m["title"]) for m in data["messages"]] == [("accepted", "sent", "已采纳")]
    assert "鲍勃" not in str(data) and bob.openid not in str(data)

    assert mp_client.get("/api/mp/v1/me/export").status_code == 401


def test_export_is_rate_limited(make_app, sandbox_config, reference_data, wechat_sandbox):
    app = make_app(**sandbox_config, MP_RATELIMIT_EXPORT="2/hour")
    client = app.test_client()
    with app.app_context():
        code = wechat_sandbox.login_code("o_export_limit")
        token = client.post("/api/mp/v1/auth/login", json={"code": code}).get_json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        assert [client.get("/api/mp/v1/me/export", headers=headers).status_code for _ in range(3)] == [200, 200, 429]


# --- closing the account ------------------------------------------------------------------------

def test_closing_an_account_with_nothing_in_flight_erases_the_identity_at_once(mp_app, mp_client, login, staff,
                                                                              wechat_sandbox):
    alice = login("o_alice_closes_now")
    other_session = login("o_alice_closes_now")
    tip_id = send_tip(alice, mp_app)
    alice.photo_id()  # uploaded, never sent: goes with the account
    loose_files = {p.original_key for p in db.session.scalars(select(Photo).where(Photo.tip_id.is_(None)))}

    answer = alice.client.delete("/api/mp/v1/me", headers=alice.headers)
    assert answer.status_code == 202, answer.get_json()
    assert answer.get_json()["status"] == "closed" and answer.get_json()["rewards_in_flight"] == 0
    for session in (alice, other_session):  # every token of the account stops working
        refused = session.get("/tips")
        assert refused.status_code == 401 and refused.get_json()["error"]["code"] == "token_invalid"
    assert alice.client.delete("/api/mp/v1/me", headers=alice.headers).status_code == 401

    closed = db.session.get(Resident, alice.id)
    assert closed.closed_at is not None and closed.held_openid is None and closed.unionid is None
    assert closed.openid.startswith("closed:") and "alice" not in closed.openid
    assert "o_alice_closes_now" not in database_text()
    from app.media.storage import get_storage

    assert not any(get_storage().exists(key) for key in loose_files)

    # the tip stays, a public-safety record without identity, and the moderator can still act on it
    assert db.session.get(Tip, tip_id).resident_id == alice.id
    decision = approve_next(mp_client, staff)
    assert decision["tip"]["id"] == tip_id and decision["reward"]["status"] == "not_granted"
    assert db.session.scalar(select(Payout.reason).where(Payout.tip_id == tip_id)) == "account_closed"
    drain(mp_app, ["notify"])
    assert db.session.scalars(select(HazardNotice.status)).all() == ["refused"]  # owed to nobody now
    assert wechat_sandbox.messages() == []

    # the same WeChat identity later: a new, empty account
    again = login("o_alice_closes_now")
    assert again.id != alice.id
    assert again.get("/tips").get_json()["items"] == [] and again.get("/rewards").get_json()["items"] == []
    export = again.get("/me/export").get_json()
    assert export["tips"] == [] and export["rewards"] == [] and export["photos_not_in_tips"] == []


def test_a_packet_in_flight_settles_first_then_the_openid_is_gone_from_database_and_logs(
        mp_app, mp_client, login, staff, wechat_sandbox, app_log):
    openid = "o_bob_packet_in_flight"
    # everything below is logged at DEBUG (app_log)
    bob = login(openid)
    wechat_sandbox.subscribe(openid, SANDBOX_SUBSCRIBE_TEMPLATES["tip_result"], 3)
    reward = packet_sent(bob, mp_app, mp_client, staff, wechat_sandbox)
    pending_tip = send_tip(bob, mp_app, description="另一处隐患")  # waits for a moderator

    answer = bob.client.delete("/api/mp/v1/me", headers=bob.headers)
    assert answer.status_code == 202
    assert answer.get_json() | {"message": ""} == {"status": "closing", "rewards_in_flight": 1,
                                                   "forgone_rewards": 0, "message": ""}
    assert bob.get("/rewards").status_code == 401
    # the real openid is held for the packet alone; the account's openid is already a pseudonym
    row = db.session.get(Resident, bob.id)
    assert row.held_openid == openid and row.openid != openid and row.closed_at is None
    assert finish_closures() == 0
    # a login meanwhile is somebody new
    newcomer = login(openid)
    assert newcomer.id != bob.id and newcomer.get("/tips").get_json()["items"] == []
    newcomer.client.delete("/api/mp/v1/me", headers=newcomer.headers)  # (and gone again)

    # the moderator's later decision pays nothing and messages nobody
    decision = approve_next(mp_client, staff)
    assert decision["tip"]["id"] == pending_tip and decision["reward"]["status"] == "not_granted"
    drain(mp_app, ["notify", "payouts"])
    assert len(wechat_sandbox.messages()) == 1  # the first tip's, sent before the closure

    # the packet is opened in WeChat; the sweeper settles it; the closure finishes
    billno = db.session.scalar(select(Payout.mch_billno).where(Payout.id == reward["id"]))
    wechat_sandbox.claim(billno)
    sweep_payouts(now=utcnow() + timedelta(hours=1))
    assert db.session.get(Payout, reward["id"]).status == "claimed"
    assert finish_closures() == 1
    drain(mp_app)

    db.session.rollback()
    closed = db.session.get(Resident, bob.id)
    assert closed.closed_at is not None and closed.held_openid is None
    # the accounting stays, under the pseudonymous resident
    payout = db.session.get(Payout, reward["id"])
    assert payout.resident_id == bob.id and payout.status == "claimed"
    kinds = db.session.scalars(select(LedgerTransaction.kind).where(LedgerTransaction.payout_id == payout.id)).all()
    assert {"reserve", "sent", "claimed"} <= set(kinds)
    assert db.session.scalars(select(LedgerEntry).where(LedgerEntry.payout_id == payout.id)).all()
    assert_books_hold()
    # and the identity is nowhere
    assert openid not in database_text()
    assert openid not in redis_text()
    written = app_log.getvalue()
    assert "sendminiprogramhb" in written and "gethbinfo" in written  # WeChat Pay's traffic was logged
    assert openid not in written


def test_closing_gives_up_rewards_that_wait_for_verification(mp_app, login):
    alice = login()
    tip_id = send_tip(alice, mp_app)
    db.session.execute(update(Tip).where(Tip.id == tip_id).values(status="accepted"))
    db.session.add(Payout(tip_id=tip_id, resident_id=alice.id, category="lpg_illegal", severity=2, amount_fen=1000,
                          status="awaiting_verification", updated_at=utcnow()))
    db.session.commit()
    answer = alice.client.delete("/api/mp/v1/me", headers=alice.headers).get_json()
    assert answer["status"] == "closed" and answer["forgone_rewards"] == 1
    assert db.session.scalar(select(Payout.status).where(Payout.tip_id == tip_id)) == "not_granted"


def test_a_tip_still_in_its_checks_holds_the_closure_until_the_intake_ran(mp_app, login, wechat_sandbox):
    alice = login("o_alice_checking")
    alice.submit()  # not yet through intake
    assert alice.client.delete("/api/mp/v1/me", headers=alice.headers).get_json()["status"] == "closing"
    assert finish_closures() == 0
    drain(mp_app, ["intake"])  # the content check still goes out with the held openid
    assert any(c["openid"] == "o_alice_checking" for c in wechat_sandbox.control("GET", "text_checks")["items"])
    assert finish_closures() == 1
    assert "o_alice_checking" not in database_text()


# --- retention ----------------------------------------------------------------------------------

def _age(tip_id: int, days: int) -> None:
    db.session.execute(update(Tip).where(Tip.id == tip_id).values(created_at=utcnow() - timedelta(days=days)))
    db.session.commit()


def test_retention_purges_old_settled_photos_and_coarsens_their_places(mp_app, mp_client, login, staff,
                                                                        wechat_sandbox):
    from app.media.storage import get_storage

    alice = login()
    with_gps = corpus.encode(corpus.street_photo(4712, (640, 480)), "JPEG", quality=85, exif=corpus.gps_exif())
    closed_old = send_tip(alice, mp_app, photo=with_gps)
    decision = approve_next(mp_client, staff)
    db.session.execute(update(Hazard).where(Hazard.id == decision["hazard"]["id"]).values(status="closed"))
    open_old = send_tip(alice, mp_app, category="fire_exit_blocked", description="安全出口被堵",
                        location={"lat": 23.05, "lng": 113.76, "coord": "wgs84", "address": "某商场"})
    approve_next(mp_client, staff)  # its hazard stays open
    waiting_old = send_tip(alice, mp_app, description="还在等审核", location={"lat": 23.06, "lng": 113.77,
                                                                       "coord": "wgs84"})
    recent = send_tip(alice, mp_app, description="最近的报料", location={"lat": 23.07, "lng": 113.78,
                                                                    "coord": "wgs84", "address": "新地址"})
    db.session.execute(update(Tip).where(Tip.id == recent).values(status="rejected"))
    db.session.commit()
    for tip_id in (closed_old, open_old, waiting_old):
        _age(tip_id, 400)
    _age(recent, 100)
    keys = {p.tip_id: p.original_key for p in db.session.scalars(select(Photo))}
    before = {t.id: (t.lat, t.lng) for t in db.session.scalars(select(Tip))}

    assert apply_retention() == {"photos": 1, "locations": 1}
    db.session.rollback()
    assert set(db.session.scalars(select(Photo.tip_id))) == {open_old, waiting_old, recent}
    assert not get_storage().exists(keys[closed_old]) and get_storage().exists(keys[open_old])
    purged = db.session.get(Tip, closed_old)
    assert purged.location_purged_at is not None and purged.address is None
    assert (purged.lat, purged.lng) == (round(before[closed_old][0], 3), round(before[closed_old][1], 3))
    assert purged.lat != before[closed_old][0]
    for kept in (open_old, waiting_old, recent):
        tip = db.session.get(Tip, kept)
        assert (tip.lat, tip.lng) == before[kept] and tip.location_purged_at is None
    assert db.session.get(Tip, recent).address == "新地址"
    # the resident sees the tip without its photo; a second run finds nothing left to do
    assert alice.get(f"/tips/{closed_old}").get_json()["photos"] == []
    assert apply_retention() == {"photos": 0, "locations": 0}

    # a shorter location limit reaches the recent settled tip; no limit (0) purges nothing
    mp_app.config.update(LOCATION_RETENTION_DAYS=90, PHOTO_RETENTION_DAYS=0)
    assert apply_retention() == {"photos": 0, "locations": 1}
    assert db.session.get(Tip, recent).address is None
    assert db.session.scalar(select(Photo.exif_lat).where(Photo.tip_id == recent)) is None


def test_the_purge_and_the_closures_run_on_the_clock():
    assert PERIODIC["mp.apply_retention"].func == "miniprogram_api.retention.apply_retention"
    assert PERIODIC["mp.finish_closures"].func == "miniprogram_api.rights.finish_closures"


def test_openapi_documents_the_rights(mp_client):
    spec = mp_client.get("/api/openapi.json").get_json()
    assert "delete" in spec["paths"]["/api/mp/v1/me"]
    assert "202" in spec["paths"]["/api/mp/v1/me"]["delete"]["responses"]
    assert "get" in spec["paths"]["/api/mp/v1/me/export"]
    privacy = spec["paths"]["/api/mp/v1/privacy"]["get"]
    assert privacy["security"] == []
    assert {"MpExport", "MpPrivacyNotice", "MpAccountClosed"} <= set(spec["components"]["schemas"])
