"""RQ entry points (take ids, load and commit inside). The outbox calls send_payout(payout_id=...)
for topic rewards.payout; an exception leaves the outbox row due again, so the relay redelivers."""
from __future__ import annotations

from rewards import payouts


def send_payout(payout_id: int) -> str:
    return payouts.send_payout(int(payout_id))
