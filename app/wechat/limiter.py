"""The merchant's pay-call budget (WeChat: 30 calls/s), shared by every process through Redis
(a mixin of WeChatGateway)."""
from __future__ import annotations

import logging
import time
import uuid

log = logging.getLogger(__name__)

# Sliding window of call stamps (ms, Redis's clock): ARGV window, limit, slot, hold. A new call is
# stamped `hold` ms ahead (in flight: counted until re-stamped when it ends). Returns 0 when the
# slot was taken, else the ms until the oldest stamp leaves the window.
_SLIDING_WINDOW = """
local key = KEYS[1]
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local hold = tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) < limit then
  redis.call('ZADD', key, now + hold, ARGV[3])
  redis.call('PEXPIRE', key, window * 2 + hold)
  return 0
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now)
"""

# A call ended: re-stamp its slot with now, rounded up to the next ms (ARGV slot, window).
_SLOT_DONE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + 1
redis.call('ZADD', KEYS[1], now, ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < tonumber(ARGV[2]) * 2 then redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2) end
return 0
"""


class PayLimiter:
    def _acquire_pay_slot(self, window: str = "calls", limit: int | None = None) -> str | None:
        """A slot in the merchant's one-second window (WeChat: 30 calls/s; `window`/`limit` for other
        APIs' budgets), shared by every process
        through Redis; None when none frees up within WECHAT_PAY_RATE_WAIT.

        WeChat counts a call when it arrives, which is some time after we start it. So a call holds
        its slot while in flight (stamped in the future, up to its timeout) and is re-stamped with
        the time its reply came (_release_pay_slot): an arrival lies between the two, so no second
        of WeChat's can hold more calls than the limit, however late a call leaves the worker."""
        from app.extensions import redis

        cfg = self._cfg()
        limit = int(limit or cfg.get("WECHAT_PAY_RATE_LIMIT") or 30)
        hold_ms = int((float(cfg["WECHAT_PAY_TIMEOUT"]) + 1) * 1000)
        slot = uuid.uuid4().hex
        deadline = time.monotonic() + float(cfg.get("WECHAT_PAY_RATE_WAIT", 5))
        while True:
            wait_ms = int(redis.conn.eval(_SLIDING_WINDOW, 1, self._pay_window_key(window), 1000, limit, slot, hold_ms))
            if wait_ms <= 0:
                return slot
            wait = min(wait_ms, 50) / 1000  # in-flight calls end early and free their slot sooner
            if time.monotonic() + wait > deadline:
                return None
            time.sleep(wait)

    def _release_pay_slot(self, slot: str, window: str = "calls") -> None:
        """The call is over: its slot counts from now for one second."""
        from app.extensions import redis

        try:
            redis.conn.eval(_SLOT_DONE, 1, self._pay_window_key(window), slot, 1000)
        except Exception:  # Redis gone: the in-flight stamp still expires after the timeout
            log.warning("pay rate slot not released", exc_info=True)

    def _pay_window_key(self, window: str = "calls") -> str:
        """One window per API family: "calls" (red packets, v2: 30/s), "transfer" (bill creation, v3: 100/s)."""
        return f"wechat:pay:{window}:{self._cfg()['WECHAT_MCH_ID']}"
