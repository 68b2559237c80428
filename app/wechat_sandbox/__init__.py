"""The WeChat sandbox: a separate HTTP server that speaks WeChat's real wire formats on loopback.

`create_sandbox_app(config)` builds it; configuration comes from the same WECHAT_* variables as the
app (so the two agree), state lives in its own SQLite file (SANDBOX_STATE, default
instance/wechat_sandbox.db), never in the app's database. docs/API.md §WeChat sandbox lists the
endpoints.
"""
from __future__ import annotations

import os
from pathlib import Path

from flask import Flask

from app.wechat_sandbox.state import State

DEFAULTS = {
    "SANDBOX_TOKEN_TTL": 7200,
    "SANDBOX_FAULT_SLEEP": 15.0,  # longer than any client timeout we configure
    "SANDBOX_PUSH_DELAY": 0.2,
    "WECHAT_PUSH_FORMAT": "json",
    "SANDBOX_PAY_RATE_LIMIT": 30,  # WeChat: 30 red-packet API calls per second per merchant
    "SANDBOX_MERCHANT_DAY_FEN": 100_000_000,  # WeChat: ¥1,000,000 a day per merchant unless lowered
}
ENV_KEYS = ("WECHAT_APPID", "WECHAT_SECRET", "WECHAT_MCH_ID", "WECHAT_PAY_KEY", "WECHAT_PUSH_URL",
            "WECHAT_PUSH_TOKEN", "WECHAT_PUSH_AES_KEY", "WECHAT_PUSH_FORMAT", "SANDBOX_STATE",
            "SANDBOX_FAULT_SLEEP", "SANDBOX_TOKEN_TTL", "SANDBOX_PUSH_DELAY", "SANDBOX_PAY_RATE_LIMIT",
            "SANDBOX_MERCHANT_DAY_FEN",
            # HTTPS, and WeChat Pay's client-certificate check when a CA for merchant certificates is given
            "SANDBOX_TLS_CERT", "SANDBOX_TLS_KEY", "SANDBOX_CLIENT_CA",
            # the app's address, where the phone page's residents' API calls go
            "PUBLIC_BASE_URL")


def sandbox_settings(config: dict | None = None, env=None) -> dict:
    """Defaults ← the app's development WeChat credentials ← environment ← explicit config."""
    from app.config import DEFAULT_INSTANCE, SANDBOX_WECHAT, SANDBOX_PUSH

    env = os.environ if env is None else env
    settings = {**DEFAULTS, **SANDBOX_WECHAT, **SANDBOX_PUSH}
    settings["SANDBOX_STATE"] = str(Path(env.get("INSTANCE_PATH") or DEFAULT_INSTANCE) / "wechat_sandbox.db")
    settings.update({k: env[k] for k in ENV_KEYS if env.get(k)})
    settings.update(config or {})
    templates = settings.get("SANDBOX_SUBSCRIBE_TEMPLATES") or env.get("SANDBOX_SUBSCRIBE_TEMPLATES") or ""
    if isinstance(templates, str):
        templates = tuple(t for t in templates.split(",") if t)
    settings["SANDBOX_SUBSCRIBE_TEMPLATES"] = tuple(templates)
    return settings


def create_sandbox_app(config: dict | None = None) -> Flask:
    from app.wechat_sandbox import client, control, mp, pay, phone

    app = Flask("wechat_sandbox")
    app.config.update(sandbox_settings(config))
    app.extensions["sandbox_state"] = State(app.config["SANDBOX_STATE"])
    app.register_blueprint(mp.bp)
    app.register_blueprint(pay.bp)
    app.register_blueprint(control.bp)
    app.register_blueprint(client.bp)
    app.register_blueprint(phone.bp)
    return app
