import threading
from datetime import timedelta

from sqlalchemy import update

from app import outbox
from app.extensions import db as database
from app.models import OutboxMessage
from app.models.base import utcnow
from app.queue import get_queue

outbox.register_topic("test.record", "notify", "tests.app.jobs.record")
outbox.register_topic("test.flaky", "notify", "tests.app.jobs.fail_times")


def _make_due(message_id):
    database.session.execute(update(OutboxMessage).where(OutboxMessage.id == message_id)
                             .values(next_attempt_at=utcnow() - timedelta(seconds=1)))
    database.session.commit()


def test_publish_runs_after_commit_and_marks_done(db, run_jobs, redis_conn):
    message = outbox.publish("test.record", {"value": "a"})
    db.session.commit()
    run_jobs(["notify"])
    assert redis_conn.lrange("test:records", 0, -1) == [b"a"]
    assert db.session.get(OutboxMessage, message.id).status == "done"


def test_rolled_back_publish_leaves_nothing(db):
    outbox.publish("test.record", {"value": "a"})
    db.session.rollback()
    assert db.session.query(OutboxMessage).count() == 0
    assert get_queue("notify").count == 0


def test_relay_redispatches_what_redis_lost(db, run_jobs, redis_conn):
    message = outbox.publish("test.record", {"value": "lost"})
    db.session.commit()
    redis_conn.flushdb()  # Redis loses the job
    assert outbox.relay_due() == 0  # not due yet: the fast path gets its grace period
    _make_due(message.id)
    assert outbox.relay_due() == 1
    run_jobs(["notify"])
    assert redis_conn.lrange("test:records", 0, -1) == [b"lost"]
    row = db.session.get(OutboxMessage, message.id)
    db.session.refresh(row)
    assert row.status == "done" and row.attempts == 1


def test_failing_handler_is_retried_with_backoff_until_it_succeeds(db, run_jobs, redis_conn):
    message = outbox.publish("test.flaky", {"key": "k", "times": 2})
    db.session.commit()
    run_jobs(["notify"])
    for _ in range(2):
        row = db.session.get(OutboxMessage, message.id)
        db.session.refresh(row)
        assert row.status != "done" and "planned failure" in row.last_error
        _make_due(message.id)
        outbox.relay_due()
        run_jobs(["notify"])
    row = db.session.get(OutboxMessage, message.id)
    db.session.refresh(row)
    assert row.status == "done"
    assert redis_conn.lrange("test:records", 0, -1) == [b"k"]


def test_backoff_grows_and_is_capped(app):
    with app.app_context():
        assert outbox.backoff_seconds(1) < outbox.backoff_seconds(3) <= 3600
        assert outbox.backoff_seconds(30) == 3600


def test_done_message_is_not_run_again(db, run_jobs, redis_conn):
    message = outbox.publish("test.record", {"value": "once"})
    db.session.commit()
    run_jobs(["notify"])
    assert outbox.run_message(message.id) == "skipped"
    assert redis_conn.lrange("test:records", 0, -1) == [b"once"]


def test_two_relays_never_claim_the_same_message(app, db):
    ids = []
    for i in range(60):
        ids.append(outbox.publish("test.record", {"value": str(i)}).id)
    db.session.commit()
    db.session.execute(update(OutboxMessage).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    claimed: list[list[int]] = [[], [], []]
    barrier = threading.Barrier(3)

    def relay(slot):
        with app.app_context():
            barrier.wait()
            while True:
                batch = outbox.claim_due(limit=7)
                if not batch:
                    break
                claimed[slot].extend(row[0] for row in batch)
            database.session.remove()

    threads = [threading.Thread(target=relay, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = claimed[0] + claimed[1] + claimed[2]
    assert sorted(every) == sorted(ids)  # all claimed, none twice
