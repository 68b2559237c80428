"""Image checks: media_check_async v2 through wechatpy, the verdict pushed by the sandbox to /wechat/push.

End to end the sandbox signs (and in safe mode encrypts) exactly as WeChat does and POSTs to the app
served over HTTP; the direct tests post pushes built by the sandbox's own code through the test client.
"""
import threading
import time

import pytest
import requests

from app.config import SANDBOX_PUSH, SANDBOX_WECHAT
from app.extensions import db, wechat
from app.models.wechat import WeChatMediaCheck
from app.wechat import WeChatRateLimited, WeChatUnavailable, _record_media_check, get_media_check
from app.wechat_sandbox.push import build_push, event_payload
from tests.wechat.conftest import new_aes_key

OPENID = "oResidentPhoto1"
PHOTO = "https://media.example.test/p/1.jpg"


def wait_for_verdict(trace_id, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.session.rollback()  # a fresh snapshot
        result = get_media_check(trace_id)
        db.session.rollback()  # and no transaction (on SQLite: no write lock) held while the push writes
        if result is not None and result.status != "pending":
            return result
        time.sleep(0.05)
    raise AssertionError(f"no verdict for {trace_id} within {timeout}s")


def wait_for_push_status(wechat_sandbox, timeout=10.0):
    """The sandbox records the delivery after our endpoint answered it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        statuses = [m["push_status"] for m in wechat_sandbox.media_checks()]
        if statuses and all(statuses):
            return statuses
        time.sleep(0.05)
    raise AssertionError("the sandbox did not record its push")


def push_cfg(**overrides):
    return {**SANDBOX_WECHAT, **SANDBOX_PUSH, "WECHAT_PUSH_FORMAT": "json", **overrides}


def event(trace_id, suggest="pass", label=100, openid=OPENID):
    return event_payload(push_cfg(), {"openid": openid, "trace_id": trace_id, "suggest": suggest, "label": label},
                         int(time.time()))


def post_push(client, payload, cfg=None, params=None, body=None):
    built_params, built_body, content_type = build_push(cfg or push_cfg(), payload)
    return client.post("/wechat/push", query_string={**built_params, **(params or {})},
                       data=built_body if body is None else body, content_type=content_type)


def rows():
    """The stored rows, detached, with no transaction left open (SQLite: the push must be able to write)."""
    db.session.rollback()
    found = db.session.execute(db.select(WeChatMediaCheck).order_by(WeChatMediaCheck.id)).scalars().all()
    db.session.expunge_all()
    db.session.rollback()
    return found


# --- end to end: gateway → sandbox → push over HTTP → our endpoint ----------------------------------
@pytest.mark.parametrize("url, suggest, label, label_name", [
    (PHOTO, "pass", 100, "normal"),
    ("https://media.example.test/review/2.jpg", "review", 21000, "other"),
    ("https://media.example.test/risky/3.jpg", "risky", 20002, "porn"),
])
def test_verdict_is_pushed_and_matched_by_trace_id(sandbox_app, wechat_sandbox, live_app, url, suggest, label,
                                                  label_name):
    live = live_app()
    wechat_sandbox.configure(push_url=live.push_url)

    trace_id = wechat.check_media_async(url, OPENID)
    pending = get_media_check(trace_id)  # our row is not committed yet: the push cannot have landed
    assert (pending.status, pending.suggest) == ("pending", None)
    db.session.commit()

    result = wait_for_verdict(trace_id)
    assert (result.status, result.suggest, result.label, result.label_name) == ("done", suggest, label, label_name)
    assert result.completed_at is not None
    assert wait_for_push_status(wechat_sandbox) == ["success"]
    [sent] = wechat_sandbox.media_checks()
    assert (sent["trace_id"], sent["media_url"]) == (trace_id, url)


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_encrypted_push_is_decrypted(sandbox_app, wechat_sandbox, live_app, fmt):
    key = new_aes_key()
    live = live_app(WECHAT_PUSH_AES_KEY=key)
    wechat_sandbox.configure(push_url=live.push_url, push_aes_key=key, push_format=fmt)

    trace_id = wechat.check_media_async("https://media.example.test/risky/9.jpg", OPENID)
    db.session.commit()

    result = wait_for_verdict(trace_id)
    assert (result.suggest, result.label) == ("risky", 20002)
    assert wait_for_push_status(wechat_sandbox) == ["success"]


def test_push_signed_with_another_token_is_refused(sandbox_app, wechat_sandbox, live_app):
    live = live_app()
    wechat_sandbox.configure(push_url=live.push_url, push_token="not-our-token")

    trace_id = wechat.check_media_async(PHOTO, OPENID)
    db.session.commit()
    assert wait_for_push_status(wechat_sandbox) == ["failed: HTTP 403"]
    db.session.rollback()
    assert get_media_check(trace_id).status == "pending"


def test_encrypted_push_without_our_aes_key_is_refused(sandbox_app, wechat_sandbox, live_app):
    live = live_app()  # plaintext mode on our side
    wechat_sandbox.configure(push_url=live.push_url, push_aes_key=new_aes_key())

    trace_id = wechat.check_media_async(PHOTO, OPENID)
    db.session.commit()
    assert wait_for_push_status(wechat_sandbox) == ["failed: HTTP 400"]
    db.session.rollback()
    assert get_media_check(trace_id).status == "pending"


def test_repush_of_a_delivered_verdict_changes_nothing(sandbox_app, wechat_sandbox, live_app):
    live = live_app()
    wechat_sandbox.configure(push_url=live.push_url)
    trace_id = wechat.check_media_async("https://media.example.test/review/4.jpg", OPENID)
    db.session.commit()
    first = wait_for_verdict(trace_id)

    again = wechat_sandbox.control("POST", f"media_checks/{trace_id}/push")

    assert again["push_status"] == "success"
    [row] = rows()
    assert (row.status, row.suggest, row.completed_at) == ("done", "review", first.completed_at)


def test_concurrent_duplicate_pushes_of_an_unknown_trace_make_one_row(sandbox_app, wechat_sandbox, live_app):
    """WeChat retries a push it thinks failed; copies may arrive together, even before our own insert."""
    live = live_app()
    params, body, content_type = build_push(push_cfg(), event("trace-dup-1", "risky", 20002))
    replies, barrier = [], threading.Barrier(6)

    def deliver():
        barrier.wait()
        replies.append(requests.post(live.push_url, params=params, data=body,
                                     headers={"Content-Type": content_type}, timeout=10))

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert [(r.status_code, r.text) for r in replies] == [(200, "success")] * 6
    [row] = rows()
    assert (row.trace_id, row.status, row.suggest) == ("trace-dup-1", "done", "risky")


@pytest.mark.parametrize("mode, error", [("SYSTEMERROR", WeChatUnavailable), ("FREQ_LIMIT", WeChatRateLimited),
                                         ("timeout", WeChatUnavailable), ("http_500", WeChatUnavailable)])
def test_submit_faults_raise_and_record_nothing(sandbox_app, wechat_sandbox, mode, error):
    wechat.access_token()
    wechat_sandbox.fault("media_check_async", mode)

    with pytest.raises(error):
        wechat.check_media_async(PHOTO, OPENID)
    assert rows() == []


def test_openid_and_scene_are_required_by_wechat(sandbox_app, wechat_sandbox):
    with pytest.raises(WeChatUnavailable):
        wechat.check_media_async(PHOTO, "")
    with pytest.raises(WeChatUnavailable):
        wechat.check_media_async(PHOTO, OPENID, scene=0)
    [sent] = [wechat.check_media_async(PHOTO, OPENID, scene=1)]
    assert wechat_sandbox.media_checks()[0]["trace_id"] == sent


# --- the endpoint directly --------------------------------------------------------------------------
def test_url_verification_echoes_with_a_good_signature_only(sandbox_app, wechat_sandbox):
    client = sandbox_app.test_client()
    params, _body, _type = build_push(push_cfg(), {})

    good = client.get("/wechat/push", query_string={**params, "echostr": "4975983"})
    bad = client.get("/wechat/push", query_string={**params, "signature": "0" * 40, "echostr": "4975983"})

    assert (good.status_code, good.get_data(as_text=True)) == (200, "4975983")
    assert bad.status_code == 403 and "4975983" not in bad.get_data(as_text=True)


@pytest.mark.parametrize("params", [
    {"signature": "0" * 40},
    {"timestamp": "1"},
    {"nonce": "other"},
])
def test_bad_signature_is_refused_and_nothing_recorded(sandbox_app, wechat_sandbox, params):
    reply = post_push(sandbox_app.test_client(), event("trace-forged"), params=params)

    assert reply.status_code == 403
    assert rows() == []


def test_unsigned_push_is_refused(sandbox_app, wechat_sandbox):
    _params, body, content_type = build_push(push_cfg(), event("trace-unsigned"))
    reply = sandbox_app.test_client().post("/wechat/push", data=body, content_type=content_type)
    assert reply.status_code == 403 and rows() == []


def test_push_refused_when_no_token_is_configured(make_app, sandbox_config, wechat_sandbox, db):
    app = make_app(**{**sandbox_config, "WECHAT_PUSH_TOKEN": ""})
    reply = post_push(app.test_client(), event("trace-x"))
    assert reply.status_code == 403 and rows() == []


def test_push_for_another_appid_is_refused(sandbox_app, wechat_sandbox):
    payload = {**event("trace-other-app"), "appid": "wxsomeoneelse"}
    reply = post_push(sandbox_app.test_client(), payload)
    assert reply.status_code == 403 and rows() == []


@pytest.mark.parametrize("body", [b"", b"not a message", b"{broken json", b"<xml><unclosed>"])
def test_malformed_body_is_400(sandbox_app, wechat_sandbox, body):
    reply = post_push(sandbox_app.test_client(), event("t"), body=body)
    assert reply.status_code == 400 and rows() == []


@pytest.mark.parametrize("body", [
    b"{" + b'"a":[' * 50_000 + b"]" * 50_000 + b"}",  # RecursionError in json.loads
    b'{"Event": "wxa_media_check", "trace_id": "\\ud800"}',  # a lone surrogate
    b'{"Event": "wxa_media_check", "trace_id": ' + b"9" * 5000 + b"}",  # past int()'s digit limit
    b'{"Event": "wxa_media_check", "trace_id": NaN}',
    b'{"Event": "wxa_media_check", "trace_id": "t\xff"}',  # not UTF-8
])
def test_hostile_json_body_is_the_one_400(sandbox_app, wechat_sandbox, body):
    """Through the project's one JSON loader (app/json_body.py): never a 500, never a row."""
    reply = post_push(sandbox_app.test_client(), event("t"), body=body)
    assert (reply.status_code, reply.get_data(as_text=True)) == (400, "invalid message")
    assert rows() == []


def test_xml_plaintext_push(sandbox_app, wechat_sandbox):
    reply = post_push(sandbox_app.test_client(), event("trace-xml", "review", 21000),
                      cfg=push_cfg(WECHAT_PUSH_FORMAT="xml"))
    assert (reply.status_code, reply.get_data(as_text=True)) == (200, "success")
    [row] = rows()
    assert (row.trace_id, row.status, row.suggest, row.label) == ("trace-xml", "done", "review", 21000)


def test_encrypted_push_with_tampered_cipher_or_signature_is_refused(make_app, sandbox_config, wechat_sandbox, db):
    key = new_aes_key()
    client = make_app(**{**sandbox_config, "WECHAT_PUSH_AES_KEY": key}).test_client()
    cfg = push_cfg(WECHAT_PUSH_AES_KEY=key)

    assert post_push(client, event("trace-enc-bad"), cfg=cfg, params={"msg_signature": "0" * 40}).status_code == 400
    other_key = push_cfg(WECHAT_PUSH_AES_KEY=new_aes_key())
    assert post_push(client, event("trace-enc-bad"), cfg=other_key).status_code == 400
    other_app = push_cfg(WECHAT_PUSH_AES_KEY=key, WECHAT_APPID="wxsomeoneelse")
    assert post_push(client, event("trace-enc-bad"), cfg=other_app).status_code == 400
    assert rows() == []
    ok = post_push(client, event("trace-enc-ok"), cfg=cfg)
    assert ok.status_code == 200 and [r.trace_id for r in rows()] == ["trace-enc-ok"]


def test_plaintext_push_refused_when_safe_mode_is_on(make_app, sandbox_config, wechat_sandbox, db):
    """With an AES key configured only encrypted pushes count: a plaintext one (signature right) is not
    from WeChat's safe-mode pipeline and is refused."""
    client = make_app(**{**sandbox_config, "WECHAT_PUSH_AES_KEY": new_aes_key()}).test_client()
    reply = post_push(client, event("trace-plain"))
    assert reply.status_code == 400 and rows() == []


def test_each_push_completes_only_its_own_trace(sandbox_app, wechat_sandbox):
    first = wechat.check_media_async(PHOTO, OPENID)
    second = wechat.check_media_async("https://media.example.test/p/2.jpg", OPENID)
    db.session.commit()
    # the sandbox's own pushes go nowhere (no push URL in this test); ours are posted by hand
    reply = post_push(sandbox_app.test_client(), event(second, "risky", 20002))

    assert reply.status_code == 200
    db.session.rollback()
    assert get_media_check(first).status == "pending"
    assert (get_media_check(second).status, get_media_check(second).suggest) == ("done", "risky")


def test_duplicate_push_keeps_the_first_verdict(sandbox_app, wechat_sandbox):
    client = sandbox_app.test_client()
    assert post_push(client, event("trace-twice", "pass", 100)).status_code == 200
    [row] = rows()
    completed = row.completed_at

    assert post_push(client, event("trace-twice", "pass", 100)).get_data(as_text=True) == "success"
    assert post_push(client, event("trace-twice", "risky", 20002)).status_code == 200

    [row] = rows()
    assert (row.status, row.suggest, row.label, row.completed_at) == ("done", "pass", 100, completed)


def test_push_before_our_own_insert_keeps_the_verdict(sandbox_app, wechat_sandbox):
    """The push can land before the caller's transaction commits the pending row."""
    assert post_push(sandbox_app.test_client(), event("trace-early", "review", 21000)).status_code == 200

    _record_media_check("trace-early", media_url=PHOTO)  # what check_media_async does after WeChat answers
    db.session.commit()

    [row] = rows()
    assert (row.status, row.suggest, row.media_url) == ("done", "review", PHOTO)


def test_failed_check_is_recorded_as_error(sandbox_app, wechat_sandbox):
    payload = {**event("trace-err"), "errcode": 87014, "errmsg": "risky content", "result": {}}
    assert post_push(sandbox_app.test_client(), payload).status_code == 200
    db.session.rollback()
    assert get_media_check("trace-err").status == "error"


def test_other_events_are_acknowledged_and_ignored(sandbox_app, wechat_sandbox):
    payload = {**event("trace-ignored"), "Event": "user_enter_tempsession"}
    reply = post_push(sandbox_app.test_client(), payload)
    assert (reply.status_code, reply.get_data(as_text=True)) == (200, "success")
    assert rows() == []


def test_push_is_not_subject_to_csrf(make_app, sandbox_config, wechat_sandbox, db):
    app = make_app(**{**sandbox_config, "WTF_CSRF_ENABLED": True})
    reply = post_push(app.test_client(), event("trace-csrf"))
    assert reply.status_code == 200 and [r.trace_id for r in rows()] == ["trace-csrf"]


# --- freshness and replay: a signed query string is good for one message, within 5 minutes --------------
def post_built(client, built, body=None):
    params, built_body, content_type = built
    return client.post("/wechat/push", query_string=params, data=built_body if body is None else body,
                       content_type=content_type)


@pytest.mark.parametrize("offset", [-10 ** 9, -301, 301])
def test_push_with_a_stale_or_future_timestamp_is_refused(sandbox_app, wechat_sandbox, offset):
    timestamp = 1000000000 if offset == -10 ** 9 else int(time.time()) + offset
    built = build_push(push_cfg(), event("trace-stale"), timestamp=timestamp)

    reply = post_built(sandbox_app.test_client(), built)

    assert (reply.status_code, reply.get_data(as_text=True)) == (403, "stale timestamp")
    assert rows() == []


def test_push_a_little_off_our_clock_is_accepted(sandbox_app, wechat_sandbox):
    built = build_push(push_cfg(), event("trace-skewed"), timestamp=int(time.time()) - 290)
    assert post_built(sandbox_app.test_client(), built).status_code == 200
    assert [r.trace_id for r in rows()] == ["trace-skewed"]


def test_url_verification_with_a_stale_timestamp_is_refused(sandbox_app, wechat_sandbox):
    params, _body, _type = build_push(push_cfg(), {}, timestamp=1000000000)
    reply = sandbox_app.test_client().get("/wechat/push", query_string={**params, "echostr": "4975983"})
    assert reply.status_code == 403 and "4975983" not in reply.get_data(as_text=True)


def test_used_signature_with_another_message_is_refused(sandbox_app, wechat_sandbox):
    """明文模式: the signature covers no body. A query string read from a log must not carry a forgery."""
    client = sandbox_app.test_client()
    wechat.check_media_async("https://media.example.test/p/victim.jpg", OPENID)  # a check still waiting
    db.session.commit()
    [pending] = rows()
    params, body, content_type = build_push(push_cfg(), event("trace-genuine", "pass", 100))
    assert post_built(client, (params, body, content_type)).status_code == 200

    forged = build_push(push_cfg(), event(pending.trace_id, "pass", 100))[1]
    reply = post_built(client, (params, body, content_type), body=forged)

    assert (reply.status_code, reply.get_data(as_text=True)) == (403, "replayed nonce")
    db.session.rollback()
    assert get_media_check(pending.trace_id).status == "pending"


def test_the_same_message_again_is_acknowledged_not_reprocessed(sandbox_app, wechat_sandbox):
    """WeChat resends a push it got no answer for, with the same query and body."""
    client = sandbox_app.test_client()
    built = build_push(push_cfg(), event("trace-resent", "review", 21000))
    assert post_built(client, built).status_code == 200
    [first] = rows()

    again = post_built(client, built)

    assert (again.status_code, again.get_data(as_text=True)) == (200, "success")
    [row] = rows()
    assert (row.status, row.suggest, row.completed_at) == ("done", "review", first.completed_at)


def test_a_push_that_failed_is_handled_when_wechat_retries_it(sandbox_app, wechat_sandbox, monkeypatch):
    import app.wechat.push as gateway

    built = build_push(push_cfg(), event("trace-retried", "risky", 20002))
    real = gateway._record_media_check

    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(gateway, "_record_media_check", broken)
    with pytest.raises(RuntimeError):
        post_built(sandbox_app.test_client(), built)
    db.session.rollback()
    monkeypatch.setattr(gateway, "_record_media_check", real)

    retry = post_built(sandbox_app.test_client(), built)

    assert (retry.status_code, retry.get_data(as_text=True)) == (200, "success")
    [row] = rows()
    assert (row.trace_id, row.status, row.suggest) == ("trace-retried", "done", "risky")


def test_nonces_are_remembered_only_for_the_timestamp_window(sandbox_app, wechat_sandbox, redis_conn):
    from app.wechat import PUSH_MAX_SKEW

    assert post_built(sandbox_app.test_client(), build_push(push_cfg(), event("trace-ttl"))).status_code == 200
    [key] = redis_conn.keys("wechat:push:nonce:*")
    assert 2 * PUSH_MAX_SKEW - 5 <= redis_conn.ttl(key) <= 2 * PUSH_MAX_SKEW
