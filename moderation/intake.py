"""The intake job: every new tip runs the automatic checks once, then waits for a moderator.

received ──CAS──▶ checking ──(checks)──▶ pending_review | duplicate | rejected

Idempotent: the job takes a tip id; the first compare-and-set (received → checking) decides who
works on it, and the last one (checking → outcome, only while our claim stamp still holds)
decides whether the work counts. A run that crashed in between leaves the tip in `checking`; after
INTAKE_STALE_SECONDS another run takes it over. WeChat calls happen with no transaction open.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app
from sqlalchemy import select, update

from app.extensions import db
from app.media.photos import ensure_display_copies
from app.models.base import utcnow
from app.models.resident import Resident
from app.models.tip import Tip
from app.tips import change_tip_status, record_tip_event
from moderation import checks, dedup
from moderation.models import TipMediaCheck

log = logging.getLogger(__name__)

DEFAULT_STALE_SECONDS = 300

NOTE_CHECKING = "已收到报料，系统正在自动检查"
NOTE_PHOTOS = "照片查重完成"
NOTE_CONTENT = "内容安全检查完成"
NOTE_PENDING = "自动检查完成，已进入人工审核，请耐心等待"
NOTE_REJECTED_RISKY = "报料内容未通过内容安全检查，未予受理"


class IntakeBusy(Exception):
    """Another run holds this tip right now; the outbox retries the message later."""


def process_tip(tip_id: int) -> str:
    """Run the automatic checks on one tip. Returns what happened (for logs and tests)."""
    stamp = _take(tip_id)
    if stamp is None:
        return "skipped"
    tip = db.session.get(Tip, tip_id)
    resident = db.session.get(Resident, tip.resident_id)
    openid = resident.wechat_openid  # None once a closed account's identity is erased

    findings = checks.check_photos(tip)
    nearby = checks.check_nearby(tip)
    reporter = checks.reporter_signals(tip, resident)
    where = checks.locate_tip(tip)
    priority = _priority(tip.category)
    # WeChat fetches the display copies for the media check: make any still pending (their
    # photo.display job normally ran first on the same queue, but a redelivery can reorder them).
    ensure_display_copies(tip.photos)
    db.session.commit()  # end the transaction before talking to WeChat

    text = {"suggest": "skipped"}
    media: list[dict] = []
    if findings.own_resend_of is None and openid:  # a resend is settled without asking WeChat
        text = checks.check_text(tip, openid)
        media = checks.send_media_checks(tip, openid)  # records pending checks (flush)

    outcome = _finish(tip_id, stamp, findings, nearby, reporter, where, priority, text, media)
    log.info("intake done", extra={"tip_id": tip_id, "outcome": outcome})
    if outcome in ("rejected", "duplicate"):  # refused without a moderator: the demo's terminal says so
        _log_refused(tip_id, outcome, check="photos" if outcome == "duplicate" else "text",
                     duplicate_of=findings.own_resend_of)
    return outcome


def _log_refused(tip_id: int, outcome: str, *, check: str, duplicate_of: int | None = None) -> None:
    """A tip the automatic checks refused (app/demo_feed.py prints one line for it)."""
    log.info("tip refused at intake", extra={"event": "tip.refused", "tip_id": tip_id, "outcome": outcome,
                                              "check": check, "duplicate_of": duplicate_of})


def _take(tip_id: int):
    """CAS the tip into `checking`; returns our claim stamp (its status_changed_at) or None."""
    tip = db.session.get(Tip, tip_id)
    if tip is None or tip.status not in ("received", "checking"):
        db.session.rollback()
        return None
    if tip.status == "received":
        if not change_tip_status(tip_id, ["received"], "checking", NOTE_CHECKING):
            db.session.rollback()
            return _take(tip_id)  # it moved under us: look again
    else:
        stale = current_app.config.get("INTAKE_STALE_SECONDS", DEFAULT_STALE_SECONDS)
        seen = tip.status_changed_at
        if seen > utcnow() - timedelta(seconds=stale):
            db.session.rollback()
            raise IntakeBusy(f"tip {tip_id} is being checked")
        taken = db.session.execute(
            update(Tip).where(Tip.id == tip_id, Tip.status == "checking", Tip.status_changed_at == seen)
            .values(status_changed_at=utcnow()).execution_options(synchronize_session=False)
        ).rowcount
        if not taken:
            db.session.rollback()
            raise IntakeBusy(f"tip {tip_id} was taken over")
        record_tip_event(tip_id, "checking", "intake restarted after an interrupted run", internal=True)
    # Index the photos now, not at the end: a tip checked at the same moment then already sees them.
    for photo in db.session.get(Tip, tip_id).photos:
        dedup.index_photo_hash(photo.id, photo.phash)
    db.session.commit()
    stamp = db.session.scalar(select(Tip.status_changed_at).where(Tip.id == tip_id))
    db.session.expire_all()
    return stamp


def _priority(category_code: str) -> int:
    from app.hazards.catalogue import get_category

    category = get_category(category_code)
    return int(category.severity_weight) if category else 0


def _finish(tip_id, stamp, findings, nearby, reporter, where, priority, text, media) -> str:
    current = db.session.execute(
        select(Tip.status, Tip.status_changed_at).where(Tip.id == tip_id).with_for_update()
    ).first()
    if current is None or current.status != "checking" or current.status_changed_at != stamp:
        db.session.rollback()
        return "superseded"  # withdrawn meanwhile, or a later run took over
    tip = db.session.get(Tip, tip_id)

    flags = []
    if findings.own_resend_of is not None:
        flags.append(checks.flag("own_resend", findings.own_resend_of))
    if findings.stolen_from_others:
        flags.append(checks.flag("stolen_photo", findings.stolen_from_others))
    if any(not c["same_reporter"] for c in findings.candidates):
        flags.append(checks.flag("near_duplicate"))
    if any(c["hazard_id"] for c in nearby):
        flags.append(checks.flag("nearby_hazard"))
    if any(c["hazard_id"] is None for c in nearby):
        flags.append(checks.flag("nearby_tip"))
    suggest = text.get("suggest")
    if suggest == "review":
        flags.append(checks.flag("text_review", text.get("label_name")))
    elif suggest == "risky":
        flags.append(checks.flag("text_risky", text.get("label_name")))
    elif suggest == "unavailable":
        flags.append(checks.flag("content_check_unavailable"))
    if any(m["state"] == "skipped" for m in media):
        flags.append(checks.flag("media_check_skipped"))
    if any(m["state"] == "unavailable" for m in media):
        flags.append(checks.flag("content_check_unavailable"))
    flags.extend(checks.reporter_flags(reporter))
    if where is None:
        flags.append(checks.flag("outside_service_area"))

    signals = {"flags": flags, "reporter": reporter, "grid": where,
               "content": {"text": text, "media": media}, "checked_at": utcnow().isoformat()}
    candidates = findings.candidates + nearby
    values = {"signals": signals, "candidates": candidates, "priority": priority,
              "grid_id": where["grid_id"] if where else None, "grid_code": where["grid_code"] if where else None,
              "town_code": where["town_code"] if where else None,
              "flagged": suggest in ("review", "unavailable") or any(m["state"] != "pending" for m in media)}

    for item in media:
        if item["trace_id"]:
            db.session.add(TipMediaCheck(tip_id=tip_id, photo_id=item["photo_id"], trace_id=item["trace_id"]))

    record_tip_event(tip_id, "checking", NOTE_PHOTOS)
    if findings.own_resend_of is not None:
        outcome = _auto_duplicate(tip, findings.own_resend_of, values)
    elif suggest == "risky":
        outcome = "rejected"
        record_tip_event(tip_id, "checking", NOTE_CONTENT)
        change_tip_status(tip_id, ["checking"], "rejected", NOTE_REJECTED_RISKY, decision_reason="content_risky",
                          decision_message=NOTE_REJECTED_RISKY, decided_at=utcnow(), **values)
        _record_auto_decision(tip_id, "auto_reject", "rejected", reason="content_risky", message=NOTE_REJECTED_RISKY)
    else:
        outcome = "pending_review"
        record_tip_event(tip_id, "checking", NOTE_CONTENT)
        change_tip_status(tip_id, ["checking"], "pending_review", NOTE_PENDING, **values)
    db.session.commit()
    return outcome


def _auto_duplicate(tip: Tip, original_tip_id: int, values: dict) -> str:
    from app.hazards.tickets import attach_duplicate_tip

    original = db.session.get(Tip, original_tip_id)
    hazard_id = original.hazard_id if original is not None else None
    note = f"您此前已提交过相同照片的报料（编号 {original_tip_id}），本次报料作重复处理"
    change_tip_status(tip.id, ["checking"], "duplicate", note, duplicate_of_tip_id=original_tip_id,
                      duplicate_of_hazard_id=hazard_id, decision_reason="own_resend", decided_at=utcnow(), **values)
    if hazard_id is not None:
        db.session.refresh(tip)
        attach_duplicate_tip(tip, hazard_id)
    _record_auto_decision(tip.id, "auto_duplicate", "duplicate", reason="own_resend",
                          duplicate_of={"tip_id": original_tip_id, "hazard_id": hazard_id})
    return "duplicate"


def _record_auto_decision(tip_id: int, action: str, to_status: str, from_status: str = "checking", **fields) -> None:
    from app.audit import record_audit
    from moderation.models import ReviewDecision

    db.session.add(ReviewDecision(tip_id=tip_id, action=action, actor_id=None, from_status=from_status,
                                  to_status=to_status, **fields))
    record_audit(f"tip.{action}", "tip", tip_id, actor_type="system", before={"status": from_status},
                 after={"status": to_status, **{k: v for k, v in fields.items() if v is not None}})


# --- WeChat's image verdicts arrive later, by push --------------------------------------------------

NOTE_REJECTED_MEDIA = "报料图片未通过内容安全检查，未予受理"


def sweep_media_results(limit: int = 200) -> int:
    """Apply image verdicts that arrived since the last sweep (periodic, every few seconds).

    risky → the tip is rejected automatically if no moderator decided it yet; review → flagged.
    Each verdict is applied once (compare-and-set on applied_at)."""
    from app.models.wechat import WeChatMediaCheck

    rows = db.session.execute(
        select(TipMediaCheck.id, TipMediaCheck.tip_id, TipMediaCheck.photo_id, WeChatMediaCheck.status,
               WeChatMediaCheck.suggest)
        .join(WeChatMediaCheck, WeChatMediaCheck.trace_id == TipMediaCheck.trace_id)
        .where(TipMediaCheck.applied_at.is_(None), WeChatMediaCheck.status != "pending")
        .order_by(TipMediaCheck.id).limit(limit)
    ).all()
    db.session.rollback()
    applied = 0
    for check_id, tip_id, photo_id, status, suggest in rows:
        verdict = suggest if status == "done" else "error"
        if _apply_media_verdict(check_id, tip_id, photo_id, verdict):
            applied += 1
    return applied


def _apply_media_verdict(check_id: int, tip_id: int, photo_id: int, verdict: str) -> bool:
    taken = db.session.execute(
        update(TipMediaCheck).where(TipMediaCheck.id == check_id, TipMediaCheck.applied_at.is_(None))
        .values(applied_at=utcnow(), verdict=verdict)
    ).rowcount
    if not taken:
        db.session.rollback()
        return False
    tip = db.session.get(Tip, tip_id)
    signals = dict(tip.signals or {})
    content = dict(signals.get("content") or {})
    content["media"] = [dict(m, state=verdict) if m.get("photo_id") == photo_id else m
                        for m in content.get("media", [])]
    signals["content"] = content
    flags = list(signals.get("flags") or [])
    if verdict in ("review", "risky", "error"):
        code = {"review": "media_review", "risky": "media_risky", "error": "content_check_unavailable"}[verdict]
        if not any(f.get("code") == code for f in flags):
            flags.append(checks.flag(code, photo_id))
    signals["flags"] = flags
    tip.signals = signals
    if verdict in ("review", "error"):
        tip.flagged = True
    refused = False
    if verdict == "risky":
        tip.flagged = True
        if change_tip_status(tip_id, ["pending_review"], "rejected", NOTE_REJECTED_MEDIA, claimed_by=None,
                             lease_until=None, decision_reason="content_risky", decision_message=NOTE_REJECTED_MEDIA,
                             decided_at=utcnow()):
            _record_auto_decision(tip_id, "auto_reject", "rejected", "pending_review", reason="content_risky",
                                  message=NOTE_REJECTED_MEDIA)
            refused = True
    db.session.commit()
    if refused:
        _log_refused(tip_id, "rejected", check="media")
    return True
