"""The gateway reads WeChat's official sample shapes (tests/wechat/official_samples.py names each
source), and a request field whose value is 0 is signed as WeChat signs it (wechatpy would skip it)."""
import time
from datetime import datetime, timezone

from app.extensions import wechat
from app.wechat import PayOutcome
from app.wechat.common import _parse_xml
from app.wechat.pay_v2 import read_hb_info
from tests.fixtures.sandbox import new_billno
from tests.wechat import official_samples as samples
from tests.wechat.test_media_check import post_push, rows


def test_the_official_sendredpack_success_is_success(sandbox_app):
    result = wechat._classified(_parse_xml(samples.SENDREDPACK_SUCCESS.encode()))
    assert (result.outcome, result.code) == (PayOutcome.SUCCESS, "SUCCESS")   # err_code 0 is not an error
    assert result.raw["send_listid"] and result.raw["total_amount"] == "150"


def test_the_official_gethbinfo_with_two_hbinfo_is_read(sandbox_app):
    result = read_hb_info(wechat._classified(_parse_xml(samples.GETHBINFO_TWO_HBINFO.encode())),
                          samples.QUERY_BILLNO)
    assert result.outcome is PayOutcome.SUCCESS and result.status == "RECEIVED"
    assert result.amount_fen == 300
    assert result.send_time == datetime(2026, 12, 6, 1, 30, tzinfo=timezone.utc)
    assert result.rcv_time == datetime(2026, 12, 6, 1, 31, 5, tzinfo=timezone.utc)   # the first hbinfo


def test_a_media_check_push_with_label_as_text_is_read(sandbox_app, wechat_sandbox):
    from app.wechat import get_media_check

    reply = post_push(sandbox_app.test_client(), samples.media_check_push("trace-sample", "oSample", int(time.time())))
    assert reply.status_code == 200
    verdict = get_media_check("trace-sample")
    assert (verdict.status, verdict.suggest, verdict.label, verdict.label_name) == ("done", "risky", 20002, "porn")
    assert len(rows()) == 1


def test_the_sandbox_pushes_label_as_text(wechat_sandbox):
    from app.config import SANDBOX_PUSH
    from app.wechat_sandbox.push import event_payload

    payload = event_payload({**SANDBOX_PUSH, **{"WECHAT_APPID": samples.APPID}},
                            {"openid": "o1", "trace_id": "t1", "suggest": "pass", "label": 100}, 0)
    assert payload["result"]["label"] == "100" and payload["detail"][0]["label"] == "100"


def test_a_zero_valued_field_is_signed_as_wechat_signs_it(sandbox_app, wechat_sandbox):
    """The sandbox signs every non-empty value, "0" included, as WeChat does; wechatpy's own signature
    skips falsy values, so the gateway sends values as text and they are signed alike."""
    billno = new_billno()
    assert wechat.send_miniprogram_hb(billno, "oZero", 150, "隐患随手拍", "r", "w").ok
    result = wechat._pay_call("mmpaymkttransfers/gethbinfo", {"mch_billno": billno, "bill_type": "MCHT",
                                                              "appid": samples.APPID, "detail_flag": 0})
    assert result.outcome is PayOutcome.SUCCESS and result.raw["status"] == "SENT"


def test_the_sandbox_send_reply_has_the_official_success_shape(sandbox_app, wechat_sandbox):
    result = wechat.send_miniprogram_hb(new_billno(), "oShape", 150, "隐患随手拍", "r", "w")
    assert result.ok and result.raw["err_code"] == "0" and "sign" not in result.raw
