"""WeChat Pay v2: red packets (send, query, the mini-program's paySign) and the fund-flow bill
download (a mixin of WeChatGateway). Every pay reply is classified; nothing untyped escapes a pay call.

`sendminiprogramhb` is not in wechatpy (raw `pay.post`); base URLs are class attributes (set per
instance from WECHAT_PAY_API_BASE).
"""
from __future__ import annotations

import hashlib
import logging
import os
import secrets
import time
from datetime import date
from urllib.parse import quote

import requests
from wechatpy.exceptions import WeChatPayException
from wechatpy.pay import WeChatPay
from wechatpy.pay.utils import calculate_signature, calculate_signature_hmac, dict_to_xml

from app.wechat.bills import BILL_HEADER_FIRST, FundFlowBill
from app.wechat.common import _int_or_none, _parse_xml, _wx_time
from app.wechat.results import HB_STATUSES, PayOutcome, PayResult

log = logging.getLogger(__name__)

# Codes of the red-packet APIs and what a payout must do next (WeChat Pay v2 docs; unknown codes
# are UNKNOWN on purpose: WeChat tells merchants never to change billno on a code it has not listed).
# The daily limits (the merchant's total, the user's amount and count) refuse without keeping anything:
# the same billno goes through once the day has turned, so they are RETRY_SAME, never final. What a
# payout does with each code is rewards/decisions.py's table.
RETRY_SAME_CODES = {"SYSTEMERROR", "PROCESSING", "FREQ_LIMIT", "NOTENOUGH", "NOT_FOUND", "SENDAMOUNT_LIMIT",
                    "RCVDAMOUNT_LIMIT", "SENDNUM_LIMIT"}
FAILED_FINAL_CODES = {"SEND_FAILED", "OPENID_ERROR", "MONEY_LIMIT", "PARAM_ERROR", "USER_ERROR"}
CONFIG_ERROR_CODES = {"SIGN_ERROR", "CA_ERROR", "ILLEGAL_APPID", "MSGAPPID_ERROR", "ACCEPTMODE_ERROR",
                      "API_METHOD_CLOSED", "XML_ERROR", "MCHID_ERROR", "INVALID_BILLNO", "NO_AUTH"}
# FATAL_ERROR (same billno, other parameters) stays UNKNOWN: the original may have been paid.


def make_mch_billno(mch_id: str, day: date, serial: int) -> str:
    """28 characters: mch_id + yyyymmdd + 10 digits (WeChat's required shape)."""
    billno = f"{mch_id}{day.strftime('%Y%m%d')}{serial % 10 ** 10:010d}"
    if len(billno) != 28:
        raise ValueError("mch_id must be 10 digits for a 28-character mch_billno")
    return billno


class RedPacketPay:
    def _pay(self) -> WeChatPay:
        clients = self._clients()
        if "pay" not in clients:
            cfg = self._cfg()
            pay = WeChatPay(cfg["WECHAT_APPID"], cfg["WECHAT_PAY_KEY"], cfg["WECHAT_MCH_ID"],
                            mch_cert=cfg.get("WECHAT_PAY_CERT"), mch_key=cfg.get("WECHAT_PAY_KEY_FILE"),
                            timeout=cfg["WECHAT_PAY_TIMEOUT"])
            pay.API_BASE_URL = self._base(cfg["WECHAT_PAY_API_BASE"])
            clients["pay"] = pay
        return clients["pay"]

    # red packets ----------------------------------------------------------------------------------
    def send_miniprogram_hb(self, mch_billno: str, openid: str, amount_fen: int, act_name: str, remark: str,
                            wishing: str, send_name: str | None = None, notify_way: str = "MINI_PROGRAM_JSAPI",
                            scene_id: str | None = None) -> PayResult:
        """Mini-program red packet; on SUCCESS `package` is what wx.sendBizRedPacket opens."""
        cfg = self._cfg()
        data = {"mch_billno": mch_billno, "wxappid": cfg["WECHAT_APPID"],
                "send_name": send_name or cfg["WECHAT_SEND_NAME"], "re_openid": openid,
                "total_amount": int(amount_fen), "total_num": 1, "wishing": wishing, "act_name": act_name,
                "remark": remark, "notify_way": notify_way, "scene_id": scene_id}
        return self._send_packet("mmpaymkttransfers/sendminiprogramhb", data, need_package=True)

    def send_redpack(self, mch_billno: str, openid: str, amount_fen: int, act_name: str, remark: str,
                     wishing: str, send_name: str | None = None, client_ip: str = "127.0.0.1",
                     scene_id: str | None = None) -> PayResult:
        """Classic cash red packet, delivered by the Official Account (WECHAT_OA_APPID, its openid)."""
        cfg = self._cfg()
        data = {"mch_billno": mch_billno, "wxappid": cfg.get("WECHAT_OA_APPID") or cfg["WECHAT_APPID"],
                "send_name": send_name or cfg["WECHAT_SEND_NAME"], "re_openid": openid,
                "total_amount": int(amount_fen), "total_num": 1, "wishing": wishing, "act_name": act_name,
                "remark": remark, "client_ip": client_ip, "scene_id": scene_id}
        return self._send_packet("mmpaymkttransfers/sendredpack", data, need_package=False)

    def _send_packet(self, endpoint, data, need_package) -> PayResult:
        billno = data["mch_billno"]
        if not _valid_billno(billno, self._cfg()["WECHAT_MCH_ID"]):
            return PayResult(PayOutcome.CONFIG_ERROR, "INVALID_BILLNO", "mch_billno must be mch_id+yyyymmdd+10 digits",
                             mch_billno=billno)
        result = self._pay_call(endpoint, data)
        result.mch_billno = billno
        if result.outcome is PayOutcome.SUCCESS:
            raw = result.raw
            if raw.get("mch_billno") not in (None, billno) or str(raw.get("total_amount", data["total_amount"])) != str(data["total_amount"]):
                return _unknown("MISMATCH", "reply does not match the request", raw, billno)
            if need_package and not raw.get("package"):
                return _unknown("MISSING_FIELD", "SUCCESS without package", raw, billno)
            if not raw.get("send_listid"):  # WeChat's own id of the packet: every real SUCCESS has one
                return _unknown("MISSING_FIELD", "SUCCESS without send_listid", raw, billno)
            result.package = raw.get("package")
            result.detail_id = raw.get("send_listid")
            result.amount_fen = data["total_amount"]
        log.info("wechat pay %s billno=%s outcome=%s code=%s", endpoint.rsplit("/", 1)[-1], billno,
                 result.outcome.name, result.code)
        return result

    def get_hb_info(self, mch_billno: str) -> PayResult:
        """gethbinfo (30-day window). outcome SUCCESS means the query answered; see `status`."""
        cfg = self._cfg()
        result = self._pay_call("mmpaymkttransfers/gethbinfo",
                                {"mch_billno": mch_billno, "bill_type": "MCHT", "appid": cfg["WECHAT_APPID"]})
        return read_hb_info(result, mch_billno)

    def biz_redpacket_params(self, package: str) -> dict:
        """What the mini-program passes to wx.sendBizRedPacket. WeChat's 领取红包接口 (pay.weixin.qq.com
        /doc/v2/merchant/4011937428): "package需要进行urlencode再传给页面" — its example is the encoded
        string — and paySign (MD5 with the merchant key) signs the parameters as passed, so the
        package is URL-encoded once here and signed in that form."""
        cfg = self._cfg()
        params = {"timeStamp": str(int(time.time())), "nonceStr": secrets.token_hex(16),
                  "package": quote(package, safe=""), "signType": "MD5"}
        to_sign = (f"appId={cfg['WECHAT_APPID']}&nonceStr={params['nonceStr']}&package={params['package']}"
                   f"&timeStamp={params['timeStamp']}&key={cfg['WECHAT_PAY_KEY']}")
        params["paySign"] = hashlib.md5(to_sign.encode()).hexdigest().upper()
        return params

    def _pay_call(self, endpoint: str, data: dict) -> PayResult:
        """One signed pay call through wechatpy; every reply or failure becomes a PayResult."""
        missing = self._missing_cert()
        if missing:
            return PayResult(PayOutcome.CONFIG_ERROR, "CERT_MISSING", f"{missing} is configured but not readable")
        slot = self._acquire_pay_slot()
        if slot is None:
            return PayResult(PayOutcome.RETRY_SAME, "LOCAL_RATE_LIMIT", "pay call budget exhausted; not sent")
        try:
            return self._post_pay(endpoint, data)
        finally:
            self._release_pay_slot(slot)

    def _post_pay(self, endpoint: str, data: dict) -> PayResult:
        pay = self._pay()
        try:
            reply = pay.post(endpoint, data=_wire_values(data), timeout=self._cfg()["WECHAT_PAY_TIMEOUT"])
        except WeChatPayException as exc:
            if exc.return_code is None:  # HTTP status error: the request may have been processed
                status = getattr(exc.response, "status_code", None)
                return _unknown(f"HTTP_{status}", "HTTP error from WeChat Pay", {})
            raw = _parse_xml(getattr(exc.response, "content", b"")) or {
                "return_code": exc.return_code, "return_msg": exc.return_msg, "result_code": exc.result_code,
                "err_code": exc.errcode, "err_code_des": exc.errmsg}
            return self._classified(raw)
        except requests.Timeout:
            return _unknown("TIMEOUT", "no reply within the timeout", {})
        except requests.ConnectionError:
            return _unknown("CONNECTION_ERROR", "connection failed or was cut", {})
        except requests.RequestException as exc:
            return _unknown("REQUEST_ERROR", type(exc).__name__, {})
        except Exception as exc:  # malformed replies make wechatpy raise KeyError & co.
            log.warning("wechat pay reply unparseable: %s", type(exc).__name__)
            return _unknown("UNPARSEABLE", type(exc).__name__, {})
        if not isinstance(reply, dict):  # wechatpy returns the body text when it is not XML
            return _unknown("NOT_XML", "reply is not XML", {"body": str(reply)[:200]})
        return self._classified(reply)

    def _missing_cert(self) -> str | None:
        """The merchant certificate setting whose file cannot be read (nothing is sent then: requests
        would raise a bare OSError, and WeChat refuses red packets without the client certificate)."""
        cfg = self._cfg()
        for name in ("WECHAT_PAY_CERT", "WECHAT_PAY_KEY_FILE"):
            path = cfg.get(name)
            if path and not os.access(path, os.R_OK):
                return name
        if bool(cfg.get("WECHAT_PAY_CERT")) != bool(cfg.get("WECHAT_PAY_KEY_FILE")):
            return "WECHAT_PAY_KEY_FILE" if cfg.get("WECHAT_PAY_CERT") else "WECHAT_PAY_CERT"
        return None

    def _classified(self, raw: dict) -> PayResult:
        raw = dict(raw)
        if raw.get("sign") and not _pay_sign_ok(raw, self._cfg()["WECHAT_PAY_KEY"]):
            log.error("wechat pay reply with a bad signature")
            return _unknown("INVALID_SIGNATURE", "reply signature does not verify", raw)
        return_code, result_code = raw.get("return_code"), raw.get("result_code")
        err_code = raw.get("err_code")
        message = raw.get("err_code_des") or raw.get("return_msg") or ""
        if return_code == "SUCCESS" and result_code == "SUCCESS":
            return PayResult(PayOutcome.SUCCESS, "SUCCESS", message, raw=raw)
        if return_code not in ("SUCCESS", "FAIL"):
            return _unknown("MISSING_FIELD", "reply without return_code", raw)
        code = err_code if err_code and err_code != "SUCCESS" else None
        if code is None and return_code == "FAIL" and "签名" in (raw.get("return_msg") or ""):
            code = "SIGN_ERROR"
        if code in RETRY_SAME_CODES:
            return PayResult(PayOutcome.RETRY_SAME, code, message, raw=raw)
        if code in FAILED_FINAL_CODES:
            return PayResult(PayOutcome.FAILED_FINAL, code, message, raw=raw, reason=message)
        if code in CONFIG_ERROR_CODES:
            # a warning per call; the incident (a merchant-wide pause in rewards) is logged as an error once
            log.warning("wechat pay configuration error: %s %s", code, message)
            return PayResult(PayOutcome.CONFIG_ERROR, code, message, raw=raw)
        return _unknown(code or "UNKNOWN_CODE", message, raw)

    # fund flow -------------------------------------------------------------------------------
    def download_fundflow(self, bill_date: date | str, account_type: str = "Basic") -> "FundFlowBill":
        """pay/downloadfundflow (HMAC-SHA256, streamed). Iterate the result for rows; `.summary`
        is set once the rows are read and checked against WeChat's own totals."""
        cfg = self._cfg()
        day = bill_date.strftime("%Y%m%d") if isinstance(bill_date, date) else str(bill_date).replace("-", "")
        missing = self._missing_cert()
        if missing:
            return FundFlowBill(PayOutcome.CONFIG_ERROR, "FAILED", "CERT_MISSING", f"{missing} is not readable")
        slot = self._acquire_pay_slot()
        if slot is None:
            return FundFlowBill(PayOutcome.RETRY_SAME, "NOT_SENT", "LOCAL_RATE_LIMIT")
        try:
            return self._post_fundflow(day, account_type)
        finally:
            self._release_pay_slot(slot)

    def _post_fundflow(self, day: str, account_type: str) -> "FundFlowBill":
        cfg = self._cfg()
        pay = self._pay()
        data = {"appid": cfg["WECHAT_APPID"], "mch_id": cfg["WECHAT_MCH_ID"], "nonce_str": secrets.token_hex(16),
                "bill_date": day, "account_type": account_type, "sign_type": "HMAC-SHA256"}
        body = dict_to_xml(data, calculate_signature_hmac(data, cfg["WECHAT_PAY_KEY"])).encode("utf-8")
        kwargs = {"timeout": cfg["WECHAT_PAY_TIMEOUT"], "stream": True,
                  "headers": {"Content-Type": "text/xml"}}
        if pay.mch_cert and pay.mch_key:
            kwargs["cert"] = (pay.mch_cert, pay.mch_key)
        try:
            res = pay._http.post(f"{pay.API_BASE_URL}pay/downloadfundflow", data=body, **kwargs)
        except requests.Timeout:
            return FundFlowBill(PayOutcome.UNKNOWN, "FAILED", "TIMEOUT")
        except requests.RequestException as exc:
            return FundFlowBill(PayOutcome.UNKNOWN, "FAILED", type(exc).__name__)
        return _open_bill(res)


def _open_bill(res) -> FundFlowBill:
    if res.status_code != 200:
        res.close()
        return FundFlowBill(PayOutcome.UNKNOWN, "FAILED", f"HTTP_{res.status_code}")
    lines = (raw.decode("utf-8").lstrip("\ufeff") for raw in res.iter_lines() if raw is not None)
    try:
        first = next((line for line in lines if line.strip()), "")
    except (requests.RequestException, UnicodeDecodeError) as exc:
        res.close()
        return FundFlowBill(PayOutcome.UNKNOWN, "FAILED", type(exc).__name__)
    if first.lstrip().startswith("<xml"):
        text = first + "".join(lines)
        res.close()
        raw = _parse_xml(text.encode("utf-8")) or {}
        message = raw.get("return_msg") or ""
        lowered = message.lower()
        if "no bill exist" in lowered:
            return FundFlowBill(PayOutcome.SUCCESS, "NO_BILL", "NO_BILL_EXIST", message)
        if "bill creating" in lowered:
            return FundFlowBill(PayOutcome.RETRY_SAME, "NOT_READY", "BILL_CREATING", message)
        if "签名" in message or "sign" in lowered:
            return FundFlowBill(PayOutcome.CONFIG_ERROR, "FAILED", "SIGN_ERROR", message)
        if raw.get("err_code") in CONFIG_ERROR_CODES:
            return FundFlowBill(PayOutcome.CONFIG_ERROR, "FAILED", raw["err_code"], message)
        if raw.get("err_code") in RETRY_SAME_CODES or "systemerror" in lowered:
            return FundFlowBill(PayOutcome.RETRY_SAME, "FAILED", raw.get("err_code") or "SYSTEMERROR", message)
        return FundFlowBill(PayOutcome.UNKNOWN, "FAILED", raw.get("error_code") or raw.get("err_code") or "FAIL",
                            message)
    if not first.startswith(BILL_HEADER_FIRST):
        res.close()
        return FundFlowBill(PayOutcome.UNKNOWN, "FAILED", "NOT_A_BILL")
    return FundFlowBill(PayOutcome.SUCCESS, "READY", "SUCCESS", lines=lines, response=res)


def read_hb_info(result: PayResult, mch_billno: str) -> PayResult:
    """A gethbinfo reply (already classified) read into the PayResult: status, times, amounts. Also
    reads WeChat's official sample shapes (one or several hbinfo under hblist)."""
    result.mch_billno = mch_billno
    if result.outcome is not PayOutcome.SUCCESS:
        return result
    raw = result.raw
    status = raw.get("status")
    if status not in HB_STATUSES or raw.get("mch_billno") not in (None, mch_billno):
        return _unknown("MISSING_FIELD", "gethbinfo reply without a known status", raw, mch_billno)
    try:
        result.status = status
        result.detail_id = raw.get("detail_id")
        result.amount_fen = _int_or_none(raw.get("total_amount"))
        result.send_time = _wx_time(raw.get("send_time"))
        result.refund_time = _wx_time(raw.get("refund_time"))
        result.refund_amount_fen = _int_or_none(raw.get("refund_amount"))
        result.reason = raw.get("reason")
        info = (raw.get("hblist") or {}).get("hbinfo") if isinstance(raw.get("hblist"), dict) else None
        if isinstance(info, list):
            info = info[0] if info else None
        if isinstance(info, dict):
            result.rcv_time = _wx_time(info.get("rcv_time"))
    except (TypeError, ValueError):
        return _unknown("MISSING_FIELD", "gethbinfo reply with malformed fields", raw, mch_billno)
    return result


def _wire_values(data: dict) -> dict:
    """Every value as the text WeChat receives. wechatpy's signature skips falsy values (`if v`), so an
    int 0 or False would be sent yet left out of `sign`, while WeChat signs every non-empty value
    ("0" too) and answers SIGN_ERROR; as text they are signed as WeChat signs them. None stays out."""
    return {k: str(v) if isinstance(v, (int, float)) else v for k, v in data.items() if v is not None}


def _unknown(code: str, message: str, raw: dict, billno: str | None = None) -> PayResult:
    return PayResult(PayOutcome.UNKNOWN, code, message, raw=raw, mch_billno=billno)


def _valid_billno(billno, mch_id) -> bool:
    return isinstance(billno, str) and len(billno) == 28 and billno.isdigit() and billno.startswith(mch_id)


def _pay_sign_ok(raw: dict, key: str) -> bool:
    flat = {k: v for k, v in raw.items() if k != "sign" and not isinstance(v, (dict, list)) and v is not None}
    sign_type = raw.get("sign_type") or "MD5"
    expected = calculate_signature_hmac(flat, key) if sign_type == "HMAC-SHA256" else calculate_signature(flat, key)
    return secrets.compare_digest(str(raw["sign"]), expected)
