"""The residents' API (/api/mp/v1) behind the WeChat mini-program, and the API docs page."""


def init_app(app):
    from app.extensions import api
    from app.queue import Periodic, register_periodic
    from miniprogram_api import apidocs, limits, privacy, views

    limits.init_app(app)
    privacy.check_privacy_notice(app.config)
    register_periodic(Periodic(id="mp.purge_orphan_photos", func="miniprogram_api.intake.purge_orphan_photos",
                               every=3600.0))
    register_periodic(Periodic(id="mp.apply_retention", func="miniprogram_api.retention.apply_retention",
                               every=float(app.config["RETENTION_PURGE_INTERVAL"])))
    register_periodic(Periodic(id="mp.finish_closures", func="miniprogram_api.rights.finish_closures",
                               every=float(app.config["ACCOUNT_CLOSURE_INTERVAL"])))
    api.register_blueprint(views.bp)
    app.register_blueprint(apidocs.bp)
