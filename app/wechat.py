"""The only module that imports wechatpy: login, content security, subscribe messages, pay.

Facts it builds on (docs/DESIGN.md §WeChat facts): wechatpy 1.8.18 hard-codes the token URL (we fetch
tokens ourselves, cached in Redis behind a lock), base URLs are class attributes (set per instance
from WECHAT_API_BASE / WECHAT_PAY_API_BASE), nothing has a timeout by default (we always pass one),
`sendminiprogramhb` is not in wechatpy (raw `pay.post`), v2 content security goes through
`client.wxa._post`. Every pay reply is classified; nothing untyped escapes a pay call.

Imports of app.extensions happen inside functions: app.extensions imports this module.
"""
from __future__ import annotations

import enum
import hashlib
import json
import logging
import os
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Iterator
from urllib.parse import quote

import requests
import xmltodict
from flask import Blueprint, Response, current_app, request
from wechatpy.client import WeChatClient
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidSignatureException, WeChatClientException, WeChatException, WeChatPayException
from wechatpy.pay import WeChatPay
from wechatpy.pay.utils import calculate_signature, calculate_signature_hmac, dict_to_xml
from wechatpy.session import SessionStorage
from wechatpy.utils import check_signature

from app.display import SHANGHAI
from app.errors import Forbidden, RateLimited, ServiceUnavailable, Unauthorized

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# Domain errors and results
# ---------------------------------------------------------------------------------------------
class WeChatCodeInvalid(Unauthorized):
    status, code, message = 401, "wechat_code_invalid", "微信登录凭证无效或已使用，请重新登录"


class WeChatRateLimited(RateLimited):
    status, code, message = 429, "wechat_rate_limited", "微信接口调用太频繁，请稍后再试"

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("headers", {"Retry-After": "60"})
        super().__init__(*args, **kwargs)


class WeChatUnavailable(ServiceUnavailable):
    status, code, message = 503, "wechat_unavailable", "微信服务暂时不可用，请稍后再试"


class WeChatLoginRefused(Forbidden):
    status, code, message = 403, "wechat_login_refused", "微信判定该账号存在风险，暂时无法登录"


class WeChatBillIncomplete(WeChatUnavailable):
    code, message = "wechat_bill_incomplete", "资金账单下载不完整，请稍后重试"


@dataclass(frozen=True)
class LoginResult:
    openid: str
    unionid: str | None
    session_key: str = field(repr=False)  # never leaves the server; see seal_session_key()


@dataclass(frozen=True)
class TextVerdict:
    suggest: str                 # pass | review | risky
    label: int | None            # WeChat's label: 100 normal, 20001 politics, 20006 illegal, ...
    label_name: str | None = None
    trace_id: str | None = None
    error: str | None = None     # set when WeChat could not judge (e.g. openid_inactive → review)


@dataclass(frozen=True)
class MediaCheckResult:
    trace_id: str
    status: str                  # pending | done | error
    suggest: str | None
    label: int | None
    label_name: str | None
    completed_at: datetime | None


class PayOutcome(enum.Enum):
    SUCCESS = "success"
    RETRY_SAME = "retry_same"        # not paid (or not yet): retry later with the SAME mch_billno
    FAILED_FINAL = "failed_final"    # WeChat says no and nothing was paid: a new billno may be minted
    CONFIG_ERROR = "config_error"    # our setup is wrong (key, cert, appid, permission): alert an operator
    UNKNOWN = "unknown"              # may or may not have paid: query (gethbinfo), never re-mint


HB_STATUSES = ("SENDING", "SENT", "FAILED", "RECEIVED", "RFUND_ING", "REFUND")


@dataclass
class PayResult:
    outcome: PayOutcome
    code: str
    message: str = ""
    package: str | None = None
    raw: dict = field(default_factory=dict, repr=False)
    mch_billno: str | None = None
    detail_id: str | None = None
    status: str | None = None            # gethbinfo: SENDING, SENT, FAILED, RECEIVED, RFUND_ING, REFUND
    amount_fen: int | None = None
    send_time: datetime | None = None
    rcv_time: datetime | None = None
    refund_time: datetime | None = None
    refund_amount_fen: int | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is PayOutcome.SUCCESS


@dataclass(frozen=True)
class FundFlowRow:
    booked_at: datetime
    transaction_id: str       # 微信支付业务单号 (red packet detail_id)
    flow_id: str              # 资金流水单号
    business_name: str
    business_type: str
    direction: str            # income | expense
    amount_fen: int
    balance_fen: int
    applicant: str
    remark: str
    voucher_no: str           # 业务凭证号: the merchant order number (mch_billno)


@dataclass(frozen=True)
class FundFlowSummary:
    total_count: int
    income_count: int
    income_fen: int
    expense_count: int
    expense_fen: int


# Codes of the red-packet APIs and what a payout must do next (WeChat Pay v2 docs; unknown codes
# are UNKNOWN on purpose: WeChat tells merchants never to change billno on a code it has not listed).
RETRY_SAME_CODES = {"SYSTEMERROR", "PROCESSING", "FREQ_LIMIT", "NOTENOUGH", "NOT_FOUND"}
FAILED_FINAL_CODES = {"SEND_FAILED", "OPENID_ERROR", "SENDNUM_LIMIT", "SENDAMOUNT_LIMIT", "RCVDAMOUNT_LIMIT",
                      "MONEY_LIMIT", "PARAM_ERROR", "NO_AUTH", "USER_ERROR"}
CONFIG_ERROR_CODES = {"SIGN_ERROR", "CA_ERROR", "ILLEGAL_APPID", "MSGAPPID_ERROR", "ACCEPTMODE_ERROR",
                      "API_METHOD_CLOSED", "XML_ERROR", "MCHID_ERROR", "INVALID_BILLNO"}
# FATAL_ERROR (same billno, other parameters) stays UNKNOWN: the original may have been paid.

# Subscribe-message errors that will not change on a retry: the message is dropped (False).
# 43101 the resident has no acceptance left; 40003 bad openid; 40037 bad template; 41030 bad page;
# 43104 openid of another app; 47001/47003 malformed data.
SUBSCRIBE_REFUSALS = {40003, 40037, 41030, 43101, 43104, 47001, 47003}

CONTENT_LABELS = {100: "normal", 10001: "ad", 20001: "politics", 20002: "porn", 20003: "abuse",
                  20006: "illegal", 20008: "fraud", 20012: "vulgar", 20013: "copyright", 21000: "other"}
SCENE_PROFILE, SCENE_COMMENT, SCENE_FORUM, SCENE_SOCIAL_LOG = 1, 2, 3, 4
TOKEN_REFRESH_MARGIN = 300  # seconds before expiry at which the next caller refreshes


def mask_openid(openid: str | None) -> str:
    """For logs: never the openid itself."""
    if not openid:
        return "-"
    return "o…" + hashlib.sha256(openid.encode()).hexdigest()[:10]


def make_mch_billno(mch_id: str, day: date, serial: int) -> str:
    """28 characters: mch_id + yyyymmdd + 10 digits (WeChat's required shape)."""
    billno = f"{mch_id}{day.strftime('%Y%m%d')}{serial % 10 ** 10:010d}"
    if len(billno) != 28:
        raise ValueError("mch_id must be 10 digits for a 28-character mch_billno")
    return billno


# ---------------------------------------------------------------------------------------------
# Access token: Redis-cached, shared by every process, refreshed by one at a time
# ---------------------------------------------------------------------------------------------
_RELEASE_LOCK = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class _TokenCache:
    def __init__(self, appid, secret, api_base, timeout, http):
        self.appid, self.secret, self.api_base, self.timeout, self.http = appid, secret, api_base, timeout, http
        self.key = f"wechat:access_token:{appid}"
        self.lock_key = f"wechat:access_token:lock:{appid}"
        self.local = threading.local()

    @staticmethod
    def _redis():
        from app.extensions import redis

        return redis.conn

    def peek(self) -> str | None:
        raw = self._redis().get(self.key)
        return json.loads(raw)["token"] if raw else None

    def _read(self):
        raw = self._redis().get(self.key)
        return json.loads(raw) if raw else None

    def get(self, rejected: str | None = None) -> str:
        """A token valid for a while yet; `rejected` is one WeChat just refused (never handed out again)."""
        deadline = time.monotonic() + self.timeout + 5
        while True:
            entry = self._read()
            usable = entry is not None and entry["token"] != rejected
            if usable and entry["expires_at"] - time.time() > TOKEN_REFRESH_MARGIN:
                return self._hand_out(entry["token"])
            owner = uuid.uuid4().hex
            if self._redis().set(self.lock_key, owner, nx=True, px=int((self.timeout + 5) * 1000)):
                try:
                    entry = self._read()  # another process may have refreshed between our read and the lock
                    if entry and entry["token"] != rejected and entry["expires_at"] - time.time() > TOKEN_REFRESH_MARGIN:
                        return self._hand_out(entry["token"])
                    return self._hand_out(self._fetch())
                finally:
                    self._redis().eval(_RELEASE_LOCK, 1, self.lock_key, owner)
            # Someone else is refreshing: a token that is still valid serves meanwhile.
            if usable and entry["expires_at"] - time.time() > 5:
                return self._hand_out(entry["token"])
            if time.monotonic() > deadline:
                raise WeChatUnavailable(code="wechat_token_unavailable")
            time.sleep(0.05)

    def _hand_out(self, token):
        self.local.last = token
        return token

    def _fetch(self) -> str:
        try:
            reply = self.http.get(f"{self.api_base}cgi-bin/token", timeout=self.timeout,
                                  params={"grant_type": "client_credential", "appid": self.appid,
                                          "secret": self.secret})
            reply.raise_for_status()
            data = reply.json()
        except (requests.RequestException, ValueError) as exc:
            log.warning("wechat token fetch failed: %s", type(exc).__name__)
            raise WeChatUnavailable() from exc
        if not isinstance(data, dict) or not data.get("access_token"):
            log.error("wechat token fetch refused: errcode=%s errmsg=%s", data.get("errcode") if isinstance(data, dict)
                      else None, data.get("errmsg") if isinstance(data, dict) else None)
            raise WeChatUnavailable()
        expires_in = int(data.get("expires_in") or 7200)
        entry = {"token": data["access_token"], "expires_at": time.time() + expires_in}
        self._redis().set(self.key, json.dumps(entry), ex=expires_in)
        log.info("wechat access token refreshed", extra={"expires_in": expires_in})
        return entry["token"]


class _TokenSession(SessionStorage):
    """wechatpy reads the token back from its session after a refresh; ours is the Redis cache."""

    def __init__(self, tokens: _TokenCache):
        self.tokens = tokens

    def get(self, key, default=None):
        return self.tokens.peek() or default

    def set(self, key, value, ttl=None):  # tokens are only written by _TokenCache
        pass

    def delete(self, key):
        pass


class _MiniProgramClient(WeChatClient):
    """WeChatClient with our base URL, our token cache and a timeout on every call."""

    def __init__(self, tokens: _TokenCache, appid, secret, api_base, timeout):
        super().__init__(appid, secret, session=_TokenSession(tokens), timeout=timeout, auto_retry=True)
        self._http = tokens.http
        self.API_BASE_URL = f"{api_base}cgi-bin/"
        self.wxa.API_BASE_URL = api_base
        self.tokens = tokens

    @property
    def access_token(self):
        return self.tokens.get()

    def fetch_access_token(self):
        """wechatpy calls this when WeChat refused the token (40001/42001/40014): replace that one, once."""
        if getattr(self.tokens.local, "retried", False):
            raise WeChatClientException(40001, "access token refused twice", client=self)
        self.tokens.local.retried = True
        return {"access_token": self.tokens.get(rejected=getattr(self.tokens.local, "last", None))}


# ---------------------------------------------------------------------------------------------
# The gateway
# ---------------------------------------------------------------------------------------------
class WeChatGateway:
    def __init__(self):
        self.app = None

    def init_app(self, app):
        self.app = app
        app.extensions["wechat"] = self
        app.extensions["wechat_clients"] = {}
        import app.models.wechat  # noqa: F401  (registers the table; app.extensions is loaded by now)

    # plumbing --------------------------------------------------------------------------------
    @staticmethod
    def _cfg():
        return current_app.config

    def _clients(self):
        return current_app.extensions.setdefault("wechat_clients", {})

    @staticmethod
    def _base(url: str) -> str:
        return url if url.endswith("/") else url + "/"

    def _mp(self) -> _MiniProgramClient:
        clients = self._clients()
        if "mp" not in clients:
            cfg = self._cfg()
            base = self._base(cfg["WECHAT_API_BASE"])
            tokens = _TokenCache(cfg["WECHAT_APPID"], cfg["WECHAT_SECRET"], base, cfg["WECHAT_TIMEOUT"],
                                 requests.Session())
            clients["mp"] = _MiniProgramClient(tokens, cfg["WECHAT_APPID"], cfg["WECHAT_SECRET"], base,
                                               cfg["WECHAT_TIMEOUT"])
        return clients["mp"]

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

    def access_token(self) -> str:
        """The shared access token (refreshing it if due); for callers of APIs this module lacks."""
        return self._mp().tokens.get()

    def _mp_call(self, func, *args, **kwargs) -> dict:
        """Run one wechatpy mini-program call; transport trouble becomes WeChatUnavailable."""
        self._mp().tokens.local.retried = False
        try:
            result = func(*args, **kwargs)
        except WeChatClientException:
            raise
        except requests.RequestException as exc:
            log.warning("wechat call failed: %s", type(exc).__name__)
            raise WeChatUnavailable() from exc
        if not isinstance(result, dict):  # wechatpy hands back the Response when the body is not JSON
            log.warning("wechat reply was not JSON")
            raise WeChatUnavailable()
        return result

    @staticmethod
    def _errcode(exc: WeChatException) -> int | None:
        try:
            return int(exc.errcode) if exc.errcode is not None else None
        except (TypeError, ValueError):
            return None

    # 1. login --------------------------------------------------------------------------------
    def code_to_session(self, code: str) -> LoginResult:
        if not isinstance(code, str) or not code or len(code) > 128:
            raise WeChatCodeInvalid()
        client = self._mp()
        cfg = self._cfg()
        # params as a list: wechatpy then adds no access_token (jscode2session needs none).
        params = [("appid", cfg["WECHAT_APPID"]), ("secret", cfg["WECHAT_SECRET"]), ("js_code", code),
                  ("grant_type", "authorization_code")]
        try:
            data = self._mp_call(client.get, "sns/jscode2session", params=params,
                                 api_base_url=self._base(cfg["WECHAT_API_BASE"]))
        except WeChatClientException as exc:
            errcode = self._errcode(exc)
            if errcode in (40029, 40163):
                raise WeChatCodeInvalid() from exc
            if errcode in (45011, 45009):
                raise WeChatRateLimited() from exc
            if errcode == 40226:
                raise WeChatLoginRefused() from exc
            log.warning("jscode2session failed: errcode=%s", errcode)
            raise WeChatUnavailable() from exc
        if not data.get("openid") or not data.get("session_key"):
            raise WeChatUnavailable()
        return LoginResult(openid=data["openid"], unionid=data.get("unionid"), session_key=data["session_key"])

    @staticmethod
    def seal_session_key(session_key: str) -> str:
        """Encrypt a session_key for storage (Fernet under a key derived from SECRET_KEY)."""
        return _fernet().encrypt(session_key.encode()).decode()

    @staticmethod
    def unseal_session_key(sealed: str) -> str:
        return _fernet().decrypt(sealed.encode()).decode()

    # 3. content security ---------------------------------------------------------------------
    def check_text(self, text: str, openid: str, scene: int = SCENE_FORUM) -> TextVerdict:
        """msg_sec_check v2. Raises WeChatUnavailable / WeChatRateLimited when WeChat cannot answer."""
        if not text or not text.strip():
            return TextVerdict("pass", 100, "normal")
        client = self._mp()
        try:
            data = self._mp_call(client.wxa._post, "wxa/msg_sec_check",
                                 data={"content": text, "version": 2, "scene": scene, "openid": openid})
        except WeChatClientException as exc:
            errcode = self._errcode(exc)
            if errcode == 61010:  # the resident has not opened the mini-program in the last two hours
                return TextVerdict("review", None, None, error="openid_inactive")
            if errcode == 87014:
                return TextVerdict("risky", None, None, error="risky_content")
            if errcode in (45009, 45011):
                raise WeChatRateLimited() from exc
            log.warning("msg_sec_check failed: errcode=%s", errcode)
            raise WeChatUnavailable() from exc
        result = data.get("result") or {}
        suggest = result.get("suggest")
        if suggest not in ("pass", "review", "risky"):
            raise WeChatUnavailable()
        label = _int_or_none(result.get("label"))
        return TextVerdict(suggest, label, CONTENT_LABELS.get(label), data.get("trace_id"))

    def check_media_async(self, media_url: str, openid: str, scene: int = SCENE_FORUM, media_type: int = 2) -> str:
        """media_check_async v2: returns the trace_id; the verdict arrives on /wechat/push.

        Records a pending row (flush only, the caller commits); the push may even arrive first.
        """
        client = self._mp()
        try:
            data = self._mp_call(client.wxa._post, "wxa/media_check_async",
                                 data={"media_url": media_url, "media_type": media_type, "version": 2,
                                       "scene": scene, "openid": openid})
        except WeChatClientException as exc:
            errcode = self._errcode(exc)
            if errcode in (45009, 45011):
                raise WeChatRateLimited() from exc
            log.warning("media_check_async failed: errcode=%s", errcode)
            raise WeChatUnavailable() from exc
        trace_id = data.get("trace_id")
        if not trace_id:
            raise WeChatUnavailable()
        _record_media_check(trace_id, media_url=media_url)
        return trace_id

    # 4. subscribe messages -------------------------------------------------------------------
    def send_subscribe_message(self, openid: str, template_id: str, data: dict, page: str | None = None) -> bool:
        """True when WeChat accepted the message; False when it refused it (no quota 43101, bad
        template, bad data). Raises WeChatUnavailable only for transient trouble, so a job can retry."""
        cfg = self._cfg()
        template_id = (cfg.get("WECHAT_SUBSCRIBE_TEMPLATES") or {}).get(template_id, template_id)
        body = {"touser": openid, "template_id": template_id, "data": _subscribe_data(data),
                "miniprogram_state": cfg.get("WECHAT_MINIPROGRAM_STATE", "formal"), "lang": "zh_CN"}
        if page:
            body["page"] = page
        client = self._mp()
        try:
            self._mp_call(client.wxa._post, "cgi-bin/message/subscribe/send", data=body)
        except WeChatClientException as exc:
            errcode = self._errcode(exc)
            if errcode is None or errcode == -1:
                raise WeChatUnavailable() from exc
            if errcode in (45009, 45011):  # WeChat's call quota: later the same message goes through
                raise WeChatUnavailable(code="wechat_quota_exceeded") from exc
            if errcode not in SUBSCRIBE_REFUSALS:  # undocumented: retry rather than drop the message
                log.warning("subscribe message failed: errcode=%s", errcode)
                raise WeChatUnavailable() from exc
            level = logging.INFO if errcode == 43101 else logging.WARNING
            log.log(level, "subscribe message refused: errcode=%s openid=%s template=%s", errcode,
                    mask_openid(openid), template_id)
            return False
        return True

    # 5. pay ----------------------------------------------------------------------------------
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

    def biz_redpacket_params(self, package: str) -> dict:
        """What the mini-program passes to wx.sendBizRedPacket (paySign: MD5 with the merchant key)."""
        cfg = self._cfg()
        params = {"timeStamp": str(int(time.time())), "nonceStr": secrets.token_hex(16), "package": package,
                  "signType": "MD5"}
        to_sign = (f"appId={cfg['WECHAT_APPID']}&nonceStr={params['nonceStr']}&package={quote(package, safe='')}"
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
            reply = pay.post(endpoint, data=dict(data), timeout=self._cfg()["WECHAT_PAY_TIMEOUT"])
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
            log.error("wechat pay configuration error: %s %s", code, message)
            return PayResult(PayOutcome.CONFIG_ERROR, code, message, raw=raw)
        return _unknown(code or "UNKNOWN_CODE", message, raw)

    # 6. rate limit ---------------------------------------------------------------------------
    def _acquire_pay_slot(self) -> str | None:
        """A slot in the merchant's one-second window (WeChat: 30 calls/s), shared by every process
        through Redis; None when none frees up within WECHAT_PAY_RATE_WAIT.

        WeChat counts a call when it arrives, which is some time after we start it. So a call holds
        its slot while in flight (stamped in the future, up to its timeout) and is re-stamped with
        the time its reply came (_release_pay_slot): an arrival lies between the two, so no second
        of WeChat's can hold more calls than the limit, however late a call leaves the worker."""
        from app.extensions import redis

        cfg = self._cfg()
        limit = int(cfg.get("WECHAT_PAY_RATE_LIMIT") or 30)
        hold_ms = int((float(cfg["WECHAT_PAY_TIMEOUT"]) + 1) * 1000)
        slot = uuid.uuid4().hex
        deadline = time.monotonic() + float(cfg.get("WECHAT_PAY_RATE_WAIT", 5))
        while True:
            wait_ms = int(redis.conn.eval(_SLIDING_WINDOW, 1, self._pay_window_key(), 1000, limit, slot, hold_ms))
            if wait_ms <= 0:
                return slot
            wait = min(wait_ms, 50) / 1000  # in-flight calls end early and free their slot sooner
            if time.monotonic() + wait > deadline:
                return None
            time.sleep(wait)

    def _release_pay_slot(self, slot: str) -> None:
        """The call is over: its slot counts from now for one second."""
        from app.extensions import redis

        try:
            redis.conn.eval(_SLOT_DONE, 1, self._pay_window_key(), slot, 1000)
        except Exception:  # Redis gone: the in-flight stamp still expires after the timeout
            log.warning("pay rate slot not released", exc_info=True)

    def _pay_window_key(self) -> str:
        return f"wechat:pay:calls:{self._cfg()['WECHAT_MCH_ID']}"

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


# ---------------------------------------------------------------------------------------------
# Fund-flow bill parsing (streamed)
# ---------------------------------------------------------------------------------------------
class FundFlowBill:
    """status: READY (rows follow), NO_BILL (nothing moved that day), NOT_READY (ask again later),
    FAILED (see outcome/code). Iterating a READY bill yields FundFlowRow and then sets `summary`."""

    def __init__(self, outcome: PayOutcome, status: str, code: str, message: str = "", lines=None, response=None):
        self.outcome, self.status, self.code, self.message = outcome, status, code, message
        self.summary: FundFlowSummary | None = None
        self._lines, self._response = lines, response

    @property
    def ready(self) -> bool:
        return self.status == "READY"

    def __iter__(self) -> Iterator[FundFlowRow]:
        if not self.ready or self._lines is None:
            return iter(())
        return self._rows()

    def _rows(self):
        lines, self._lines = self._lines, None
        count = income = expense = 0
        try:
            for line in lines:
                cells = _bill_cells(line)
                if not cells or not any(cells):
                    continue
                if cells[0] == "资金流水总笔数":
                    self.summary = _summary(next(lines))
                    break
                row = _flow_row(cells)
                count += 1
                income += row.amount_fen if row.direction == "income" else 0
                expense += row.amount_fen if row.direction == "expense" else 0
                yield row
        except requests.RequestException as exc:
            raise WeChatBillIncomplete(fields={"reason": type(exc).__name__}) from exc
        except (StopIteration, ValueError, IndexError, InvalidOperation) as exc:
            raise WeChatBillIncomplete(fields={"reason": "malformed bill"}) from exc
        finally:
            if self._response is not None:
                self._response.close()
        s = self.summary
        if s is None or (s.total_count, s.income_fen, s.expense_fen) != (count, income, expense):
            self.summary = None
            raise WeChatBillIncomplete(fields={"reason": "summary does not match the rows"})


BILL_HEADER_FIRST = "记账时间"


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


def _bill_cells(line: str) -> list[str]:
    return [cell.strip().lstrip("`").strip() for cell in line.rstrip("\r\n").split(",")]


def yuan_to_fen(value: str) -> int:
    """Exact: '12.34' → 1234; anything finer than a fen is an error, never rounded."""
    fen = Decimal(value.replace(",", "").strip()) * 100
    if fen != fen.to_integral_value():
        raise ValueError(f"amount {value!r} is finer than a fen")
    return int(fen)


def _flow_row(cells: list[str]) -> FundFlowRow:
    if len(cells) < 11:
        raise ValueError("fund-flow row with too few columns")
    direction = {"收入": "income", "支出": "expense"}.get(cells[5])
    if direction is None:
        raise ValueError("unknown 收支类型")
    return FundFlowRow(booked_at=_wx_time(cells[0]), transaction_id=cells[1], flow_id=cells[2],
                       business_name=cells[3], business_type=cells[4], direction=direction,
                       amount_fen=yuan_to_fen(cells[6]), balance_fen=yuan_to_fen(cells[7]), applicant=cells[8],
                       remark=cells[9], voucher_no=cells[10])


def _summary(line: str) -> FundFlowSummary:
    cells = _bill_cells(line)
    count = lambda v: int(Decimal(v))  # noqa: E731  (WeChat sometimes writes counts as "3.0")
    return FundFlowSummary(count(cells[0]), count(cells[1]), yuan_to_fen(cells[2]), count(cells[3]),
                           yuan_to_fen(cells[4]))


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
# Sliding window of call stamps (ms, Redis's clock): ARGV window, limit, slot, hold. A new call is
# stamped `hold` ms ahead (in flight: counted until re-stamped when it ends). Returns 0 when the
# slot was taken, else the ms until the oldest stamp leaves the window.
_SLIDING_WINDOW = """
local key = KEYS[1]
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local hold = tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) < limit then
  redis.call('ZADD', key, now + hold, ARGV[3])
  redis.call('PEXPIRE', key, window * 2 + hold)
  return 0
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now)
"""

# A call ended: re-stamp its slot with now, rounded up to the next ms (ARGV slot, window).
_SLOT_DONE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + 1
redis.call('ZADD', KEYS[1], now, ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < tonumber(ARGV[2]) * 2 then redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2) end
return 0
"""


def _unknown(code: str, message: str, raw: dict, billno: str | None = None) -> PayResult:
    return PayResult(PayOutcome.UNKNOWN, code, message, raw=raw, mch_billno=billno)


def _valid_billno(billno, mch_id) -> bool:
    return isinstance(billno, str) and len(billno) == 28 and billno.isdigit() and billno.startswith(mch_id)


def _pay_sign_ok(raw: dict, key: str) -> bool:
    flat = {k: v for k, v in raw.items() if k != "sign" and not isinstance(v, (dict, list)) and v is not None}
    sign_type = raw.get("sign_type") or "MD5"
    expected = calculate_signature_hmac(flat, key) if sign_type == "HMAC-SHA256" else calculate_signature(flat, key)
    return secrets.compare_digest(str(raw["sign"]), expected)


def _parse_xml(body) -> dict | None:
    try:
        doc = xmltodict.parse(body)
    except Exception:  # expat errors on non-XML: the caller decides what that means
        return None
    data = doc.get("xml") if isinstance(doc, dict) else None
    return dict(data) if isinstance(data, dict) else None


def _int_or_none(value):
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _wx_time(value: str | None) -> datetime | None:
    """WeChat Pay's Beijing wall-clock strings → aware UTC datetimes."""
    if not value:
        return None
    return datetime.strptime(value.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHANGHAI).astimezone(timezone.utc)


def _subscribe_data(data: dict) -> dict:
    return {key: value if isinstance(value, dict) else {"value": str(value)} for key, value in data.items()}


def _fernet():
    """Encrypts under SECRET_KEY; also decrypts what keys retired by a rotation sealed."""
    import base64

    from cryptography.fernet import Fernet, MultiFernet

    keys = [current_app.config["SECRET_KEY"], *current_app.config.get("SECRET_KEY_FALLBACKS", ())]
    return MultiFernet([Fernet(base64.urlsafe_b64encode(hashlib.sha256(("wechat-session-key:" + key).encode())
                                                        .digest())) for key in keys])


# ---------------------------------------------------------------------------------------------
# Media-check results: stored by trace_id, completed by the push
# ---------------------------------------------------------------------------------------------
def _record_media_check(trace_id: str, media_url: str | None = None, payload: dict | None = None) -> None:
    """Insert or complete the row for trace_id (savepoint: the push and the caller may race)."""
    from sqlalchemy.exc import IntegrityError

    from app.extensions import db
    from app.models.base import utcnow
    from app.models.wechat import WeChatMediaCheck

    def apply(row):
        if payload is not None and row.status == "pending":  # a repeated push changes nothing
            result = payload.get("result") or {}
            errcode = _int_or_none(payload.get("errcode")) or 0
            row.status = "done" if errcode == 0 and result.get("suggest") in ("pass", "review", "risky") else "error"
            row.suggest = result.get("suggest")
            row.label = _int_or_none(result.get("label"))
            row.errcode = errcode
            detail = payload.get("detail")
            row.detail = detail if isinstance(detail, list) else [detail] if detail else None
            row.completed_at = utcnow()
        if media_url and not row.media_url:
            row.media_url = media_url

    for _attempt in range(3):
        row = db.session.execute(db.select(WeChatMediaCheck).filter_by(trace_id=trace_id)).scalar_one_or_none()
        if row is not None:
            if payload is not None or media_url:
                apply(row)
            db.session.flush()
            return
        try:
            with db.session.begin_nested():
                row = WeChatMediaCheck(trace_id=trace_id, status="pending")
                apply(row)
                db.session.add(row)
            return
        except IntegrityError:
            continue  # the other side inserted it first: update instead


def get_media_check(trace_id: str) -> MediaCheckResult | None:
    from app.extensions import db
    from app.models.wechat import WeChatMediaCheck

    row = db.session.execute(db.select(WeChatMediaCheck).filter_by(trace_id=trace_id)).scalar_one_or_none()
    if row is None:
        return None
    return MediaCheckResult(row.trace_id, row.status, row.suggest, row.label, CONTENT_LABELS.get(row.label),
                            row.completed_at)


push_bp = Blueprint("wechat_push", __name__)
# WeChat signs only token, timestamp and nonce (in 明文模式 not the body): a signed query string is
# good for one message, within PUSH_MAX_SKEW seconds of its timestamp. Nonces are remembered in Redis
# for as long as their timestamp would pass.
PUSH_MAX_SKEW = 300
_PUSH_NONCE_TTL = 2 * PUSH_MAX_SKEW


@push_bp.route("/wechat/push", methods=["GET", "POST"])
def receive_push():
    """WeChat's message push: signature, freshness and nonce checked, safe-mode messages decrypted,
    media checks recorded."""
    from app.extensions import db

    cfg = current_app.config
    token = cfg.get("WECHAT_PUSH_TOKEN")
    args = request.args
    if not token:
        return Response("push not configured", status=403)
    try:
        check_signature(token, args.get("signature", ""), args.get("timestamp", ""), args.get("nonce", ""))
    except InvalidSignatureException:
        log.warning("wechat push with a bad signature")
        return Response("invalid signature", status=403)
    if not _push_is_fresh(args.get("timestamp", "")):
        log.warning("wechat push with a timestamp more than %s s off", PUSH_MAX_SKEW)
        return Response("stale timestamp", status=403)
    body = request.get_data() if request.method == "POST" else args.get("echostr", "").encode()
    delivery = _claim_push_nonce(args, body)
    if delivery == "replay":
        log.warning("wechat push replayed a used signature with another message")
        return Response("replayed nonce", status=403)
    if request.method == "GET":  # URL verification when the push URL is configured
        return Response(args.get("echostr", ""), content_type="text/plain")
    if delivery == "repeat":  # WeChat resending the very same message: done the first time
        return Response("success", content_type="text/plain")
    try:
        return _handle_push(body, args, cfg, db)
    except BaseException:
        _release_push_nonce(args)  # WeChat's retry of this message must be handled, not taken for a repeat
        raise


def _handle_push(body: bytes, args, cfg, db) -> Response:
    payload = _push_payload(body, args, cfg)
    if payload is None:
        return Response("invalid message", status=400)
    if payload.get("appid") not in (None, cfg["WECHAT_APPID"]):
        return Response("unknown appid", status=403)
    if payload.get("Event") == "wxa_media_check" and payload.get("trace_id"):
        _record_media_check(str(payload["trace_id"]), payload=payload)
        db.session.commit()
    return Response("success", content_type="text/plain")


def _push_is_fresh(timestamp: str) -> bool:
    try:
        return abs(time.time() - int(timestamp)) <= PUSH_MAX_SKEW
    except ValueError:
        return False


def _push_nonce_key(args) -> str:
    seen = hashlib.sha256(f"{args.get('timestamp', '')}:{args.get('nonce', '')}".encode()).hexdigest()
    return f"wechat:push:nonce:{seen}"


def _claim_push_nonce(args, body: bytes) -> str:
    """"new" the first time a signed query is used; "repeat" for the same message again (WeChat
    retries a push it got no answer for); "replay" for another message under a used signature."""
    from app.extensions import redis

    digest = hashlib.sha256(body).hexdigest()
    key = _push_nonce_key(args)
    if redis.conn.set(key, digest, nx=True, ex=_PUSH_NONCE_TTL):
        return "new"
    return "repeat" if redis.conn.get(key) == digest.encode() else "replay"


def _release_push_nonce(args) -> None:
    from app.extensions import redis

    redis.conn.delete(_push_nonce_key(args))


def _push_payload(body: bytes, args, cfg) -> dict | None:
    message = _decode_push(body)
    if message is None:
        return None
    aes_key = cfg.get("WECHAT_PUSH_AES_KEY")
    # Safe mode (an AES key configured) accepts only encrypted messages; plaintext mode only plaintext.
    if aes_key or args.get("encrypt_type") == "aes" or "Encrypt" in message:
        if not aes_key or "Encrypt" not in message:
            return None
        try:
            crypto = WeChatCrypto(cfg["WECHAT_PUSH_TOKEN"], aes_key, cfg["WECHAT_APPID"])
            plain = crypto.decrypt_message({"Encrypt": message["Encrypt"]}, args.get("msg_signature", ""),
                                           args.get("timestamp", ""), args.get("nonce", ""))
        except Exception:  # bad signature, wrong appid, bad padding: reject the message
            log.warning("wechat push could not be decrypted")
            return None
        message = _decode_push(plain.encode("utf-8") if isinstance(plain, str) else plain)
    return message


def _decode_push(body: bytes) -> dict | None:
    text = body.decode("utf-8", "replace").strip() if body else ""
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None
    return _parse_xml(text.encode("utf-8")) if text.startswith("<") else None
