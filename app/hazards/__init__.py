"""Hazards (隐患): the catalogue of categories and departments, and the tickets built on it."""


def init_app(app):
    from app.hazards import models as _models  # noqa: F401  (tables in the metadata)
