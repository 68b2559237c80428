"""The residents' API (/api/mp/v1) behind the WeChat mini-program, and the API docs page."""


def init_app(app):
    from app.extensions import api
    from miniprogram_api import apidocs, limits, views

    limits.init_app(app)
    api.register_blueprint(views.bp)
    app.register_blueprint(apidocs.bp)
