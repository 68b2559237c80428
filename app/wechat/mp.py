"""Mini-program APIs: login, content security, subscribe messages (a mixin of WeChatGateway).

v2 content security goes through `client.wxa._post`; every call has a timeout.
"""
from __future__ import annotations

import hashlib
import logging

import requests
from flask import current_app
from wechatpy.exceptions import WeChatClientException, WeChatException

from app.wechat.common import _int_or_none, mask_openid
from app.wechat.errors import WeChatCodeInvalid, WeChatLoginRefused, WeChatRateLimited, WeChatUnavailable
from app.wechat.media import _record_media_check
from app.wechat.results import CONTENT_LABELS, LoginResult, TextVerdict
from app.wechat.tokens import _MiniProgramClient, _TokenCache

log = logging.getLogger(__name__)


# Subscribe-message errors that will not change on a retry: the message is dropped (False).
# 43101 the resident has no acceptance left; 40003 bad openid; 40037 bad template; 41030 bad page;
# 43104 openid of another app; 47001/47003 malformed data.
SUBSCRIBE_REFUSALS = {40003, 40037, 41030, 43101, 43104, 47001, 47003}

SCENE_PROFILE, SCENE_COMMENT, SCENE_FORUM, SCENE_SOCIAL_LOG = 1, 2, 3, 4


class MiniProgramAPI:
    # plumbing (_cfg, _clients, _base: WeChatGateway) ----------------------------------------
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

    # login --------------------------------------------------------------------------------
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

    # content security ---------------------------------------------------------------------
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

    # subscribe messages -------------------------------------------------------------------
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


def _subscribe_data(data: dict) -> dict:
    return {key: value if isinstance(value, dict) else {"value": str(value)} for key, value in data.items()}


def _fernet():
    """Encrypts under SECRET_KEY; also decrypts what keys retired by a rotation sealed."""
    import base64

    from cryptography.fernet import Fernet, MultiFernet

    keys = [current_app.config["SECRET_KEY"], *current_app.config.get("SECRET_KEY_FALLBACKS", ())]
    return MultiFernet([Fernet(base64.urlsafe_b64encode(hashlib.sha256(("wechat-session-key:" + key).encode())
                                                        .digest())) for key in keys])
