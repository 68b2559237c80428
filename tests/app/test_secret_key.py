"""SECRET_KEY in production: at least 32 bytes and never a value published in the project; rotation
through SECRET_KEY_FALLBACKS keeps sessions, photo URLs and sealed values working."""
import base64
import secrets
from urllib.parse import urlparse

import pytest

from app.accounts import create_staff
from app.config import DEVELOPMENT_SECRET_KEY, MIN_SECRET_KEY_BYTES, ConfigError, load_config

# Printed here, so it is public: production must refuse it although it is long enough.
PUBLISHED_KEY = "a-key-that-anyone-can-read-in-tests-app-test-secret-key"
PRODUCTION = {"DATABASE_URL": "postgresql://u@h/d", "REDIS_URL": "redis://h:6379/0", "WECHAT_APPID": "wxreal",
              "WECHAT_SECRET": "sec", "WECHAT_MCH_ID": "1234567890", "WECHAT_PAY_KEY": "k" * 32,
              "WECHAT_PUSH_TOKEN": "pushtoken", "METRICS_TOKEN": secrets.token_urlsafe(32),
              "WECHAT_PUSH_AES_KEY": base64.b64encode(secrets.token_bytes(32)).decode().rstrip("=")}


def production(**env):
    return load_config({"APP_ENV": "production"}, env={**PRODUCTION, **env})


@pytest.mark.parametrize("key", ["x", "s" * (MIN_SECRET_KEY_BYTES - 1), DEVELOPMENT_SECRET_KEY])
def test_production_refuses_short_keys(key):
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        production(SECRET_KEY=key)


def test_production_refuses_a_key_published_in_the_project():
    assert len(PUBLISHED_KEY.encode()) >= MIN_SECRET_KEY_BYTES
    with pytest.raises(ConfigError, match="published in the project's tests/app/test_secret_key.py"):
        production(SECRET_KEY=PUBLISHED_KEY)


def test_production_refuses_the_sandbox_credentials():
    with pytest.raises(ConfigError, match="published"):
        production(SECRET_KEY="sandboxpaykey0000000000000000000")  # the sandbox's pay key: 32 bytes, public


def test_production_refuses_a_weak_fallback():
    with pytest.raises(ConfigError, match="SECRET_KEY_FALLBACKS"):
        production(SECRET_KEY=secrets.token_urlsafe(48), SECRET_KEY_FALLBACKS="short")
    with pytest.raises(ConfigError, match="published"):
        production(SECRET_KEY=secrets.token_urlsafe(48), SECRET_KEY_FALLBACKS=PUBLISHED_KEY)


def test_production_accepts_a_fresh_key_and_its_fallbacks():
    key, old, older = (secrets.token_urlsafe(48) for _ in range(3))
    cfg = production(SECRET_KEY=key, SECRET_KEY_FALLBACKS=f"{old}, {older}")
    assert cfg["SECRET_KEY"] == key and cfg["SECRET_KEY_FALLBACKS"] == [old, older]


def test_development_keeps_its_public_default():
    assert load_config({"APP_ENV": "development"}, env={})["SECRET_KEY"] == DEVELOPMENT_SECRET_KEY


# --- rotation -----------------------------------------------------------------------------------------
OLD, NEW = secrets.token_urlsafe(48), secrets.token_urlsafe(48)


def console_login(client):
    assert client.post("/console/login", data={"username": "rot", "password": "password-ok"}).status_code == 302


def signed_in(client) -> bool:
    return not client.get("/console/").headers.get("Location", "").startswith("/console/login")


def test_rotation_keeps_console_sessions_signed_with_the_retired_key(make_app, db):
    create_staff("rot", "password-ok", ["moderator"])
    db.session.commit()
    before = make_app(SECRET_KEY=OLD).test_client()
    console_login(before)
    cookie = before.get_cookie("session").value

    rotated = make_app(SECRET_KEY=NEW, SECRET_KEY_FALLBACKS=[OLD]).test_client()
    rotated.set_cookie("session", cookie)
    dropped = make_app(SECRET_KEY=NEW).test_client()
    dropped.set_cookie("session", cookie)

    assert signed_in(rotated) and not signed_in(dropped)


def test_rotation_keeps_photo_urls_already_handed_out(make_app, tmp_path, db):
    from app.media.storage import get_storage

    old_app = make_app(SECRET_KEY=OLD, MEDIA_STORAGE=str(tmp_path), PUBLIC_BASE_URL="")
    with old_app.test_request_context():
        get_storage().put("photos/r.jpg", b"\xff\xd8rotated", "image/jpeg")
        url = urlparse(get_storage().signed_url("photos/r.jpg", 600))
    path = f"{url.path}?{url.query}"

    rotated = make_app(SECRET_KEY=NEW, SECRET_KEY_FALLBACKS=[OLD], MEDIA_STORAGE=str(tmp_path))
    dropped = make_app(SECRET_KEY=NEW, MEDIA_STORAGE=str(tmp_path))

    assert rotated.test_client().get(path).data == b"\xff\xd8rotated"
    refused = dropped.test_client().get(path)
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "media_url_invalid"


def test_rotation_unseals_what_the_retired_key_sealed(make_app):
    from app.wechat import WeChatGateway

    with make_app(SECRET_KEY=OLD).app_context():
        sealed = WeChatGateway.seal_session_key("session-key-value")
    with make_app(SECRET_KEY=NEW, SECRET_KEY_FALLBACKS=[OLD]).app_context():
        assert WeChatGateway.unseal_session_key(sealed) == "session-key-value"
        resealed = WeChatGateway.seal_session_key("session-key-value")
    with make_app(SECRET_KEY=NEW).app_context():  # new values are sealed under the new key
        assert WeChatGateway.unseal_session_key(resealed) == "session-key-value"
