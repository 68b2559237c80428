"""The finance summary's identities hold for every range: 已预留 = 已发出 + 待发出 + 发放失败,
已发出 = 已领取 + 已退回 + 在途, 期初在途 + 发出 − 领取 − 退回 = 期末在途 — over a random month of
rewards reserved, sent, claimed, refunded and failed on different days (the app's clock set to each
moment, the product's own transitions), and over random ranges of it."""
import random
from datetime import datetime, time, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.clock import clock_at
from app.extensions import db
from rewards import finance, payouts
from app.display import SHANGHAI, business_day as shanghai_day
from tests.rewards.helpers import approve, assert_books_hold, fund, make_resident, make_tip

DAYS = 20


def _at(day, hour):
    return datetime.combine(day, time(hour), SHANGHAI)


def _live_a_month(seed: int) -> tuple:
    """Rewards reserved each day; each then sent, claimed, refunded (24 h later), failed, or left."""
    rng = random.Random(seed)
    first = shanghai_day() - timedelta(days=DAYS)
    events = []   # (moment, function, payout id)
    for n in range(DAYS):
        day = first + timedelta(days=n)
        with clock_at(_at(day, 9)):
            fund(200_000)
            for _ in range(rng.randint(0, 4)):
                reward = approve(make_tip(make_resident()), severity=rng.choice((1, 2, 3)))
                fate = rng.choice(("claimed", "claimed", "refunded", "failed", "sent", "open"))
                sent = _at(day, 10 + rng.randint(0, 10))
                if fate == "failed":
                    events.append((sent, "failed", reward["id"]))
                elif fate != "open":
                    events.append((sent, "sent", reward["id"]))
                if fate == "claimed":
                    events.append((sent + timedelta(hours=rng.randint(1, 23)), "claimed", reward["id"]))
                elif fate == "refunded":
                    events.append((sent + timedelta(hours=24), "refunded", reward["id"]))
    for moment, kind, payout_id in sorted(events):
        if moment > datetime.now(SHANGHAI):
            continue
        with clock_at(moment):
            payouts.transition(payout_id, ("reserved",), "sending")
            db.session.commit()
            if kind == "sent":
                payouts.mark_sent(payout_id, at=moment)
            elif kind == "failed":
                payouts.mark_failed(payout_id, "SEND_FAILED")
            elif kind == "claimed":
                payouts.mark_claimed(payout_id, at=moment)
            else:
                payouts.mark_refunded(payout_id, at=moment)
    return first, shanghai_day()


@pytest.fixture
def month(rdb, request):
    first, last = _live_a_month(request.param)
    assert_books_hold()
    return first, last


def _check(start, end):
    body = finance.summary(start, end)
    assert [i["code"] for i in body["identities"]] == ["reserved", "sent", "flows"]
    for identity in body["identities"]:
        total = sum(t["sign"] * t["fen"] for t in identity["terms"])
        assert identity["holds"] and identity["left"][1] == total, identity
    return body


@pytest.mark.parametrize("month", [1, 2], indirect=True)
def test_identities_hold_for_every_range(month):
    first, last = month
    whole = _check(first, last)
    assert whole["reserved_fen"] > 0 and whole["sent_fen"] > 0
    assert whole["claimed_fen"] > 0 and whole["refunded_fen"] > 0 and whole["failed_fen"] > 0
    assert whole["flows"]["opening_in_flight_fen"] == 0

    span = (last - first).days

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.integers(0, span + 3), st.integers(0, span + 3))
    def any_range(a, b):
        start, end = sorted((first - timedelta(days=2) + timedelta(days=a), first - timedelta(days=2) + timedelta(days=b)))
        body = _check(start, end)
        # the days of a range add up to the range (money by the day it moved)
        for kind in ("sent", "claimed", "refunded"):
            assert sum(d[f"{kind}_fen"] for d in body["by_day"]) == body["flows"][f"{kind}_fen"]

    any_range()


@pytest.mark.parametrize("month", [3], indirect=True)
def test_adjacent_ranges_add_up(month):
    first, last = month
    middle = first + timedelta(days=(last - first).days // 2)
    left, right, whole = (finance.summary(first, middle), finance.summary(middle + timedelta(days=1), last),
                          finance.summary(first, last))
    for key in ("reserved_fen", "sent_fen", "pending_fen", "failed_fen", "claimed_fen", "refunded_fen", "in_flight_fen"):
        assert left[key] + right[key] == whole[key], key
    assert left["flows"]["closing_in_flight_fen"] == right["flows"]["opening_in_flight_fen"]


def test_a_broken_book_shows_as_not_holding(rdb):
    """The identity is a check, not arithmetic: a payout marked sent without its ledger entry breaks it."""
    fund(100_000)
    reward = approve(make_tip(make_resident()), severity=2)
    payouts.transition(reward["id"], ("reserved",), "sent")   # state moved, no money booked
    db.session.commit()
    body = finance.summary()
    reserved = next(i for i in body["identities"] if i["code"] == "reserved")
    assert not reserved["holds"]
