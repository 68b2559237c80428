"""The console's web maps: tile configuration (天地图 in production, vectors offline), the 导航 link in
高德's GCJ-02, and every coordinate shifted when the tiles are drawn in GCJ-02."""
from urllib.parse import parse_qs, urlsplit

import pytest

from app.config import TIANDITU_TILES, ConfigError, load_config
from app.geo.coords import haversine_m, wgs84_to_gcj02
from app.geo.webmap import amap_marker_url, tile_settings

PRODUCTION = {"APP_ENV": "production", "SECRET_KEY": "k" * 40, "DATABASE_URL": "postgresql://x/y",
              "REDIS_URL": "redis://x", "WECHAT_APPID": "wx1", "WECHAT_SECRET": "s", "WECHAT_MCH_ID": "1",
              "WECHAT_PAY_KEY": "p", "WECHAT_PUSH_TOKEN": "t", "WECHAT_PUSH_AES_KEY": "a" * 43,
              "METRICS_TOKEN": "m" * 32}
SHENZHEN_WGS, SHENZHEN_GCJ = (22.543847, 113.912316), (22.540796131694766, 113.9171764808363)


def test_development_and_tests_draw_vectors_without_tiles():
    config = load_config(env={})
    assert config["MAP_TILE_URL"] == "none"
    assert tile_settings(config) is None


def test_production_defaults_to_tianditu_streets_and_labels_with_the_key(monkeypatch):
    monkeypatch.setattr("app.config.refuse_weak_secret_key", lambda key: None)  # no scan of the project
    config = load_config(env={**PRODUCTION, "MAP_TILE_KEY": "tk-browser-123"})
    assert config["MAP_TILE_URL"] == TIANDITU_TILES
    tiles = tile_settings(config)
    assert [urlsplit(u).hostname for u in tiles["layers"]] == ["t{s}.tianditu.gov.cn"] * 2
    assert ["T=vec_w" in tiles["layers"][0], "T=cva_w" in tiles["layers"][1]] == [True, True]
    assert all(u.endswith("tk=tk-browser-123") and "{key}" not in u for u in tiles["layers"])
    assert tiles["subdomains"] == "01234567" and tiles["attribution"] == "© 天地图"


def test_production_without_a_key_says_so_instead_of_broken_tiles(monkeypatch):
    monkeypatch.setattr("app.config.refuse_weak_secret_key", lambda key: None)
    tiles = tile_settings(load_config(env=PRODUCTION))
    assert tiles["layers"] == [] and tiles["missing"] == "底图未配置（缺少地图服务密钥）"


def test_other_tiles_and_none_are_configurable(monkeypatch):
    monkeypatch.setattr("app.config.refuse_weak_secret_key", lambda key: None)
    config = load_config(env={"MAP_TILE_URL": "https://tiles.example.org/{z}/{x}/{y}.png", "MAP_TILE_SUBDOMAINS": "abc",
                              "MAP_TILE_COORD": "GCJ02"})
    assert config["MAP_TILE_COORD"] == "gcj02"
    assert tile_settings(config) == {"layers": ["https://tiles.example.org/{z}/{x}/{y}.png"], "subdomains": "abc",
                                     "attribution": "底图 © tiles.example.org"}
    assert tile_settings(load_config(env={**PRODUCTION, "MAP_TILE_URL": "none"})) is None
    with pytest.raises(ConfigError, match="MAP_TILE_COORD"):
        load_config(env={"MAP_TILE_COORD": "bd09"})


def test_the_navigation_link_gives_amap_gcj02_longitude_first():
    url = amap_marker_url(*SHENZHEN_WGS, "深圳湾 1 号")
    parts = urlsplit(url)
    assert (parts.scheme, parts.hostname, parts.path) == ("https", "uri.amap.com", "/marker")
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    lng, lat = map(float, query["position"].split(","))
    assert (lat, lng) == pytest.approx(SHENZHEN_GCJ, abs=1e-6)  # the reference vector, 6 decimals
    assert haversine_m((lat, lng), SHENZHEN_WGS) > 300  # not the WGS-84 numbers
    assert query["name"] == "深圳湾 1 号" and query["coordinate"] == "gaode" and query["callnative"] == "1"


def test_the_navigation_link_has_a_name_even_without_an_address():
    assert parse_qs(urlsplit(amap_marker_url(23.02, 113.75, "")).query)["name"] == ["隐患位置"]


def test_gcj02_tiles_get_every_point_and_outline_shifted(make_app):
    from app.geo.webmap import _payload

    feature = {"type": "Feature", "properties": {"label": "网格", "main": True},
               "geometry": {"type": "Polygon", "coordinates": [[[113.91, 22.54], [113.92, 22.54], [113.92, 22.55],
                                                                [113.91, 22.54]]]}}
    point = {"lat": SHENZHEN_WGS[0], "lng": SHENZHEN_WGS[1], "label": "p"}
    shifted = make_app(MAP_TILE_URL="https://tiles.example.org/{z}/{x}/{y}.png", MAP_TILE_COORD="gcj02")
    with shifted.app_context():
        data = _payload([feature], [point], focus="first")
    assert (data["points"][0]["lat"], data["points"][0]["lng"]) == pytest.approx(SHENZHEN_GCJ, abs=1e-9)
    lat, lng = wgs84_to_gcj02(22.54, 113.91)
    assert data["grids"][0]["geometry"]["coordinates"][0][0] == pytest.approx([lng, lat], abs=1e-12)
    with make_app().app_context():  # offline: nothing to line up with, the stored WGS-84 as it is
        plain = _payload([feature], [point], focus="first")
    assert plain["tiles"] is None and plain["points"][0]["lat"] == SHENZHEN_WGS[0]
    assert plain["grids"][0]["geometry"]["coordinates"][0][0] == [113.91, 22.54]
