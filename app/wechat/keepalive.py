"""Keep-alive HTTP for wechatpayv3.

wechatpayv3 calls `requests.get/post/...` at module level: every APIv3 call builds a new Session and
opens a new TCP (in production TLS) connection, which is most of a transfer's CPU after the RSA
signature (docs/PERFORMANCE.md §商家转账). `install_keepalive()` puts a stand-in for the `requests` module
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


class PooledRequests:
    """What wechatpayv3.core sees as `requests`: the verbs it calls, over pooled_session()."""

    def __getattr__(self, name):  # requests.exceptions, requests.codes…: the module's own
        return getattr(requests, name)

    @staticmethod
    def get(url, **kwargs):
        return pooled_session().get(url, **kwargs)

    @staticmethod
    def post(url, **kwargs):
        return pooled_session().post(url, **kwargs)

    @staticmethod
    def put(url, **kwargs):
        return pooled_session().put(url, **kwargs)

    @staticmethod
    def patch(url, **kwargs):
        return pooled_session().patch(url, **kwargs)

    @staticmethod
    def delete(url, **kwargs):
        return pooled_session().delete(url, **kwargs)


def install_keepalive() -> None:
    """Route wechatpayv3's HTTP through PooledRequests (idempotent)."""
    import wechatpayv3.core

    if not isinstance(wechatpayv3.core.requests, PooledRequests):
        wechatpayv3.core.requests = PooledRequests()
