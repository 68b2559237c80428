"""Scratch grids for the geo tests: far from Dongguan (around 40°N 100°E) so they never overlap the
demo grids other tests rely on, and removed afterwards (towns and grids are reference tables)."""
import pytest
from sqlalchemy import delete, select

PREFIX = "zz-"


def square(code, lat, lng, size=0.01, *, name=None, town_code="zz-town", town_name="测试镇", **props):
    """A GeoJSON Feature: the square [lng, lng+size] × [lat, lat+size]."""
    ring = [[lng, lat], [lng + size, lat], [lng + size, lat + size], [lng, lat + size], [lng, lat]]
    return feature(code, {"type": "Polygon", "coordinates": [ring]}, name=name, town_code=town_code,
                   town_name=town_name, **props)


def feature(code, geometry, *, name=None, town_code="zz-town", town_name="测试镇", **props):
    properties = {"code": code, "name": name or f"网格 {code}", "town_code": town_code, **props}
    if town_name is not None:
        properties["town_name"] = town_name
    return {"type": "Feature", "properties": properties, "geometry": geometry}


def collection(*features):
    return {"type": "FeatureCollection", "features": list(features)}


def remove_scratch(database):
    from app.geo.index import invalidate_index
    from app.geo.models import Grid, Town

    town_ids = select(Town.id).where(Town.code.like(PREFIX + "%"))
    database.session.execute(delete(Grid).where(Grid.town_id.in_(town_ids)))
    database.session.execute(delete(Grid).where(Grid.code.like(PREFIX + "%")))
    database.session.execute(delete(Town).where(Town.code.like(PREFIX + "%")))
    database.session.commit()
    invalidate_index()


@pytest.fixture
def scratch(db):
    remove_scratch(db)
    yield db
    db.session.rollback()
    remove_scratch(db)
