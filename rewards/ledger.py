"""The double-entry ledger: integer fen, debit positive / credit negative, append-only.

Accounts (a budget account carries its period: `budget_available:2026-11`):
- wechat_merchant       the WeChat Pay merchant balance (asset)
- packets_in_flight     red packets WeChat took from the balance and nobody has opened or refunded yet
                        (clearing: per packet it returns to zero)
- reward_expense        opened packets
- program_funding       money put into the program (credit-normal)
- reconciliation_suspense   differences found against WeChat's statement, until finance explains them
- budget_control        memorandum contra account of the budget accounts below
- budget_available:P / budget_reserved:P / budget_committed:P / budget_expired   (credit-normal)

Every event is one transaction of two balanced halves (cash, budget) where both apply:
  funding    Dr wechat_merchant / Cr program_funding;  Dr budget_control / Cr budget_available:P
  reserve    Dr budget_available:P / Cr budget_reserved:P
  sent       Dr packets_in_flight / Cr wechat_merchant; Dr budget_reserved:P / Cr budget_committed:P
  claimed    Dr reward_expense / Cr packets_in_flight
  refunded   Dr wechat_merchant / Cr packets_in_flight; Dr budget_committed:P / Cr budget_available:P
             (or Cr budget_expired once P is closed)
  failed     Dr budget_reserved:P / Cr budget_available:P   (nothing left the merchant account; a
             cancelled or expired transfer books the same release)
A transfer (商家转账) leaves the merchant account only when the resident confirms: `sent` and
`claimed` are then booked together, on the day WeChat's bill shows the expense.
  adjustment Dr/Cr reconciliation_suspense against wechat_merchant
  correction the reverse of an earlier transaction, linked by reverses_id
Nothing is ever updated or deleted (ORM guard in models.py, triggers in the migration).
"""
from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite

from app import display
from app.extensions import db
from rewards.models import LedgerDayBalance, LedgerEntry, LedgerTransaction

MERCHANT = "wechat_merchant"
IN_FLIGHT = "packets_in_flight"
EXPENSE = "reward_expense"
FUNDING = "program_funding"
SUSPENSE = "reconciliation_suspense"
BUDGET_CONTROL = "budget_control"
EXPIRED = "budget_expired"
CREDIT_NORMAL_PREFIXES = (FUNDING, "budget_available", "budget_reserved", "budget_committed", EXPIRED)


class UnbalancedTransaction(ValueError):
    pass


def available(period: str) -> str:
    return f"budget_available:{period}"


def reserved(period: str) -> str:
    return f"budget_reserved:{period}"


def committed(period: str) -> str:
    return f"budget_committed:{period}"


def post(kind: str, lines: list[tuple[str, int]], *, payout_id: int | None = None, period: str | None = None,
         business_day: date | None = None, memo: str | None = None, created_by: int | None = None,
         reverses_id: int | None = None, at: datetime | None = None) -> LedgerTransaction:
    """Append one balanced transaction (flush only; the caller commits with the change it records)."""
    lines = [(account, int(amount)) for account, amount in lines if int(amount) != 0]
    if not lines:
        raise UnbalancedTransaction("a transaction needs at least one non-zero line")
    if sum(amount for _, amount in lines) != 0:
        raise UnbalancedTransaction(f"{kind}: debits and credits differ by {sum(a for _, a in lines)} fen")
    tx = LedgerTransaction(kind=kind, payout_id=payout_id, period=period, memo=memo, created_by=created_by,
                           reverses_id=reverses_id, business_day=business_day or display.business_day(at))
    db.session.add(tx)
    db.session.flush()
    db.session.add_all([LedgerEntry(transaction_id=tx.id, account=account, amount_fen=amount, payout_id=payout_id)
                        for account, amount in lines])
    db.session.flush()
    _add_to_day_balances(tx.business_day, lines)
    return tx


def _add_to_day_balances(day: date, lines: list[tuple[str, int]]) -> None:
    """One upsert per transaction (lines of one account summed first: a statement may touch a row once)."""
    totals: dict[str, int] = defaultdict(int)
    for account, amount in lines:
        totals[account] += amount
    rows = [{"account": account, "business_day": day, "amount_fen": amount} for account, amount in sorted(totals.items())]
    dialect = db.session.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(LedgerDayBalance)
    db.session.execute(insert.values(rows).on_conflict_do_update(
        index_elements=["account", "business_day"],
        set_={"amount_fen": LedgerDayBalance.amount_fen + insert.excluded.amount_fen}))


def balance_through(account: str, day: date, *, before: bool = False) -> int:
    """Raw balance of `account` over the entries of business days up to `day` (or before it)."""
    column = LedgerDayBalance.business_day
    return int(db.session.scalar(select(func.coalesce(func.sum(LedgerDayBalance.amount_fen), 0))
                                 .where(LedgerDayBalance.account == account, column < day if before else column <= day)))


# --- the events -------------------------------------------------------------------------------------

def post_funding(period: str, amount_fen: int, *, created_by=None, memo=None) -> LedgerTransaction:
    return post("funding", [(MERCHANT, amount_fen), (FUNDING, -amount_fen),
                            (BUDGET_CONTROL, amount_fen), (available(period), -amount_fen)],
                period=period, created_by=created_by, memo=memo)


def post_reservation(payout) -> LedgerTransaction:
    a, p = payout.amount_fen, payout.period
    return post("reserve", [(available(p), a), (reserved(p), -a)], payout_id=payout.id, period=p)


def post_sent(payout, at: datetime | None = None, memo: str | None = None) -> LedgerTransaction:
    a, p = payout.amount_fen, payout.period
    return post("sent", [(IN_FLIGHT, a), (MERCHANT, -a), (reserved(p), a), (committed(p), -a)],
                payout_id=payout.id, period=p, at=at, memo=memo)


def post_claimed(payout, at: datetime | None = None) -> LedgerTransaction:
    a = payout.amount_fen
    return post("claimed", [(EXPENSE, a), (IN_FLIGHT, -a)], payout_id=payout.id, period=payout.period, at=at)


def post_refunded(payout, period_closed: bool, at: datetime | None = None) -> LedgerTransaction:
    a, p = payout.amount_fen, payout.period
    back_to = EXPIRED if period_closed else available(p)
    return post("refunded", [(MERCHANT, a), (IN_FLIGHT, -a), (committed(p), a), (back_to, -a)],
                payout_id=payout.id, period=p, at=at)


def post_failed(payout, memo: str | None = None) -> LedgerTransaction:
    a, p = payout.amount_fen, payout.period
    return post("failed", [(reserved(p), a), (available(p), -a)], payout_id=payout.id, period=p, memo=memo)


def post_expiry(period: str, amount_fen: int, created_by=None) -> LedgerTransaction:
    """Closing a period: what is still available there moves to the expired account."""
    return post("period_close", [(available(period), amount_fen), (EXPIRED, -amount_fen)], period=period,
                created_by=created_by)


def post_adjustment(amount_fen: int, *, memo: str, business_day: date, payout_id=None,
                    created_by=None) -> LedgerTransaction:
    """Reconciliation: WeChat's balance moved `amount_fen` more (negative: less) than ours says.
    Booked against suspense until finance explains it."""
    return post("adjustment", [(MERCHANT, amount_fen), (SUSPENSE, -amount_fen)], memo=memo,
                business_day=business_day, payout_id=payout_id, created_by=created_by)


def post_reversal(tx_id: int, *, memo: str, created_by=None) -> LedgerTransaction:
    """A correction: the exact opposite of an earlier transaction (the original stays)."""
    original = db.session.get(LedgerTransaction, tx_id)
    if original is None:
        raise ValueError("no such transaction")
    lines = db.session.execute(select(LedgerEntry.account, LedgerEntry.amount_fen)
                               .where(LedgerEntry.transaction_id == tx_id)).all()
    return post("correction", [(account, -amount) for account, amount in lines], payout_id=original.payout_id,
                period=original.period, memo=memo, created_by=created_by, reverses_id=tx_id)


# --- reading ----------------------------------------------------------------------------------------

def balances(prefix: str | None = None) -> dict[str, int]:
    """Raw signed balances (debit positive) per account."""
    query = select(LedgerEntry.account, func.sum(LedgerEntry.amount_fen)).group_by(LedgerEntry.account)
    if prefix:
        query = query.where(LedgerEntry.account.like(f"{prefix}%"))
    return {account: int(total or 0) for account, total in db.session.execute(query)}


def natural(account: str, raw: int) -> int:
    """A balance as finance reads it: credit-normal accounts flipped to positive."""
    return -raw if account.split(":")[0] in CREDIT_NORMAL_PREFIXES else raw


def budget_by_period() -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = defaultdict(lambda: {"available": 0, "reserved": 0, "committed": 0})
    for account, raw in balances("budget_").items():
        head, _, period = account.partition(":")
        if period:
            out[period][head.split("_", 1)[1]] = natural(account, raw)
    return dict(out)
