"""Asynchronous image checks (media_check_async v2): one row per trace_id, completed by WeChat's push."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import UTCDateTime, utcnow

MEDIA_CHECK_STATUSES = ("pending", "done", "error")


class WeChatMediaCheck(db.Model):
    __tablename__ = "wechat_media_checks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trace_id: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    media_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    suggest: Mapped[str | None] = mapped_column(String(16), nullable=True)  # pass | review | risky
    label: Mapped[int | None] = mapped_column(Integer, nullable=True)
    errcode: Mapped[int | None] = mapped_column(Integer, nullable=True)
    detail: Mapped[list | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
