"""The staff console shell (/console): session login/logout, CSRF, role checks and the navigation.

Areas add their pages as their own blueprints under /console/..., extend `console/base.html`,
protect views with `console_required(*roles)` and list them in the navigation with
`register_console_page(endpoint, label, roles, order)`. Every unsafe request under /console is
CSRF-checked here, so an area's blueprint is covered without doing anything.
"""
from __future__ import annotations

import dataclasses
import functools
from urllib.parse import urlsplit

from flask import Blueprint, current_app, g, redirect, render_template, request, session, url_for
from flask_wtf.csrf import CSRFError, generate_csrf, validate_csrf
from wtforms.validators import ValidationError as WTFValidationError

from app.audit import record_audit
from app.auth import end_console_session, load_current_staff, start_console_session
from app.errors import AppError
from app.extensions import db
from app.login_throttle import staff_login_ip_limit

bp = Blueprint("console", __name__, url_prefix="/console")


@dataclasses.dataclass(frozen=True)
class ConsolePage:
    endpoint: str
    label: str
    roles: tuple[str, ...]
    order: int = 100


CONSOLE_PAGES: dict[str, ConsolePage] = {}


def register_console_page(endpoint: str, label: str, roles, order: int = 100) -> None:
    """Show `endpoint` in the console navigation to staff holding one of `roles` (admin sees all)."""
    CONSOLE_PAGES[endpoint] = ConsolePage(endpoint, label, tuple(roles), order)


def console_user():
    """The signed-in staff member from the session cookie only (bearer tokens are for the API)."""
    # cached per request, not per app context (a test client may reuse one context for many requests)
    cached = g.get("console_user_cache")
    if cached is not None and cached[0] is request._get_current_object():
        return cached[1]
    user = None
    if session.get("staff_session") and not request.headers.get("Authorization"):
        user = load_current_staff()
    g.console_user_cache = (request._get_current_object(), user)
    return user


def pages_for(user) -> list[ConsolePage]:
    if user is None:
        return []
    # the registry is process-wide; list only pages this app actually serves
    served = current_app.view_functions
    allowed = [p for p in CONSOLE_PAGES.values() if p.endpoint in served and user.has_role(*p.roles)]
    return sorted(allowed, key=lambda p: (p.order, p.label))


def console_required(*roles: str):
    """Signed in (else to the login page) and holding one of `roles` (else a 403 page)."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            user = console_user()
            if user is None:
                return redirect(url_for("console.login", next=request.full_path.rstrip("?")))
            if roles and not user.has_role(*roles):
                return render_template("console/forbidden.html"), 403
            return view(*args, **kwargs)

        wrapper._console_roles = roles
        return wrapper

    return decorator


def _safe_next(target: str | None) -> str | None:
    """Only local console paths: a login link must not bounce the user to another site."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/console"):
        return None
    return target


@bp.route("/")
@console_required()
def index():
    pages = pages_for(console_user())
    if pages:
        return redirect(url_for(pages[0].endpoint))
    return render_template("console/home.html")


@bp.route("/login", methods=["GET", "POST"])
@staff_login_ip_limit
def login():
    from app.accounts import authenticate

    error, status, headers = None, 200, {}
    username = ""
    if request.method == "POST":
        username = (request.form.get("username") or "").strip()[:64]
        password = request.form.get("password") or ""
        try:
            if not username or not password:
                raise AppError("请输入用户名和密码", code="invalid_credentials")
            user = authenticate(username, password)
        except AppError as exc:
            db.session.rollback()
            # a throttled attempt says how long to wait, like the API's 429
            error, status, headers = exc.message, (429 if exc.status == 429 else 401), exc.headers
        else:
            start_console_session(user)
            record_audit("staff.login", "staff", user.id, actor=user, after={"via": "console"})
            db.session.commit()
            return redirect(_safe_next(request.args.get("next")) or url_for("console.index"))
    return render_template("console/login.html", error=error, username=username), status, headers


@bp.route("/logout", methods=["POST"])
def logout():
    user = console_user()
    end_console_session()
    if user is not None:
        record_audit("staff.logout", "staff", user.id, actor=user)
    db.session.commit()
    return redirect(url_for("console.login"))


def _check_csrf():
    """Every unsafe request under /console carries the session's CSRF token (form field or header)."""
    if not request.path.startswith("/console") or request.method in ("GET", "HEAD", "OPTIONS"):
        return None
    if not current_app.config.get("WTF_CSRF_ENABLED", True):
        return None
    token = request.form.get("csrf_token") or request.headers.get("X-CSRFToken")
    try:
        validate_csrf(token)
    except (WTFValidationError, CSRFError):
        return render_template("console/error.html", message="页面已过期，请刷新后重试"), 400
    return None


def _nav_context():
    if not request.path.startswith("/console"):
        return {}
    user = console_user()
    return {"console_user": user, "console_pages": pages_for(user)}


def init_app(app):
    if "console" in app.blueprints:
        return
    app.register_blueprint(bp)
    app.before_request(_check_csrf)
    app.context_processor(_nav_context)
    app.jinja_env.globals.setdefault("csrf_token", generate_csrf)
