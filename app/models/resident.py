from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import TimestampMixin, UTCDateTime


class Resident(TimestampMixin, db.Model):
    """A mini-program user. The openid is needed to pay and notify; it never leaves the server
    (departments, webhooks and exports see only the resident id). session_key is not stored.

    Closing an account (miniprogram_api.rights) replaces the openid with a random pseudonym at once,
    so a later login starts a new account; while a reward is still in flight the real openid waits
    in `held_openid` (payouts need it) until the closure finishes and erases it.
    """

    __tablename__ = "residents"

    id: Mapped[int] = mapped_column(primary_key=True)
    openid: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    unionid: Mapped[str | None] = mapped_column(String(64))
    # Staff, grid workers and others who may report but are never rewarded.
    no_reward: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    no_reward_reason: Mapped[str | None] = mapped_column(String(64))
    blocked: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closing_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # the resident asked to close
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())   # identity erased for good
    held_openid: Mapped[str | None] = mapped_column(String(64))

    @property
    def wechat_openid(self) -> str | None:
        """The openid to use with WeChat: the held one while a closing account settles; None once closed."""
        if self.closing_at is not None:
            return self.held_openid
        return self.openid


class ResidentToken(TimestampMixin, db.Model):
    """Bearer tokens for the residents' API; only the SHA-256 of the token is stored."""

    __tablename__ = "resident_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id", ondelete="CASCADE"), nullable=False, index=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
