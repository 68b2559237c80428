"""Tip state changes shared by the residents' API and moderation: compare-and-set + timeline.

The approval of a tip runs the acceptance steps that areas register here (hazard ticket, reward),
in order, inside the one approval transaction; each returns its part of the decision's answer.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Iterable

from sqlalchemy import update

from app.extensions import db
from app.models.base import utcnow
from app.models.tip import Tip, TipEvent
from app.outbox import register_topic

# The intake checks live in moderation; the topic names the job by path so app never imports it.
register_topic("tip.intake", "intake", "moderation.intake.process_tip")


def record_tip_event(tip_id: int, status: str, note: str | None = None, *, internal: bool = False,
                     actor_type: str = "system", actor_id: int | None = None) -> TipEvent:
    event = TipEvent(tip_id=tip_id, status=status, note=note, internal=internal,
                     actor_type=actor_type, actor_id=actor_id, at=utcnow())
    db.session.add(event)
    return event


def change_tip_status(tip_id: int, from_statuses: Iterable[str], to_status: str, note: str | None = None, *,
                      actor_type: str = "system", actor_id: int | None = None, internal: bool = False,
                      **values) -> bool:
    """Move a tip from one of `from_statuses` to `to_status` — only if it is still there.

    Returns False (and changes nothing) when another worker or moderator got there first. The
    caller commits; the timeline event is written in the same transaction.
    """
    now = utcnow()
    changed = db.session.execute(
        update(Tip)
        .where(Tip.id == tip_id, Tip.status.in_(tuple(from_statuses)))
        .values(status=to_status, status_changed_at=now, **values)
        .execution_options(synchronize_session="fetch")
    ).rowcount
    if changed:
        record_tip_event(tip_id, to_status, note, internal=internal, actor_type=actor_type, actor_id=actor_id)
    return bool(changed)


@dataclasses.dataclass(frozen=True)
class AcceptanceStep:
    order: int
    name: str
    run: Callable[..., dict]  # run(tip, decision: dict, actor) -> partial answer, e.g. {"hazard": {...}}


ACCEPTANCE_STEPS: dict[str, AcceptanceStep] = {}


def register_acceptance_step(order: int, name: str, run: Callable[..., dict]) -> None:
    ACCEPTANCE_STEPS[name] = AcceptanceStep(order, name, run)


def run_acceptance_steps(tip: Tip, decision: dict, actor) -> dict:
    """Called by the approve decision inside its transaction; steps only flush, never commit."""
    answer: dict = {}
    for step in sorted(ACCEPTANCE_STEPS.values(), key=lambda s: s.order):
        answer.update(step.run(tip, decision, actor) or {})
    return answer
