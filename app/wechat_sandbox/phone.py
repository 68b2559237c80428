"""The phone page (`/__sandbox__/phone/`): the mini-program's stand-in in the demo, so a person
without WeChat can be a resident. Static HTML/JS/CSS in phone/, served by the sandbox only (never
part of the production app).

The page calls the residents' API through `/__sandbox__/phone/api/…`, which this server forwards to
the app's `/api/mp/v1/…`: the page stays same-origin with the sandbox's own endpoints (login codes,
opening red packets, subscribe messages), and the app needs no CORS for an origin production never
has. The app's address is the runtime setting `app_url` (`POST /__sandbox__/config`), else
`PUBLIC_BASE_URL` (the demo sets it).
"""
from __future__ import annotations

from pathlib import Path

import requests
from flask import Blueprint, Response, current_app, jsonify, request, send_from_directory

bp = Blueprint("sandbox_phone", __name__, url_prefix="/__sandbox__/phone")
FILES = Path(__file__).resolve().parent / "phone"
LEAFLET = Path(__file__).resolve().parent.parent / "static" / "vendor" / "leaflet"  # the console's map library
# what a mini-program sends and reads: nothing else crosses the proxy (no cookies)
REQUEST_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key", "Accept")
REPLY_HEADERS = ("Content-Type", "Retry-After")


def app_url() -> str:
    state = current_app.extensions["sandbox_state"]
    return (state.get_setting("app_url") or current_app.config.get("PUBLIC_BASE_URL") or "").rstrip("/")


@bp.get("/")
def index():
    return send_from_directory(FILES, "index.html", max_age=0)


@bp.get("/<name>")
def asset(name):
    return send_from_directory(FILES, name, max_age=0)


@bp.get("/leaflet/<path:name>")
def leaflet(name):
    return send_from_directory(LEAFLET, name)


@bp.get("/places.json")
def places():
    """The demo's map: Dongguan's outline and its towns (WGS-84; the page converts to GCJ-02)."""
    from app.geo.dongguan import OUTLINE, TOWNS

    return jsonify({"outline": [[lat, lng] for lng, lat in OUTLINE],
                    "towns": [{"name": name, "lat": lat, "lng": lng} for _code, name, lat, lng in TOWNS]})


@bp.route("/api/<path:rest>", methods=["GET", "POST", "DELETE"])
def forward(rest):
    """The residents' API, forwarded as it is (status, body, error shape) to the app."""
    base = app_url()
    if not base:
        return _error(503, "sandbox_app_unknown", "沙箱不知道应用的地址：请设置 PUBLIC_BASE_URL 或 app_url")
    headers = {name: request.headers[name] for name in REQUEST_HEADERS if name in request.headers}
    try:
        reply = requests.request(request.method, f"{base}/api/mp/v1/{rest}", params=request.args,
                                 data=request.get_data(), headers=headers, timeout=30, allow_redirects=False)
    except requests.RequestException:
        return _error(502, "app_unreachable", "连不上应用服务器，请稍后再试")
    response = Response(reply.content, status=reply.status_code)
    for name in REPLY_HEADERS:
        if name in reply.headers:
            response.headers[name] = reply.headers[name]
    return response


def _error(status, code, message):
    return jsonify({"error": {"code": code, "message": message, "fields": {}}}), status
