"""Operator commands (flask --app wsgi ...). Areas register their own groups through init hooks."""
import sys

import click
from flask import current_app
from flask.cli import with_appcontext

from app.errors import AppError

# Steps that `init` runs after the migrations, in order; areas append (name, dotted path).
INIT_STEPS: list[tuple[str, str]] = []


def register_init_step(name: str, path: str) -> None:
    if (name, path) not in INIT_STEPS:
        INIT_STEPS.append((name, path))


def run_init(echo=click.echo):
    """Migrations, then every registered default-data step, in order."""
    from flask_migrate import upgrade

    upgrade()
    for name, path in INIT_STEPS:
        result = _resolve(path)()
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
@with_appcontext
def staff_create(username, password, roles, department):
    from app.accounts import create_staff
    from app.extensions import db

    try:
        user = create_staff(username, password, list(roles), department)
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(1)
    click.echo(f"staff {user.username} created with roles {', '.join(user.role_names)}")


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


def init_app(app):
    from app.demo import demo_command

    app.cli.add_command(init_command)
    app.cli.add_command(demo_command)
    app.cli.add_command(staff_group)
    app.cli.add_command(worker_command)
    from app.wechat_sandbox.cli import sandbox_command

    app.cli.add_command(sandbox_command)
