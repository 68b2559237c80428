"""Open311 GeoReport v2, read-only, over the tickets: discovery, services (and one service's
definition), requests and one request, each as .json or .xml.

For civic dashboards that already speak Open311. A "service" is a hazard category; a "request" is
a ticket (not a tip), so no reporter identity can appear: the view is built from the ticket alone.
Coordinates are WGS-84, as the spec expects. The endpoints are public, so each is limited per
client address (OPEN311_LIMIT). Errors are GeoReport's, not the project's shape: a list of
{"code", "description"} (XML <errors><error>), with the HTTP status as code.
"""
from __future__ import annotations

from datetime import datetime, timezone
from xml.etree import ElementTree

from flask import Blueprint, Response, jsonify, request, url_for
from sqlalchemy import select

from app.errors import NotFound, Unprocessable
from app.extensions import db, limiter
from app.hazards.catalogue import get_category, list_categories
from app.hazards.lifecycle import status_label
from app.hazards.models import OPEN_HAZARD_STATUSES, Category, Hazard
from app.hazards.queries import iso, tip_photos
from app.ids import parse_id

PREFIX = "/open311/v2"
bp = Blueprint("open311", __name__, url_prefix=PREFIX)
DEFAULT_PAGE, MAX_PAGE = 50, 200
MAX_PAGE_NUMBER = 1_000_000  # past any real list; keeps the OFFSET a number the database takes
OPEN311_LIMIT = "120/minute"
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
STATUSES = {"open": OPEN_HAZARD_STATUSES, "closed": ("closed",)}


def _answer(fmt: str, value, root: str, item: str, status: int = 200) -> Response:
    """The same value as JSON, or as GeoReport's XML (<root><item>…</item></root>)."""
    if fmt == "json":
        response = jsonify(value)
    else:
        response = Response(_to_xml(value, root, item), mimetype="text/xml")
    response.status_code = status
    return response


def _to_xml(value, root: str, item: str) -> bytes:
    top = ElementTree.Element(root)
    for entry in value if isinstance(value, list) else [value]:
        _fill(ElementTree.SubElement(top, item), entry)
    return ElementTree.tostring(top, encoding="utf-8", xml_declaration=True)


def _fill(element, value) -> None:
    if isinstance(value, dict):
        for key, child in value.items():
            if isinstance(child, list):
                holder = ElementTree.SubElement(element, key)
                for entry in child:
                    _fill(ElementTree.SubElement(holder, key.rstrip("s") or key), entry)
            else:
                _fill(ElementTree.SubElement(element, key), child)
    elif value is not None:
        element.text = str(value).lower() if isinstance(value, bool) else str(value)


def _format_of_request() -> str:
    return "xml" if request.path.endswith(".xml") else "json"


def georeport_error(status: int, message: str, headers=None) -> Response:
    """Every error under PREFIX, matched route or not (app/errors.py sends them here): GeoReport's
    [{"code", "description"}], as XML <errors><error> when the path asks for .xml."""
    response = _answer(_format_of_request(), [{"code": status, "description": message}], "errors", "error", status)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


@bp.get("/discovery.json", defaults={"fmt": "json"})
@bp.get("/discovery.xml", defaults={"fmt": "xml"})
@limiter.limit(OPEN311_LIMIT)
def discovery(fmt):
    base = url_for("open311.services", _external=True).rsplit("/", 1)[0] + "/"
    value = {"changeset": iso(datetime.now(timezone.utc)), "contact": "人人拍（东莞市隐患随手拍）",
             "key_service": "只读接口，无需密钥",
             "endpoints": [{"specification": SPECIFICATION, "url": base, "changeset": iso(datetime.now(timezone.utc)),
                            "type": "production", "formats": ["application/json", "text/xml"]}]}
    if fmt == "json":
        return jsonify(value)
    top = ElementTree.Element("discovery")
    for key in ("changeset", "contact", "key_service"):
        ElementTree.SubElement(top, key).text = value[key]
    endpoints = ElementTree.SubElement(top, "endpoints")
    endpoint = ElementTree.SubElement(endpoints, "endpoint")
    for key in ("specification", "url", "changeset", "type"):
        ElementTree.SubElement(endpoint, key).text = value["endpoints"][0][key]
    formats = ElementTree.SubElement(endpoint, "formats")
    for name in value["endpoints"][0]["formats"]:
        ElementTree.SubElement(formats, "format").text = name
    return Response(ElementTree.tostring(top, encoding="utf-8", xml_declaration=True), mimetype="text/xml")


@bp.get("/services.json", defaults={"fmt": "json"})
@bp.get("/services.xml", defaults={"fmt": "xml"})
@limiter.limit(OPEN311_LIMIT)
def services(fmt):
    return _answer(fmt, [{
        "service_code": c.code,
        "service_name": c.name,
        "description": f"{c.group}：{c.name}（{c.department.name}）",
        "metadata": False,
        "type": "realtime",
        "keywords": c.group,
        "group": c.group,
    } for c in list_categories()], "services", "service")


@bp.get("/services/<code>.json", defaults={"fmt": "json"})
@bp.get("/services/<code>.xml", defaults={"fmt": "xml"})
@limiter.limit(OPEN311_LIMIT)
def service_definition(code, fmt):
    """A service's extra fields: none (metadata is false for every category)."""
    if get_category(code, active_only=True) is None:
        raise NotFound("服务不存在", code="service_not_found")
    value = {"service_code": code, "attributes": []}
    if fmt == "json":
        return jsonify(value)
    top = ElementTree.Element("service_definition")
    ElementTree.SubElement(top, "service_code").text = code
    ElementTree.SubElement(top, "attributes")
    return Response(ElementTree.tostring(top, encoding="utf-8", xml_declaration=True), mimetype="text/xml")


@bp.get("/requests.json", defaults={"fmt": "json"})
@bp.get("/requests.xml", defaults={"fmt": "xml"})
@limiter.limit(OPEN311_LIMIT)
def requests_list(fmt):
    args = request.args
    query = select(Hazard)
    ids = [i.strip() for i in (args.get("service_request_id") or "").split(",") if i.strip()]
    if ids:
        numbers = [parse_id(i) for i in ids]
        if None in numbers:
            raise Unprocessable("service_request_id 无效", code="invalid_request_id")
        query = query.where(Hazard.id.in_(numbers))
    codes = [c.strip() for c in (args.get("service_code") or "").split(",") if c.strip()]
    if codes:
        query = query.where(Hazard.category_code.in_(codes))
    statuses = [s.strip() for s in (args.get("status") or "").split(",") if s.strip()]
    if any(s not in STATUSES for s in statuses):
        raise Unprocessable("status 只能是 open、closed 或二者以逗号分隔", code="invalid_status",
                            fields={"status": [args.get("status")]})
    if statuses and set(statuses) != set(STATUSES):  # both: no filter
        query = query.where(Hazard.status.in_(STATUSES[statuses[0]]))
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
    return _answer(fmt, [service_request(h, names) for h in rows], "service_requests", "request")


@bp.get("/requests/<int:hazard_id>.json", defaults={"fmt": "json"})
@bp.get("/requests/<int:hazard_id>.xml", defaults={"fmt": "xml"})
@limiter.limit(OPEN311_LIMIT)
def request_detail(hazard_id, fmt):
    hazard = db.session.get(Hazard, hazard_id)
    if hazard is None:
        raise NotFound("工单不存在", code="hazard_not_found")
    return _answer(fmt, [service_request(hazard, _category_names(), with_media=True)], "service_requests", "request")


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
