"""The residents' API (/api/mp/v1) behind the WeChat mini-program, and the API docs page."""


def init_app(app):
    from app.extensions import api
    from app.queue import Periodic, register_periodic
    from miniprogram_api import apidocs, limits, views

    limits.init_app(app)
    register_periodic(Periodic(id="mp.purge_orphan_photos", func="miniprogram_api.intake.purge_orphan_photos",
                               every=3600.0))
    api.register_blueprint(views.bp)
    app.register_blueprint(apidocs.bp)
