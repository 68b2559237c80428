"""WeChat Pay v2 red packets: sendminiprogramhb, sendredpack, gethbinfo, downloadfundflow.

State is kept per mch_billno: the same billno with the same parameters returns the original result
(re-entrant, pays once); with other parameters it is FATAL_ERROR. Limits as WeChat enforces them.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from collections import deque
from datetime import datetime, timedelta
from decimal import Decimal

from flask import Blueprint, Response, current_app, request

from app.wechat_sandbox.faults import PAY_CODES, fault_response, stall, take_fault, take_state_fault
from app.wechat_sandbox.state import SHANGHAI, local_dt, wx_day, wx_time
from app.wechat_sandbox.wire import pay_fail, pay_sign, parse_xml, xml_response

bp = Blueprint("sandbox_pay", __name__)

MIN_FEN, MAX_FEN = 100, 20000          # ¥1–200 a packet
DAY_COUNT, DAY_FEN = 10, 100000        # 10 packets and ¥1000 per openid per day
MERCHANT_DAY_FEN = 100_000_000         # the merchant's own daily total (WeChat: ¥1,000,000 unless lowered)
LIVE = "status NOT IN ('FAILED')"      # packets that count against the daily limits
REFUND_AFTER = 24 * 3600
# Parameters that define a packet: a retry must repeat them exactly.
IDENTITY = ("wxappid", "re_openid", "total_amount", "total_num", "send_name", "act_name", "wishing", "remark",
            "notify_way", "scene_id", "client_ip")
FUND_HEADER = "记账时间,微信支付业务单号,资金流水单号,业务名称,业务类型,收支类型,收支金额（元）,账户结余（元）,资金变更提交申请人,备注,业务凭证号"
SUMMARY_HEADER = "资金流水总笔数,收入笔数,收入金额,支出笔数,支出金额"


def _state():
    return current_app.extensions["sandbox_state"]


class CallRate:
    """WeChat's 30 calls/s per merchant on the red-packet APIs: a sliding one-second window of the
    calls accepted (in memory: a restart forgets it, as a second later WeChat would too)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.calls: deque[float] = deque()

    def admit(self, limit: int) -> bool:
        if limit <= 0:
            return True
        now = time.monotonic()
        with self.lock:
            while self.calls and self.calls[0] <= now - 1.0:
                self.calls.popleft()
            if len(self.calls) >= limit:
                return False
            self.calls.append(now)
            return True


def _over_rate():
    """A FREQ_LIMIT reply when this call would exceed the merchant's calls per second, else None."""
    app = current_app
    rate = app.extensions.setdefault("sandbox_pay_rate", CallRate())
    limit = _state().get_setting("pay_rate_limit", app.config.get("SANDBOX_PAY_RATE_LIMIT", 30))
    if rate.admit(int(limit)):
        return None
    with _state().tx() as conn:  # counted, so a test of the app's limiter can show it never tripped
        _state().set_setting("pay_freq_limited", _state().get_setting("pay_freq_limited", 0, conn) + 1, conn)
    return pay_fail("FREQ_LIMIT", "超过频率限制，请稍后再试")


def _key():
    return current_app.config["WECHAT_PAY_KEY"]


def _client_cert_problem():
    """With SANDBOX_CLIENT_CA set (HTTPS), the red-packet APIs want the merchant's client certificate,
    issued to this mch_id, as WeChat does; the TLS layer already checked it is signed by that CA."""
    if not current_app.config.get("SANDBOX_CLIENT_CA"):
        return None
    pem = request.environ.get("SSL_CLIENT_CERT")
    if not pem:
        return pay_fail("CA_ERROR", "请求未携带证书，请检查证书配置")
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    names = x509.load_pem_x509_certificate(pem.encode()).subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names or names[0].value != current_app.config["WECHAT_MCH_ID"]:
        return pay_fail("CA_ERROR", "证书与商户号不匹配")
    return None


def _authenticate(data, *, sign_type_required=None):
    """Common checks: client certificate, parsable XML, merchant id, signature. An error response or None."""
    bad_cert = _client_cert_problem()
    if bad_cert is not None:
        return bad_cert
    if data is None:
        return pay_fail("XML_ERROR", "输入xml参数格式错误", communication=True)
    if data.get("mch_id") != current_app.config["WECHAT_MCH_ID"]:
        return pay_fail("PARAM_ERROR", "mch_id参数错误", communication=True)
    sign_type = data.get("sign_type") or "MD5"
    if sign_type_required and sign_type != sign_type_required:
        return pay_fail("PARAM_ERROR", "sign_type参数错误，仅支持" + sign_type_required, communication=True)
    if sign_type not in ("MD5", "HMAC-SHA256") or not data.get("sign") or not data.get("nonce_str"):
        return pay_fail("SIGN_ERROR", "签名错误", communication=True)
    if not hmac.compare_digest(str(data["sign"]), pay_sign(data, _key(), sign_type)):
        return pay_fail("SIGN_ERROR", "签名错误", communication=True)
    return None


MISSING_FIELDS = ("package", "send_listid", "status", "detail_id", "total_amount")


def _signed(fields, mode):
    """WeChat's official replies to sendredpack / sendminiprogramhb / gethbinfo carry no `sign` (the
    TLS client certificate is what binds them); bad_sign signs one with another key, which a client
    that checks a signature where there is one must refuse."""
    if mode == "missing_field":  # processed (a packet is paid), the reply without its fields
        fields = {k: v for k, v in fields.items() if k not in MISSING_FIELDS}
    if mode == "mismatch" and "total_amount" in fields:  # processed; the reply names another amount
        fields = {**fields, "total_amount": str(int(fields["total_amount"]) + 1)}
    if mode == "unparseable":  # processed; the reply lacks what every WeChat Pay reply starts with
        fields = {k: v for k, v in fields.items() if k != "return_code"}
    key = "not-the-merchant-key-00000000000" if mode == "bad_sign" else None
    response = xml_response(fields, key=key)
    if mode == "accept_then_timeout":
        stall()
    return response


def sweep_refunds(state, conn):
    """Unclaimed packets go back to the merchant 24 h after sending (sandbox time)."""
    now = state.now(conn)
    due = conn.execute("SELECT mch_billno, detail_id, amount_fen, send_time FROM redpacks "
                       "WHERE status = 'SENT' AND send_time + ? <= ?", (REFUND_AFTER, now)).fetchall()
    for row in due:
        slow = _take_refund_slow(conn)
        if slow:  # WeChat is refunding: RFUND_ING for `slow` queries, then REFUND (booked when it lands)
            conn.execute("UPDATE redpacks SET status = 'RFUND_ING', pending_left = ?, pending_then = 'REFUND' "
                         "WHERE mch_billno = ?", (slow, row["mch_billno"]))
            continue
        at = row["send_time"] + REFUND_AFTER
        conn.execute("UPDATE redpacks SET status = 'REFUND', refund_time = ? WHERE mch_billno = ?",
                     (at, row["mch_billno"]))
        _add_flow(state, conn, at, "refund", row["mch_billno"], row["detail_id"], row["amount_fen"])


def _take_refund_slow(conn) -> int:
    row = conn.execute("SELECT id, remaining FROM faults WHERE mode = 'refund_slow' AND remaining > 0 "
                       "ORDER BY id LIMIT 1").fetchone()
    if row is None:
        return 0
    conn.execute("UPDATE faults SET remaining = 0 WHERE id = ?", (row["id"],))
    return int(row["remaining"])


def advance_pending(state, conn, row):
    """A query of a packet in an intermediate state (SENDING, RFUND_ING): it answers that state
    `pending_left` more times, then moves on (SENT / FAILED / REFUND) and answers the new state."""
    if row["status"] not in ("SENDING", "RFUND_ING"):
        return row
    billno = row["mch_billno"]
    if (row["pending_left"] or 0) > 0:
        conn.execute("UPDATE redpacks SET pending_left = pending_left - 1 WHERE mch_billno = ?", (billno,))
    else:
        now = state.now(conn)
        then = row["pending_then"]
        if then == "SENT":
            conn.execute("UPDATE redpacks SET status = 'SENT', send_time = ?, reason = NULL WHERE mch_billno = ?",
                         (now, billno))
            _add_flow(state, conn, now, "send", billno, row["detail_id"], row["amount_fen"])
        elif then == "REFUND":
            conn.execute("UPDATE redpacks SET status = 'REFUND', refund_time = ? WHERE mch_billno = ?", (now, billno))
            _add_flow(state, conn, now, "refund", billno, row["detail_id"], row["amount_fen"])
        else:
            conn.execute("UPDATE redpacks SET status = 'FAILED' WHERE mch_billno = ?", (billno,))
    return conn.execute("SELECT * FROM redpacks WHERE mch_billno = ?", (billno,)).fetchone()


def _add_flow(state, conn, at, kind, billno, detail_id, amount_fen):
    balance = state.balance(conn) + (amount_fen if kind == "refund" else -amount_fen)
    state.set_setting("balance_fen", balance, conn)
    conn.execute("INSERT INTO flows (at, day, kind, mch_billno, detail_id, amount_fen, balance_fen) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?)", (at, wx_day(at), kind, billno, detail_id, amount_fen, balance))


def _params_hash(api, data):
    identity = {name: str(data.get(name) or "") for name in IDENTITY}
    return hashlib.sha256(json.dumps([api, identity], sort_keys=True).encode()).hexdigest()


def _validate_send(api, data):
    cfg = current_app.config
    billno = data.get("mch_billno") or ""
    if len(billno) != 28 or not billno.isdigit() or not billno.startswith(cfg["WECHAT_MCH_ID"]):
        return pay_fail("PARAM_ERROR", "mch_billno参数错误：商户订单号为mch_id+yyyymmdd+10位数字，共28位")
    if data.get("wxappid") != cfg["WECHAT_APPID"]:
        return pay_fail("ILLEGAL_APPID", "非法appid，请确认是否为公众号的appid，不能为APP的appid")
    for name in ("re_openid", "send_name", "act_name", "wishing", "remark"):
        if not data.get(name):
            return pay_fail("PARAM_ERROR", f"{name}字段必填，并且少于32个字符")
    if str(data.get("total_num")) != "1":
        return pay_fail("PARAM_ERROR", "total_num必须为1")
    if api == "sendminiprogramhb" and data.get("notify_way") != "MINI_PROGRAM_JSAPI":
        return pay_fail("PARAM_ERROR", "notify_way参数错误，小程序红包须为MINI_PROGRAM_JSAPI")
    if api == "sendredpack" and not data.get("client_ip"):
        return pay_fail("PARAM_ERROR", "client_ip字段必填")
    amount = str(data.get("total_amount") or "")
    if not amount.isdigit():
        return pay_fail("PARAM_ERROR", "total_amount参数错误")
    if not MIN_FEN <= int(amount) <= MAX_FEN:
        return pay_fail("MONEY_LIMIT", "每个红包的金额必须在[1.00元-200.00元]之间")
    return None


def _package(detail_id, billno):
    cfg = current_app.config
    raw = f"sendid={detail_id}&ver=8&mchid={cfg['WECHAT_MCH_ID']}&spbillid={billno}"
    sig = hmac.new(cfg["WECHAT_PAY_KEY"].encode(), raw.encode(), hashlib.sha256).hexdigest()
    return f"{raw}&sign={sig}"


def _send_reply(api, row):
    cfg = current_app.config
    # WeChat's official sendredpack success sample answers err_code 0 (gethbinfo's says SUCCESS)
    fields = {"return_code": "SUCCESS", "return_msg": "发放成功", "result_code": "SUCCESS",
              "err_code": "0", "err_code_des": "发放成功", "mch_billno": row["mch_billno"],
              "mch_id": cfg["WECHAT_MCH_ID"], "wxappid": cfg["WECHAT_APPID"], "re_openid": row["openid"],
              "total_amount": row["amount_fen"], "send_listid": row["detail_id"]}
    if api == "sendminiprogramhb":
        fields["package"] = row["package"]
    return fields


def _send(api):
    limited = _over_rate()
    if limited is not None:
        return limited
    mode = take_fault(_state(), api)
    early = fault_response(mode, "xml", api)
    if early is not None:
        return early
    data = parse_xml(request.get_data())
    bad = _authenticate(data) or _validate_send(api, data)
    if bad is not None:
        return bad
    state = _state()
    digest = _params_hash(api, data)
    with state.tx() as conn:
        outcome = _settle(state, conn, api, data, digest)
    if outcome == "lost":
        stall()
        return pay_fail("SYSTEMERROR", PAY_CODES["SYSTEMERROR"])  # long after the client gave up
    if not isinstance(outcome, dict):
        return outcome
    return _signed(_send_reply(api, outcome), mode)  # any stall happens outside the transaction


def _settle(state, conn, api, data, digest):
    """The packet row for this billno (existing or new), or a failure response."""
    billno, openid, amount = data["mch_billno"], data["re_openid"], int(data["total_amount"])
    sweep_refunds(state, conn)
    row = conn.execute("SELECT * FROM redpacks WHERE mch_billno = ?", (billno,)).fetchone()
    if row is not None:
        if row["params_hash"] != digest:
            return pay_fail("FATAL_ERROR", "该商户订单号已存在，但参数与原单不一致，请更换单号或使用原参数重试")
        if row["status"] == "SENDING":
            return pay_fail("PROCESSING", PAY_CODES["PROCESSING"])
        if row["status"] == "FAILED":  # WeChat's answer for a billno whose packet failed: use another one
            return pay_fail("SEND_FAILED", PAY_CODES["SEND_FAILED"])
        return dict(row)
    now = state.now(conn)
    day = wx_day(now)
    count, total = conn.execute(f"SELECT COUNT(*), COALESCE(SUM(amount_fen), 0) FROM redpacks "
                                f"WHERE openid = ? AND send_day = ? AND {LIVE}", (openid, day)).fetchone()
    if count >= DAY_COUNT:
        return pay_fail("SENDNUM_LIMIT", PAY_CODES["SENDNUM_LIMIT"])
    if total + amount > DAY_FEN:
        return pay_fail("RCVDAMOUNT_LIMIT", PAY_CODES["RCVDAMOUNT_LIMIT"])
    merchant_total = conn.execute(f"SELECT COALESCE(SUM(amount_fen), 0) FROM redpacks WHERE send_day = ? AND {LIVE}",
                                  (day,)).fetchone()[0]
    if merchant_total + amount > int(state.get_setting("merchant_day_fen", _merchant_day_fen(), conn)):
        return pay_fail("SENDAMOUNT_LIMIT", PAY_CODES["SENDAMOUNT_LIMIT"])
    if state.balance(conn) < amount:
        return pay_fail("NOTENOUGH", PAY_CODES["NOTENOUGH"])
    seq = conn.execute("SELECT COUNT(*) FROM redpacks").fetchone()[0] + 1
    detail_id = f"1000041701{day}{seq:010d}"
    package = _package(detail_id, billno) if api == "sendminiprogramhb" else None
    pending = {mode: take_state_fault(state, conn, api, mode) for mode in ("sending_then_sent", "sending_then_failed")}
    then = "SENT" if pending["sending_then_sent"] else "FAILED" if pending["sending_then_failed"] else None
    status = "SENDING" if then else "SENT"
    reason = PAY_CODES["NOTENOUGH"] if then == "FAILED" else None  # what WeChat has shown on such packets
    conn.execute("INSERT INTO redpacks (mch_billno, api, params_hash, params, openid, amount_fen, status, "
                 "detail_id, package, send_time, send_day, pending_left, pending_then, reason) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                 (billno, api, digest, json.dumps({k: data.get(k) for k in IDENTITY}, ensure_ascii=False),
                  openid, amount, status, detail_id, package, now, day,
                  (pending["sending_then_sent"] or pending["sending_then_failed"]) if then else None, then, reason))
    if then:
        return "lost"  # the reply never reaches the merchant; gethbinfo tells the rest
    _add_flow(state, conn, now, "send", billno, detail_id, amount)
    return dict(conn.execute("SELECT * FROM redpacks WHERE mch_billno = ?", (billno,)).fetchone())


def _merchant_day_fen() -> int:
    return int(current_app.config.get("SANDBOX_MERCHANT_DAY_FEN") or MERCHANT_DAY_FEN)


@bp.post("/mmpaymkttransfers/sendminiprogramhb")
def sendminiprogramhb():
    return _send("sendminiprogramhb")


@bp.post("/mmpaymkttransfers/sendredpack")
def sendredpack():
    return _send("sendredpack")


@bp.post("/mmpaymkttransfers/gethbinfo")
def gethbinfo():
    limited = _over_rate()
    if limited is not None:
        return limited
    mode = take_fault(_state(), "gethbinfo")
    early = fault_response(mode, "xml", "gethbinfo")
    if early is not None:
        return early
    data = parse_xml(request.get_data())
    bad = _authenticate(data)
    if bad is not None:
        return bad
    if data.get("bill_type") != "MCHT":
        return pay_fail("PARAM_ERROR", "bill_type参数错误，目前固定为MCHT")
    if data.get("appid") != current_app.config["WECHAT_APPID"]:
        return pay_fail("PARAM_ERROR", "appid参数错误")
    state = _state()
    with state.tx() as conn:
        sweep_refunds(state, conn)
        row = conn.execute("SELECT * FROM redpacks WHERE mch_billno = ?", (data.get("mch_billno"),)).fetchone()
        if row is not None:
            row = advance_pending(state, conn, row)
        now = state.now(conn)
    if row is None or now - row["send_time"] > 30 * 86400:
        return pay_fail("NOT_FOUND", "指定单号数据不存在")
    params = json.loads(row["params"])
    fields = {"return_code": "SUCCESS", "return_msg": "OK", "result_code": "SUCCESS", "err_code": "SUCCESS",
              "err_code_des": "OK", "mch_billno": row["mch_billno"], "mch_id": current_app.config["WECHAT_MCH_ID"],
              "detail_id": row["detail_id"], "status": row["status"], "send_type": "API", "hb_type": "NORMAL",
              "total_num": 1, "total_amount": row["amount_fen"], "send_time": wx_time(row["send_time"]),
              "wishing": params.get("wishing"), "remark": params.get("remark"), "act_name": params.get("act_name")}
    if row["reason"]:
        fields["reason"] = row["reason"]
    if row["refund_time"]:
        fields.update(refund_time=wx_time(row["refund_time"]), refund_amount=row["amount_fen"])
    if row["rcv_time"]:
        fields["hblist"] = {"hbinfo": {"openid": row["openid"], "status": "RECEIVED", "amount": row["amount_fen"],
                                       "rcv_time": wx_time(row["rcv_time"])}}
    return _signed(fields, mode)


def _yuan(fen: int) -> str:
    return str((Decimal(fen) / 100).quantize(Decimal("0.01")))


# 业务名称, 业务类型, 备注 of each kind of flow: red packets (v2) and merchant transfers (v3) share the account.
FLOW_NAMES = {"send": ("现金红包", "红包发放", "红包发放"), "refund": ("现金红包", "红包退款", "红包未领取退回"),
              "transfer": ("商家转账", "转账", "商家转账到零钱")}


def build_fundflow(state, day: str) -> str | None:
    """The day's fund-flow bill as WeChat writes it: backtick-prefixed CSV, summary rows at the end."""
    rows = state.query("SELECT * FROM flows WHERE day = ? ORDER BY at, id", (day,))
    if not rows:
        return None
    mch_id = current_app.config["WECHAT_MCH_ID"]
    lines = [FUND_HEADER]
    income = [r for r in rows if r["kind"] == "refund"]
    expense = [r for r in rows if r["kind"] != "refund"]  # red packets sent, transfers paid
    for r in rows:
        refund = r["kind"] == "refund"
        flow_id = f"{mch_id}{local_dt(r['at']).strftime('%Y%m%d')}{r['id']:010d}"
        name, kind, remark = FLOW_NAMES[r["kind"]]
        cells = [wx_time(r["at"]), r["detail_id"], flow_id, name, kind, "收入" if refund else "支出",
                 _yuan(r["amount_fen"]), _yuan(r["balance_fen"]), "system" if refund else f"{mch_id}API", remark,
                 r["mch_billno"]]
        lines.append(",".join("`" + cell for cell in cells))
    lines.append(SUMMARY_HEADER)
    lines.append(",".join("`" + c for c in (str(len(rows)), str(len(income)),
                                              _yuan(sum(r["amount_fen"] for r in income)), str(len(expense)),
                                              _yuan(sum(r["amount_fen"] for r in expense)))))
    return "\r\n".join(lines) + "\r\n"


def _bill_error(message, code):
    return xml_response({"return_code": "FAIL", "return_msg": message, "error_code": code})


@bp.post("/pay/downloadfundflow")
def downloadfundflow():
    limited = _over_rate()
    if limited is not None:
        return limited
    mode = take_fault(_state(), "downloadfundflow")
    early = fault_response(mode, "xml", "downloadfundflow")
    if early is not None:
        return early
    data = parse_xml(request.get_data())
    bad = _authenticate(data, sign_type_required="HMAC-SHA256")
    if bad is not None:
        return bad
    if data.get("account_type") not in ("Basic", "Operation", "Fees"):
        return _bill_error("invalid account_type", "20001")
    try:
        bill_day = datetime.strptime(str(data.get("bill_date")), "%Y%m%d").date()
    except ValueError:
        return _bill_error("invalid bill_date", "20001")
    state = _state()
    with state.tx() as conn:
        sweep_refunds(state, conn)
        today = local_dt(state.now(conn)).date()
    if bill_day >= today:  # a day's bill exists from the next morning on
        return _bill_error("Bill Creating", "20003")
    if bill_day < today - timedelta(days=90):
        return _bill_error("invalid bill_date", "20001")
    body = build_fundflow(state, bill_day.strftime("%Y%m%d")) if data["account_type"] == "Basic" else None
    if body is None:
        return _bill_error("No Bill Exist", "20002")
    if mode == "missing_field":  # the bill is cut before its summary rows
        body = body[:body.index("资金流水总笔数")]
    response = Response(body.encode("utf-8"), content_type="text/plain;charset=utf-8")
    if mode == "accept_then_timeout":
        stall()
    return response


def claim_packet(state, billno: str):
    """The resident opens the packet (control API)."""
    with state.tx() as conn:
        sweep_refunds(state, conn)
        row = conn.execute("SELECT status FROM redpacks WHERE mch_billno = ?", (billno,)).fetchone()
        if row is None:
            return None
        if row["status"] != "SENT":
            return row["status"]
        conn.execute("UPDATE redpacks SET status = 'RECEIVED', rcv_time = ? WHERE mch_billno = ?",
                     (state.now(conn), billno))
        return "RECEIVED"


def expire_packet(state, billno: str):
    """The resident lets the packet lapse (control API): refunded now, as WeChat does once its 24 h
    have run out — a test that cannot wait a day gets the refund dated today on both sides."""
    with state.tx() as conn:
        sweep_refunds(state, conn)
        row = conn.execute("SELECT status, detail_id, amount_fen FROM redpacks WHERE mch_billno = ?",
                           (billno,)).fetchone()
        if row is None:
            return None
        if row["status"] != "SENT":
            return row["status"]
        now = state.now(conn)
        conn.execute("UPDATE redpacks SET status = 'REFUND', refund_time = ? WHERE mch_billno = ?", (now, billno))
        _add_flow(state, conn, now, "refund", billno, row["detail_id"], row["amount_fen"])
        return "REFUND"


def today_str(state) -> str:
    return datetime.fromtimestamp(state.now(), SHANGHAI).strftime("%Y-%m-%d")


def make_nonce() -> str:
    return secrets.token_hex(16)
