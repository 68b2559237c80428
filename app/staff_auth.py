"""POST /api/staff/v1/auth/login: username and password → bearer token and roles."""
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app.accounts import authenticate, issue_staff_token
from app.audit import record_audit
from app.extensions import db
from app.login_throttle import staff_login_ip_limit

bp = Blueprint("staff_auth", __name__, url_prefix="/api/staff/v1/auth", description="工作人员登录")


class LoginSchema(Schema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=64))
    password = fields.String(required=True, validate=validate.Length(min=1, max=256), load_only=True)


class TokenSchema(Schema):
    token = fields.String(required=True)
    expires_in = fields.Integer(required=True)
    roles = fields.List(fields.String(), required=True)
    department = fields.String(allow_none=True)


@bp.route("/login")
class StaffLogin(MethodView):
    decorators = [staff_login_ip_limit]

    @bp.arguments(LoginSchema)
    @bp.response(200, TokenSchema)
    def post(self, body):
        user = authenticate(body["username"], body["password"])
        token, ttl = issue_staff_token(user)
        record_audit("staff.login", "staff", user.id, actor=user, after={"via": "api"})
        db.session.commit()
        return {"token": token, "expires_in": ttl, "roles": user.role_names, "department": user.department_code}
