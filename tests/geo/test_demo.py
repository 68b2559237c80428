"""The synthetic demo grid set: deterministic, covering Dongguan without gaps, all 33 towns, marked synthetic."""
import json

import pytest
import shapely
from shapely.geometry import shape
from sqlalchemy import func, select

from app.geo.demo import generate_demo_grids
from app.geo.dongguan import BBOX, TOWNS, outline_polygon
from app.geo.grids import ensure_demo_grids
from app.geo.index import in_service_area, locate
from app.geo.models import Grid, Town


@pytest.fixture(scope="module")
def demo():
    return generate_demo_grids()


def test_generation_is_deterministic(demo):
    assert json.dumps(generate_demo_grids()) == json.dumps(demo)


def test_about_three_thousand_grids_in_all_33_towns_all_marked_synthetic(demo):
    features = demo["features"]
    assert 2700 <= len(features) <= 3200
    assert demo["synthetic"] is True
    assert all(f["properties"]["synthetic"] is True and "synthetic" in f["properties"]["source"] for f in features)
    assert all("演示" in f["properties"]["name"] for f in features)
    codes = [f["properties"]["code"] for f in features]
    assert len(set(codes)) == len(codes) and max(map(len, codes)) <= 32
    assert {f["properties"]["town_code"] for f in features} == {t[0] for t in TOWNS}
    assert len(TOWNS) == 33


def test_grids_tile_the_outline_inside_the_real_bounding_box(demo):
    geoms = [shape(f["geometry"]) for f in demo["features"]]
    assert all(g.is_valid and g.area > 0 for g in geoms)
    union = shapely.union_all(geoms)
    outline = outline_polygon()
    # no gaps: what differs is the 6-decimal rounding along the outline (a missing grid would be 3e-4)
    assert shapely.symmetric_difference(union, outline).area < 1e-5 * outline.area
    assert sum(g.area for g in geoms) == pytest.approx(union.area, rel=1e-6)  # no overlaps
    min_lng, min_lat, max_lng, max_lat = union.bounds
    assert BBOX["min_lat"] <= min_lat and max_lat <= BBOX["max_lat"]
    assert BBOX["min_lng"] <= min_lng and max_lng <= BBOX["max_lng"]


def test_loaded_demo_grids_answer_lookups_at_every_town_centre(reference_data, db):
    assert db.session.scalar(select(func.count(Grid.id)).where(Grid.synthetic.is_(True))) >= 2700
    assert db.session.scalar(select(func.count(Town.id))) >= 33
    for code, name, lat, lng in TOWNS:
        hit = locate(lat, lng)
        assert hit is not None, name
        assert hit.town_code == code and hit.town_name == name
        assert in_service_area(lat, lng)


def test_ensure_demo_grids_leaves_existing_grids_alone(reference_data, db):
    before = db.session.scalar(select(func.count(Grid.id)))
    assert "demo grids not loaded" in ensure_demo_grids()
    assert db.session.scalar(select(func.count(Grid.id))) == before


@pytest.mark.slow
def test_init_on_a_fresh_database_loads_catalogue_and_demo_grids_once(flask_cli, tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}"}
    first = flask_cli("init", env=env)
    assert "synthetic demo grids loaded in 33 towns" in first.stdout
    assert "'created': 19" in first.stdout  # departments
    second = flask_cli("init", env=env)
    assert "grids present, demo grids not loaded" in second.stdout
    assert "'created': 0, 'updated': 0" in second.stdout
    located = flask_cli("grids", "locate", "23.0440", "113.7510", env=env)
    assert json.loads(located.stdout.strip().splitlines()[-1])["grid"]["town_code"] == "guancheng"


def test_every_demo_grid_has_a_synthetic_community_of_neighbouring_grids_in_its_town(demo):
    """社区 below 镇街 (issue #14 point 3): synthetic like the grids, a few neighbouring grids each."""
    from collections import defaultdict

    members = defaultdict(list)
    for f in demo["features"]:
        props = f["properties"]
        assert props["community"].startswith(props["town_name"]) and props["community"].endswith("社区（演示）")
        members[props["community"]].append(shape(f["geometry"]))
    assert 500 <= len(members) <= 1500
    for name, geoms in members.items():
        assert len(geoms) <= 4, name
        assert shapely.union_all(geoms).bounds[2] - shapely.union_all(geoms).bounds[0] < 0.06, name  # ~6 km


def test_demo_grids_loaded_before_communities_get_theirs(reference_data, db):
    from sqlalchemy import update

    db.session.execute(update(Grid).values(community=None))
    db.session.commit()
    assert "given their 社区" in ensure_demo_grids()
    assert db.session.scalar(select(func.count(Grid.id)).where(Grid.community.is_(None))) == 0


def test_each_demo_place_lies_in_a_grid_of_the_town_its_address_names(reference_data, db):
    """A ticket page shows the address and the grid's 镇街 side by side: they must agree (鸿福路 in 南城街道
    was drawn in a 莞城街道 grid)."""
    from app.demo_data import PLACES

    for lat, lng, address in PLACES:
        hit = locate(lat, lng)
        assert hit is not None and hit.town_name in address, (address, hit and hit.town_name)
