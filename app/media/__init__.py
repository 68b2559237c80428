"""Photos: verify, EXIF, display copies and hashes (processing), storage, signed URLs (views)."""


def init_app(app):
    from app.media import models as _models  # noqa: F401  (media_pending_displays in the metadata)
    from app.media.views import bp
    from app.outbox import register_topic

    app.register_blueprint(bp)
    # The display copy of an accepted upload is made off the request (app.media.photos).
    register_topic("photo.display", "intake", "app.media.photos.make_display_copy")
