"""Every gateway call against every sandbox fault mode: the table docs/WECHAT.md reproduces.

Mini-program calls raise a typed domain error (or return); pay calls return a classified PayResult.
After each fault the same call is made again and must work: no fault leaves the gateway stuck.
"""
import pytest

from app.extensions import wechat
from app.wechat import PayOutcome, WeChatBillIncomplete, WeChatRateLimited, WeChatUnavailable
from app.wechat_sandbox.faults import BASE_MODES as MODES  # the transport faults; codes by name: test_redpack_codes
from tests.fixtures.sandbox import new_billno

OPENID = "oResidentMatrix"
U, R = WeChatUnavailable, WeChatRateLimited
OK = "ok"

MP = {  # mode: (token, jscode2session, msg_sec_check, media_check_async, subscribe_send)
    "SYSTEMERROR": (U, U, U, U, U),
    "timeout": (U, U, U, U, U),
    "accept_then_timeout": (U, U, U, U, U),
    "http_500": (U, U, U, U, U),
    "not_xml": (U, U, U, U, U),
    "NOTENOUGH": (U, U, U, U, U),      # a JSON API answers -1 (system busy)
    "FREQ_LIMIT": (U, R, R, R, U),     # 45011/45009; a notification waits for the quota (job retry)
    "bad_sign": (OK, OK, OK, OK, OK),  # JSON replies are not signed: nothing to break
    "missing_field": (U, U, U, U, OK),  # subscribe: errcode 0 is the whole answer
    "unknown_code": (U, U, U, U, U),
}
MP_APIS = ("token", "jscode2session", "msg_sec_check", "media_check_async", "subscribe_send")

UNK, SAME = PayOutcome.UNKNOWN, PayOutcome.RETRY_SAME
PAY = {  # mode: (sendminiprogramhb, sendredpack, gethbinfo, downloadfundflow)  — (outcome, code)
    "SYSTEMERROR": ((SAME, "SYSTEMERROR"),) * 3 + ((SAME, "SYSTEMERROR"),),
    "timeout": ((UNK, "TIMEOUT"),) * 4,
    "accept_then_timeout": ((UNK, "TIMEOUT"),) * 4,
    "http_500": ((UNK, "HTTP_500"),) * 4,
    "not_xml": ((UNK, "NOT_XML"),) * 3 + ((UNK, "NOT_A_BILL"),),
    "NOTENOUGH": ((SAME, "NOTENOUGH"),) * 4,
    "FREQ_LIMIT": ((SAME, "FREQ_LIMIT"),) * 4,
    "bad_sign": ((UNK, "INVALID_SIGNATURE"),) * 3 + ((PayOutcome.SUCCESS, "SUCCESS"),),  # bills are not signed
    "missing_field": ((UNK, "MISSING_FIELD"),) * 3 + ((PayOutcome.SUCCESS, "SUCCESS"),),  # rows cut: see below
    "unknown_code": ((UNK, "NEW_RISK_CONTROL"),) * 4,
}
PAY_APIS = ("sendminiprogramhb", "sendredpack", "gethbinfo", "downloadfundflow")
# Whether the failed send paid anyway (the retry with the same billno then returns that packet).
PAID_ANYWAY = {"accept_then_timeout", "bad_sign", "missing_field"}


def test_the_tables_cover_every_mode():
    assert set(MP) == set(PAY) == set(MODES)


def _mp_call(api, wechat_sandbox):
    if api == "token":
        return lambda: wechat.access_token()
    if api == "jscode2session":
        code = wechat_sandbox.login_code(OPENID)
        return lambda: wechat.code_to_session(code)
    wechat.access_token()  # the fault must hit the API itself
    if api == "msg_sec_check":
        return lambda: wechat.check_text("路灯坏了", OPENID)
    if api == "media_check_async":
        return lambda: wechat.check_media_async("https://media.example.test/p/1.jpg", OPENID)
    return lambda: wechat.send_subscribe_message(OPENID, "tip_result", {"thing1": "路灯"})


@pytest.mark.slow
@pytest.mark.parametrize("mode", list(MP))
@pytest.mark.parametrize("api", MP_APIS)
def test_mini_program_call(sandbox_app, wechat_sandbox, api, mode):
    expected = MP[mode][MP_APIS.index(api)]
    call = _mp_call(api, wechat_sandbox)
    wechat_sandbox.fault(api, mode)

    if expected is OK:
        assert call()
    else:
        with pytest.raises(expected):
            call()
    if api == "jscode2session" and (expected is OK or mode in ("accept_then_timeout", "missing_field")):
        call = _mp_call(api, wechat_sandbox)  # WeChat used that code up: the resident logs in again
    assert call()


def _send(api, billno):
    if api == "sendminiprogramhb":
        return wechat.send_miniprogram_hb(billno, OPENID, 150, act_name="a", remark="r", wishing="w")
    return wechat.send_redpack(billno, OPENID, 150, act_name="a", remark="r", wishing="w")


@pytest.mark.slow
@pytest.mark.parametrize("mode", list(PAY))
@pytest.mark.parametrize("api", PAY_APIS)
def test_pay_call(sandbox_app, wechat_sandbox, api, mode):
    expected = PAY[mode][PAY_APIS.index(api)]
    billno = new_billno()
    if api in ("sendminiprogramhb", "sendredpack"):
        wechat_sandbox.fault(api, mode)
        result = _send(api, billno)
        assert (result.outcome, result.code) == expected
        assert result.mch_billno == billno
        assert len(wechat_sandbox.redpacks()) == (1 if mode in PAID_ANYWAY else 0)
        assert _send(api, billno).ok  # the same billno again: paid exactly once
        assert [p["mch_billno"] for p in wechat_sandbox.redpacks()] == [billno]
        return
    assert _send("sendminiprogramhb", billno).ok
    if api == "gethbinfo":
        wechat_sandbox.fault(api, mode)
        result = wechat.get_hb_info(billno)
        assert (result.outcome, result.code) == expected
        assert result.status is None
        assert wechat.get_hb_info(billno).status == "SENT"
        return
    day = wechat_sandbox.control("POST", "clock", {"advance_hours": 0})["now"][:10]
    wechat_sandbox.advance(25)
    wechat_sandbox.fault(api, mode)
    bill = wechat.download_fundflow(day)
    assert (bill.outcome, bill.code) == expected
    if mode == "missing_field":
        with pytest.raises(WeChatBillIncomplete):
            list(bill)
    elif bill.ready:
        assert [r.voucher_no for r in bill] == [billno]
    else:
        assert list(bill) == []
    assert [r.voucher_no for r in wechat.download_fundflow(day) if r.direction == "expense"] == [billno]
