"""WeChat Pay APIv3: 商家转账 (merchant transfer) and the APIv3 fund-flow bill (a mixin of WeChatGateway).

Through `wechatpayv3` (2.0.4): it signs each request with the merchant's private key and certificate
serial and verifies each 2xx reply and notification with WeChat Pay's public key (public-key mode).
Its HTTP goes over keep-alive sessions (keepalive.py). Its gateway is an attribute
(`_core._gate_way`, set from WECHAT_PAY_API_BASE); it raises bare
Exceptions for bad signatures and lets requests' errors through: every call ends in a PayResult.
A transfer's PayResult: `status` the bill's state, `detail_id` transfer_bill_no, `package` package_info.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from datetime import date, datetime, timezone

import requests

from app.wechat.bills import BILL_HEADER_FIRST, FundFlowBill
from app.wechat.keepalive import install_keepalive
from app.wechat.results import PayOutcome, PayResult

log = logging.getLogger(__name__)

TRANSFER_STATES = ("ACCEPTED", "PROCESSING", "WAIT_USER_CONFIRM", "TRANSFERING", "SUCCESS", "FAIL", "CANCELING",
                   "CANCELLED")
TRANSFER_FINAL_STATES = ("SUCCESS", "FAIL", "CANCELLED")
# APIv3 error codes of the transfer-bill APIs and what a payout does next (same out_bill_no always:
# WeChat treats it as the idempotency key; unknown codes are UNKNOWN, so the bill is queried).
V3_RETRY_SAME_CODES = {"SYSTEM_ERROR", "NOT_ENOUGH", "FREQUENCY_LIMIT_EXCEED", "FREQUENCY_LIMITED", "NOT_FOUND"}
V3_FAILED_FINAL_CODES = {"PARAM_ERROR", "ACCOUNT_ERROR"}
V3_CONFIG_ERROR_CODES = {"SIGN_ERROR", "NO_AUTH"}
# INVALID_REQUEST (e.g. the number exists with other parameters) stays UNKNOWN: the original may be paid.
NOTIFY_MAX_SKEW = 300  # a notification signed longer ago than this is refused (a replay)


def _v3_time(value: str | None) -> datetime | None:
    """APIv3 writes RFC 3339 times with their offset → aware UTC datetimes."""
    if not value:
        return None
    return datetime.fromisoformat(value).astimezone(timezone.utc)


def _v3_result(outcome: PayOutcome, code: str, message: str = "", raw: dict | None = None,
               out_bill_no: str | None = None) -> PayResult:
    return PayResult(outcome, code, message, raw=raw or {}, mch_billno=out_bill_no)


class TransferPay:
    # plumbing (_cfg, _clients, _base, pay-slot methods: WeChatGateway) ---------------------------
    def _v3_keys(self) -> dict:
        """The merchant key, serial and WeChat Pay public key as configured; outside production,
        when WECHAT_PAY_SERIAL is unset, the development pairs shared with the sandbox."""
        cfg = self._cfg()
        if cfg.get("WECHAT_PAY_SERIAL") or cfg.get("APP_ENV") == "production":
            return {name: cfg.get(name) for name in ("WECHAT_PAY_KEY_FILE", "WECHAT_PAY_SERIAL",
                                                      "WECHAT_PAY_PUBLIC_KEY_FILE", "WECHAT_PAY_PUBLIC_KEY_ID")}
        from app.dev_keys import dev_v3_keys

        return dev_v3_keys(cfg["INSTANCE_PATH"])

    def _v3(self):
        clients = self._clients()
        if "pay_v3" not in clients:
            from wechatpayv3 import WeChatPay as WeChatPayV3, WeChatPayType

            install_keepalive()
            cfg = self._cfg()
            keys = self._v3_keys()
            with open(keys["WECHAT_PAY_KEY_FILE"], encoding="utf-8") as handle:
                private_key = handle.read()
            with open(keys["WECHAT_PAY_PUBLIC_KEY_FILE"], encoding="utf-8") as handle:
                public_key = handle.read()
            client = WeChatPayV3(WeChatPayType.MINIPROG, cfg["WECHAT_MCH_ID"], private_key, keys["WECHAT_PAY_SERIAL"],
                                 cfg["WECHAT_APPID"], cfg["WECHAT_PAY_V3_KEY"],
                                 notify_url=cfg.get("WECHAT_TRANSFER_NOTIFY_URL") or None,
                                 timeout=float(cfg["WECHAT_PAY_TIMEOUT"]), public_key=public_key,
                                 public_key_id=keys["WECHAT_PAY_PUBLIC_KEY_ID"])
            client._core._gate_way = self._base(cfg["WECHAT_PAY_API_BASE"]).rstrip("/")
            clients["pay_v3"] = client
        return clients["pay_v3"]

    def _v3_request(self, call, *args, **kwargs) -> tuple[int | None, object, PayResult | None]:
        """(status, body, None) when WeChat answered with a verified reply; else (None, None, PayResult)."""
        try:
            client = self._v3()
        except Exception as exc:  # unreadable or malformed key files (wechatpayv3 raises bare Exceptions)
            log.error("wechat pay v3 client not configured: %s", type(exc).__name__)
            return None, None, _v3_result(PayOutcome.CONFIG_ERROR, "CERT_MISSING", type(exc).__name__)
        try:
            status, body = call(client, *args, **kwargs)
        except requests.Timeout:
            return None, None, _v3_result(PayOutcome.UNKNOWN, "TIMEOUT", "no reply within the timeout")
        except requests.ConnectionError:
            return None, None, _v3_result(PayOutcome.UNKNOWN, "CONNECTION_ERROR", "connection failed or was cut")
        except requests.RequestException as exc:
            return None, None, _v3_result(PayOutcome.UNKNOWN, "REQUEST_ERROR", type(exc).__name__)
        except Exception as exc:  # wechatpayv3 raises bare Exceptions, e.g. for a reply that does not verify
            if "signature" in str(exc).lower() or "algorithm" in str(exc).lower():
                log.error("wechat pay v3 reply with a bad signature")
                return None, None, _v3_result(PayOutcome.UNKNOWN, "INVALID_SIGNATURE", "reply signature does not verify")
            log.warning("wechat pay v3 call failed: %s", type(exc).__name__)
            return None, None, _v3_result(PayOutcome.UNKNOWN, "UNPARSEABLE", type(exc).__name__)
        return status, body, None

    @staticmethod
    def _v3_json(body) -> dict | None:
        try:
            data = json.loads(body) if isinstance(body, (str, bytes)) else None
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def _v3_classified(self, status: int, body, out_bill_no: str | None) -> PayResult:
        """A reply WeChat Pay sent: 2xx → SUCCESS (the caller checks its fields); errors by code."""
        data = self._v3_json(body)
        if 200 <= status < 300:
            if data is None:
                return _v3_result(PayOutcome.UNKNOWN, "NOT_JSON", "2xx reply is not JSON", out_bill_no=out_bill_no)
            return _v3_result(PayOutcome.SUCCESS, "SUCCESS", raw=data, out_bill_no=out_bill_no)
        if data is None or not data.get("code"):
            return _v3_result(PayOutcome.UNKNOWN, f"HTTP_{status}", "error reply without a code",
                              out_bill_no=out_bill_no)
        code, message = str(data["code"]), str(data.get("message") or "")
        if code in V3_RETRY_SAME_CODES:
            outcome = PayOutcome.RETRY_SAME
        elif code in V3_FAILED_FINAL_CODES:
            outcome = PayOutcome.FAILED_FINAL
        elif code in V3_CONFIG_ERROR_CODES:
            log.error("wechat pay v3 configuration error: %s %s", code, message)
            outcome = PayOutcome.CONFIG_ERROR
        else:
            outcome = PayOutcome.UNKNOWN
        result = _v3_result(outcome, code, message, raw=data, out_bill_no=out_bill_no)
        if outcome is PayOutcome.FAILED_FINAL:
            result.reason = message
        return result

    # merchant transfer -----------------------------------------------------------------------
    def create_transfer(self, out_bill_no: str, openid: str, amount_fen: int, remark: str) -> PayResult:
        """发起转账 (POST /v3/fund-app/mch-transfer/transfer-bills). `out_bill_no` is committed before
        the first call and reused on every retry. On SUCCESS `status` is the bill's state and, while
        it waits for the resident, `package` is what wx.requestMerchantTransfer opens."""
        cfg = self._cfg()
        if not remark or len(remark) > 32:
            return _v3_result(PayOutcome.CONFIG_ERROR, "PARAM_ERROR", "transfer_remark must be 1-32 characters",
                              out_bill_no=out_bill_no)
        slot = self._acquire_pay_slot("transfer", int(cfg.get("WECHAT_TRANSFER_RATE_LIMIT") or 100))
        if slot is None:
            return _v3_result(PayOutcome.RETRY_SAME, "LOCAL_RATE_LIMIT", "transfer call budget exhausted; not sent",
                              out_bill_no=out_bill_no)
        try:
            status, body, failed = self._v3_request(
                lambda client: client.mch_transfer_bills(
                    out_bill_no=out_bill_no, transfer_scene_id=cfg["WECHAT_TRANSFER_SCENE_ID"], openid=openid,
                    transfer_amount=int(amount_fen), transfer_remark=remark, user_recv_perception="现金奖励",
                    transfer_scene_report_infos=list(cfg.get("WECHAT_TRANSFER_REPORT_INFOS") or [])))
        finally:
            self._release_pay_slot(slot, "transfer")
        result = failed or self._v3_classified(status, body, out_bill_no)
        if result.ok:
            result = self._bill_fields(result, out_bill_no, need_package=True)
            if result.ok:
                result.amount_fen = int(amount_fen)
        log.info("wechat pay transfer-bills out_bill_no=%s outcome=%s code=%s state=%s", out_bill_no,
                 result.outcome.name, result.code, result.status)
        return result

    def query_transfer(self, out_bill_no: str) -> PayResult:
        """查询转账单 by out_bill_no. outcome SUCCESS means the query answered; see `status`.
        NOT_FOUND (RETRY_SAME): the bill never reached WeChat; the same number may be sent again."""
        status, body, failed = self._v3_request(lambda client: client.mch_transfer_bills_query(out_bill_no=out_bill_no))
        result = failed or self._v3_classified(status, body, out_bill_no)
        if result.ok:
            result = self._bill_fields(result, out_bill_no, need_package=False)
        return result

    def cancel_transfer(self, out_bill_no: str) -> PayResult:
        """撤销转账: SUCCESS with status CANCELING (the bill ends CANCELLED; query or the
        notification says when). A bill already final answers INVALID_REQUEST (UNKNOWN: query it)."""
        status, body, failed = self._v3_request(lambda client: client.mch_transfer_bills_cancel(out_bill_no))
        result = failed or self._v3_classified(status, body, out_bill_no)
        if result.ok:
            raw = result.raw
            if raw.get("out_bill_no") not in (None, out_bill_no) or raw.get("state") not in ("CANCELING", "CANCELLED"):
                return _v3_result(PayOutcome.UNKNOWN, "MISSING_FIELD", "cancel reply without a known state", raw,
                                  out_bill_no)
            result.status = raw["state"]
        return result

    @staticmethod
    def _bill_fields(result: PayResult, out_bill_no: str, need_package: bool) -> PayResult:
        raw = result.raw
        state = raw.get("state")
        if raw.get("out_bill_no") != out_bill_no or state not in TRANSFER_STATES or not raw.get("transfer_bill_no"):
            return _v3_result(PayOutcome.UNKNOWN, "MISSING_FIELD", "reply without the bill's number or state", raw,
                              out_bill_no)
        if need_package and state == "WAIT_USER_CONFIRM" and not raw.get("package_info"):
            return _v3_result(PayOutcome.UNKNOWN, "MISSING_FIELD", "WAIT_USER_CONFIRM without package_info", raw,
                              out_bill_no)
        try:
            result.status = state
            result.detail_id = raw["transfer_bill_no"]
            result.package = raw.get("package_info")
            result.reason = raw.get("fail_reason")
            result.send_time = _v3_time(raw.get("create_time"))
            if raw.get("transfer_amount") is not None:
                result.amount_fen = int(raw["transfer_amount"])
            updated = _v3_time(raw.get("update_time"))
            if state == "SUCCESS":
                result.rcv_time = updated
            elif state in ("FAIL", "CANCELLED"):
                result.refund_time = updated
        except (TypeError, ValueError):
            return _v3_result(PayOutcome.UNKNOWN, "MISSING_FIELD", "reply with malformed fields", raw, out_bill_no)
        return result

    def transfer_params(self, package: str) -> dict:
        """What the mini-program passes to wx.requestMerchantTransfer."""
        cfg = self._cfg()
        return {"mch_id": cfg["WECHAT_MCH_ID"], "app_id": cfg["WECHAT_APPID"], "package": package}

    def read_transfer_notification(self, headers, body: bytes) -> dict | None:
        """The decrypted resource of a result notification (out_bill_no, state, …), or None when it
        does not verify (signature, APIv3 key) or was signed more than NOTIFY_MAX_SKEW seconds ago."""
        try:
            stamp = int(headers.get("Wechatpay-Timestamp", ""))
        except ValueError:
            return None
        if abs(time.time() - stamp) > NOTIFY_MAX_SKEW:
            log.warning("wechat pay notification with a stale timestamp")
            return None
        try:
            data = self._v3().callback(headers, body)
        except Exception as exc:  # wechatpayv3 raises on unknown algorithms and malformed bodies
            log.warning("wechat pay notification refused: %s", type(exc).__name__)
            return None
        resource = data.get("resource") if isinstance(data, dict) else None
        if not isinstance(resource, dict) or resource.get("state") not in TRANSFER_STATES:
            return None
        if resource.get("mch_id") not in (None, self._cfg()["WECHAT_MCH_ID"]):
            return None
        return resource

    # fund flow -------------------------------------------------------------------------------
    def download_fundflow_v3(self, bill_date: date | str) -> FundFlowBill:
        """GET /v3/bill/fundflowbill (BASIC account) for the download URL and SHA1, then the file; the
        same CSV as APIv2's bill (bills.py parses it), checked against the hash before any row is read."""
        day = bill_date.isoformat() if isinstance(bill_date, date) else str(bill_date)
        if len(day) == 8 and day.isdigit():
            day = f"{day[:4]}-{day[4:6]}-{day[6:]}"
        path = f"/v3/bill/fundflowbill?bill_date={day}&account_type=BASIC"
        status, body, failed = self._v3_request(lambda client: client._core.request(path))
        result = failed or self._v3_classified(status, body, None)
        if not result.ok:
            if result.code == "NO_STATEMENT_EXIST":
                return FundFlowBill(PayOutcome.SUCCESS, "NO_BILL", "NO_BILL_EXIST", result.message)
            if result.code == "INVALID_REQUEST" and "未生成" in result.message:
                return FundFlowBill(PayOutcome.RETRY_SAME, "NOT_READY", "BILL_CREATING", result.message)
            return FundFlowBill(result.outcome, "FAILED", result.code, result.message)
        url, expected = result.raw.get("download_url"), result.raw.get("hash_value")
        if not url or not expected or result.raw.get("hash_type", "SHA1") != "SHA1":
            return FundFlowBill(PayOutcome.UNKNOWN, "FAILED", "MISSING_FIELD", "no download_url or hash")
        gateway = self._v3()._core._gate_way
        file_path = url[len(gateway):] if url.startswith(gateway) else url
        status, content, failed = self._v3_request(lambda client: client._core.request(file_path, skip_verify=True))
        if failed is not None:
            return FundFlowBill(failed.outcome, "FAILED", failed.code, failed.message)
        if status != 200:
            return FundFlowBill(PayOutcome.UNKNOWN, "FAILED", f"HTTP_{status}")
        raw = content if isinstance(content, bytes) else str(content).encode("utf-8")
        if hashlib.sha1(raw).hexdigest().lower() != str(expected).lower():
            return FundFlowBill(PayOutcome.RETRY_SAME, "FAILED", "HASH_MISMATCH", "bill file does not match its hash")
        lines = iter(raw.decode("utf-8").lstrip("\ufeff").splitlines())
        first = next((line for line in lines if line.strip()), "")
        if not first.startswith(BILL_HEADER_FIRST):
            return FundFlowBill(PayOutcome.UNKNOWN, "FAILED", "NOT_A_BILL")
        return FundFlowBill(PayOutcome.SUCCESS, "READY", "SUCCESS", lines=lines)
