"""`flask --app wsgi dept-key ...` (department API keys) and `flask --app wsgi hazards ...`."""
import json
import sys

import click
from flask.cli import with_appcontext

from app.errors import AppError

dept_key_group = click.Group("dept-key", help="Department API keys (stored hashed; shown once).")
hazards_group = click.Group("hazards", help="Hazard tickets: webhooks, SLA sweep, overdue list.")


@dept_key_group.command("create")
@click.option("--department", required=True, help="department code from the catalogue")
@click.option("--label", default=None, help="what the key is for, e.g. the system using it")
@with_appcontext
def dept_key_create(department, label):
    """Print a new API key for a department (only its SHA-256 is stored)."""
    from app.extensions import db
    from app.hazards.keys import create_department_key

    try:
        key, row = create_department_key(department, label)
        prefix = row.prefix
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(1)
    click.echo(key)
    click.echo(f"key {prefix}… for {department}: store it now, it cannot be shown again", err=True)


@dept_key_group.command("list")
@click.option("--department", default=None)
@with_appcontext
def dept_key_list(department):
    from app.extensions import db
    from app.hazards.keys import list_department_keys

    for row in list_department_keys(department):
        state = "revoked" if row.revoked_at else "active"
        click.echo(f"{row.prefix}…\t{row.department.code}\t{state}\t{row.label or ''}")
    db.session.close()  # every command ends its transaction (app/commands.py)


@dept_key_group.command("revoke")
@click.argument("prefix")
@with_appcontext
def dept_key_revoke(prefix):
    from app.extensions import db
    from app.hazards.keys import revoke_department_key

    count = revoke_department_key(prefix.rstrip("…"))
    db.session.commit()
    click.echo(f"{count} key(s) revoked")
    if not count:
        sys.exit(1)


@hazards_group.command("webhook-add")
@click.option("--url", required=True)
@click.option("--secret", default=None, help="shared HMAC secret (generated when omitted; printed once)")
@click.option("--description", default=None)
@with_appcontext
def webhook_add(url, secret, description):
    """Deliver every ticket event to URL, signed with the secret."""
    from app.extensions import db
    from app.hazards.webhooks import add_endpoint

    try:
        endpoint = add_endpoint(url, secret, description)
    except ValueError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    added = {"id": endpoint.id, "url": endpoint.url, "secret": endpoint.secret}
    db.session.commit()
    click.echo(json.dumps(added))


@hazards_group.command("webhooks")
@click.option("--status", default=None, help="pending | delivered | failing")
@with_appcontext
def webhook_log(status):
    """The latest deliveries (the delivery log)."""
    from app.extensions import db
    from app.hazards.webhooks import delivery_log

    for row in delivery_log(status=status):
        click.echo(json.dumps(row, ensure_ascii=False))
    db.session.close()


@hazards_group.command("sweep-sla")
@with_appcontext
def sweep_sla():
    """Flag overdue tickets now (the worker does this every minute)."""
    from app.hazards.sla import flag_overdue

    click.echo(f"{flag_overdue()} ticket(s) newly overdue")


@hazards_group.command("overdue")
@with_appcontext
def overdue():
    """List overdue tickets, longest overdue first."""
    from app.hazards.lifecycle import status_label
    from app.hazards.queries import list_overdue

    from app.extensions import db

    for hazard in list_overdue():
        click.echo(f"#{hazard.id}\t{hazard.department.code}\t{status_label(hazard.status)}\t"
                   f"due {hazard.due_at.isoformat() if hazard.due_at else '-'}\t{hazard.grid_code or '-'}")
    db.session.close()
