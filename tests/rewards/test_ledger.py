"""The ledger: balanced transactions only, append-only in the ORM and in the database, invariants."""
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

from app.extensions import db
from rewards import ledger
from rewards.models import LedgerEntry, LedgerTransaction
from tests.rewards.helpers import approve, assert_books_hold, fund, make_resident, make_tip


def test_unbalanced_transaction_is_refused(rdb):
    with pytest.raises(ledger.UnbalancedTransaction):
        ledger.post("correction", [(ledger.MERCHANT, 100), (ledger.SUSPENSE, -99)])
    with pytest.raises(ledger.UnbalancedTransaction):
        ledger.post("correction", [])
    db.session.rollback()
    assert db.session.query(LedgerTransaction).count() == 0


def test_funding_is_two_balanced_halves(rdb):
    fund(500_000, "2026-11")
    raw = ledger.balances()
    assert raw[ledger.MERCHANT] == 500_000 and raw[ledger.FUNDING] == -500_000
    assert ledger.budget_by_period()["2026-11"] == {"available": 500_000, "reserved": 0, "committed": 0}
    assert sum(raw.values()) == 0
    assert_books_hold()


def test_entries_cannot_be_updated_or_deleted_through_the_orm(rdb):
    fund(1000, "2026-11")
    entry = db.session.query(LedgerEntry).first()
    entry.amount_fen = 5
    with pytest.raises(RuntimeError, match="append-only"):
        db.session.flush()
    db.session.rollback()
    entry = db.session.query(LedgerEntry).first()
    db.session.delete(entry)
    with pytest.raises(RuntimeError, match="append-only"):
        db.session.flush()
    db.session.rollback()


@pytest.mark.parametrize("statement", [
    "UPDATE ledger_entries SET amount_fen = amount_fen + 1",
    "DELETE FROM ledger_entries",
    "UPDATE ledger_transactions SET memo = 'edited'",
    "DELETE FROM ledger_transactions",
])
def test_the_database_itself_refuses_edits(rdb, statement):
    fund(1000, "2026-11")
    with pytest.raises((DBAPIError, IntegrityError)) as caught:
        db.session.execute(text(statement))
        db.session.flush()
    assert "append-only" in str(caught.value)
    db.session.rollback()
    assert db.session.query(LedgerEntry).count() == 4


def test_a_correction_reverses_without_editing(rdb):
    tx = ledger.post_funding("2026-11", 700)
    db.session.commit()
    ledger.post_reversal(tx.id, memo="wrong period")
    db.session.commit()
    assert all(v == 0 for v in ledger.balances().values())
    assert db.session.query(LedgerEntry).count() == 8


def test_check_command_passes_then_names_the_broken_invariant(rdb, flask_cli):
    resident = make_resident()
    fund(100_000)
    approve(make_tip(resident))
    ok = flask_cli("rewards", "check")
    assert "all invariants hold" in ok.stdout

    # an unbalanced transaction slipped in by raw SQL (inserts are allowed; the check must catch it)
    tx = LedgerTransaction(kind="correction", business_day=__import__("datetime").date(2026, 11, 1))
    db.session.add(tx)
    db.session.flush()
    db.session.execute(text("INSERT INTO ledger_entries (transaction_id, account, amount_fen) VALUES (:t, :a, 5)"),
                       {"t": tx.id, "a": ledger.MERCHANT})
    db.session.commit()
    bad = flask_cli("rewards", "check", check=False)
    assert bad.returncode == 1
    assert "FAIL transactions_balance" in bad.stdout and "does not balance" in bad.stdout
    assert "transactions_balance" in bad.stderr


def test_check_catches_reserved_without_an_open_payout(rdb, flask_cli):
    fund(100_000, "2026-11")
    ledger.post("reserve", [(ledger.available("2026-11"), 300), (ledger.reserved("2026-11"), -300)],
                period="2026-11")
    db.session.commit()
    bad = flask_cli("rewards", "check", check=False)
    assert bad.returncode == 1
    assert "FAIL reserved_equals_open_payouts" in bad.stdout
    assert "FAIL budget_table_matches_ledger" in bad.stdout
