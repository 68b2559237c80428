"""Mini-program JSON APIs: cgi-bin/token, sns/jscode2session, content security v2, subscribe messages."""
from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
import uuid

from flask import Blueprint, current_app, jsonify, request

from app.wechat_sandbox.faults import fault_response, stall, take_fault
from app.wechat_sandbox.wire import json_error

bp = Blueprint("sandbox_mp", __name__)

RISKY_MARK, REVIEW_MARK = "【违规】", "【待审】"
LABEL_NORMAL, LABEL_ILLEGAL, LABEL_OTHER, LABEL_PORN = 100, 20006, 21000, 20002


def _state():
    return current_app.extensions["sandbox_state"]


def unionid_for(openid: str) -> str:
    return "oU" + hashlib.sha256(("union:" + openid).encode()).hexdigest()[:26]


def _guarded(api):
    """Apply an injected fault; returns (early_response, mode)."""
    mode = take_fault(_state(), api)
    return fault_response(mode, "json", api), mode


def _finish(response, mode):
    if mode == "missing_field":  # processed, but the reply carries none of its fields
        response = jsonify({"errcode": 0, "errmsg": "ok"})
    if mode == "accept_then_timeout":
        stall()
    return response


def _check_token():
    token = request.args.get("access_token")
    if not token:
        return json_error(41001, "access_token missing")
    state = _state()
    row = state.query("SELECT expires_at FROM tokens WHERE token = ?", (token,))
    if not row:
        return json_error(40001, "invalid credential, access_token is invalid or not latest")
    if row[0]["expires_at"] <= state.now():
        return json_error(42001, "access_token expired")
    return None


def _json_body():
    try:
        data = json.loads(request.get_data() or b"{}")
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


@bp.get("/cgi-bin/token")
def token():
    early, mode = _guarded("token")
    if early is not None:
        return early
    cfg = current_app.config
    if request.args.get("grant_type") != "client_credential":
        return json_error(40002, "invalid grant_type")
    if request.args.get("appid") != cfg["WECHAT_APPID"]:
        return json_error(40013, "invalid appid")
    if request.args.get("secret") != cfg["WECHAT_SECRET"]:
        return json_error(40125, "invalid appsecret")
    state = _state()
    delay = float(state.get_setting("token_delay", 0))
    if delay:  # a slow token endpoint widens the window in which callers could race to refresh
        time.sleep(delay)
    ttl = int(cfg["SANDBOX_TOKEN_TTL"])
    value = "sbxtoken_" + secrets.token_urlsafe(48)
    with state.tx() as conn:
        # Like WeChat: a new token, the previous one stays valid for a short overlap only.
        now = state.now(conn)
        conn.execute("UPDATE tokens SET expires_at = MIN(expires_at, ?)", (now + 300,))
        conn.execute("INSERT INTO tokens (token, expires_at) VALUES (?, ?)", (value, now + ttl))
        state.set_setting("token_fetches", state.get_setting("token_fetches", 0, conn) + 1, conn)
    return _finish(jsonify({"access_token": value, "expires_in": ttl}), mode)


@bp.get("/sns/jscode2session")
def jscode2session():
    early, mode = _guarded("jscode2session")
    if early is not None:
        return early
    cfg = current_app.config
    args = request.args
    if args.get("appid") != cfg["WECHAT_APPID"]:
        return json_error(40013, "invalid appid")
    if args.get("secret") != cfg["WECHAT_SECRET"]:
        return json_error(40125, "invalid appsecret")
    if args.get("grant_type") != "authorization_code":
        return json_error(40002, "invalid grant_type")
    code = args.get("js_code") or ""
    state = _state()
    with state.tx() as conn:
        now = state.now(conn)
        row = conn.execute("SELECT openid, issued_at, used_at FROM codes WHERE code = ?", (code,)).fetchone()
        if row is None and code.startswith("sbx:") and len(code) > 4:
            conn.execute("INSERT INTO codes (code, openid, issued_at) VALUES (?, ?, ?)", (code, code[4:], now))
            row = conn.execute("SELECT openid, issued_at, used_at FROM codes WHERE code = ?", (code,)).fetchone()
        if row is None or now - row["issued_at"] > 300:  # a wx.login code lives five minutes
            return json_error(40029, "invalid code")
        if row["used_at"] is not None:
            return json_error(40163, "code been used")
        conn.execute("UPDATE codes SET used_at = ? WHERE code = ?", (now, code))
        openid = row["openid"]
        conn.execute("INSERT INTO users (openid, unionid, last_login) VALUES (?, ?, ?) "
                     "ON CONFLICT(openid) DO UPDATE SET last_login = excluded.last_login",
                     (openid, unionid_for(openid), now))
    session_key = base64.b64encode(secrets.token_bytes(16)).decode()
    return _finish(jsonify({"openid": openid, "session_key": session_key, "unionid": unionid_for(openid)}), mode)


def _verdict(text: str):
    if RISKY_MARK in text:
        return "risky", LABEL_ILLEGAL
    if REVIEW_MARK in text:
        return "review", LABEL_OTHER
    return "pass", LABEL_NORMAL


def _check_openid(openid):
    if not openid or not isinstance(openid, str):
        return json_error(40003, "invalid openid")
    return None


def trace_id() -> str:
    raw = uuid.uuid4().hex
    return f"{raw[:8]}-{raw[8:16]}-{raw[16:24]}"


@bp.post("/wxa/msg_sec_check")
def msg_sec_check():
    early, mode = _guarded("msg_sec_check")
    if early is not None:
        return early
    bad = _check_token()
    if bad is not None:
        return bad
    data = _json_body()
    if data is None:
        return json_error(47001, "data format error")
    if data.get("version") != 2:
        return json_error(47001, "data format error: version 2 expected")
    if data.get("scene") not in (1, 2, 3, 4):
        return json_error(40003, "invalid scene")
    bad = _check_openid(data.get("openid"))
    if bad is not None:
        return bad
    content = data.get("content")
    if not isinstance(content, str) or not content:
        return json_error(47001, "data format error: content")
    if len(content.encode("utf-8")) > 2500 * 4:
        return json_error(87014, "risky content")
    suggest, label = _verdict(content)
    detail = [{"strategy": "content_model", "errcode": 0, "suggest": suggest, "label": label, "prob": 90}]
    if suggest != "pass":
        detail.append({"strategy": "keyword", "errcode": 0, "suggest": suggest, "label": label, "level": 20,
                       "keyword": RISKY_MARK if suggest == "risky" else REVIEW_MARK})
    body = {"errcode": 0, "errmsg": "ok", "result": {"suggest": suggest, "label": label}, "detail": detail,
            "trace_id": trace_id()}
    state = _state()
    with state.tx() as conn:  # kept so tests can see what the client really sent (openid, scene)
        conn.execute("INSERT INTO text_checks (at, openid, scene, content, suggest, label, trace_id) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?)", (state.now(conn), data["openid"], data["scene"], content,
                                                      suggest, label, body["trace_id"]))
    return _finish(jsonify(body), mode)


def media_verdict(media_url: str):
    lowered = media_url.lower()
    if "risky" in lowered:
        return "risky", LABEL_PORN
    if "review" in lowered:
        return "review", LABEL_OTHER
    return "pass", LABEL_NORMAL


@bp.post("/wxa/media_check_async")
def media_check_async():
    from app.wechat_sandbox.push import schedule_push

    early, mode = _guarded("media_check_async")
    if early is not None:
        return early
    bad = _check_token()
    if bad is not None:
        return bad
    data = _json_body()
    if data is None or data.get("version") != 2:
        return json_error(47001, "data format error")
    if data.get("media_type") not in (1, 2):
        return json_error(47001, "data format error: media_type")
    if data.get("scene") not in (1, 2, 3, 4):
        return json_error(40003, "invalid scene")
    bad = _check_openid(data.get("openid"))
    if bad is not None:
        return bad
    url = data.get("media_url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return json_error(47001, "data format error: media_url")
    suggest, label = media_verdict(url)
    tid = trace_id()
    state = _state()
    with state.tx() as conn:
        conn.execute("INSERT INTO media_checks (trace_id, openid, media_url, scene, suggest, label, created_at) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?)", (tid, data["openid"], url, data["scene"], suggest, label,
                                                      state.now(conn)))
    schedule_push(current_app._get_current_object(), tid)
    return _finish(jsonify({"errcode": 0, "errmsg": "ok", "trace_id": tid}), mode)


@bp.post("/cgi-bin/message/subscribe/send")
def subscribe_send():
    early, mode = _guarded("subscribe_send")
    if early is not None:
        return early
    bad = _check_token()
    if bad is not None:
        return bad
    data = _json_body()
    if data is None:
        return json_error(47001, "data format error")
    openid, template_id = data.get("touser"), data.get("template_id")
    bad = _check_openid(openid)
    if bad is not None:
        return bad
    templates = current_app.config.get("SANDBOX_SUBSCRIBE_TEMPLATES") or ()
    if not template_id or (templates and template_id not in templates):
        return json_error(40037, "invalid template_id")
    if not isinstance(data.get("data"), dict) or not data["data"]:
        return json_error(47003, "argument invalid! data.keyword is empty")
    for key, value in data["data"].items():
        if not isinstance(value, dict) or "value" not in value:
            return json_error(47003, f"argument invalid! data.{key}.value is empty")
    state = _state()
    with state.tx() as conn:
        quota = conn.execute("SELECT remaining FROM subscriptions WHERE openid = ? AND template_id = ?",
                             (openid, template_id)).fetchone()
        if quota is not None:  # the resident tapped "allow" a known number of times
            if quota["remaining"] <= 0:
                return json_error(43101, "user refuse to accept the msg")
            conn.execute("UPDATE subscriptions SET remaining = remaining - 1 WHERE openid = ? AND template_id = ?",
                         (openid, template_id))
        conn.execute("INSERT INTO messages (at, openid, template_id, page, data, miniprogram_state) "
                     "VALUES (?, ?, ?, ?, ?, ?)", (state.now(conn), openid, template_id, data.get("page"),
                                                   json.dumps(data["data"], ensure_ascii=False),
                                                   data.get("miniprogram_state")))
    return _finish(jsonify({"errcode": 0, "errmsg": "ok", "msgid": secrets.randbits(48)}), mode)
