"""The only module that imports wechatpy: login, content security, subscribe messages, pay.

(Skeleton: the WeChat gateway issue fills this in.)
"""


class WeChatGateway:
    def __init__(self):
        self.app = None

    def init_app(self, app):
        self.app = app
        app.extensions["wechat"] = self
