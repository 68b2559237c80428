"""Photos: verify, EXIF, display copies and hashes (processing), storage, signed URLs (views)."""


def init_app(app):
    from app.media.views import bp

    app.register_blueprint(bp)
