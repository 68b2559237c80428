"""Media-check results: stored by trace_id, completed by the push."""
from __future__ import annotations

from app.wechat.common import _int_or_none
from app.wechat.results import CONTENT_LABELS, MediaCheckResult


def _record_media_check(trace_id: str, media_url: str | None = None, payload: dict | None = None) -> None:
    """Insert or complete the row for trace_id (savepoint: the push and the caller may race)."""
    from sqlalchemy.exc import IntegrityError

    from app.extensions import db
    from app.models.base import utcnow
    from app.models.wechat import WeChatMediaCheck

    def apply(row):
        if payload is not None and row.status == "pending":  # a repeated push changes nothing
            result = payload.get("result") or {}
            errcode = _int_or_none(payload.get("errcode")) or 0
            row.status = "done" if errcode == 0 and result.get("suggest") in ("pass", "review", "risky") else "error"
            row.suggest = result.get("suggest")
            row.label = _int_or_none(result.get("label"))
            row.errcode = errcode
            detail = payload.get("detail")
            row.detail = detail if isinstance(detail, list) else [detail] if detail else None
            row.completed_at = utcnow()
        if media_url and not row.media_url:
            row.media_url = media_url

    for _attempt in range(3):
        row = db.session.execute(db.select(WeChatMediaCheck).filter_by(trace_id=trace_id)).scalar_one_or_none()
        if row is not None:
            if payload is not None or media_url:
                apply(row)
            db.session.flush()
            return
        try:
            with db.session.begin_nested():
                row = WeChatMediaCheck(trace_id=trace_id, status="pending")
                apply(row)
                db.session.add(row)
            return
        except IntegrityError:
            continue  # the other side inserted it first: update instead


def get_media_check(trace_id: str) -> MediaCheckResult | None:
    from app.extensions import db
    from app.models.wechat import WeChatMediaCheck

    row = db.session.execute(db.select(WeChatMediaCheck).filter_by(trace_id=trace_id)).scalar_one_or_none()
    if row is None:
        return None
    return MediaCheckResult(row.trace_id, row.status, row.suggest, row.label, CONTENT_LABELS.get(row.label),
                            row.completed_at)
