"""WeChatGateway, the app extension every WeChat call goes through: one object made of the
mini-program APIs, red-packet pay (v2), merchant transfer (v3) and the pay-call limiter, with the
per-app clients."""
from __future__ import annotations

from flask import current_app

from app.wechat.limiter import PayLimiter
from app.wechat.mp import MiniProgramAPI
from app.wechat.pay_v2 import RedPacketPay
from app.wechat.pay_v3 import TransferPay


class WeChatGateway(MiniProgramAPI, RedPacketPay, TransferPay, PayLimiter):
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
