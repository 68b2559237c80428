"""`flask --app wsgi rewards ...`: check the ledger, reconcile a day, fund or close a budget period, sweep."""
from __future__ import annotations

import sys
from datetime import date

import click
from flask.cli import with_appcontext

from app.errors import AppError
from app.extensions import db


@click.group("rewards")
def rewards_group():
    """Rewards: ledger invariants, reconciliation, budget periods."""


@rewards_group.command("check")
@with_appcontext
def check_command():
    """Check the ledger invariants; exit 1 naming each one that fails."""
    from rewards.invariants import CHECKS, check_all

    failures = check_all()
    db.session.close()  # every command ends its transaction (app/commands.py)
    for name in CHECKS:
        if name in failures:
            click.echo(f"FAIL {name}")
            for message in failures[name]:
                click.echo(f"  - {message}")
        else:
            click.echo(f"ok   {name}")
    if failures:
        click.echo(f"{len(failures)} invariant(s) failed: {', '.join(failures)}", err=True)
        sys.exit(1)
    click.echo("all invariants hold")


@rewards_group.command("reconcile")
@click.option("--date", "day", default=None, help="the business day (Asia/Shanghai), YYYY-MM-DD; default yesterday")
@with_appcontext
def reconcile_command(day):
    """Download the day's fund-flow bill and match it against the ledger."""
    from rewards.reconciliation import default_bill_date, error_label, reconcile_day

    try:
        bill_date = date.fromisoformat(day) if day else default_bill_date()
    except ValueError:
        click.echo("error: --date must be YYYY-MM-DD", err=True)
        sys.exit(2)
    try:
        run = reconcile_day(bill_date)
    except AppError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(2)
    click.echo(f"reconciliation {run.id} of {run.bill_date}: {run.status}"
               + (f" ({run.error}: {error_label(run.error)})" if run.error else "")
               + f"; rows {run.bill_rows}, matched {run.matched}, exceptions {run.exception_count}")
    db.session.close()
    sys.exit(0 if run.status == "done" else 1)


def _echo_error(exc: AppError) -> None:
    """The message and what each field got wrong (a bare "提交的内容未通过校验" says nothing)."""
    details = "; ".join(f"{name}: {'，'.join(map(str, notes))}" for name, notes in exc.fields.items())
    click.echo(f"error: {exc.message}" + (f" ({details})" if details else ""), err=True)


@rewards_group.command("fund")
@click.option("--period", required=True, help="budget month YYYY-MM")
@click.option("--amount-fen", type=int, required=True)
@click.option("--memo", default="operator top-up")
@with_appcontext
def fund_command(period, amount_fen, memo):
    """Top up a month's budget (operator; the console's top-ups need a second finance user)."""
    from app.audit import record_audit
    from rewards.budget import check_period, fund_period

    try:
        check_period(period, window=True)
        tx = fund_period(period, amount_fen, memo=memo)
        record_audit("budget.fund", "budget_period", None, actor_type="system",
                     after={"period": period, "amount_fen": amount_fen}, note=memo)
        done = f"funded {period} with {amount_fen} fen (ledger transaction {tx.id})"
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        _echo_error(exc)
        sys.exit(1)
    click.echo(done)


@rewards_group.command("close-period")
@click.option("--period", required=True, help="budget month YYYY-MM")
@with_appcontext
def close_period_command(period):
    """Close a month: its remaining budget expires; later refunds of its packets go to expired."""
    from rewards.budget import close_period

    try:
        expired = close_period(period)
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        _echo_error(exc)
        sys.exit(1)
    click.echo(f"closed {period}; {expired} fen expired")


@rewards_group.command("sweep")
@with_appcontext
def sweep_command():
    """Run the payout sweeper once now."""
    from rewards.sweeper import sweep_payouts

    click.echo(sweep_payouts())
    db.session.close()
