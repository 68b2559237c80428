"""Fault injection: the next `count` calls of an API fail in a chosen way (docs/API.md §WeChat sandbox)."""
from __future__ import annotations

import time

from flask import current_app

from app.wechat_sandbox.wire import html_page, json_error, pay_fail

# The first seven are docs/API.md's; bad_sign (pay: reply signed with another key), missing_field (the call
# is processed but the reply lacks its business fields) and unknown_code (a code nobody documented) are extra.
MODES = ("SYSTEMERROR", "timeout", "accept_then_timeout", "http_500", "not_xml", "NOTENOUGH", "FREQ_LIMIT",
         "bad_sign", "missing_field", "unknown_code")
UNKNOWN_PAY_CODE, UNKNOWN_ERRCODE = "NEW_RISK_CONTROL", 89999
APIS = ("token", "jscode2session", "msg_sec_check", "media_check_async", "subscribe_send",
        "sendminiprogramhb", "sendredpack", "gethbinfo", "downloadfundflow")
PAY_APIS = ("sendminiprogramhb", "sendredpack", "gethbinfo", "downloadfundflow")


def add_fault(state, api: str, mode: str, count: int) -> None:
    with state.tx() as conn:
        conn.execute("INSERT INTO faults (api, mode, remaining) VALUES (?, ?, ?)", (api, mode, count))


def take_fault(state, api: str) -> str | None:
    """Consume one injected fault for `api` ("*" matches every API), oldest first."""
    with state.tx() as conn:
        row = conn.execute("SELECT id, mode FROM faults WHERE api IN (?, '*') AND remaining > 0 ORDER BY id LIMIT 1",
                           (api,)).fetchone()
        if row is None:
            return None
        conn.execute("UPDATE faults SET remaining = remaining - 1 WHERE id = ?", (row["id"],))
        return row["mode"]


def stall() -> None:
    """Hold the connection open past any sane client timeout."""
    time.sleep(float(current_app.config["SANDBOX_FAULT_SLEEP"]))


def fault_response(mode: str | None, kind: str, api: str):
    """The reply for a fault that fails before any processing, or None to go on."""
    if mode in (None, "accept_then_timeout", "bad_sign", "missing_field"):
        return None
    if mode == "unknown_code":
        if kind == "xml":
            return pay_fail(UNKNOWN_PAY_CODE, "风控拦截，请联系微信支付")
        return json_error(UNKNOWN_ERRCODE, "unknown error")
    if mode == "timeout":
        stall()
    if mode == "http_500":
        return html_page("500 Internal Server Error", status=500)
    if mode == "not_xml":
        return html_page("502 Bad Gateway")
    if kind == "xml":
        messages = {"SYSTEMERROR": "系统繁忙，请稍后再试", "NOTENOUGH": "帐号余额不足，请到商户平台充值后再重试",
                    "FREQ_LIMIT": "超过频率限制，请稍后再试", "timeout": "系统繁忙，请稍后再试"}
        code = mode if mode in messages and mode != "timeout" else "SYSTEMERROR"
        return pay_fail(code, messages[code])
    if mode == "FREQ_LIMIT":
        return json_error(45011 if api == "jscode2session" else 45009,
                          "api minute-quota reach limit  mustslower  retry next minute" if api == "jscode2session"
                          else "reach max api daily quota limit")
    return json_error(-1, "system error")
