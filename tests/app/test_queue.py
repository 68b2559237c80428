from app.extensions import db as database
from app.models import AuditEntry
from app.queue import enqueue_after_commit, get_queue


def test_job_enqueued_in_a_rolled_back_transaction_is_never_sent(db):
    enqueue_after_commit("notify", "tests.app.jobs.record", "rolled-back")
    db.session.add(AuditEntry(actor_type="system", action="x", object_type="y"))
    db.session.rollback()
    assert get_queue("notify").count == 0


def test_job_is_sent_only_after_commit(db):
    enqueue_after_commit("notify", "tests.app.jobs.record", "committed")
    db.session.add(AuditEntry(actor_type="system", action="x", object_type="y"))
    db.session.flush()
    assert get_queue("notify").count == 0
    db.session.commit()
    assert get_queue("notify").count == 1


def test_burst_worker_runs_jobs_with_an_app_context(db, run_jobs, redis_conn):
    enqueue_after_commit("notify", "tests.app.jobs.record", "hello")
    db.session.commit()
    run_jobs(["notify"])
    assert redis_conn.lrange("test:records", 0, -1) == [b"hello"]
    # the job wrote through the database as well
    assert database.session.query(AuditEntry).filter_by(action="job-ran").count() == 1
