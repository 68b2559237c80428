"""The reward acceptance step: eligibility, every cap as one conditional UPDATE, not-granted reasons,
billno committed with the approval, outbox row; caps hold under concurrent approvals."""
import re
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.display import business_day, period_of
from app.extensions import db
from app.models.outbox import OutboxMessage
from rewards import ledger
from rewards.models import Payout, RewardCounter
from rewards.policy import save_policy
from tests.rewards.helpers import approve, assert_books_hold, fund, make_resident, make_tip


def test_approval_reserves_mints_billno_and_writes_outbox(rdb, app):
    fund(100_000)
    resident = make_resident()
    tip = make_tip(resident, "road_damage")
    reward = approve(tip, severity=2)

    assert reward["status"] == "reserved" and reward["amount_fen"] == 500  # catalogue: road_damage sev 2
    payout = db.session.get(Payout, reward["id"])
    day = business_day().strftime("%Y%m%d")
    assert re.fullmatch(rf"{app.config['WECHAT_MCH_ID']}{day}\d{{10}}", payout.mch_billno)
    assert payout.mch_billno.endswith(f"{payout.id:010d}")
    [message] = db.session.query(OutboxMessage).filter_by(topic="rewards.payout").all()
    assert message.payload == {"payout_id": payout.id} and message.dedup_key == f"payout:{payout.id}"
    assert ledger.budget_by_period()[period_of()] == {"available": 99_500, "reserved": 500, "committed": 0}
    assert_books_hold()


def test_the_step_is_idempotent_per_tip(rdb):
    from rewards.grants import reserve_reward

    fund(100_000)
    tip = make_tip(make_resident())
    first = approve(tip)
    again = reserve_reward(tip, {"severity": 2})
    db.session.commit()
    assert again.id == first["id"]
    assert db.session.query(Payout).count() == 1
    assert_books_hold()


def test_no_reward_list(rdb):
    fund(100_000)
    reward = approve(make_tip(make_resident(no_reward=True, no_reward_reason="grid_worker")))
    assert (reward["status"], reward["reason"]) == ("not_granted", "no_reward_list")
    assert reward["reason_label"] == "该报料人不参与奖励"
    assert ledger.budget_by_period()[period_of()]["reserved"] == 0
    assert db.session.query(OutboxMessage).count() == 0
    assert_books_hold()


def test_first_reporter_of_a_hazard_only_and_same_reporter_once(rdb):
    fund(100_000)
    first, second = make_resident(), make_resident()
    assert approve(make_tip(first, hazard_id=77))["status"] == "reserved"
    assert approve(make_tip(second, hazard_id=77))["reason"] == "not_first_reporter"
    assert approve(make_tip(first, hazard_id=77))["reason"] == "already_rewarded"
    assert approve(make_tip(second, hazard_id=78))["status"] == "reserved"
    assert_books_hold()


def test_same_reporter_once_even_when_every_reporter_is_rewarded(rdb):
    save_policy({"first_reporter_only": False}, created_by=None, approved_by=None)
    fund(100_000)
    a, b = make_resident(), make_resident()
    assert approve(make_tip(a, hazard_id=5))["status"] == "reserved"
    assert approve(make_tip(b, hazard_id=5))["status"] == "reserved"
    assert approve(make_tip(a, hazard_id=5))["reason"] == "already_rewarded"


@pytest.mark.parametrize("policy, amounts, reason", [
    ({"resident_day_count": 2}, [1, 1, 1], "resident_day_cap"),
    ({"resident_day_fen": 1000}, [2, 2, 2], "resident_day_cap"),       # 500 + 500, then 500 more is over
    ({"resident_month_count": 1}, [1, 1], "resident_month_cap"),
    ({"program_day_fen": 700}, [2, 1, 1], "program_day_cap"),           # 500 + 200, then 200 more is over
])
def test_each_cap_refuses_the_packet_that_would_break_it(rdb, policy, amounts, reason):
    save_policy(policy, created_by=None, approved_by=None)
    fund(100_000)
    resident = make_resident()
    results = [approve(make_tip(resident), severity=s) for s in amounts]
    assert [r["status"] for r in results[:-1]] == ["reserved"] * (len(amounts) - 1)
    assert (results[-1]["status"], results[-1]["reason"]) == ("not_granted", reason)
    # nothing of the refused packet stayed on any counter
    counters = {c.scope: c for c in db.session.query(RewardCounter).all()}
    granted = sum(r["amount_fen"] for r in results[:-1])
    assert counters["resident_day"].amount_fen == granted
    assert counters["program_day"].amount_fen == granted
    assert counters["resident_day"].count == len(amounts) - 1
    assert_books_hold()


def test_month_budget_runs_out_exactly(rdb):
    fund(1200)  # room for two 500-fen packets, not three
    results = [approve(make_tip(make_resident()), severity=2) for _ in range(3)]
    assert [r["status"] for r in results] == ["reserved", "reserved", "not_granted"]
    assert results[2]["reason"] == "program_month_cap"
    assert ledger.budget_by_period()[period_of()] == {"available": 200, "reserved": 1000, "committed": 0}
    counters = {c.scope: c.amount_fen for c in db.session.query(RewardCounter).all()}
    assert counters["program_day"] == 1000  # the refused packet's day counter was handed back
    assert_books_hold()


def test_unfunded_period_grants_nothing(rdb):
    assert approve(make_tip(make_resident()))["reason"] == "program_month_cap"
    assert_books_hold()


def test_policy_amount_override_and_unknown_category(rdb):
    save_policy({"category_amounts": {"road_damage": {"2": 888}}}, created_by=None, approved_by=None)
    fund(100_000)
    assert approve(make_tip(make_resident()), severity=2)["amount_fen"] == 888
    assert approve(make_tip(make_resident(), category="no_such_category"))["reason"] == "no_amount"


@pytest.mark.parametrize("bad", [{"resident_day_count": 11}, {"resident_day_fen": 100001}, {"trigger": "later"},
                                 {"category_amounts": {"x": {"1": 50}}}, {"category_amounts": {"x": {"1": 20001}}},
                                 {"unknown": 1}])
def test_policy_never_goes_beyond_wechat_limits(rdb, bad):
    from app.errors import Unprocessable

    with pytest.raises(Unprocessable):
        save_policy(bad, created_by=None, approved_by=None)


def test_verification_policy_waits_for_the_hazard(rdb):
    from types import SimpleNamespace

    from rewards.grants import on_hazard_transition

    save_policy({"trigger": "verification"}, created_by=None, approved_by=None)
    fund(100_000)
    reward = approve(make_tip(make_resident(), hazard_id=9))
    assert reward["status"] == "awaiting_verification"
    assert db.session.query(OutboxMessage).count() == 0
    on_hazard_transition(SimpleNamespace(id=9), "handling", "resolved")
    on_hazard_transition(SimpleNamespace(id=9), "resolved", "verified")
    db.session.commit()
    payout = db.session.get(Payout, reward["id"])
    assert payout.status == "reserved" and payout.mch_billno
    assert db.session.query(OutboxMessage).count() == 1
    assert_books_hold()


def _approve_in_thread(app, tip_id, results, barrier):
    from app.models.tip import Tip

    with app.app_context():
        try:
            barrier.wait(timeout=10)
            tip = db.session.get(Tip, tip_id)
            results.append(approve(tip, severity=2)["status"])
        except Exception as exc:  # surfaced by the assertion below
            results.append(repr(exc))
        finally:
            db.session.remove()


def test_concurrent_approvals_never_overspend(rdb, app):
    """Twelve approvals at once against a month budget with room for five: exactly five granted."""
    fund(2500)
    tip_ids = [make_tip(make_resident()).id for _ in range(12)]
    db.session.commit()
    results, barrier = [], threading.Barrier(len(tip_ids))
    threads = [threading.Thread(target=_approve_in_thread, args=(app, t, results, barrier)) for t in tip_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == ["not_granted"] * 7 + ["reserved"] * 5, results
    db.session.rollback()
    assert ledger.budget_by_period()[period_of()] == {"available": 0, "reserved": 2500, "committed": 0}
    assert_books_hold()


def test_concurrent_approvals_of_one_resident_respect_the_day_count(rdb, app):
    save_policy({"resident_day_count": 3}, created_by=None, approved_by=None)
    fund(100_000)
    resident = make_resident()
    tip_ids = [make_tip(resident).id for _ in range(8)]
    db.session.commit()
    results, barrier = [], threading.Barrier(len(tip_ids))
    threads = [threading.Thread(target=_approve_in_thread, args=(app, t, results, barrier)) for t in tip_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == ["not_granted"] * 5 + ["reserved"] * 3, results
    db.session.rollback()
    counter = db.session.execute(select(RewardCounter).filter_by(scope="resident_day")).scalar_one()
    assert (counter.count, counter.amount_fen) == (3, 1500)
    assert_books_hold()


def test_two_moderators_approving_the_same_tip_at_once(rdb, app):
    """The tip's compare-and-set lets one approval through; even if both reached the step, the unique
    tip_id keeps it to one payout and the loser's transaction rolls back whole."""
    from sqlalchemy.exc import IntegrityError

    from app.models.tip import Tip
    from rewards.grants import reserve_reward

    fund(100_000)
    tip_id = make_tip(make_resident()).id
    db.session.commit()
    results, barrier = [], threading.Barrier(2)
    threads = [threading.Thread(target=_approve_in_thread, args=(app, tip_id, results, barrier)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results)[1] == "reserved" and "AssertionError" in sorted(results)[0], results
    db.session.rollback()
    assert db.session.query(Payout).count() == 1

    # both past the tip check (no CAS): the step itself still refuses a second payout
    second_id = make_tip(make_resident()).id
    db.session.commit()
    outcomes, barrier = [], threading.Barrier(2)

    def step_only():
        with app.app_context():
            try:
                barrier.wait(10)
                reserve_reward(db.session.get(Tip, second_id), {"severity": 2})
                db.session.commit()
                outcomes.append("ok")
            except IntegrityError:
                db.session.rollback()
                outcomes.append("refused")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=step_only) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    db.session.rollback()
    assert db.session.query(Payout).filter_by(tip_id=second_id).count() == 1
    assert "ok" in outcomes
    assert_books_hold()
