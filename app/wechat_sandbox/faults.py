"""Fault injection: the next `count` calls of an API fail in a chosen way (docs/API.md §WeChat sandbox)."""
from __future__ import annotations

import time

from flask import current_app

from app.wechat_sandbox.wire import html_page, json_error, pay_fail

# The first seven are docs/API.md's; bad_sign (pay: reply signed with another key), missing_field (the call
# is processed but the reply lacks its business fields) and unknown_code (a code nobody documented) are extra.
BASE_MODES = ("SYSTEMERROR", "timeout", "accept_then_timeout", "http_500", "not_xml", "NOTENOUGH", "FREQ_LIMIT",
              "bad_sign", "missing_field", "unknown_code")
# WeChat Pay's documented red-packet error codes, with the err_code_des WeChat writes (sendredpack /
# sendminiprogramhb / gethbinfo error tables). Injected by name on the packet APIs.
PAY_CODES = {
    "SYSTEMERROR": "请求已受理，请稍后使用原单号查询发放结果",
    "NOTENOUGH": "帐号余额不足，请到商户平台充值后再重试",
    "FREQ_LIMIT": "超过频率限制,请稍后再试",
    "SENDAMOUNT_LIMIT": "您的商户号今日发放金额超过限制，如有需要请登录微信支付商户平台更改API安全配置",
    "RCVDAMOUNT_LIMIT": "该用户今日领取金额超过限制，如有需要请登录微信支付商户平台更改API安全配置",
    "SENDNUM_LIMIT": "该用户今日领取红包个数超过限制",
    "SEND_FAILED": "红包发放失败,请更换单号再重试",
    "PROCESSING": "请求已受理，请稍后使用原单号查询发放结果",
    "NO_AUTH": "发放失败，此请求可能存在风险，已被微信拦截",
    "CA_ERROR": "CA证书出错，请登录微信支付商户平台下载证书",
    "SIGN_ERROR": "签名错误",
    "OPENID_ERROR": "openid和appid不匹配",
    "API_METHOD_CLOSED": "你的商户号API发放方式已关闭，请联系管理员在商户平台开启",
    "MSGAPPID_ERROR": "触达消息给用户appid有误",
    "ACCEPTMODE_ERROR": "服务商模式下主商户号与子商户号关系校验失败",
    "ILLEGAL_APPID": "非法appid，请确认是否为公众号的appid，不能为APP的appid",
    "MONEY_LIMIT": "每个红包的金额必须在[1.00元-200.00元]之间",
    "PARAM_ERROR": "参数错误",
    "XML_ERROR": "输入xml参数格式错误",
    "FATAL_ERROR": "openid和原始单参数不一致",
    "USER_ERROR": "用户账户异常",
    "NOT_FOUND": "指定单号数据不存在",
}
# States a packet passes through (count = how many gethbinfo queries see the intermediate state):
# the send's reply is lost and the packet is SENDING, then SENT (paid) or FAILED (never paid);
# an unclaimed packet is RFUND_ING before REFUND.
STATE_MODES = ("sending_then_sent", "sending_then_failed", "refund_slow")
# Replies to a send that was processed (the packet is paid) but that the merchant cannot trust:
# mismatch answers for another amount (a reply mixed up on the way), unparseable lacks return_code.
REPLY_MODES = ("mismatch", "unparseable")
MP_CODES = {"jscode2session": {"40226": "code blocked"},
            "msg_sec_check": {"61010": "user in blacklist, or the user has not visited the mini program "
                                       "in the last two hours"}}
# WeChat Pay APIv3's error codes on the transfer-bill APIs: (HTTP status, message).
V3_CODES = {
    "PARAM_ERROR": (400, "参数错误"),
    "INVALID_REQUEST": (400, "请求参数符合参数格式，但不符合业务规则"),
    "SIGN_ERROR": (401, "签名错误"),
    "NO_AUTH": (403, "当前商户号没有使用该接口的权限"),
    "NOT_ENOUGH": (403, "商户账户余额不足"),
    "ACCOUNT_ERROR": (403, "收款用户账户异常"),
    "NOT_FOUND": (404, "记录不存在"),
    "FREQUENCY_LIMIT_EXCEED": (429, "超过频率限制，请稍后再试"),
    "SYSTEM_ERROR": (500, "系统错误，请使用原单号重试"),
    "NO_STATEMENT_EXIST": (400, "账单文件不存在"),
}
TRANSFER_APIS = ("transfer_bills", "transfer_query", "transfer_cancel", "fundflowbill")
MODES = (BASE_MODES + tuple(c for c in PAY_CODES if c not in BASE_MODES) + STATE_MODES + REPLY_MODES + ("40226", "61010")
         + tuple(c for c in V3_CODES if c not in PAY_CODES))
UNKNOWN_PAY_CODE, UNKNOWN_ERRCODE = "NEW_RISK_CONTROL", 89999
APIS = ("token", "jscode2session", "msg_sec_check", "media_check_async", "subscribe_send",
        "sendminiprogramhb", "sendredpack", "gethbinfo", "downloadfundflow") + TRANSFER_APIS
PAY_APIS = ("sendminiprogramhb", "sendredpack", "gethbinfo", "downloadfundflow")


def mode_fits(api: str, mode: str) -> bool:
    """Codes and states exist only where WeChat has them (`*` takes any mode)."""
    if api in TRANSFER_APIS:
        return mode in V3_CODES or mode in BASE_MODES and mode not in STATE_MODES
    if mode in BASE_MODES or api == "*":
        return True
    if mode in ("40226", "61010"):
        return mode in MP_CODES.get(api, {})
    if mode == "refund_slow":
        return api in ("sendminiprogramhb", "sendredpack", "gethbinfo")
    if mode in REPLY_MODES:
        return api in ("sendminiprogramhb", "sendredpack")
    return api in ("sendminiprogramhb", "sendredpack", "gethbinfo") and (mode in PAY_CODES or mode in STATE_MODES)


def take_state_fault(state, conn, api: str, mode: str) -> int:
    """Consume a whole state fault at once (its count is a number of queries): the count, or 0."""
    row = conn.execute("SELECT id, remaining FROM faults WHERE api IN (?, '*') AND mode = ? AND remaining > 0 "
                       "ORDER BY id LIMIT 1", (api, mode)).fetchone()
    if row is None:
        return 0
    conn.execute("UPDATE faults SET remaining = 0 WHERE id = ?", (row["id"],))
    return int(row["remaining"])


def add_fault(state, api: str, mode: str, count: int) -> None:
    with state.tx() as conn:
        conn.execute("INSERT INTO faults (api, mode, remaining) VALUES (?, ?, ?)", (api, mode, count))


def take_fault(state, api: str) -> str | None:
    """Consume one injected fault for `api` ("*" matches every API), oldest first."""
    with state.tx() as conn:
        row = conn.execute("SELECT id, mode FROM faults WHERE api IN (?, '*') AND remaining > 0 AND mode NOT IN "
                           "('sending_then_sent', 'sending_then_failed', 'refund_slow') ORDER BY id LIMIT 1",
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
    if mode in (None, "accept_then_timeout", "bad_sign", "missing_field") + REPLY_MODES:
        return None
    if mode in MP_CODES.get(api, {}):
        return json_error(int(mode), MP_CODES[api][mode])
    if kind == "xml" and mode in PAY_CODES and mode != "SYSTEMERROR":
        return pay_fail(mode, PAY_CODES[mode])
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
