"""The resident's rights under PIPL (个人信息保护法): a copy of everything held about them, and
closing the account (注销账号).

Closing, in one transaction: every token of the resident is deleted (the caller's stops working),
the openid is replaced by a random pseudonym and the unionid dropped — a later login with the same
WeChat identity finds no account and starts a new, empty one — rewards not granted yet are given
up, photos in no tip are deleted, pending notices are not sent. The tips stay as public-safety
records and the ledger as accounting records, both under the pseudonymous resident row.

A reward in flight settles first: while a payout is not final (a packet about to be sent, sent and
not yet opened or refunded, in manual review) or a tip is still in its automatic checks, WeChat
still needs the real openid, so it waits in `held_openid` and the account is "closing".
`finish_closures` (periodic) erases it once nothing is in flight; the account is then "closed".
"""
from __future__ import annotations

import logging
import secrets
from datetime import datetime

from sqlalchemy import delete, exists, select, update

from app.audit import record_audit
from app.extensions import db
from app.hazards.models import HazardNotice
from app.hazards.notify import NOTICES
from app.media.photos import delete_photo_files, pending_display_ids, photo_urls
from app.models.base import utcnow
from app.models.photo import Photo
from app.models.resident import Resident, ResidentToken
from app.models.tip import Tip, TipEvent
from miniprogram_api.queries import STATUS_LABELS, category_names, hazard_for_tip, location_out

log = logging.getLogger(__name__)

PSEUDONYM_PREFIX = "closed:"
CHECKING_STATUSES = ("received", "checking")  # the intake job still asks WeChat about these


# --- export -------------------------------------------------------------------------------------

def export_resident_data(resident_id: int) -> dict:
    """Everything held about the resident, as the resident may read it: profile, login sessions,
    tips (places, photos' signed URLs and what their EXIF said, timeline), rewards, messages."""
    resident = db.session.get(Resident, resident_id)
    photos = list(db.session.scalars(select(Photo).where(Photo.resident_id == resident_id)
                                     .order_by(Photo.tip_id, Photo.position, Photo.id)))
    pending = pending_display_ids(p.id for p in photos)
    photos_by_tip: dict[int | None, list[dict]] = {}
    for photo in photos:
        photos_by_tip.setdefault(photo.tip_id, []).append(_photo_out(photo, photo.id in pending))
    events: dict[int, list[dict]] = {}
    for event in db.session.scalars(select(TipEvent).join(Tip, Tip.id == TipEvent.tip_id)
                                    .where(Tip.resident_id == resident_id, TipEvent.internal.is_(False))
                                    .order_by(TipEvent.id)):
        events.setdefault(event.tip_id, []).append({"status": event.status, "at": event.at, "note": event.note})
    rewards = _rewards(resident_id)
    reward_by_tip = {r["tip_id"]: r for r in rewards}
    names = category_names()
    tips = []
    for tip in db.session.scalars(select(Tip).where(Tip.resident_id == resident_id).order_by(Tip.id)):
        reward = reward_by_tip.get(tip.id)
        tips.append({
            "id": tip.id, "status": tip.status, "status_label": STATUS_LABELS.get(tip.status, tip.status),
            "category": tip.category, "category_name": names.get(tip.category), "description": tip.description,
            "location": location_out(tip.lat, tip.lng, tip.coord_in or "gcj02", tip.address),
            "created_at": tip.created_at, "photos": photos_by_tip.get(tip.id, []),
            "timeline": events.get(tip.id, []), "message": tip.decision_message,
            "hazard": hazard_for_tip(tip),
            "reward": {k: reward[k] for k in ("id", "amount_fen", "status")} if reward else None,
        })
    sessions = [{"created_at": t.created_at, "expires_at": t.expires_at, "revoked_at": t.revoked_at}
                for t in db.session.scalars(select(ResidentToken).where(ResidentToken.resident_id == resident_id)
                                            .order_by(ResidentToken.id))]
    return {
        "exported_at": utcnow(),
        "profile": {"id": resident.id, "openid": resident.openid, "unionid": resident.unionid,
                    "created_at": resident.created_at, "last_login_at": resident.last_login_at,
                    "no_reward": resident.no_reward, "blocked": resident.blocked},
        "sessions": sessions,
        "tips": tips,
        "photos_not_in_tips": photos_by_tip.get(None, []),
        "rewards": rewards,
        "messages": _messages(resident_id),
    }


def _photo_out(photo: Photo, display_pending: bool) -> dict:
    urls = photo_urls(photo.thumb_key if display_pending else photo.display_key, photo.thumb_key)
    exif = None
    if photo.exif_taken_at or photo.exif_lat is not None:
        exif = {"taken_at": photo.exif_taken_at,
                "location": location_out(photo.exif_lat, photo.exif_lng, "wgs84") if photo.exif_lat is not None
                else None}
    return {"id": photo.id, **urls, "width": photo.width, "height": photo.height, "uploaded_at": photo.created_at,
            "exif": exif}


def _rewards(resident_id: int) -> list[dict]:
    from rewards.queries import rewards_for_export

    return rewards_for_export(resident_id)


def _messages(resident_id: int) -> list[dict]:
    """The subscribe messages owed or sent to the resident (the text is what the template said)."""
    rows = db.session.scalars(select(HazardNotice).join(Tip, Tip.id == HazardNotice.tip_id)
                              .where(Tip.resident_id == resident_id).order_by(HazardNotice.id))
    return [{"tip_id": n.tip_id, "kind": n.kind, "title": NOTICES[n.kind][1], "text": NOTICES[n.kind][2],
             "status": n.status, "created_at": n.created_at, "sent_at": n.sent_at}
            for n in rows if n.kind in NOTICES]


# --- closing the account ------------------------------------------------------------------------

def close_account(resident_id: int) -> tuple[dict, list]:
    """Close the caller's account (flush only; the caller commits, then deletes the returned files).

    Returns ({"status": "closing"|"closed", "rewards_in_flight": n, "forgone_rewards": n}, photo keys).
    """
    resident = db.session.execute(select(Resident).where(Resident.id == resident_id).with_for_update()
                                  ).scalar_one()
    now = utcnow()
    db.session.execute(delete(ResidentToken).where(ResidentToken.resident_id == resident_id))
    if resident.closing_at is None:
        resident.held_openid = resident.openid
        resident.openid = PSEUDONYM_PREFIX + secrets.token_hex(16)
        resident.unionid = None
        resident.last_login_at = None
        resident.closing_at = now
    forgone = _forgo_rewards(resident_id)
    keys = _delete_loose_photos(resident_id)
    db.session.execute(update(HazardNotice).where(
        HazardNotice.status == "pending",
        HazardNotice.tip_id.in_(select(Tip.id).where(Tip.resident_id == resident_id))
    ).values(status="refused", sent_at=now).execution_options(synchronize_session=False))
    record_audit("resident.close", "resident", resident_id, actor=resident_id, actor_type="resident",
                 after={"forgone_rewards": forgone, "photos_deleted": len(keys) // 3})
    db.session.flush()
    in_flight = count_rewards_in_flight(resident_id)
    closed = finish_closure(resident_id, now)
    return {"status": "closed" if closed else "closing", "rewards_in_flight": in_flight,
            "forgone_rewards": forgone}, keys


def _forgo_rewards(resident_id: int) -> int:
    from rewards.grants import forgo_waiting_rewards

    return forgo_waiting_rewards(resident_id)


def count_rewards_in_flight(resident_id: int) -> int:
    from rewards.queries import count_payouts_in_flight

    return count_payouts_in_flight(resident_id)


def _delete_loose_photos(resident_id: int) -> list[str]:
    """Photos the resident uploaded but put in no tip serve no public record: they go now."""
    rows = db.session.execute(
        delete(Photo).where(Photo.resident_id == resident_id, Photo.tip_id.is_(None))
        .returning(Photo.original_key, Photo.display_key, Photo.thumb_key)).all()
    return [key for row in rows for key in row]


def finish_closure(resident_id: int, now: datetime | None = None) -> bool:
    """Erase the held openid when nothing needs it any more. Flush only. True when closed now."""
    busy = db.session.scalar(select(exists().where(Tip.resident_id == resident_id,
                                                   Tip.status.in_(CHECKING_STATUSES))))
    if busy or count_rewards_in_flight(resident_id):
        return False
    closed = db.session.execute(
        update(Resident).where(Resident.id == resident_id, Resident.closing_at.isnot(None),
                               Resident.closed_at.is_(None))
        .values(held_openid=None, closed_at=now or utcnow()).execution_options(synchronize_session=False)
    ).rowcount == 1
    if closed:
        record_audit("resident.closed", "resident", resident_id, actor_type="system")
        db.session.flush()
    return closed


def finish_closures(limit: int = 500) -> int:
    """Periodic: close every closing account whose rewards have settled. Returns how many."""
    ids = list(db.session.scalars(select(Resident.id).where(Resident.closing_at.isnot(None),
                                                            Resident.closed_at.is_(None))
                                  .order_by(Resident.closing_at).limit(limit)))
    db.session.rollback()
    done = 0
    for resident_id in ids:
        if finish_closure(resident_id):
            db.session.commit()
            done += 1
        else:
            db.session.rollback()
    if done:
        log.info("account closures finished", extra={"count": done})
    return done


def discard_files(keys: list[str]) -> None:
    if keys:
        delete_photo_files(keys)
