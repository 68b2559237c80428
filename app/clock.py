"""The app's clock: UTC now, as every row and business day reads it (`app.models.base.utcnow`).

Real time, except where a demo or a test lives through a past on purpose: `flask demo` builds the
last month (tips, decisions, packets, reconciliations) by setting the clock to each moment in turn,
so every row is written by the product's own code at a time it could have been written. The offset
is this process's alone, and production refuses to move it.
"""
from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

_offset = timedelta(0)


def utcnow() -> datetime:
    return datetime.now(timezone.utc) + _offset


def set_clock(moment: datetime | None) -> None:
    """Make utcnow() read `moment` now (and run on from there); None: real time again."""
    global _offset
    if moment is not None and moment.tzinfo is None:
        raise ValueError("give an aware datetime")
    _refuse_in_production()
    _offset = timedelta(0) if moment is None else moment - datetime.now(timezone.utc)


@contextmanager
def clock_at(moment: datetime):
    """The clock set to `moment` inside the block, back to where it was after."""
    global _offset
    before = _offset
    set_clock(moment)
    try:
        yield
    finally:
        _offset = before


def clock_offset() -> timedelta:
    return _offset


def _refuse_in_production() -> None:
    from flask import current_app, has_app_context

    if has_app_context() and current_app.config.get("APP_ENV") == "production":
        raise RuntimeError("the clock is never moved in production")
