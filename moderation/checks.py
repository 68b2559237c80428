"""The automatic checks the intake job runs on a new tip, each a function of the tip alone.

Each returns plain data (JSON-ready): candidates (possible duplicates, docs/API.md's shape plus detail)
and signals for the moderator. None of them changes the tip; moderation/intake.py decides.
"""
from __future__ import annotations

import dataclasses
import logging
import math
from datetime import datetime, timedelta, timezone

from flask import current_app
from sqlalchemy import func, select

from app.display import day_start
from app.extensions import db
from app.geo.coords import haversine_m
from app.models.base import utcnow
from app.models.photo import Photo
from app.models.resident import Resident
from app.models.tip import Tip
from moderation import dedup

log = logging.getLogger(__name__)

# Earlier tips whose photos a resend duplicates. A tip sent back for more information (need_info)
# or withdrawn may legitimately be sent again with the same photo.
RESEND_TARGET_STATUSES = ("received", "checking", "pending_review", "accepted", "rejected", "duplicate")
EXIF_TIME_FAR = timedelta(days=3)
EXIF_GPS_FAR_M = 1000.0
MAX_CANDIDATES = 10

FLAG_LABELS = {
    "own_resend": "报料人重复提交本人照片",
    "stolen_photo": "照片曾由其他报料人提交（疑似盗用）",
    "near_duplicate": "与其他报料照片相似",
    "nearby_hazard": "附近已有同类隐患工单",
    "nearby_tip": "附近有同类待审核报料",
    "text_review": "文字内容需人工复核",
    "text_risky": "文字内容违规",
    "content_check_unavailable": "内容安全检查暂不可用",
    "media_review": "图片需人工复核",
    "media_risky": "图片内容违规",
    "media_check_skipped": "图片未送检（无公网地址）",
    "many_tips_today": "今日报料较多",
    "rejection_history": "近期多次被驳回",
    "no_reward_list": "报料人在不发奖励名单中",
    "exif_time_far": "照片拍摄时间与报料时间相差较大",
    "exif_gps_far": "照片拍摄位置与报料位置相距较远",
    "outside_service_area": "位置不在服务范围内",
}


def flag(code: str, detail=None) -> dict:
    entry = {"code": code, "label": FLAG_LABELS[code]}
    if detail is not None:
        entry["detail"] = detail
    return entry


def phash_distance() -> int:
    return int(current_app.config.get("MODERATION_PHASH_DISTANCE", dedup.DEFAULT_DISTANCE))


# --- photos: exact (sha256) and near (perceptual hash) duplicates --------------------------------

@dataclasses.dataclass
class PhotoFindings:
    candidates: list[dict]
    own_resend_of: int | None      # an earlier tip of the same reporter with the same photo
    stolen_from_others: int        # photos sent earlier by another reporter


def check_photos(tip: Tip) -> PhotoFindings:
    own_ids = [p.id for p in tip.photos]
    distance = phash_distance()
    matches: dict[int, tuple[int, str]] = {}  # other photo id -> (distance, "exact"|"near")
    shas = {p.sha256 for p in tip.photos}
    if shas:
        exact = db.session.scalars(
            select(Photo.id).where(Photo.sha256.in_(shas), Photo.tip_id.is_not(None), Photo.tip_id != tip.id)
        ).all()
        for photo_id in exact:
            matches[photo_id] = (0, "exact")
    for photo in tip.photos:
        for photo_id, d in dedup.find_near_hashes(photo.phash, distance, exclude_photo_ids=own_ids):
            if photo_id not in matches or matches[photo_id][0] > d:
                matches[photo_id] = (d, matches.get(photo_id, (d, "near"))[1])
    if not matches:
        return PhotoFindings([], None, 0)
    rows = db.session.execute(
        select(Photo.id, Photo.tip_id, Tip.resident_id, Tip.status, Tip.created_at, Tip.duplicate_of_tip_id)
        .join(Tip, Tip.id == Photo.tip_id)
        .where(Photo.id.in_(list(matches)), Tip.id != tip.id)
    ).all()
    candidates, own_resend_of, stolen = [], None, 0
    for photo_id, other_tip_id, resident_id, status, created_at, dup_of in rows:
        d, match = matches[photo_id]
        same = resident_id == tip.resident_id
        earlier = created_at <= tip.created_at and other_tip_id < tip.id
        candidates.append({"tip_id": other_tip_id, "photo_id": photo_id, "kind": "photo", "distance": d,
                           "match": match, "same_reporter": same, "status": status})
        if same and earlier and status in RESEND_TARGET_STATUSES:
            root = dup_of or other_tip_id  # point at the original, not at another copy
            if own_resend_of is None or root < own_resend_of:
                own_resend_of = root
        if not same and earlier:
            stolen += 1
    candidates.sort(key=lambda c: (c["distance"], c["tip_id"], c["photo_id"]))
    return PhotoFindings(candidates[:MAX_CANDIDATES], own_resend_of, stolen)


# --- the same hazard nearby ----------------------------------------------------------------------

def check_nearby(tip: Tip) -> list[dict]:
    """Open tickets of the same category within the category's radius (hazards' query), and tips of
    the same category still waiting for review within the same radius."""
    from app.hazards.catalogue import get_category
    from app.hazards.tickets import find_open_hazards_near

    here = (tip.lat, tip.lng)
    found = []
    for hazard in find_open_hazards_near(tip.category, tip.lat, tip.lng):
        found.append({"tip_id": hazard.first_tip_id, "photo_id": None, "kind": "nearby", "hazard_id": hazard.id,
                      "distance": round(haversine_m(here, (hazard.lat, hazard.lng)), 1)})
    category = get_category(tip.category)
    radius = category.dedup_radius_m if category else 100.0
    d_lat = radius / 111_320.0
    d_lng = radius / (111_320.0 * max(math.cos(math.radians(tip.lat)), 0.01))
    pending = db.session.execute(
        select(Tip.id, Tip.lat, Tip.lng).where(
            Tip.category == tip.category, Tip.status == "pending_review", Tip.id != tip.id,
            Tip.lat.between(tip.lat - d_lat, tip.lat + d_lat), Tip.lng.between(tip.lng - d_lng, tip.lng + d_lng))
        .order_by(Tip.id).limit(50)
    ).all()
    for other_id, lat, lng in pending:
        d = haversine_m(here, (lat, lng))
        if d <= radius:
            found.append({"tip_id": other_id, "photo_id": None, "kind": "nearby", "hazard_id": None,
                          "distance": round(d, 1)})
    found.sort(key=lambda c: (c["hazard_id"] is None, c["distance"]))
    return found[:MAX_CANDIDATES]


# --- content security through the gateway --------------------------------------------------------

def check_text(tip: Tip, openid: str) -> dict:
    """{"suggest": pass|review|risky|unavailable, "label"}; WeChat trouble never blocks a tip."""
    from app.wechat import WeChatUnavailable
    from app.errors import RateLimited
    from app.extensions import wechat

    try:
        verdict = wechat.check_text(tip.description or "", openid)
    except (WeChatUnavailable, RateLimited):
        return {"suggest": "unavailable", "label": None}
    return {"suggest": verdict.suggest, "label": verdict.label, "label_name": verdict.label_name}


def send_media_checks(tip: Tip, openid: str) -> list[dict]:
    """Send each photo to media_check_async; returns [{"photo_id", "trace_id"|None, "state"}]. The
    gateway records the pending check (flush); the caller stores the trace ids and commits."""
    from app.errors import RateLimited
    from app.extensions import wechat
    from app.media.photos import photo_urls
    from app.wechat import WeChatUnavailable

    sent = []
    ttl = int(current_app.config.get("MODERATION_MEDIA_CHECK_URL_TTL", 24 * 3600))
    for photo in tip.photos:
        url = photo_urls(photo.display_key, photo.thumb_key, ttl=ttl)["url"]
        if not url.startswith(("http://", "https://")):  # WeChat must fetch it: needs PUBLIC_BASE_URL
            sent.append({"photo_id": photo.id, "trace_id": None, "state": "skipped"})
            continue
        try:
            trace_id = wechat.check_media_async(url, openid)
        except (WeChatUnavailable, RateLimited):
            sent.append({"photo_id": photo.id, "trace_id": None, "state": "unavailable"})
            continue
        sent.append({"photo_id": photo.id, "trace_id": trace_id, "state": "pending"})
    return sent


# --- the reporter --------------------------------------------------------------------------------

def shanghai_day_start(now: datetime | None = None) -> datetime:
    return day_start(now or utcnow()).astimezone(timezone.utc)


def reporter_signals(tip: Tip, resident: Resident) -> dict:
    since_90d = utcnow() - timedelta(days=90)
    tips_today = db.session.scalar(select(func.count(Tip.id)).where(
        Tip.resident_id == tip.resident_id, Tip.created_at >= shanghai_day_start(tip.created_at)))
    counts = dict(db.session.execute(
        select(Tip.status, func.count(Tip.id)).where(
            Tip.resident_id == tip.resident_id, Tip.created_at >= since_90d, Tip.id != tip.id)
        .group_by(Tip.status)).all())
    photos = []
    for photo in tip.photos:
        entry = {"photo_id": photo.id}
        if photo.exif_taken_at is not None:
            gap = abs(tip.created_at - photo.exif_taken_at)
            entry["exif_age_hours"] = round(gap.total_seconds() / 3600, 1)
            entry["exif_time_far"] = gap > EXIF_TIME_FAR
        if photo.exif_lat is not None and photo.exif_lng is not None:
            meters = haversine_m((tip.lat, tip.lng), (photo.exif_lat, photo.exif_lng))
            entry["exif_distance_m"] = round(meters, 1)
            entry["exif_gps_far"] = meters > EXIF_GPS_FAR_M
        photos.append(entry)
    return {
        "tips_today": int(tips_today or 0),
        "accepted_90d": int(counts.get("accepted", 0)),
        "rejected_90d": int(counts.get("rejected", 0)),
        "no_reward": bool(resident.no_reward),
        "no_reward_reason": resident.no_reward_reason,
        "photos": photos,
    }


def reporter_flags(signals: dict) -> list[dict]:
    flags = []
    if signals["tips_today"] > int(current_app.config.get("MODERATION_MANY_TIPS_TODAY", 5)):
        flags.append(flag("many_tips_today", signals["tips_today"]))
    if signals["rejected_90d"] >= 3 and signals["rejected_90d"] > signals["accepted_90d"]:
        flags.append(flag("rejection_history", signals["rejected_90d"]))
    if signals["no_reward"]:
        flags.append(flag("no_reward_list", signals["no_reward_reason"]))
    if any(p.get("exif_time_far") for p in signals["photos"]):
        flags.append(flag("exif_time_far"))
    if any(p.get("exif_gps_far") for p in signals["photos"]):
        flags.append(flag("exif_gps_far"))
    return flags


# --- where ---------------------------------------------------------------------------------------

def locate_tip(tip: Tip) -> dict | None:
    from app.geo.index import locate

    hit = locate(tip.lat, tip.lng)
    return hit.to_dict() if hit is not None else None
