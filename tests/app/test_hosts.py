"""HOST_COUNT (issue 18): with more than one host the app refuses the parts that live in one machine's
instance folder — SQLite, the embedded Redis, local photo storage — and says so at start."""
import pytest

from app import create_app
from app.config import ConfigError, load_config

SHARED = {"DATABASE_URL": "postgresql://rrp@db/rrp", "REDIS_URL": "redis://redis:6379/0",
          "MEDIA_STORAGE": "s3://photos/media?endpoint_url=http://s3:9000&region=us-east-1"}


def test_one_host_may_use_the_embedded_parts():
    cfg = load_config(env={})
    assert cfg["HOST_COUNT"] == 1 and cfg["HOST_NAME"]


def test_several_hosts_on_shared_services_start():
    cfg = load_config(env={**SHARED, "HOST_COUNT": "3", "HOST_NAME": "web-2"})
    assert (cfg["HOST_COUNT"], cfg["HOST_NAME"]) == (3, "web-2")


@pytest.mark.parametrize("missing, words", [
    ("DATABASE_URL", ("SQLite", "PostgreSQL")),
    ("REDIS_URL", ("内置 Redis", "embedded")),
    ("MEDIA_STORAGE", ("本机文件夹", "local folder")),
])
def test_several_hosts_refuse_each_embedded_part(missing, words):
    env = {k: v for k, v in SHARED.items() if k != missing}
    with pytest.raises(ConfigError) as refused:
        load_config(env={**env, "HOST_COUNT": "2"})
    message = str(refused.value)
    assert "HOST_COUNT=2" in message and "启动被拒绝" in message
    for word in words:
        assert word in message
    others = [k for k in SHARED if k != missing]
    assert not any(k in message for k in others), message  # only what is wrong is named


def test_all_problems_are_named_at_once():
    with pytest.raises(ConfigError) as refused:
        load_config(env={"HOST_COUNT": "2"})
    message = str(refused.value)
    assert "DATABASE_URL" in message and "REDIS_URL" in message and "MEDIA_STORAGE" in message


def test_a_host_count_under_one_is_refused():
    with pytest.raises(ConfigError, match="HOST_COUNT"):
        load_config(env={**SHARED, "HOST_COUNT": "0"})


def test_create_app_refuses_before_starting_anything(tmp_path):
    """The factory stops on the config, before an embedded Redis is started under the instance folder."""
    with pytest.raises(ConfigError, match="HOST_COUNT=2"):
        create_app({"HOST_COUNT": 2, "INSTANCE_PATH": str(tmp_path / "instance"), "MEDIA_STORAGE": str(tmp_path)})
    assert not (tmp_path / "instance").exists()
