"""WeChat's red-packet codes and states, produced by the sandbox and read by the real wechatpy client
over HTTP: every documented error code by name, the per-user and merchant daily limits with WeChat's
own codes, SENDING → SENT | FAILED and RFUND_ING → REFUND over the sandbox clock, the login and
content-check codes 40226 / 61010, and replies shaped like WeChat's official samples."""
import pytest
import requests
import xmltodict

from app.extensions import wechat
from app.wechat import PayOutcome, WeChatLoginRefused
from app.wechat_sandbox.faults import PAY_CODES
from tests.fixtures.sandbox import new_billno

OPENID = "oResidentCodes"


def send(billno, amount=150, openid=OPENID):
    return wechat.send_miniprogram_hb(billno, openid, amount, act_name="隐患随手拍", remark="感谢您的报料",
                                      wishing="平安东莞")


@pytest.mark.parametrize("code", sorted(PAY_CODES))
def test_every_documented_code_by_name_reaches_the_gateway_and_pays_nothing(sandbox_app, wechat_sandbox, code):
    wechat_sandbox.fault("sendminiprogramhb", code)
    billno = new_billno()
    result = send(billno)
    assert result.code == code and result.outcome is not PayOutcome.SUCCESS
    assert wechat_sandbox.redpacks() == []
    assert send(billno).ok  # the fault is used up: the same billno goes through


@pytest.mark.parametrize("code", ["SENDNUM_LIMIT", "NOT_FOUND", "CA_ERROR", "NO_AUTH"])
def test_gethbinfo_codes_by_name(sandbox_app, wechat_sandbox, code):
    billno = new_billno()
    assert send(billno).ok
    wechat_sandbox.fault("gethbinfo", code)
    assert wechat.get_hb_info(billno).code == code
    assert wechat.get_hb_info(billno).status == "SENT"


def test_codes_and_states_only_where_wechat_has_them(wechat_sandbox):
    def inject(api, mode):
        return requests.post(f"{wechat_sandbox.url}/__sandbox__/faults", json={"api": api, "mode": mode},
                             timeout=5).status_code

    assert inject("jscode2session", "40226") == 201 and inject("msg_sec_check", "61010") == 201
    assert inject("msg_sec_check", "40226") == 400 and inject("token", "RCVDAMOUNT_LIMIT") == 400
    assert inject("gethbinfo", "refund_slow") == 201 and inject("downloadfundflow", "sending_then_sent") == 400


def test_per_user_daily_amount_is_rcvdamount_limit(sandbox_app, wechat_sandbox):
    assert all(send(new_billno(), amount=20000).ok for _ in range(5))
    over = send(new_billno(), amount=100)
    assert over.code == "RCVDAMOUNT_LIMIT"
    assert send(new_billno(), amount=100, openid="oSomeoneElse").ok


def test_merchant_daily_total_is_sendamount_limit_until_the_next_day(sandbox_app, wechat_sandbox):
    wechat_sandbox.configure(merchant_day_fen=400)
    assert send(new_billno(), amount=200).ok and send(new_billno(), amount=200, openid="oOther").ok
    billno = new_billno()
    assert send(billno, amount=100, openid="oThird").code == "SENDAMOUNT_LIMIT"
    wechat_sandbox.advance(24)
    assert send(billno, amount=100, openid="oThird").ok  # a refusal keeps nothing: the same billno, next day


@pytest.mark.slow
def test_sending_then_sent_is_in_flight_until_wechat_says_sent(sandbox_app, wechat_sandbox):
    wechat_sandbox.fault("sendminiprogramhb", "sending_then_sent", count=2)
    billno = new_billno()
    lost = send(billno)
    assert (lost.outcome, lost.code) == (PayOutcome.UNKNOWN, "TIMEOUT")
    balance = wechat_sandbox.control("GET", "redpacks")["balance_fen"]
    assert [wechat.get_hb_info(billno).status for _ in range(2)] == ["SENDING", "SENDING"]
    assert send(billno).code == "PROCESSING"   # the same billno while WeChat is still on it
    assert wechat.get_hb_info(billno).status == "SENT"
    after = wechat_sandbox.control("GET", "redpacks")
    assert after["balance_fen"] == balance - 150 and after["items"][0]["status"] == "SENT"
    again = send(billno)
    assert again.ok and again.package                # and now the original packet, not a second one
    assert len(wechat_sandbox.redpacks()) == 1


@pytest.mark.slow
def test_sending_then_failed_never_pays_and_wants_a_new_billno(sandbox_app, wechat_sandbox):
    wechat_sandbox.fault("sendminiprogramhb", "sending_then_failed", count=1)
    billno = new_billno()
    balance = wechat_sandbox.control("GET", "redpacks")["balance_fen"]
    assert send(billno).code == "TIMEOUT"
    sending = wechat.get_hb_info(billno)
    assert sending.status == "SENDING" and sending.reason     # WeChat shows why it may fail
    assert wechat.get_hb_info(billno).status == "FAILED"
    assert send(billno).code == "SEND_FAILED"
    assert wechat_sandbox.control("GET", "redpacks")["balance_fen"] == balance
    assert send(new_billno()).ok                             # a failed packet counts against no limit


def test_refund_slow_passes_through_rfund_ing(sandbox_app, wechat_sandbox):
    billno = new_billno()
    assert send(billno).ok
    wechat_sandbox.fault("gethbinfo", "refund_slow", count=2)
    wechat_sandbox.advance(25)
    assert [wechat.get_hb_info(billno).status for _ in range(3)] == ["RFUND_ING", "RFUND_ING", "REFUND"]
    info = wechat.get_hb_info(billno)
    assert info.refund_time is not None and info.refund_amount_fen == 150


def test_jscode2session_40226_is_a_refused_login(sandbox_app, wechat_sandbox):
    wechat_sandbox.fault("jscode2session", "40226")
    with pytest.raises(WeChatLoginRefused):
        wechat.code_to_session(wechat_sandbox.login_code("oRisky"))


def test_msg_sec_check_61010_is_review_for_an_inactive_resident(sandbox_app, wechat_sandbox):
    wechat_sandbox.fault("msg_sec_check", "61010")
    verdict = wechat.check_text("路面塌陷", "oAway")
    assert (verdict.suggest, verdict.error) == ("review", "openid_inactive")
    assert wechat.check_text("路面塌陷", "oAway").suggest == "pass"


def test_replies_carry_no_sign_as_in_wechat_s_samples(sandbox_app, wechat_sandbox):
    """sendminiprogramhb and gethbinfo answer unsigned XML (the client certificate binds them); the
    received packet's hbinfo carries its status."""
    billno = new_billno()
    sent = send(billno)
    assert sent.ok and "sign" not in sent.raw
    wechat_sandbox.claim(billno)
    info = wechat.get_hb_info(billno)
    assert "sign" not in info.raw and info.status == "RECEIVED" and info.send_time is not None
    assert info.raw["hblist"]["hbinfo"]["status"] == "RECEIVED"


def test_wechatpy_s_own_redpack_client_against_the_sandbox(wechat_sandbox):
    """wechatpy's WeChatPay.redpack.send / .query (not our gateway) pay and query through the sandbox;
    a reply signed with another key fails wechatpy's check_signature."""
    from wechatpy.exceptions import WeChatPayException
    from wechatpy.pay import WeChatPay

    from app.config import SANDBOX_WECHAT

    pay = WeChatPay(SANDBOX_WECHAT["WECHAT_APPID"], SANDBOX_WECHAT["WECHAT_PAY_KEY"],
                    SANDBOX_WECHAT["WECHAT_MCH_ID"], timeout=5)
    pay.API_BASE_URL = wechat_sandbox.url + "/"
    billno = new_billno()
    sent = pay.redpack.send("oPeerResident", 120, "人人拍", "隐患随手拍", "感谢您的报料", "平安东莞",
                            client_ip="127.0.0.1", out_trade_no=billno)
    assert sent["result_code"] == "SUCCESS" and sent["mch_billno"] == billno and "sign" not in sent
    queried = pay.redpack.query(billno)
    assert (queried["status"], queried["total_amount"]) == ("SENT", "120")
    with pytest.raises(WeChatPayException) as refused:
        pay.redpack.send("oPeerResident", 99, "人人拍", "隐患随手拍", "感谢您的报料", "平安东莞",
                         client_ip="127.0.0.1", out_trade_no=new_billno())
    assert refused.value.errcode == "MONEY_LIMIT"
    wechat_sandbox.fault("gethbinfo", "bad_sign")
    forged = pay.redpack.query(billno)
    assert forged["sign"] and not pay.check_signature(forged)
    raw = requests.post(f"{wechat_sandbox.url}/mmpaymkttransfers/gethbinfo", timeout=5, data=b"<xml></xml>")
    assert xmltodict.parse(raw.content)["xml"]["return_code"] == "FAIL"
