import base64
import secrets

import pytest

from app import create_app
from app.config import ConfigError, load_config, normalize_database_url


def test_production_refuses_to_start_without_secrets():
    with pytest.raises(ConfigError) as info:
        load_config({"APP_ENV": "production"}, env={})
    message = str(info.value)
    for name in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "WECHAT_APPID", "WECHAT_PAY_KEY"):
        assert name in message


def test_production_uses_real_wechat_and_no_sandbox_credentials():
    env = {"SECRET_KEY": secrets.token_urlsafe(48), "DATABASE_URL": "postgresql://u@h/d", "REDIS_URL": "redis://h:6379/0",
           "WECHAT_APPID": "wxreal", "WECHAT_SECRET": "sec", "WECHAT_MCH_ID": "123", "WECHAT_PAY_KEY": "k" * 32,
           "WECHAT_PUSH_TOKEN": "t", "METRICS_TOKEN": secrets.token_urlsafe(32),
           "WECHAT_PUSH_AES_KEY": base64.b64encode(secrets.token_bytes(32)).decode().rstrip("=")}
    cfg = load_config({"APP_ENV": "production"}, env=env)
    assert cfg["WECHAT_API_BASE"] == "https://api.weixin.qq.com/"
    assert cfg["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@h/d"
    assert cfg["SESSION_COOKIE_SECURE"] is True


def test_development_defaults_are_embedded(tmp_path):
    cfg = load_config({"INSTANCE_PATH": str(tmp_path)}, env={})
    assert cfg["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'renrenpai.db'}"
    assert cfg["REDIS_URL"] is None  # the factory starts the embedded Redis
    assert cfg["WECHAT_API_BASE"].startswith("http://127.0.0.1:")


@pytest.mark.parametrize("raw,expected", [
    ("postgres://a@b/c", "postgresql+psycopg://a@b/c"),
    ("postgresql://a@b/c", "postgresql+psycopg://a@b/c"),
    ("sqlite:///x.db", "sqlite:///x.db"),
])
def test_database_url_uses_psycopg3(raw, expected):
    assert normalize_database_url(raw) == expected


def test_factory_uses_overrides(make_app):
    app = make_app(TIPS_PER_RESIDENT_PER_DAY=3)
    assert app.config["TIPS_PER_RESIDENT_PER_DAY"] == 3
    assert app.config["TESTING"] is True


def test_embedded_redis_starts_for_a_fresh_instance(tmp_path):
    app = create_app({"APP_ENV": "testing", "INSTANCE_PATH": str(tmp_path),
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.db'}", "LOG_JSON": False,
                      "REDIS_URL": None,
                      # the limiter is one object per process: keep it off this short-lived Redis
                      "RATELIMIT_STORAGE_URI": "memory://"})
    try:
        assert app.config["REDIS_URL"] == f"unix://{tmp_path / 'redis.sock'}"
        with app.app_context():
            from app.extensions import redis

            assert redis.conn.ping()
    finally:
        from app.embedded import stop_embedded_redis

        stop_embedded_redis(tmp_path)


def test_routes_include_health(app):
    rules = {rule.rule for rule in app.url_map.iter_rules()}
    assert {"/healthz", "/readyz"} <= rules


def test_app_clock_starts_the_process_clock_at_the_given_moment(make_app):
    from datetime import datetime, timedelta, timezone

    from app.clock import set_clock
    from app.models.base import utcnow

    moment = datetime(2026, 12, 7, 3, 0, tzinfo=timezone.utc)
    try:
        make_app(APP_CLOCK=moment)
        assert abs(utcnow() - moment) < timedelta(seconds=5)
    finally:
        set_clock(None)


@pytest.mark.parametrize("value", ["2026-12-07T11:00:00", "tomorrow"])
def test_app_clock_wants_an_aware_iso_moment(value):
    with pytest.raises(ConfigError, match="APP_CLOCK"):
        load_config({}, env={"APP_CLOCK": value})


def test_production_refuses_app_clock():
    env = {"APP_CLOCK": "2026-12-07T11:00:00+08:00"}
    with pytest.raises(ConfigError, match="real time"):
        load_config({"APP_ENV": "production"}, env=env)


def _production_env(**extra):
    env = {"SECRET_KEY": secrets.token_urlsafe(48), "DATABASE_URL": "postgresql://u@h/d",
           "REDIS_URL": "redis://h:6379/0", "WECHAT_APPID": "wxreal", "WECHAT_SECRET": "sec", "WECHAT_MCH_ID": "123",
           "WECHAT_PAY_KEY": "k" * 32, "WECHAT_PUSH_TOKEN": "t",
           "WECHAT_PUSH_AES_KEY": base64.b64encode(secrets.token_bytes(32)).decode().rstrip("=")}
    return {**env, **extra}


def test_production_refuses_an_open_metrics_endpoint_unless_told():
    """/metrics is not public by default in production (issue 13): a token, or METRICS_PUBLIC=1 said aloud."""
    with pytest.raises(ConfigError, match="METRICS_TOKEN.*METRICS_PUBLIC=1"):
        load_config({"APP_ENV": "production"}, env=_production_env())
    with pytest.raises(ConfigError, match="METRICS_TOKEN"):
        load_config({"APP_ENV": "production"}, env=_production_env(METRICS_PUBLIC="0"))
    assert load_config({"APP_ENV": "production"}, env=_production_env(METRICS_TOKEN="scrape-secret"))["METRICS_TOKEN"]
    assert load_config({"APP_ENV": "production"}, env=_production_env(METRICS_PUBLIC="1"))["METRICS_PUBLIC"] is True


def test_development_keeps_metrics_open(tmp_path):
    cfg = load_config({"INSTANCE_PATH": str(tmp_path)}, env={})
    assert cfg["METRICS_TOKEN"] == "" and cfg["METRICS_PUBLIC"] is True
