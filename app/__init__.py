"""The application factory. Feature packages are imported inside create_app, never at module level."""
from flask import Flask

from app.config import load_config


def create_app(config: dict | None = None) -> Flask:
    """Build the app: configuration → extensions → blueprints → errors → commands."""
    settings = load_config(config)
    app = Flask(__name__, instance_path=settings["INSTANCE_PATH"], instance_relative_config=False)
    app.config.update(settings)
    if settings["APP_CLOCK"]:
        from app.clock import set_clock

        set_clock(settings["APP_CLOCK"])
    _trust_proxies(app)
    _resolve_embedded_services(app)
    _init_extensions(app)
    _register_blueprints(app)
    _register_errors(app)
    _register_commands(app)
    return app


def _trust_proxies(app):
    """Behind TRUSTED_PROXY_COUNT reverse proxies, REMOTE_ADDR is the client the outermost one saw.

    ProxyFix takes that many hops from the right of X-Forwarded-For (what our proxies appended) and
    ignores whatever a client put further left; rate limits and the audit read request.remote_addr.
    """
    hops = app.config["TRUSTED_PROXY_COUNT"]
    if hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=0, x_host=0, x_port=0, x_prefix=0)


def _resolve_embedded_services(app):
    """No REDIS_URL outside production means the embedded Redis under the instance folder."""
    from pathlib import Path

    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    if not app.config["REDIS_URL"]:
        from app.embedded import ensure_embedded_redis

        app.config["REDIS_URL"] = ensure_embedded_redis(app.instance_path)
    app.config.setdefault("RATELIMIT_STORAGE_URI", _limiter_storage_uri(app.config["REDIS_URL"]))


def _limiter_storage_uri(redis_url: str) -> str:
    if redis_url.startswith("unix://"):
        return "redis+unix://" + redis_url[len("unix://"):]
    return redis_url


def _init_extensions(app):
    from app import db as db_setup, ids, json_body, log
    from app import openapi
    from app.extensions import api, db, limiter, migrate, redis, wechat

    log.init_app(app)
    ids.init_app(app)  # before any route is added
    json_body.init_app(app)
    db.init_app(app)
    db_setup.init_app(app, db)
    migrate.init_app(app, db, directory=str(_migrations_dir()))
    redis.init_app(app)
    limiter.init_app(app)
    wechat.init_app(app)
    openapi.init_app(app, api)
    _import_models()


def _migrations_dir():
    from app.config import PROJECT_ROOT

    return PROJECT_ROOT / "migrations"


def _import_models():
    """Every table the migrations know must be in the metadata (models register on import)."""
    import app.models  # noqa: F401


# Each area wires itself in its package's init_app(app): blueprints, CLI groups, init steps,
# acceptance steps, periodic jobs, models. Called in this order; app never imports them at load time.
FEATURES = ("app.media", "app.geo", "app.hazards", "rewards", "moderation", "miniprogram_api")


def _register_blueprints(app):
    import importlib
    import importlib.util

    from app import display, ops
    from app.extensions import api
    from app.health import bp as health_bp
    from app.staff_auth import bp as staff_auth_bp
    from app.wechat import push_bp as wechat_push_bp

    display.init_app(app)  # the console's filters: Beijing time, names of codes
    app.register_blueprint(health_bp)
    app.register_blueprint(wechat_push_bp)
    api.register_blueprint(staff_auth_bp)
    ops.init_app(app)
    for name in FEATURES:
        if importlib.util.find_spec(name) is None:  # an area not built yet
            continue
        importlib.import_module(name).init_app(app)


def _register_errors(app):
    from app import errors

    errors.init_app(app)


def _register_commands(app):
    from app import commands

    commands.init_app(app)
    commands.check_transactions_ended(app)  # last: the areas registered their commands above
