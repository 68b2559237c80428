"""Configuration from environment variables, with embedded defaults for development.

`load_config(overrides)` is the only reader of os.environ for the app. In production it refuses to
start when a secret or a real service is missing, rather than falling back to the embedded parts.
"""
import os
import re
import socket
from datetime import datetime, timedelta
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INSTANCE = PROJECT_ROOT / "instance"
DEFAULT_SANDBOX_PORT = 5099

# Development-only credentials: the sandbox starts with the same values, so the two agree.
SANDBOX_WECHAT = {
    "WECHAT_APPID": "wxsandbox0000000001",
    "WECHAT_SECRET": "sandbox-app-secret-not-for-production",
    "WECHAT_MCH_ID": "1900000109",
    "WECHAT_PAY_KEY": "sandboxpaykey0000000000000000000",
    "WECHAT_PAY_V3_KEY": "sandboxapiv3key00000000000000000",
}
# Message push (消息推送) for media-check results: token, and an EncodingAESKey for safe mode.
SANDBOX_PUSH = {
    "WECHAT_PUSH_TOKEN": "sandboxpushtoken",
    "WECHAT_PUSH_AES_KEY": "",  # empty: plaintext mode; 43 characters: safe (encrypted) mode
}
# Subscribe-message templates by purpose (operators paste the ids from the mini-program console).
SANDBOX_SUBSCRIBE_TEMPLATES = {
    "tip_result": "sbx-tpl-tip-result",
    "reward_sent": "sbx-tpl-reward-sent",
    "hazard_closed": "sbx-tpl-hazard-closed",
}
REQUIRED_IN_PRODUCTION = (
    "SECRET_KEY",
    "DATABASE_URL",
    "REDIS_URL",
    "WECHAT_APPID",
    "WECHAT_SECRET",
    "WECHAT_MCH_ID",
    "WECHAT_PAY_KEY",
    "WECHAT_PUSH_TOKEN",  # verifies WeChat's message push (media-check results)
    # 安全模式 only: in 明文模式 the signature does not cover the message, so whoever reads one signed
    # query string (a log, a proxy) could post forged media-check results with it
    "WECHAT_PUSH_AES_KEY",
)

PAYOUT_CHANNELS = ("redpack", "transfer")
TRANSFER_REQUIRED_IN_PRODUCTION = ("WECHAT_PAY_V3_KEY", "WECHAT_PAY_SERIAL", "WECHAT_PAY_KEY_FILE",
                                   "WECHAT_PAY_PUBLIC_KEY_FILE", "WECHAT_PAY_PUBLIC_KEY_ID", "WECHAT_TRANSFER_SCENE_ID",
                                   "WECHAT_TRANSFER_NOTIFY_URL")


# SECRET_KEY signs console sessions, CSRF tokens and photo URLs, and derives the Fernet key: in
# production it must be long and never a value anyone can read in this repository.
DEVELOPMENT_SECRET_KEY = "dev-only-secret-key-change-me"
MIN_SECRET_KEY_BYTES = 32
# Where a published key could be written down: the project's source and documents. Hidden files and
# folders (.git, .venv, .env: an operator's own environment file) and the instance folder are not.
_SOURCE_SKIP_DIRS = {"instance", "node_modules", "__pycache__"}
_SOURCE_SUFFIXES = {".py", ".md", ".txt", ".rst", ".conf", ".service", ".ini", ".cfg", ".toml", ".yml", ".yaml",
                    ".json", ".sh", ".html", ".js", ".example"}
_SOURCE_MAX_BYTES = 2 * 1024 * 1024


# The console's base map in production: 天地图 (the national map service; CGCS2000 ≈ WGS-84, so our
# points need no shifting), streets and then their labels, in Web Mercator. {key} is MAP_TILE_KEY.
TIANDITU_TILES = ("https://t{s}.tianditu.gov.cn/DataServer?T=vec_w&x={x}&y={y}&l={z}&tk={key} "
                  "https://t{s}.tianditu.gov.cn/DataServer?T=cva_w&x={x}&y={y}&l={z}&tk={key}")
MAP_COORD_SYSTEMS = ("wgs84", "gcj02")


class ConfigError(RuntimeError):
    """Raised at start-up when the environment cannot run the app."""


def _env_int(env, name, default):
    value = env.get(name)
    return int(value) if value not in (None, "") else default


def _env_bool(env, name, default=False):
    value = env.get(name)
    if value in (None, ""):
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def normalize_database_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL whatever spelling the operator gave."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _env_clock(value: str, production: bool):
    if not value.strip():
        return None
    if production:
        raise ConfigError("APP_CLOCK moves the app's clock; production always runs on real time")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ConfigError("APP_CLOCK must be an ISO 8601 moment with its zone, e.g. 2026-12-06T11:00:00+08:00")
    return moment


def load_config(overrides: dict | None = None, env=None) -> dict:
    env = os.environ if env is None else env
    overrides = dict(overrides or {})
    app_env = overrides.get("APP_ENV") or env.get("APP_ENV", "development")
    production = app_env == "production"
    instance = Path(overrides.get("INSTANCE_PATH") or env.get("INSTANCE_PATH") or DEFAULT_INSTANCE)

    clock = _env_clock(env.get("APP_CLOCK", ""), production)
    if production:
        missing = [name for name in REQUIRED_IN_PRODUCTION if not env.get(name) and not overrides.get(name)]
        if missing:
            raise ConfigError(
                "production start refused: missing environment variables " + ", ".join(missing)
            )

    proxies = str(overrides.get("TRUSTED_PROXY_COUNT", env.get("TRUSTED_PROXY_COUNT")) or "0").strip()
    if not re.fullmatch(r"[0-9]", proxies):  # a typo must not silently trust (or distrust) the header
        raise ConfigError("TRUSTED_PROXY_COUNT must be the number of reverse proxies in front of the app (0-9)")


    wechat_defaults = {} if production else SANDBOX_WECHAT
    cfg = {
        "APP_ENV": app_env,
        "TESTING": app_env == "testing",
        # Demos and tests only: the process's clock starts at this moment (ISO 8601 with its zone)
        # and runs on from there, e.g. to reconcile a day whose bill only exists tomorrow.
        "APP_CLOCK": clock,
        "INSTANCE_PATH": str(instance),
        "SECRET_KEY": env.get("SECRET_KEY") or ("" if production else DEVELOPMENT_SECRET_KEY),
        # Keys retired by a rotation, newest first: still accepted for sessions, photo URLs and sealed
        # values until what they signed has expired (docs/DEPLOY.md §Security).
        "SECRET_KEY_FALLBACKS": [k for k in re.split(r"[\s,]+", env.get("SECRET_KEY_FALLBACKS", "")) if k],
        "SQLALCHEMY_DATABASE_URI": normalize_database_url(
            env.get("DATABASE_URL") or f"sqlite:///{instance / 'renrenpai.db'}"
        ),
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        # PostgreSQL reached through PgBouncer in transaction mode: a server connection serves other
        # clients between transactions, so psycopg must not prepare statements on it.
        "DATABASE_PGBOUNCER": _env_bool(env, "DATABASE_PGBOUNCER", False),
        # How many machines run this app against the same services; above 1 the embedded parts
        # (SQLite, the embedded Redis, a local photo folder) are refused. HOST_NAME names this one
        # (periodic-job locks say who holds them).
        "HOST_COUNT": _env_int(env, "HOST_COUNT", 1),
        "HOST_NAME": env.get("HOST_NAME") or socket.gethostname(),
        # None means: start (or join) the embedded Redis under the instance folder.
        "REDIS_URL": env.get("REDIS_URL") or None,
        "MEDIA_STORAGE": env.get("MEDIA_STORAGE") or str(instance / "media"),
        "PUBLIC_BASE_URL": env.get("PUBLIC_BASE_URL", ""),
        "RESIDENT_TOKEN_TTL": _env_int(env, "RESIDENT_TOKEN_TTL", 7 * 24 * 3600),
        "STAFF_TOKEN_TTL": _env_int(env, "STAFF_TOKEN_TTL", 12 * 3600),
        # A console session ends after this many seconds without a request (and at STAFF_TOKEN_TTL).
        "STAFF_SESSION_IDLE": _env_int(env, "STAFF_SESSION_IDLE", 30 * 60),
        "MEDIA_URL_TTL": _env_int(env, "MEDIA_URL_TTL", 3600),
        "TIPS_PER_RESIDENT_PER_DAY": _env_int(env, "TIPS_PER_RESIDENT_PER_DAY", 20),
        # Residents' personal information (PIPL): the privacy notice the mini-program shows (a UTF-8
        # text file; empty: the built-in one) and its version (empty: derived from the text), and how
        # many days photos and precise locations of settled tips are kept (0: no limit).
        "PRIVACY_NOTICE_FILE": env.get("PRIVACY_NOTICE_FILE", ""),
        "PRIVACY_NOTICE_VERSION": env.get("PRIVACY_NOTICE_VERSION", ""),
        "PHOTO_RETENTION_DAYS": _env_int(env, "PHOTO_RETENTION_DAYS", 365),
        "LOCATION_RETENTION_DAYS": _env_int(env, "LOCATION_RETENTION_DAYS", 180),
        "RETENTION_PURGE_INTERVAL": float(env.get("RETENTION_PURGE_INTERVAL") or 3600),
        "ACCOUNT_CLOSURE_INTERVAL": float(env.get("ACCOUNT_CLOSURE_INTERVAL") or 300),
        "RATELIMIT_ENABLED": _env_bool(env, "RATELIMIT_ENABLED", True),
        # How many reverse proxies in front of the app append to X-Forwarded-For (nginx in deploy/: 1).
        # The client address (rate limits, audit) is the one the outermost trusted proxy saw; with 0
        # the header is ignored, since anyone can send it.
        "TRUSTED_PROXY_COUNT": int(proxies),
        # Staff logins per client address, API and console together. An office behind one NAT signs
        # in its whole shift within minutes; guessing is held back per account (app/login_throttle.py).
        "STAFF_LOGIN_LIMIT_IP": env.get("STAFF_LOGIN_LIMIT_IP") or "60/minute;600/hour",
        # Per account and address: free failures, then a wait doubling from the base up to the max
        # (seconds); per account: failures an hour before only its known addresses may try.
        "STAFF_LOGIN_FREE_FAILURES": 5,
        "STAFF_LOGIN_BACKOFF_BASE": 1,
        "STAFF_LOGIN_BACKOFF_MAX": 300,
        "STAFF_LOGIN_ACCOUNT_CEILING": 100,
        "RATELIMIT_HEADERS_ENABLED": True,
        # A Redis outage must not take the API down with it: limits fail open, and say so in the log.
        "RATELIMIT_SWALLOW_ERRORS": True,
        "WORKER_MAINTENANCE_INTERVAL": _env_int(env, "WORKER_MAINTENANCE_INTERVAL", 5),
        "OUTBOX_LEASE_SECONDS": _env_int(env, "OUTBOX_LEASE_SECONDS", 60),
        # Seconds between payout sweeps; when the sweeper asks WeChat about sent packets: "wechat"
        # (a sparse schedule, few gethbinfo calls) or "every_sweep" (the sandbox's clock can jump 24 h).
        "REWARDS_SWEEP_INTERVAL": float(env.get("REWARDS_SWEEP_INTERVAL") or 60),
        # seconds between probe packets while payouts are paused for the merchant (0: no probes)
        "REWARDS_PAUSE_PROBE": float(env.get("REWARDS_PAUSE_PROBE") or 900),
        "REWARDS_CHECK_SCHEDULE": env.get("REWARDS_CHECK_SCHEDULE") or ("wechat" if production else "every_sweep"),
        # When set, /metrics wants `Authorization: Bearer <METRICS_TOKEN>` (scrapers inside the network).
        # Production wants the token, or METRICS_PUBLIC=1 to say in so many words that /metrics is open
        # (e.g. nginx alone keeps it internal); elsewhere it is open.
        "METRICS_TOKEN": env.get("METRICS_TOKEN", ""),
        "METRICS_PUBLIC": _env_bool(env, "METRICS_PUBLIC", not production),
        "LOG_LEVEL": env.get("LOG_LEVEL", "INFO"),
        "LOG_JSON": _env_bool(env, "LOG_JSON", True),
        # OpenAPI (flask-smorest)
        "API_TITLE": "人人拍 API",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/api",
        "OPENAPI_JSON_PATH": "openapi.json",
        "WTF_CSRF_TIME_LIMIT": None,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": production,
        "MAX_CONTENT_LENGTH": 11 * 1024 * 1024,
    }
    for name in ("WECHAT_APPID", "WECHAT_SECRET", "WECHAT_MCH_ID", "WECHAT_PAY_KEY", "WECHAT_PAY_V3_KEY"):
        cfg[name] = env.get(name) or wechat_defaults.get(name, "")
    cfg["WECHAT_PAY_CERT"] = env.get("WECHAT_PAY_CERT") or None
    cfg["WECHAT_PAY_KEY_FILE"] = env.get("WECHAT_PAY_KEY_FILE") or None
    # Payouts: red packets (APIv2) or 商家转账 (APIv3). A payout keeps the channel it started on.
    cfg["PAYOUT_CHANNEL"] = (env.get("PAYOUT_CHANNEL") or "redpack").strip().lower()
    # APIv3: the merchant's certificate serial (its private key is WECHAT_PAY_KEY_FILE) and WeChat Pay's
    # public key (public-key mode). Unset outside production: the development pairs (app/dev_keys.py).
    for name in ("WECHAT_PAY_SERIAL", "WECHAT_PAY_PUBLIC_KEY_FILE", "WECHAT_PAY_PUBLIC_KEY_ID"):
        cfg[name] = env.get(name) or None
    cfg["WECHAT_TRANSFER_SCENE_ID"] = env.get("WECHAT_TRANSFER_SCENE_ID") or ("" if production else "1000")
    cfg["WECHAT_TRANSFER_NOTIFY_URL"] = env.get("WECHAT_TRANSFER_NOTIFY_URL") or (
        "" if production else "http://127.0.0.1:5000/wechat/pay/transfer-notify")
    # 转账场景报备信息 of scene 1000 (现金营销): what WeChat shows it reviews the transfers against.
    cfg["WECHAT_TRANSFER_REPORT_INFOS"] = [{"info_type": "活动名称", "info_content": "人人拍隐患随手拍"},
                                           {"info_type": "奖励说明", "info_content": "隐患报料审核通过奖励"}]
    cfg["WECHAT_TRANSFER_RATE_LIMIT"] = _env_int(env, "WECHAT_TRANSFER_RATE_LIMIT", 100)
    sandbox = f"http://127.0.0.1:{DEFAULT_SANDBOX_PORT}/"
    cfg["WECHAT_API_BASE"] = env.get("WECHAT_API_BASE") or ("https://api.weixin.qq.com/" if production else sandbox)
    cfg["WECHAT_PAY_API_BASE"] = env.get("WECHAT_PAY_API_BASE") or ("https://api.mch.weixin.qq.com/" if production else sandbox)
    cfg["WECHAT_TIMEOUT"] = float(env.get("WECHAT_TIMEOUT", "10"))
    push_defaults = {} if production else SANDBOX_PUSH
    for name in ("WECHAT_PUSH_TOKEN", "WECHAT_PUSH_AES_KEY"):
        cfg[name] = env.get(name) or push_defaults.get(name, "")
    # Where WeChat (or the sandbox) delivers pushes: this app's /wechat/push, as the world sees it.
    cfg["WECHAT_PUSH_URL"] = env.get("WECHAT_PUSH_URL") or ("" if production else "http://127.0.0.1:5000/wechat/push")
    # Classic sendredpack needs an Official Account appid bound to the merchant; the mini-program
    # red packet (sendminiprogramhb) uses WECHAT_APPID.
    cfg["WECHAT_OA_APPID"] = env.get("WECHAT_OA_APPID") or ("" if production else cfg["WECHAT_APPID"])
    templates = {} if production else dict(SANDBOX_SUBSCRIBE_TEMPLATES)
    for purpose in SANDBOX_SUBSCRIBE_TEMPLATES:
        value = env.get(f"WECHAT_TEMPLATE_{purpose.upper()}")
        if value:
            templates[purpose] = value
    cfg["WECHAT_SUBSCRIBE_TEMPLATES"] = templates
    # "developer" | "trial" | "formal": which mini-program build a subscribe message opens.
    cfg["WECHAT_MINIPROGRAM_STATE"] = env.get("WECHAT_MINIPROGRAM_STATE") or ("formal" if production else "developer")
    # WeChat allows 30 pay calls/s per merchant, counted as they arrive; the shared limiter counts
    # every call from its start to its reply, so no second of WeChat's sees more (app/wechat/limiter.py).
    cfg["WECHAT_PAY_RATE_LIMIT"] = _env_int(env, "WECHAT_PAY_RATE_LIMIT", 30)
    cfg["WECHAT_PAY_TIMEOUT"] = float(env.get("WECHAT_PAY_TIMEOUT", env.get("WECHAT_TIMEOUT", "10")))
    cfg["WECHAT_SEND_NAME"] = env.get("WECHAT_SEND_NAME", "人人拍")
    # The console's web maps (app/geo/webmap.py): base-map tile URL templates, drawn in order; "none"
    # draws grids and points on a plain background (the offline default outside production).
    cfg["MAP_TILE_URL"] = (env.get("MAP_TILE_URL") or "").strip() or (TIANDITU_TILES if production else "none")
    cfg["MAP_TILE_KEY"] = env.get("MAP_TILE_KEY", "")
    cfg["MAP_TILE_SUBDOMAINS"] = env.get("MAP_TILE_SUBDOMAINS") or "01234567"
    # The datum the tiles are drawn in: wgs84 (天地图, OpenStreetMap) or gcj02 (高德, 腾讯 tiles).
    cfg["MAP_TILE_COORD"] = (env.get("MAP_TILE_COORD") or "wgs84").strip().lower()
    cfg.update(overrides)
    cfg["TRUSTED_PROXY_COUNT"] = int(proxies)
    # The console cookie lives as long as the server-side session it carries (app/auth.py).
    cfg.setdefault("PERMANENT_SESSION_LIFETIME", timedelta(seconds=cfg["STAFF_TOKEN_TTL"]))
    # Checked once everything is read, so a refusal names the problem and nothing hides behind it.
    aes_key = cfg["WECHAT_PUSH_AES_KEY"]
    if aes_key and len(aes_key) != 43:  # safe mode would refuse every push; say so at start
        raise ConfigError("WECHAT_PUSH_AES_KEY must be the 43-character EncodingAESKey (or empty for plaintext mode)")
    if production:
        for key in (cfg["SECRET_KEY"], *cfg["SECRET_KEY_FALLBACKS"]):
            refuse_weak_secret_key(key)
        if not cfg["METRICS_TOKEN"] and not cfg["METRICS_PUBLIC"]:
            raise ConfigError("production start refused: /metrics would be open to anyone who reaches the app; set "
                              "METRICS_TOKEN (Prometheus sends it as a bearer token) or METRICS_PUBLIC=1 if it "
                              "should be open (docs/DEPLOY.md §Security)")
    if cfg["PAYOUT_CHANNEL"] not in PAYOUT_CHANNELS:
        raise ConfigError(f"PAYOUT_CHANNEL must be one of {', '.join(PAYOUT_CHANNELS)}")
    if production and cfg["PAYOUT_CHANNEL"] == "transfer":
        missing = [name for name in TRANSFER_REQUIRED_IN_PRODUCTION if not cfg.get(name)]
        if missing:
            raise ConfigError("production start refused: PAYOUT_CHANNEL=transfer needs " + ", ".join(missing))
    if cfg["MAP_TILE_COORD"] not in MAP_COORD_SYSTEMS:
        raise ConfigError(f"MAP_TILE_COORD must be one of {', '.join(MAP_COORD_SYSTEMS)}")
    for name in ("PHOTO_RETENTION_DAYS", "LOCATION_RETENTION_DAYS"):
        if int(cfg[name]) < 0:
            raise ConfigError(f"{name} must be a number of days (0: no limit)")
    refuse_single_host_parts(cfg)
    if cfg["DATABASE_PGBOUNCER"]:
        use_pgbouncer(cfg)
    return cfg


def refuse_single_host_parts(cfg: dict) -> None:
    """With HOST_COUNT > 1 every host must see the same database, Redis and photos: the embedded
    parts live in one machine's instance folder, so another host would see none of it."""
    hosts = int(cfg["HOST_COUNT"])
    if hosts < 1:
        raise ConfigError("HOST_COUNT must be the number of machines running the app (1 or more)")
    if hosts == 1:
        return
    problems = []
    if str(cfg["SQLALCHEMY_DATABASE_URI"]).startswith("sqlite"):
        problems.append("数据库不能是本机的 SQLite 文件，请设置 DATABASE_URL 为共用的 PostgreSQL "
                        "(the database must be a shared PostgreSQL DATABASE_URL, not a SQLite file)")
    if not cfg["REDIS_URL"]:
        problems.append("不能使用内置 Redis，请设置 REDIS_URL 为共用的 Redis "
                        "(REDIS_URL must name a shared Redis, not the embedded one)")
    if not str(cfg["MEDIA_STORAGE"]).startswith("s3://"):
        problems.append("照片不能存放在本机文件夹，请设置 MEDIA_STORAGE 为 S3 兼容的对象存储 "
                        "(MEDIA_STORAGE must be S3-compatible storage, not a local folder)")
    if problems:
        raise ConfigError(f"HOST_COUNT={hosts}，多台主机部署时启动被拒绝 (start refused with several hosts): "
                          + "；".join(problems))


def use_pgbouncer(cfg: dict) -> None:
    """PgBouncer's transaction pooling hands a server connection to another client after each
    transaction: psycopg's server-side prepared statements would then meet the wrong connection
    ("prepared statement … does not exist"), so none are made."""
    if not str(cfg["SQLALCHEMY_DATABASE_URI"]).startswith("postgresql"):
        raise ConfigError("DATABASE_PGBOUNCER=1 needs a PostgreSQL DATABASE_URL (PgBouncer's address)")
    options = dict(cfg["SQLALCHEMY_ENGINE_OPTIONS"])
    options["connect_args"] = {**options.get("connect_args", {}), "prepare_threshold": None}
    cfg["SQLALCHEMY_ENGINE_OPTIONS"] = options


def refuse_weak_secret_key(key: str) -> None:
    """ConfigError for a key under MIN_SECRET_KEY_BYTES or one written anywhere in the project."""
    advice = 'generate one with: python3 -c "import secrets; print(secrets.token_urlsafe(48))"'
    if len(key.encode("utf-8")) < MIN_SECRET_KEY_BYTES:
        raise ConfigError(f"production start refused: SECRET_KEY (and each of SECRET_KEY_FALLBACKS) must be at "
                          f"least {MIN_SECRET_KEY_BYTES} bytes; {advice}")
    published = "app/config.py" if key in (DEVELOPMENT_SECRET_KEY, *SANDBOX_WECHAT.values()) else _found_in_source(key)
    if published:
        raise ConfigError(f"production start refused: SECRET_KEY (or a fallback) is published in the project's "
                          f"{published}; {advice}")


def _found_in_source(value: str) -> str | None:
    """The project file (relative path) that contains `value`, if any."""
    needle = value.encode("utf-8")
    for folder, dirs, files in os.walk(PROJECT_ROOT):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in _SOURCE_SKIP_DIRS]
        for name in files:
            path = Path(folder, name)
            if name.startswith(".") or (path.suffix not in _SOURCE_SUFFIXES and name != "Procfile"):
                continue
            try:
                if path.stat().st_size <= _SOURCE_MAX_BYTES and needle in path.read_bytes():
                    return str(path.relative_to(PROJECT_ROOT))
            except OSError:
                continue
    return None
