"""Outbound webhooks to the city's grid system: every ticket event, signed, at least once, logged.

Each HazardEvent gets one WebhookDelivery per active endpoint and one outbox message per delivery,
in the transaction that made the change. The outbox runs `deliver` on the "webhooks" RQ queue and,
while it keeps failing, re-dispatches it with backoff (OUTBOX_LEASE_SECONDS · 2ⁿ, capped at an
hour, 25 tries). A delivered delivery is never sent again; receivers dedup on the event id anyway.

The request:
    POST <url>   Content-Type: application/json; the body is the event (its payload, fixed when the
                 event happened, so every retry sends identical bytes)
    X-RRP-Event-Id:  the event id (uuid)      X-RRP-Delivery: delivery id
    X-RRP-Timestamp: unix seconds of this attempt
    X-RRP-Signature: v1=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>
Receivers recompute the signature and reject a timestamp outside their replay window
(`verify_signature` does both, for our tests and as the reference for receivers).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time

import requests
from flask import current_app
from sqlalchemy import select, update

from app.extensions import db
from app.hazards.models import HazardEvent, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from app.models.base import utcnow
from app.outbox import publish, register_topic

log = logging.getLogger(__name__)

TOPIC = "hazard.webhook"
register_topic(TOPIC, "webhooks", "app.hazards.webhooks.deliver")

SIGNATURE_HEADER, TIMESTAMP_HEADER, EVENT_HEADER = "X-RRP-Signature", "X-RRP-Timestamp", "X-RRP-Event-Id"
DEFAULT_TIMEOUT = 10.0
REPLAY_WINDOW_SECONDS = 300


class WebhookFailed(Exception):
    """The receiver did not take the event (non-2xx or no answer); the outbox will retry."""


# --- endpoints ----------------------------------------------------------------------------------

def add_endpoint(url: str, secret: str | None = None, description: str | None = None) -> WebhookEndpoint:
    if not url.startswith(("http://", "https://")):
        raise ValueError("webhook url must be http(s)")
    endpoint = WebhookEndpoint(url=url, secret=secret or secrets.token_urlsafe(32), description=description,
                               active=True)
    db.session.add(endpoint)
    db.session.flush()
    return endpoint


def active_endpoints() -> list[WebhookEndpoint]:
    return list(db.session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.active.is_(True))
                                   .order_by(WebhookEndpoint.id)))


# --- queueing -----------------------------------------------------------------------------------

def queue_deliveries(event: HazardEvent) -> list[WebhookDelivery]:
    """One delivery + outbox message per active endpoint, in the caller's transaction."""
    deliveries = []
    for endpoint in active_endpoints():
        delivery = WebhookDelivery(endpoint_id=endpoint.id, event_id=event.id, status="pending")
        db.session.add(delivery)
        db.session.flush()
        publish(TOPIC, {"delivery_id": delivery.id}, dedup_key=f"{TOPIC}:{delivery.id}")
        deliveries.append(delivery)
    return deliveries


# --- signing ------------------------------------------------------------------------------------

def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify_signature(secret: str, timestamp: str | None, body: bytes, signature: str | None, *,
                     window: int = REPLAY_WINDOW_SECONDS, now: float | None = None) -> bool:
    """What a receiver does: the signature matches and the timestamp is within the replay window."""
    if not timestamp or not signature:
        return False
    try:
        stamp = int(timestamp)
    except ValueError:
        return False
    if abs((now if now is not None else time.time()) - stamp) > window:
        return False
    return hmac.compare_digest(sign(secret, stamp, body), signature)


def event_body(event: HazardEvent) -> bytes:
    return json.dumps(event.payload, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


# --- delivery (RQ job via the outbox) -----------------------------------------------------------

def deliver(delivery_id: int) -> str:
    """POST one event to one endpoint; raise WebhookFailed so the outbox retries it later."""
    delivery = db.session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.status == "delivered":
        db.session.rollback()
        return "skipped"
    endpoint = db.session.get(WebhookEndpoint, delivery.endpoint_id)
    event = db.session.get(HazardEvent, delivery.event_id)
    if endpoint is None or not endpoint.active or event is None:
        db.session.rollback()
        return "skipped"
    url, secret, uid, body = endpoint.url, endpoint.secret, event.uid, event_body(event)
    number = delivery.attempts + 1
    db.session.rollback()  # no transaction held open across the HTTP call

    timestamp = int(time.time())
    headers = {"Content-Type": "application/json; charset=utf-8", EVENT_HEADER: uid,
               "X-RRP-Delivery": str(delivery_id), TIMESTAMP_HEADER: str(timestamp),
               SIGNATURE_HEADER: sign(secret, timestamp, body), "User-Agent": "renrenpai-webhooks/1"}
    timeout = float(current_app.config.get("HAZARD_WEBHOOK_TIMEOUT", DEFAULT_TIMEOUT))
    started = time.monotonic()
    status_code, error = None, None
    try:
        reply = requests.post(url, data=body, headers=headers, timeout=timeout, allow_redirects=False)
        status_code = reply.status_code
        if not 200 <= status_code < 300:
            error = f"HTTP {status_code}"
    except requests.RequestException as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
    duration_ms = int((time.monotonic() - started) * 1000)
    ok = error is None
    now = utcnow()
    db.session.add(WebhookAttempt(delivery_id=delivery_id, number=number, at=now, status_code=status_code,
                                  error=error, duration_ms=duration_ms))
    values = {"attempts": WebhookDelivery.attempts + 1, "last_status_code": status_code, "last_error": error,
              "last_attempt_at": now}
    if ok:
        values.update(status="delivered", delivered_at=now)
    else:
        values.update(status="failing")
    db.session.execute(update(WebhookDelivery)
                       .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status != "delivered")
                       .values(**values))
    db.session.commit()
    if not ok:
        log.warning("webhook delivery failed", extra={"delivery_id": delivery_id, "attempt": number,
                                                      "status_code": status_code})
        raise WebhookFailed(error)
    return "delivered"


def delivery_log(limit: int = 50, status: str | None = None) -> list[dict]:
    query = select(WebhookDelivery).order_by(WebhookDelivery.id.desc()).limit(limit)
    if status:
        query = query.where(WebhookDelivery.status == status)
    return [{"id": d.id, "endpoint_id": d.endpoint_id, "event_id": d.event_id, "status": d.status,
             "attempts": d.attempts, "last_status_code": d.last_status_code, "last_error": d.last_error}
            for d in db.session.scalars(query)]
