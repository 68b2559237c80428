"""Approximate reference shapes for Dongguan (东莞), WGS-84, hand-drawn from public maps.

Good to a kilometre or two: enough to tell "in Dongguan" from "elsewhere" when no grid covers a
point, and to place the synthetic demo grids. NOT official boundaries; real grids come from
`flask --app wsgi grids import FILE.geojson`.
"""
from __future__ import annotations

from functools import lru_cache

import shapely
from shapely.geometry import Point, Polygon

BBOX = {"min_lat": 22.65, "max_lat": 23.15, "min_lng": 113.52, "max_lng": 114.25}

# (lng, lat), clockwise from the north-west: the Dongjiang in the north, Boluo/Huizhou in the east,
# Shenzhen in the south, the Pearl River (狮子洋) in the west.
OUTLINE = (
    (113.555, 23.125), (113.650, 23.140), (113.800, 23.140), (113.930, 23.150), (114.020, 23.130),
    (114.110, 23.065), (114.215, 23.010), (114.250, 22.930), (114.240, 22.840), (114.200, 22.760),
    (114.130, 22.655), (114.050, 22.695), (113.950, 22.715), (113.860, 22.735), (113.780, 22.725),
    (113.720, 22.765), (113.630, 22.770), (113.570, 22.860), (113.540, 22.960), (113.520, 23.050),
    (113.555, 23.125),
)

# The 33 towns and streets (镇街): code, name, approximate centre (lat, lng).
TOWNS = (
    ("guancheng", "莞城街道", 23.0440, 113.7510),
    ("dongcheng", "东城街道", 23.0160, 113.7860),
    ("nancheng", "南城街道", 23.0080, 113.7330),
    ("wanjiang", "万江街道", 23.0520, 113.7100),
    ("shilong", "石龙镇", 23.1100, 113.8520),
    ("shipai", "石排镇", 23.0880, 113.9370),
    ("chashan", "茶山镇", 23.0680, 113.8730),
    ("qishi", "企石镇", 23.0700, 114.0100),
    ("qiaotou", "桥头镇", 23.0220, 114.0880),
    ("dongkeng", "东坑镇", 22.9920, 113.9400),
    ("hengli", "横沥镇", 23.0260, 113.9700),
    ("changping", "常平镇", 22.9760, 114.0220),
    ("humen", "虎门镇", 22.8200, 113.6700),
    ("changan", "长安镇", 22.8150, 113.8030),
    ("shatian", "沙田镇", 22.9100, 113.6100),
    ("houjie", "厚街镇", 22.9400, 113.6750),
    ("liaobu", "寮步镇", 22.9950, 113.8630),
    ("dalingshan", "大岭山镇", 22.8900, 113.7750),
    ("dalang", "大朗镇", 22.9400, 113.9250),
    ("huangjiang", "黄江镇", 22.8800, 113.9950),
    ("zhangmutou", "樟木头镇", 22.9100, 114.0800),
    ("qingxi", "清溪镇", 22.8400, 114.1600),
    ("tangxia", "塘厦镇", 22.7950, 114.0800),
    ("fenggang", "凤岗镇", 22.7400, 114.1400),
    ("xiegang", "谢岗镇", 22.9600, 114.1500),
    ("machong", "麻涌镇", 23.0500, 113.5800),
    ("zhongtang", "中堂镇", 23.0950, 113.6500),
    ("wangniudun", "望牛墩镇", 23.0550, 113.6550),
    ("daojiao", "道滘镇", 22.9900, 113.6700),
    ("hongmei", "洪梅镇", 23.0000, 113.6100),
    ("gaobu", "高埗镇", 23.0800, 113.7300),
    ("shijie", "石碣镇", 23.1000, 113.8000),
    ("songshanhu", "松山湖", 22.9200, 113.8900),
)


@lru_cache(maxsize=1)
def outline_polygon() -> Polygon:
    polygon = Polygon(OUTLINE)
    shapely.prepare(polygon)
    return polygon


def in_outline(lat: float, lng: float) -> bool:
    return outline_polygon().intersects(Point(lng, lat))
