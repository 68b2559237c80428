"""Login (jscode2session) and the shared access token, against the sandbox over HTTP."""
import threading

import pytest

from app.extensions import redis, wechat
from app.wechat import WeChatCodeInvalid, WeChatRateLimited, WeChatUnavailable


def test_login_returns_identity_and_keeps_session_key_out_of_repr(sandbox_app, wechat_sandbox):
    result = wechat.code_to_session(wechat_sandbox.login_code("oResident1"))

    assert result.openid == "oResident1"
    assert result.unionid and result.unionid.startswith("oU")
    assert result.session_key and result.session_key not in repr(result)
    sealed = wechat.seal_session_key(result.session_key)
    assert result.session_key not in sealed
    assert wechat.unseal_session_key(sealed) == result.session_key


def test_login_needs_no_access_token(sandbox_app, wechat_sandbox):
    wechat.code_to_session(wechat_sandbox.login_code("oResident1"))

    assert wechat_sandbox.stats()["token_fetches"] == 0


def test_code_is_one_time(sandbox_app, wechat_sandbox):
    code = wechat_sandbox.login_code("oResident1")
    wechat.code_to_session(code)

    with pytest.raises(WeChatCodeInvalid) as info:
        wechat.code_to_session(code)
    assert info.value.status == 401 and info.value.code == "wechat_code_invalid"


def test_sbx_codes_work_once_each(sandbox_app, wechat_sandbox):
    assert wechat.code_to_session("sbx:oShortcut").openid == "oShortcut"
    with pytest.raises(WeChatCodeInvalid):
        wechat.code_to_session("sbx:oShortcut")


@pytest.mark.parametrize("code", ["never-issued", "", "x" * 200])
def test_unknown_or_malformed_code_is_invalid(sandbox_app, wechat_sandbox, code):
    with pytest.raises(WeChatCodeInvalid):
        wechat.code_to_session(code)


@pytest.mark.parametrize("mode, error, status", [
    ("FREQ_LIMIT", WeChatRateLimited, 429),
    ("SYSTEMERROR", WeChatUnavailable, 503),
    ("http_500", WeChatUnavailable, 503),
    ("not_xml", WeChatUnavailable, 503),
    ("timeout", WeChatUnavailable, 503),
])
def test_login_faults_map_to_domain_errors(sandbox_app, wechat_sandbox, mode, error, status):
    code = wechat_sandbox.login_code("oResident1")
    wechat_sandbox.fault("jscode2session", mode)

    with pytest.raises(error) as info:
        wechat.code_to_session(code)
    assert info.value.status == status
    # the code was not consumed by the failed call: the resident's retry works
    assert wechat.code_to_session(code).openid == "oResident1"


def test_wrong_secret_is_unavailable_not_a_bad_code(make_app, sandbox_config, wechat_sandbox, db):
    app = make_app(**{**sandbox_config, "WECHAT_SECRET": "wrong"})
    with app.app_context(), pytest.raises(WeChatUnavailable):
        wechat.code_to_session(wechat_sandbox.login_code("oResident1"))


def test_token_is_fetched_from_configured_base_and_cached_in_redis(sandbox_app, wechat_sandbox):
    first = wechat.access_token()
    second = wechat.access_token()

    assert first == second and first.startswith("sbxtoken_")
    assert wechat_sandbox.stats()["token_fetches"] == 1
    assert redis.conn.ttl(f"wechat:access_token:{sandbox_app.config['WECHAT_APPID']}") > 7000


def test_token_is_shared_between_processes(make_app, sandbox_config, sandbox_app, wechat_sandbox):
    token = wechat.access_token()
    other = make_app(**sandbox_config)  # another process: own clients, same Redis
    with other.app_context():
        assert wechat.access_token() == token
    assert wechat_sandbox.stats()["token_fetches"] == 1


def test_concurrent_refresh_fetches_once(make_app, sandbox_config, sandbox_app, wechat_sandbox):
    apps = [make_app(**sandbox_config) for _ in range(4)]
    tokens, errors = [], []

    def worker(app):
        try:
            with app.app_context():
                tokens.append(wechat.access_token())
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(a,)) for a in apps for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert not errors
    assert len(set(tokens)) == 1 and len(tokens) == 12
    assert wechat_sandbox.stats()["token_fetches"] == 1


def test_token_refreshed_before_expiry(sandbox_app, wechat_sandbox):
    import json
    import time

    first = wechat.access_token()
    key = f"wechat:access_token:{sandbox_app.config['WECHAT_APPID']}"
    entry = json.loads(redis.conn.get(key))
    entry["expires_at"] = time.time() + 120  # inside the refresh margin: the next caller refreshes
    redis.conn.set(key, json.dumps(entry))

    assert wechat.access_token() != first
    assert wechat_sandbox.stats()["token_fetches"] == 2


def test_expired_token_is_replaced_once_and_the_call_retried(sandbox_app, wechat_sandbox):
    wechat.access_token()
    wechat_sandbox.advance(3)  # WeChat now answers 42001 for the cached token

    verdict = wechat.check_text("路灯坏了", "oResident1")

    assert verdict.suggest == "pass"
    assert wechat_sandbox.stats()["token_fetches"] == 2


def test_token_endpoint_down_is_unavailable(sandbox_app, wechat_sandbox):
    wechat_sandbox.fault("token", "http_500")
    with pytest.raises(WeChatUnavailable):
        wechat.access_token()
    assert wechat.access_token().startswith("sbxtoken_")

