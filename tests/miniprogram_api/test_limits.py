"""Rate limits per resident and per IP (Flask-Limiter on Redis): 429 with Retry-After."""
import pytest

from tests.miniprogram_api.conftest import Resident


@pytest.fixture
def limited_app(make_app, sandbox_config, reference_data, db):
    def _make(**limits):
        application = make_app(**sandbox_config, RATELIMIT_ENABLED=True, **limits)
        return application

    return _make


def _login(application, sandbox, openid, ip="10.0.0.1"):
    client = application.test_client()
    answer = client.post("/api/mp/v1/auth/login", json={"code": sandbox.login_code(openid)},
                         environ_base={"REMOTE_ADDR": ip})
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    return Resident(client, body["token"], body["resident"]["id"], openid)


def _get(resident, ip="10.0.0.1"):
    return resident.client.get("/api/mp/v1/tips", headers=resident.headers, environ_base={"REMOTE_ADDR": ip})


def test_per_resident_limit_is_per_resident(limited_app, wechat_sandbox):
    application = limited_app(MP_RATELIMIT_RESIDENT="3/minute")
    with application.app_context():
        alice = _login(application, wechat_sandbox, "o_alice")
        bob = _login(application, wechat_sandbox, "o_bob")
        codes = [_get(alice).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        limited = _get(alice)
        assert limited.get_json()["error"]["code"] == "rate_limited"
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        assert not limited.get_json()["error"]["message"].isascii()
        assert _get(bob).status_code == 200  # same IP, other resident: not limited


def test_per_ip_limit_covers_every_resident_behind_it(limited_app, wechat_sandbox):
    application = limited_app(MP_RATELIMIT_IP="4/minute")
    with application.app_context():
        alice = _login(application, wechat_sandbox, "o_alice", ip="10.0.0.2")
        bob = _login(application, wechat_sandbox, "o_bob", ip="10.0.0.2")
        codes = [_get(r, ip="10.0.0.2").status_code for r in (alice, bob, alice, bob, alice)]
        assert codes == [200, 200, 200, 200, 429]
        assert _get(alice, ip="10.0.0.3").status_code == 200  # another address


def test_login_is_limited_per_ip(limited_app, wechat_sandbox):
    application = limited_app(MP_RATELIMIT_LOGIN_IP="2/minute")
    with application.app_context():
        client = application.test_client()
        codes = [client.post("/api/mp/v1/auth/login", json={"code": "sbx:o_x"}).status_code for _ in range(3)]
        assert codes[2] == 429 and "Retry-After" in client.post("/api/mp/v1/auth/login", json={}).headers
