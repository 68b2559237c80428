"""Keep-alive HTTP for wechatpayv3.

wechatpayv3 calls `requests.get/post/...` at module level: every APIv3 call builds a new Session and
opens a new TCP connection, in production a TLS handshake and a round trip to WeChat per call (on
loopback ~9 % of a transfer's worker CPU, docs/PERFORMANCE.md §商家转账). `install_keepalive()` puts a stand-in for the `requests` module
inside wechatpayv3.core whose calls go through one keep-alive Session per process and thread: a
Session is not shared across threads, and a connection inherited over fork (RQ's forking workers)
belongs to the parent, so a new pid or thread gets its own. Everything else (exceptions, the
environment's proxies and CA bundle, timeouts) stays requests' own behaviour.
"""
from __future__ import annotations

import os
import threading

import requests

_local = threading.local()


def pooled_session() -> requests.Session:
    """This thread's keep-alive session (a new one after a fork)."""
    session = getattr(_local, "session", None)
    if session is None or _local.pid != os.getpid():
        session = requests.Session()
        _local.session, _local.pid = session, os.getpid()
    return session


_VERBS = frozenset({"get", "post", "put", "patch", "delete", "head", "options", "request"})


class PooledRequests:
    """What wechatpayv3.core sees as `requests`: the verbs go over pooled_session(), everything
    else (requests.exceptions, requests.codes…) is the module's own."""

    def __getattr__(self, name):
        return getattr(pooled_session() if name in _VERBS else requests, name)


def install_keepalive() -> None:
    """Route wechatpayv3's HTTP through PooledRequests (idempotent)."""
    import wechatpayv3.core

    if not isinstance(wechatpayv3.core.requests, PooledRequests):
        wechatpayv3.core.requests = PooledRequests()
