"""Access token: Redis-cached, shared by every process, refreshed by one at a time.

wechatpy 1.8.18 hard-codes the token URL, so we fetch tokens ourselves and hand wechatpy a client
whose session reads our cache. Imports of app.extensions happen inside functions.
"""
from __future__ import annotations

import json
import logging
import threading
import time
import uuid

import requests
from wechatpy.client import WeChatClient
from wechatpy.exceptions import WeChatClientException
from wechatpy.session import SessionStorage

from app.wechat.errors import WeChatUnavailable

log = logging.getLogger(__name__)

TOKEN_REFRESH_MARGIN = 300  # seconds before expiry at which the next caller refreshes

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
