"""Rewards: policy, budget caps, the double-entry ledger, red-packet payouts, the sweeper,
reconciliation and the finance API/console. Wired into the app by init_app(app)."""


def init_app(app):
    from app.outbox import register_topic
    from app.queue import Periodic, register_periodic
    from app.tips import register_acceptance_step
    from rewards import models as _models  # noqa: F401  (tables in the metadata)
    from rewards.grants import PAYOUT_TOPIC, reward_step

    # Warm-up: import the job modules now, so a forking RQ worker's job process inherits them instead
    # of importing them again for every payout.
    from rewards import jobs as _jobs, reconciliation as _reconciliation, sweeper as _sweeper  # noqa: F401

    register_acceptance_step(20, "reward", reward_step)
    from app.commands import register_init_step

    # last word of `init`: a fresh install has no budget, and approvals pay nothing until it is funded
    register_init_step("reward budget", "rewards.budget.describe_budget_for_init")
    register_topic(PAYOUT_TOPIC, "payouts", "rewards.jobs.send_payout")
    register_periodic(Periodic(id="rewards_sweep", func="rewards.sweeper.sweep_payouts",
                               every=float(app.config["REWARDS_SWEEP_INTERVAL"])))
    _register_hazard_hook()
    from rewards.indicators import register_indicators

    register_indicators()

    from rewards.cli import rewards_group

    app.cli.add_command(rewards_group)
    _register_web(app)


def _register_hazard_hook():
    """Policy 'verification' grants rewards when the department verifies the hazard."""
    import importlib.util

    if importlib.util.find_spec("app.hazards.lifecycle") is None:
        return
    from app.hazards import lifecycle

    hook = getattr(lifecycle, "register_transition_hook", None)
    if hook is not None:
        from rewards.grants import on_hazard_transition

        if on_hazard_transition not in getattr(lifecycle, "TRANSITION_HOOKS", []):
            hook(on_hazard_transition)


def _register_web(app):
    import importlib.util

    from rewards.transfer_notify import bp as transfer_notify_bp

    app.register_blueprint(transfer_notify_bp)

    if importlib.util.find_spec("rewards.finance_api") is not None:
        from app.extensions import api
        from rewards.finance_api import bp as finance_bp

        api.register_blueprint(finance_bp)
    if importlib.util.find_spec("rewards.console") is not None and importlib.util.find_spec("app.console"):
        from rewards.console import init_console

        init_console(app)
