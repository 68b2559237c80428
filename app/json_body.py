"""One JSON loader for every request body: hostile JSON is a 400 in the one error shape, never a 500.
(And one check of paths, query strings and forms for NUL and lone surrogates: refuse_unstorable_text.)

json.loads alone lets through what breaks later, or breaks itself outside ValueError: nesting deep
enough to exhaust the recursion limit (RecursionError), integers of thousands of digits (ValueError
past 4,300 digits; past 19 an int8 overflow), lone surrogates such as "\\ud800" and NUL characters
(str that UTF-8 or PostgreSQL text cannot hold), NaN and Infinity. Every flask-smorest `@arguments`
body is read through `load_json` (webargs' JSON hook is pointed at it), and so may any other reader.
"""
from __future__ import annotations

import json
import math
import re

from app.errors import BadRequest

MAX_DEPTH = 64
MAX_INT_DIGITS = 19
_BAD_CHARACTERS = re.compile("[\ud800-\udfff\x00]")


class InvalidJson(ValueError):
    """Not JSON we take; `str(error)` is the Chinese reason."""


def load_json(data: bytes | str):
    """The JSON value of `data`, or InvalidJson."""
    try:
        text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
        value = json.loads(text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_refuse_constant)
    except InvalidJson:
        raise
    except RecursionError:
        raise InvalidJson("JSON 嵌套过深") from None
    except ValueError:  # JSONDecodeError, UnicodeDecodeError
        raise InvalidJson("不是有效的 JSON") from None
    _check_tree(value)
    return value


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise InvalidJson("数字过大")
    return int(text)


def _parse_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise InvalidJson("数字过大")
    return number


def _refuse_constant(name: str):
    raise InvalidJson(f"不支持 {name}")


def _check_tree(value) -> None:
    """Depth and strings, without recursion (the value may be as deep as the parser allowed)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > MAX_DEPTH:
                raise InvalidJson("JSON 嵌套过深")
            children = item.items() if isinstance(item, dict) else ((None, v) for v in item)
            for key, child in children:
                if key is not None and _BAD_CHARACTERS.search(key):
                    raise InvalidJson("包含无效字符")
                stack.append((child, depth + 1))
        elif isinstance(item, str) and _BAD_CHARACTERS.search(item):
            raise InvalidJson("包含无效字符")


def request_json(request):
    """The body of a JSON request, None when empty; 400 bad_request for a body that is not JSON or
    not sent as JSON (a body with another content type is not silently taken as no body)."""
    data = request.get_data(cache=True)
    if not request.is_json:
        if data:
            raise BadRequest("请求体须为 JSON（Content-Type: application/json）", fields={"body": ["须为 JSON"]})
        return None
    if not data.strip():
        return None
    try:
        return load_json(data)
    except InvalidJson as error:
        raise BadRequest(f"请求体不是有效的 JSON：{error}", fields={"body": [str(error)]}) from None


def refuse_unstorable_text() -> None:
    """Before every request: a NUL or lone surrogate in the path, a query argument or a form field is
    400 bad_request. PostgreSQL text cannot hold NUL (a DataError, so a 500 wherever such a string
    reaches a query, e.g. `?category=%00`); SQLite takes it, which is why the fuzzing failed only on PostgreSQL."""
    from flask import request

    texts = [request.path, *_multidict_texts(request.args)]
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        texts += _multidict_texts(request.form)
    if any(_BAD_CHARACTERS.search(text) for text in texts):
        raise BadRequest("请求包含无效字符", fields={"_request": ["包含无效字符"]})


def _multidict_texts(values):
    for key, value in values.items(multi=True):
        yield key
        yield value


def init_app(app) -> None:
    """webargs (flask-smorest's parser, one instance for every blueprint) reads bodies here; every
    path, query string and form is checked for text no database column can hold."""
    app.before_request(refuse_unstorable_text)
    from flask_smorest.arguments import ArgumentsMixin
    from webargs import core

    def _raw_load_json(req):
        value = request_json(req)
        return core.missing if value is None else value

    ArgumentsMixin.ARGUMENTS_PARSER._raw_load_json = _raw_load_json
