"""The hazard catalogue file → departments and categories: content, idempotent reload, edits, refusals."""
import json

import pytest
from sqlalchemy import delete, select

from app.hazards.catalogue import (DEFAULT_PATH, CatalogueError, get_category, get_department,
                                   list_categories, list_departments, load_catalogue, read_catalogue)
from app.hazards.models import SLA_STEPS, Category, Department

REQUIRED_CODES = {"lpg_illegal", "fuel_illegal", "hazchem_illegal", "fire_exit_blocked", "ebike_indoor_charging",
                  "rental_unsafe", "small_venue_fire"}


@pytest.fixture
def catalogue(db):
    """The default catalogue loaded; whatever a test did to it is undone afterwards."""
    load_catalogue()
    yield db
    db.session.rollback()
    db.session.execute(delete(Category).where(Category.code.like("zz_%")))
    db.session.execute(delete(Department).where(Department.code.like("zz_%")))
    db.session.commit()
    load_catalogue()


def _edited(tmp_path, change):
    doc = json.loads(DEFAULT_PATH.read_text(encoding="utf-8"))
    change(doc)
    path = tmp_path / "catalogue.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def _snapshot(db):
    cols = ("code", "name", "group", "department_id", "kind", "dedup_radius_m", "severity_weight", "sla_hours",
            "reward_fen", "position", "active")
    cats = {c.code: tuple(getattr(c, k) for k in cols) for c in db.session.scalars(select(Category))}
    depts = {d.code: (d.id, d.name, d.active) for d in db.session.scalars(select(Department))}
    return cats, depts


def test_the_catalogue_has_the_city_shape(catalogue):
    categories = list_categories()
    departments = list_departments()
    assert len(departments) == 19
    assert len(categories) >= 20
    assert len({c.group for c in categories}) >= 9
    assert {"消防", "燃气", "危化品", "出租屋", "三小场所", "治安", "交通", "环境", "市政", "其他"} <= {c.group for c in categories}
    assert REQUIRED_CODES <= {c.code for c in categories}
    assert {d.code for d in departments} >= {"fire", "urban_mgmt", "emergency", "housing", "police", "transport",
                                              "ecology", "market", "water", "health"}
    assert get_department("fire").name == "市消防救援支队"
    assert {c.department.code for c in categories} == {d.code for d in departments}  # every department gets work


def test_every_category_is_complete_and_within_red_packet_limits(catalogue):
    for category in list_categories():
        assert {1, 2, 3} == {int(k) for k in category.reward_fen}
        rewards = [category.reward_for(s) for s in (1, 2, 3)]
        assert all(100 <= fen <= 20000 for fen in rewards), category.code  # ¥1–200
        assert rewards == sorted(rewards), category.code
        assert set(category.sla_hours) == set(SLA_STEPS)
        assert all(category.sla_for(step) > 0 for step in SLA_STEPS)
        assert category.kind in ("venue", "street")
        assert 1 <= category.severity_weight <= 10
        assert category.dedup_radius_m > 0


def test_radius_defaults_by_kind_and_overrides(catalogue):
    assert get_category("fire_exit_blocked").dedup_radius_m == 50  # venue default
    assert get_category("road_damage").dedup_radius_m == 150  # street default
    assert get_category("waterlogging").dedup_radius_m == 300  # set in the file
    lpg = get_category("lpg_illegal")
    assert lpg.kind == "venue" and lpg.group == "燃气" and lpg.department.code == "urban_mgmt"
    assert lpg.reward_for(3) == 20000 and lpg.sla_for("dispatch") == 0.5
    assert lpg.to_brief() == {"code": "lpg_illegal", "name": lpg.name, "group": "燃气", "kind": "venue",
                              "department": {"code": "urban_mgmt", "name": "市城市管理和综合执法局"}}


def test_loading_twice_changes_nothing(catalogue):
    before = _snapshot(catalogue)
    summary = load_catalogue()
    assert summary["departments"] == {"created": 0, "updated": 0, "unchanged": 19, "deactivated": 0}
    assert summary["categories"]["created"] == summary["categories"]["updated"] == 0
    assert summary["categories"]["deactivated"] == 0
    catalogue.session.expire_all()
    assert _snapshot(catalogue) == before


def test_a_category_removed_from_the_file_becomes_inactive_not_deleted(catalogue, tmp_path):
    path = _edited(tmp_path, lambda d: d.update(categories=[c for c in d["categories"] if c["code"] != "streetlight_out"]))
    summary = load_catalogue(path)
    assert summary["categories"]["deactivated"] == 1
    kept = get_category("streetlight_out")
    assert kept is not None and kept.active is False
    assert get_category("streetlight_out", active_only=True) is None
    assert "streetlight_out" not in {c.code for c in list_categories()}
    assert "streetlight_out" in {c.code for c in list_categories(active=None)}
    again = load_catalogue()  # back in the file: active again (later ones move back in position too)
    assert again["categories"]["updated"] >= 1 and again["categories"]["created"] == 0
    assert get_category("streetlight_out").active is True


def test_edits_in_the_file_update_rows_in_place(catalogue, tmp_path):
    old_id = get_category("road_damage").id

    def change(doc):
        road = next(c for c in doc["categories"] if c["code"] == "road_damage")
        road["reward_fen"] = {"1": 300, "2": 600, "3": 900}
        road["department"] = "urban_mgmt"
        doc["departments"].append({"code": "zz_new_dept", "name": "测试新部门"})
        doc["categories"].append({"code": "zz_new_cat", "name": "测试类别", "group": "其他", "department": "zz_new_dept",
                                  "kind": "venue", "reward_fen": {"1": 100, "2": 100, "3": 100}})

    summary = load_catalogue(_edited(tmp_path, change))
    assert summary["categories"]["updated"] == 1 and summary["categories"]["created"] == 1
    assert summary["departments"]["created"] == 1
    road = get_category("road_damage")
    assert road.id == old_id and road.reward_for(2) == 600 and road.department.code == "urban_mgmt"
    new = get_category("zz_new_cat")
    assert new.dedup_radius_m == 50 and new.sla_hours["resolve"] == 72 and new.severity_weight == 1


def _set(code, key, value):
    def change(doc):
        next(c for c in doc["categories"] if c["code"] == code)[key] = value
    return change


BAD_EDITS = [
    (_set("lpg_illegal", "reward_fen", {"1": 50, "2": 100, "3": 200}), "reward_fen.1 must be integer fen within 100–20000"),
    (_set("lpg_illegal", "reward_fen", {"1": 100, "2": 200, "3": 20001}), "reward_fen.3"),
    (_set("lpg_illegal", "reward_fen", {"1": 100, "2": 200}), "severities 1, 2, 3"),
    (_set("lpg_illegal", "reward_fen", {"1": 300, "2": 200, "3": 400}), "must not decrease"),
    (_set("lpg_illegal", "reward_fen", {"1": 100.5, "2": 200, "3": 400}), "integer fen"),
    (_set("lpg_illegal", "department", "nobody"), "department 'nobody' is not in the departments list"),
    (_set("lpg_illegal", "kind", "indoor"), "kind must be one of"),
    (_set("lpg_illegal", "group", "杂项"), "group '杂项'"),
    (_set("lpg_illegal", "sla_hours", {"dispatch": 0}), "sla_hours.dispatch"),
    (_set("lpg_illegal", "sla_hours", {"repair": 3}), "sla_hours needs exactly the steps"),
    (_set("lpg_illegal", "severity_weight", 11), "severity_weight"),
    (_set("lpg_illegal", "code", "Bad Code"), "lower_snake_case"),
    (_set("lpg_illegal", "code", "fuel_illegal"), "category code 'fuel_illegal' appears twice"),
    (lambda d: d["departments"].append({"code": "fire", "name": "又一个"}), "department code 'fire' appears twice"),
    (lambda d: d.update(categories=[]), "'categories' must be a non-empty list"),
]


@pytest.mark.parametrize("change,message", BAD_EDITS)
def test_a_bad_file_is_refused_whole_with_a_clear_message(catalogue, tmp_path, change, message):
    before = _snapshot(catalogue)
    with pytest.raises(CatalogueError, match=message.replace(".", r"\.").replace("(", r"\(")):
        load_catalogue(_edited(tmp_path, change))
    catalogue.session.rollback()
    assert _snapshot(catalogue) == before


def test_unreadable_files_are_refused(tmp_path):
    with pytest.raises(CatalogueError, match="not found"):
        read_catalogue(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    with pytest.raises(CatalogueError, match="not valid JSON"):
        read_catalogue(broken)


def test_unknown_codes_find_nothing(catalogue):
    assert get_category("no_such_thing") is None
    assert get_department("no_such_dept") is None
