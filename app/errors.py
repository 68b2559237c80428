"""One JSON error shape for every API: {"error": {"code", "message", "fields"}}.

Domain code raises `AppError` subclasses; views never build error bodies by hand.
"""
import logging
import re

from flask import current_app, jsonify, request
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class AppError(Exception):
    status = 400
    code = "bad_request"
    message = "请求有误"

    def __init__(self, message=None, *, code=None, fields=None, status=None, headers=None):
        super().__init__(message or self.message)
        self.message = message or self.message
        self.code = code or self.code
        self.fields = fields or {}
        self.status = status or self.status
        self.headers = headers or {}


class BadRequest(AppError):
    status, code, message = 400, "bad_request", "请求格式有误"


class Unauthorized(AppError):
    status, code, message = 401, "unauthorized", "请先登录"


class Forbidden(AppError):
    status, code, message = 403, "forbidden", "无权进行此操作"


class NotFound(AppError):
    status, code, message = 404, "not_found", "找不到该资源"


class Conflict(AppError):
    status, code, message = 409, "conflict", "当前状态不允许此操作"


class PayloadTooLarge(AppError):
    status, code, message = 413, "payload_too_large", "上传内容过大"


class UnsupportedMedia(AppError):
    status, code, message = 415, "unsupported_media_type", "不支持的文件类型"


class Unprocessable(AppError):
    status, code, message = 422, "validation_error", "提交的内容未通过校验"


class RateLimited(AppError):
    status, code, message = 429, "rate_limited", "操作太频繁，请稍后再试"


class ServiceUnavailable(AppError):
    status, code, message = 503, "service_unavailable", "服务暂时不可用，请稍后再试"


# Chinese messages for the HTTP errors Werkzeug raises on its own.
HTTP_MESSAGES = {
    400: ("bad_request", "请求格式有误"),
    401: ("unauthorized", "请先登录"),
    403: ("forbidden", "无权进行此操作"),
    404: ("not_found", "找不到该资源"),
    405: ("method_not_allowed", "不支持该请求方法"),
    409: ("conflict", "当前状态不允许此操作"),
    413: ("payload_too_large", "上传内容过大"),
    415: ("unsupported_media_type", "不支持的文件类型"),
    422: ("validation_error", "提交的内容未通过校验"),
    429: ("rate_limited", "操作太频繁，请稍后再试"),
    500: ("internal_error", "服务器内部错误，请稍后再试"),
    503: ("service_unavailable", "服务暂时不可用，请稍后再试"),
}


# What a person sees on a console page that failed: a heading per status, the message below it.
CONSOLE_TITLES = {400: "请求有误", 401: "请先登录", 403: "无权访问", 404: "页面不存在", 405: "不支持该操作",
                  409: "操作未完成", 413: "上传内容过大", 422: "提交的内容有误", 429: "操作太频繁",
                  500: "系统出错了", 503: "服务暂时不可用"}


def _wants_console_page() -> bool:
    """Console pages (not the JSON APIs) answer errors as Chinese HTML in the console's frame."""
    from flask import has_request_context

    return has_request_context() and (request.path == "/console" or request.path.startswith("/console/"))


def console_error_page(status, message, headers=None):
    from flask import render_template
    from markupsafe import escape

    if status >= 500:
        try:  # the failed request may have left the session's transaction broken
            from app.extensions import db

            db.session.rollback()
        except Exception:
            pass
    try:
        body = render_template("console/error.html", title=CONSOLE_TITLES.get(status, "操作未完成"),
                               message=message, status=status)
    except Exception:  # the frame itself failed (e.g. the database is down): plain words, still Chinese
        log.exception("console error page failed")
        body = f"<!doctype html><meta charset=utf-8><title>出错了</title><h1>{CONSOLE_TITLES.get(status, '出错了')}</h1><p>{escape(message)}</p>"
    return body, status, {"Content-Type": "text/html; charset=utf-8", **(headers or {})}


def _wants_georeport() -> bool:
    """Under Open311's prefix every error is GeoReport's shape, also for a URL no route matches."""
    from flask import has_request_context

    from app.hazards.open311 import PREFIX

    return has_request_context() and (request.path == PREFIX or request.path.startswith(PREFIX + "/"))


def error_response(status, code, message, fields=None, headers=None):
    if _wants_console_page():
        return console_error_page(status, message, headers)
    if _wants_georeport():
        from app.hazards.open311 import georeport_error

        return georeport_error(status, message, headers)
    body = {"error": {"code": code, "message": message, "fields": fields or {}}}
    response = jsonify(body)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _flatten_webargs_messages(messages):
    """webargs nests messages by location ({"json": {...}}); callers want field -> messages, in Chinese."""
    if isinstance(messages, dict) and set(messages) <= {"json", "query", "form", "files", "headers", "view_args", "path", "cookies"}:
        flat = {}
        for part in messages.values():
            if isinstance(part, dict):
                flat.update(part)
        return chinese_messages(flat)
    return chinese_messages(messages if isinstance(messages, dict) else {"_schema": messages})


# marshmallow's and its validators' default messages (English) as residents and staff read them. The
# one place they are translated: every 422 of every API passes here, so no schema has to remember to.
# Messages a schema already gives in Chinese match nothing and pass unchanged.
_RANGE_OPS = {"greater than or equal to": "大于等于", "greater than": "大于",
              "less than or equal to": "小于等于", "less than": "小于"}
_OP = "(greater than or equal to|greater than|less than or equal to|less than)"
_MESSAGE_RULES = [(re.compile(pattern), replacement) for pattern, replacement in (
    (r"Missing data for required field\.", "必填"),
    (r"Field may not be null\.", "不能为空"),
    (r"Unknown field\.", "未知字段"),
    (r"Invalid (input )?type\.", "类型不正确"),
    (r"Invalid value\.|Invalid input\.", "值无效"),
    (r"Not a valid integer\.", "须为整数"),
    (r"Not a valid number\.", "须为数字"),
    (r"Not a valid boolean\.", "须为布尔值"),
    (r"Not a valid date\.", "须为 YYYY-MM-DD 日期"),
    (r"Not a valid (naive |aware )?datetime\.", "须为 ISO-8601 时间（如 2026-01-31T08:00:00+08:00）"),
    (r"Not a valid (naive |aware )?time\.", "须为时间（如 08:00:00）"),
    (r"Not a valid string\.", "须为文本"),
    (r"Not a valid utf-8 string\.", "不是有效的 UTF-8 文本"),
    (r"Not a valid list\.|Not a valid tuple\.", "须为列表"),
    (r"Not a valid mapping type\.", "须为对象"),
    (r"Not a valid email address\.", "邮箱格式不正确"),
    (r"Not a valid URL\.", "网址格式不正确"),
    (r"Not a valid .+\.", "格式不正确"),
    (r"Special numeric values \(nan or infinity\) are not permitted\.", "数值无效"),
    (r"Number too large\.", "数值过大"),
    (r"String does not match expected pattern\.", "格式不正确"),
    (r"Must be one of: (.*)\.", lambda m: "可选值：" + "、".join(c.strip() for c in m[1].split(","))),
    (r"Length must be between (\S+) and (\S+)\.", r"长度应为 \1–\2"),
    (r"Length must be (\S+)\.", r"长度须为 \1"),
    (r"Longer than maximum length (\S+)\.", r"长度不能超过 \1"),
    (r"Shorter than minimum length (\S+)\.", r"长度不能少于 \1"),
    (rf"Must be {_OP} (\S+) and {_OP} (\S+)\.",
     lambda m: f"须{_RANGE_OPS[m[1]]} {m[2]} 且{_RANGE_OPS[m[3]]} {m[4]}"),
    (rf"Must be {_OP} (\S+)\.", lambda m: f"须{_RANGE_OPS[m[1]]} {m[2]}"),
    (r"One or more of the choices you made was not in: (.*)\.", lambda m: "包含不可选的值；可选值：" + m[1]),
)]


def chinese_message(text):
    """One marshmallow message in Chinese (unchanged when it is not one of marshmallow's)."""
    if not isinstance(text, str):
        return text
    for pattern, replacement in _MESSAGE_RULES:
        if pattern.fullmatch(text):
            return pattern.sub(replacement, text)
    return text


def chinese_messages(messages):
    """The same nesting (field -> [messages], list index -> {...}) with every message in Chinese."""
    if isinstance(messages, dict):
        return {key: chinese_messages(value) for key, value in messages.items()}
    if isinstance(messages, (list, tuple)):
        return [chinese_messages(item) for item in messages]
    return chinese_message(messages)


def handle_app_error(error: AppError):
    return error_response(error.status, error.code, error.message, error.fields, error.headers)


def handle_validation_error(error: ValidationError):
    return error_response(422, "validation_error", "提交的内容未通过校验", _flatten_webargs_messages(error.messages))


def handle_http_exception(error: HTTPException):
    status = error.code or 500
    code, message = HTTP_MESSAGES.get(status, ("http_error", error.description or "请求失败"))
    fields = {}
    data = getattr(error, "data", None) or {}
    if "messages" in data:  # webargs/flask-smorest parsing failure
        fields = _flatten_webargs_messages(data["messages"])
        if status == 422:
            message = "提交的内容未通过校验"
    headers = {}
    if status == 429:
        retry_after = getattr(error, "retry_after", None) or _limiter_retry_after()
        headers["Retry-After"] = str(retry_after)
    if status == 405 and error.valid_methods:
        headers["Allow"] = ", ".join(error.valid_methods)
    return error_response(status, code, message, fields, headers)


def _limiter_retry_after():
    limit = getattr(request, "view_rate_limit", None)
    if limit is not None:
        import time

        try:
            reset = current_app.extensions["limiter"].limiter.get_window_stats(limit[0], *limit[1])[0]
            return max(1, int(reset - time.time()))
        except Exception:  # the header is advice; never fail the 429 over it
            pass
    return 60


def handle_unexpected(error: Exception):
    if current_app.config.get("TESTING") and current_app.config.get("PROPAGATE_UNEXPECTED", True):
        raise error
    log.exception("unhandled error", extra={"path": request.path})
    code, message = HTTP_MESSAGES[500]
    return error_response(500, code, message)


def init_app(app):
    app.register_error_handler(AppError, handle_app_error)
    app.register_error_handler(ValidationError, handle_validation_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
