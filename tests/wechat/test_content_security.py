"""Text content security (msg_sec_check v2) through wechatpy against the sandbox."""
import pytest

from app.extensions import wechat
from app.wechat import SCENE_COMMENT, SCENE_FORUM, TextVerdict, WeChatRateLimited, WeChatUnavailable

OPENID = "oResidentText1"


@pytest.mark.parametrize("text, suggest, label, label_name", [
    ("南城街道路灯坏了，晚上很黑", "pass", 100, "normal"),
    ("这里有人卖黑气【待审】", "review", 21000, "other"),
    ("【违规】内容", "risky", 20006, "illegal"),
])
def test_verdicts_with_label(sandbox_app, wechat_sandbox, text, suggest, label, label_name):
    verdict = wechat.check_text(text, OPENID)

    assert isinstance(verdict, TextVerdict)
    assert (verdict.suggest, verdict.label, verdict.label_name) == (suggest, label, label_name)
    assert verdict.trace_id and verdict.error is None
    [seen] = wechat_sandbox.control("GET", "text_checks")["items"]
    assert seen["trace_id"] == verdict.trace_id and seen["suggest"] == suggest


def test_openid_and_scene_reach_wechat(sandbox_app, wechat_sandbox):
    wechat.check_text("楼道堆放杂物", OPENID)
    wechat.check_text("评论一句", "oOther", scene=SCENE_COMMENT)

    first, second = wechat_sandbox.control("GET", "text_checks")["items"]
    assert (first["openid"], first["scene"], first["content"]) == (OPENID, SCENE_FORUM, "楼道堆放杂物")
    assert (second["openid"], second["scene"]) == ("oOther", SCENE_COMMENT)


def test_blank_text_passes_without_a_call(sandbox_app, wechat_sandbox):
    assert wechat.check_text("   ", OPENID).suggest == "pass"
    assert wechat_sandbox.control("GET", "text_checks")["items"] == []
    assert wechat_sandbox.stats()["token_fetches"] == 0


def test_invalid_scene_is_unavailable_not_pass(sandbox_app, wechat_sandbox):
    """WeChat refuses the request (40003): the caller must not read that as a pass."""
    with pytest.raises(WeChatUnavailable):
        wechat.check_text("路灯坏了", OPENID, scene=9)


def test_missing_openid_is_unavailable(sandbox_app, wechat_sandbox):
    with pytest.raises(WeChatUnavailable):
        wechat.check_text("路灯坏了", "")


@pytest.mark.parametrize("mode, error", [
    ("SYSTEMERROR", WeChatUnavailable),
    ("FREQ_LIMIT", WeChatRateLimited),
    ("http_500", WeChatUnavailable),
    ("not_xml", WeChatUnavailable),
    ("timeout", WeChatUnavailable),
])
def test_faults_raise_typed_errors_and_the_next_call_works(sandbox_app, wechat_sandbox, mode, error):
    wechat.access_token()  # so the fault hits msg_sec_check itself
    wechat_sandbox.fault("msg_sec_check", mode)

    with pytest.raises(error):
        wechat.check_text("【违规】内容", OPENID)
    assert wechat.check_text("【违规】内容", OPENID).suggest == "risky"

