"""What a resident reads: my tips (cursor), detail with timeline, rewards, categories, nearby hazards."""
from urllib.parse import urlparse

from sqlalchemy import update

from app.extensions import db
from app.hazards.catalogue import get_category
from app.models.tip import Tip
from app.tips import change_tip_status
from tests.miniprogram_api.conftest import INSIDE_GCJ02, INSIDE_WGS84


def test_categories_come_from_the_catalogue(login):
    items = login().get("/categories").get_json()["items"]
    codes = {item["code"] for item in items}
    assert "lpg_illegal" in codes and len(items) >= 30
    lpg = next(item for item in items if item["code"] == "lpg_illegal")
    assert lpg["department"] == {"code": "urban_mgmt", "name": get_category("lpg_illegal").department.name}
    assert not lpg["name"].isascii()


def test_my_tips_pages_with_a_cursor_and_filters_by_status(login):
    resident, other = login(), login()
    ids = [resident.submit().get_json()["id"] for _ in range(5)]
    other.submit()
    change_tip_status(ids[0], ("received",), "withdrawn", "撤回")
    db.session.commit()
    first = resident.get("/tips?limit=2").get_json()
    assert [t["id"] for t in first["items"]] == ids[::-1][:2] and first["next"]
    second = resident.get(f"/tips?limit=2&cursor={first['next']}").get_json()
    third = resident.get(f"/tips?limit=2&cursor={second['next']}").get_json()
    assert [t["id"] for t in second["items"] + third["items"]] == ids[::-1][2:]
    assert third["next"] is None
    withdrawn = resident.get("/tips?status=withdrawn").get_json()["items"]
    assert [t["id"] for t in withdrawn] == [ids[0]] and withdrawn[0]["status_label"] == "已撤回"
    assert resident.get("/tips?cursor=abc").status_code == 400
    assert resident.get("/tips?status=bogus").status_code == 422
    assert resident.get("/tips?limit=0").status_code == 422


def test_detail_has_photos_timeline_and_empty_outcomes(login):
    resident = login()
    tip_id = resident.submit().get_json()["id"]
    change_tip_status(tip_id, ("received",), "checking", "内部检查", internal=True)
    change_tip_status(tip_id, ("checking",), "pending_review", "等待人工审核")
    db.session.commit()
    detail = resident.get(f"/tips/{tip_id}").get_json()
    assert detail["status"] == "pending_review" and detail["category_name"]
    assert [e["status"] for e in detail["timeline"]] == ["received", "pending_review"]  # internal hidden
    assert [e["status_label"] for e in detail["timeline"]] == ["已提交", "待审核"]  # the console's words
    assert all(e["at"].endswith("+00:00") for e in detail["timeline"])
    assert detail["duplicate_of"] is None and detail["hazard"] is None and detail["reward"] is None
    photo = detail["photos"][0]
    for url in (photo["url"], photo["thumb_url"]):
        parsed = urlparse(url)
        assert resident.client.get(f"{parsed.path}?{parsed.query}").status_code == 200
    assert resident.get("/tips/999999").status_code == 404


def test_detail_shows_duplicate_and_decision_message(login):
    resident = login()
    first = resident.submit().get_json()["id"]
    second = resident.submit().get_json()["id"]
    db.session.execute(update(Tip).where(Tip.id == second).values(
        status="duplicate", duplicate_of_tip_id=first, decision_message="该隐患已有人报过，感谢关注"))
    db.session.commit()
    detail = resident.get(f"/tips/{second}").get_json()
    assert detail["duplicate_of"] == {"tip_id": first}
    assert detail["message"] == "该隐患已有人报过，感谢关注"


def test_detail_and_rewards_show_the_reward_from_the_rewards_area(login):
    from rewards.models import Payout

    resident, other = login(), login()
    tip_id = resident.submit().get_json()["id"]
    other_tip = other.submit().get_json()["id"]
    db.session.add(Payout(tip_id=tip_id, resident_id=resident.id, category="lpg_illegal", severity=2,
                          amount_fen=10000, status="sent", package="sendminiprogramhb-package"))
    db.session.add(Payout(tip_id=other_tip, resident_id=other.id, category="lpg_illegal", severity=1,
                          amount_fen=5000, status="reserved"))
    db.session.commit()
    detail = resident.get(f"/tips/{tip_id}").get_json()
    assert detail["reward"]["amount_fen"] == 10000 and detail["reward"]["status"] == "sent"
    assert detail["reward"]["status_label"] == "待领取"
    rewards = resident.get("/rewards").get_json()
    assert [(r["tip_id"], r["amount_fen"], r["package"], r["status_label"]) for r in rewards["items"]] == [
        (tip_id, 10000, "sendminiprogramhb-package", "待领取")]
    assert rewards["next"] is None
    assert [r["package"] for r in other.get("/rewards").get_json()["items"]] == [None]


def test_nearby_open_hazards_of_the_same_category(login):
    from app.hazards.models import Hazard

    resident = login()
    category = get_category("lpg_illegal")
    lat, lng = INSIDE_WGS84
    for i in range(7):  # 7 open within a few metres, the answer holds 5
        db.session.add(Hazard(category_code="lpg_illegal", department_id=category.department_id,
                              lat=lat + i * 1e-5, lng=lng, status="dispatched"))
    db.session.add(Hazard(category_code="lpg_illegal", department_id=category.department_id,
                          lat=lat, lng=lng, status="closed"))
    db.session.add(Hazard(category_code="fuel_illegal", department_id=category.department_id,
                          lat=lat, lng=lng, status="dispatched"))
    db.session.add(Hazard(category_code="lpg_illegal", department_id=category.department_id,
                          lat=lat + 0.05, lng=lng, status="dispatched"))  # ~5.5 km away
    db.session.commit()
    g_lat, g_lng = INSIDE_GCJ02
    answer = resident.get(f"/hazards/nearby?lat={g_lat}&lng={g_lng}&category=lpg_illegal")
    assert answer.status_code == 200, answer.get_json()
    items = answer.get_json()["items"]
    assert len(items) == 5 and all(h["category"] == "lpg_illegal" and h["status"] != "closed" for h in items)
    assert [h["distance_m"] for h in items] == sorted(h["distance_m"] for h in items)
    assert items[0]["distance_m"] <= 1 and items[0]["location"]["coord"] == "gcj02"
    assert abs(items[0]["location"]["lat"] - g_lat) < 1e-5
    assert resident.get(f"/hazards/nearby?lat={g_lat}&lng={g_lng}&category=nope").status_code == 422
    assert resident.get(f"/hazards/nearby?lat=abc&lng={g_lng}&category=lpg_illegal").status_code == 422
    any_category = resident.get(f"/hazards/nearby?lat={g_lat}&lng={g_lng}")  # category is optional
    assert any_category.status_code == 200, any_category.get_json()
    found = any_category.get_json()["items"]
    assert len(found) == 5 and "fuel_illegal" in {h["category"] for h in found}
    assert all(h["status"] != "closed" and h["distance_m"] <= 100 for h in found)
