"""A moderator's decision on a claimed tip, and a supervisor's reversal. One transaction each.

approve    → accepted; the acceptance steps other areas registered (hazard ticket, reward) run in
             the same transaction (app.tips.run_acceptance_steps).
reject     → rejected, with a catalogue reason and a message for the resident.
need_info  → need_info, likewise.
duplicate  → duplicate of a tip or a hazard ticket; joined to the ticket when there is one.

A decision on a tip the caller does not hold, or one already decided, is 409. Every decision and
reversal is in review_decisions and the append-only audit log, with before and after.
"""
from __future__ import annotations

import logging

from sqlalchemy import select

from app.audit import record_audit
from app.errors import Conflict, Forbidden, NotFound, Unprocessable
from app.extensions import db
from app.models.base import utcnow
from app.models.staff import StaffUser
from app.models.tip import Tip
from app.tips import change_tip_status, run_acceptance_steps
from moderation.models import ReviewDecision
from moderation.reasons import check_reason

log = logging.getLogger(__name__)

ACTIONS = ("approve", "reject", "duplicate", "need_info")
TO_STATUS = {"approve": "accepted", "reject": "rejected", "duplicate": "duplicate", "need_info": "need_info"}
NOTE_ACCEPTED = "报料已采纳，已转交相关部门处理"
NOTE_DUPLICATE = "该隐患已有人报料，您的报料已合并到同一工单处理，感谢您的关注"
NOTE_REOPENED = "审核结果已撤销，报料重新进入人工审核"


def decide(tip_id: int, actor: StaffUser, body: dict) -> dict:
    """Apply a decision; commits. Returns {"tip": Tip, "hazard": dict|None, "reward": dict|None}."""
    action = body.get("action")
    if action not in ACTIONS:
        raise Unprocessable("未知的审核操作", code="invalid_action", fields={"action": [f"可选：{', '.join(ACTIONS)}"]})
    tip = _locked_tip(tip_id)
    if tip.status != "pending_review":
        raise Conflict("该报料已审核，不能重复处理", code="already_decided")
    if tip.claimed_by != actor.id:
        raise Conflict("该报料不在您的审核中，请先领取", code="not_your_claim")
    decision = _decision(tip, action, body)
    before = _snapshot(tip)
    common = {"claimed_by": None, "lease_until": None, "decided_by": actor.id, "decided_at": utcnow(),
              "decision_reason": decision["reason"], "decision_message": decision["message"]}
    answer: dict = {}
    if action == "approve":
        changed = change_tip_status(tip.id, ["pending_review"], "accepted", NOTE_ACCEPTED, actor_type="staff",
                                    actor_id=actor.id, category=decision["category"],
                                    severity=decision["severity"], **common)
        _must(changed)
        db.session.refresh(tip)
        answer = run_acceptance_steps(tip, decision, actor) or {}
    elif action == "duplicate":
        target = decision["duplicate_of"]
        changed = change_tip_status(tip.id, ["pending_review"], "duplicate", decision["message"] or NOTE_DUPLICATE,
                                    actor_type="staff", actor_id=actor.id,
                                    duplicate_of_tip_id=target.get("tip_id"),
                                    duplicate_of_hazard_id=target.get("hazard_id"), **common)
        _must(changed)
        db.session.refresh(tip)
        if target.get("hazard_id"):
            from app.hazards.tickets import attach_duplicate_tip

            attach_duplicate_tip(tip, target["hazard_id"])
            answer = {"hazard": _hazard_brief(target["hazard_id"])}
    else:
        changed = change_tip_status(tip.id, ["pending_review"], TO_STATUS[action], decision["message"],
                                    actor_type="staff", actor_id=actor.id, **common)
        _must(changed)
        db.session.refresh(tip)
    after = _snapshot(tip)
    db.session.add(ReviewDecision(tip_id=tip.id, action=action, actor_id=actor.id, from_status="pending_review",
                                  to_status=tip.status, category=decision["category"],
                                  severity=decision["severity"], reason=decision["reason"],
                                  message=decision["message"], department=decision["department"],
                                  duplicate_of=decision["duplicate_of"], answer=_jsonable(answer)))
    record_audit(f"tip.{action}", "tip", tip.id, actor=actor, before=before,
                 after={**after, "answer": _jsonable(answer)})
    reward = answer.get("reward") or {}
    # Read before the commit expires them: a reload after it would open a new write transaction.
    event = {"event": "tip.decided", "tip_id": tip.id, "action": action, "staff": actor.username,
             "reward_status": reward.get("status"), "reward_fen": reward.get("amount_fen"),
             "reward_reason": reward.get("reason_label")}
    db.session.commit()
    log.info("tip decided", extra=event)
    return {"tip": tip, "hazard": answer.get("hazard"), "reward": answer.get("reward")}


def _decision(tip: Tip, action: str, body: dict) -> dict:
    """Validate the body into the decision dict the acceptance steps receive (app.tips.run_acceptance_steps)."""
    from app.hazards.catalogue import get_category, get_department

    category = body.get("category") or tip.category
    severity = body.get("severity")
    department = body.get("department") or None
    duplicate_of = body.get("duplicate_of") or None
    reason, message = body.get("reason"), body.get("message")
    if action == "approve":
        found = get_category(category)
        if found is None or not found.active:
            raise Unprocessable("隐患类别不存在", code="unknown_category", fields={"category": [category]})
        if severity not in (1, 2, 3):
            raise Unprocessable("请选择严重程度（1–3）", code="severity_required", fields={"severity": ["1、2 或 3"]})
        if department is not None and get_department(department) is None:
            raise Unprocessable("部门不存在", code="unknown_department", fields={"department": [department]})
        if duplicate_of is not None:
            duplicate_of = _check_target(tip, duplicate_of)
        message = (message or "").strip() or None
    elif action in ("reject", "need_info"):
        reason, message = check_reason(action, reason, message)
        severity = None
    elif action == "duplicate":
        if not duplicate_of:
            raise Unprocessable("请指明重复的报料或工单", code="duplicate_of_required",
                                fields={"duplicate_of": ["需要 tip_id 或 hazard_id"]})
        duplicate_of = _check_target(tip, duplicate_of)
        reason = reason or "duplicate"
        message = (message or "").strip() or None
        severity = None
    return {"action": action, "category": category, "severity": severity, "reason": reason, "message": message,
            "department": department, "duplicate_of": duplicate_of}


def _check_target(tip: Tip, target) -> dict:
    """{"tip_id"} or {"hazard_id"} → a target that exists; a tip target pulls in its hazard."""
    if not isinstance(target, dict) or not (target.get("tip_id") or target.get("hazard_id")):
        raise Unprocessable("重复对象格式有误", code="invalid_duplicate_of",
                            fields={"duplicate_of": ["需要 tip_id 或 hazard_id"]})
    if target.get("tip_id"):
        try:
            other_id = int(target["tip_id"])
        except (TypeError, ValueError):
            raise Unprocessable("重复对象格式有误", code="invalid_duplicate_of",
                                fields={"duplicate_of": ["tip_id 应为整数"]}) from None
        if other_id == tip.id:
            raise Unprocessable("报料不能与自身重复", code="invalid_duplicate_of", fields={"duplicate_of": ["不能是自身"]})
        other = db.session.get(Tip, other_id)
        if other is None:
            raise Unprocessable("重复的报料不存在", code="duplicate_target_missing", fields={"duplicate_of": [str(other_id)]})
        return {"tip_id": other.duplicate_of_tip_id or other.id,
                "hazard_id": other.hazard_id or other.duplicate_of_hazard_id}
    from app.hazards.models import Hazard

    try:
        hazard_id = int(target["hazard_id"])
    except (TypeError, ValueError):
        raise Unprocessable("重复对象格式有误", code="invalid_duplicate_of",
                            fields={"duplicate_of": ["hazard_id 应为整数"]}) from None
    if db.session.get(Hazard, hazard_id) is None:
        raise Unprocessable("工单不存在", code="duplicate_target_missing", fields={"duplicate_of": [str(hazard_id)]})
    return {"tip_id": None, "hazard_id": hazard_id}


def reverse(tip_id: int, supervisor: StaffUser, note: str | None = None) -> Tip:
    """A supervisor undoes the last decision: the tip goes back to the review queue, off any ticket
    it was put on (app.hazards.tickets.detach_tip; the ticket stays).

    Refused (409 reward_exists) for an approval whose reward exists and has not failed: money that
    is reserved or paid is corrected in finance, not by moderation."""
    if not supervisor.has_role("supervisor"):
        raise Forbidden("只有主管可以撤销审核结果", code="wrong_role")
    tip = _locked_tip(tip_id)
    if tip.status not in ("accepted", "rejected", "duplicate", "need_info"):
        raise Conflict("该报料没有可撤销的审核结果", code="nothing_to_reverse")
    last = db.session.scalar(select(ReviewDecision).where(ReviewDecision.tip_id == tip.id,
                                                          ReviewDecision.reversed_at.is_(None))
                             .order_by(ReviewDecision.id.desc()).limit(1))
    if tip.status == "accepted":
        from rewards.queries import reward_for_tip

        reward = reward_for_tip(tip.id)
        if reward is not None and reward.get("status") not in ("failed",):
            raise Conflict("该报料已产生奖励，不能撤销受理；如需更正请联系财务处理奖励", code="reward_exists")
    before = _snapshot(tip)
    if tip.hazard_id is not None:  # off the ticket (which stays, with its history and other tips)
        from app.hazards.tickets import detach_tip

        detach_tip(tip)
    changed = change_tip_status(tip.id, [tip.status], "pending_review", NOTE_REOPENED, actor_type="staff",
                                actor_id=supervisor.id, claimed_by=None, lease_until=None, decided_by=None,
                                decided_at=None, decision_reason=None, decision_message=None,
                                duplicate_of_tip_id=None, duplicate_of_hazard_id=None)
    _must(changed)
    if last is not None:
        last.reversed_at, last.reversed_by = utcnow(), supervisor.id
    db.session.refresh(tip)
    record_audit("tip.reverse", "tip", tip.id, actor=supervisor, before=before, after=_snapshot(tip),
                 note=(note or "").strip()[:500] or None)
    db.session.commit()
    return tip


def _locked_tip(tip_id: int) -> Tip:
    tip = db.session.scalar(select(Tip).where(Tip.id == tip_id).with_for_update())
    if tip is None:
        raise NotFound("报料不存在", code="tip_not_found")
    return tip


def _must(changed: bool) -> None:
    if not changed:
        db.session.rollback()
        raise Conflict("报料状态已变化，请刷新", code="state_changed")


def _snapshot(tip: Tip) -> dict:
    return {"status": tip.status, "category": tip.category, "severity": tip.severity, "claimed_by": tip.claimed_by,
            "decision_reason": tip.decision_reason, "duplicate_of_tip_id": tip.duplicate_of_tip_id,
            "duplicate_of_hazard_id": tip.duplicate_of_hazard_id, "hazard_id": tip.hazard_id}


def _hazard_brief(hazard_id: int) -> dict | None:
    from app.hazards.queries import hazard_brief

    return hazard_brief(hazard_id)


def _jsonable(value):
    import json

    return json.loads(json.dumps(value, default=str))
