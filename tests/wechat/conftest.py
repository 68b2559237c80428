"""WeChat tests: an app served over real HTTP, so the sandbox can push media-check results to it."""
from __future__ import annotations

import base64
import os
import threading

import pytest
from werkzeug.serving import make_server


def new_aes_key() -> str:
    """An EncodingAESKey as the mini-program console makes them: 43 base64 characters."""
    return base64.b64encode(os.urandom(32)).decode().rstrip("=")


class LiveApp:
    def __init__(self, app):
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.push_url = self.url + "/wechat/push"
        self.thread = threading.Thread(target=self.server.serve_forever, name="live-app", daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def live_app(make_app, sandbox_config, sandbox_app):
    """A callable: serve an app wired to the sandbox (extra config allowed) on a free loopback port."""
    started = []

    def _start(**overrides):
        live = LiveApp(make_app(**{**sandbox_config, **overrides}))
        started.append(live)
        return live

    yield _start
    for live in started:
        live.stop()
