"""Geography: coordinates (coords), towns and grids (models, grids), point → grid lookup (index).

Public API:
    coords.to_wgs84, gcj02_to_wgs84, wgs84_to_gcj02, haversine_m
    index.locate(lat, lng) -> GridHit | None, index.in_service_area(lat, lng) -> bool
    grids.import_grids(path_or_dict), grids.ensure_demo_grids()
"""


def init_app(app):
    from app.geo.cli import init_app as init_cli

    init_cli(app)  # grids group; catalogue and demo-grid init steps; models
