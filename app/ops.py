"""What an operator watches: queue depths, failed jobs, outbox backlog, payouts stuck, overdue tickets.

Areas register indicators (a name, a Chinese label, a function returning numbers); the same readings
feed the console's operator page and Prometheus at /metrics, so the two never disagree.
"""
from __future__ import annotations

import dataclasses
import hmac
import logging
from typing import Callable

from flask import Blueprint, Response, current_app, request
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from app.errors import Unauthorized

log = logging.getLogger(__name__)

bp = Blueprint("ops", __name__)


@dataclasses.dataclass(frozen=True)
class Indicator:
    name: str                 # Prometheus name without the prefix, e.g. "queue_depth"
    label_zh: str             # what the operator page calls it
    help: str                 # Prometheus HELP text (English)
    collect: Callable[[], dict[str, float] | float]  # one number, or numbers keyed by label value
    label: str | None = None  # the Prometheus label name when `collect` returns a dict
    alert_above: float | None = None  # the operator page highlights values above this
    label_kind: str | None = None     # display.label kind naming the label's values on the operator page


INDICATORS: dict[str, Indicator] = {}
PREFIX = "renrenpai_"


def register_indicator(indicator: Indicator) -> None:
    INDICATORS[indicator.name] = indicator


# Areas' warnings for the operator page: functions returning Chinese sentences, empty while all is well
# (e.g. rewards: this month's budget is 0, so approvals pay nothing).
WARNINGS: list[Callable[[], list[str]]] = []


def register_warning(check: Callable[[], list[str]]) -> None:
    if check not in WARNINGS:
        WARNINGS.append(check)


def read_warnings() -> list[str]:
    """Every registered warning; a check that fails says so instead of hiding the page."""
    from app.extensions import db

    found = []
    for check in WARNINGS:
        try:
            found += check()
        except Exception:  # noqa: BLE001 — one broken check must not hide the others
            db.session.rollback()
            log.warning("operator warning check failed", extra={"check": check.__qualname__}, exc_info=True)
            found.append(f"无法检查：{check.__qualname__}")
    db.session.rollback()  # read-only
    return found


@dataclasses.dataclass(frozen=True)
class Reading:
    indicator: Indicator
    values: dict[str, float] | None  # None: the probe failed (shown, and exported as *_up 0)
    error: str | None = None

    @property
    def total(self) -> float | None:
        return None if self.values is None else sum(self.values.values())

    @property
    def alerting(self) -> bool:
        limit = self.indicator.alert_above
        return self.values is None or (limit is not None and any(v > limit for v in self.values.values()))


def read_indicators() -> list[Reading]:
    """Every indicator, each probed on its own: one broken probe must not hide the others."""
    from app.extensions import db

    readings = []
    for indicator in INDICATORS.values():
        try:
            raw = indicator.collect()
            values = {k: float(v) for k, v in raw.items()} if isinstance(raw, dict) else {"": float(raw)}
            readings.append(Reading(indicator, values))
        except Exception as exc:  # noqa: BLE001 — a failed probe is itself a reading
            db.session.rollback()
            log.warning("indicator probe failed", extra={"indicator": indicator.name}, exc_info=True)
            readings.append(Reading(indicator, None, type(exc).__name__))
    db.session.rollback()  # read-only: end the transaction the probes opened
    return readings


class _ReadingsCollector:
    def __init__(self, readings: list[Reading]):
        self.readings = readings

    def collect(self):
        up = GaugeMetricFamily(PREFIX + "indicator_up", "1 when the indicator's probe succeeded", labels=["indicator"])
        for reading in self.readings:
            ind = reading.indicator
            up.add_metric([ind.name], 0.0 if reading.values is None else 1.0)
            if reading.values is None:
                continue
            labels = [ind.label] if ind.label else []
            family = GaugeMetricFamily(PREFIX + ind.name, ind.help, labels=labels)
            for key, value in sorted(reading.values.items()):
                family.add_metric([key] if ind.label else [], value)
            yield family
        yield up


def render_metrics(readings: list[Reading]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)  # per scrape: no process-global state
    registry.register(_ReadingsCollector(readings))
    return generate_latest(registry)


@bp.get("/metrics")
def metrics():
    token = current_app.config.get("METRICS_TOKEN")
    if token:  # production: scrapers send the token; nothing here is secret, but it is internal
        sent = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(sent.encode(), token.encode()):
            raise Unauthorized("需要监控令牌", code="metrics_token_required")
    return Response(render_metrics(read_indicators()), mimetype="text/plain; version=0.0.4; charset=utf-8")


# --- the core's own indicators ---------------------------------------------------------------

def count_queued_jobs() -> dict[str, int]:
    from app.queue import QUEUES, get_queue

    return {name: get_queue(name).count for name in QUEUES}


def count_failed_jobs() -> dict[str, int]:
    from app.queue import QUEUES, get_queue

    return {name: get_queue(name).failed_job_registry.count for name in QUEUES}


def count_workers() -> int:
    from rq import Worker

    from app.extensions import redis

    return Worker.count(connection=redis.conn)


def count_outbox_backlog() -> dict[str, int]:
    from app.outbox import backlog

    counts = backlog()
    return {status: counts.get(status, 0) for status in ("pending", "dispatched", "dead", *sorted(counts))}


def count_oldest_outbox_age() -> float:
    """Seconds the oldest undelivered outbox message has waited: a stalled relay shows here first."""
    from sqlalchemy import func, select

    from app.extensions import db
    from app.models.base import utcnow
    from app.models.outbox import OutboxMessage

    oldest = db.session.scalar(select(func.min(OutboxMessage.created_at))
                               .where(OutboxMessage.status.in_(("pending", "dispatched"))))
    if oldest is None:
        return 0.0
    return max(0.0, (utcnow() - oldest).total_seconds())


register_indicator(Indicator("queue_depth", "队列积压（待执行任务）", "RQ jobs waiting, per queue",
                             count_queued_jobs, label="queue", alert_above=1000, label_kind="queue"))
register_indicator(Indicator("failed_jobs", "失败任务", "RQ jobs in the failed registry, per queue",
                             count_failed_jobs, label="queue", alert_above=0, label_kind="queue"))
register_indicator(Indicator("workers", "在线工作进程", "RQ workers registered in Redis", count_workers))
register_indicator(Indicator("outbox_messages", "发件箱积压", "Outbox messages not yet delivered, per status",
                             count_outbox_backlog, label="status", alert_above=500,
                             label_kind="outbox_status"))
register_indicator(Indicator("outbox_oldest_pending_seconds", "发件箱最久等待（秒）",
                             "Age of the oldest pending outbox message", count_oldest_outbox_age, alert_above=120))


# --- the operator page -------------------------------------------------------------------------

def list_failed_jobs(limit: int = 20) -> list[dict]:
    """The latest failed RQ jobs of every queue: what, when, and the last line of the error."""
    from rq.job import Job

    from app.extensions import redis
    from app.queue import QUEUES, get_queue

    found = []
    for name in QUEUES:
        registry = get_queue(name).failed_job_registry
        for job in Job.fetch_many(registry.get_job_ids(0, limit - 1), connection=redis.conn):
            if job is None:
                continue
            error = (job.exc_info or "").strip().splitlines()
            found.append({"queue": name, "id": job.id, "func": job.func_name, "ended_at": job.ended_at,
                          "error": error[-1][:300] if error else ""})
    found.sort(key=lambda j: j["ended_at"] or 0, reverse=True)
    return found[:limit]


def list_dead_messages(limit: int = 20) -> list:
    from sqlalchemy import select

    from app.extensions import db
    from app.models.outbox import OutboxMessage

    return db.session.scalars(select(OutboxMessage).where(OutboxMessage.status == "dead")
                              .order_by(OutboxMessage.id.desc()).limit(limit)).all()


def operator_page():
    from flask import render_template

    return render_template("console/ops.html", warnings=read_warnings(), readings=read_indicators(),
                           failed_jobs=list_failed_jobs(), dead_messages=list_dead_messages())


def init_app(app):
    from app import console

    app.register_blueprint(bp)
    console.init_app(app)
    page = console.console_required("admin", "supervisor")(operator_page)
    app.add_url_rule("/console/ops", "ops_page", page)
    console.register_console_page("ops_page", "运行监控", ("admin", "supervisor"), order=900)
