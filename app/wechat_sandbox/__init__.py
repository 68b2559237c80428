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
    "SANDBOX_TRANSFER_RATE_LIMIT": 100,  # WeChat: 100 transfer-bill creations per second per merchant
    "SANDBOX_NOTIFY_DELAYS": "0.1,0.5,1,2,5",  # between transfer notification attempts (WeChat: 15 s … 6 h)
}
ENV_KEYS = ("WECHAT_APPID", "WECHAT_SECRET", "WECHAT_MCH_ID", "WECHAT_PAY_KEY", "WECHAT_PUSH_URL",
            "WECHAT_PUSH_TOKEN", "WECHAT_PUSH_AES_KEY", "WECHAT_PUSH_FORMAT", "SANDBOX_STATE",
            "SANDBOX_FAULT_SLEEP", "SANDBOX_TOKEN_TTL", "SANDBOX_PUSH_DELAY", "SANDBOX_PAY_RATE_LIMIT",
            "SANDBOX_MERCHANT_DAY_FEN",
            # HTTPS, and WeChat Pay's client-certificate check when a CA for merchant certificates is given
            "SANDBOX_TLS_CERT", "SANDBOX_TLS_KEY", "SANDBOX_CLIENT_CA",
            # the app's address, where the phone page's residents' API calls go
            "PUBLIC_BASE_URL",
            # APIv3 (merchant transfer): given keys, or the development pairs under SANDBOX_V3_KEYS_DIR
            "WECHAT_PAY_V3_KEY", "WECHAT_PAY_KEY_FILE", "WECHAT_PAY_SERIAL", "WECHAT_PAY_PUBLIC_KEY_ID",
            "SANDBOX_PAY_PRIVATE_KEY_FILE", "SANDBOX_V3_KEYS_DIR", "SANDBOX_TRANSFER_RATE_LIMIT",
            "SANDBOX_NOTIFY_DELAYS")


def sandbox_settings(config: dict | None = None, env=None) -> dict:
    """Defaults ← the app's development WeChat credentials ← environment ← explicit config."""
    from app.config import DEFAULT_INSTANCE, SANDBOX_WECHAT, SANDBOX_PUSH

    env = os.environ if env is None else env
    settings = {**DEFAULTS, **SANDBOX_WECHAT, **SANDBOX_PUSH}
    instance = Path(env.get("INSTANCE_PATH") or DEFAULT_INSTANCE)
    settings["SANDBOX_STATE"] = str(instance / "wechat_sandbox.db")
    settings["SANDBOX_V3_KEYS_DIR"] = str(instance)
    settings.update({k: env[k] for k in ENV_KEYS if env.get(k)})
    settings.update(config or {})
    templates = settings.get("SANDBOX_SUBSCRIBE_TEMPLATES") or env.get("SANDBOX_SUBSCRIBE_TEMPLATES") or ""
    if isinstance(templates, str):
        templates = tuple(t for t in templates.split(",") if t)
    settings["SANDBOX_SUBSCRIBE_TEMPLATES"] = tuple(templates)
    return settings


def create_sandbox_app(config: dict | None = None) -> Flask:
    from app.wechat_sandbox import client, control, mp, pay, phone, transfer

    app = Flask("wechat_sandbox")
    app.config.update(sandbox_settings(config))
    app.extensions["sandbox_state"] = State(app.config["SANDBOX_STATE"])
    app.register_blueprint(mp.bp)
    app.register_blueprint(pay.bp)
    app.register_blueprint(transfer.bp)
    app.register_blueprint(control.bp)
    app.register_blueprint(client.bp)
    app.register_blueprint(phone.bp)
    return app
