"""WeChat Pay APIv3 商家转账 (merchant transfer): create, query by out_bill_no, cancel; the fund-flow bill.

As WeChat does: every request carries `Authorization: WECHATPAY2-SHA256-RSA2048 mchid=…,nonce_str=…,
signature=…,timestamp=…,serial_no=…` (RSA-SHA256 by the merchant's key over `METHOD\\nPATH\\nTS\\nNONCE\\nBODY\\n`);
every reply is signed by WeChat Pay's key (`Wechatpay-Signature` over `TS\\nNONCE\\nBODY\\n`, `Wechatpay-Serial`
= the public key id). A bill waits for the resident (WAIT_USER_CONFIRM, with `package_info` for
wx.requestMerchantTransfer) until they confirm (SUCCESS, paid), 24 h pass (FAIL, OVERDUE_CLOSE) or the
merchant cancels (CANCELING, then CANCELLED). Each final state is notified to the bill's notify_url,
AES-256-GCM-encrypted under the APIv3 key and signed, retried until the app answers 2xx.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
import time
from datetime import datetime
from functools import lru_cache

import requests
from flask import Blueprint, Response, current_app, request

from app.wechat_sandbox.faults import UNKNOWN_PAY_CODE, V3_CODES, stall, take_fault
from app.wechat_sandbox.pay import CallRate, build_fundflow
from app.wechat_sandbox.state import SHANGHAI, local_dt, wx_day

bp = Blueprint("sandbox_transfer", __name__)

MIN_FEN = 10                      # ¥0.10
NAME_REQUIRED_FEN = 200_000       # from ¥2,000 WeChat wants the payee's name
CONFIRM_WINDOW = 24 * 3600        # unconfirmed bills close after 24 h (FAIL, OVERDUE_CLOSE)
MAX_SKEW = 300                    # a request's timestamp may be this far off
FINAL = ("SUCCESS", "FAIL", "CANCELLED")
IDENTITY = ("appid", "openid", "transfer_amount", "transfer_remark", "transfer_scene_id")
BILL_ID = re.compile(r"^[0-9A-Za-z]{5,32}$")


def _state():
    return current_app.extensions["sandbox_state"]


# keys ------------------------------------------------------------------------------------------
def v3_keys(cfg) -> dict:
    """The merchant's public key and serial, WeChat Pay's private key and public key id, the APIv3 key:
    given in the settings (SANDBOX_PAY_PRIVATE_KEY_FILE set), else the development pairs the app
    generates under the same instance folder (app/dev_keys.py)."""
    if cfg.get("SANDBOX_PAY_PRIVATE_KEY_FILE"):
        paths = {name: cfg.get(name) for name in ("WECHAT_PAY_KEY_FILE", "WECHAT_PAY_SERIAL",
                                                  "WECHAT_PAY_PUBLIC_KEY_ID", "SANDBOX_PAY_PRIVATE_KEY_FILE")}
    else:
        from app.dev_keys import dev_v3_keys

        paths = dev_v3_keys(cfg["SANDBOX_V3_KEYS_DIR"])
    return _load(paths["WECHAT_PAY_KEY_FILE"], paths["WECHAT_PAY_SERIAL"], paths["WECHAT_PAY_PUBLIC_KEY_ID"],
                 paths["SANDBOX_PAY_PRIVATE_KEY_FILE"], cfg["WECHAT_PAY_V3_KEY"])


@lru_cache(maxsize=4)
def _load(merchant_key_file, serial, public_id, wechatpay_key_file, v3_key):
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    with open(merchant_key_file, "rb") as handle:
        merchant = load_pem_private_key(handle.read(), password=None).public_key()
    with open(wechatpay_key_file, "rb") as handle:
        wechatpay = load_pem_private_key(handle.read(), password=None)
    return {"merchant_public": merchant, "serial": serial, "wechatpay_private": wechatpay, "public_id": public_id,
            "v3_key": v3_key}


def _rsa_sign(private_key, message: str) -> str:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    return base64.b64encode(private_key.sign(message.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())).decode()


def _rsa_verify(public_key, message: str, signature: str) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    try:
        public_key.verify(base64.b64decode(signature), message.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


_OTHER_KEY = []


def _other_key():
    """A key that is not WeChat Pay's (bad_sign fault)."""
    if not _OTHER_KEY:
        from cryptography.hazmat.primitives.asymmetric import rsa

        _OTHER_KEY.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return _OTHER_KEY[0]


def signed_headers(keys, body: str, bad: bool = False) -> dict:
    timestamp, nonce = str(int(time.time())), secrets.token_hex(16).upper()
    signer = _other_key() if bad else keys["wechatpay_private"]
    return {"Wechatpay-Timestamp": timestamp, "Wechatpay-Nonce": nonce, "Wechatpay-Serial": keys["public_id"],
            "Wechatpay-Signature": _rsa_sign(signer, f"{timestamp}\n{nonce}\n{body}\n"),
            "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048"}


def _reply(payload, status=200, mode=None):
    keys = v3_keys(current_app.config)
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")) if payload is not None else ""
    response = Response(body, status=status, content_type="application/json; charset=utf-8",
                        headers=signed_headers(keys, body, bad=mode == "bad_sign"))
    if mode == "accept_then_timeout":
        stall()
    return response


def _error(code: str, message: str | None = None, status: int | None = None):
    default_status, default_message = V3_CODES.get(code, (400, "风控拦截，请联系微信支付"))
    return _reply({"code": code, "message": message or default_message}, status or default_status)


def _authenticate():
    """The merchant's signature on this request (an error reply, or None)."""
    cfg = current_app.config
    keys = v3_keys(cfg)
    header = request.headers.get("Authorization", "")
    scheme, _, rest = header.partition(" ")
    fields = dict(re.findall(r'(\w+)="([^"]*)"', rest))
    if scheme != "WECHATPAY2-SHA256-RSA2048" or not {"mchid", "nonce_str", "signature", "timestamp",
                                                      "serial_no"} <= set(fields):
        return _error("SIGN_ERROR", "Authorization头格式错误", 401)
    if fields["mchid"] != cfg["WECHAT_MCH_ID"]:
        return _error("SIGN_ERROR", "商户号与证书不匹配", 401)
    if fields["serial_no"].upper() != keys["serial"].upper():
        return _error("SIGN_ERROR", "商户证书序列号有误", 401)
    try:
        skew = abs(time.time() - int(fields["timestamp"]))
    except ValueError:
        skew = MAX_SKEW + 1
    if skew > MAX_SKEW:
        return _error("SIGN_ERROR", "请求时间戳已过期", 401)
    path = request.full_path if request.query_string else request.path
    message = (f"{request.method}\n{path}\n{fields['timestamp']}\n{fields['nonce_str']}\n"
               f"{request.get_data(as_text=True)}\n")
    if not _rsa_verify(keys["merchant_public"], message, fields["signature"]):
        return _error("SIGN_ERROR", "签名错误", 401)
    return None


def _early_fault(api):
    """A fault that fails before any processing (reply), the mode to apply after it, or nothing."""
    mode = take_fault(_state(), api)
    if mode in (None, "accept_then_timeout", "bad_sign", "missing_field"):
        return None, mode
    if mode == "timeout":
        stall()
        return _error("SYSTEM_ERROR"), mode
    if mode == "http_500":
        return Response("<html><body><h1>500 Internal Server Error</h1></body></html>", status=500,
                        content_type="text/html"), mode
    if mode == "not_xml":
        return Response("<html><body><h1>502 Bad Gateway</h1><hr>stgw</body></html>", status=502,
                        content_type="text/html"), mode
    if mode == "unknown_code":
        return _error(UNKNOWN_PAY_CODE, "风控拦截，请联系微信支付", 403), mode
    code = {"SYSTEMERROR": "SYSTEM_ERROR", "NOTENOUGH": "NOT_ENOUGH", "FREQ_LIMIT": "FREQUENCY_LIMIT_EXCEED"}.get(mode,
                                                                                                               mode)
    return _error(code), mode


def _over_rate():
    """WeChat: bill creation at most 100 calls/s per merchant (FREQUENCY_LIMIT_EXCEED beyond)."""
    rate = current_app.extensions.setdefault("sandbox_transfer_rate", CallRate())
    limit = _state().get_setting("transfer_rate_limit", current_app.config.get("SANDBOX_TRANSFER_RATE_LIMIT", 100))
    return None if rate.admit(int(limit)) else _error("FREQUENCY_LIMIT_EXCEED")


def _rfc3339(ts: float | None) -> str | None:
    return local_dt(ts).isoformat(timespec="seconds") if ts else None


def _bill_view(row, mode=None) -> dict:
    view = {"mch_id": current_app.config["WECHAT_MCH_ID"], "out_bill_no": row["out_bill_no"],
            "transfer_bill_no": row["transfer_bill_no"], "appid": row["appid"], "state": row["state"],
            "transfer_amount": row["amount_fen"], "transfer_remark": row["remark"], "openid": row["openid"],
            "create_time": _rfc3339(row["create_time"]), "update_time": _rfc3339(row["update_time"])}
    if row["fail_reason"]:
        view["fail_reason"] = row["fail_reason"]
    if mode == "missing_field":
        view = {k: v for k, v in view.items() if k not in ("state", "transfer_bill_no")}
    return view


# state -----------------------------------------------------------------------------------------
def sweep_overdue(state, conn) -> list[str]:
    """Bills left unconfirmed for 24 h (sandbox time) close: FAIL, OVERDUE_CLOSE. Their numbers."""
    now = state.now(conn)
    due = conn.execute("SELECT out_bill_no, create_time FROM transfers WHERE state = 'WAIT_USER_CONFIRM' "
                       "AND create_time + ? <= ?", (CONFIRM_WINDOW, now)).fetchall()
    for row in due:
        conn.execute("UPDATE transfers SET state = 'FAIL', fail_reason = 'OVERDUE_CLOSE', update_time = ? "
                     "WHERE out_bill_no = ?", (row["create_time"] + CONFIRM_WINDOW, row["out_bill_no"]))
    return [row["out_bill_no"] for row in due]


def _sweep_and_notify(state):
    with state.tx() as conn:
        closed = sweep_overdue(state, conn)
    for out_bill_no in closed:
        schedule_notification(current_app._get_current_object(), out_bill_no)


def _params_hash(data) -> str:
    return hashlib.sha256(json.dumps({k: data.get(k) for k in IDENTITY}, sort_keys=True,
                                     ensure_ascii=False).encode()).hexdigest()


def _validate(data):
    cfg = current_app.config
    if not isinstance(data, dict):
        return _error("PARAM_ERROR", "请求体不是合法的JSON")
    if data.get("appid") != cfg["WECHAT_APPID"]:
        return _error("PARAM_ERROR", "appid与商户号不匹配")
    if not BILL_ID.match(str(data.get("out_bill_no") or "")):
        return _error("PARAM_ERROR", "out_bill_no格式错误：5-32位数字和字母")
    if not data.get("transfer_scene_id"):
        return _error("PARAM_ERROR", "transfer_scene_id必填")
    if not data.get("openid"):
        return _error("PARAM_ERROR", "openid必填")
    amount = data.get("transfer_amount")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount < MIN_FEN:
        return _error("PARAM_ERROR", "转账金额不能低于0.1元")
    if amount >= NAME_REQUIRED_FEN and not data.get("user_name"):
        return _error("PARAM_ERROR", "转账金额>=2000元时，user_name必填")
    remark = data.get("transfer_remark")
    if not remark or len(remark) > 32:
        return _error("PARAM_ERROR", "transfer_remark必填，最多32个字符")
    infos = data.get("transfer_scene_report_infos")
    if not isinstance(infos, list) or not infos or not all(
            isinstance(i, dict) and i.get("info_type") and i.get("info_content") for i in infos):
        return _error("PARAM_ERROR", "transfer_scene_report_infos必填：转账场景报备信息")
    return None


@bp.post("/v3/fund-app/mch-transfer/transfer-bills")
def create_bill():
    limited = _over_rate()
    if limited is not None:
        return limited
    early, mode = _early_fault("transfer_bills")
    if early is not None:
        return early
    bad = _authenticate()
    if bad is not None:
        return bad
    data = request.get_json(silent=True)
    bad = _validate(data)
    if bad is not None:
        return bad
    state = _state()
    digest = _params_hash(data)
    with state.tx() as conn:
        closed = sweep_overdue(state, conn)
        row = conn.execute("SELECT * FROM transfers WHERE out_bill_no = ?", (data["out_bill_no"],)).fetchone()
        if row is not None and row["params_hash"] != digest:
            reply = _error("INVALID_REQUEST", "商户单号已存在，但参数与原单不一致")
        elif row is None and state.balance(conn) < data["transfer_amount"]:
            reply = _error("NOT_ENOUGH")
        else:
            reply = None
            if row is None:
                now = state.now(conn)
                seq = conn.execute("SELECT COUNT(*) FROM transfers").fetchone()[0] + 1
                transfer_bill_no = f"1330000{wx_day(now)}{seq:012d}{secrets.randbelow(10 ** 6):06d}"
                package = "ABBQO+oYAAABAAAAAAAy" + base64.b64encode(secrets.token_bytes(24)).decode()
                conn.execute("INSERT INTO transfers (out_bill_no, transfer_bill_no, params_hash, appid, openid, "
                             "amount_fen, remark, scene_id, notify_url, state, package_info, create_time, "
                             "update_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'WAIT_USER_CONFIRM', ?, ?, ?)",
                             (data["out_bill_no"], transfer_bill_no, digest, data["appid"], data["openid"],
                              data["transfer_amount"], data["transfer_remark"], data["transfer_scene_id"],
                              data.get("notify_url") or "", package, now, now))
                row = conn.execute("SELECT * FROM transfers WHERE out_bill_no = ?", (data["out_bill_no"],)).fetchone()
    for out_bill_no in closed:
        schedule_notification(current_app._get_current_object(), out_bill_no)
    if reply is not None:
        return reply
    payload = {"out_bill_no": row["out_bill_no"], "transfer_bill_no": row["transfer_bill_no"],
               "create_time": _rfc3339(row["create_time"]), "state": row["state"]}
    if row["state"] == "WAIT_USER_CONFIRM":
        payload["package_info"] = row["package_info"]
    if row["fail_reason"]:
        payload["fail_reason"] = row["fail_reason"]
    if mode == "missing_field":
        payload = {k: v for k, v in payload.items() if k not in ("state", "package_info")}
    return _reply(payload, mode=mode)


@bp.get("/v3/fund-app/mch-transfer/transfer-bills/out-bill-no/<out_bill_no>")
def query_bill(out_bill_no):
    early, mode = _early_fault("transfer_query")
    if early is not None:
        return early
    bad = _authenticate()
    if bad is not None:
        return bad
    state = _state()
    _sweep_and_notify(state)
    rows = state.query("SELECT * FROM transfers WHERE out_bill_no = ?", (out_bill_no,))
    if not rows:
        return _error("NOT_FOUND", "记录不存在")
    return _reply(_bill_view(rows[0], mode), mode=mode)


@bp.post("/v3/fund-app/mch-transfer/transfer-bills/out-bill-no/<out_bill_no>/cancel")
def cancel_bill(out_bill_no):
    early, mode = _early_fault("transfer_cancel")
    if early is not None:
        return early
    bad = _authenticate()
    if bad is not None:
        return bad
    state = _state()
    _sweep_and_notify(state)
    with state.tx() as conn:
        row = conn.execute("SELECT * FROM transfers WHERE out_bill_no = ?", (out_bill_no,)).fetchone()
        if row is None:
            return _error("NOT_FOUND", "记录不存在")
        if row["state"] in ("CANCELING", "CANCELLED"):
            pass  # cancelling again answers as the first time
        elif row["state"] not in ("ACCEPTED", "PROCESSING", "WAIT_USER_CONFIRM"):
            return _error("INVALID_REQUEST", f"当前单据状态为{row['state']}，不支持撤销")
        else:
            # CANCELING is answered now; the bill is CANCELLED (its final state) right after.
            conn.execute("UPDATE transfers SET state = 'CANCELLED', update_time = ? WHERE out_bill_no = ?",
                         (state.now(conn), out_bill_no))
            schedule_notification(current_app._get_current_object(), out_bill_no)
        updated = conn.execute("SELECT update_time, transfer_bill_no FROM transfers WHERE out_bill_no = ?",
                               (out_bill_no,)).fetchone()
    return _reply({"out_bill_no": out_bill_no, "transfer_bill_no": updated["transfer_bill_no"],
                   "state": "CANCELING", "update_time": _rfc3339(updated["update_time"])}, mode=mode)


# the resident ----------------------------------------------------------------------------------
def settle_bill(app, out_bill_no: str, outcome: str):
    """The resident confirms (SUCCESS: paid, the fund flow records it) or lets the bill lapse now
    (FAIL, OVERDUE_CLOSE). Returns the bill's state, or None for an unknown number."""
    from app.wechat_sandbox.pay import _add_flow

    state = app.extensions["sandbox_state"]
    with state.tx() as conn:
        sweep_overdue(state, conn)
        row = conn.execute("SELECT * FROM transfers WHERE out_bill_no = ?", (out_bill_no,)).fetchone()
        if row is None:
            return None
        if row["state"] != "WAIT_USER_CONFIRM":
            return row["state"]
        now = state.now(conn)
        if outcome == "confirm":
            if state.balance(conn) < row["amount_fen"]:
                conn.execute("UPDATE transfers SET state = 'FAIL', fail_reason = 'MERCHANT_REJECT', update_time = ? "
                             "WHERE out_bill_no = ?", (now, out_bill_no))
            else:
                conn.execute("UPDATE transfers SET state = 'SUCCESS', update_time = ? WHERE out_bill_no = ?",
                             (now, out_bill_no))
                _add_flow(state, conn, now, "transfer", out_bill_no, row["transfer_bill_no"], row["amount_fen"])
        else:
            conn.execute("UPDATE transfers SET state = 'FAIL', fail_reason = 'OVERDUE_CLOSE', update_time = ? "
                         "WHERE out_bill_no = ?", (now, out_bill_no))
        final = conn.execute("SELECT state FROM transfers WHERE out_bill_no = ?", (out_bill_no,)).fetchone()["state"]
    schedule_notification(app, out_bill_no)
    return final


# notifications ---------------------------------------------------------------------------------
def encrypt_resource(v3_key: str, plain: str, associated_data: str = "mch_payment") -> dict:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = secrets.token_hex(6)  # 12 characters, used as bytes as WeChat does
    ciphertext = AESGCM(v3_key.encode()).encrypt(nonce.encode(), plain.encode("utf-8"), associated_data.encode())
    return {"original_type": "mch_payment", "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": base64.b64encode(ciphertext).decode(), "associated_data": associated_data, "nonce": nonce}


def build_notification(app, row) -> tuple[dict, str]:
    """(headers, body) of the result notification for one bill, signed now."""
    keys = v3_keys(app.config)
    resource = {"out_bill_no": row["out_bill_no"], "transfer_bill_no": row["transfer_bill_no"],
                "state": row["state"], "mch_id": app.config["WECHAT_MCH_ID"], "transfer_amount": row["amount_fen"],
                "openid": row["openid"], "create_time": _rfc3339(row["create_time"]),
                "update_time": _rfc3339(row["update_time"])}
    if row["fail_reason"]:
        resource["fail_reason"] = row["fail_reason"]
    body = json.dumps({"id": secrets.token_hex(18), "create_time": _rfc3339(time.time()),
                       "resource_type": "encrypt-resource", "event_type": "MCHTRANSFER.BILL.FINISHED",
                       "summary": "商家转账单据终态通知",
                       "resource": encrypt_resource(keys["v3_key"], json.dumps(resource, ensure_ascii=False))},
                      ensure_ascii=False)
    headers = signed_headers(keys, body)
    headers["Content-Type"] = "application/json"
    return headers, body


def deliver_notification(app, out_bill_no: str) -> str:
    """Post the bill's result until the app answers 2xx, waiting SANDBOX_NOTIFY_DELAYS between
    attempts (WeChat: 15 s, 15 s, 30 s, 3 min … over 24 h); records and returns the outcome."""
    state = app.extensions["sandbox_state"]
    delays = [float(d) for d in str(app.config.get("SANDBOX_NOTIFY_DELAYS", "0.1,0.5,1,2,5")).split(",") if d]
    outcome = "no_url"
    for attempt, delay in enumerate(delays, start=1):
        time.sleep(delay)
        rows = state.query("SELECT * FROM transfers WHERE out_bill_no = ?", (out_bill_no,))
        if not rows or not rows[0]["notify_url"]:
            break
        headers, body = build_notification(app, rows[0])
        try:
            reply = requests.post(rows[0]["notify_url"], data=body.encode("utf-8"), headers=headers, timeout=5)
            outcome = "delivered" if 200 <= reply.status_code < 300 else f"failed: HTTP {reply.status_code}"
        except requests.RequestException as exc:
            outcome = f"failed: {type(exc).__name__}"
        with state.tx() as conn:
            conn.execute("UPDATE transfers SET notify_status = ?, notify_attempts = ? WHERE out_bill_no = ?",
                         (outcome, attempt, out_bill_no))
        if outcome == "delivered":
            break
    return outcome


def schedule_notification(app, out_bill_no: str) -> None:
    threading.Thread(target=deliver_notification, args=(app, out_bill_no), name=f"notify-{out_bill_no}",
                     daemon=True).start()


# fund-flow bill --------------------------------------------------------------------------------
@bp.get("/v3/bill/fundflowbill")
def fundflow_bill():
    early, mode = _early_fault("fundflowbill")
    if early is not None:
        return early
    bad = _authenticate()
    if bad is not None:
        return bad
    try:
        day = datetime.strptime(request.args.get("bill_date", ""), "%Y-%m-%d").date()
    except ValueError:
        return _error("PARAM_ERROR", "bill_date格式错误，应为yyyy-MM-DD")
    if request.args.get("account_type", "BASIC") != "BASIC":
        return _error("PARAM_ERROR", "account_type仅支持BASIC")
    state = _state()
    _sweep_and_notify(state)
    today = datetime.fromtimestamp(state.now(), SHANGHAI).date()
    if day >= today:
        return _error("INVALID_REQUEST", "账单未生成，请次日9点后再下载", 400)
    body = build_fundflow(state, day.strftime("%Y%m%d"))
    if body is None:
        return _error("NO_STATEMENT_EXIST", "账单文件不存在", 400)
    token = secrets.token_urlsafe(16)
    downloads = current_app.extensions.setdefault("sandbox_bill_downloads", {})
    downloads[token] = body if mode != "missing_field" else body[:body.index("资金流水总笔数")]
    return _reply({"hash_type": "SHA1", "hash_value": hashlib.sha1(body.encode("utf-8")).hexdigest(),
                   "download_url": f"{request.host_url.rstrip('/')}/v3/billdownload/file?token={token}"}, mode=mode)


@bp.get("/v3/billdownload/file")
def download_bill():
    bad = _authenticate()
    if bad is not None:
        return bad
    body = current_app.extensions.get("sandbox_bill_downloads", {}).get(request.args.get("token", ""))
    if body is None:
        return _error("INVALID_REQUEST", "下载链接已失效")
    return Response(body.encode("utf-8"), content_type="text/plain;charset=utf-8")
