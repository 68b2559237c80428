"""Structured JSON logs with a request id, and a filter that keeps secrets out of them."""
import logging
import re
import sys
import uuid

from flask import g, has_request_context, request
from pythonjsonlogger.json import JsonFormatter

# Anything that looks like a credential is masked before a record is written.
_SECRET_NAMES = r"access_token|session_key|secret|password|token|sign|openid|paySign|api_key|x-api-key"
_SECRET_PATTERN = re.compile(
    rf"(?i)({_SECRET_NAMES})"
    r"([\"']?\s*[:=]\s*[\"']?)([^\"'&\s,}]+)"
)
# WeChat Pay speaks XML, and wechatpy logs its requests and replies at DEBUG: <re_openid>, <sign> …
_SECRET_XML = re.compile(rf"(?i)(<(\w*(?:{_SECRET_NAMES})\w*)>)(?:<!\[CDATA\[.*?\]\]>|[^<]*)(</\2>)", re.S)


# Query parameters that authenticate one request: whoever reads them in a log could replay them
# (WeChat's push signature, nonce and timestamp; the signature of a photo URL).
_QUERY_SECRETS = ("signature", "msg_signature", "nonce", "timestamp", "echostr", "sig")
_QUERY_PATTERN = re.compile(r"(?i)([?&](?:%s)=)[^&\s\"']*" % "|".join(_QUERY_SECRETS))


def redact(text: str) -> str:
    text = _SECRET_XML.sub(lambda m: f"{m.group(1)}***{m.group(3)}", text)
    text = _QUERY_PATTERN.sub(r"\1***", text)
    return _SECRET_PATTERN.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)


def redact_query(query: str) -> str:
    """redact() for a bare query string (no leading "?"), as gunicorn's %(q)s atom has it."""
    return redact("?" + query)[1:] if query else query


class RequestContextFilter(logging.Filter):
    def filter(self, record):
        record.request_id = g.get("request_id", "-") if has_request_context() else getattr(record, "request_id", "-")
        # Redact the formatted message, not the format string: "openid=%s" must keep its %s.
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        redacted = redact(message)
        if redacted != message or record.args:
            record.msg, record.args = redacted, ()
        return True


def json_formatter() -> JsonFormatter:
    """One JSON object per line: ts, level, logger, message, request_id and the record's extras."""
    return JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
                         rename_fields={"asctime": "ts", "levelname": "level", "name": "logger"})


def log_to_file(path) -> None:
    """This process's log lines go to `path` instead of stderr, formatted and filtered as before
    (the demo keeps its terminal for people: app/demo_feed.py)."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_renrenpai", False)]:
        handler = logging.FileHandler(path, encoding="utf-8")
        handler.setFormatter(old.formatter)
        for log_filter in old.filters:
            handler.addFilter(log_filter)
        handler._renrenpai = True
        root.removeHandler(old)
        root.addHandler(handler)


def init_app(app):
    handler = logging.StreamHandler(sys.stderr)
    if app.config.get("LOG_JSON", True):
        handler.setFormatter(json_formatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"))
    handler.addFilter(RequestContextFilter())
    root = logging.getLogger()
    # Re-creating the app (tests) must not stack handlers.
    for old in [h for h in root.handlers if getattr(h, "_renrenpai", False)]:
        root.removeHandler(old)
    handler._renrenpai = True
    root.addHandler(handler)
    root.setLevel(app.config.get("LOG_LEVEL", "INFO"))

    @app.before_request
    def _assign_request_id():
        incoming = request.headers.get("X-Request-Id", "")
        g.request_id = incoming[:64] if re.fullmatch(r"[A-Za-z0-9._-]{1,64}", incoming or "") else uuid.uuid4().hex

    @app.after_request
    def _echo_request_id(response):
        response.headers["X-Request-Id"] = g.get("request_id", "")
        return response
