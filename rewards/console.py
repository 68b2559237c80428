"""Finance pages of the staff console (/console/finance), Chinese, extending console/base.html:
overview (budget and spend by day with a chart, dual-control requests), payouts (filters, CSV /
Excel export, the manual-review queue with its actions), reconciliation runs and their exceptions.
Views are thin: they call the same functions as the finance API; CSRF is checked by the shell."""
from __future__ import annotations

from datetime import date

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from app.console import console_required, console_user, register_console_page
from app.errors import AppError
from app.extensions import db
from app.queue import enqueue_after_commit
from rewards import finance
from rewards.clock import shanghai_day
from rewards.models import PAYOUT_STATUSES, FinanceRequest, Payout, ReconciliationException, ReconciliationRun
from rewards.reconciliation import (EXCEPTION_LABELS, default_bill_date, error_label, resolve_exception,
                                   start_run)

bp = Blueprint("finance_console", __name__, url_prefix="/console/finance", template_folder="templates")


def _day(name):
    value = request.values.get(name)
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def reason_label(code: str | None) -> str:
    """Why a reward was not granted, or why a packet waits for a person: in Chinese."""
    from app.display import failure_label
    from rewards.policy import NOT_GRANTED_LABELS

    if not code:
        return ""
    return NOT_GRANTED_LABELS.get(code) or failure_label(code)


def _run(action, success, target):
    """Run an action, commit, flash the outcome in Chinese, go back."""
    try:
        action()
        db.session.commit()
        flash(success)
    except AppError as exc:
        db.session.rollback()
        flash(exc.message + ("：" + "；".join(f"{k} {'、'.join(map(str, v))}" for k, v in exc.fields.items())
                             if exc.fields else ""), "error")
    return redirect(target)


@bp.get("/")
@console_required("finance")
def overview():
    try:
        data = finance.summary(_day("from"), _day("to"))
    except AppError as exc:
        flash(exc.message, "error")
        data = finance.summary()
    peak = max([max(d["sent_fen"], d["reserve_fen"]) for d in data["by_day"]] + [1])
    requests_ = db.session.execute(select(FinanceRequest).order_by(FinanceRequest.id.desc()).limit(30)).scalars()
    from rewards.policy import active_policy

    return render_template("finance/overview.html", data=data, peak=peak, requests=list(requests_),
                           policy=active_policy(), me=console_user(), setting_words=_setting_words,
                           pauses=finance.list_pauses())


# A rules request as finance reads it: each setting's name, amounts in 元.
SETTING_NAMES = {"trigger": "发放时机", "resident_day_count": "每人每日个数", "resident_month_count": "每人每月个数",
                 "resident_day_fen": "每人每日金额", "resident_month_fen": "每人每月金额", "program_day_fen": "全市每日金额",
                 "program_month_fen": "全市每月金额", "first_reporter_only": "只奖励首位报料人",
                 "category_amounts": "各类别奖励金额"}
TRIGGER_NAMES = {"approval": "审核通过即发", "verification": "部门核查后发"}


def _setting_words(settings: dict) -> str:
    from app.display import format_yuan

    words = []
    for key, value in (settings or {}).items():
        if isinstance(value, bool):
            value = "是" if value else "否"
        elif key.endswith("_fen") and isinstance(value, int):
            value = format_yuan(value)
        elif key == "trigger":
            value = TRIGGER_NAMES.get(value, value)
        elif isinstance(value, dict):
            value = f"{len(value)} 类" if value else "按默认"
        elif isinstance(value, list):
            value = f"{len(value)} 项"
        words.append(f"{SETTING_NAMES.get(key, key)} {value}")
    return "；".join(words)


@bp.post("/requests")
@console_required("finance")
def new_request():
    kind = request.form.get("kind")
    return _run(lambda: finance.request_change(kind, _request_payload(kind), console_user(),
                                               request.form.get("note") or None),
                "申请已提交，等待另一位财务人员审批", url_for(".overview"))


# The rules form's fields: counts as they are, amounts typed in 元 (stored in fen).
POLICY_COUNTS = ("resident_day_count", "resident_month_count")
POLICY_AMOUNTS = ("resident_day_fen", "resident_month_fen", "program_day_fen")


def _request_payload(kind) -> dict:
    """The form in 元 → the request in fen (a bad amount is a 422 with the field named)."""
    if kind == "topup":
        amount = finance.fen_from_yuan(request.form.get("amount_yuan"), "amount_yuan")
        return {"period": request.form.get("period", ""), "amount_fen": amount or 0}
    settings = {}
    for name in POLICY_COUNTS:
        if request.form.get(name, "").strip():
            value = request.form[name].strip()
            settings[name] = int(value) if value.isdigit() else value
    for name in POLICY_AMOUNTS:
        fen = finance.fen_from_yuan(request.form.get(name.replace("_fen", "_yuan")), name.replace("_fen", "_yuan"))
        if fen is not None:
            settings[name] = fen
    if request.form.get("trigger"):
        settings["trigger"] = request.form["trigger"]
    return {"settings": settings}


@bp.post("/requests/<int:request_id>")
@console_required("finance")
def decide(request_id):
    approve = request.form.get("decision") == "approve"
    return _run(lambda: finance.decide_request(request_id, approve, console_user(), request.form.get("note")),
                "已批准并生效" if approve else "已驳回", url_for(".overview"))


@bp.get("/payouts")
@console_required("finance")
def payouts():
    status = request.args.get("status") or None
    if status not in PAYOUT_STATUSES:
        status = None
    # the page opens on this month so far; the export buttons take exactly what the page shows
    end = _day("to") or shanghai_day()
    start = _day("from") or end.replace(day=1)
    items, next_cursor = finance.list_payouts(status, start, end, request.args.get("cursor"), 50)
    tip_id = request.args.get("tip", type=int)
    if tip_id:  # followed from a tip's page: that tip's payout, whatever its date
        items, next_cursor = [finance.payout_row(p) for p in
                              db.session.scalars(select(Payout).where(Payout.tip_id == tip_id))], None
    review, _ = finance.list_payouts("manual_review", None, None, None, 100)
    filters = {k: v for k, v in (("status", status), ("from", start.isoformat()), ("to", end.isoformat())) if v}
    return render_template("finance/payouts.html", items=items, next_cursor=next_cursor, review=review,
                           statuses=PAYOUT_STATUSES, labels=finance.STATUS_LABELS, status=status,
                           start=start.isoformat(), end=end.isoformat(), filters=filters, reason_label=reason_label)


@bp.post("/payouts/<int:payout_id>")
@console_required("finance")
def payout_action(payout_id):
    action = request.form.get("action", "")
    return _run(lambda: finance.act_on_payout(payout_id, action, request.form.get("note") or None, console_user()),
                "已处理", url_for(".payouts"))


@bp.post("/payouts/resume")
@console_required("finance")
def resume_payouts():
    """已充值，恢复发放 (the merchant-wide pause ends; held packets go out at the next sweep)."""
    return _run(lambda: finance.resume_payouts(request.form.get("note") or None, console_user()),
                "已恢复发放：等待的红包将在下一次巡检时以原单号发出", url_for(".overview"))


@bp.get("/reconciliation")
@console_required("finance")
def reconciliation():
    runs = db.session.execute(select(ReconciliationRun).order_by(ReconciliationRun.id.desc()).limit(30)).scalars().all()
    selected = request.args.get("run", type=int) or (runs[0].id if runs else None)
    exceptions = db.session.execute(select(ReconciliationException).filter_by(run_id=selected)
                                    .order_by(ReconciliationException.id)).scalars().all() if selected else []
    return render_template("finance/reconciliation.html", runs=runs, selected=selected, exceptions=exceptions,
                           labels=EXCEPTION_LABELS, error_label=error_label, default_day=default_bill_date())


@bp.post("/reconciliation")
@console_required("finance")
def start_reconciliation():
    day = _day("date") if request.values.get("date") else default_bill_date()
    if day is None:
        flash("对账日期须为 YYYY-MM-DD", "error")
        return redirect(url_for(".reconciliation"))

    def start():
        run = start_run(day, requested_by=console_user().id)
        db.session.flush()
        enqueue_after_commit("maintenance", "rewards.reconciliation.run_reconciliation", run.id,
                             job_id=f"reconcile-{run.id}")

    return _run(start, "对账已开始，稍后刷新查看结果", url_for(".reconciliation"))


@bp.post("/exceptions/<int:exception_id>")
@console_required("finance")
def resolve(exception_id):
    return _run(lambda: resolve_exception(exception_id, request.form.get("note", ""), console_user().id),
                "差异已处理", request.referrer or url_for(".reconciliation"))


def init_console(app):
    if "finance_console" in app.blueprints:
        return
    app.register_blueprint(bp)
    register_console_page("finance_console.overview", "财务概览", ("finance",), 60)
    register_console_page("finance_console.payouts", "红包发放", ("finance",), 61)
    register_console_page("finance_console.reconciliation", "对账", ("finance",), 62)
