"""Operator indicators: the same readings on /metrics and the operator page; a broken probe is shown."""
from prometheus_client.parser import text_string_to_metric_families

from app import ops
from app.outbox import publish, register_topic
from app.queue import enqueue

register_topic("test.ops", "maintenance", "tests.app.jobs.record")


def _samples(body: str) -> dict:
    found = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_metrics_report_queue_depths_failed_jobs_and_outbox_backlog(client, db):
    enqueue("intake", "tests.app.jobs.record", "a")
    enqueue("intake", "tests.app.jobs.record", "b")
    enqueue("payouts", "tests.app.jobs.record", "c")
    publish("test.ops", {"n": 1})
    db.session.commit()

    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    samples = _samples(response.get_data(as_text=True))
    assert samples[("renrenpai_queue_depth", (("queue", "intake"),))] == 2
    assert samples[("renrenpai_queue_depth", (("queue", "payouts"),))] == 1
    assert samples[("renrenpai_queue_depth", (("queue", "notify"),))] == 0
    assert samples[("renrenpai_failed_jobs", (("queue", "intake"),))] == 0
    assert samples[("renrenpai_outbox_messages", (("status", "pending"),))] == 1
    assert samples[("renrenpai_outbox_messages", (("status", "dead"),))] == 0
    assert samples[("renrenpai_outbox_oldest_pending_seconds", ())] >= 0
    assert samples[("renrenpai_indicator_up", (("indicator", "queue_depth"),))] == 1


def test_a_failed_job_shows_in_its_queue(client, db, run_jobs):
    enqueue("notify", "tests.app.jobs.fail_times", "ops-fail", 5)
    run_jobs(["notify"])
    samples = _samples(client.get("/metrics").get_data(as_text=True))
    assert samples[("renrenpai_failed_jobs", (("queue", "notify"),))] == 1
    assert samples[("renrenpai_queue_depth", (("queue", "notify"),))] == 0


def test_a_failing_probe_is_reported_down_and_does_not_hide_the_others(client, db, monkeypatch):
    def broken():
        raise RuntimeError("probe exploded")

    monkeypatch.setitem(ops.INDICATORS, "broken_probe",
                        ops.Indicator("broken_probe", "坏探针", "always fails", broken))
    samples = _samples(client.get("/metrics").get_data(as_text=True))
    assert samples[("renrenpai_indicator_up", (("indicator", "broken_probe"),))] == 0
    assert samples[("renrenpai_indicator_up", (("indicator", "queue_depth"),))] == 1
    readings = {r.indicator.name: r for r in ops.read_indicators()}
    assert readings["broken_probe"].values is None and readings["broken_probe"].alerting
    assert readings["broken_probe"].error == "RuntimeError"


def test_metrics_token_is_required_when_configured(make_app, db):
    app = make_app(METRICS_TOKEN="scrape-secret")
    client = app.test_client()
    refused = client.get("/metrics")
    assert refused.status_code == 401
    assert refused.get_json()["error"]["code"] == "metrics_token_required"
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"}).status_code == 200


def _console_login(client, username):
    from app.accounts import create_staff
    from app.extensions import db

    roles = {"ops-admin": ["admin"], "ops-boss": ["supervisor"], "ops-mod": ["moderator"]}[username]
    create_staff(username, "correct-horse-9", roles)
    db.session.commit()
    response = client.post("/console/login", data={"username": username, "password": "correct-horse-9"})
    assert response.status_code == 302


def test_operator_page_shows_the_readings_failed_jobs_and_dead_messages(client, db, run_jobs):
    from app.models.outbox import OutboxMessage

    enqueue("webhooks", "tests.app.jobs.fail_times", "ops-page", 5)
    run_jobs(["webhooks"])
    db.session.add(OutboxMessage(topic="test.ops", payload={}, status="dead", attempts=25, last_error="连接被拒绝"))
    db.session.commit()
    _console_login(client, "ops-boss")
    page = client.get("/console/ops")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for label in ("队列积压", "失败任务", "发件箱积压", "运行监控"):
        assert label in html
    assert "tests.app.jobs.fail_times" in html and "planned failure" in html
    assert "连接被拒绝" in html


def test_operator_page_is_for_admins_and_supervisors_only(client, db):
    assert client.get("/console/ops").status_code == 302  # to the login page
    _console_login(client, "ops-mod")
    assert client.get("/console/ops").status_code == 403
