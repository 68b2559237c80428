"""The operator's view of payouts: stuck ones and manual review show on /metrics and alert."""
from datetime import timedelta

from sqlalchemy import update

from app.extensions import db
from app.models.base import utcnow
from app.ops import read_indicators
from rewards import payouts
from rewards.indicators import count_stuck_payouts
from rewards.models import Payout
from tests.rewards.helpers import approve, fund, make_resident, make_tip


def _reserved():
    reward = approve(make_tip(make_resident(None)), severity=2)
    db.session.commit()
    return reward["id"]


def test_a_fresh_reservation_is_not_stuck_an_old_one_is(pay_app, wechat_sandbox):
    fund()
    fresh, old = _reserved(), _reserved()
    assert count_stuck_payouts() == {"reserved": 0, "sending": 0, "sent": 0, "waiting_confirm": 0, "manual_review": 0}
    db.session.execute(update(Payout).where(Payout.id == old)
                       .values(reserved_at=utcnow() - timedelta(hours=1), created_at=utcnow() - timedelta(hours=1)))
    db.session.commit()
    assert count_stuck_payouts()["reserved"] == 1
    reading = next(r for r in read_indicators() if r.indicator.name == "payouts_stuck")
    assert reading.values["reserved"] == 1 and reading.alerting
    assert fresh != old


def test_manual_review_always_counts(pay_app, wechat_sandbox):
    fund()
    pid = _reserved()
    wechat_sandbox.fault("sendminiprogramhb", "MONEY_LIMIT")    # our request is wrong: a person looks
    assert payouts.send_payout(pid) == "manual_review"
    assert count_stuck_payouts()["manual_review"] == 1
    body = pay_app.test_client().get("/metrics").get_data(as_text=True)
    assert 'renrenpai_payouts_stuck{status="manual_review"} 1.0' in body


def test_a_merchant_pause_alerts_on_metrics_and_the_operator_page(make_app, sandbox_config, wechat_sandbox, db,
                                                                    reference_data):
    from app.ops import read_warnings

    app = make_app(**{**sandbox_config, "WECHAT_PAY_KEY": "0" * 32})
    with app.app_context():
        fund()
        pid = _reserved()
        assert payouts.send_payout(pid) == "reserved"
        body = app.test_client().get("/metrics").get_data(as_text=True)
        assert 'renrenpai_payouts_paused{code="SIGN_ERROR"} 1.0' in body
        reading = next(r for r in read_indicators() if r.indicator.name == "payouts_paused")
        assert reading.alerting
        assert any(w.startswith("红包发放已暂停：商户密钥错误") and "1 个红包等待" in w for w in read_warnings())
