"""The staff view of a tip (API and console). Never the reporter's openid: residents are an id."""
from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.models.audit import AuditEntry
from app.models.photo import Photo
from app.models.tip import Tip
from moderation.models import ReviewDecision


def iso(value):
    return value.isoformat() if value is not None else None


def photo_view(photo: Photo) -> dict:
    from app.media.photos import photo_urls

    return {"id": photo.id, "width": photo.width, "height": photo.height, "sha256": photo.sha256,
            **photo_urls(photo.display_key, photo.thumb_key)}


def category_view(code: str) -> dict:
    from app.hazards.catalogue import get_category

    category = get_category(code)
    if category is None:
        return {"code": code, "name": code, "department": None}
    return category.to_brief()


def candidate_views(tip: Tip) -> list[dict]:
    """The stored candidates, with a thumbnail of the other photo / tip for side-by-side review."""
    items = [dict(c) for c in (tip.candidates or [])]
    photo_ids = {c["photo_id"] for c in items if c.get("photo_id")}
    tip_ids = {c["tip_id"] for c in items if c.get("tip_id") and not c.get("photo_id")}
    photos = {p.id: p for p in db.session.scalars(select(Photo).where(Photo.id.in_(photo_ids)))} if photo_ids else {}
    firsts = {}
    if tip_ids:
        for photo in db.session.scalars(select(Photo).where(Photo.tip_id.in_(tip_ids)).order_by(Photo.position)):
            firsts.setdefault(photo.tip_id, photo)
    for item in items:
        photo = photos.get(item.get("photo_id")) or firsts.get(item.get("tip_id"))
        item["photo"] = photo_view(photo) if photo is not None else None
    return items


def tip_view(tip: Tip, *, detail: bool = False) -> dict:
    view = {
        "id": tip.id, "status": tip.status, "category": category_view(tip.category),
        "description": tip.description, "severity": tip.severity,
        "location": {"lat": tip.lat, "lng": tip.lng, "coord": "wgs84", "address": tip.address},
        "created_at": iso(tip.created_at), "resident_id": tip.resident_id, "priority": tip.priority,
        "flagged": tip.flagged, "claimed_by": tip.claimed_by, "lease_until": iso(tip.lease_until),
        "grid": (tip.signals or {}).get("grid"),
        "photos": [photo_view(p) for p in tip.photos],
        "signals": tip.signals or {}, "candidates": candidate_views(tip),
        "decision": {"by": tip.decided_by, "at": iso(tip.decided_at), "reason": tip.decision_reason,
                     "message": tip.decision_message} if tip.decided_at else None,
        "duplicate_of": ({"tip_id": tip.duplicate_of_tip_id, "hazard_id": tip.duplicate_of_hazard_id}
                         if tip.duplicate_of_tip_id or tip.duplicate_of_hazard_id else None),
        "hazard": _hazard(tip.hazard_id),
    }
    if detail:
        view["timeline"] = [{"status": e.status, "at": iso(e.at), "note": e.note, "internal": e.internal,
                             "actor_type": e.actor_type, "actor_id": e.actor_id} for e in tip.events]
        view["audit"] = audit_view(tip.id)
        view["decisions"] = [
            {"id": d.id, "action": d.action, "actor_id": d.actor_id, "at": iso(d.created_at), "to_status": d.to_status,
             "reason": d.reason, "message": d.message, "reversed_at": iso(d.reversed_at), "reversed_by": d.reversed_by}
            for d in db.session.scalars(select(ReviewDecision).where(ReviewDecision.tip_id == tip.id)
                                        .order_by(ReviewDecision.id))]
    return view


def audit_view(tip_id: int) -> list[dict]:
    from app.models.staff import StaffUser

    rows = db.session.scalars(select(AuditEntry).where(AuditEntry.object_type == "tip", AuditEntry.object_id == tip_id)
                              .order_by(AuditEntry.id)).all()
    names = {}
    ids = {r.actor_id for r in rows if r.actor_type == "staff" and r.actor_id}
    if ids:
        names = dict(db.session.execute(select(StaffUser.id, StaffUser.username).where(StaffUser.id.in_(ids))).all())
    return [{"id": r.id, "at": iso(r.created_at), "actor_type": r.actor_type, "actor_id": r.actor_id,
             "actor": names.get(r.actor_id), "action": r.action, "before": r.before, "after": r.after, "note": r.note}
            for r in rows]


def _hazard(hazard_id):
    if hazard_id is None:
        return None
    from app.hazards.queries import hazard_brief

    return hazard_brief(hazard_id)
