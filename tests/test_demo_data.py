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
