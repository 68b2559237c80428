"""Budget caps that cannot be overspent under any concurrency.

Each cap is ONE conditional UPDATE (`... SET used = used + :a WHERE id = :id AND used + :a <= cap`):
the database serialises writers on the row (PostgreSQL row lock; SQLite BEGIN IMMEDIATE), so two
approvals can never both see room for one packet. Caps are taken in a fixed order (resident day,
resident month, program day, program month) so concurrent approvals cannot deadlock; rowcount 0
means the cap is full and what was taken before it is handed back in the same transaction.
Counter rows are created on demand with INSERT ... ON CONFLICT DO NOTHING (race-free, both engines).
"""
from __future__ import annotations

import re

from sqlalchemy import case, select, update
from sqlalchemy.dialects import postgresql, sqlite

from app.display import period_of
from app.errors import Conflict, Unprocessable
from app.extensions import db
from app.models.base import utcnow
from rewards import ledger
from rewards.models import BudgetPeriod, RewardCounter

PERIOD_MONTHS_BACK, PERIOD_MONTHS_AHEAD = 1, 12  # the months a top-up may be asked for, around this one


def check_period(period, *, window: bool = False) -> str:
    """A budget period is a real month written YYYY-MM (2026-13 or 0000-00 would strand the money
    funded into it); with `window`, also one a top-up makes sense for: last month to a year ahead."""
    match = re.fullmatch(r"([0-9]{4})-([0-9]{2})", period) if isinstance(period, str) else None
    if match is None or not (1 <= int(match[2]) <= 12 and int(match[1]) >= 2000):
        raise Unprocessable(fields={"period": ["预算期须为 YYYY-MM 格式的有效月份，如 2026-12"]})
    if window:
        now_year, now_month = map(int, period_of().split("-"))
        offset = (int(match[1]) - now_year) * 12 + int(match[2]) - now_month
        if not -PERIOD_MONTHS_BACK <= offset <= PERIOD_MONTHS_AHEAD:
            raise Unprocessable(fields={"period": [f"预算期只能是上个月至 {PERIOD_MONTHS_AHEAD} 个月后之间的月份"]})
    return period

CAP_ORDER = ("resident_day", "resident_month", "program_day", "program_month")


def _insert(model):
    return (postgresql.insert(model) if db.session.get_bind().dialect.name == "postgresql"
            else sqlite.insert(model))


def insert_ignore(model, **values) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING; False when the row was already there. (RETURNING, not
    rowcount: an ORM-enabled insert reports rowcount -1 on psycopg.)"""
    table = model.__table__
    pk = list(table.primary_key.columns)[0]
    stmt = _insert(table).values(**values).on_conflict_do_nothing().returning(pk)
    return db.session.execute(stmt).first() is not None


def counter_id(scope: str, subject_id: int, period: str) -> int:
    insert_ignore(RewardCounter, scope=scope, subject_id=subject_id, period=period, count=0, amount_fen=0)
    return db.session.execute(select(RewardCounter.id).filter_by(scope=scope, subject_id=subject_id,
                                                                 period=period)).scalar_one()


def take_counter(cid: int, amount_fen: int, max_count: int | None, max_fen: int | None) -> bool:
    query = update(RewardCounter).where(RewardCounter.id == cid)
    if max_count is not None:
        query = query.where(RewardCounter.count + 1 <= max_count)
    if max_fen is not None:
        query = query.where(RewardCounter.amount_fen + amount_fen <= max_fen)
    query = query.values(count=RewardCounter.count + 1, amount_fen=RewardCounter.amount_fen + amount_fen)
    return db.session.execute(query.execution_options(synchronize_session=False)).rowcount == 1


def give_back_counter(cid: int, amount_fen: int) -> None:
    db.session.execute(update(RewardCounter).where(RewardCounter.id == cid)
                       .values(count=RewardCounter.count - 1, amount_fen=RewardCounter.amount_fen - amount_fen)
                       .execution_options(synchronize_session=False))


# --- the program's month budget (mirror of the ledger's budget accounts) -----------------------------

def ensure_period(period: str) -> None:
    insert_ignore(BudgetPeriod, period=period, funded_fen=0, available_fen=0, reserved_fen=0, committed_fen=0,
                  expired_fen=0, closed=False)


def _period_update(period: str, *conditions, **values) -> int:
    query = update(BudgetPeriod).where(BudgetPeriod.period == period, *conditions).values(**values)
    return db.session.execute(query.execution_options(synchronize_session=False)).rowcount


def reserve_from_period(period: str, amount_fen: int) -> bool:
    ensure_period(period)
    return _period_update(period, BudgetPeriod.closed.is_(False), BudgetPeriod.available_fen >= amount_fen,
                          available_fen=BudgetPeriod.available_fen - amount_fen,
                          reserved_fen=BudgetPeriod.reserved_fen + amount_fen) == 1


def commit_reserved(period: str, amount_fen: int) -> None:
    """The packet was sent: reserved → committed."""
    _period_update(period, reserved_fen=BudgetPeriod.reserved_fen - amount_fen,
                   committed_fen=BudgetPeriod.committed_fen + amount_fen)


def release_reserved(period: str, amount_fen: int) -> None:
    """Never sent (failed): reserved → available."""
    _period_update(period, reserved_fen=BudgetPeriod.reserved_fen - amount_fen,
                   available_fen=BudgetPeriod.available_fen + amount_fen)


def return_refund(period: str, amount_fen: int) -> bool:
    """An unclaimed packet came back: committed → available, or → expired when the period is closed.
    Returns whether the period was closed (the ledger entry goes to the same place)."""
    row = db.session.execute(
        update(BudgetPeriod).where(BudgetPeriod.period == period)
        .values(committed_fen=BudgetPeriod.committed_fen - amount_fen,
                available_fen=BudgetPeriod.available_fen + case((BudgetPeriod.closed, 0), else_=amount_fen),
                expired_fen=BudgetPeriod.expired_fen + case((BudgetPeriod.closed, amount_fen), else_=0))
        .returning(BudgetPeriod.closed)
    ).first()
    return bool(row[0]) if row else False


def fund_period(period: str, amount_fen: int, *, created_by=None, memo=None):
    """A budget top-up (after a second finance user approved it): money into the merchant account
    and into the period's available budget."""
    if not isinstance(amount_fen, int) or amount_fen <= 0:
        raise Unprocessable(fields={"amount_fen": ["须为正整数（分）"]})
    check_period(period)
    ensure_period(period)
    changed = _period_update(period, BudgetPeriod.closed.is_(False),
                             funded_fen=BudgetPeriod.funded_fen + amount_fen,
                             available_fen=BudgetPeriod.available_fen + amount_fen)
    if not changed:
        raise Conflict("该预算期已结账，不能追加", code="period_closed")
    return ledger.post_funding(period, amount_fen, created_by=created_by, memo=memo)


def close_period(period: str, *, created_by=None) -> int:
    """Close a month: what is still available expires; later refunds of its packets go to expired too."""
    check_period(period)
    ensure_period(period)
    row = db.session.execute(
        update(BudgetPeriod).where(BudgetPeriod.period == period, BudgetPeriod.closed.is_(False))
        .values(closed=True, closed_at=utcnow(), expired_fen=BudgetPeriod.expired_fen + BudgetPeriod.available_fen,
                available_fen=0)
        .returning(BudgetPeriod.expired_fen)
    ).first()
    if row is None:
        raise Conflict("该预算期已结账", code="period_closed")
    bal = ledger.budget_by_period().get(period, {}).get("available", 0)
    if bal:
        ledger.post_expiry(period, bal, created_by=created_by)
    return bal


# --- what operators are told about this month's budget ------------------------------------------------

FUND_COMMAND = "flask --app wsgi rewards fund --period {period} --amount-fen N"
EMPTY_BUDGET_WARNING = "本月预算为 0：审核通过的报料不会发放红包"


def available_this_month() -> tuple[str, int]:
    """(this budget month, fen still available in it); 0 when the month was never funded."""
    from app.display import period_of

    period = period_of()
    available = db.session.scalar(select(BudgetPeriod.available_fen).where(BudgetPeriod.period == period))
    return period, int(available or 0)


def describe_budget_for_init() -> str:
    """`init`'s last line about money: after a fresh install the budget is 0 and every approval comes
    back not_granted (program_month_cap), so say so, with the command that funds it."""
    period, available = available_this_month()
    if available > 0:
        return f"{period} has {available} fen available"
    return (f"{period} has 0 fen: approved tips get no red packet (not_granted, program_month_cap) until it is "
            f"funded: {FUND_COMMAND.format(period=period)} (or a finance top-up in the console)")


def budget_warnings() -> list[str]:
    """The operator page's warning while this month's budget is 0 (app/ops.py)."""
    period, available = available_this_month()
    if available > 0:
        return []
    return [f"{EMPTY_BUDGET_WARNING}（{period}；财务在工作台发起充值并由另一位财务批准，"
            f"或运维执行 {FUND_COMMAND.format(period=period)}）"]


# --- all caps for one reward, in the fixed order -----------------------------------------------------

def take_caps(resident_id: int, day: str, period: str, amount_fen: int, policy: dict) -> tuple[bool, str | None, list]:
    """Take every cap for one packet. Returns (ok, reason, taken counters) — on failure nothing is held."""
    plan = [
        ("resident_day", resident_id, day, policy["resident_day_count"], policy["resident_day_fen"]),
        ("resident_month", resident_id, period, policy["resident_month_count"], policy["resident_month_fen"]),
        ("program_day", 0, day, None, policy["program_day_fen"]),
    ]
    taken: list[int] = []
    for scope, subject, key, max_count, max_fen in plan:
        cid = counter_id(scope, subject, key)
        if not take_counter(cid, amount_fen, max_count, max_fen):
            release_counters(taken, amount_fen)
            return False, f"{scope}_cap", []
        taken.append(cid)
    if not reserve_from_period(period, amount_fen):
        release_counters(taken, amount_fen)
        return False, "program_month_cap", []
    return True, None, taken


def release_counters(counter_ids: list[int], amount_fen: int) -> None:
    for cid in counter_ids:  # same fixed order as taking them
        give_back_counter(cid, amount_fen)


def counters_for(resident_id: int, day: str, period: str) -> list[int]:
    keys = [("resident_day", resident_id, day), ("resident_month", resident_id, period), ("program_day", 0, day)]
    return [counter_id(*key) for key in keys]
