"""Finance API (/api/staff/v1/finance): summary, payouts (JSON, CSV, Excel), manual review actions,
reconciliation runs and their exceptions, dual-control top-ups and policy changes. Role finance."""
from __future__ import annotations

from flask import Response, stream_with_context
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, pre_load, validate
from sqlalchemy import select

from app.auth import current_staff, staff_required
from app.errors import NotFound
from app.extensions import db
from app.queue import enqueue_after_commit
from rewards import finance
from rewards.models import PAYOUT_STATUSES, FinanceRequest, ReconciliationException, ReconciliationRun
from rewards.reconciliation import default_bill_date, describe_run, resolve_exception, start_run

bp = Blueprint("finance", __name__, url_prefix="/api/staff/v1/finance", description="财务：红包、预算与对账")
SECURITY = [{"bearer": []}]


DATE_ERRORS = {"invalid": "须为 YYYY-MM-DD 日期"}


class FinanceRangeSchema(Schema):
    from_ = fields.Date(data_key="from", load_default=None, error_messages=DATE_ERRORS)
    to = fields.Date(load_default=None, error_messages=DATE_ERRORS)

    @pre_load
    def drop_empty(self, data, **_):
        """A form submitted with a filter left blank sends `from=`: that means "not set"."""
        return {k: v for k, v in data.items() if v not in ("", None)} if hasattr(data, "items") else data


class FinancePayoutQuerySchema(FinanceRangeSchema):
    status = fields.String(load_default=None, validate=validate.OneOf(PAYOUT_STATUSES, error="未知的状态"))
    format = fields.String(load_default="json", validate=validate.OneOf(("json", "csv", "xlsx"), error="须为 json、csv 或 xlsx"))
    cursor = fields.String(load_default=None)
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 500))


class FinanceActionSchema(Schema):
    action = fields.String(required=True, validate=validate.OneOf(("recheck", "retry", "mark_failed", "cancel")))
    note = fields.String(load_default=None, validate=validate.Length(max=500))


class FinanceReconcileSchema(Schema):
    date = fields.Date(load_default=None, error_messages=DATE_ERRORS)   # default: yesterday


class FinanceNoteSchema(Schema):
    note = fields.String(required=True, validate=validate.Length(min=1, max=500))


class FinanceRequestSchema(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(("topup", "policy")))
    payload = fields.Dict(required=True)
    note = fields.String(load_default=None, validate=validate.Length(max=500))


class FinanceDecisionSchema(Schema):
    approve = fields.Boolean(required=True)
    note = fields.String(load_default=None, validate=validate.Length(max=500))


@bp.route("/summary")
class Summary(MethodView):
    @bp.doc(security=SECURITY)
    @staff_required("finance")
    @bp.arguments(FinanceRangeSchema, location="query")
    def get(self, query):
        """预算与发放汇总（分）：?from=&to=（上海日期，含两端），含按日明细"""
        return finance.summary(query.get("from_"), query.get("to"))


@bp.route("/payouts")
class Payouts(MethodView):
    @bp.doc(security=SECURITY)
    @staff_required("finance")
    @bp.arguments(FinancePayoutQuerySchema, location="query")
    def get(self, query):
        """红包发放明细：?status=&from=&to=&format=json|csv|xlsx（含商户订单号 mch_billno）"""
        status, start, end = query.get("status"), query.get("from_"), query.get("to")
        if query["format"] in ("csv", "xlsx"):
            return export_response(query["format"], finance.payouts_query(status, start, end),
                                   export_filename(start, end))
        items, next_cursor = finance.list_payouts(status, start, end, query.get("cursor"), query["limit"])
        return {"items": items, "next": next_cursor}


def export_filename(start, end) -> str:
    """payouts_2026-11-01_2026-11-30 (the range it covers; "all" for an open end)."""
    return f"payouts_{start or 'all'}_{end or 'all'}"


def export_response(kind: str, query, filename: str) -> Response:
    from rewards import exports

    if kind == "csv":
        return Response(stream_with_context(exports.iter_csv(query)), content_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'})
    return Response(exports.build_xlsx(query),
                    content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": f'attachment; filename="{filename}.xlsx"'})


@bp.route("/payouts/<int:payout_id>/actions")
class PayoutAction(MethodView):
    @bp.doc(security=SECURITY)
    @staff_required("finance")
    @bp.arguments(FinanceActionSchema)
    def post(self, body, payout_id):
        """人工核对：recheck（向微信查询并更新）、retry（同一单号重发）、mark_failed（微信确认无此红包）、cancel（撤销等待居民确认的商家转账）"""
        result = finance.act_on_payout(payout_id, body["action"], body.get("note"), current_staff())
        db.session.commit()
        return result


class FinanceResumeSchema(Schema):
    note = fields.String(load_default=None, validate=validate.Length(max=500))


@bp.route("/payouts/pauses")
class PayoutPauses(MethodView):
    @bp.doc(security=SECURITY)
    @staff_required("finance")
    def get(self):
        """商户号暂停发放（余额不足、当日总额、证书/密钥/权限）：当前是否暂停、等待的红包数、最近的暂停记录"""
        return finance.list_pauses()


@bp.route("/payouts/resume")
class PayoutResume(MethodView):
    @bp.doc(security=SECURITY)
    @staff_required("finance")
    @bp.arguments(FinanceResumeSchema)
    def post(self, body):
        """已充值，恢复发放：结束暂停，等待的红包由下一次巡检以原单号发出；未暂停 409 not_paused"""
        result = finance.resume_payouts(body.get("note"), current_staff())
        db.session.commit()
        return result


@bp.route("/reconciliations")
class Reconciliations(MethodView):
    @bp.doc(security=SECURITY)
    @staff_required("finance")
    @bp.arguments(FinanceReconcileSchema)
    def post(self, body):
        """对一天的资金账单（默认昨天；今天及以后 422 bill_not_ready）：202 {"id"}，在后台执行"""
        run = start_run(body.get("date") or default_bill_date(), requested_by=current_staff().id)
        db.session.flush()
        enqueue_after_commit("maintenance", "rewards.reconciliation.run_reconciliation", run.id,
                             job_id=f"reconcile-{run.id}")
        db.session.commit()
        return {"id": run.id, "status": run.status}, 202


@bp.route("/reconciliations/<string:day>")
class ReconciliationForDay(MethodView):
    @bp.doc(security=SECURITY)
    @staff_required("finance")
    def get(self, day):
        """该日最近一次对账：status running|done|failed、matched、exceptions"""
        from datetime import date

        try:
            bill_date = date.fromisoformat(day)
        except ValueError:
            from app.errors import Unprocessable

            raise Unprocessable(fields={"date": ["须为 YYYY-MM-DD"]})
        run = db.session.execute(select(ReconciliationRun).filter_by(bill_date=bill_date)
                                 .order_by(ReconciliationRun.id.desc()).limit(1)).scalar_one_or_none()
        if run is None:
            raise NotFound("该日尚未对账", code="no_reconciliation")
        exceptions = db.session.execute(select(ReconciliationException).filter_by(run_id=run.id)
                                        .order_by(ReconciliationException.id)).scalars().all()
        return describe_run(run, exceptions)


@bp.route("/reconciliation-exceptions/<int:exception_id>/resolve")
class ResolveException(MethodView):
    @bp.doc(security=SECURITY)
    @staff_required("finance")
    @bp.arguments(FinanceNoteSchema)
    def post(self, body, exception_id):
        """处理一条对账差异（须写明说明，留痕）"""
        row = resolve_exception(exception_id, body["note"], current_staff().id)
        db.session.commit()
        return {"id": row.id, "status": "resolved"}


@bp.route("/requests")
class Requests(MethodView):
    @bp.doc(security=SECURITY)
    @staff_required("finance")
    def get(self):
        """待审批的预算追加与规则变更"""
        rows = db.session.execute(select(FinanceRequest).order_by(FinanceRequest.id.desc()).limit(100)).scalars()
        return {"items": [finance.describe_request(r) for r in rows], "next": None}

    @bp.doc(security=SECURITY)
    @staff_required("finance")
    @bp.arguments(FinanceRequestSchema)
    def post(self, body):
        """申请预算追加 {"kind": "topup", "payload": {"period", "amount_fen"}} 或规则变更 {"kind": "policy", "payload": {"settings"}}；须另一位财务审批"""
        req = finance.request_change(body["kind"], body["payload"], current_staff(), body.get("note"))
        db.session.commit()
        return finance.describe_request(req), 201


@bp.route("/requests/<int:request_id>/decision")
class RequestDecision(MethodView):
    @bp.doc(security=SECURITY)
    @staff_required("finance")
    @bp.arguments(FinanceDecisionSchema)
    def post(self, body, request_id):
        """审批（申请人本人不能审批）"""
        req = finance.decide_request(request_id, body["approve"], current_staff(), body.get("note"))
        db.session.commit()
        return finance.describe_request(req)


@bp.route("/policy")
class Policy(MethodView):
    @bp.doc(security=SECURITY)
    @staff_required("finance")
    def get(self):
        """现行奖励规则"""
        from rewards.policy import active_policy

        return active_policy()
