"""Subscribe messages to residents through wechatpy against the sandbox."""
import logging

import pytest

from app.config import SANDBOX_SUBSCRIBE_TEMPLATES
from app.extensions import wechat
from app.wechat import WeChatUnavailable

OPENID = "oResidentNotify1"
TEMPLATE = SANDBOX_SUBSCRIBE_TEMPLATES["tip_result"]
DATA = {"thing1": "路灯损坏", "phrase2": "已受理", "time3": "2026-11-26 20:00"}


def send(**kwargs):
    args = {"openid": OPENID, "template_id": "tip_result", "data": DATA, "page": "pages/tips/detail?id=7"}
    args.update(kwargs)
    return wechat.send_subscribe_message(args.pop("openid"), args.pop("template_id"), args.pop("data"), **args)


def test_message_is_delivered_and_visible_in_the_sandbox(sandbox_app, wechat_sandbox):
    assert send() is True

    [message] = wechat_sandbox.messages()
    assert (message["openid"], message["template_id"], message["page"]) == (OPENID, TEMPLATE,
                                                                            "pages/tips/detail?id=7")
    assert message["data"] == {key: {"value": value} for key, value in DATA.items()}
    assert message["miniprogram_state"] == sandbox_app.config["WECHAT_MINIPROGRAM_STATE"]
    assert message["at"]


def test_a_raw_template_id_is_passed_through(sandbox_app, wechat_sandbox):
    assert send(template_id=SANDBOX_SUBSCRIBE_TEMPLATES["hazard_closed"], page=None) is True
    [message] = wechat_sandbox.messages()
    assert message["template_id"] == SANDBOX_SUBSCRIBE_TEMPLATES["hazard_closed"] and message["page"] is None


def test_no_quota_43101_is_tolerated(sandbox_app, wechat_sandbox, caplog):
    wechat_sandbox.subscribe(OPENID, TEMPLATE, 0)  # the resident never tapped "allow"

    with caplog.at_level(logging.INFO, logger="app.wechat"):
        assert send() is False
    assert wechat_sandbox.messages() == []
    assert "43101" in caplog.text and OPENID not in caplog.text  # logged, openid masked


def test_each_acceptance_allows_one_message(sandbox_app, wechat_sandbox):
    wechat_sandbox.subscribe(OPENID, TEMPLATE, 2)

    assert [send(), send(), send()] == [True, True, False]
    assert len(wechat_sandbox.messages()) == 2
    assert send(openid="oSomeoneElse") is True  # another resident's quota is their own


@pytest.mark.parametrize("kwargs", [
    {"template_id": "tpl-that-does-not-exist"},   # 40037
    {"data": {}},                                  # 47003
    {"openid": ""},                                # 40003
])
def test_refusals_return_false_without_raising(sandbox_app, wechat_sandbox, kwargs):
    assert send(**kwargs) is False
    assert wechat_sandbox.messages() == []


@pytest.mark.parametrize("mode", ["SYSTEMERROR", "FREQ_LIMIT", "http_500", "not_xml", "timeout"])
def test_transient_trouble_raises_so_a_job_can_retry(sandbox_app, wechat_sandbox, mode):
    wechat.access_token()
    wechat_sandbox.fault("subscribe_send", mode)

    with pytest.raises(WeChatUnavailable):
        send()
    assert send() is True


def test_expired_token_is_refreshed_and_the_message_sent_once(sandbox_app, wechat_sandbox):
    wechat.access_token()
    wechat_sandbox.advance(3)

    assert send() is True
    assert len(wechat_sandbox.messages()) == 1
    assert wechat_sandbox.stats()["token_fetches"] == 2
