"""Point → grid through the STRtree index: inside, boundary, outside, holes, and index freshness."""
import json
import math

import pytest
from sqlalchemy import update

from app.geo.grids import import_grids
from app.geo.index import GridHit, get_index, in_service_area, locate
from app.geo.models import Grid
from app.models.base import utcnow
from tests.geo.conftest import collection, feature, remove_scratch, square


@pytest.fixture
def two_squares(scratch):
    # zz-a: [100.00, 100.01] × [40.00, 40.01]; zz-b shares its east edge
    import_grids(collection(square("zz-a", 40.0, 100.0), square("zz-b", 40.0, 100.01, town_code="zz-town2",
                                                                   town_name="乙镇")))
    return scratch


def test_a_point_inside_finds_its_grid_and_town(two_squares):
    hit = locate(40.005, 100.005)
    assert isinstance(hit, GridHit)
    assert (hit.grid_code, hit.grid_name, hit.town_code, hit.town_name) == ("zz-a", "网格 zz-a", "zz-town", "测试镇")
    assert hit.grid_id == two_squares.session.query(Grid.id).filter(Grid.code == "zz-a").scalar()
    assert locate(40.005, 100.015).grid_code == "zz-b"
    assert locate(40.005, 100.015).to_dict()["town_name"] == "乙镇"


def test_points_outside_every_grid_find_none(two_squares):
    assert locate(40.02, 100.005) is None  # north of both
    assert locate(39.9999, 100.005) is None  # just south
    assert locate(40.005, 100.0201) is None  # just east of zz-b


def test_boundary_points_belong_to_a_grid(two_squares):
    assert locate(40.0, 100.005).grid_code == "zz-a"  # outer (south) edge
    assert locate(40.0, 100.0).grid_code == "zz-a"  # corner vertex
    assert locate(40.01, 100.02).grid_code == "zz-b"  # far corner of zz-b
    # the shared edge: both grids touch it; the smaller code wins, every time
    assert {locate(40.005, 100.01).grid_code for _ in range(5)} == {"zz-a"}


def test_a_hole_is_not_inside(scratch):
    outer = [[100, 40], [100.03, 40], [100.03, 40.03], [100, 40.03], [100, 40]]
    hole = [[100.01, 40.01], [100.01, 40.02], [100.02, 40.02], [100.02, 40.01], [100.01, 40.01]]
    import_grids(collection(feature("zz-ring", {"type": "Polygon", "coordinates": [outer, hole]})))
    assert locate(40.015, 100.015) is None
    assert locate(40.005, 100.005).grid_code == "zz-ring"
    assert locate(40.01, 100.015).grid_code == "zz-ring"  # the hole's edge is the grid's boundary


@pytest.mark.parametrize("lat,lng", [(math.nan, 100.0), (40.0, math.inf), (None, 100.0), ("40", 100.0)])
def test_nonsense_coordinates_find_none(two_squares, lat, lng):
    assert locate(lat, lng) is None
    assert in_service_area(lat, lng) is False


def test_an_import_in_this_process_rebuilds_the_index_at_once(two_squares):
    index = get_index()
    index.check_seconds = 3600  # no fingerprint polling: only the explicit invalidation can help
    assert locate(40.005, 100.035) is None
    builds = index.builds
    assert locate(40.005, 100.005).grid_code == "zz-a"
    assert index.builds == builds  # lookups reuse the tree
    import_grids(collection(square("zz-c", 40.0, 100.03)))
    assert locate(40.005, 100.035).grid_code == "zz-c"
    assert index.builds == builds + 1


def test_another_process_notices_changed_grids_through_the_fingerprint(two_squares, make_app):
    other = make_app(GEO_INDEX_CHECK_SECONDS=0)  # another process: its own index, polls every lookup
    with other.app_context():
        assert locate(40.005, 100.005).grid_code == "zz-a"
        builds = get_index().builds
        assert locate(40.005, 100.005).grid_code == "zz-a"
        assert get_index().builds == builds  # fingerprint unchanged: no rebuild
    moved = square("zz-a", 45.0, 105.0)["geometry"]
    two_squares.session.execute(update(Grid).where(Grid.code == "zz-a")
                                .values(geometry=json.dumps(moved), updated_at=utcnow()))
    two_squares.session.commit()  # written behind the other app's back, no invalidate_index() there
    with other.app_context():
        assert locate(40.005, 100.005) is None
        assert locate(45.005, 105.005).grid_code == "zz-a"
        assert get_index().builds == builds + 1
        from app.extensions import db
        db.session.remove()


def test_removed_grids_disappear_after_invalidation(two_squares):
    assert locate(40.005, 100.005) is not None
    remove_scratch(two_squares)
    assert locate(40.005, 100.005) is None


def test_in_service_area_uses_grids_then_the_dongguan_outline(two_squares):
    assert in_service_area(40.005, 100.005)  # inside a (test) grid, far from Dongguan
    assert in_service_area(23.0207, 113.7518)  # Dongguan city hall: inside the outline at least
    assert in_service_area(22.9, 114.1)  # 樟木头 area
    assert not in_service_area(22.5431, 114.0579)  # Shenzhen, Futian
    assert not in_service_area(23.1291, 113.2644)  # Guangzhou
    assert not in_service_area(39.9042, 116.4074)  # Beijing
    assert not in_service_area(40.02, 100.005)  # next to a test grid, outside every grid and Dongguan
