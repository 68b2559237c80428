"""The money invariants, checked by `flask rewards check` and by the tests after every step.

Each check returns messages naming what failed; an empty list means the books are right.
"""
from __future__ import annotations

from collections import defaultdict

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import aliased

from app.extensions import db
from rewards import ledger
from rewards.models import BudgetPeriod, LedgerDayBalance, LedgerEntry, LedgerTransaction, Payout, RewardCounter

OPEN = or_(Payout.status.in_(("reserved", "sending", "waiting_confirm")), and_(Payout.status == "manual_review", Payout.sent_at.is_(None)))
IN_FLIGHT = or_(Payout.status == "sent", and_(Payout.status == "manual_review", Payout.sent_at.is_not(None)))
COMMITTED = or_(Payout.status.in_(("sent", "claimed")), and_(Payout.status == "manual_review",
                                                             Payout.sent_at.is_not(None)))


def _sum_by_period(condition) -> dict[str, int]:
    rows = db.session.execute(select(Payout.period, func.sum(Payout.amount_fen)).where(condition)
                              .group_by(Payout.period)).all()
    return {period: int(total or 0) for period, total in rows if period}


def check_transactions_balance() -> list[str]:
    rows = db.session.execute(select(LedgerEntry.transaction_id, func.sum(LedgerEntry.amount_fen))
                              .group_by(LedgerEntry.transaction_id)
                              .having(func.sum(LedgerEntry.amount_fen) != 0).limit(10)).all()
    empty = db.session.execute(select(LedgerTransaction.id).where(
        ~select(LedgerEntry.id).where(LedgerEntry.transaction_id == LedgerTransaction.id).exists()).limit(10)).scalars().all()
    out = [f"transaction {tx} does not balance (off by {total} fen)" for tx, total in rows]
    out += [f"transaction {tx} has no entries" for tx in empty]
    return out


def check_available_nonnegative() -> list[str]:
    return [f"budget {period} available is {b['available']} fen (below zero)"
            for period, b in ledger.budget_by_period().items() if b["available"] < 0]


def check_reserved_equals_open() -> list[str]:
    books = {p: b["reserved"] for p, b in ledger.budget_by_period().items()}
    payouts = _sum_by_period(OPEN)
    return [f"budget {p} reserved {books.get(p, 0)} fen but open payouts hold {payouts.get(p, 0)} fen"
            for p in sorted(set(books) | set(payouts)) if books.get(p, 0) != payouts.get(p, 0)]


def check_committed_equals_sent() -> list[str]:
    books = {p: b["committed"] for p, b in ledger.budget_by_period().items()}
    payouts = _sum_by_period(COMMITTED)
    return [f"budget {p} committed {books.get(p, 0)} fen but sent/claimed payouts hold {payouts.get(p, 0)} fen"
            for p in sorted(set(books) | set(payouts)) if books.get(p, 0) != payouts.get(p, 0)]


def check_one_payout_per_tip() -> list[str]:
    out = [f"tip {tip} has {n} payouts" for tip, n in db.session.execute(
        select(Payout.tip_id, func.count()).group_by(Payout.tip_id).having(func.count() > 1).limit(10))]
    out += [f"mch_billno {b} is used {n} times" for b, n in db.session.execute(
        select(Payout.mch_billno, func.count()).where(Payout.mch_billno.is_not(None))
        .group_by(Payout.mch_billno).having(func.count() > 1).limit(10))]
    # at most one packet per payout: sent transactions, less the ones a correction reversed
    reversal = aliased(LedgerTransaction)
    sent = (select(LedgerTransaction.payout_id, func.count())
            .where(LedgerTransaction.kind == "sent",
                   ~select(reversal.id).where(reversal.reverses_id == LedgerTransaction.id).exists())
            .group_by(LedgerTransaction.payout_id).having(func.count() > 1).limit(10))
    out += [f"payout {p} was booked as sent {n} times" for p, n in db.session.execute(sent)]
    # a billno given up (proved unpaid) is never used again, by this payout or another
    given_up: dict[str, int] = {}
    for payout_id, previous in db.session.execute(select(Payout.id, Payout.previous_billnos)
                                                  .where(Payout.previous_billnos.is_not(None))):
        for billno in previous or []:
            if billno in given_up:
                out.append(f"mch_billno {billno} was given up by payouts {given_up[billno]} and {payout_id}")
            given_up[billno] = payout_id
    if given_up:
        reused = db.session.execute(select(Payout.id, Payout.mch_billno)
                                    .where(Payout.mch_billno.in_(list(given_up))).limit(10)).all()
        out += [f"payout {p} uses mch_billno {b}, given up by payout {given_up[b]}" for p, b in reused]
    return out


def check_in_flight_equals_unsettled() -> list[str]:
    raw = ledger.balances(ledger.IN_FLIGHT).get(ledger.IN_FLIGHT, 0)
    unsettled = db.session.execute(select(func.coalesce(func.sum(Payout.amount_fen), 0)).where(IN_FLIGHT)).scalar()
    out = []
    if raw != int(unsettled):
        out.append(f"packets in flight {raw} fen but sent-and-unsettled payouts hold {unsettled} fen")
    # the clearing account returns to zero for every settled packet
    settled = (select(LedgerEntry.payout_id, func.sum(LedgerEntry.amount_fen))
               .join(Payout, Payout.id == LedgerEntry.payout_id)
               .where(LedgerEntry.account == ledger.IN_FLIGHT, ~IN_FLIGHT)
               .group_by(LedgerEntry.payout_id).having(func.sum(LedgerEntry.amount_fen) != 0).limit(10))
    out += [f"payout {p} is settled but {n} fen of it is still in flight" for p, n in db.session.execute(settled)]
    return out


def check_budget_mirror() -> list[str]:
    books = ledger.budget_by_period()
    out = []
    for row in db.session.execute(select(BudgetPeriod)).scalars():
        b = books.get(row.period, {"available": 0, "reserved": 0, "committed": 0})
        mirror = {"available": row.available_fen, "reserved": row.reserved_fen, "committed": row.committed_fen}
        for name, value in mirror.items():
            if value != b.get(name, 0):
                out.append(f"budget {row.period} {name}: table says {value} fen, ledger {b.get(name, 0)} fen")
    expired = db.session.execute(select(func.coalesce(func.sum(BudgetPeriod.expired_fen), 0))).scalar()
    books_expired = ledger.natural(ledger.EXPIRED, ledger.balances(ledger.EXPIRED).get(ledger.EXPIRED, 0))
    if int(expired) != books_expired:
        out.append(f"expired budget: table says {expired} fen, ledger {books_expired} fen")
    return out


def check_counters() -> list[str]:
    rows = db.session.execute(select(RewardCounter).where(or_(RewardCounter.count < 0,
                                                              RewardCounter.amount_fen < 0)).limit(10)).scalars()
    return [f"counter {r.scope}/{r.subject_id}/{r.period} is negative" for r in rows]


def check_payout_entries_match_status() -> list[str]:
    """Each payout's ledger history agrees with its status (e.g. claimed ⇒ reserved, sent, claimed)."""
    expected = {"reserved": {"reserve"}, "sending": {"reserve"}, "sent": {"reserve", "sent"},
                "claimed": {"reserve", "sent", "claimed"}, "refunded": {"reserve", "sent", "refunded"},
                "failed": {"reserve", "failed"}, "not_granted": set(), "awaiting_verification": set(),
                "waiting_confirm": {"reserve"}, "cancelled": {"reserve", "failed"}}
    kinds: dict[int, set] = defaultdict(set)
    for payout_id, kind in db.session.execute(select(LedgerTransaction.payout_id, LedgerTransaction.kind)
                                              .where(LedgerTransaction.payout_id.is_not(None),
                                                     LedgerTransaction.kind.in_(("reserve", "sent", "claimed",
                                                                                 "refunded", "failed")))):
        kinds[payout_id].add(kind)
    out = []
    for payout_id, status, sent_at in db.session.execute(select(Payout.id, Payout.status, Payout.sent_at)):
        want = expected.get(status)
        if status == "manual_review":
            want = {"reserve", "sent"} if sent_at else {"reserve"}
        if want is not None and kinds.get(payout_id, set()) != want:
            out.append(f"payout {payout_id} is {status} but its ledger has {sorted(kinds.get(payout_id, set()))}")
            if len(out) >= 10:
                break
    return out


def check_day_balances() -> list[str]:
    """ledger_day_balances (what balances as at a day are read from) equals the entries, per account and day."""
    books = {(a, d): int(n) for a, d, n in db.session.execute(
        select(LedgerEntry.account, LedgerTransaction.business_day, func.sum(LedgerEntry.amount_fen))
        .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
        .group_by(LedgerEntry.account, LedgerTransaction.business_day))}
    kept = {(a, d): int(n) for a, d, n in db.session.execute(
        select(LedgerDayBalance.account, LedgerDayBalance.business_day, LedgerDayBalance.amount_fen))}
    out = []
    for key in sorted(set(books) | set(kept)):
        if books.get(key, 0) != kept.get(key, 0):
            out.append(f"{key[0]} on {key[1]}: day total {kept.get(key, 0)} fen, entries {books.get(key, 0)} fen")
            if len(out) >= 10:
                break
    return out


CHECKS = {
    "transactions_balance": check_transactions_balance,
    "available_nonnegative": check_available_nonnegative,
    "reserved_equals_open_payouts": check_reserved_equals_open,
    "committed_equals_sent_payouts": check_committed_equals_sent,
    "one_payout_per_tip_one_packet_per_payout": check_one_payout_per_tip,
    "in_flight_equals_unsettled": check_in_flight_equals_unsettled,
    "budget_table_matches_ledger": check_budget_mirror,
    "day_balances_match_entries": check_day_balances,
    "counters_nonnegative": check_counters,
    "payout_ledger_matches_status": check_payout_entries_match_status,
}


def check_all() -> dict[str, list[str]]:
    """{invariant name: failure messages} for every failing invariant (empty: all hold)."""
    failures = {}
    for name, check in CHECKS.items():
        messages = check()
        if messages:
            failures[name] = messages
    db.session.rollback()
    return failures
