"""What operators watch for tickets (operator page and /metrics, through app.ops indicators)."""
from __future__ import annotations

from sqlalchemy import func, select

from app.extensions import db
from app.hazards.models import OPEN_HAZARD_STATUSES, Hazard, WebhookDelivery


def open_tickets_by_status() -> dict[str, float]:
    rows = db.session.execute(select(Hazard.status, func.count()).where(Hazard.status.in_(OPEN_HAZARD_STATUSES))
                              .group_by(Hazard.status)).all()
    counts = {status: 0.0 for status in OPEN_HAZARD_STATUSES}
    counts.update({status: float(count) for status, count in rows})
    return counts


def overdue_tickets() -> float:
    return float(db.session.scalar(select(func.count(Hazard.id)).where(
        Hazard.overdue.is_(True), Hazard.status.in_(OPEN_HAZARD_STATUSES))) or 0)


def failing_webhook_deliveries() -> float:
    return float(db.session.scalar(select(func.count(WebhookDelivery.id)).where(
        WebhookDelivery.status == "failing")) or 0)


def register_indicators() -> None:
    from app.ops import Indicator, register_indicator

    register_indicator(Indicator("hazards_open", "未结案工单（按状态）", "Open hazard tickets, per status",
                                 open_tickets_by_status, label="status", label_kind="ticket_status"))
    register_indicator(Indicator("hazards_overdue", "超时工单", "Open hazard tickets past their SLA deadline",
                                 overdue_tickets, alert_above=0))
    register_indicator(Indicator("webhook_deliveries_failing", "推送网格系统失败（重试中）",
                                 "Webhook deliveries whose last attempt failed (being retried)",
                                 failing_webhook_deliveries, alert_above=0))
