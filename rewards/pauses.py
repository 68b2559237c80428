"""Merchant-wide payout pauses (rewards/decisions.py `pause_merchant`): the merchant's balance, daily
total, certificate, key or permissions stop every payout, and none is marked failed.

While a pause is open no payout calls WeChat: each is held (`reserved`, its own billno kept) until the
pause ends — by itself at the next Asia/Shanghai day (the daily total), when a probe packet goes
through (every REWARDS_PAUSE_PROBE seconds the sweeper sends one held payout), or by finance
(已充值，恢复发放). Ending it makes every held payout due, and the sweeper sends them.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from app.display import SHANGHAI, business_day
from app.extensions import db
from app.models.base import utcnow
from rewards import decisions
from rewards.models import Payout, PayoutPause

log = logging.getLogger(__name__)

HOLD = timedelta(days=1)   # a held payout is looked at again after this at the latest (ending a pause pulls it in)
HELD = "PAUSED"            # last_code of a payout held before its call (the others keep WeChat's pause code)
HELD_CODES = tuple(sorted(decisions.PAUSE_CODES)) + (HELD,)
IS_HELD = (Payout.status == "reserved") & Payout.last_code.in_(HELD_CODES) & (Payout.channel == "redpack")


def _mch_id() -> str:
    return current_app.config["WECHAT_MCH_ID"]


def next_day_start(now: datetime) -> datetime:
    """Midnight of the next Asia/Shanghai day, in UTC (when WeChat's daily totals start again)."""
    day = business_day(now) + timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=SHANGHAI).astimezone(now.tzinfo or SHANGHAI)


def _probe_every() -> timedelta | None:
    seconds = float(current_app.config.get("REWARDS_PAUSE_PROBE") or 0)
    return timedelta(seconds=seconds) if seconds > 0 else None


def open_pause(now: datetime | None = None) -> PayoutPause | None:
    """The merchant's open pause; one whose day has passed is ended first (and None returned)."""
    now = now or utcnow()
    pause = db.session.execute(select(PayoutPause).where(PayoutPause.open_key == _mch_id())
                               .execution_options(populate_existing=True)).scalar_one_or_none()
    if pause is not None and pause.resume_at is not None and pause.resume_at <= now:
        end_pause("next_day", now=now)
        return None
    return pause


def start_pause(code: str, now: datetime | None = None) -> PayoutPause:
    """Open the merchant's pause for `code`, or return the one already open (logged once per incident)."""
    now = now or utcnow()
    existing = open_pause(now)
    if existing is not None:
        return existing
    row = decisions.TABLE.get(("send", code)) or decisions.TABLE.get(("query", code))
    next_day = row is not None and row.resumes == decisions.NEXT_DAY
    probe = _probe_every()
    pause = PayoutPause(mch_id=_mch_id(), open_key=_mch_id(), code=code, started_at=now,
                        resume_at=next_day_start(now) if next_day else None,
                        next_probe_at=(now + probe) if probe and not next_day else None)
    try:
        with db.session.begin_nested():
            db.session.add(pause)
    except IntegrityError:  # another worker opened it first: theirs is the incident
        db.session.commit()
        return open_pause(now) or start_pause(code, now)
    db.session.commit()
    log.error("payouts paused for the merchant", extra={"event": "payouts.paused", "code": code,
                                                        "label": decisions.pause_label(code)})
    return pause


def hold_until(pause: PayoutPause, now: datetime) -> datetime:
    return pause.resume_at or now + HOLD


def end_pause(how: str, *, now: datetime | None = None, staff_id: int | None = None,
              note: str | None = None) -> int:
    """End the open pause (`how`: next_day, probe, finance). Returns how many held payouts are now
    due (0 also when no pause was open); the caller need not commit."""
    now = now or utcnow()
    ended = db.session.execute(
        update(PayoutPause).where(PayoutPause.open_key == _mch_id())
        .values(open_key=None, ended_at=now, ended_how=how, ended_by=staff_id, note=note, next_probe_at=None)
        .execution_options(synchronize_session=False)).rowcount
    released = 0
    if ended:
        released = db.session.execute(
            update(Payout).where(IS_HELD).values(next_check_at=now)
            .execution_options(synchronize_session=False)).rowcount
        log.warning("payouts resumed", extra={"event": "payouts.resumed", "how": how, "held": released})
    db.session.commit()
    return released


def take_probe(pause: PayoutPause, now: datetime) -> int | None:
    """The payout to send as a probe, if one is due (claimed by one sweeper only), else None."""
    probe = _probe_every()
    if probe is None or pause.next_probe_at is None or pause.next_probe_at > now:
        return None
    claimed = db.session.execute(
        update(PayoutPause).where(PayoutPause.id == pause.id, PayoutPause.open_key.is_not(None),
                                  PayoutPause.next_probe_at == pause.next_probe_at)
        .values(next_probe_at=now + probe).execution_options(synchronize_session=False)).rowcount
    db.session.commit()
    if not claimed:
        return None
    payout_id = db.session.execute(select(Payout.id).where(IS_HELD).order_by(Payout.id).limit(1)).scalar()
    db.session.rollback()
    return payout_id


def hold(payout_id: int, pause: PayoutPause, now: datetime, code: str = HELD,
         from_statuses: tuple = ("reserved",)) -> bool:
    """Keep a payout back while the pause is open: `reserved` (no packet exists for its billno: it was
    never sent, or WeChat's answer to it was the pause's code), looked at again when the pause ends."""
    held = db.session.execute(
        update(Payout).where(Payout.id == payout_id, Payout.status.in_(from_statuses))
        .values(status="reserved", last_code=code[:32], next_check_at=hold_until(pause, now), updated_at=now)
        .execution_options(synchronize_session=False)).rowcount == 1
    db.session.commit()
    return held


def count_held() -> int:
    from sqlalchemy import func

    return int(db.session.scalar(select(func.count(Payout.id)).where(IS_HELD)) or 0)


def describe(pause: PayoutPause) -> dict:
    def iso(value):
        return value.isoformat() if value else None

    return {"id": pause.id, "code": pause.code, "label": decisions.pause_label(pause.code),
            "open": pause.open_key is not None, "started_at": iso(pause.started_at), "resume_at": iso(pause.resume_at),
            "next_probe_at": iso(pause.next_probe_at), "ended_at": iso(pause.ended_at), "ended_how": pause.ended_how,
            "ended_by": pause.ended_by, "note": pause.note}


def list_pauses(limit: int = 20) -> list[PayoutPause]:
    return list(db.session.execute(select(PayoutPause).where(PayoutPause.mch_id == _mch_id())
                                   .order_by(PayoutPause.id.desc()).limit(limit)).scalars())
