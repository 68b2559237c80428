"""Every command is checked when it returns: one that leaves a database transaction open fails outside
production (a long-lived command waiting with one held SQLite's write lock and locked out the web:
issue 13), and ends it with an error logged in production."""
import logging

import click
from flask.cli import with_appcontext
from sqlalchemy import select, text

from app.commands import check_transactions_ended
from app.extensions import db as database
from app.models.staff import StaffUser


def _app_with(make_app, command):
    app = make_app()
    app.cli.add_command(command)
    check_transactions_ended(app)  # what create_app does after every area registered its commands
    return app


@click.command("leave-open")
@with_appcontext
def leave_open():
    database.session.scalar(select(StaffUser.id))  # a read: SQLite begins it IMMEDIATE (app/db.py)


@click.command("read-and-end")
@with_appcontext
def read_and_end():
    database.session.scalar(select(StaffUser.id))
    database.session.commit()


@click.command("hold-connection")
@with_appcontext
def hold_connection():
    hold_connection.conn = database.engine.connect()
    hold_connection.conn.execute(text("SELECT 1"))


def test_a_command_that_leaves_a_transaction_open_fails(make_app, app):
    cli_app = _app_with(make_app, leave_open)
    result = cli_app.test_cli_runner().invoke(args=["leave-open"])
    assert result.exit_code == 1
    assert "`leave-open` returned with a database transaction open" in result.output


def test_a_command_that_keeps_a_connection_fails(make_app, app):
    cli_app = _app_with(make_app, hold_connection)
    try:
        result = cli_app.test_cli_runner().invoke(args=["hold-connection"])
        assert result.exit_code == 1 and "connections checked out: 1" in result.output
    finally:
        hold_connection.conn.close()


def test_a_command_that_ends_its_transaction_passes(make_app, app):
    cli_app = _app_with(make_app, read_and_end)
    result = cli_app.test_cli_runner().invoke(args=["read-and-end"])
    assert result.exit_code == 0, result.output


def test_production_logs_it_and_ends_the_transaction(make_app, app, caplog):
    cli_app = _app_with(make_app, leave_open)
    cli_app.config["APP_ENV"] = "production"
    with caplog.at_level(logging.ERROR, logger="app.commands"):
        result = cli_app.test_cli_runner().invoke(args=["leave-open"])
    assert result.exit_code == 0
    assert any("`leave-open` returned with a database transaction open" in r.getMessage() for r in caplog.records)
    with cli_app.app_context():
        assert database.engine.pool.checkedout() == 0


def test_every_command_of_the_app_is_checked(app):
    leaves, todo = [], list(app.cli.commands.values())
    while todo:
        command = todo.pop()
        if isinstance(command, click.Group):
            todo += command.commands.values()
        else:
            leaves.append(command)
    names = {c.name for c in leaves}
    assert {"init", "demo", "worker", "create", "reconcile", "wechat-sandbox"} <= names
    assert [c.name for c in leaves if not getattr(c.callback, "_checks_transactions", False)] == []
