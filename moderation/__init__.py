"""Moderation (审核): intake checks and deduplication, the review queue, decisions, staff API and console."""


def init_app(app):
    from app import console
    from moderation import models as _models  # noqa: F401  (tables in the metadata)

    console.init_app(app)  # moderation owns the console shell; other areas add pages to it
