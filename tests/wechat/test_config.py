"""The gateway's production settings fail fast."""
import secrets

import pytest

from app.config import ConfigError, SANDBOX_PUSH, load_config
from tests.wechat.conftest import new_aes_key

PRODUCTION = {"SECRET_KEY": secrets.token_urlsafe(48), "DATABASE_URL": "postgresql://u@h/d", "REDIS_URL": "redis://h:6379/0",
              "WECHAT_APPID": "wxreal", "WECHAT_SECRET": "sec", "WECHAT_MCH_ID": "1234567890",
              "WECHAT_PAY_KEY": "k" * 32, "WECHAT_PUSH_TOKEN": "pushtoken", "WECHAT_PUSH_AES_KEY": new_aes_key(),
              "METRICS_TOKEN": secrets.token_urlsafe(32)}


def test_production_refuses_to_start_without_the_push_token():
    env = {k: v for k, v in PRODUCTION.items() if k != "WECHAT_PUSH_TOKEN"}
    with pytest.raises(ConfigError) as info:
        load_config({"APP_ENV": "production"}, env=env)
    assert "WECHAT_PUSH_TOKEN" in str(info.value)


def test_production_refuses_plaintext_push_mode():
    """明文模式 signs no message: production wants 安全模式 (an EncodingAESKey)."""
    for env in ({k: v for k, v in PRODUCTION.items() if k != "WECHAT_PUSH_AES_KEY"},
                {**PRODUCTION, "WECHAT_PUSH_AES_KEY": ""}):
        with pytest.raises(ConfigError, match="WECHAT_PUSH_AES_KEY"):
            load_config({"APP_ENV": "production"}, env=env)
    assert load_config({"APP_ENV": "development"}, env={})["WECHAT_PUSH_AES_KEY"] == ""  # the sandbox's mode


def test_production_never_inherits_the_sandbox_push_settings():
    cfg = load_config({"APP_ENV": "production"}, env=PRODUCTION)
    assert cfg["WECHAT_PUSH_TOKEN"] == "pushtoken" != SANDBOX_PUSH["WECHAT_PUSH_TOKEN"]
    assert cfg["WECHAT_PUSH_AES_KEY"] == PRODUCTION["WECHAT_PUSH_AES_KEY"] and cfg["WECHAT_PUSH_URL"] == ""
    assert cfg["WECHAT_SUBSCRIBE_TEMPLATES"] == {}


@pytest.mark.parametrize("app_env", ["production", "development"])
def test_malformed_aes_key_is_refused_at_start(app_env):
    with pytest.raises(ConfigError) as info:
        load_config({"APP_ENV": app_env}, env={**PRODUCTION, "WECHAT_PUSH_AES_KEY": "too-short"})
    assert "WECHAT_PUSH_AES_KEY" in str(info.value)


def test_well_formed_aes_key_turns_safe_mode_on():
    key = new_aes_key()
    cfg = load_config({"APP_ENV": "production"}, env={**PRODUCTION, "WECHAT_PUSH_AES_KEY": key})
    assert cfg["WECHAT_PUSH_AES_KEY"] == key
