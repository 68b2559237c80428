"""Hypothesis stateful test: approvals, sends, WeChat faults, duplicate deliveries, claims, the clock,
the sweeper, lost Redis jobs and period closing interleaved at random against the real sandbox; after
every step the ledger invariants hold and WeChat's packet list agrees with the ledger."""
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from app.extensions import db, redis
from app.models.base import utcnow
from rewards import payouts
from rewards.models import Payout
from rewards.sweeper import sweep_payouts
from tests.conftest import clean_tables
from tests.rewards.helpers import approve, assert_books_hold, assert_sandbox_matches_ledger, fund, make_resident, make_tip

FAULTS = ["SYSTEMERROR", "FREQ_LIMIT", "NOTENOUGH", "http_500", "not_xml", "bad_sign"]


def _ids(*statuses):
    db.session.rollback()
    return [p for (p,) in db.session.query(Payout.id).filter(Payout.status.in_(statuses)).order_by(Payout.id)]


class MoneyMachine(RuleBasedStateMachine):
    sandbox = None

    @initialize(budget=st.integers(500, 20_000))
    def setup(self, budget):
        db.session.remove()
        clean_tables(db)
        redis.conn.flushdb()
        self.sandbox.reset()
        fund(budget)
        self.residents = [make_resident().id for _ in range(3)]
        db.session.commit()

    @rule(who=st.integers(0, 2), severity=st.integers(1, 3), hazard=st.none() | st.integers(1, 3))
    def approve_tip(self, who, severity, hazard):
        from app.models.resident import Resident

        resident = db.session.get(Resident, self.residents[who])
        approve(make_tip(resident, hazard_id=hazard), severity=severity)

    @rule(pick=st.integers(0, 50), twice=st.booleans())
    def deliver(self, pick, twice):
        open_ids = _ids("reserved", "sending")
        if not open_ids:
            return
        pid = open_ids[pick % len(open_ids)]
        for _ in range(2 if twice else 1):
            try:
                payouts.send_payout(pid)
            except payouts.PayoutPending:
                pass

    @rule(mode=st.sampled_from(FAULTS))
    def fault_next_send(self, mode):
        self.sandbox.fault("sendminiprogramhb", mode)

    @rule()
    def wechat_balance_recovers(self):
        self.sandbox.configure(balance_fen=10_000_000)

    @rule(pick=st.integers(0, 50))
    def resident_opens_packet(self, pick):
        sent = _ids("sent")
        if sent:
            self.sandbox.claim(db.session.get(Payout, sent[pick % len(sent)]).mch_billno)
            db.session.rollback()

    @rule(hours=st.sampled_from([1, 12, 23, 25]))
    def time_passes(self, hours):
        self.sandbox.advance(hours)

    @rule(hours_ahead=st.sampled_from([0.1, 2, 30, 80]))
    def sweep(self, hours_ahead):
        sweep_payouts(now=utcnow() + timedelta(hours=hours_ahead))

    @rule()
    def redis_loses_everything(self):
        redis.conn.flushdb()

    @invariant()
    def books_hold(self):
        assert_books_hold()

    @invariant()
    def wechat_agrees(self):
        assert_sandbox_matches_ledger(self.sandbox)


@pytest.mark.slow
def test_money_invariants_under_random_interleavings(pay_app, wechat_sandbox):
    MoneyMachine.sandbox = wechat_sandbox
    run_state_machine_as_test(MoneyMachine, settings=settings(
        max_examples=6, stateful_step_count=14, deadline=None,
        suppress_health_check=list(HealthCheck)))
