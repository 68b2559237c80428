"""A Redis connection bound to the app at init time and shared by every module of the process."""
import redis as redis_lib


class RedisClient:
    """Proxy to one `redis.Redis`; attribute access forwards to it once `init_app` has run."""

    def __init__(self):
        self._conn = None

    def init_app(self, app):
        self._conn = redis_lib.Redis.from_url(
            app.config["REDIS_URL"],
            socket_timeout=app.config.get("REDIS_SOCKET_TIMEOUT", 5),
            socket_connect_timeout=app.config.get("REDIS_SOCKET_TIMEOUT", 5),
            health_check_interval=30,
        )
        app.extensions["redis"] = self

    @property
    def conn(self) -> redis_lib.Redis:
        if self._conn is None:
            raise RuntimeError("Redis is not initialised; call create_app() first")
        return self._conn

    def __getattr__(self, name):
        return getattr(self.conn, name)
