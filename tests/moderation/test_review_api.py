"""The review queue and decisions through the staff API: order, leases, 409s, roles, reasons,
duplicates, supervisors' reassign/release/reverse, and the audit trail."""
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app.extensions import db
from app.models.audit import AuditEntry
from app.models.base import utcnow
from app.models.tip import Tip, TipEvent
from tests.moderation.factories import make_resident, make_staff, make_tip, point_in_grid, staff_headers


@pytest.fixture
def review(client, reference_data):
    """Three staff (two moderators, a supervisor) and a finance user, logged in."""
    for name, roles in (("mod_a", ["moderator"]), ("mod_b", ["moderator"]), ("boss", ["supervisor"]),
                        ("money", ["finance"])):
        make_staff(name, roles)
    return {name: staff_headers(client, name) for name in ("mod_a", "mod_b", "boss", "money")}


def _pending(priority=1, age_minutes=0, category="lpg_illegal", **kw):
    tip = make_tip(make_resident(), [], category=category, status="pending_review", publish=False,
                   priority=priority, at=kw.pop("at", None) or point_in_grid(), **kw)
    if age_minutes:
        tip.created_at = utcnow() - timedelta(minutes=age_minutes)
    db.session.commit()
    return tip.id


def _claim(client, headers):
    return client.post("/api/staff/v1/review/claim", headers=headers)


def _decide(client, headers, tip_id, **body):
    return client.post(f"/api/staff/v1/tips/{tip_id}/decision", json=body, headers=headers)


def test_claim_order_severity_then_age_and_empty_queue(client, review):
    low_old = _pending(priority=1, age_minutes=60)
    high_new = _pending(priority=5, age_minutes=1)
    high_old = _pending(priority=5, age_minutes=30)
    got = []
    for who in ("mod_a", "mod_b", "boss"):
        response = _claim(client, review[who])
        assert response.status_code == 200
        assert response.json["lease_until"] and "signals" in response.json and "candidates" in response.json
        got.append(response.json["id"])
    assert got == [high_old, high_new, low_old]
    assert _claim(client, review["mod_b"]).json["id"] == high_new  # your own tip again, lease renewed
    make_staff("mod_c", ["moderator"])
    assert _claim(client, staff_headers(client, "mod_c")).status_code == 204


def test_roles(client, review):
    _pending()
    assert _claim(client, review["money"]).status_code == 403
    assert _claim(client, review["money"]).json["error"]["code"] == "wrong_role"
    assert client.post("/api/staff/v1/review/claim").status_code == 401
    assert client.get("/api/staff/v1/tips/1", headers=review["money"]).status_code == 403


def test_decision_needs_your_claim_and_only_once(client, review):
    tip_id = _pending()
    assert _decide(client, review["mod_a"], tip_id, action="reject", reason="not_a_hazard").status_code == 409
    _claim(client, review["mod_a"])
    response = _decide(client, review["mod_b"], tip_id, action="reject", reason="not_a_hazard")
    assert response.status_code == 409 and response.json["error"]["code"] == "not_your_claim"
    assert _decide(client, review["mod_a"], tip_id, action="reject", reason="not_a_hazard").status_code == 200
    again = _decide(client, review["mod_a"], tip_id, action="reject", reason="not_a_hazard")
    assert again.status_code == 409 and again.json["error"]["code"] == "already_decided"
    assert _decide(client, review["mod_a"], 99999, action="reject", reason="x").status_code == 404


def test_expired_lease_goes_back_to_the_queue(client, review):
    tip_id = _pending()
    assert _claim(client, review["mod_a"]).json["id"] == tip_id
    db.session.execute(update(Tip).where(Tip.id == tip_id).values(lease_until=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert _claim(client, review["mod_b"]).json["id"] == tip_id
    late = _decide(client, review["mod_a"], tip_id, action="approve", severity=2)
    assert late.status_code == 409 and late.json["error"]["code"] == "not_your_claim"


def test_reject_and_need_info_need_a_catalogue_reason_and_tell_the_resident(client, review):
    first, second = _pending(age_minutes=2), _pending(age_minutes=1)
    _claim(client, review["mod_a"])
    missing = _decide(client, review["mod_a"], first, action="reject")
    assert missing.status_code == 422 and missing.json["error"]["code"] == "reason_required"
    assert _decide(client, review["mod_a"], first, action="reject", reason="made_up").status_code == 422
    assert db.session.get(Tip, first).status == "pending_review"  # nothing half-written
    assert _decide(client, review["mod_a"], first, action="reject", reason="unclear_photo").status_code == 200
    _claim(client, review["mod_a"])
    response = _decide(client, review["mod_a"], second, action="need_info", reason="need_location",
                       message="请补充门牌号")
    assert response.status_code == 200 and response.json["tip"]["status"] == "need_info"
    db.session.expire_all()
    notes = {t: db.session.scalars(select(TipEvent.note).where(TipEvent.tip_id == t).order_by(TipEvent.id.desc())).first()
             for t in (first, second)}
    from moderation.reasons import REASONS

    assert notes[first] == REASONS["reject"]["unclear_photo"]["message"]
    assert notes[second] == "请补充门牌号"


def test_bad_bodies_are_422_not_500(client, review):
    tip_id = _pending()
    _claim(client, review["mod_a"])
    for body in ({"action": "explode"}, {"action": "approve"}, {"action": "approve", "severity": 7},
                 {"action": "approve", "severity": 2, "category": "no_such"},
                 {"action": "approve", "severity": 2, "department": "no_such"},
                 {"action": "duplicate"}, {"action": "duplicate", "duplicate_of": {"tip_id": tip_id}},
                 {"action": "duplicate", "duplicate_of": {"tip_id": 424242}},
                 {"action": "duplicate", "duplicate_of": {"hazard_id": 424242}}):
        response = _decide(client, review["mod_a"], tip_id, **body)
        assert response.status_code == 422, (body, response.json)
    assert db.session.get(Tip, tip_id).status == "pending_review"


def test_approve_accepts_and_runs_the_acceptance_steps(client, review):
    tip_id = _pending()
    _claim(client, review["mod_a"])
    response = _decide(client, review["mod_a"], tip_id, action="approve", severity=2)
    assert response.status_code == 200, response.json
    assert response.json["tip"]["status"] == "accepted" and response.json["tip"]["severity"] == 2
    assert response.json["hazard"]["id"]  # hazards' step opened a ticket
    db.session.expire_all()
    assert db.session.get(Tip, tip_id).hazard_id == response.json["hazard"]["id"]


def test_duplicate_of_a_tip_with_a_ticket_joins_the_ticket(client, review):
    first = _pending(age_minutes=5)
    second = _pending(age_minutes=1)
    _claim(client, review["mod_a"])
    hazard_id = _decide(client, review["mod_a"], first, action="approve", severity=1).json["hazard"]["id"]
    detail = client.get(f"/api/staff/v1/tips/{second}", headers=review["mod_a"]).json
    assert detail["status"] == "pending_review"
    assert _claim(client, review["mod_a"]).json["id"] == second
    response = _decide(client, review["mod_a"], second, action="duplicate", duplicate_of={"tip_id": first})
    assert response.status_code == 200, response.json
    tip = db.session.get(Tip, second)
    assert tip.status == "duplicate" and tip.duplicate_of_tip_id == first and tip.duplicate_of_hazard_id == hazard_id
    from app.hazards.tickets import linked_tip_ids

    assert second in [t for t, _ in linked_tip_ids(hazard_id)]


def test_release_reassign_and_reverse(client, review):
    tip_id = _pending()
    _claim(client, review["mod_a"])
    assert client.post(f"/api/staff/v1/review/{tip_id}/release", headers=review["mod_b"]).status_code == 409
    assert client.post(f"/api/staff/v1/review/{tip_id}/release", headers=review["mod_a"]).status_code == 200
    _claim(client, review["mod_a"])
    mod_b = db.session.scalar(select(Tip.claimed_by).where(Tip.id == tip_id))
    from app.models.staff import StaffUser

    b_id = db.session.scalar(select(StaffUser.id).where(StaffUser.username == "mod_b"))
    assert client.post(f"/api/staff/v1/tips/{tip_id}/reassign", json={"staff_id": b_id},
                       headers=review["mod_a"]).status_code == 403
    money_id = db.session.scalar(select(StaffUser.id).where(StaffUser.username == "money"))
    assert client.post(f"/api/staff/v1/tips/{tip_id}/reassign", json={"staff_id": money_id},
                       headers=review["boss"]).status_code == 422
    response = client.post(f"/api/staff/v1/tips/{tip_id}/reassign", json={"staff_id": b_id}, headers=review["boss"])
    assert response.status_code == 200 and response.json["claimed_by"] == b_id != mod_b
    assert _decide(client, review["mod_a"], tip_id, action="reject", reason="other").status_code == 409
    assert _decide(client, review["mod_b"], tip_id, action="reject", reason="false_report").status_code == 200
    # a moderator cannot reverse; a supervisor can, and the tip is back in the queue
    assert client.post(f"/api/staff/v1/tips/{tip_id}/reverse", json={}, headers=review["mod_b"]).status_code == 403
    response = client.post(f"/api/staff/v1/tips/{tip_id}/reverse", json={"note": "误驳回"}, headers=review["boss"])
    assert response.status_code == 200 and response.json["status"] == "pending_review"
    assert response.json["decisions"][-1]["reversed_at"]
    assert client.post(f"/api/staff/v1/tips/{tip_id}/reverse", json={}, headers=review["boss"]).status_code == 409
    actions = [a for (a,) in db.session.execute(select(AuditEntry.action)
                                                .where(AuditEntry.object_type == "tip", AuditEntry.object_id == tip_id)
                                                .order_by(AuditEntry.id))]
    assert actions == ["review.claim", "review.release", "review.claim", "review.reassign", "tip.reject",
                       "tip.reverse"]
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "tip.reject"))
    assert entry.before["status"] == "pending_review" and entry.after["status"] == "rejected"
    assert entry.actor_id == b_id


def test_reversing_an_approval_takes_the_tip_off_its_ticket_unless_a_reward_exists(client, review):
    from rewards.queries import reward_for_tip

    tip_id = _pending()
    _claim(client, review["mod_a"])
    approved = _decide(client, review["mod_a"], tip_id, action="approve", severity=3)
    assert approved.status_code == 200
    hazard_id = approved.json["hazard"]["id"]
    reward = reward_for_tip(tip_id)
    response = client.post(f"/api/staff/v1/tips/{tip_id}/reverse", json={}, headers=review["boss"])
    db.session.expire_all()
    if reward is not None and reward["status"] != "failed":
        assert response.status_code == 409 and response.json["error"]["code"] == "reward_exists"
        assert db.session.get(Tip, tip_id).status == "accepted"
        return
    assert response.status_code == 200, response.json
    tip = db.session.get(Tip, tip_id)
    assert tip.status == "pending_review" and tip.hazard_id is None
    from app.hazards.tickets import linked_tip_ids

    assert tip_id not in [t for t, _ in linked_tip_ids(hazard_id)]


def test_reversing_an_approval_with_a_reward_is_refused(client, review, monkeypatch):
    import rewards.queries

    tip_id = _pending()
    _claim(client, review["mod_a"])
    assert _decide(client, review["mod_a"], tip_id, action="approve", severity=3).status_code == 200
    monkeypatch.setattr(rewards.queries, "reward_for_tip",
                        lambda tid: {"id": 1, "amount_fen": 500, "status": "reserved"})
    response = client.post(f"/api/staff/v1/tips/{tip_id}/reverse", json={}, headers=review["boss"])
    assert response.status_code == 409 and response.json["error"]["code"] == "reward_exists"
    assert "财务" in response.json["error"]["message"]
    db.session.expire_all()
    assert db.session.get(Tip, tip_id).status == "accepted"


def test_detail_has_audit_timeline_and_queue_lists_pending(client, review):
    tip_id = _pending()
    _claim(client, review["mod_a"])
    detail = client.get(f"/api/staff/v1/tips/{tip_id}", headers=review["mod_a"]).json
    assert detail["audit"][0]["action"] == "review.claim" and detail["audit"][0]["actor"] == "mod_a"
    assert "timeline" in detail and detail["grid"] is None or isinstance(detail["grid"], dict)
    listing = client.get("/api/staff/v1/review/queue", headers=review["mod_a"]).json
    assert [i["id"] for i in listing["items"]] == [tip_id] and listing["next"] is None
    reasons = client.get("/api/staff/v1/review/reasons", headers=review["mod_a"]).json
    assert {r["code"] for r in reasons["reject"]} >= {"not_a_hazard", "unclear_photo"}
