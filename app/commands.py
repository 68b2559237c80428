"""Operator commands (flask --app wsgi ...). Areas register their own groups through init hooks.

Every command of app.cli is checked when it returns: a database transaction it left open fails it
outside production (a long-lived command that waits with one holds SQLite's write lock: issue 13).
"""
import functools
import logging
import sys

import click
from flask import current_app
from flask.cli import with_appcontext

from app.errors import AppError

log = logging.getLogger(__name__)

# Steps that `init` runs after the migrations, in order; areas append (name, dotted path).
INIT_STEPS: list[tuple[str, str]] = []


def register_init_step(name: str, path: str) -> None:
    if (name, path) not in INIT_STEPS:
        INIT_STEPS.append((name, path))


def run_init(echo=click.echo):
    """Migrations, then every registered default-data step, in order, each in its own session."""
    from flask_migrate import upgrade

    from app.db import run_in_own_session

    upgrade()
    for name, path in INIT_STEPS:
        result = run_in_own_session(current_app._get_current_object(), _resolve(path))
        echo(f"{name}: {result if result is not None else 'ok'}")


@click.command("init")
@with_appcontext
def init_command():
    """Migrations, then the default data (idempotent: running it twice changes nothing)."""
    run_init()
    click.echo("init: done")


@click.group("staff")
def staff_group():
    """Staff accounts."""


@staff_group.command("create")
@click.option("--username", required=True)
@click.option("--password", required=True, help="at least 8 characters")
@click.option("--role", "roles", required=True, multiple=True, help="moderator, supervisor, department, finance, admin")
@click.option("--department", default=None, help="department code, for the department role")
@click.option("--name", "display_name", default=None, help="display name shown in the console (default: username)")
@with_appcontext
def staff_create(username, password, roles, department, display_name):
    from app.accounts import create_staff
    from app.extensions import db

    try:
        user = create_staff(username, password, list(roles), department, display_name=(display_name or "").strip() or None)
        done = f"staff {user.username} created with roles {', '.join(user.role_names)}"
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(1)
    click.echo(done)


def _staff_or_exit(username):
    from sqlalchemy import select

    from app.extensions import db
    from app.models.staff import StaffUser

    user = db.session.scalar(select(StaffUser).where(StaffUser.username == username))
    if user is None:
        click.echo(f"error: no staff account {username}", err=True)
        sys.exit(1)
    return user


@staff_group.command("password")
@click.option("--username", required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True, help="at least 8 characters")
@with_appcontext
def staff_password(username, password):
    """Set a new password; every console session and API token of the account ends."""
    from app.accounts import change_staff_password
    from app.audit import record_audit
    from app.extensions import db

    user = _staff_or_exit(username)
    try:
        change_staff_password(user, password)
    except AppError as exc:
        db.session.rollback()
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(1)
    record_audit("staff.password", "staff", user.id, actor_type="system")
    db.session.commit()
    click.echo(f"staff {username}: password changed, sessions ended")


@staff_group.command("disable")
@click.option("--username", required=True)
@with_appcontext
def staff_disable(username):
    """Disable an account: it cannot sign in, and its console sessions and API tokens end now."""
    _set_active(username, False)


@staff_group.command("enable")
@click.option("--username", required=True)
@with_appcontext
def staff_enable(username):
    """Enable a disabled account again (it signs in anew)."""
    _set_active(username, True)


def _set_active(username, active):
    from app.accounts import set_staff_active
    from app.audit import record_audit
    from app.extensions import db

    user = _staff_or_exit(username)
    set_staff_active(user, active)
    record_audit("staff.enable" if active else "staff.disable", "staff", user.id, actor_type="system")
    db.session.commit()
    click.echo(f"staff {username}: {'enabled' if active else 'disabled, sessions ended'}")


@click.command("worker")
@click.option("--rq-workers", default=2, show_default=True, help="forking RQ worker processes")
@click.option("--payout-workers", default=2, show_default=True,
              help="in-process RQ workers for the payouts queue (0: the forking workers take it)")
@click.option("--queues", default=None, help="comma-separated queue names (default: all)")
@click.option("--role", type=click.Choice(["all", "rq", "clock"]), default="all", hidden=True)
@click.option("--in-process", is_flag=True, hidden=True, help="rq role: run jobs in this process (no fork)")
@click.option("--burst", is_flag=True, help="rq role: exit when the queues are empty")
def worker_command(rq_workers, payout_workers, queues, role, in_process, burst):
    """All background work: RQ workers for every queue (payouts in-process), the clock (outbox relay, sweeps)."""
    import threading

    from app import worker
    from app.queue import QUEUES

    names = tuple(q for q in (queues.split(",") if queues else QUEUES) if q)
    app = current_app._get_current_object()
    if role == "all":
        sys.exit(worker.supervise(rq_workers, names, payout_workers))
    if role == "rq":
        worker.run_rq_worker(app, names, burst=burst, in_process=in_process)
        return
    stop = threading.Event()
    import signal

    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        worker.run_clock(app, stop)
    except KeyboardInterrupt:
        pass


def _resolve(path):
    import importlib

    module_name, _, attr = path.rpartition(".")
    return getattr(importlib.import_module(module_name), attr)


def check_transactions_ended(app) -> None:
    """Wrap every command of app.cli (areas' groups included) in the open-transaction check."""
    todo = list(app.cli.commands.values())
    while todo:
        command = todo.pop()
        if isinstance(command, click.Group):
            todo += command.commands.values()
        elif command.callback is not None and not getattr(command.callback, "_checks_transactions", False):
            command.callback = _ending_transactions(command.name, command.callback)


def _ending_transactions(name, callback):
    @functools.wraps(callback)
    def run(*args, **kwargs):
        before = _open_state()
        succeeded = False
        try:
            result = callback(*args, **kwargs)
            succeeded = True
            return result
        except SystemExit as exit_:
            succeeded = exit_.code in (None, 0)
            raise
        finally:
            if succeeded:
                _check_left_open(name, before)

    run._checks_transactions = True
    return run


def _open_state() -> tuple[bool, int]:
    from flask import has_app_context

    from app.db import open_transactions
    from app.extensions import db

    return open_transactions(db) if has_app_context() else (False, 0)


def _check_left_open(name: str, before: tuple[bool, int]) -> None:
    """A transaction (or pooled connection) the command opened and never ended: an error outside
    production; in production the work is done, so log it and end the transaction."""
    from app.extensions import db

    session_open, checkedout = _open_state()
    if not (session_open and not before[0]) and checkedout <= before[1]:
        return
    message = (f"command `{name}` returned with a database transaction open (session open: {session_open}, "
               f"connections checked out: {checkedout}); end every session before returning or waiting")
    if current_app.config["APP_ENV"] == "production":
        log.error(message)
        db.session.remove()
        return
    raise click.ClickException(message)


def init_app(app):
    from app.demo import demo_command

    app.cli.add_command(init_command)
    app.cli.add_command(demo_command)
    app.cli.add_command(staff_group)
    app.cli.add_command(worker_command)
    from app.wechat_sandbox.cli import sandbox_command

    app.cli.add_command(sandbox_command)
