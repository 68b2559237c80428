"""Reporters are told (subscribe messages through the real gateway → sandbox): accepted, resolved, closed."""
from sqlalchemy import func, select

from app.hazards.lifecycle import Actor, transition_hazard
from app.hazards.models import HazardNotice
from app.hazards.notify import send_notice
from app.models.outbox import OutboxMessage
from app.models.resident import Resident
from app.queue import run_burst

SUP = Actor("staff", 1, None, ("supervisor",))
FIRE = Actor("department", None, "fire")


def _run(hz, app):
    hz.db.session.rollback()
    run_burst(app, ("notify",))


def _to_closed(hazard_id):
    transition_hazard(hazard_id, "accepted", FIRE)
    transition_hazard(hazard_id, "resolved", FIRE, "已清理安全出口")
    transition_hazard(hazard_id, "verified", SUP)
    transition_hazard(hazard_id, "closed", SUP)


def test_accepted_resolved_and_closed_reach_every_valid_reporter(hz, sandbox_app, wechat_sandbox):
    hazard, first = hz.new_hazard(0)
    second = hz.tip(hazard.lat, hazard.lng)
    hz.approve(second)
    dup = hz.tip(hazard.lat, hazard.lng, status="duplicate")
    from app.hazards.tickets import attach_duplicate_tip

    attach_duplicate_tip(dup, hazard.id)
    _to_closed(hazard.id)
    hz.db.session.commit()
    openids = {t.id: hz.db.session.get(Resident, t.resident_id).openid for t in (first, second, dup)}
    _run(hz, sandbox_app)
    messages = wechat_sandbox.messages()
    by_openid = {}
    for m in messages:
        by_openid.setdefault(m["openid"], []).append(m["data"]["phrase2"]["value"])
    assert by_openid[openids[first.id]] == ["已采纳", "已处置", "已结案"]
    assert by_openid[openids[second.id]] == ["已采纳", "已处置", "已结案"]
    assert openids[dup.id] not in by_openid  # a duplicate earns no messages
    resolved = next(m for m in messages if m["data"]["phrase2"]["value"] == "已处置")
    assert resolved["data"]["thing3"]["value"] == "已清理安全出口"
    assert resolved["template_id"] == "sbx-tpl-hazard-closed" and resolved["page"].startswith("pages/tip/detail")
    assert {n.status for n in hz.db.session.scalars(select(HazardNotice))} == {"sent"}
    # the timeline of the duplicate still shows the progress
    assert hz.timeline(dup.id)[-1] == ("hazard_closed", "隐患已结案，感谢您的报料")


def test_a_resident_without_quota_is_refused_once_and_not_retried(hz, sandbox_app, wechat_sandbox):
    hazard, tip = hz.new_hazard(0)
    openid = hz.db.session.get(Resident, tip.resident_id).openid
    wechat_sandbox.subscribe(openid, "sbx-tpl-tip-result", 0)  # never tapped "allow"
    hz.db.session.commit()
    _run(hz, sandbox_app)
    notice = hz.db.session.scalar(select(HazardNotice))
    assert notice.status == "refused" and wechat_sandbox.messages() == []
    message = hz.db.session.scalar(select(OutboxMessage).where(OutboxMessage.topic == "hazard.notify"))
    assert message.status == "done"  # 43101 is an answer, not a failure
    assert send_notice(notice.id) == "skipped"


def test_transient_wechat_trouble_is_retried_later_and_sent_once(hz, sandbox_app, wechat_sandbox):
    hazard, tip = hz.new_hazard(0)
    hz.db.session.commit()
    wechat_sandbox.fault("subscribe_send", "http_500", count=1)
    _run(hz, sandbox_app)
    notice = hz.db.session.scalar(select(HazardNotice))
    assert notice.status == "pending"
    message = hz.db.session.scalar(select(OutboxMessage).where(OutboxMessage.topic == "hazard.notify"))
    assert message.status != "done" and message.last_error
    hz.db.session.rollback()
    assert send_notice(notice.id) == "sent"
    assert send_notice(notice.id) == "skipped"
    assert len(wechat_sandbox.messages()) == 1


def test_a_reopened_ticket_resolving_again_notifies_again(hz, sandbox_app, wechat_sandbox):
    hazard, tip = hz.new_hazard(0)
    transition_hazard(hazard.id, "accepted", FIRE)
    transition_hazard(hazard.id, "resolved", FIRE, "清理了")
    transition_hazard(hazard.id, "reopened", SUP, "还有杂物")
    transition_hazard(hazard.id, "resolved", FIRE, "彻底清理")
    hz.db.session.commit()
    kinds = hz.db.session.execute(select(HazardNotice.kind, HazardNotice.round).order_by(HazardNotice.id)).all()
    assert [tuple(k) for k in kinds] == [("accepted", 0), ("resolved", 0), ("resolved", 1)]
    assert hz.db.session.scalar(select(func.count(HazardNotice.id))) == 3
