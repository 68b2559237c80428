"""`flask --app wsgi wechat-sandbox --port N`: the sandbox on loopback, agreeing with the app's config."""
from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

SHARED = ("WECHAT_APPID", "WECHAT_SECRET", "WECHAT_MCH_ID", "WECHAT_PAY_KEY", "WECHAT_PUSH_URL",
          "WECHAT_PUSH_TOKEN", "WECHAT_PUSH_AES_KEY", "PUBLIC_BASE_URL", "WECHAT_PAY_V3_KEY", "WECHAT_PAY_SERIAL",
          "WECHAT_PAY_PUBLIC_KEY_ID")


@click.command("wechat-sandbox")
@click.option("--port", default=5099, show_default=True, type=int)
@click.option("--host", default="127.0.0.1", show_default=True, help="loopback only, unless you know why")
@click.option("--state", "state_path", default=None, help="SQLite state file (default: instance/wechat_sandbox.db)")
@with_appcontext
def sandbox_command(port, host, state_path):
    """Run the local WeChat simulator (mini-program APIs and WeChat Pay v2)."""
    from app.wechat_sandbox import create_sandbox_app, sandbox_settings

    cfg = current_app.config
    overrides = {name: cfg[name] for name in SHARED if cfg.get(name)}
    templates = cfg.get("WECHAT_SUBSCRIBE_TEMPLATES") or {}
    overrides["SANDBOX_SUBSCRIBE_TEMPLATES"] = tuple(templates.values())
    overrides["SANDBOX_V3_KEYS_DIR"] = current_app.instance_path  # the app's development key pairs
    settings = sandbox_settings(overrides)
    if state_path:
        settings["SANDBOX_STATE"] = state_path
    elif "SANDBOX_STATE" not in overrides and not _env_state():
        settings["SANDBOX_STATE"] = str(Path(current_app.instance_path) / "wechat_sandbox.db")
    run_sandbox(create_sandbox_app(settings), host, port)


def _env_state():
    import os

    return os.environ.get("SANDBOX_STATE")


def run_sandbox(app, host: str, port: int) -> None:
    from werkzeug.serving import run_simple

    from app.wechat_sandbox.transfer import v3_keys

    v3_keys(app.config)  # load (or generate) the APIv3 key pairs before serving, not inside a first call
    context = tls_context(app.config)
    scheme = "https" if context else "http"
    click.echo(f"wechat sandbox on {scheme}://{host}:{port}/ (state {app.config['SANDBOX_STATE']})")
    run_simple(host, port, app, threaded=True, use_reloader=False, use_debugger=False, ssl_context=context)


def tls_context(cfg):
    """HTTPS when SANDBOX_TLS_CERT/KEY are set; with SANDBOX_CLIENT_CA, client certificates signed by
    that CA are accepted (optional at the TLS level: the pay APIs answer CA_ERROR without one, as WeChat)."""
    import ssl

    if not cfg.get("SANDBOX_TLS_CERT"):
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cfg["SANDBOX_TLS_CERT"], cfg.get("SANDBOX_TLS_KEY") or None)
    if cfg.get("SANDBOX_CLIENT_CA"):
        context.load_verify_locations(cfg["SANDBOX_CLIENT_CA"])
        context.verify_mode = ssl.CERT_OPTIONAL
    return context
