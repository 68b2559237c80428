"""GCJ-02 ⇄ WGS-84 and distances, against published reference vectors and by round trip."""
import math

import pytest
from hypothesis import given, settings, strategies as st

from app.geo.coords import gcj02_to_wgs84, haversine_m, out_of_china, to_wgs84, wgs84_to_gcj02

# Public test vectors of the reference implementation (googollee/eviltransform): (wgs, gcj).
REFERENCE = [
    ((31.1774276, 121.5272106), (31.17530398364597, 121.531541859215)),  # Shanghai
    ((22.543847, 113.912316), (22.540796131694766, 113.9171764808363)),  # Shenzhen, next to Dongguan
    ((39.911954, 116.377817), (39.91334545536069, 116.38404722455657)),  # Beijing
]
DONGGUAN_CITY_HALL_WGS = (23.0207, 113.7518)  # 东莞市人民政府, approximately


@pytest.mark.parametrize("wgs,gcj", REFERENCE)
def test_forward_matches_the_reference_vectors(wgs, gcj):
    lat, lng = wgs84_to_gcj02(*wgs)
    assert lat == pytest.approx(gcj[0], abs=1e-9)
    assert lng == pytest.approx(gcj[1], abs=1e-9)


@pytest.mark.parametrize("wgs,gcj", REFERENCE)
def test_inverse_recovers_wgs84_within_half_a_metre(wgs, gcj):
    back = gcj02_to_wgs84(*gcj)
    assert haversine_m(back, wgs) < 0.5
    assert back == pytest.approx(wgs, abs=1e-8)  # in fact far better than 0.5 m (1e-8° ≈ 1 mm)


def test_dongguan_offset_is_the_known_few_hundred_metres_and_inverts():
    gcj = wgs84_to_gcj02(*DONGGUAN_CITY_HALL_WGS)
    shift = haversine_m(DONGGUAN_CITY_HALL_WGS, gcj)
    assert 400 < shift < 800  # the GCJ-02 shift in the Pearl River Delta is ~500–650 m
    assert gcj[1] > DONGGUAN_CITY_HALL_WGS[1]  # east there
    assert haversine_m(gcj02_to_wgs84(*gcj), DONGGUAN_CITY_HALL_WGS) < 0.01


@pytest.mark.parametrize("point", [(39.7392, -104.9903), (-27.4698, 153.0251), (35.6812, 139.7671),
                                   (51.5074, -0.1278), (0.5, 110.0)])
def test_points_outside_china_are_unchanged(point):
    assert out_of_china(*point)
    assert wgs84_to_gcj02(*point) == point
    assert gcj02_to_wgs84(*point) == point
    assert to_wgs84(*point, "gcj02") == point


china_lat = st.floats(min_value=18.0, max_value=53.0)
china_lng = st.floats(min_value=74.0, max_value=134.0)


@settings(max_examples=300, deadline=None)
@given(china_lat, china_lng)
def test_round_trip_wgs_gcj_wgs_is_below_half_a_metre(lat, lng):
    back = gcj02_to_wgs84(*wgs84_to_gcj02(lat, lng))
    assert haversine_m(back, (lat, lng)) < 0.5


@settings(max_examples=300, deadline=None)
@given(china_lat, china_lng)
def test_round_trip_gcj_wgs_gcj_is_below_half_a_metre(lat, lng):
    again = wgs84_to_gcj02(*gcj02_to_wgs84(lat, lng))
    assert haversine_m(again, (lat, lng)) < 0.5


def test_to_wgs84_defaults_to_gcj02_and_rejects_unknown_systems():
    gcj = REFERENCE[1][1]
    assert to_wgs84(*gcj) == gcj02_to_wgs84(*gcj)
    assert to_wgs84(*gcj, "GCJ02") == gcj02_to_wgs84(*gcj)
    assert to_wgs84(22.5, 113.9, "wgs84") == (22.5, 113.9)
    with pytest.raises(ValueError, match="bd09"):
        to_wgs84(22.5, 113.9, "bd09")


def test_haversine_known_distances():
    assert haversine_m((23.0, 113.7), (23.0, 113.7)) == 0
    one_degree_lat = haversine_m((23.0, 113.7), (24.0, 113.7))
    assert one_degree_lat == pytest.approx(math.pi * 6371008.8 / 180, rel=1e-9)
    a, b = REFERENCE[0][1], REFERENCE[2][1]  # Shanghai → Beijing
    # eviltransform's own test says 1,078,164 m ±1 on a sphere of radius 6,378,137 m; we use the mean radius
    assert haversine_m(a, b) * 6378137 / 6371008.8 == pytest.approx(1_078_164, abs=1)
    assert haversine_m(a, b) == haversine_m(b, a)
