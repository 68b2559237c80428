"""The demo data: tips in every state, made through the APIs against the sandbox; loaded once."""
import pytest
from sqlalchemy import func, select

from app.demo import ensure_demo_staff
from app.demo_data import seed_demo_tips
from app.models.tip import TIP_STATUSES, Tip

pytestmark = pytest.mark.slow


def _counts(db, column):
    return dict(db.session.execute(select(column, func.count()).group_by(column)).all())


def test_demo_tips_cover_every_state_and_load_once(sandbox_app, reference_data, db, wechat_sandbox):
    from app.hazards.models import Hazard
    from rewards.models import Payout

    ensure_demo_staff()
    summary = seed_demo_tips()
    assert "tips" in summary

    tips = _counts(db, Tip.status)
    missing = {s for s in TIP_STATUSES if s not in ("received", "checking")} - set(tips)
    assert not missing, tips
    hazards = _counts(db, Hazard.status)
    for status in ("dispatched", "accepted", "handling", "resolved", "verified", "closed", "returned", "reopened"):
        assert hazards.get(status), hazards
    payouts = _counts(db, Payout.status)
    for status in ("sent", "claimed", "refunded"):
        assert payouts.get(status), payouts
    flagged = db.session.scalar(select(func.count()).select_from(Tip).where(Tip.flagged.is_(True)))
    assert flagged >= 1
    # every ticket has the address its resident gave, for the console's map caption
    no_address = db.session.scalar(select(func.count()).select_from(Hazard).where(
        func.coalesce(Hazard.address, "") == ""))
    assert no_address == 0 and db.session.scalar(select(func.count()).select_from(Tip).where(Tip.address.is_(None))) == 0

    total = sum(tips.values())
    assert "already loaded" in seed_demo_tips()
    assert db.session.scalar(select(func.count()).select_from(Tip)) == total


def test_demo_tips_on_the_transfer_channel(make_app, sandbox_config, reference_data, db, wechat_sandbox):
    """PAYOUT_CHANNEL=transfer: the same stories, paid by 商家转账 — some confirmed, some closed after
    24 h unconfirmed (cancelled, the budget back), the newest waiting for their residents."""
    from rewards.invariants import check_all
    from rewards.models import Payout

    app = make_app(**sandbox_config, PAYOUT_CHANNEL="transfer", WECHAT_TRANSFER_NOTIFY_URL="")
    with app.app_context():
        ensure_demo_staff()
        assert "tips" in seed_demo_tips()
        payouts = _counts(db, Payout.status)
        for status in ("waiting_confirm", "claimed", "cancelled"):
            assert payouts.get(status), payouts
        assert set(_counts(db, Payout.channel)) == {"transfer"}
        assert {b["state"] for b in wechat_sandbox.transfers()} == {"WAIT_USER_CONFIRM", "SUCCESS", "FAIL"}
        assert check_all() == {}
