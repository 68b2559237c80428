"""A Redis connection per app, reached through one shared proxy object (like db.session)."""
import redis as redis_lib
from flask import current_app, has_app_context


class RedisClient:
    """`redis.conn` is the current app's `redis.Redis`; attribute access forwards to it."""

    def __init__(self):
        self._last = None  # for code outside an app context (the worker supervisor, scripts)

    def init_app(self, app):
        timeout = app.config.get("REDIS_SOCKET_TIMEOUT", 5)
        conn = redis_lib.Redis.from_url(app.config["REDIS_URL"], socket_timeout=timeout,
                                        socket_connect_timeout=timeout, health_check_interval=30)
        app.extensions["redis"] = conn
        self._last = conn

    @property
    def conn(self) -> redis_lib.Redis:
        if has_app_context():
            return current_app.extensions["redis"]
        if self._last is None:
            raise RuntimeError("Redis is not initialised; call create_app() first")
        return self._last

    def __getattr__(self, name):
        return getattr(self.conn, name)
