"""Serve locally stored photos through signed, expiring URLs: GET /media/<key>?exp=&sig=.

Blueprint name `media` (endpoint `media.serve`). With S3 storage the bucket serves presigned URLs
and this route answers 404.
"""
import time

from flask import Blueprint, current_app, request, send_file

from app.errors import Forbidden, NotFound
from app.media import signing
from app.media.storage import LocalStorage, content_type_for, get_storage

bp = Blueprint("media", __name__)

_REFUSALS = {
    "media_url_invalid": "图片链接无效",
    "media_url_expired": "图片链接已过期，请刷新页面",
}


def _signing_keys() -> list[str]:
    """The key URLs are signed with now, then keys retired by a rotation (URLs already handed out)."""
    return [current_app.config["SECRET_KEY"], *current_app.config.get("SECRET_KEY_FALLBACKS", ())]


@bp.get("/media/<path:key>")
def serve(key):
    refusal = signing.check_any(_signing_keys(), key, request.args.get("exp"), request.args.get("sig"))
    if refusal:
        raise Forbidden(_REFUSALS[refusal], code=refusal)
    storage = get_storage()
    try:
        path = storage.path_for(key) if isinstance(storage, LocalStorage) else None
    except ValueError:
        path = None
    if path is None or not path.is_file():
        raise NotFound("图片不存在", code="media_not_found")
    remaining = max(0, int(request.args["exp"]) - int(time.time()))
    response = send_file(path, mimetype=content_type_for(key), conditional=True, max_age=remaining)
    response.headers["Cache-Control"] = f"private, max-age={remaining}"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response

