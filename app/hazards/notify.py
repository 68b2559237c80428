"""Telling reporters how their tip went: subscribe messages through the gateway, via the outbox.

A HazardNotice row (tip, kind, round) is written in the transaction that caused it — the tip
accepted, its hazard resolved, closed — with an outbox message for the "notify" queue. `send_notice`
sends it once: pending → sent | refused (no quota, 43101, is normal: the resident did not
subscribe; it is not retried). Transient WeChat trouble raises, so the outbox retries.
"""
from __future__ import annotations

import logging

from sqlalchemy import select, update

from app.display import TICKET_STATUS, TIP_STATUS, format_time
from app.extensions import db
from app.hazards.models import Hazard, HazardNotice
from app.models.base import utcnow
from app.models.resident import Resident
from app.models.tip import Tip
from app.outbox import publish, register_topic

log = logging.getLogger(__name__)

TOPIC = "hazard.notify"
register_topic(TOPIC, "notify", "app.hazards.notify.send_notice")

# kind -> (template purpose in WECHAT_SUBSCRIBE_TEMPLATES, the result phrase, the remark)
# The phrases are display's status words, so the message says what the API's status_label says.
NOTICES = {
    "accepted": ("tip_result", TIP_STATUS["accepted"], "您的报料已通过审核，已转交处置"),
    "resolved": ("hazard_closed", TICKET_STATUS["resolved"], "部门已处置完毕，等待核查"),
    "closed": ("hazard_closed", TICKET_STATUS["closed"], "隐患已结案，感谢您的报料"),
}


def queue_notice(tip_id: int, kind: str, *, round: int = 0) -> HazardNotice | None:
    """Owe the reporter a message (once per tip, kind and round), in the caller's transaction."""
    if kind not in NOTICES:
        raise ValueError(f"unknown notice kind {kind!r}")
    existing = db.session.scalar(select(HazardNotice).where(HazardNotice.tip_id == tip_id, HazardNotice.kind == kind,
                                                            HazardNotice.round == round))
    if existing is not None:
        return None
    notice = HazardNotice(tip_id=tip_id, kind=kind, round=round, status="pending")
    db.session.add(notice)
    db.session.flush()
    publish(TOPIC, {"notice_id": notice.id}, dedup_key=f"{TOPIC}:{notice.id}")
    return notice


def send_notice(notice_id: int) -> str:
    from app.extensions import wechat
    from app.hazards.catalogue import get_category

    notice = db.session.get(HazardNotice, notice_id)
    if notice is None or notice.status != "pending":
        db.session.rollback()
        return "skipped"
    tip = db.session.get(Tip, notice.tip_id)
    resident = db.session.get(Resident, tip.resident_id) if tip else None
    if tip is None or resident is None or resident.closing_at is not None:  # gone, or closed the account
        _finish(notice_id, "refused")
        return "refused"
    purpose, phrase, remark = NOTICES[notice.kind]
    category = get_category(tip.category)
    hazard = db.session.get(Hazard, tip.hazard_id) if tip.hazard_id else None
    if notice.kind == "resolved" and hazard is not None and hazard.resolution_note:
        remark = hazard.resolution_note  # what the department says it did
    data = {"thing1": _thing(category.name if category else tip.category), "phrase2": phrase,
            "thing3": _thing(remark), "time4": format_time(utcnow())}
    openid, kind, tip_id = resident.wechat_openid, notice.kind, tip.id
    db.session.rollback()  # no transaction held open across the WeChat call
    accepted = wechat.send_subscribe_message(openid, purpose, data, page=f"pages/tip/detail?id={tip_id}")
    _finish(notice_id, "sent" if accepted else "refused")
    log.info("hazard notice", extra={"notice_id": notice_id, "kind": kind, "sent": accepted})
    return "sent" if accepted else "refused"


def _finish(notice_id: int, status: str) -> None:
    db.session.execute(update(HazardNotice).where(HazardNotice.id == notice_id, HazardNotice.status == "pending")
                       .values(status=status, sent_at=utcnow()))
    db.session.commit()


def _thing(text: str) -> str:
    """Subscribe-message "thing" values are at most 20 characters."""
    text = (text or "").strip() or "-"
    return text if len(text) <= 20 else text[:19] + "…"
