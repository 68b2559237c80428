"""The sandbox's memory: one SQLite file of its own (never the app's database), so it survives a restart.

Every write goes through `State.tx()`: a process-wide lock plus BEGIN IMMEDIATE, so the threaded
dev server and a restarted process never interleave half-done payments.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

SHANGHAI = timezone(timedelta(hours=8))

SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (openid TEXT PRIMARY KEY, unionid TEXT NOT NULL, last_login REAL);
CREATE TABLE IF NOT EXISTS codes (code TEXT PRIMARY KEY, openid TEXT NOT NULL, issued_at REAL NOT NULL,
                                  used_at REAL);
CREATE TABLE IF NOT EXISTS tokens (token TEXT PRIMARY KEY, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS faults (api TEXT NOT NULL, mode TEXT NOT NULL, remaining INTEGER NOT NULL,
                                   id INTEGER PRIMARY KEY AUTOINCREMENT);
CREATE TABLE IF NOT EXISTS redpacks (
    mch_billno TEXT PRIMARY KEY, api TEXT NOT NULL, params_hash TEXT NOT NULL, params TEXT NOT NULL,
    openid TEXT NOT NULL, amount_fen INTEGER NOT NULL, status TEXT NOT NULL, detail_id TEXT NOT NULL,
    package TEXT, send_time REAL NOT NULL, send_day TEXT NOT NULL, rcv_time REAL, refund_time REAL,
    pending_left INTEGER, pending_then TEXT, reason TEXT);
CREATE TABLE IF NOT EXISTS transfers (
    out_bill_no TEXT PRIMARY KEY, transfer_bill_no TEXT NOT NULL, params_hash TEXT NOT NULL, appid TEXT NOT NULL,
    openid TEXT NOT NULL, amount_fen INTEGER NOT NULL, remark TEXT NOT NULL, scene_id TEXT NOT NULL,
    notify_url TEXT NOT NULL, state TEXT NOT NULL, fail_reason TEXT, package_info TEXT,
    create_time REAL NOT NULL, update_time REAL NOT NULL, notify_status TEXT, notify_attempts INTEGER DEFAULT 0);
CREATE TABLE IF NOT EXISTS flows (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, day TEXT NOT NULL, kind TEXT NOT NULL,
    mch_billno TEXT NOT NULL, detail_id TEXT NOT NULL, amount_fen INTEGER NOT NULL,
    balance_fen INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, openid TEXT NOT NULL, template_id TEXT NOT NULL,
    page TEXT, data TEXT NOT NULL, miniprogram_state TEXT);
CREATE TABLE IF NOT EXISTS subscriptions (openid TEXT NOT NULL, template_id TEXT NOT NULL,
                                          remaining INTEGER NOT NULL, PRIMARY KEY (openid, template_id));
CREATE TABLE IF NOT EXISTS text_checks (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, openid TEXT NOT NULL, scene INTEGER NOT NULL,
    content TEXT NOT NULL, suggest TEXT NOT NULL, label INTEGER NOT NULL, trace_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS media_checks (
    trace_id TEXT PRIMARY KEY, openid TEXT NOT NULL, media_url TEXT NOT NULL, scene INTEGER NOT NULL,
    suggest TEXT NOT NULL, label INTEGER NOT NULL, created_at REAL NOT NULL, pushed_at REAL,
    push_status TEXT);
"""

DEFAULT_BALANCE_FEN = 10_000_000  # ¥100,000 in the merchant account


class State:
    def __init__(self, path: str | Path):
        self.path = str(path)
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._local = threading.local()
        with self._lock:
            self._conn().executescript(SCHEMA)
            self._add_columns()

    def _add_columns(self):
        """A state file written before a column existed gets it (the sandbox keeps its state across versions)."""
        have = {row["name"] for row in self._conn().execute("PRAGMA table_info(redpacks)")}
        for name, kind in (("pending_left", "INTEGER"), ("pending_then", "TEXT"), ("reason", "TEXT")):
            if name not in have:
                self._conn().execute(f"ALTER TABLE redpacks ADD COLUMN {name} {kind}")

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=30, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        return conn

    @contextmanager
    def tx(self):
        """One serialised write transaction."""
        with self._lock:
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def query(self, sql, params=()):
        return self._conn().execute(sql, params).fetchall()

    # settings ----------------------------------------------------------------------------------
    def get_setting(self, name, default=None, conn=None):
        row = (conn or self._conn()).execute("SELECT value FROM settings WHERE name = ?", (name,)).fetchone()
        return json.loads(row["value"]) if row else default

    def set_setting(self, name, value, conn=None):
        sql = "INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value"
        if conn is not None:
            conn.execute(sql, (name, json.dumps(value)))
            return
        with self.tx() as c:
            c.execute(sql, (name, json.dumps(value)))

    def reset(self):
        with self.tx() as conn:
            for table in ("settings", "users", "codes", "tokens", "faults", "redpacks", "flows", "messages",
                          "subscriptions", "media_checks", "text_checks", "transfers"):
                conn.execute(f"DELETE FROM {table}")

    # the clock -----------------------------------------------------------------------------------
    def now(self, conn=None) -> float:
        """Sandbox time (epoch seconds): real time plus whatever the tests advanced."""
        import time

        return time.time() + float(self.get_setting("clock_offset", 0, conn))

    def balance(self, conn=None) -> int:
        return int(self.get_setting("balance_fen", DEFAULT_BALANCE_FEN, conn))


def local_dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, SHANGHAI)


def wx_time(ts: float | None) -> str | None:
    """WeChat Pay writes times as Beijing wall-clock strings."""
    return local_dt(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else None


def wx_day(ts: float) -> str:
    return local_dt(ts).strftime("%Y%m%d")
