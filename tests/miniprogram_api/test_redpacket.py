"""The red-packet receipt step: GET /rewards hands a sent packet's wx.sendBizRedPacket parameters,
signed by the server, and WeChat's client (the sandbox's) opens the packet only with them intact
and only for its own recipient; the sweeper then sees it claimed."""
from datetime import timedelta

from urllib.parse import quote

import requests

from app.models.base import utcnow
from rewards.sweeper import sweep_payouts
from tests.miniprogram_api.conftest import packet_sent


def open_packet(sandbox, params: dict, openid: str):
    return requests.post(f"{sandbox.url}/__sandbox__/client/redpacks/open", json={**params, "openid": openid},
                         timeout=10)


def test_a_sent_packet_opens_with_the_signed_parameters_only(mp_app, mp_client, login, staff, wechat_sandbox):
    alice, bob = login(), login()
    reward = packet_sent(alice, mp_app, mp_client, staff, wechat_sandbox)
    params = reward["redpacket"]
    assert set(params) == {"timeStamp", "nonceStr", "package", "signType", "paySign"}
    assert params["package"] == quote(reward["package"], safe="") and params["signType"] == "MD5"
    raw = open_packet(wechat_sandbox, {**params, "package": reward["package"]}, alice.openid)
    assert raw.status_code == 400 and "URL-encoded" in raw.json()["errMsg"]  # as the page gets it, encoded

    forged = open_packet(wechat_sandbox, {**params, "paySign": "0" * 32}, alice.openid)
    assert forged.status_code == 400 and "paySign" in forged.json()["errMsg"]
    replayed_nonce = open_packet(wechat_sandbox, {**params, "nonceStr": "another"}, alice.openid)
    assert replayed_nonce.status_code == 400  # the signature covers every field
    assert open_packet(wechat_sandbox, params, bob.openid).status_code == 403
    assert wechat_sandbox.redpacks()[0]["status"] == "SENT"

    opened = open_packet(wechat_sandbox, params, alice.openid)
    assert opened.status_code == 200 and opened.json()["errMsg"] == "sendBizRedPacket:ok"
    assert wechat_sandbox.redpacks()[0]["status"] == "RECEIVED"
    sweep_payouts(now=utcnow() + timedelta(minutes=20))
    after = alice.get("/rewards").get_json()["items"][0]
    assert after["status"] == "claimed" and after["package"] is None and "redpacket" not in after


def test_a_package_wechat_did_not_issue_is_refused(mp_app, mp_client, login, staff, wechat_sandbox):
    from app.extensions import wechat

    alice = login()
    reward = packet_sent(alice, mp_app, mp_client, staff, wechat_sandbox)
    made_up = reward["package"].replace("sign=", "sign=0")
    answer = open_packet(wechat_sandbox, wechat.biz_redpacket_params(made_up), alice.openid)  # validly signed
    assert answer.status_code == 400 and "package" in answer.json()["errMsg"]
    assert open_packet(wechat_sandbox, {"package": reward["package"]}, alice.openid).status_code == 400
