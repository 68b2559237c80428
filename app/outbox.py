"""Transactional outbox: background work recorded in the database, delivered through RQ.

`publish()` adds a row in the caller's transaction; after commit the job is enqueued at once (fast
path). The relay (`relay_due`) re-dispatches every row whose deadline passed without the job
finishing — Redis losing jobs, a worker killed mid-job — with backoff. Handlers are idempotent
(they compare-and-set their own state), so running a message twice is harmless.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app
from sqlalchemy import and_, or_, select, update

from app.db import is_sqlite
from app.extensions import db
from app.models.base import utcnow
from app.models.outbox import OutboxMessage
from app.queue import enqueue, enqueue_after_commit

log = logging.getLogger(__name__)

# topic -> (queue name, dotted path of the handler called with the payload as keyword arguments)
TOPICS: dict[str, tuple[str, str]] = {}

MAX_ATTEMPTS = 25
RUN_MESSAGE = "app.outbox.run_message"


def register_topic(topic: str, queue: str, handler: str) -> None:
    TOPICS[topic] = (queue, handler)


def publish(topic: str, payload: dict, *, dedup_key: str | None = None, delay: float = 0) -> OutboxMessage:
    """Record work in the current transaction; it is enqueued only once that transaction commits."""
    if topic not in TOPICS:
        raise ValueError(f"unregistered outbox topic {topic!r}")
    grace = current_app.config["OUTBOX_LEASE_SECONDS"]
    message = OutboxMessage(topic=topic, payload=payload, dedup_key=dedup_key,
                            next_attempt_at=utcnow() + timedelta(seconds=delay + grace))
    db.session.add(message)
    db.session.flush()
    if not delay:
        queue, _ = TOPICS[topic]
        enqueue_after_commit(queue, RUN_MESSAGE, message.id, job_id=f"outbox-{message.id}")
    return message


def run_message(message_id: int) -> str:
    """RQ entry point for every outbox message: run the handler, then mark the message done."""
    message = db.session.get(OutboxMessage, message_id)
    if message is None or message.status in ("done", "dead"):
        db.session.rollback()
        return "skipped"
    topic, payload = message.topic, dict(message.payload)
    db.session.rollback()  # the handler opens its own transactions
    _, handler_path = TOPICS[topic]
    handler = _resolve(handler_path)
    try:
        handler(**payload)
    except Exception as exc:
        db.session.rollback()
        _record_failure(message_id, exc)
        raise
    mark_done(message_id)
    return "done"


def mark_done(message_id: int) -> bool:
    changed = db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.status.in_(("pending", "dispatched")))
        .values(status="done", done_at=utcnow())
    ).rowcount
    db.session.commit()
    return bool(changed)


def _record_failure(message_id: int, exc: Exception) -> None:
    db.session.execute(
        update(OutboxMessage).where(OutboxMessage.id == message_id)
        .values(last_error=f"{type(exc).__name__}: {exc}"[:2000])
    )
    db.session.commit()


def backoff_seconds(attempts: int) -> float:
    """1 min, 2, 4 ... capped at 1 h: the redispatch deadline after the n-th dispatch."""
    base = current_app.config["OUTBOX_LEASE_SECONDS"]
    return min(base * (2 ** max(attempts - 1, 0)), 3600)


def claim_due(limit: int = 100) -> list[tuple[int, str, int]]:
    """Lease due messages to this relay: (id, topic, attempts). Two relays never take the same row."""
    now = utcnow()
    due = and_(OutboxMessage.status.in_(("pending", "dispatched")), OutboxMessage.next_attempt_at <= now)
    candidates = select(OutboxMessage.id).where(due).order_by(OutboxMessage.next_attempt_at).limit(limit)
    if not is_sqlite(db.session):
        candidates = candidates.with_for_update(skip_locked=True)
    ids = list(db.session.execute(candidates).scalars())
    if not ids:
        db.session.rollback()
        return []
    lease_until = now + timedelta(seconds=current_app.config["OUTBOX_LEASE_SECONDS"])
    rows = db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(ids), due)
        .values(next_attempt_at=lease_until, attempts=OutboxMessage.attempts + 1)
        .returning(OutboxMessage.id, OutboxMessage.topic, OutboxMessage.attempts)
    ).all()
    db.session.commit()
    return [tuple(row) for row in rows]


def relay_due(limit: int = 100) -> int:
    """Dispatch every due message to RQ. Returns how many were dispatched."""
    dispatched = 0
    for message_id, topic, attempts in claim_due(limit):
        if attempts > MAX_ATTEMPTS:
            _mark_dead(message_id)
            continue
        queue, _ = TOPICS.get(topic, (None, None))
        if queue is None:
            log.error("outbox message has an unknown topic", extra={"message_id": message_id, "topic": topic})
            continue
        try:
            enqueue(queue, RUN_MESSAGE, message_id, job_id=f"outbox-{message_id}")
        except Exception:
            log.warning("outbox relay could not reach Redis; will retry", exc_info=True)
            break  # the lease expires and the row is due again
        db.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id, OutboxMessage.status.in_(("pending", "dispatched")))
            .values(status="dispatched", dispatched_at=utcnow(),
                    next_attempt_at=utcnow() + timedelta(seconds=backoff_seconds(attempts)))
        )
        db.session.commit()
        dispatched += 1
    return dispatched


def _mark_dead(message_id: int) -> None:
    log.error("outbox message gave up after %s attempts", MAX_ATTEMPTS, extra={"message_id": message_id})
    db.session.execute(update(OutboxMessage).where(OutboxMessage.id == message_id).values(status="dead"))
    db.session.commit()


def backlog() -> dict[str, int]:
    """Counts for the operator page and /metrics."""
    from sqlalchemy import func

    rows = db.session.execute(
        select(OutboxMessage.status, func.count()).where(OutboxMessage.status != "done")
        .group_by(OutboxMessage.status)
    ).all()
    return {status: count for status, count in rows}


def _resolve(path: str):
    module_name, _, attr = path.rpartition(".")
    import importlib

    return getattr(importlib.import_module(module_name), attr)
