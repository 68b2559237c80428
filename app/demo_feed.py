"""What the demo's terminal shows: one short line per notable event (a tip received, a decision, a red
packet paid) and every error, read from the JSON logs the demo's processes write under
instance/logs/. The logs themselves are as in production; only the demo reads them this way.

Areas mark an event by logging it with extra={"event": ...}; EVENT_LINES says how each reads.
"""
from __future__ import annotations

import json
import threading
from datetime import datetime
from pathlib import Path
from typing import Callable

from app.display import SHANGHAI, format_yuan

ACTION_LABELS = {"approve": "审核通过", "reject": "已驳回", "duplicate": "判为重复", "need_info": "退回补充材料"}


def _tip_received(r: dict) -> str:
    return f"收到报料 #{r.get('tip_id')}（{r.get('category_name') or r.get('category') or '未分类'}）"


def _tip_decided(r: dict) -> str:
    line = f"报料 #{r.get('tip_id')} {ACTION_LABELS.get(r.get('action'), r.get('action'))}（{r.get('staff')}）"
    if r.get("reward_status") == "reserved":
        line += f"，红包 {format_yuan(r.get('reward_fen'))} 待发放"
    elif r.get("reward_status") == "not_granted":
        line += f"，不发红包：{r.get('reward_reason') or '未获发放'}"
    return line


def _tip_refused(r: dict) -> str:
    if r.get("outcome") == "duplicate":
        return f"报料 #{r.get('tip_id')} 未受理：与本人报料 #{r.get('duplicate_of')} 照片相同，自动判为重复"
    what = "图片" if r.get("check") == "media" else "内容"
    return f"报料 #{r.get('tip_id')} 未受理：{what}未通过内容安全检查，已自动驳回"


def _payout_sent(r: dict) -> str:
    return f"红包已发出：报料 #{r.get('tip_id')}，{format_yuan(r.get('amount_fen'))}"


def _payout_waiting(r: dict) -> str:
    return f"商家转账已发起，等待居民确认收款：报料 #{r.get('tip_id')}，{format_yuan(r.get('amount_fen'))}"


def _payout_claimed(r: dict) -> str:
    return f"居民已确认收款：报料 #{r.get('tip_id')}，{format_yuan(r.get('amount_fen'))}"


EVENT_LINES: dict[str, Callable[[dict], str]] = {
    "tip.received": _tip_received,
    "tip.decided": _tip_decided,
    "tip.refused": _tip_refused,
    "payout.sent": _payout_sent,
    "payout.waiting": _payout_waiting,
    "payout.claimed": _payout_claimed,
}
ERROR_LEVELS = ("ERROR", "CRITICAL")
# plain-text lines that are errors too: gunicorn's own log, a traceback printed before logging was set up
_PLAIN_ERRORS = ("[ERROR]", "[CRITICAL]", "Traceback (most recent call last)")


def line_for(raw: str, source: str) -> str | None:
    """The terminal's line for one log line of `source` (web, worker, sandbox, demo), or None."""
    raw = raw.strip()
    try:
        record = json.loads(raw) if raw.startswith("{") else None
    except ValueError:
        record = None
    now = datetime.now(SHANGHAI).strftime("%H:%M:%S")
    if not isinstance(record, dict):
        if any(marker in raw for marker in _PLAIN_ERRORS):
            return f"{now} 错误（{source}）：{raw[:200]}（详见 logs/{source}.log）"
        return None
    describe = EVENT_LINES.get(record.get("event"))
    if describe is not None:
        try:
            return f"{now} {describe(record)}"
        except Exception:  # noqa: BLE001 — a malformed event must not stop the feed
            return None
    if record.get("level") in ERROR_LEVELS:
        return f"{now} 错误（{source}）：{str(record.get('message'))[:200]}（详见 logs/{source}.log）"
    return None


class LogFeed:
    """Follows log files from their current end and echoes the line for each event or error."""

    def __init__(self, files: dict[str, Path], echo: Callable[[str], None], interval: float = 0.5):
        self.files = files
        self.echo = echo
        self.interval = interval
        self.printed = 0  # lines shown so far (the demo repeats its banner only after some)
        self._offsets = {name: (path.stat().st_size if path.exists() else 0) for name, path in files.items()}
        self._partial = {name: "" for name in files}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-log-feed", daemon=True)

    def start(self) -> "LogFeed":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.poll()  # what was written up to the end

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()

    def poll(self) -> None:
        for name, path in self.files.items():
            for raw in self._read_new(name, path):
                line = line_for(raw, name)
                if line:
                    self.printed += 1
                    self.echo(line)

    def _read_new(self, name: str, path: Path) -> list[str]:
        try:
            with open(path, "rb") as handle:
                handle.seek(self._offsets[name])
                chunk = handle.read()
        except FileNotFoundError:
            return []
        self._offsets[name] += len(chunk)
        text = self._partial[name] + chunk.decode("utf-8", errors="replace")
        *lines, self._partial[name] = text.split("\n")  # the last piece may be half a line
        return lines
