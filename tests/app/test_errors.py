from flask import Blueprint
from marshmallow import Schema, ValidationError, fields

from app.errors import Conflict


def _install_probe_routes(app):
    if "probe" in app.blueprints:
        return
    bp = Blueprint("probe", __name__)

    @bp.get("/__probe/conflict")
    def conflict():
        raise Conflict("状态冲突", code="state_conflict", fields={"status": ["已处理"]})

    @bp.post("/__probe/validate")
    def validate():
        class Body(Schema):
            name = fields.String(required=True)

        from flask import request

        Body().load(request.get_json(silent=True) or {})
        return {"ok": True}

    @bp.get("/__probe/crash")
    def crash():
        raise RuntimeError("boom")

    app.register_blueprint(bp)


def test_domain_error_has_the_one_shape(make_app):
    app = make_app()
    _install_probe_routes(app)
    response = app.test_client().get("/__probe/conflict")
    assert response.status_code == 409
    assert response.get_json() == {"error": {"code": "state_conflict", "message": "状态冲突",
                                             "fields": {"status": ["已处理"]}}}


def test_validation_error_is_422_with_fields(make_app):
    app = make_app()
    _install_probe_routes(app)
    response = app.test_client().post("/__probe/validate", json={})
    assert response.status_code == 422
    body = response.get_json()["error"]
    assert body["code"] == "validation_error"
    assert "name" in body["fields"]


def test_unknown_route_and_method_are_json_in_chinese(client):
    response = client.get("/no/such/thing")
    assert response.status_code == 404
    assert response.get_json()["error"]["message"] == "找不到该资源"
    response = client.post("/healthz")
    assert response.status_code == 405
    assert response.get_json()["error"]["code"] == "method_not_allowed"


def test_unexpected_error_is_a_generic_500_outside_tests(make_app):
    app = make_app(PROPAGATE_UNEXPECTED=False)
    _install_probe_routes(app)
    response = app.test_client().get("/__probe/crash")
    assert response.status_code == 500
    body = response.get_json()["error"]
    assert body["code"] == "internal_error"
    assert "boom" not in body["message"]


def test_validation_error_class_is_marshmallows():
    assert issubclass(ValidationError, Exception)


def test_console_paths_answer_errors_as_chinese_pages(make_app):
    """A console page that fails (500, 429, 404 …) is a Chinese page in the console's frame, never JSON."""
    from app.errors import RateLimited

    app = make_app(PROPAGATE_UNEXPECTED=False)
    if "console_probe" not in app.blueprints:
        bp = Blueprint("console_probe", __name__)

        @bp.get("/console/__probe/crash")
        def console_crash():
            raise RuntimeError("boom")

        @bp.get("/console/__probe/busy")
        def console_busy():
            raise RateLimited(headers={"Retry-After": "30"})

        app.register_blueprint(bp)
    client = app.test_client()
    crash = client.get("/console/__probe/crash")
    assert crash.status_code == 500 and crash.mimetype == "text/html"
    assert "系统出错了" in crash.get_data(as_text=True) and "boom" not in crash.get_data(as_text=True)
    busy = client.get("/console/__probe/busy")
    assert busy.status_code == 429 and busy.headers["Retry-After"] == "30"
    assert "操作太频繁" in busy.get_data(as_text=True)
    assert client.get("/console/__probe/none").mimetype == "text/html"
    assert client.get("/__probe/none").mimetype == "application/json"
