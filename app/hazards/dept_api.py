"""Department API (/api/dept/v1, header X-Api-Key): a department's own tickets, and only those.

A ticket of another department answers 404, as if it did not exist. Nothing here names a reporter.
A move repeated by the department that made it (a retry after a timeout) answers 200 unchanged;
any other move the ticket's state does not allow answers 409.
"""
from __future__ import annotations

from flask import g, request
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import select

from app.errors import BadRequest, Conflict, Unprocessable
from app.extensions import db
from app.hazards import schemas
from app.hazards.keys import department_for_key
from app.hazards.lifecycle import Actor, transition_hazard
from app.hazards.models import HazardEvent
from app.hazards.queries import department_ticket, department_tickets, get_hazard, list_hazards
from app.models.photo import Photo

bp = Blueprint("dept_api", __name__, url_prefix="/api/dept/v1", description="职能部门接口（X-Api-Key）")
SECURITY = [{"apiKey": []}]


@bp.before_request
def _authenticate():
    g.department = department_for_key(request.headers.get("X-Api-Key"))


def _actor() -> Actor:
    return Actor.for_department(g.department)


@bp.route("/tickets")
class Tickets(MethodView):
    @bp.doc(security=SECURITY)
    @bp.arguments(schemas.TicketQuerySchema, location="query")
    @bp.response(200, schemas.TicketListSchema)
    def get(self, query):
        """本部门的工单（不含报料人身份）"""
        rows, next_cursor = list_hazards(department=g.department.code, status=query.get("status"),
                                         cursor=query.get("cursor"), limit=query.get("limit", 20))
        answer = {"items": department_tickets(rows), "next": next_cursor}
        db.session.commit()  # last_used_at of the key
        return answer


@bp.route("/tickets/<int:hazard_id>")
class Ticket(MethodView):
    @bp.doc(security=SECURITY)
    @bp.response(200, schemas.TicketSchema)
    def get(self, hazard_id):
        """一张工单，含处置记录"""
        answer = department_ticket(get_hazard(hazard_id, g.department.code))
        db.session.commit()
        return answer


def _move(hazard_id: int, to_status: str, note=None, photo_ids=None) -> dict:
    try:
        hazard = transition_hazard(hazard_id, to_status, _actor(), note, photo_ids=photo_ids)
    except Conflict:
        db.session.rollback()
        hazard = _replayed(hazard_id, to_status)
        if hazard is None:
            raise
        return department_ticket(hazard)  # a retry of a move that already happened: same answer
    db.session.commit()
    return department_ticket(hazard)


def _replayed(hazard_id: int, to_status: str):
    """Department systems retry after timeouts: the ticket is where this department's last move put
    it, so the request is that move again, not a conflict. Anything else stays a 409."""
    hazard = get_hazard(hazard_id, g.department.code)
    last = db.session.scalar(select(HazardEvent).where(HazardEvent.hazard_id == hazard_id,
                                                       HazardEvent.kind == "status")
                             .order_by(HazardEvent.id.desc()).limit(1))
    if (hazard.status == to_status and last is not None and last.to_status == to_status
            and last.department_code == g.department.code):
        return hazard
    return None


@bp.route("/tickets/<int:hazard_id>/ack")
class Ack(MethodView):
    @bp.doc(security=SECURITY)
    @bp.arguments(schemas.NoteSchema, required=False)
    @bp.response(200, schemas.TicketSchema)
    def post(self, body, hazard_id):
        """受理（已分拨 → 已受理）"""
        return _move(hazard_id, "accepted", (body or {}).get("note"))


@bp.route("/tickets/<int:hazard_id>/start")
class Start(MethodView):
    @bp.doc(security=SECURITY)
    @bp.arguments(schemas.NoteSchema, required=False)
    @bp.response(200, schemas.TicketSchema)
    def post(self, body, hazard_id):
        """开始处置（已受理 / 重新处置 → 处置中）"""
        return _move(hazard_id, "handling", (body or {}).get("note"))


@bp.route("/tickets/<int:hazard_id>/resolve")
class Resolve(MethodView):
    @bp.doc(security=SECURITY)
    @bp.arguments(schemas.ResolveSchema)
    @bp.response(200, schemas.TicketSchema)
    def post(self, body, hazard_id):
        """办结：处置说明 + 本部门上传的照片"""
        photo_ids = check_department_photos(body["photo_ids"], g.department.code)
        return _move(hazard_id, "resolved", body["note"], photo_ids)


@bp.route("/tickets/<int:hazard_id>/return")
class Return(MethodView):
    @bp.doc(security=SECURITY)
    @bp.arguments(schemas.ReturnSchema)
    @bp.response(200, schemas.TicketSchema)
    def post(self, body, hazard_id):
        """退回：不属于本部门职责，交回督办重新分拨"""
        return _move(hazard_id, "returned", body["reason"])


@bp.route("/photos")
class Photos(MethodView):
    @bp.doc(security=SECURITY)
    @bp.response(201, schemas.DeptPhotoSchema)
    def post(self):
        """上传处置照片（multipart，字段 file；JPEG/PNG/WebP，≤ 10 MB）"""
        photo = store_department_photo(g.department.code)
        db.session.commit()
        return {"id": photo.id, "sha256": photo.sha256, "width": photo.width, "height": photo.height}


def check_department_photos(photo_ids: list[int], department_code: str) -> list[int]:
    """Resolution photos must be this department's own uploads, not attached to any tip."""
    photo_ids = list(dict.fromkeys(int(i) for i in photo_ids or []))
    if not photo_ids:
        return []
    found = set(db.session.scalars(select(Photo.id).where(Photo.id.in_(photo_ids), Photo.tip_id.is_(None),
                                                          Photo.uploaded_by_department == department_code)))
    missing = [i for i in photo_ids if i not in found]
    if missing:
        raise Unprocessable("照片不存在或不属于本部门", code="photo_not_found", fields={"photo_ids": missing})
    return photo_ids


def store_department_photo(department_code: str, upload_file=None) -> Photo:
    """Verify, strip and store one uploaded photo as the department's (not a resident's, not a tip's)."""
    from app.media.photos import delete_photo_files, store_photo
    from app.media.processing import inspect_upload, process_photo

    upload_file = upload_file if upload_file is not None else request.files.get("file")
    if upload_file is None:
        raise BadRequest("请上传图片（字段 file）", code="file_missing", fields={"file": ["必填"]})
    with inspect_upload(upload_file.stream) as upload:
        processed = process_photo(upload)
        keys = store_photo(upload, processed)
    photo = Photo(resident_id=None, uploaded_by_department=department_code, sha256=processed.sha256,
                  phash=processed.phash, width=processed.width, height=processed.height, mime=processed.mime,
                  size_bytes=processed.size_bytes, original_key=keys.original_key, display_key=keys.display_key,
                  thumb_key=keys.thumb_key, exif_taken_at=processed.exif.taken_at)
    db.session.add(photo)
    try:
        db.session.flush()
    except Exception:
        delete_photo_files(keys)
        raise
    return photo
