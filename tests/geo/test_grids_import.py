"""Importing grid polygons: create, update by code, refuse bad files whole."""
import json

import pytest
from sqlalchemy import func, select

from app.geo.grids import GridImportError, import_grids
from app.geo.models import Grid, Town
from tests.geo.conftest import collection, feature, square


def _grid(db, code):
    return db.session.scalars(select(Grid).where(Grid.code == code)).one()


def test_import_creates_towns_and_grids_with_bbox_and_area(scratch):
    summary = import_grids(collection(square("zz-1", 40.0, 100.0), square("zz-2", 40.0, 100.01)))
    assert summary == {"towns": {"created": 1, "updated": 0}, "grids": {"created": 2, "updated": 0, "unchanged": 0}}
    grid = _grid(scratch, "zz-1")
    assert (grid.min_lat, grid.min_lng, grid.max_lat, grid.max_lng) == (40.0, 100.0, 40.01, 100.01)
    # 0.01° × 0.01° at 40°N: 1111.95 m × 851.8 m
    assert grid.area_m2 == pytest.approx(1111.95 * 1111.95 * 0.76604, rel=2e-3)
    assert grid.town.code == "zz-town" and grid.town.name == "测试镇"
    assert json.loads(grid.geometry)["type"] == "Polygon"
    assert grid.synthetic is False


def test_reimporting_the_same_file_changes_nothing(scratch):
    data = collection(square("zz-1", 40.0, 100.0))
    import_grids(data)
    before = _grid(scratch, "zz-1").updated_at
    summary = import_grids(data)
    assert summary["grids"] == {"created": 0, "updated": 0, "unchanged": 1}
    assert summary["towns"] == {"created": 0, "updated": 0}
    scratch.session.expire_all()
    assert _grid(scratch, "zz-1").updated_at == before


def test_reimporting_a_code_updates_its_polygon_name_and_town(scratch):
    import_grids(collection(square("zz-1", 40.0, 100.0)))
    first_id = _grid(scratch, "zz-1").id
    summary = import_grids(collection(square("zz-1", 41.0, 101.0, 0.02, name="新名字", town_code="zz-town2",
                                             town_name="另一个镇")))
    assert summary["grids"]["updated"] == 1 and summary["towns"]["created"] == 1
    scratch.session.expire_all()
    grid = _grid(scratch, "zz-1")
    assert grid.id == first_id
    assert (grid.name, grid.town.code, grid.min_lat, grid.max_lng) == ("新名字", "zz-town2", 41.0, 101.02)
    assert scratch.session.scalar(select(func.count(Grid.id)).where(Grid.code == "zz-1")) == 1


def test_renaming_a_town_marks_its_grids_updated(scratch):
    import_grids(collection(square("zz-1", 40.0, 100.0)))
    summary = import_grids(collection(square("zz-1", 40.0, 100.0, town_name="改名镇")))
    assert summary["towns"]["updated"] == 1 and summary["grids"]["updated"] == 1
    assert scratch.session.scalars(select(Town).where(Town.code == "zz-town")).one().name == "改名镇"


def test_a_grid_may_name_an_existing_town_by_code_only(scratch):
    import_grids(collection(square("zz-1", 40.0, 100.0)))
    import_grids(collection(square("zz-2", 40.0, 100.01, town_name=None)))
    assert _grid(scratch, "zz-2").town.name == "测试镇"


def test_file_path_and_synthetic_flag(scratch, tmp_path):
    path = tmp_path / "grids.geojson"
    path.write_text(json.dumps(collection(square("zz-1", 40.0, 100.0, synthetic=True)), ensure_ascii=False),
                    encoding="utf-8")
    import_grids(path)
    assert _grid(scratch, "zz-1").synthetic is True


def test_multipolygon_is_accepted(scratch):
    a = square("x", 40.0, 100.0)["geometry"]["coordinates"]
    b = square("x", 40.0, 100.05)["geometry"]["coordinates"]
    import_grids(collection(feature("zz-multi", {"type": "MultiPolygon", "coordinates": [a, b]})))
    grid = _grid(scratch, "zz-multi")
    assert (grid.min_lng, grid.max_lng) == (100.0, 100.06)


BOWTIE = {"type": "Polygon", "coordinates": [[[100, 40], [100.01, 40.01], [100.01, 40], [100, 40.01], [100, 40]]]}
BAD_FILES = [
    ({"type": "Feature"}, "FeatureCollection"),
    ({"type": "FeatureCollection", "features": []}, "no features"),
    (collection({"type": "Feature", "properties": {"name": "x", "town_code": "zz-t"},
                 "geometry": square("a", 40, 100)["geometry"]}), "'code'"),
    (collection(feature("zz-pt", {"type": "Point", "coordinates": [100, 40]})), "Polygon or MultiPolygon"),
    (collection(square("zz-swapped", 100.0, 40.0)), "out of range"),
    (collection(feature("zz-bowtie", BOWTIE)), "invalid polygon"),
    (collection(feature("zz-bad", {"type": "Polygon", "coordinates": [[[100, 40], [100.01]]]})), "zz-bad"),
    (collection(square("zz-1", 40.0, 100.0), square("zz-1", 41.0, 100.0)), "appears twice"),
    (collection(square("zz-1", 40.0, 100.0, town_code="zz-new", town_name=None)), "town_name"),
    ({**collection(square("zz-1", 40.0, 100.0)),
      "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::3857"}}}, "WGS-84"),
]


@pytest.mark.parametrize("data,message", BAD_FILES)
def test_bad_files_are_refused_whole_with_a_clear_message(scratch, data, message):
    before = scratch.session.scalar(select(func.count(Grid.id)))
    # a good feature first: it must not be written either
    if data.get("type") == "FeatureCollection" and data.get("features"):
        data = {**data, "features": [square("zz-good", 45.0, 100.0)] + data["features"]}
    with pytest.raises(GridImportError, match=message):
        import_grids(data)
    scratch.session.rollback()
    assert scratch.session.scalar(select(func.count(Grid.id))) == before


def test_unreadable_files(scratch, tmp_path):
    with pytest.raises(GridImportError, match="not found"):
        import_grids(tmp_path / "missing.geojson")
    broken = tmp_path / "broken.geojson"
    broken.write_text("{not json", encoding="utf-8")
    with pytest.raises(GridImportError, match="not valid JSON"):
        import_grids(broken)


@pytest.mark.slow
def test_cli_import_and_its_clear_error(scratch, flask_cli, tmp_path):
    good = tmp_path / "good.geojson"
    good.write_text(json.dumps(collection(square("zz-cli", 40.0, 100.0))), encoding="utf-8")
    result = flask_cli("grids", "import", str(good))
    assert "grids: 1 created, 0 updated, 0 unchanged" in result.stdout
    assert _grid(scratch, "zz-cli").name == "网格 zz-cli"

    bad = tmp_path / "bad.geojson"
    bad.write_text(json.dumps(collection(feature("zz-bowtie", BOWTIE))), encoding="utf-8")
    failed = flask_cli("grids", "import", str(bad), check=False)
    assert failed.returncode == 1
    assert "error: feature 0 (code zz-bowtie): invalid polygon" in failed.stderr
    assert "Traceback" not in failed.stderr


def test_a_grid_may_name_its_community(scratch):
    import_grids(collection(square("zz-1", 40.0, 100.0, community="可园社区"), square("zz-2", 40.0, 100.01)))
    assert (_grid(scratch, "zz-1").community, _grid(scratch, "zz-2").community) == ("可园社区", None)
    with pytest.raises(GridImportError, match="community"):
        import_grids(collection(square("zz-3", 40.0, 100.02, community="社" * 65)))
