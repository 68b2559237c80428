"""Open311 GeoReport v2, read-only, over the tickets: services.json, requests.json, requests/<id>.json.

For civic dashboards that already speak Open311. A "service" is a hazard category; a "request" is
a ticket (not a tip), so no reporter identity can appear: the view is built from the ticket alone.
Coordinates are WGS-84, as the spec expects. Only JSON is served. The endpoints are public, so
each is limited per client address (OPEN311_LIMIT); errors use the project's one error shape.
"""
from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, jsonify, request
from sqlalchemy import select

from app.errors import NotFound, Unprocessable
from app.extensions import db, limiter
from app.hazards.catalogue import list_categories
from app.hazards.lifecycle import status_label
from app.hazards.models import OPEN_HAZARD_STATUSES, Category, Hazard
from app.hazards.queries import iso, tip_photos
from app.ids import parse_id

bp = Blueprint("open311", __name__, url_prefix="/open311/v2")
DEFAULT_PAGE, MAX_PAGE = 50, 200
MAX_PAGE_NUMBER = 1_000_000  # past any real list; keeps the OFFSET a number the database takes
OPEN311_LIMIT = "120/minute"


@bp.get("/services.json")
@limiter.limit(OPEN311_LIMIT)
def services():
    return jsonify([{
        "service_code": c.code,
        "service_name": c.name,
        "description": f"{c.group}：{c.name}（{c.department.name}）",
        "metadata": False,
        "type": "realtime",
        "keywords": c.group,
        "group": c.group,
    } for c in list_categories()])


@bp.get("/requests.json")
@limiter.limit(OPEN311_LIMIT)
def requests_list():
    args = request.args
    query = select(Hazard)
    ids = [i.strip() for i in (args.get("service_request_id") or "").split(",") if i.strip()]
    if ids:
        numbers = [parse_id(i) for i in ids]
        if None in numbers:
            raise Unprocessable("service_request_id 无效", code="invalid_request_id") from None
        query = query.where(Hazard.id.in_(numbers))
    codes = [c for c in (args.get("service_code") or "").split(",") if c]
    if codes:
        query = query.where(Hazard.category_code.in_(codes))
    status = args.get("status")
    if status == "open":
        query = query.where(Hazard.status.in_(OPEN_HAZARD_STATUSES))
    elif status == "closed":
        query = query.where(Hazard.status == "closed")
    elif status:
        raise Unprocessable("status 只能是 open 或 closed", code="invalid_status", fields={"status": [status]})
    start, end = _date(args.get("start_date"), "start_date"), _date(args.get("end_date"), "end_date")
    if start:
        query = query.where(Hazard.created_at >= start)
    if end:
        query = query.where(Hazard.created_at <= end)
    size, page = parse_id(args.get("page_size") or str(DEFAULT_PAGE)), parse_id(args.get("page") or "1")
    if size is None or page is None:
        raise Unprocessable("page / page_size 必须是整数", code="invalid_page")
    size, page = max(1, min(size, MAX_PAGE)), max(1, min(page, MAX_PAGE_NUMBER))
    rows = db.session.scalars(query.order_by(Hazard.created_at.desc(), Hazard.id.desc())
                              .limit(size).offset((page - 1) * size)).unique()
    names = _category_names()
    return jsonify([service_request(h, names) for h in rows])


@bp.get("/requests/<int:hazard_id>.json")
@limiter.limit(OPEN311_LIMIT)
def request_detail(hazard_id):
    hazard = db.session.get(Hazard, hazard_id)
    if hazard is None:
        raise NotFound("工单不存在", code="hazard_not_found")
    return jsonify([service_request(hazard, _category_names(), with_media=True)])


def service_request(hazard: Hazard, names: dict, with_media: bool = False) -> dict:
    notes = status_label(hazard.status)
    if hazard.status in ("resolved", "verified", "closed") and hazard.resolution_note:
        notes = f"{notes}：{hazard.resolution_note}"
    media = tip_photos(hazard.id, limit=1) if with_media else []
    return {
        "service_request_id": str(hazard.id),
        "status": "closed" if hazard.status == "closed" else "open",
        "status_notes": notes,
        "service_name": names.get(hazard.category_code, hazard.category_code),
        "service_code": hazard.category_code,
        "description": hazard.description,
        "agency_responsible": hazard.department.name,
        "service_notice": None,
        "requested_datetime": iso(hazard.created_at),
        "updated_datetime": iso(hazard.updated_at),
        "expected_datetime": iso(hazard.due_at) if hazard.status != "closed" else None,
        "address": hazard.address,
        "address_id": None,
        "zipcode": None,
        "lat": hazard.lat,
        "long": hazard.lng,
        "media_url": media[0]["url"] if media else None,
    }


def _category_names() -> dict:
    return dict(db.session.execute(select(Category.code, Category.name)).all())


def _date(value: str | None, name: str):
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Unprocessable(f"{name} 不是有效的 ISO-8601 时间", code="invalid_date", fields={name: [value]}) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
