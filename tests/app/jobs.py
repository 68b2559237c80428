"""Job functions the queue and outbox tests enqueue by dotted path."""
from app.audit import record_audit
from app.extensions import db, redis


def record(value):
    redis.conn.rpush("test:records", value)
    record_audit("job-ran", "test", None, note=value)
    db.session.commit()


def fail_times(key, times):
    """Fails the first `times` calls for `key`, then succeeds."""
    count = redis.conn.incr(f"test:fail:{key}")
    if count <= times:
        raise RuntimeError(f"planned failure {count}")
    redis.conn.rpush("test:records", key)


def periodic_tick():
    redis.conn.incr("test:ticks")


def record_pid():
    """The process running the job and its parent: tells a forked job process from the worker itself."""
    import os

    redis.conn.rpush("test:pids", f"{os.getpid()} {os.getppid()}")


def nap(seconds):
    """A job that takes a while: keeps a forked job process (horse) alive for the process tests."""
    import time

    time.sleep(seconds)
    redis.conn.rpush("test:records", f"napped {seconds}")
