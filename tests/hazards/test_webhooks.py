"""Webhooks: a real HTTP receiver on loopback; signatures, replay window, failures, retries, the log."""
from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select, update

from app.hazards.lifecycle import Actor, transition_hazard
from app.hazards.models import HazardEvent, WebhookAttempt, WebhookDelivery
from app.hazards.webhooks import add_endpoint, sign, verify_signature
from app.models.base import utcnow
from app.models.outbox import OutboxMessage
from app.models.resident import Resident
from app.outbox import relay_due

SECRET = "grid-system-shared-secret"


class Receiver:
    """The city's grid system: verifies every request, answers 500 for the first `fail` requests."""

    def __init__(self, fail: int = 0, secret: str = SECRET):
        self.fail, self.secret = fail, secret
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    failing = receiver.fail > 0
                    receiver.fail -= 1 if failing else 0
                    receiver.requests.append({
                        "body": body, "headers": dict(self.headers),
                        "valid": verify_signature(receiver.secret, self.headers.get("X-RRP-Timestamp"), body,
                                                  self.headers.get("X-RRP-Signature")),
                        "answered": 500 if failing else 200})
                self.send_response(500 if failing else 200)
                self.end_headers()
                self.wfile.write(b"no" if failing else b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/rrp"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def accepted_event_ids(self) -> list[str]:
        return [r["headers"]["X-RRP-Event-Id"] for r in self.requests if r["answered"] == 200]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def _make(fail=0, secret=SECRET):
        made.append(Receiver(fail, secret))
        return made[-1]

    yield _make
    for r in made:
        r.close()


def drive_outbox(db, run_jobs, rounds=10):
    """Run the queued jobs; then make every unfinished message due and let the relay re-dispatch it."""
    for _ in range(rounds):
        db.session.rollback()
        run_jobs(["webhooks"])
        db.session.execute(update(OutboxMessage).where(OutboxMessage.status.in_(("pending", "dispatched")),
                                                       OutboxMessage.topic == "hazard.webhook")
                           .values(next_attempt_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
        if not relay_due():
            return
    raise AssertionError("the outbox did not drain")


def test_signature_and_replay_window():
    body = b'{"id":"e1"}'
    now = 1_800_000_000
    signature = sign(SECRET, now, body)
    assert signature.startswith("v1=") and len(signature) == 67
    assert verify_signature(SECRET, str(now), body, signature, now=now + 10)
    assert not verify_signature(SECRET, str(now), body + b" ", signature, now=now)  # body changed
    assert not verify_signature("other", str(now), body, signature, now=now)  # wrong secret
    assert not verify_signature(SECRET, str(now + 1), body, signature, now=now)  # timestamp changed
    assert not verify_signature(SECRET, str(now), body, signature, now=now + 301)  # replayed too late
    assert not verify_signature(SECRET, str(now), body, signature, now=now - 301)  # from the future
    assert not verify_signature(SECRET, None, body, signature) and not verify_signature(SECRET, "x", body, signature)


def test_every_ticket_change_is_delivered_signed(hz, run_jobs, receiver):
    grid = receiver()
    add_endpoint(grid.url, SECRET)
    hz.db.session.commit()
    hazard, tip = hz.new_hazard(0)
    fire = Actor("department", None, "fire")
    transition_hazard(hazard.id, "accepted", fire)
    hz.db.session.commit()
    drive_outbox(hz.db, run_jobs)
    events = hz.db.session.scalars(select(HazardEvent).order_by(HazardEvent.id)).all()
    assert [e.kind for e in events] == ["created", "status", "status"]
    assert sorted(grid.accepted_event_ids()) == sorted(e.uid for e in events)
    assert all(r["valid"] for r in grid.requests)
    bodies = [json.loads(r["body"]) for r in grid.requests]
    last = max(bodies, key=lambda b: b["sequence"])
    assert last["type"] == "hazard.status" and last["to_status"] == "accepted"
    assert last["hazard"]["id"] == hazard.id and last["hazard"]["department"]["code"] == "fire"
    assert last["actor"] == {"type": "department", "department": "fire"}
    assert all(d.status == "delivered" for d in hz.db.session.scalars(select(WebhookDelivery)))


def test_a_receiver_failing_three_times_still_gets_every_event_exactly_once(hz, run_jobs, receiver):
    flaky = receiver(fail=3)
    steady = receiver()
    add_endpoint(flaky.url, SECRET)
    add_endpoint(steady.url, SECRET)
    hz.db.session.commit()
    hazard, _ = hz.new_hazard(0)
    fire = Actor("department", None, "fire")
    transition_hazard(hazard.id, "accepted", fire)
    transition_hazard(hazard.id, "resolved", fire, "已处置")
    hz.db.session.commit()
    drive_outbox(hz.db, run_jobs)

    uids = sorted(hz.db.session.scalars(select(HazardEvent.uid)))
    assert len(uids) == 4
    for grid in (flaky, steady):
        assert sorted(grid.accepted_event_ids()) == uids  # every event, once accepted
        assert all(r["valid"] for r in grid.requests)
    assert len(flaky.requests) == 4 + 3 and len(steady.requests) == 4
    # a retry sends the identical body (and a fresh timestamp + signature)
    by_event = {}
    for r in flaky.requests:
        by_event.setdefault(r["headers"]["X-RRP-Event-Id"], set()).add(r["body"])
    assert all(len(bodies) == 1 for bodies in by_event.values())
    # the delivery log: failed attempts then the success, per delivery
    attempts = hz.db.session.scalars(select(WebhookAttempt).order_by(WebhookAttempt.id)).all()
    assert sum(1 for a in attempts if a.status_code == 500) == 3
    assert sum(1 for a in attempts if a.status_code == 200) == 8
    deliveries = hz.db.session.scalars(select(WebhookDelivery)).all()
    assert all(d.status == "delivered" and d.delivered_at for d in deliveries)
    assert sum(d.attempts for d in deliveries) == 11


def test_an_unreachable_receiver_is_retried_with_backoff_and_logged(hz, run_jobs, receiver):
    grid = receiver()
    url = grid.url
    grid.close()  # nobody listening
    add_endpoint(url, SECRET)
    hz.db.session.commit()
    hz.new_hazard(0)
    hz.db.session.rollback()
    run_jobs(["webhooks"])
    deliveries = hz.db.session.scalars(select(WebhookDelivery)).all()
    assert {d.status for d in deliveries} == {"failing"} and all(d.last_error for d in deliveries)
    assert all("ConnectionError" in a.error for a in hz.db.session.scalars(select(WebhookAttempt)))
    # the outbox holds them for a later, longer-spaced retry (not due yet, so the relay sends nothing now)
    assert relay_due() == 0
    messages = hz.db.session.scalars(select(OutboxMessage).where(OutboxMessage.topic == "hazard.webhook")).all()
    assert messages and all(m.status != "done" and m.last_error for m in messages)
    first = messages[0]
    hz.db.session.execute(update(OutboxMessage).where(OutboxMessage.id == first.id)
                          .values(next_attempt_at=utcnow() - timedelta(seconds=1)))
    hz.db.session.commit()
    assert relay_due() == 1
    hz.db.session.refresh(first)
    assert first.attempts == 1 and first.next_attempt_at > utcnow() + timedelta(seconds=30)


def test_a_delivered_event_is_not_sent_again_when_the_job_runs_twice(hz, run_jobs, receiver):
    from app.hazards.webhooks import deliver

    grid = receiver()
    add_endpoint(grid.url, SECRET)
    hz.db.session.commit()
    hz.new_hazard(0)
    drive_outbox(hz.db, run_jobs)
    count = len(grid.requests)
    for delivery_id in hz.db.session.scalars(select(WebhookDelivery.id)):
        assert deliver(delivery_id) == "skipped"
    assert len(grid.requests) == count


def test_no_reporter_identity_in_webhook_payloads(hz, run_jobs, receiver):
    grid = receiver()
    add_endpoint(grid.url, SECRET)
    hz.db.session.commit()
    hazard, tip = hz.new_hazard(0)
    openid = hz.db.session.get(Resident, tip.resident_id).openid
    transition_hazard(hazard.id, "accepted", Actor("department", None, "fire"))
    hz.db.session.commit()
    drive_outbox(hz.db, run_jobs)
    everything = b"".join(r["body"] for r in grid.requests).decode()
    everything += json.dumps([r["headers"] for r in grid.requests])
    assert grid.requests and openid not in everything
    assert "openid" not in everything and "resident" not in everything and "tip_id" not in everything


def test_webhook_add_command(flask_cli, hz):
    result = flask_cli("hazards", "webhook-add", "--url", "http://127.0.0.1:9/hook")
    created = json.loads(result.stdout.strip().splitlines()[-1])
    assert created["url"] == "http://127.0.0.1:9/hook" and len(created["secret"]) >= 32
    assert flask_cli("hazards", "webhook-add", "--url", "ftp://x", check=False).returncode == 1


def test_the_timestamp_header_is_the_attempt_time(hz, run_jobs, receiver):
    grid = receiver()
    add_endpoint(grid.url, SECRET)
    hz.db.session.commit()
    hz.new_hazard(0)
    before = int(time.time())
    drive_outbox(hz.db, run_jobs)
    stamps = [int(r["headers"]["X-RRP-Timestamp"]) for r in grid.requests]
    assert stamps and all(before - 1 <= s <= int(time.time()) + 1 for s in stamps)


@pytest.mark.slow
def test_real_worker_processes_retry_a_failing_receiver_until_every_event_is_in(hz, receiver, subprocess_env):
    """`flask worker` (clock + forking RQ worker) with a 1 s outbox lease: the relay's backoff is
    1, 2, 4 s, so three refusals are over within seconds; every event accepted exactly once."""
    import signal
    import subprocess
    import sys

    from tests.conftest import ROOT

    grid = receiver(fail=3)
    add_endpoint(grid.url, SECRET)
    hz.db.session.commit()
    hazard, _ = hz.new_hazard(0)
    fire = Actor("department", None, "fire")
    transition_hazard(hazard.id, "accepted", fire)
    transition_hazard(hazard.id, "resolved", fire, "已处置")
    hz.db.session.commit()
    uids = sorted(hz.db.session.scalars(select(HazardEvent.uid)))
    # as if published by an app with the same 1 s lease (this test process has the default 60 s)
    hz.db.session.execute(update(OutboxMessage).values(next_attempt_at=utcnow() + timedelta(seconds=1)))
    hz.db.session.commit()
    env = {**subprocess_env, "OUTBOX_LEASE_SECONDS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--rq-workers", "1",
                             "--queues", "webhooks"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and sorted(set(grid.accepted_event_ids())) != uids:
            time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert sorted(grid.accepted_event_ids()) == uids  # each event accepted once, none twice
    assert sum(1 for r in grid.requests if r["answered"] == 500) == 3 and all(r["valid"] for r in grid.requests)
    hz.db.session.expire_all()
    assert {d.status for d in hz.db.session.scalars(select(WebhookDelivery))} == {"delivered"}
