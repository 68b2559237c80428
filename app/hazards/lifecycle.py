"""The ticket lifecycle (五步闭环): a transition table, compare-and-set moves, SLA deadlines, hooks.

    reported → dispatched → accepted → handling → resolved → verified → closed
    dispatched/accepted → returned (the department says: not ours) → dispatched (re-routed) | closed
    resolved → reopened (verification failed) → handling | resolved

Every move is one conditional UPDATE on `status` (and, for a department, on the department too), so
two people acting at once cannot both win: the loser gets 409. Each move writes a HazardEvent (the
history and the webhook event), resets the SLA deadline, shows the reporters' timelines the
progress, queues their notices, and runs the hooks other areas registered (rewards on "verified").
"""
from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta
from typing import Callable

from sqlalchemy import update

from app.audit import record_audit
from app.display import TICKET_STATUS
from app.errors import Conflict, Forbidden, NotFound, Unprocessable
from app.extensions import db
from app.hazards.models import Hazard, HazardEvent
from app.models.base import utcnow

STATUS_LABELS = {s: TICKET_STATUS[s] for s in ("reported", "dispatched", "accepted", "handling", "resolved",
                                            "verified", "closed", "returned", "reopened")}

DEPARTMENT, SUPERVISOR = "department", "supervisor"
# (from, to) -> who may make the move. Supervisors (and the system) may make every move.
TRANSITIONS: dict[tuple[str, str], str] = {
    ("reported", "dispatched"): SUPERVISOR,
    ("dispatched", "accepted"): DEPARTMENT,
    ("dispatched", "returned"): DEPARTMENT,
    ("accepted", "handling"): DEPARTMENT,
    ("accepted", "resolved"): DEPARTMENT,
    ("accepted", "returned"): DEPARTMENT,
    ("handling", "resolved"): DEPARTMENT,
    ("reopened", "handling"): DEPARTMENT,
    ("reopened", "resolved"): DEPARTMENT,
    ("resolved", "verified"): SUPERVISOR,
    ("resolved", "reopened"): SUPERVISOR,
    ("verified", "closed"): SUPERVISOR,
    ("returned", "dispatched"): SUPERVISOR,
    ("returned", "closed"): SUPERVISOR,
}
# Moves that need a note: what was done, why it is not ours, why verification failed.
NOTE_REQUIRED = {"resolved": "请填写处置说明", "returned": "请填写退回原因", "reopened": "请填写核查未通过的原因"}

# The SLA step a status is waiting on (catalogue sla_hours keys). Moving within one step
# (accepted → handling, reopened → handling) keeps the deadline already running.
STEP_OF_STATUS = {
    "reported": "dispatch", "returned": "dispatch",
    "dispatched": "accept",
    "accepted": "resolve", "handling": "resolve", "reopened": "resolve",
    "resolved": "verify",
    "verified": "close",
}


@dataclasses.dataclass(frozen=True)
class Actor:
    """Who moves a ticket: staff (id, roles, department), a department system (API key), or the system."""

    type: str  # staff | department | system
    id: int | None = None
    department_code: str | None = None
    roles: tuple[str, ...] = ()

    @property
    def supervises(self) -> bool:
        return self.type == "system" or bool({"supervisor", "admin"} & set(self.roles))

    @classmethod
    def system(cls) -> "Actor":
        return cls("system")

    @classmethod
    def for_staff(cls, user) -> "Actor":
        return cls("staff", user.id, user.department_code, tuple(user.role_names))

    @classmethod
    def for_department(cls, department) -> "Actor":
        return cls("department", None, department.code)


TransitionHook = Callable[[Hazard, str, str], None]
TRANSITION_HOOKS: list[TransitionHook] = []


def register_transition_hook(fn: TransitionHook) -> None:
    """fn(hazard, from_status, to_status) runs inside the transition's transaction (only flush)."""
    if fn not in TRANSITION_HOOKS:
        TRANSITION_HOOKS.append(fn)


def allowed_moves(status: str) -> list[str]:
    return [to for (frm, to) in TRANSITIONS if frm == status]


def status_label(status: str) -> str:
    return STATUS_LABELS.get(status, status)


def deadline_for(hazard: Hazard, status: str, now=None):
    """When the step that `status` waits on is due, from the category's sla_hours; None when closed."""
    from app.hazards.catalogue import get_category

    step = STEP_OF_STATUS.get(status)
    category = get_category(hazard.category_code)
    if step is None or category is None or step not in (category.sla_hours or {}):
        return None
    return (now or utcnow()) + timedelta(hours=category.sla_for(step))


def transition_hazard(hazard_id: int, to_status: str, actor: Actor, note: str | None = None, *,
                      department_code: str | None = None, photo_ids: list[int] | None = None) -> Hazard:
    """Move a ticket, or raise: 404 (unknown, or another department's), 409 (illegal or lost the
    race), 403 (role), 422 (missing note, unknown department). The caller commits."""
    hazard = db.session.get(Hazard, hazard_id)
    if hazard is None or not _may_see(actor, hazard):
        raise NotFound("工单不存在", code="hazard_not_found")
    from_status = hazard.status
    note = (note or "").strip() or None
    if (from_status, to_status) not in TRANSITIONS:
        raise Conflict(f"工单当前状态为「{status_label(from_status)}」，不能变为「{status_label(to_status)}」",
                       code="illegal_transition", fields={"to": [to_status], "status": [from_status]})
    who = TRANSITIONS[(from_status, to_status)]
    if not actor.supervises and (who != DEPARTMENT or actor.department_code is None):
        raise Forbidden("您无权进行此操作", code="transition_forbidden")
    if to_status in NOTE_REQUIRED and not note:
        raise Unprocessable(NOTE_REQUIRED[to_status], code="note_required", fields={"note": ["必填"]})
    values = _values_for(hazard, from_status, to_status, note, department_code, photo_ids)
    guard = [Hazard.id == hazard_id, Hazard.status == from_status]
    if actor.type != "system" and not actor.supervises:
        guard.append(Hazard.department_id == hazard.department_id)
    changed = db.session.execute(
        update(Hazard).where(*guard).values(**values).execution_options(synchronize_session=False)
    ).rowcount
    if not changed:
        db.session.refresh(hazard)
        raise Conflict(f"工单状态已被他人更新为「{status_label(hazard.status)}」，请刷新后重试",
                       code="hazard_state_changed", fields={"status": [hazard.status]})
    db.session.refresh(hazard)
    kind = "rerouted" if to_status == "dispatched" and from_status == "returned" else "status"
    event = record_hazard_event(hazard, kind, actor, from_status=from_status, to_status=to_status, note=note,
                                photo_ids=photo_ids or [])
    record_audit("hazard.transition", "hazard", hazard.id, actor=actor.id, actor_type=actor.type,
                 before={"status": from_status}, after={"status": to_status,
                                                        "department": hazard.department.code}, note=note)
    _tell_reporters(hazard, from_status, to_status, note, event)
    for hook in list(TRANSITION_HOOKS):
        hook(hazard, from_status, to_status)
    return hazard


def _may_see(actor: Actor, hazard: Hazard) -> bool:
    if actor.supervises or actor.type == "system":
        return True
    return actor.department_code is not None and hazard.department.code == actor.department_code


def _values_for(hazard, from_status, to_status, note, department_code, photo_ids) -> dict:
    now = utcnow()
    values = {"status": to_status, "status_changed_at": now, "updated_at": now, "overdue": False,
              "overdue_since": None}
    same_step = STEP_OF_STATUS.get(from_status) == STEP_OF_STATUS.get(to_status) and hazard.due_at is not None
    values["due_at"] = hazard.due_at if same_step else deadline_for(hazard, to_status, now)
    if same_step and hazard.overdue:  # still late on the same step
        values["overdue"], values["overdue_since"] = True, hazard.overdue_since
    if to_status == "resolved":
        values["resolution_note"] = note
        values["resolution_photo_ids"] = list(photo_ids or [])
    elif photo_ids:
        raise Unprocessable("只有办结时可以附照片", code="photos_not_allowed", fields={"photo_ids": ["不允许"]})
    if to_status == "returned":
        values["return_reason"] = note
    if to_status == "reopened":
        values["reopen_count"] = Hazard.reopen_count + 1
    if to_status == "closed":
        values["closed_at"] = now
    if to_status == "dispatched" and department_code and department_code != hazard.department.code:
        from app.hazards.catalogue import get_department

        department = get_department(department_code)
        if department is None or not department.active:
            raise Unprocessable("部门不存在", code="unknown_department", fields={"department": [department_code]})
        values["department_id"] = department.id
    elif department_code and department_code != hazard.department.code:
        raise Unprocessable("只有分拨时可以改派部门", code="department_not_allowed",
                            fields={"department": ["只能在分拨时指定"]})
    return values


def record_hazard_event(hazard: Hazard, kind: str, actor: Actor | None = None, *, from_status=None,
                        to_status=None, note=None, photo_ids=None) -> HazardEvent:
    """History row + webhook deliveries, in the caller's transaction."""
    from app.hazards.queries import public_ticket
    from app.hazards.webhooks import queue_deliveries

    actor = actor or Actor.system()
    db.session.flush()
    event = HazardEvent(uid=str(uuid.uuid4()), hazard_id=hazard.id, kind=kind, from_status=from_status,
                        to_status=to_status, actor_type=actor.type,
                        actor_id=actor.id if actor.type == "staff" else None,
                        department_code=actor.department_code if actor.type == "department" else None,
                        note=note, photo_ids=list(photo_ids or []), at=utcnow())
    db.session.add(event)
    db.session.flush()
    event.payload = {
        "id": event.uid, "sequence": event.id, "type": f"hazard.{kind}", "occurred_at": event.at.isoformat(),
        "from_status": from_status, "to_status": to_status, "note": note,
        "actor": {"type": actor.type, "department": event.department_code},
        "hazard": public_ticket(hazard),
    }
    queue_deliveries(event)
    return event


# What a reporter reads on their tip's timeline, and which moves send them a subscribe message.
TIMELINE_NOTES = {
    "dispatched": "您报料的隐患已分派至{dept}处置",
    "accepted": "{dept}已受理",
    "handling": "{dept}正在处置",
    "resolved": "{dept}已处置完毕，等待核查",
    "verified": "处置结果已核查通过",
    "closed": "隐患已结案，感谢您的报料",
    "reopened": "核查未通过，已要求重新处置",
}
NOTIFY_ON = ("resolved", "closed")


def _tell_reporters(hazard: Hazard, from_status: str, to_status: str, note: str | None, event: HazardEvent) -> None:
    from app.hazards.notify import queue_notice
    from app.hazards.tickets import linked_tip_ids
    from app.tips import record_tip_event

    text = TIMELINE_NOTES.get(to_status)
    tips = linked_tip_ids(hazard.id)
    for tip_id, relation in tips:
        if text is not None:
            record_tip_event(tip_id, f"hazard_{to_status}", text.format(dept=hazard.department.name))
        else:  # returned: staff-only detail, the reporter just sees nothing new
            record_tip_event(tip_id, f"hazard_{to_status}", note, internal=True)
        if to_status in NOTIFY_ON and relation != "duplicate":
            queue_notice(tip_id, to_status, round=hazard.reopen_count)
