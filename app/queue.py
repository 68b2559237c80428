"""RQ plumbing: queues by purpose, enqueue after commit, workers with an app context, periodic jobs.

Redis only delivers. Anything that must not be lost is also written to the outbox (app/outbox.py)
in the same transaction as the change that caused it; the relay re-dispatches what Redis lost.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import signal

import rq
from flask import current_app
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.scheduler import RQScheduler
from sqlalchemy import event
from sqlalchemy.orm import Session

from app import lifeline
from app.extensions import db, redis

log = logging.getLogger(__name__)

QUEUES = ("intake", "payouts", "notify", "webhooks", "maintenance")
DEFAULT_TIMEOUT = {"intake": 120, "payouts": 60, "notify": 30, "webhooks": 30, "maintenance": 600}


def get_queue(name: str) -> rq.Queue:
    if name not in QUEUES:
        raise ValueError(f"unknown queue {name!r}")
    return rq.Queue(name, connection=redis.conn, default_timeout=DEFAULT_TIMEOUT[name])


def enqueue(queue_name: str, func: str, *args, job_id: str | None = None, **kwargs) -> rq.job.Job:
    """Enqueue `func` (a dotted path: jobs are found by name, never pickled callables) now."""
    return get_queue(queue_name).enqueue(func, *args, job_id=job_id, **kwargs)


def enqueue_after_commit(queue_name: str, func: str, *args, job_id: str | None = None, **kwargs) -> None:
    """Enqueue once the current transaction commits; a rollback drops it (it was never sent).

    A job enqueued before its commit could run before its rows exist, or for rows that never will.
    """
    pending = db.session.info.setdefault("_enqueue_after_commit", [])
    pending.append((queue_name, func, args, job_id, kwargs))


@event.listens_for(Session, "after_commit")
def _flush_enqueues(session):
    pending = session.info.pop("_enqueue_after_commit", None)
    for queue_name, func, args, job_id, kwargs in pending or ():
        try:
            enqueue(queue_name, func, *args, job_id=job_id, **kwargs)
        except Exception:  # Redis down: the outbox relay (or the next sweep) dispatches it later
            log.warning("enqueue after commit failed", extra={"queue": queue_name, "func": func}, exc_info=True)


@event.listens_for(Session, "after_rollback")
def _drop_enqueues(session):
    session.info.pop("_enqueue_after_commit", None)


# --- workers ------------------------------------------------------------------------------------

class AppContextMixin:
    """Run every job inside the app context; a forked horse gets fresh DB connections."""

    flask_app = None

    def perform_job(self, job, queue, execution):
        if os.getpid() != getattr(self, "_parent_pid", os.getpid()):
            db.engine.dispose(close=False)  # connections inherited over fork belong to the parent
        with self.flask_app.app_context():
            try:
                return super().perform_job(job, queue, execution)
            finally:
                db.session.remove()


    # --- ending with the parent (app/lifeline.py) ------------------------------------------------

    _started_by = None  # the supervisor's pid when it started this worker process

    def heartbeat(self, *args, **kwargs):
        """Every loop of the worker beats: a worker whose supervisor died stops as on SIGTERM."""
        result = super().heartbeat(*args, **kwargs)
        if not self._is_horse and lifeline.parent_gone(self._started_by):
            os.kill(os.getpid(), signal.SIGTERM)
        return result

    def setup_work_horse_signals(self):
        super().setup_work_horse_signals()
        lifeline.die_with_parent(self._parent_pid)  # a fork clears the parent-death signal: ask again

    def _start_scheduler(self, burst=False, logging_level="INFO", date_format=DEFAULT_LOGGING_DATE_FORMAT,
                         log_format=DEFAULT_LOGGING_FORMAT):
        """rq's own, with a scheduler process that ends with this worker (rq's forks and loops forever)."""
        self.scheduler = LinkedScheduler(self.queues, connection=self.connection, logging_level=logging_level,
                                         date_format=date_format, log_format=log_format, serializer=self.serializer)
        self.scheduler.worker_pid = os.getpid()
        self.scheduler.acquire_locks()
        if self.scheduler.acquired_locks:
            if burst:
                try:
                    self.scheduler.register_birth()
                    self.scheduler.enqueue_scheduled_jobs()
                finally:
                    self.scheduler.release_locks()
                    self.scheduler.register_death()
            else:
                self.scheduler.start()


class LinkedScheduler(RQScheduler):
    """RQ's scheduler process, ending with the worker that forked it."""

    worker_pid = None

    def work(self):
        lifeline.die_with_parent(self.worker_pid)
        return super().work()

    def heartbeat(self):
        if lifeline.parent_gone(self.worker_pid):
            self._stop_requested = True  # work() stops at the top of its next round
        return super().heartbeat()


class AppWorker(AppContextMixin, rq.Worker):
    """Forking worker: a job that crashes or is killed takes only its horse with it."""


class AppSimpleWorker(AppContextMixin, rq.SimpleWorker):
    """In-process worker: the payouts queue (app/worker.py says why), tests, burst runs."""


def make_worker(app, queues=QUEUES, simple=False, name=None):
    cls = AppSimpleWorker if simple else AppWorker
    with app.app_context():
        worker = cls([get_queue(q) for q in queues], connection=redis.conn, name=name,
                     maintenance_interval=app.config["WORKER_MAINTENANCE_INTERVAL"])
    worker.flask_app = app
    worker._parent_pid = os.getpid()
    worker._started_by = lifeline.started_by()
    return worker


def run_burst(app, queues=QUEUES) -> bool:
    """Run every queued job in this process until the queues are empty (tests, scripts)."""
    return make_worker(app, queues, simple=True).work(burst=True, with_scheduler=True,
                                                      logging_level="WARNING")


# --- periodic work, declared as data with stable ids --------------------------------------------

@dataclasses.dataclass(frozen=True)
class Periodic:
    id: str          # stable: the lock and the schedule are keyed by it
    func: str        # dotted path, called with no arguments inside an app context
    every: float     # seconds
    inline: bool = False  # run in the clock process itself (cheap DB work) rather than on RQ


PERIODIC: dict[str, Periodic] = {}


def register_periodic(periodic: Periodic) -> None:
    PERIODIC[periodic.id] = periodic

