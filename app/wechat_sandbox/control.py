"""Control API for tests and demos (docs/API.md §WeChat sandbox), under /__sandbox__/."""
from __future__ import annotations

import json
import secrets

from flask import Blueprint, current_app, jsonify, request

from app.wechat_sandbox.faults import APIS, MODES, add_fault, mode_fits
from app.wechat_sandbox.pay import build_fundflow, claim_packet, expire_packet, sweep_refunds
from app.wechat_sandbox.state import wx_time

bp = Blueprint("sandbox_control", __name__, url_prefix="/__sandbox__")


def _state():
    return current_app.extensions["sandbox_state"]


def _body() -> dict:
    data = request.get_json(silent=True)
    return data if isinstance(data, dict) else {}


def _bad(message, status=400):
    return jsonify({"error": message}), status


@bp.get("/health")
def health():
    return jsonify({"status": "ok", "appid": current_app.config["WECHAT_APPID"],
                    "mch_id": current_app.config["WECHAT_MCH_ID"]})


@bp.post("/codes")
def issue_code():
    openid = _body().get("openid")
    if not isinstance(openid, str) or not openid:
        return _bad("openid required")
    state = _state()
    code = secrets.token_hex(16)
    with state.tx() as conn:
        conn.execute("INSERT INTO codes (code, openid, issued_at) VALUES (?, ?, ?)", (code, openid, state.now(conn)))
    return jsonify({"code": code})


@bp.post("/redpacks/<mch_billno>/claim")
def claim(mch_billno):
    status = claim_packet(_state(), mch_billno)
    if status is None:
        return _bad("no such packet", 404)
    if status != "RECEIVED":
        return jsonify({"mch_billno": mch_billno, "status": status, "error": "packet is not SENT"}), 409
    return jsonify({"mch_billno": mch_billno, "status": status})


@bp.post("/redpacks/<mch_billno>/expire")
def expire(mch_billno):
    status = expire_packet(_state(), mch_billno)
    if status is None:
        return _bad("no such packet", 404)
    if status != "REFUND":
        return jsonify({"mch_billno": mch_billno, "status": status, "error": "packet is not SENT"}), 409
    return jsonify({"mch_billno": mch_billno, "status": status})


@bp.post("/transfers/<out_bill_no>/confirm")
def confirm_transfer(out_bill_no):
    """The resident confirms receipt in the mini-program (wx.requestMerchantTransfer): SUCCESS."""
    return _settle_transfer(out_bill_no, "confirm", "SUCCESS")


@bp.post("/transfers/<out_bill_no>/expire")
def expire_transfer(out_bill_no):
    """The resident lets the bill lapse: FAIL with OVERDUE_CLOSE now, as WeChat does after 24 h."""
    return _settle_transfer(out_bill_no, "expire", "FAIL")


def _settle_transfer(out_bill_no, outcome, expected):
    from app.wechat_sandbox.transfer import settle_bill

    state = settle_bill(current_app._get_current_object(), out_bill_no, outcome)
    if state is None:
        return _bad("no such transfer bill", 404)
    if state != expected and not (outcome == "confirm" and state == "FAIL"):
        return jsonify({"out_bill_no": out_bill_no, "state": state, "error": "bill is not WAIT_USER_CONFIRM"}), 409
    return jsonify({"out_bill_no": out_bill_no, "state": state})


@bp.get("/transfers")
def list_transfers():
    from app.wechat_sandbox.transfer import sweep_overdue

    state = _state()
    with state.tx() as conn:
        sweep_overdue(state, conn)
    rows = state.query("SELECT * FROM transfers ORDER BY create_time, out_bill_no")
    return jsonify({"items": [{"out_bill_no": r["out_bill_no"], "transfer_bill_no": r["transfer_bill_no"],
                               "openid": r["openid"], "amount_fen": r["amount_fen"], "state": r["state"],
                               "fail_reason": r["fail_reason"], "remark": r["remark"],
                               "create_time": wx_time(r["create_time"]), "update_time": wx_time(r["update_time"]),
                               "notify_status": r["notify_status"], "notify_attempts": r["notify_attempts"]}
                              for r in rows],
                    "balance_fen": state.balance()})


@bp.get("/redpacks")
def list_redpacks():
    state = _state()
    with state.tx() as conn:
        sweep_refunds(state, conn)
    rows = state.query("SELECT * FROM redpacks ORDER BY send_time, mch_billno")
    return jsonify({"items": [{"mch_billno": r["mch_billno"], "api": r["api"], "openid": r["openid"],
                               "amount_fen": r["amount_fen"], "status": r["status"], "detail_id": r["detail_id"],
                               "send_time": wx_time(r["send_time"]), "rcv_time": wx_time(r["rcv_time"]),
                               "refund_time": wx_time(r["refund_time"])} for r in rows],
                    "balance_fen": state.balance()})


@bp.post("/clock")
def advance_clock():
    """{"advance_hours": h}: time passes (packets SENT more than 24 h ago are refunded).
    {"at": "ISO-8601 with offset"}: the clock reads that moment now, the past included (a demo that
    lives through last month sets both its clocks to each moment); {"at": null}: real time again."""
    import time
    from datetime import datetime

    body = _body()
    state = _state()
    if "at" in body:
        try:
            moment = None if body["at"] is None else datetime.fromisoformat(body["at"])
        except (TypeError, ValueError):
            return _bad("at must be an ISO-8601 time with offset, or null")
        if moment is not None and moment.tzinfo is None:
            return _bad("at needs an offset (e.g. +08:00)")
        offset = 0.0 if moment is None else moment.timestamp() - time.time()
    else:
        hours = body.get("advance_hours")
        if not isinstance(hours, (int, float)) or isinstance(hours, bool) or hours < 0:
            return _bad("advance_hours must be a non-negative number")
        offset = None
    with state.tx() as conn:
        if offset is None:
            offset = float(state.get_setting("clock_offset", 0, conn)) + hours * 3600
        state.set_setting("clock_offset", offset, conn)
        sweep_refunds(state, conn)
        now = state.now(conn)
    return jsonify({"offset_hours": offset / 3600, "now": wx_time(now)})


@bp.post("/faults")
def inject_fault():
    body = _body()
    api, mode, count = body.get("api"), body.get("mode"), body.get("count", 1)
    if api not in APIS and api != "*":
        return _bad(f"api must be one of {', '.join(APIS)} or *")
    if mode not in MODES:
        return _bad(f"mode must be one of {', '.join(MODES)}")
    if not mode_fits(api, mode):
        return _bad(f"{api} has no {mode}")
    if not isinstance(count, int) or count < 1:
        return _bad("count must be a positive integer")
    add_fault(_state(), api, mode, count)
    return jsonify({"api": api, "mode": mode, "count": count}), 201


@bp.get("/messages")
def list_messages():
    rows = _state().query("SELECT * FROM messages ORDER BY id")
    return jsonify({"items": [{"openid": r["openid"], "template_id": r["template_id"], "page": r["page"],
                               "data": json.loads(r["data"]), "miniprogram_state": r["miniprogram_state"],
                               "at": wx_time(r["at"])} for r in rows]})


@bp.post("/subscriptions")
def set_subscription():
    """How many messages of a template a resident has accepted (wx.requestSubscribeMessage)."""
    body = _body()
    openid, template_id, count = body.get("openid"), body.get("template_id"), body.get("count", 1)
    if not openid or not template_id or not isinstance(count, int) or count < 0:
        return _bad("openid, template_id and a non-negative count required")
    with _state().tx() as conn:
        conn.execute("INSERT INTO subscriptions (openid, template_id, remaining) VALUES (?, ?, ?) "
                     "ON CONFLICT(openid, template_id) DO UPDATE SET remaining = excluded.remaining",
                     (openid, template_id, count))
    return jsonify({"openid": openid, "template_id": template_id, "remaining": count})


@bp.get("/media_checks")
def list_media_checks():
    rows = _state().query("SELECT * FROM media_checks ORDER BY created_at")
    return jsonify({"items": [{"trace_id": r["trace_id"], "media_url": r["media_url"], "suggest": r["suggest"],
                               "label": r["label"], "push_status": r["push_status"]} for r in rows]})


@bp.post("/media_checks/<trace_id>/push")
def repush(trace_id):
    from app.wechat_sandbox.push import push_media_check

    return jsonify({"trace_id": trace_id, "push_status": push_media_check(current_app._get_current_object(),
                                                                          trace_id)})


# Runtime settings (wiped by /reset): where and how media-check results are pushed, the merchant
# balance, a delay on cgi-bin/token, WeChat's pay call rate per merchant, and the app the phone page talks to.
RUNTIME = {"push_url": str, "push_format": str, "push_token": str, "push_aes_key": str, "balance_fen": int,
           "token_delay": (int, float), "pay_rate_limit": int, "merchant_day_fen": int, "app_url": str,
           "transfer_rate_limit": int}


@bp.post("/config")
def set_config():
    """push_url / push_format ("json"|"xml") / push_token / push_aes_key ("" = plaintext mode) override
    the WECHAT_PUSH_* settings; balance_fen is the merchant account; token_delay (s) slows cgi-bin/token;
    pay_rate_limit is the calls per second per merchant (0 = unlimited); merchant_day_fen is the
    merchant's daily total (SENDAMOUNT_LIMIT beyond it; default SANDBOX_MERCHANT_DAY_FEN, ¥1,000,000);
    app_url is where the phone page's residents' API calls go (default PUBLIC_BASE_URL)."""
    body = _body()
    state = _state()
    unknown = set(body) - set(RUNTIME)
    if unknown:
        return _bad(f"unknown settings: {', '.join(sorted(unknown))}")
    for name, value in body.items():
        kind = RUNTIME[name]
        if value is None and kind is not str:
            return _bad(f"{name} must be a number")
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            return _bad(f"{name} has the wrong type")
        if name == "push_format" and value not in (None, "json", "xml"):
            return _bad("push_format must be json or xml")
        if name == "push_aes_key" and value not in (None, "") and len(value) != 43:
            return _bad("push_aes_key must be 43 characters")
    with state.tx() as conn:
        for name, value in body.items():
            state.set_setting(name, value, conn)
    return jsonify({name: state.get_setting(name) for name in RUNTIME if name != "balance_fen"}
                   | {"balance_fen": state.balance()})


@bp.get("/text_checks")
def list_text_checks():
    rows = _state().query("SELECT * FROM text_checks ORDER BY id")
    return jsonify({"items": [{"openid": r["openid"], "scene": r["scene"], "content": r["content"],
                               "suggest": r["suggest"], "label": r["label"], "trace_id": r["trace_id"],
                               "at": wx_time(r["at"])} for r in rows]})


@bp.get("/fundflow/<day>")
def show_fundflow(day):
    body = build_fundflow(_state(), day)
    return (body or ""), 200, {"Content-Type": "text/plain; charset=utf-8"}


@bp.get("/stats")
def stats():
    state = _state()
    return jsonify({"token_fetches": state.get_setting("token_fetches", 0),
                    "pay_freq_limited": state.get_setting("pay_freq_limited", 0)})


@bp.post("/reset")
def reset():
    _state().reset()
    current_app.extensions.pop("sandbox_pay_rate", None)  # the calls-per-second windows too
    current_app.extensions.pop("sandbox_transfer_rate", None)
    current_app.extensions.pop("sandbox_bill_downloads", None)
    return jsonify({"status": "reset"})
