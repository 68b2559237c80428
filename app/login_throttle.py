"""Staff login protection: a per-address limit shared by the API and the console login.

The address is request.remote_addr, which app/__init__.py's ProxyFix sets from X-Forwarded-For
behind TRUSTED_PROXY_COUNT proxies, so each client behind nginx has its own bucket.
"""
from __future__ import annotations

from flask import current_app

from app.extensions import limiter


def _ip_limit() -> str:
    return current_app.config["STAFF_LOGIN_LIMIT_IP"]


# One bucket per address for both doors: the console form and POST /api/staff/v1/auth/login.
staff_login_ip_limit = limiter.shared_limit(_ip_limit, scope="staff-login-ip", methods=["POST"])
