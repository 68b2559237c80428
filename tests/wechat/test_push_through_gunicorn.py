"""/wechat/push served by real gunicorn with the deploy configuration: the access log keeps no signed
query string, and a replayed or stale push is refused there too."""
import time

import pytest
import requests

from app.config import SANDBOX_PUSH, SANDBOX_WECHAT
from app.extensions import db
from app.models.wechat import WeChatMediaCheck
from app.wechat_sandbox.push import build_push, event_payload
from tests.fixtures.gunicorn import gunicorn  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow
CFG = {**SANDBOX_WECHAT, **SANDBOX_PUSH, "WECHAT_PUSH_FORMAT": "json"}


def push(server, params, body, content_type):
    return requests.post(server.url + "/wechat/push", params=params, data=body,
                         headers={"Content-Type": content_type}, timeout=10)


def test_push_query_strings_stay_out_of_the_access_log(gunicorn, db):  # noqa: F811
    server = gunicorn("push", None).wait_ready()
    payload = event_payload(CFG, {"openid": "oGunicornPusher", "trace_id": "trace-gunicorn", "suggest": "risky",
                                  "label": 20002}, int(time.time()))
    params, body, content_type = build_push(CFG, payload)
    stale = build_push(CFG, payload, timestamp=1000000000)

    assert push(server, params, body, content_type).text == "success"
    assert push(server, params, body.replace(b"risky", b"pass"), content_type).status_code == 403  # replay
    assert push(server, *stale).status_code == 403
    server.stop()

    log = server.log()
    assert log.count("POST /wechat/push?") == 3, log  # the access log is on, one line per push
    for value in (params["signature"], params["nonce"], params["timestamp"], stale[0]["signature"],
                  stale[0]["nonce"]):
        assert value not in log
    assert "oGunicornPusher" not in log
    db.session.rollback()
    [row] = db.session.query(WeChatMediaCheck).all()
    assert (row.trace_id, row.suggest) == ("trace-gunicorn", "risky")
