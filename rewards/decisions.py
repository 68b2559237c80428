"""What a payout does with each answer WeChat Pay gives about a red packet: the decision table, as data.

docs/WECHAT.md §Decision table lists the same rows (tests/rewards/test_decisions.py checks that the two
agree). The rules: a resident is never declined for the merchant's condition (the merchant's balance,
daily total, certificate, key or permissions pause every payout instead, and nothing is marked failed);
a packet is re-issued under a new mch_billno only once gethbinfo has proved the old one never paid;
anything that may have paid is asked about (gethbinfo), never re-minted.

`call` is where the answer came from: `send` (sendminiprogramhb / sendredpack, by err_code or by the
gateway's code for a failure without a reply), `query` (gethbinfo's err_code when the query itself
fails) and `status` (gethbinfo's `status` of a packet it found).
"""
from __future__ import annotations

from dataclasses import dataclass

# actions
PAID = "paid"                          # the packet is out: sent (money left the merchant account)
IN_FLIGHT = "in_flight"                # WeChat is still on it: ask gethbinfo on WeChat's schedule
RETRY_SAME = "retry_same_billno"       # nothing paid yet: the same mch_billno again later
QUERY_FIRST = "query_first"            # may or may not have paid: gethbinfo decides, never a new billno
QUERY_AGAIN = "query_again"            # the query failed: ask again later
PAUSE = "pause_merchant"               # the merchant's condition: every payout holds, none fails
DEFER = "defer_resident"               # this resident's daily limit at WeChat: the packet waits for the next day
REISSUE = "reissue_after_proof"        # WeChat wants a new billno: only after gethbinfo proves the old one unpaid
FINAL = "final_for_resident"           # this resident cannot receive: failed, with a reason they can read
MANUAL = "manual_review"               # our request itself is wrong: finance looks
CLAIMED = "claimed"
REFUNDING = "refunding"                # WeChat is returning an unclaimed packet: still in flight
REFUNDED = "refunded"

ACTIONS = (PAID, IN_FLIGHT, RETRY_SAME, QUERY_FIRST, QUERY_AGAIN, PAUSE, DEFER, REISSUE, FINAL, MANUAL, CLAIMED,
           REFUNDING, REFUNDED)

# how a pause ends
NEXT_DAY = "next_day"                  # the next Asia/Shanghai day (WeChat's daily totals reset at midnight)
FINANCE_OR_PROBE = "finance_or_probe"  # finance's 已充值，恢复发放, or a probe packet that goes through


@dataclass(frozen=True)
class Decision:
    call: str                          # send | query | status
    code: str
    action: str
    label: str                         # what staff read (finance console, operator page)
    resident_reason: str | None = None  # what the resident reads in 我的奖励 (final rows only)
    resumes: str | None = None         # pause rows: how the pause ends


def _rows(call, action, codes, label, **extra):
    return [Decision(call, code, action, label, **extra) for code in codes]


MERCHANT_CONFIG = ("NO_AUTH", "CA_ERROR", "SIGN_ERROR", "API_METHOD_CLOSED", "MSGAPPID_ERROR", "ILLEGAL_APPID",
                   "ACCEPTMODE_ERROR", "CERT_MISSING")
CONFIG_LABELS = {
    "NO_AUTH": "微信拦截了商户号的发放（无权限或风控）", "CA_ERROR": "商户证书错误",
    "SIGN_ERROR": "商户密钥错误（签名不符）", "API_METHOD_CLOSED": "商户号的 API 发放方式已关闭",
    "MSGAPPID_ERROR": "触达消息的 AppID 有误", "ILLEGAL_APPID": "AppID 与商户号不符",
"ACCEPTMODE_ERROR": "服务商模式下主商户号与子商户号关系校验失败",
    "CERT_MISSING": "商户证书文件无法读取",
}

ROWS: tuple[Decision, ...] = tuple(
    [Decision("send", "SUCCESS", PAID, "已发出")]
    + [Decision("send", "PROCESSING", IN_FLIGHT, "微信处理中")]
    + _rows("send", RETRY_SAME, ("SYSTEMERROR", "FREQ_LIMIT", "LOCAL_RATE_LIMIT"), "微信繁忙，原单号稍后重试")
    + [Decision("send", "NOTENOUGH", PAUSE, "商户号余额不足", resumes=FINANCE_OR_PROBE),
       Decision("send", "SENDAMOUNT_LIMIT", PAUSE, "商户号今日发放总额已达上限", resumes=NEXT_DAY)]
    + [Decision("send", code, PAUSE, CONFIG_LABELS[code], resumes=FINANCE_OR_PROBE) for code in MERCHANT_CONFIG]
    + [Decision("send", "RCVDAMOUNT_LIMIT", DEFER, "该居民今日在微信的领取金额已达上限，次日发放"),
       Decision("send", "SENDNUM_LIMIT", DEFER, "该居民今日在微信的领取个数已达上限，次日发放")]
    + [Decision("send", "SEND_FAILED", REISSUE, "微信发放失败，查询确认未付后换新单号重发")]
    + [Decision("send", "OPENID_ERROR", FINAL, "居民的 openid 与 AppID 不匹配",
                resident_reason="您的微信账号无法接收本小程序的红包，奖励未能发放"),
       Decision("send", "USER_ERROR", FINAL, "居民的微信支付账户异常",
                resident_reason="您的微信支付账户异常，无法接收红包，奖励未能发放")]
    + _rows("send", MANUAL, ("MONEY_LIMIT", "PARAM_ERROR", "XML_ERROR", "INVALID_BILLNO"), "请求参数有误，待人工核对")
    + _rows("send", QUERY_FIRST, ("FATAL_ERROR", "TIMEOUT", "CONNECTION_ERROR", "HTTP_5xx", "NOT_XML", "UNPARSEABLE",
                                  "INVALID_SIGNATURE", "MISSING_FIELD", "MISMATCH", "*"),
            "结果不明，先向微信查询")
    + [Decision("query", "NOT_FOUND", RETRY_SAME, "微信没有此单：原单号重发")]
    + _rows("query", QUERY_AGAIN, ("SYSTEMERROR", "FREQ_LIMIT", "PROCESSING", "LOCAL_RATE_LIMIT", "*"),
            "查询失败，稍后再查")
    + [Decision("query", code, PAUSE, CONFIG_LABELS[code], resumes=FINANCE_OR_PROBE)
       for code in ("NO_AUTH", "CA_ERROR", "SIGN_ERROR", "CERT_MISSING")]
    + [Decision("status", "SENDING", IN_FLIGHT, "微信发放中（未付，按微信的节奏继续查询）"),
       Decision("status", "SENT", PAID, "已发出，待领取"),
       Decision("status", "RECEIVED", CLAIMED, "已领取"),
       Decision("status", "RFUND_ING", REFUNDING, "退回中"),
       Decision("status", "REFUND", REFUNDED, "已退回"),
       Decision("status", "FAILED", REISSUE, "微信发放失败（从未付款）：换新单号重发")]
)

TABLE: dict[tuple[str, str], Decision] = {(row.call, row.code): row for row in ROWS}
PAUSE_CODES = frozenset(row.code for row in ROWS if row.action == PAUSE)
RESIDENT_REASONS = {row.code: row.resident_reason for row in ROWS if row.resident_reason}


def decide(call: str, code: str | None) -> Decision:
    """The row for an answer; a code nobody listed takes the call's `*` row (a status has none: WeChat
    has exactly six, and the gateway refuses any other before it gets here)."""
    code = code or "*"
    if call == "send" and code.startswith("HTTP_"):
        code = "HTTP_5xx"
    row = TABLE.get((call, code)) or TABLE.get((call, "*"))
    if row is None:
        raise KeyError(f"no decision for {call} {code}")
    return row


def pause_label(code: str) -> str:
    row = TABLE.get(("send", code)) or TABLE.get(("query", code))
    return row.label if row else code


def resident_reason(code: str | None) -> str | None:
    """The Chinese reason a resident reads for a reward that failed for good (None: not theirs to read)."""
    return RESIDENT_REASONS.get(code or "")
