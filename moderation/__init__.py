"""Moderation (审核): intake checks and deduplication, the review queue, decisions, staff API and console."""


def init_app(app):
    from app import console
    from app.extensions import api
    from app.queue import Periodic, register_periodic
    from moderation import models as _models  # noqa: F401  (tables in the metadata)
    from moderation.staff_api import bp as staff_bp

    app.config.setdefault("MODERATION_PHASH_DISTANCE", 8)
    app.config.setdefault("REVIEW_LEASE_SECONDS", 300)
    app.config.setdefault("INTAKE_STALE_SECONDS", 300)
    app.config.setdefault("MODERATION_MANY_TIPS_TODAY", 5)

    console.init_app(app)  # moderation owns the console shell; other areas add pages to it
    from moderation.console_views import bp as review_console_bp

    app.register_blueprint(review_console_bp)
    console.register_console_page("review_console.queue_page", "审核队列", ["moderator", "supervisor"], order=10)
    api.register_blueprint(staff_bp)
    register_periodic(Periodic(id="moderation.media_results", func="moderation.intake.sweep_media_results",
                               every=5.0, inline=True))
