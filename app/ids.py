"""Ids from outside: every id column is INTEGER (int4 on PostgreSQL), so an id past 2**31 - 1 names
nothing — and handed to PostgreSQL it is a DataError, a 500 instead of "no such thing".

One way in for each place an id arrives: URL ids through IdConverter (it replaces Flask's `int`
converter for every route: a bigger id or a non-ASCII digit such as '²' is simply no route, 404),
query ids through parse_id, body ids through id_field, page cursors through parse_cursor.
"""
from __future__ import annotations

from marshmallow import fields, validate
from werkzeug.routing import IntegerConverter

from app.errors import BadRequest

MAX_ID = 2 ** 31 - 1


class IdConverter(IntegerConverter):
    """`<int:…>` in every route: ASCII digits (Python's \\d and isdigit take '²'), at most MAX_ID."""

    regex = r"[0-9]+"

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def parse_id(value) -> int | None:
    """An id written in ASCII digits that can exist, else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if 0 <= value <= MAX_ID else None
    if not isinstance(value, str) or not value.isascii() or not value.isdigit() or len(value) > 10:
        return None
    number = int(value)
    return number if number <= MAX_ID else None


def parse_cursor(value) -> int | None:
    """A list's `cursor` (the last id of the previous page): one the server could have given, else
    400 invalid_cursor."""
    if value in (None, ""):
        return None
    number = parse_id(value)
    if number is None:
        raise BadRequest("分页参数无效", code="invalid_cursor", fields={"cursor": ["无效的分页参数"]})
    return number


def id_field(**kwargs) -> fields.Integer:
    """An id in a JSON body or a query: a whole number from 1 to MAX_ID."""
    return fields.Integer(validate=validate.Range(1, MAX_ID, error="编号无效"), **kwargs)


def init_app(app) -> None:
    """Before any blueprint: rules take their converter when they are added."""
    app.url_map.converters["int"] = IdConverter
