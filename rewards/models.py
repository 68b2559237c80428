"""Rewards tables: payouts, cap counters, budget periods, the double-entry ledger, reconciliation,
policy versions and dual-control requests. Amounts are integer fen everywhere."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (JSON, BigInteger, Boolean, CheckConstraint, Date, ForeignKey, Index, Integer, String, Text,
                        UniqueConstraint, event)
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import TimestampMixin, UTCDateTime, utcnow

PAYOUT_STATUSES = ("awaiting_verification", "not_granted", "reserved", "sending", "sent", "claimed", "refunded",
                   "failed", "manual_review", "waiting_confirm", "cancelled")
# Statuses the residents' API may show (docs/API.md §Statuses); the others are staff-only.
# waiting_confirm and cancelled belong to the transfer channel (商家转账).
RESIDENT_STATUSES = ("reserved", "sending", "sent", "claimed", "refunded", "failed", "manual_review",
                     "waiting_confirm", "cancelled")
PAYOUT_CHANNELS = ("redpack", "transfer")


class Payout(TimestampMixin, db.Model):
    """The reward for one accepted tip and its one red packet (one row per tip, one billno per row)."""

    __tablename__ = "payouts"

    id: Mapped[int] = mapped_column(primary_key=True)
    tip_id: Mapped[int] = mapped_column(ForeignKey("tips.id"), nullable=False, unique=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), nullable=False)
    hazard_id: Mapped[int | None] = mapped_column(Integer)
    category: Mapped[str] = mapped_column(String(48), nullable=False)
    severity: Mapped[int] = mapped_column(Integer, nullable=False)
    amount_fen: Mapped[int] = mapped_column(Integer, nullable=False)
    status: Mapped[str] = mapped_column(String(24), nullable=False)
    reason: Mapped[str | None] = mapped_column(String(64))          # why not granted / why manual review
    period: Mapped[str | None] = mapped_column(String(7))           # budget month (Asia/Shanghai) 'YYYY-MM'
    business_day: Mapped[date | None] = mapped_column(Date)         # day the caps were counted on
    mch_billno: Mapped[str | None] = mapped_column(String(28), unique=True)   # the transfer's out_bill_no too
    # how it is paid (rewards/channels/): set when granted from PAYOUT_CHANNEL, never changed after
    channel: Mapped[str] = mapped_column(String(16), nullable=False, default="redpack", server_default="redpack")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_code: Mapped[str | None] = mapped_column(String(32))
    detail_id: Mapped[str | None] = mapped_column(String(64))
    package: Mapped[str | None] = mapped_column(Text)
    reserved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    first_call_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())   # claimed / refunded / failed
    next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    note: Mapped[str | None] = mapped_column(Text)
    # billnos this payout gave up, oldest first: each proved unpaid by gethbinfo before a new one was used
    previous_billnos: Mapped[list | None] = mapped_column(JSON)

    __table_args__ = (
        CheckConstraint("amount_fen >= 0", name="amount_nonnegative"),
        Index("ix_payouts_resident", "resident_id", "id"),
        Index("ix_payouts_status_check", "status", "next_check_at"),
        Index("ix_payouts_hazard", "hazard_id"),
    )


class PayoutPause(db.Model):
    """A merchant-wide pause (rewards/decisions.py `pause_merchant`): while one is open no payout calls
    WeChat (a probe excepted). `open_key` is the mch_id while open, NULL once ended: one open pause per
    merchant, whoever hits the condition first."""

    __tablename__ = "payout_pauses"

    id: Mapped[int] = mapped_column(primary_key=True)
    mch_id: Mapped[str] = mapped_column(String(32), nullable=False)
    open_key: Mapped[str | None] = mapped_column(String(32), unique=True)
    code: Mapped[str] = mapped_column(String(32), nullable=False)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    resume_at: Mapped[datetime | None] = mapped_column(UTCDateTime())       # ends by itself then (daily total)
    next_probe_at: Mapped[datetime | None] = mapped_column(UTCDateTime())   # the next probe packet
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_how: Mapped[str | None] = mapped_column(String(16))               # next_day | probe | finance
    ended_by: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_payout_pauses_started", "started_at"),)


class RewardClaim(db.Model):
    """First come, first rewarded: 'hazard:<id>' (first valid reporter) and 'hazard:<id>:resident:<id>'
    (same reporter once). Inserted with ON CONFLICT DO NOTHING: the loser of a race sees rowcount 0."""

    __tablename__ = "reward_claims"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    tip_id: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class RewardCounter(db.Model):
    """A cap counter: (scope, subject, period). Incremented by one conditional UPDATE per cap."""

    __tablename__ = "reward_counters"

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(24), nullable=False)      # resident_day | resident_month | program_day
    subject_id: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    period: Mapped[str] = mapped_column(String(10), nullable=False)     # 'YYYY-MM-DD' or 'YYYY-MM'
    count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    amount_fen: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)

    __table_args__ = (
        UniqueConstraint("scope", "subject_id", "period"),
        CheckConstraint("count >= 0 AND amount_fen >= 0", name="nonnegative"),
    )


class BudgetPeriod(db.Model):
    """The program's month budget: a mirror of the ledger's budget accounts that a conditional
    UPDATE can guard (available never below zero). `rewards check` compares it to the ledger."""

    __tablename__ = "budget_periods"

    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    funded_fen: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    available_fen: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    reserved_fen: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    committed_fen: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    expired_fen: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    closed: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        CheckConstraint("available_fen >= 0 AND reserved_fen >= 0 AND committed_fen >= 0", name="nonnegative"),
    )


class LedgerTransaction(db.Model):
    """One balanced business event (funding, reservation, sent, claimed, refunded, failed, correction)."""

    __tablename__ = "ledger_transactions"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(24), nullable=False)
    payout_id: Mapped[int | None] = mapped_column(ForeignKey("payouts.id"))
    period: Mapped[str | None] = mapped_column(String(7))
    business_day: Mapped[date] = mapped_column(Date, nullable=False)    # Asia/Shanghai day of the event
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_transactions.id"))
    memo: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)

    __table_args__ = (
        Index("ix_ledger_transactions_payout", "payout_id", "kind"),
        Index("ix_ledger_transactions_day", "business_day", "kind"),
    )


class LedgerEntry(db.Model):
    """One line: signed integer fen, debit positive, credit negative; a transaction's lines sum to 0."""

    __tablename__ = "ledger_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transactions.id"), nullable=False, index=True)
    account: Mapped[str] = mapped_column(String(48), nullable=False)
    amount_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)
    payout_id: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        CheckConstraint("amount_fen <> 0", name="nonzero"),
        Index("ix_ledger_entries_account", "account"),
        Index("ix_ledger_entries_payout", "payout_id", "account"),
    )


class LedgerDayBalance(db.Model):
    """Per account and business day, the sum of that day's entries, kept by ledger.post in the same
    transaction: a balance "as at the end of day D" sums days, not every entry ever posted
    (O(days), not O(history): the finance summary's opening and closing in-flight balances).
    A derived total: `rewards check` holds it equal to the entries."""

    __tablename__ = "ledger_day_balances"

    account: Mapped[str] = mapped_column(String(48), primary_key=True)
    business_day: Mapped[date] = mapped_column(Date, primary_key=True)
    amount_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)


@event.listens_for(LedgerEntry, "before_update", propagate=True)
def _refuse_entry_update(_mapper, _conn, _target):
    raise RuntimeError("ledger entries are append-only: post a correcting transaction instead")


@event.listens_for(LedgerEntry, "before_delete", propagate=True)
def _refuse_entry_delete(_mapper, _conn, _target):
    raise RuntimeError("ledger entries are append-only: post a correcting transaction instead")


@event.listens_for(LedgerTransaction, "before_update", propagate=True)
def _refuse_tx_update(_mapper, _conn, _target):
    raise RuntimeError("ledger transactions are append-only")


@event.listens_for(LedgerTransaction, "before_delete", propagate=True)
def _refuse_tx_delete(_mapper, _conn, _target):
    raise RuntimeError("ledger transactions are append-only")


class ReconciliationRun(db.Model):
    __tablename__ = "reconciliation_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    bill_date: Mapped[date] = mapped_column(Date, nullable=False, index=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="running")  # running | done | failed
    error: Mapped[str | None] = mapped_column(String(64))
    bill_rows: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    bill_expense_fen: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    bill_income_fen: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    ledger_expense_fen: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    ledger_income_fen: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    matched: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    exception_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    requested_by: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ReconciliationException(db.Model):
    __tablename__ = "reconciliation_exceptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("reconciliation_runs.id"), nullable=False, index=True)
    kind: Mapped[str] = mapped_column(String(24), nullable=False)
    direction: Mapped[str | None] = mapped_column(String(8))     # expense | income
    mch_billno: Mapped[str | None] = mapped_column(String(40))
    payout_id: Mapped[int | None] = mapped_column(Integer)
    bill_fen: Mapped[int | None] = mapped_column(BigInteger)
    ledger_fen: Mapped[int | None] = mapped_column(BigInteger)
    detail: Mapped[str | None] = mapped_column(Text)
    adjustment_id: Mapped[int | None] = mapped_column(Integer)   # the suspense transaction, if one was posted
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="open")  # open | resolved
    note: Mapped[str | None] = mapped_column(Text)
    resolved_by: Mapped[int | None] = mapped_column(Integer)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ReconciliationLine(db.Model):
    """The statement's rows for a run (kept with the run): matched in the database, so a day of
    100,000 packets never sits in the process's memory."""

    __tablename__ = "reconciliation_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("reconciliation_runs.id"), nullable=False)
    direction: Mapped[str] = mapped_column(String(8), nullable=False)
    mch_billno: Mapped[str] = mapped_column(String(40), nullable=False)
    amount_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)

    __table_args__ = (Index("ix_reconciliation_lines_run", "run_id", "direction", "mch_billno"),)


class RewardPolicy(db.Model):
    """Policy versions; the newest approved row is in force (changes need a second finance user)."""

    __tablename__ = "reward_policies"

    id: Mapped[int] = mapped_column(primary_key=True)
    settings: Mapped[dict] = mapped_column(JSON, nullable=False)
    created_by: Mapped[int | None] = mapped_column(Integer)
    approved_by: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class FinanceRequest(TimestampMixin, db.Model):
    """A budget top-up or policy change waiting for a second finance user (dual control)."""

    __tablename__ = "finance_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)      # topup | policy
    payload: Mapped[dict] = mapped_column(JSON, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")  # pending | approved | rejected
    requested_by: Mapped[int] = mapped_column(Integer, nullable=False)
    decided_by: Mapped[int | None] = mapped_column(Integer)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    note: Mapped[str | None] = mapped_column(Text)
