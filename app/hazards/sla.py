"""SLA: each step's deadline is set by the lifecycle (catalogue sla_hours); this sweep flags the late.

`sweep_overdue` runs every minute on the maintenance queue (periodic id "hazards.sla_sweep"; not
inline in the clock, so a large backlog never delays the outbox relay). One conditional UPDATE per
ticket (overdue false → true) makes two sweeps or a re-run harmless; each newly flagged ticket gets
an "overdue" event (history + webhook), ~3 ms each (docs/PERFORMANCE.md). A move clears the flag.
"""
from __future__ import annotations

from sqlalchemy import select, update

from app.extensions import db
from app.hazards.models import OPEN_HAZARD_STATUSES, Hazard
from app.models.base import utcnow

BATCH = 500
SWEEP_SECONDS = 45.0  # one run stops starting batches after this; the next minute's run goes on


def sweep_overdue() -> int:
    """The periodic job: flag batches until none is left or the time budget is spent."""
    import time

    started, total = time.monotonic(), 0
    while time.monotonic() - started < SWEEP_SECONDS:
        flagged = flag_overdue()
        total += flagged
        if flagged < BATCH:
            break
    return total


def flag_overdue(now=None) -> int:
    """Flag every open ticket past its deadline; returns how many were newly flagged."""
    from app.hazards.lifecycle import record_hazard_event, status_label

    now = now or utcnow()
    ids = list(db.session.scalars(
        select(Hazard.id).where(Hazard.overdue.is_(False), Hazard.due_at < now,
                                Hazard.status.in_(OPEN_HAZARD_STATUSES)).order_by(Hazard.due_at).limit(BATCH)))
    flagged = 0
    for hazard_id in ids:
        changed = db.session.execute(
            update(Hazard).where(Hazard.id == hazard_id, Hazard.overdue.is_(False), Hazard.due_at < now)
            .values(overdue=True, overdue_since=now).execution_options(synchronize_session=False)
        ).rowcount
        if not changed:
            continue
        hazard = db.session.get(Hazard, hazard_id)
        db.session.refresh(hazard)
        record_hazard_event(hazard, "overdue", None, from_status=hazard.status, to_status=hazard.status,
                            note=f"「{status_label(hazard.status)}」环节已超时")
        flagged += 1
    db.session.commit()
    return flagged
