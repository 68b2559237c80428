"""Engine behaviour that the money path relies on, for both engines.

SQLite (embedded default): WAL so readers never block the writer, a busy timeout so writers queue
instead of failing, foreign keys on, and write transactions that begin with BEGIN IMMEDIATE — the
write lock is taken at the start, so two transactions can never both read a budget and then both
write it. Read-only requests (GET/HEAD) begin deferred so they do not queue behind writers.
PostgreSQL (production): psycopg 3; row locks with FOR UPDATE SKIP LOCKED where we claim work.
"""
import contextlib
import contextvars

from sqlalchemy import event
from sqlalchemy.engine import Engine

_sqlite_begin = contextvars.ContextVar("sqlite_begin", default="BEGIN IMMEDIATE")


def is_sqlite(engine_or_session) -> bool:
    bind = getattr(engine_or_session, "bind", None) or engine_or_session
    if hasattr(bind, "get_bind"):
        bind = bind.get_bind()
    return bind.dialect.name == "sqlite"


@contextlib.contextmanager
def deferred_sqlite_transactions():
    """Within this block SQLite transactions begin DEFERRED (read-only work)."""
    token = _sqlite_begin.set("BEGIN")
    try:
        yield
    finally:
        _sqlite_begin.reset(token)


def configure_sqlite(engine: Engine, busy_timeout_ms: int = 15000) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Let SQLAlchemy's "begin" event, not pysqlite, decide how a transaction starts.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        connection.exec_driver_sql(_sqlite_begin.get())


def init_app(app, db):
    with app.app_context():
        engine = db.engine
        if engine.dialect.name == "sqlite":
            configure_sqlite(engine)

    @app.before_request
    def _read_only_requests_begin_deferred():
        from flask import g, request

        if request.method in ("GET", "HEAD", "OPTIONS"):
            g._sqlite_begin_token = _sqlite_begin.set("BEGIN")

    @app.teardown_request
    def _restore_begin_mode(_exc):
        from flask import g

        token = g.pop("_sqlite_begin_token", None)
        if token is not None:
            _sqlite_begin.reset(token)


def open_transactions(db) -> tuple[bool, int]:
    """(the current session has a transaction open, connections checked out of the pool).

    A long-lived process that waits with either of these non-zero holds SQLite's write lock (write
    transactions begin IMMEDIATE) or a PostgreSQL snapshot for as long as it waits.
    """
    session_open = db.session.registry.has() and db.session().in_transaction()
    checkedout = getattr(db.engine.pool, "checkedout", lambda: 0)()
    return session_open, checkedout


def run_in_own_session(app, func, *args, **kwargs):
    """Call func in a fresh app context, so its session — and any transaction it left open — ends
    when it returns (Flask-SQLAlchemy removes the session at the context's teardown)."""
    with app.app_context():
        return func(*args, **kwargs)
