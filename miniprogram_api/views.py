"""The residents' API, /api/mp/v1: thin views (parse → one function → serialize), commit at the edge."""
from __future__ import annotations

import logging

from flask_smorest import Blueprint
from sqlalchemy.exc import IntegrityError

from app.auth import bearer_token
from app.extensions import db
from app.media.photos import photo_urls
from miniprogram_api import intake, privacy, queries, rights, schemas
from miniprogram_api.auth import current_resident_id, login_resident, resident_required, revoke_resident_token
from miniprogram_api.limits import per_ip, per_resident

log = logging.getLogger(__name__)

bp = Blueprint("mp", __name__, url_prefix="/api/mp/v1", description="居民小程序接口（报料、照片、奖励）")
BEARER = [{"bearer": []}]


@bp.after_request
def _discard_on_error(response):
    """An error answer never leaves half a tip in the session (nothing was committed)."""
    if response.status_code >= 400:
        db.session.rollback()
    return response


@bp.route("/auth/login", methods=["POST"])
@per_ip("MP_RATELIMIT_LOGIN_IP")
@bp.arguments(schemas.MpLoginSchema)
@bp.response(200, schemas.MpLoginResultSchema)
@bp.doc(summary="用 wx.login 的 code 登录", security=[])
def login(body):
    token, ttl, resident = login_resident(body["code"])
    resident_id = resident.id
    db.session.commit()
    return {"token": token, "expires_in": ttl, "resident": {"id": resident_id}}


@bp.route("/auth/logout", methods=["POST"])
@per_ip()
@resident_required
@bp.response(200, schemas.MpOkSchema)
@bp.doc(summary="退出登录（吊销当前令牌）", security=BEARER)
def logout():
    revoke_resident_token(bearer_token())
    db.session.commit()
    return {"ok": True}


@bp.route("/categories", methods=["GET"])
@per_ip()
@per_resident()
@resident_required
@bp.response(200, schemas.MpCategoryListSchema)
@bp.doc(summary="隐患类别", security=BEARER)
def categories():
    return {"items": queries.list_category_items()}


@bp.route("/photos", methods=["POST"])
@per_ip()
@per_resident("MP_RATELIMIT_PHOTOS")
@resident_required
@bp.arguments(schemas.MpPhotoUploadSchema, location="files")
@bp.response(201, schemas.MpPhotoSchema)
@bp.doc(summary="上传一张照片（wx.uploadFile，字段 file）", security=BEARER)
def upload_photo(files):
    photo, keys, display_ready = intake.upload_photo(current_resident_id(), files["file"].stream)
    # A display copy still to be made (photo.display job): until then the url is the thumbnail's.
    urls = photo_urls(photo.display_key if display_ready else photo.thumb_key, photo.thumb_key)
    answer = {"id": photo.id, "sha256": photo.sha256, "width": photo.width, "height": photo.height, **urls}
    try:
        db.session.commit()
    except BaseException:
        db.session.rollback()
        intake.discard_photo_files(keys)
        raise
    return answer


@bp.route("/tips", methods=["POST"])
@per_ip()
@per_resident("MP_RATELIMIT_TIPS")
@resident_required
@bp.arguments(schemas.MpIdempotencyHeaderSchema, location="headers")
@bp.arguments(schemas.MpTipCreateSchema)
@bp.response(201, schemas.MpTipSchema)
@bp.alt_response(200, schema=schemas.MpTipSchema, description="同一 Idempotency-Key 的重试：原报料")
@bp.doc(summary="提交报料（需 Idempotency-Key）", security=BEARER)
def create_tip(headers, body):
    resident_id = current_resident_id()
    key = headers["idempotency_key"]
    try:
        tip, created, answer = intake.submit_tip(resident_id, key, body)
        if answer is None:  # a replay of the same key and body
            answer = queries.serialize_tip(tip)
        # Read before the commit: after it the tip's attributes are expired, and reloading them would
        # open a new write transaction (SQLite's lock) just to write a log line.
        event = {"event": "tip.received", "tip_id": tip.id, "category": tip.category,
                 "category_name": answer.get("category_name")}
        db.session.commit()
        if created:  # an event the demo's terminal shows (app/demo_feed.py)
            log.info("tip received", extra=event)
    except IntegrityError:
        # Two identical requests raced past the key check: the other one's tip is the answer.
        db.session.rollback()
        existing = intake.find_tip_by_key(resident_id, key)
        if existing is None:
            raise
        answer, created = queries.serialize_tip(intake.replay_tip(existing, intake.request_fingerprint(body))), False
        db.session.rollback()
    return answer, (201 if created else 200)


@bp.route("/tips", methods=["GET"])
@per_ip()
@per_resident()
@resident_required
@bp.arguments(schemas.MpTipListArgsSchema, location="query")
@bp.response(200, schemas.MpTipListSchema)
@bp.doc(summary="我的报料", security=BEARER)
def my_tips(args):
    items, next_cursor = queries.list_tips(current_resident_id(), args.get("status"), args.get("cursor"),
                                           args["limit"])
    return {"items": items, "next": next_cursor}


@bp.route("/tips/<int:tip_id>", methods=["GET"])
@per_ip()
@per_resident()
@resident_required
@bp.response(200, schemas.MpTipDetailSchema)
@bp.doc(summary="报料详情与进度", security=BEARER)
def tip_detail(tip_id):
    return queries.tip_detail(current_resident_id(), tip_id)


@bp.route("/tips/<int:tip_id>/withdraw", methods=["POST"])
@per_ip()
@per_resident()
@resident_required
@bp.response(200, schemas.MpTipSchema)
@bp.doc(summary="撤回报料（审核决定之前）", security=BEARER)
def withdraw_tip(tip_id):
    resident_id = current_resident_id()
    answer = queries.serialize_tip(intake.withdraw_tip(resident_id, tip_id))
    db.session.commit()
    return answer


@bp.route("/rewards", methods=["GET"])
@per_ip()
@per_resident()
@resident_required
@bp.arguments(schemas.MpRewardListArgsSchema, location="query")
@bp.response(200, schemas.MpRewardListSchema)
@bp.doc(summary="我的奖励（红包）", security=BEARER)
def my_rewards(args):
    items, next_cursor = queries.list_rewards(current_resident_id(), args.get("cursor"), args["limit"])
    return {"items": items, "next": next_cursor}


@bp.route("/hazards/nearby", methods=["GET"])
@per_ip()
@per_resident()
@resident_required
@bp.arguments(schemas.MpNearbyArgsSchema, location="query")
@bp.response(200, schemas.MpNearbyListSchema)
@bp.doc(summary="附近同类未结案隐患（是否已有人报过）", security=BEARER)
def nearby(args):
    return {"items": queries.nearby_hazards(args.get("category"), args["lat"], args["lng"], args["coord"])}


# --- the resident's rights (PIPL) ------------------------------------------------------------------

@bp.route("/privacy", methods=["GET"])
@per_ip()
@bp.response(200, schemas.MpPrivacyNoticeSchema)
@bp.doc(summary="个人信息保护告知（首次报料前展示）", security=[])
def privacy_notice():
    return privacy.privacy_notice()


@bp.route("/me/export", methods=["GET"])
@per_ip()
@per_resident("MP_RATELIMIT_EXPORT")
@resident_required
@bp.response(200, schemas.MpExportSchema)
@bp.doc(summary="导出我的数据（保存的关于我的全部信息）", security=BEARER)
def export_me():
    return rights.export_resident_data(current_resident_id())


@bp.route("/me", methods=["DELETE"])
@per_ip()
@per_resident()
@resident_required
@bp.response(202, schemas.MpAccountClosedSchema)
@bp.doc(summary="注销账号（删除身份信息；发放途中的奖励先结算）", security=BEARER)
def close_me():
    answer, files = rights.close_account(current_resident_id())
    db.session.commit()
    rights.discard_files(files)
    answer["message"] = ("账号已注销" if answer["status"] == "closed"
                         else "账号已注销，发放途中的奖励结算后将删除全部身份信息")
    return answer
