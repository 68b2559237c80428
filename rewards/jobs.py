"""RQ entry points (take ids, load and commit inside). The outbox calls send_payout(payout_id=...)
for topic rewards.payout; an exception leaves the outbox row due again, so the relay redelivers."""
from __future__ import annotations

import random
import time

from rewards import payouts

RATE_CODES = ("FREQ_LIMIT", "LOCAL_RATE_LIMIT", "FREQUENCY_LIMIT_EXCEED")  # worth a retry a second later
RATE_RETRIES = 5


def send_payout(payout_id: int) -> str:
    """Other pending outcomes wait for the outbox's backoff; a rate refusal is retried here within
    seconds (the same billno), instead of a minute later."""
    for attempt in range(RATE_RETRIES):
        try:
            return payouts.send_payout(int(payout_id))
        except payouts.PayoutPending as exc:
            if str(exc) not in RATE_CODES or attempt == RATE_RETRIES - 1:
                raise
            time.sleep(1.0 + random.random() / 2)
    raise AssertionError("unreachable")
