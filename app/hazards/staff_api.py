"""Staff API for tickets (/api/staff/v1/hazards): supervisors see and move every ticket; department
staff only their own department's (another's answers 404); moderators may read."""
from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from app.auth import current_staff, staff_required
from app.extensions import db
from app.hazards import schemas
from app.hazards.lifecycle import Actor, transition_hazard
from app.hazards.queries import get_hazard, list_hazards, list_overdue, staff_ticket, staff_tickets

bp = Blueprint("staff_hazards", __name__, url_prefix="/api/staff/v1/hazards", description="隐患工单（工作人员）")
SECURITY = [{"bearer": []}]
READERS = ("supervisor", "department", "moderator")


def own_department() -> str | None:
    """The department a staff member is limited to; None for supervisors (and moderators reading)."""
    user = current_staff()
    if user.has_role("supervisor", "moderator"):
        return None
    return user.department_code or "-"


@bp.route("")
class Hazards(MethodView):
    @bp.doc(security=SECURITY)
    @staff_required(*READERS)
    @bp.arguments(schemas.StaffTicketQuerySchema, location="query")
    @bp.response(200, schemas.StaffTicketListSchema)
    def get(self, query):
        """工单列表：?department=&status=&grid=&town=&category=&overdue=&cursor="""
        department = own_department() or query.get("department")
        rows, next_cursor = list_hazards(department=department, status=query.get("status"), grid=query.get("grid"),
                                         town=query.get("town"), category=query.get("category"),
                                         overdue=query.get("overdue"), cursor=query.get("cursor"),
                                         limit=query.get("limit", 20))
        return {"items": staff_tickets(rows), "next": next_cursor}


@bp.route("/overdue")
class Overdue(MethodView):
    @bp.doc(security=SECURITY)
    @staff_required("supervisor")
    @bp.response(200, schemas.StaffTicketListSchema)
    def get(self):
        """超时工单（督办）"""
        return {"items": staff_tickets(list_overdue()), "next": None}


@bp.route("/<int:hazard_id>")
class HazardDetail(MethodView):
    @bp.doc(security=SECURITY)
    @staff_required(*READERS)
    @bp.response(200, schemas.StaffTicketSchema)
    def get(self, hazard_id):
        """一张工单，含全部报料与处置记录"""
        return staff_ticket(get_hazard(hazard_id, own_department()))


@bp.route("/<int:hazard_id>/transition")
class Transition(MethodView):
    @bp.doc(security=SECURITY)
    @staff_required("supervisor", "department")
    @bp.arguments(schemas.TransitionSchema)
    @bp.response(200, schemas.StaffTicketSchema)
    def post(self, body, hazard_id):
        """改变工单状态 {"to", "note", "department"}；非法变更 409"""
        user = current_staff()
        photo_ids = body.get("photo_ids") or []
        if photo_ids:
            from app.hazards.dept_api import check_department_photos

            photo_ids = check_department_photos(photo_ids, user.department_code or "-")
        hazard = transition_hazard(hazard_id, body["to"], Actor.for_staff(user), body.get("note"),
                                   department_code=body.get("department"), photo_ids=photo_ids)
        db.session.commit()
        return staff_ticket(hazard)
