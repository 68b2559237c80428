"""Console pages for tickets (/console/hazards): departments work their own tickets (accept, handle,
resolve with a note and photos, return); supervisors re-route returned tickets, verify, reopen,
close, and watch the overdue list. Thin views over the same functions as the APIs."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from app.console import console_required, console_user, register_console_page
from app.errors import AppError, NotFound, Unprocessable
from app.extensions import db
from app.geo.webmap import place_map, tickets_map
from app.hazards.catalogue import list_departments
from app.hazards.lifecycle import STATUS_LABELS, Actor, status_label, transition_hazard
from app.hazards.models import HAZARD_STATUSES
from app.hazards.queries import department_ticket, get_hazard, list_hazards, list_overdue, staff_ticket

bp = Blueprint("hazards_console", __name__, url_prefix="/console/hazards")
WORKERS = ("department", "supervisor")
# Who may read a ticket followed from a tip or a payout (no moves offered to them).
READERS = (*WORKERS, "moderator", "finance")

# The buttons a page offers for a move: label, and whether it asks for a note / a department / photos.
MOVE_FORMS = {
    "accepted": ("受理", False),
    "handling": ("开始处置", False),
    "resolved": ("办结", True),
    "returned": ("退回（非本部门职责）", True),
    "dispatched": ("分拨 / 改派", False),
    "verified": ("核查通过", False),
    "reopened": ("核查不通过，重新处置", True),
    "closed": ("结案", False),
}


def _list_page(title, rows, next_cursor=None, **extra):
    from app.hazards.catalogue import list_categories

    names = {c.code: c.name for c in list_categories(active=None)}
    context = {"status": None, "statuses": (), "departments": [], "department": None, "view": "list",
               "webmap": None, "grid_choices": [], **extra}
    return render_template("console/hazards/list.html", title=title, rows=rows, next_cursor=next_cursor,
                           labels=STATUS_LABELS, status_label=status_label, category_names=names, **context)


def _scope(user) -> str | None:
    """Supervisors see every department; department staff only their own."""
    if user.has_role("supervisor"):
        return None
    if user.has_role("department"):
        return user.department_code or "-"
    return None  # moderators and finance read any ticket (READERS), without moves


@bp.get("/")
@console_required(*WORKERS)
def index():
    user = console_user()
    status = request.args.get("status") or "open"
    department = _scope(user) or (request.args.get("department") or None)
    grid = _grid_code(request.args.get("grid"))
    rows, next_cursor = list_hazards(department=department, status=status, grid=grid,
                                     cursor=request.args.get("cursor") or None, limit=50)
    view = "map" if request.args.get("view") == "map" else "list"
    webmap = _tickets_map(department, status, grid) if view == "map" else None
    return _list_page("工单", rows, next_cursor, status=status, statuses=HAZARD_STATUSES, department=department,
                      departments=list_departments() if _scope(user) is None else [], view=view, webmap=webmap,
                      grid_choices=_grid_choices())


MAP_LIMIT = 1000  # tickets on one map: the city's open tickets on a normal day, newest first


def _tickets_map(department, status, grid) -> dict:
    """The filtered tickets (all pages, up to MAP_LIMIT) as points coloured by status."""
    from app.hazards.catalogue import list_categories

    hazards, cursor = [], None
    while len(hazards) < MAP_LIMIT:
        page, cursor = list_hazards(department=department, status=status, grid=grid, cursor=cursor, limit=100)
        hazards += page
        if cursor is None:
            break
    names = {c.code: c.name for c in list_categories(active=None)}
    return tickets_map(hazards[:MAP_LIMIT], category_names=names, status_labels=STATUS_LABELS,
                       detail_url=lambda hazard_id: url_for(".detail", hazard_id=hazard_id))


def _grid_code(text: str | None) -> str | None:
    """The grid filter takes what people type: a grid's Chinese name (as listed) or its code."""
    from app.display import labels

    text = (text or "").strip()
    if not text:
        return None
    by_name = {name: code for code, name in labels("grid").items()}
    return by_name.get(text) or next((code for name, code in by_name.items() if name.startswith(text)), text)


def _grid_choices() -> list[str]:
    """Names of the grids that have tickets, for the filter's suggestions."""
    from sqlalchemy import select

    from app.display import label
    from app.hazards.models import Hazard

    codes = db.session.scalars(select(Hazard.grid_code).where(Hazard.grid_code.is_not(None)).distinct()).all()
    return sorted(label("grid", code) for code in codes)


@bp.get("/returned")
@console_required("supervisor")
def returned():
    rows, _ = list_hazards(status="returned", limit=100)
    return _list_page("退回待改派", rows, status="returned")


@bp.get("/overdue")
@console_required("supervisor")
def overdue():
    return _list_page("超时督办", list_overdue(), status="overdue")


@bp.get("/<int:hazard_id>")
@console_required(*READERS)
def detail(hazard_id):
    user = console_user()
    try:
        hazard = get_hazard(hazard_id, _scope(user))
    except NotFound as exc:
        return render_template("console/error.html", message=exc.message), 404
    view = staff_ticket(hazard) if _scope(user) is None else department_ticket(hazard)
    moves = [m for m in view["allowed"] if user.has_role(*WORKERS) and _may_offer(user, hazard.status, m)]
    webmap = place_map(hazard.lat, hazard.lng, grid_id=hazard.grid_id, address=hazard.address,
                       title=f"工单 #{hazard.id}")
    return render_template("console/hazards/detail.html", ticket=view, moves=moves, forms=MOVE_FORMS,
                           departments=list_departments(), status_label=status_label, webmap=webmap)


@bp.post("/<int:hazard_id>/move")
@console_required(*WORKERS)
def move(hazard_id):
    from app.hazards.dept_api import store_department_photo

    user = console_user()
    to_status = request.form.get("to", "")
    try:
        get_hazard(hazard_id, _scope(user))  # another department's ticket: 404 before anything is stored
        photo_ids = []
        for upload in request.files.getlist("photos"):
            if upload and upload.filename:
                if not user.department_code:
                    raise Unprocessable("只有部门人员可以上传处置照片", code="photos_not_allowed")
                photo_ids.append(store_department_photo(user.department_code, upload).id)
        transition_hazard(hazard_id, to_status, Actor.for_staff(user), request.form.get("note"),
                          department_code=request.form.get("department") or None, photo_ids=photo_ids)
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        if exc.status == 404:
            return render_template("console/error.html", message=exc.message), 404
        flash(exc.message, "error")
        return redirect(url_for(".detail", hazard_id=hazard_id))
    flash(f"工单 #{hazard_id} 已变为「{status_label(to_status)}」", "ok")
    return redirect(url_for(".detail", hazard_id=hazard_id))


def _may_offer(user, status, to) -> bool:
    from app.hazards.lifecycle import DEPARTMENT, TRANSITIONS

    if user.has_role("supervisor"):
        return True
    return TRANSITIONS.get((status, to)) == DEPARTMENT and bool(user.department_code)


def init_console(app):
    from app import console

    console.init_app(app)  # idempotent: moderation owns the shell; this makes the pages work without it
    app.register_blueprint(bp)
    register_console_page("hazards_console.index", "工单", WORKERS, order=200)
    register_console_page("hazards_console.returned", "退回待改派", ("supervisor",), order=210)
    register_console_page("hazards_console.overdue", "超时督办", ("supervisor",), order=220)
