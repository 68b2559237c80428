"""`flask --app wsgi grids ...`, and the `init` steps for the catalogue and the demo grids."""
import json
import sys

import click
from flask.cli import with_appcontext

grids_group = click.Group("grids", help="Grid polygons (网格): import, look up, demo set.")


@grids_group.command("import")
@click.argument("path", type=click.Path(dir_okay=False))
@with_appcontext
def import_command(path):
    """Load or update grids from a GeoJSON FeatureCollection (WGS-84; properties code, name, town_code, town_name)."""
    from app.extensions import db
    from app.geo.grids import GridImportError, import_grids

    try:
        summary = import_grids(path)
    except GridImportError as exc:
        db.session.rollback()
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    grids, towns = summary["grids"], summary["towns"]
    click.echo(f"grids: {grids['created']} created, {grids['updated']} updated, {grids['unchanged']} unchanged; "
               f"towns: {towns['created']} created, {towns['updated']} updated")


@grids_group.command("demo-file")
@click.argument("path", type=click.Path(dir_okay=False))
def demo_file_command(path):
    """Write the synthetic demo grid set (~2,900 grids, NOT official boundaries) to a GeoJSON file."""
    from app.geo.demo import generate_demo_grids

    collection = generate_demo_grids()
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(collection, handle, ensure_ascii=False, separators=(",", ":"))
    click.echo(f"{len(collection['features'])} synthetic grids written to {path}")


@grids_group.command("locate")
@click.argument("lat", type=float)
@click.argument("lng", type=float)
@click.option("--coord", type=click.Choice(["gcj02", "wgs84"]), default="wgs84", show_default=True)
@with_appcontext
def locate_command(lat, lng, coord):
    """Which grid holds a point."""
    from app.extensions import db
    from app.geo.coords import to_wgs84
    from app.geo.index import in_service_area, locate

    w_lat, w_lng = to_wgs84(lat, lng, coord)
    hit = locate(w_lat, w_lng)
    click.echo(json.dumps({"wgs84": [w_lat, w_lng], "grid": hit.to_dict() if hit else None,
                           "in_service_area": in_service_area(w_lat, w_lng)}, ensure_ascii=False))
    db.session.close()  # every command ends its transaction (app/commands.py)


def init_app(app):
    """Register the CLI group, the `init` steps, and the models (so the tables are in the metadata)."""
    from app.commands import register_init_step
    from app.geo import models as _geo_models  # noqa: F401
    from app.hazards import models as _hazard_models  # noqa: F401

    app.cli.add_command(grids_group)
    register_init_step("catalogue", "app.hazards.catalogue.load_catalogue")
    register_init_step("grids", "app.geo.grids.ensure_demo_grids")
