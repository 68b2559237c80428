"""Staff login protection, for the API and the console login alike.

- Per address (Flask-Limiter): STAFF_LOGIN_LIMIT_IP, one bucket for both doors. The address is
  request.remote_addr, which ProxyFix (app/__init__.py) sets behind TRUSTED_PROXY_COUNT proxies.
- Per (account, address), in Redis: the first STAFF_LOGIN_FREE_FAILURES failures cost nothing, then
  each further attempt waits twice as long as the last (1 s, 2 s, 4 s … up to STAFF_LOGIN_BACKOFF_MAX).
  A guesser slows only itself: the right password from another address is never refused because of
  it, and there is no lock anyone can put on somebody else's account.
- Per account, a generous ceiling: after STAFF_LOGIN_ACCOUNT_CEILING failures within an hour (a
  guess spread over many addresses), only addresses this account signed in from in the last 30 days
  may still try until the hour is over.

An unknown username is throttled exactly like a real one, so the answers never tell them apart.
Every attempt counts as a failure until the password is verified (a success clears it), so a burst
of parallel guesses cannot slip in before the first failure is written.
"""
from __future__ import annotations

import hashlib
import logging

from flask import current_app
from redis.exceptions import RedisError

from app.errors import RateLimited
from app.extensions import limiter, redis

log = logging.getLogger(__name__)
KNOWN_ADDRESS_TTL = 30 * 24 * 3600
PAIR_TTL = 24 * 3600       # a (account, address) pair forgets its failures after a quiet day
ACCOUNT_WINDOW = 3600

# KEYS: pair hash, account counter, known-address marker.
# ARGV: free failures, base ms, max ms, pair ttl, ceiling, account window.
# Returns {0, 0} when the attempt may go ahead (and is counted), else {1 or 2, seconds to wait}.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wait_until = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
if wait_until > now then return {1, math.ceil((wait_until - now) / 1000)} end
local failed = tonumber(redis.call('GET', KEYS[2]) or '0')
if failed >= tonumber(ARGV[5]) and redis.call('EXISTS', KEYS[3]) == 0 then
  return {2, math.max(redis.call('TTL', KEYS[2]), 1)}
end
local attempts = redis.call('HINCRBY', KEYS[1], 'failures', 1)
local free = tonumber(ARGV[1])
if attempts >= free then
  local delay = math.min(tonumber(ARGV[2]) * 2 ^ (attempts - free), tonumber(ARGV[3]))
  redis.call('HSET', KEYS[1], 'until', string.format('%d', now + delay))
end
redis.call('EXPIRE', KEYS[1], ARGV[4])
if redis.call('INCR', KEYS[2]) == 1 then redis.call('EXPIRE', KEYS[2], ARGV[6]) end
return {0, 0}
"""


# The attempt was counted in advance: take it back from the account's hour (only while that hour lasts).
_CLEAR = """
redis.call('DEL', KEYS[1])
if tonumber(redis.call('GET', KEYS[2]) or '0') > 0 then redis.call('DECR', KEYS[2]) end
redis.call('SET', KEYS[3], 1, 'EX', ARGV[1])
"""


def _ip_limit() -> str:
    return current_app.config["STAFF_LOGIN_LIMIT_IP"]


# One bucket per address for both doors: the console form and POST /api/staff/v1/auth/login.
staff_login_ip_limit = limiter.shared_limit(_ip_limit, scope="staff-login-ip", methods=["POST"])


def _keys(username: str, address: str | None) -> tuple[str, str, str]:
    account = hashlib.sha256(username.encode("utf-8")).hexdigest()[:32]
    address = address or "-"
    return (f"login:pair:{account}:{address}", f"login:account:{account}",
            f"login:known:{account}:{address}")


def reserve_login_attempt(username: str, address: str | None) -> None:
    """Count this attempt as a failure in advance, or raise RateLimited `login_throttled`."""
    cfg = current_app.config
    try:
        refused, wait = redis.conn.eval(
            _RESERVE, 3, *_keys(username, address),
            cfg["STAFF_LOGIN_FREE_FAILURES"], int(cfg["STAFF_LOGIN_BACKOFF_BASE"] * 1000),
            int(cfg["STAFF_LOGIN_BACKOFF_MAX"] * 1000), PAIR_TTL, cfg["STAFF_LOGIN_ACCOUNT_CEILING"],
            ACCOUNT_WINDOW)
    except RedisError:  # like the rate limits: an outage must not lock every member of staff out
        log.warning("login throttle unavailable (Redis); attempt not counted")
        return
    if refused:
        log.warning("staff login throttled (%s)", "address" if refused == 1 else "account ceiling")
        raise RateLimited(f"登录尝试过于频繁，请 {wait} 秒后再试", code="login_throttled",
                          headers={"Retry-After": str(wait)})


def clear_login_failures(username: str, address: str | None) -> None:
    """The password was right: forget this pair's failures and remember the address as known."""
    try:
        redis.conn.eval(_CLEAR, 3, *_keys(username, address), KNOWN_ADDRESS_TTL)
    except RedisError:
        log.warning("login throttle unavailable (Redis); success not recorded")
