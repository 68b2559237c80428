"""Hazards (隐患): the catalogue of categories and departments, and the tickets built on it.

Public API for other areas:
    tickets.find_open_hazards_near, tickets.attach_duplicate_tip
    queries.hazard_brief
    lifecycle.register_transition_hook, lifecycle.transition_hazard
The approve decision reaches routing through the "hazard" acceptance step registered here.
"""


def init_app(app):
    from app.hazards import models as _models  # noqa: F401  (tables in the metadata)

    app.config.setdefault("HAZARD_AUTO_DISPATCH", True)
    app.config.setdefault("HAZARD_WEBHOOK_TIMEOUT", 10.0)
    _wire_steps()
    _register_blueprints(app)
    from app.hazards.cli import dept_key_group, hazards_group

    app.cli.add_command(dept_key_group)
    app.cli.add_command(hazards_group)


def _wire_steps():
    from app.hazards import notify as _notify  # noqa: F401  (outbox topic)
    from app.hazards import webhooks as _webhooks  # noqa: F401  (outbox topic)
    from app.hazards.routing import route_tip
    from app.queue import Periodic, register_periodic
    from app.tips import register_acceptance_step

    register_acceptance_step(10, "hazard", route_tip)
    register_periodic(Periodic(id="hazards.sla_sweep", func="app.hazards.sla.sweep_overdue", every=60.0))
    from app.hazards.indicators import register_indicators

    register_indicators()


def _register_blueprints(app):
    from app.extensions import api
    from app.hazards.dept_api import bp as dept_bp
    from app.hazards.open311 import bp as open311_bp
    from app.hazards.staff_api import bp as staff_bp

    api.register_blueprint(staff_bp)
    api.register_blueprint(dept_bp)
    app.register_blueprint(open311_bp)
    from app.hazards.console import init_console

    init_console(app)
