"""Staff API for review (/api/staff/v1/review/*, /api/staff/v1/tips/*): thin views over
moderation.queue and moderation.decisions."""
from __future__ import annotations

from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app.auth import current_staff, staff_required
from app.errors import NotFound
from app.extensions import db
from app.ids import MAX_ID, id_field
from app.models.tip import Tip
from moderation import decisions, queue
from moderation.present import tip_view
from moderation.reasons import reasons_for_console

bp = Blueprint("staff_review", __name__, url_prefix="/api/staff/v1", description="报料审核（工作人员）")
SECURITY = [{"bearer": []}]
REVIEWERS = ("moderator", "supervisor")


class DuplicateOfSchema(Schema):
    tip_id = id_field(allow_none=True)
    hazard_id = id_field(allow_none=True)


class DecisionSchema(Schema):
    action = fields.String(required=True, validate=validate.OneOf(decisions.ACTIONS))
    category = fields.String(allow_none=True, validate=validate.Length(max=48))
    severity = fields.Integer(allow_none=True, validate=validate.OneOf((1, 2, 3)))
    reason = fields.String(allow_none=True, validate=validate.Length(max=64))
    message = fields.String(allow_none=True, validate=validate.Length(max=500))
    department = fields.String(allow_none=True, validate=validate.Length(max=32))
    duplicate_of = fields.Nested(DuplicateOfSchema, allow_none=True)


class ReassignSchema(Schema):
    staff_id = id_field(required=True)


class ReverseSchema(Schema):
    note = fields.String(allow_none=True, validate=validate.Length(max=500))


class QueueQuerySchema(Schema):
    cursor = fields.Integer(load_default=None, validate=validate.Range(min=0, max=MAX_ID))  # an offset
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


@bp.route("/review/claim")
class Claim(MethodView):
    @bp.doc(security=SECURITY)
    @staff_required(*REVIEWERS)
    @bp.response(200)
    @bp.alt_response(204, description="队列为空")
    def post(self):
        """领取下一条待审核报料（5 分钟租约）；已持有的报料会原样返回并续期"""
        tip = queue.claim_next(current_staff())
        if tip is None:
            return Response(status=204)
        return tip_view(tip)


@bp.route("/review/queue")
class Queue(MethodView):
    @bp.doc(security=SECURITY)
    @staff_required(*REVIEWERS)
    @bp.arguments(QueueQuerySchema, location="query")
    @bp.response(200)
    def get(self, query):
        """待审核队列（按严重程度、时间排序）"""
        rows, next_cursor = queue.queue_page(query["limit"], query["cursor"])
        return {"items": [_queue_item(t) for t in rows], "next": str(next_cursor) if next_cursor is not None else None}


@bp.route("/review/reasons")
class Reasons(MethodView):
    @bp.doc(security=SECURITY)
    @staff_required(*REVIEWERS)
    @bp.response(200)
    def get(self):
        """驳回 / 补充材料的原因目录"""
        return reasons_for_console()


@bp.route("/review/<int:tip_id>/release")
class Release(MethodView):
    @bp.doc(security=SECURITY)
    @staff_required(*REVIEWERS)
    @bp.response(200)
    def post(self, tip_id):
        """放回队列（本人领取的；主管可放回任何人的）"""
        user = current_staff()
        return tip_view(queue.release(tip_id, user, force=user.has_role("supervisor")))


@bp.route("/tips/<int:tip_id>")
class TipDetail(MethodView):
    @bp.doc(security=SECURITY)
    @staff_required(*REVIEWERS)
    @bp.response(200)
    def get(self, tip_id):
        """报料详情：信号、疑似重复、网格、时间线与审计记录"""
        return tip_view(_tip(tip_id), detail=True)


@bp.route("/tips/<int:tip_id>/decision")
class Decision(MethodView):
    @bp.doc(security=SECURITY)
    @staff_required(*REVIEWERS)
    @bp.arguments(DecisionSchema)
    @bp.response(200)
    def post(self, body, tip_id):
        """审核决定：approve | reject | duplicate | need_info"""
        result = decisions.decide(tip_id, current_staff(), body)
        return {"tip": tip_view(result["tip"]), "hazard": result["hazard"], "reward": result["reward"]}


@bp.route("/tips/<int:tip_id>/reassign")
class Reassign(MethodView):
    @bp.doc(security=SECURITY)
    @staff_required("supervisor")
    @bp.arguments(ReassignSchema)
    @bp.response(200)
    def post(self, body, tip_id):
        """主管转交给另一位审核员"""
        return tip_view(queue.reassign(tip_id, body["staff_id"], current_staff()))


@bp.route("/tips/<int:tip_id>/reverse")
class Reverse(MethodView):
    @bp.doc(security=SECURITY)
    @staff_required("supervisor")
    @bp.arguments(ReverseSchema)
    @bp.response(200)
    def post(self, body, tip_id):
        """主管撤销审核结果，报料重新进入队列（已产生奖励或工单的受理不能撤销：409）"""
        return tip_view(decisions.reverse(tip_id, current_staff(), body.get("note")), detail=True)


def _tip(tip_id: int) -> Tip:
    tip = db.session.get(Tip, tip_id)
    if tip is None:
        raise NotFound("报料不存在", code="tip_not_found")
    return tip


def _queue_item(tip: Tip) -> dict:
    from moderation.present import category_view, iso

    return {"id": tip.id, "category": category_view(tip.category), "priority": tip.priority,
            "created_at": iso(tip.created_at), "flagged": tip.flagged, "claimed_by": tip.claimed_by,
            "lease_until": iso(tip.lease_until), "flags": [f["label"] for f in (tip.signals or {}).get("flags", [])]}
