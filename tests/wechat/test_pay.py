"""Red packets through the real wechatpy client against the sandbox: results, limits, every fault."""
import pytest

from app.extensions import wechat
from app.wechat import PayOutcome
from tests.fixtures.sandbox import new_billno

OPENID = "oResidentPay1"


def send(billno, amount=150, openid=OPENID, **extra):
    return wechat.send_miniprogram_hb(billno, openid, amount, act_name="隐患随手拍", remark="感谢您的报料",
                                      wishing="平安东莞", **extra)


def test_miniprogram_packet_is_paid_and_returns_package(sandbox_app, wechat_sandbox):
    billno = new_billno()
    result = send(billno)

    assert result.outcome is PayOutcome.SUCCESS
    assert result.package and f"spbillid={billno}" in result.package
    assert result.amount_fen == 150 and result.detail_id
    [packet] = wechat_sandbox.redpacks()
    assert (packet["mch_billno"], packet["amount_fen"], packet["status"]) == (billno, 150, "SENT")


def test_same_billno_twice_pays_once(sandbox_app, wechat_sandbox):
    billno = new_billno()
    first, second = send(billno), send(billno)

    assert first.outcome is second.outcome is PayOutcome.SUCCESS
    assert first.package == second.package and first.detail_id == second.detail_id
    assert len(wechat_sandbox.redpacks()) == 1
    assert wechat_sandbox.control("GET", "redpacks")["balance_fen"] == 10_000_000 - 150


def test_same_billno_other_parameters_is_fatal_and_unknown(sandbox_app, wechat_sandbox):
    billno = new_billno()
    send(billno, amount=150)
    result = send(billno, amount=160)

    assert result.outcome is PayOutcome.UNKNOWN  # the original may be paid: query, never re-mint
    assert result.code == "FATAL_ERROR"
    assert [p["amount_fen"] for p in wechat_sandbox.redpacks()] == [150]


def test_wrong_merchant_key_is_sign_error_config(make_app, sandbox_config, wechat_sandbox, db):
    app = make_app(**{**sandbox_config, "WECHAT_PAY_KEY": "0" * 32})
    with app.app_context():
        result = send(new_billno())
    assert (result.outcome, result.code) == (PayOutcome.CONFIG_ERROR, "SIGN_ERROR")
    assert wechat_sandbox.redpacks() == []


def test_malformed_billno_is_refused_before_calling(sandbox_app, wechat_sandbox):
    result = send("12345")
    assert (result.outcome, result.code) == (PayOutcome.CONFIG_ERROR, "INVALID_BILLNO")
    assert wechat_sandbox.redpacks() == []


@pytest.mark.parametrize("amount", [99, 20001])
def test_amount_outside_1_to_200_yuan_fails_final(sandbox_app, wechat_sandbox, amount):
    result = send(new_billno(), amount=amount)
    assert (result.outcome, result.code) == (PayOutcome.FAILED_FINAL, "MONEY_LIMIT")
    assert result.reason


def test_ten_packets_per_openid_per_day(sandbox_app, wechat_sandbox):
    results = [send(new_billno(), amount=100) for _ in range(11)]

    assert [r.outcome for r in results[:10]] == [PayOutcome.SUCCESS] * 10
    assert (results[10].outcome, results[10].code) == (PayOutcome.RETRY_SAME, "SENDNUM_LIMIT")  # the next day, the same billno
    assert send(new_billno(), openid="oSomeoneElse").outcome is PayOutcome.SUCCESS


def test_1000_yuan_per_openid_per_day(sandbox_app, wechat_sandbox):
    results = [send(new_billno(), amount=20000) for _ in range(5)]
    over = send(new_billno(), amount=100)

    assert all(r.outcome is PayOutcome.SUCCESS for r in results)
    assert (over.outcome, over.code) == (PayOutcome.RETRY_SAME, "RCVDAMOUNT_LIMIT")  # WeChat's per-user code


def test_empty_merchant_account_is_notenough_retry_same(sandbox_app, wechat_sandbox):
    wechat_sandbox.configure(balance_fen=120)
    billno = new_billno()

    result = send(billno)
    assert (result.outcome, result.code) == (PayOutcome.RETRY_SAME, "NOTENOUGH")
    wechat_sandbox.configure(balance_fen=10_000)
    assert send(billno).outcome is PayOutcome.SUCCESS


@pytest.mark.parametrize("mode, outcome, code, paid", [
    ("SYSTEMERROR", PayOutcome.RETRY_SAME, "SYSTEMERROR", False),
    ("NOTENOUGH", PayOutcome.RETRY_SAME, "NOTENOUGH", False),
    ("FREQ_LIMIT", PayOutcome.RETRY_SAME, "FREQ_LIMIT", False),
    ("timeout", PayOutcome.UNKNOWN, "TIMEOUT", False),
    ("accept_then_timeout", PayOutcome.UNKNOWN, "TIMEOUT", True),
    ("http_500", PayOutcome.UNKNOWN, "HTTP_500", False),
    ("not_xml", PayOutcome.UNKNOWN, "NOT_XML", False),
    ("bad_sign", PayOutcome.UNKNOWN, "INVALID_SIGNATURE", True),
])
@pytest.mark.parametrize("api", ["sendminiprogramhb", "sendredpack"])
def test_fault_classification_then_retry_with_same_billno_pays_once(sandbox_app, wechat_sandbox, api, mode,
                                                                     outcome, code, paid):
    billno = new_billno()
    call = send if api == "sendminiprogramhb" else lambda b: wechat.send_redpack(
        b, OPENID, 150, act_name="隐患随手拍", remark="感谢您的报料", wishing="平安东莞")
    wechat_sandbox.fault(api, mode)

    result = call(billno)

    assert (result.outcome, result.code) == (outcome, code)
    assert len(wechat_sandbox.redpacks()) == (1 if paid else 0)
    retry = call(billno)
    assert retry.outcome is PayOutcome.SUCCESS
    assert [p["mch_billno"] for p in wechat_sandbox.redpacks()] == [billno]


def test_sendredpack_has_no_package(sandbox_app, wechat_sandbox):
    result = wechat.send_redpack(new_billno(), OPENID, 150, act_name="a", remark="r", wishing="w")
    assert result.outcome is PayOutcome.SUCCESS and result.package is None
    assert wechat_sandbox.redpacks()[0]["api"] == "sendredpack"


def test_hbinfo_follows_the_packet_through_claim(sandbox_app, wechat_sandbox):
    billno = new_billno()
    send(billno, amount=188)
    sent = wechat.get_hb_info(billno)
    assert (sent.outcome, sent.status, sent.amount_fen) == (PayOutcome.SUCCESS, "SENT", 188)
    assert sent.send_time is not None and sent.send_time.tzinfo is not None and sent.rcv_time is None

    assert wechat_sandbox.claim(billno)["status"] == "RECEIVED"
    received = wechat.get_hb_info(billno)
    assert received.status == "RECEIVED" and received.rcv_time >= sent.send_time
    assert wechat_sandbox.claim(billno)["status"] == "RECEIVED"  # a second open changes nothing


def test_unclaimed_packet_is_refunded_after_24_hours(sandbox_app, wechat_sandbox):
    billno = new_billno()
    send(billno)
    wechat_sandbox.advance(23)
    assert wechat.get_hb_info(billno).status == "SENT"

    wechat_sandbox.advance(2)
    refunded = wechat.get_hb_info(billno)
    assert refunded.status == "REFUND" and refunded.refund_amount_fen == 150
    assert (refunded.refund_time - refunded.send_time).total_seconds() == 24 * 3600
    assert wechat_sandbox.claim(billno)["status"] == "REFUND"


def test_hbinfo_for_unknown_billno_is_not_found_retry_same(sandbox_app, wechat_sandbox):
    result = wechat.get_hb_info(new_billno())
    assert (result.outcome, result.code) == (PayOutcome.RETRY_SAME, "NOT_FOUND")


@pytest.mark.parametrize("mode, outcome, code", [
    ("SYSTEMERROR", PayOutcome.RETRY_SAME, "SYSTEMERROR"),
    ("FREQ_LIMIT", PayOutcome.RETRY_SAME, "FREQ_LIMIT"),
    ("timeout", PayOutcome.UNKNOWN, "TIMEOUT"),
    ("http_500", PayOutcome.UNKNOWN, "HTTP_500"),
    ("not_xml", PayOutcome.UNKNOWN, "NOT_XML"),
    ("bad_sign", PayOutcome.UNKNOWN, "INVALID_SIGNATURE"),
])
def test_hbinfo_faults_are_classified(sandbox_app, wechat_sandbox, mode, outcome, code):
    billno = new_billno()
    send(billno)
    wechat_sandbox.fault("gethbinfo", mode)

    result = wechat.get_hb_info(billno)
    assert (result.outcome, result.code) == (outcome, code)
    assert result.status is None
    assert wechat.get_hb_info(billno).status == "SENT"


def test_connection_refused_is_unknown(make_app, sandbox_config, wechat_sandbox, db):
    from tests.fixtures.sandbox import free_port

    dead = f"http://127.0.0.1:{free_port()}/"
    app = make_app(**{**sandbox_config, "WECHAT_PAY_API_BASE": dead})
    with app.app_context():
        result = send(new_billno())
    assert (result.outcome, result.code) == (PayOutcome.UNKNOWN, "CONNECTION_ERROR")


def test_state_survives_a_sandbox_restart(sandbox_app, wechat_sandbox):
    billno = new_billno()
    send(billno)
    wechat_sandbox.restart()

    assert wechat.get_hb_info(billno).status == "SENT"
    assert send(billno).outcome is PayOutcome.SUCCESS
    assert len(wechat_sandbox.redpacks()) == 1


def test_biz_redpacket_params_are_signed_with_the_merchant_key(sandbox_app, wechat_sandbox):
    """领取红包接口 (pay.weixin.qq.com/doc/v2/merchant/4011937428): the package reaches the page
    URL-encoded, and paySign signs the parameters as passed."""
    import hashlib
    from urllib.parse import quote

    params = wechat.biz_redpacket_params("sendid=1&ver=8")
    assert params["package"] == quote("sendid=1&ver=8", safe="") == "sendid%3D1%26ver%3D8"
    cfg = sandbox_app.config
    expected = hashlib.md5(f"appId={cfg['WECHAT_APPID']}&nonceStr={params['nonceStr']}&package="
                           f"sendid%3D1%26ver%3D8&timeStamp={params['timeStamp']}"
                           f"&key={cfg['WECHAT_PAY_KEY']}".encode()).hexdigest().upper()
    assert params["paySign"] == expected and params["signType"] == "MD5"
