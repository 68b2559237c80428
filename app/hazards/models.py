"""Hazard reference data: departments (职能部门) and categories (隐患类别). Tickets are added beside them."""
from datetime import datetime

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, SmallInteger, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import TimestampMixin, UTCDateTime, utcnow

CATEGORY_KINDS = ("venue", "street")
SEVERITIES = (1, 2, 3)
# The ticket lifecycle steps an SLA is set for (上报→分拨→处置→核查→结案).
SLA_STEPS = ("dispatch", "accept", "resolve", "verify", "close")


class Department(TimestampMixin, db.Model):
    __tablename__ = "departments"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), nullable=False, unique=True)
    name: Mapped[str] = mapped_column(String(64), nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)

    def to_brief(self) -> dict:
        return {"code": self.code, "name": self.name}


class Category(TimestampMixin, db.Model):
    """One matter type. `reward_fen` and `sla_hours` are JSON objects keyed by severity / step."""

    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(48), nullable=False, unique=True)
    name: Mapped[str] = mapped_column(String(64), nullable=False)
    group: Mapped[str] = mapped_column(String(16), nullable=False)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), nullable=False, index=True)
    kind: Mapped[str] = mapped_column(String(8), nullable=False)
    dedup_radius_m: Mapped[float] = mapped_column(Float, nullable=False)
    severity_weight: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    sla_hours: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)
    reward_fen: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)
    position: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)

    department: Mapped[Department] = relationship(lazy="joined")

    def reward_for(self, severity: int) -> int:
        """Reward in fen for a severity 1–3."""
        return int(self.reward_fen[str(int(severity))])

    def sla_for(self, step: str) -> float:
        """Hours allowed for a lifecycle step (see SLA_STEPS)."""
        return float(self.sla_hours[step])

    def to_brief(self) -> dict:
        return {"code": self.code, "name": self.name, "group": self.group, "kind": self.kind,
                "department": self.department.to_brief()}


# --- tickets (隐患工单) -------------------------------------------------------------------------

HAZARD_STATUSES = ("reported", "dispatched", "accepted", "handling", "resolved", "verified", "closed",
                   "returned", "reopened")
OPEN_HAZARD_STATUSES = tuple(s for s in HAZARD_STATUSES if s != "closed")


class Hazard(TimestampMixin, db.Model):
    """One real-world hazard (隐患工单): one department, one grid; many tips may point at it.

    `status` only changes through app.hazards.lifecycle (compare-and-set on the column). `due_at` is
    the SLA deadline of the current step; `overdue` is set by the periodic sweep, cleared by a move.
    Location is WGS-84. Nothing here names a reporter: tips are linked through HazardTip.
    """

    __tablename__ = "hazards"

    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="reported")
    category_code: Mapped[str] = mapped_column(String(48), nullable=False)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), nullable=False)
    severity: Mapped[int] = mapped_column(SmallInteger, nullable=False, default=1)
    grid_id: Mapped[int | None] = mapped_column(Integer)
    grid_code: Mapped[str | None] = mapped_column(String(32))
    town_code: Mapped[str | None] = mapped_column(String(32))
    lat: Mapped[float] = mapped_column(Float, nullable=False)
    lng: Mapped[float] = mapped_column(Float, nullable=False)
    address: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    first_tip_id: Mapped[int | None] = mapped_column(Integer)
    tip_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    status_changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    overdue: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    overdue_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolution_note: Mapped[str | None] = mapped_column(Text)
    resolution_photo_ids: Mapped[list] = mapped_column(JSON, nullable=False, default=list)
    return_reason: Mapped[str | None] = mapped_column(Text)
    reopen_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)

    department: Mapped[Department] = relationship(lazy="joined")

    __table_args__ = (
        Index("ix_hazards_department_status", "department_id", "status"),
        # a department's list, newest first: walk its own tickets backwards (bench/province.py)
        Index("ix_hazards_department_id", "department_id", "id"),
        Index("ix_hazards_category_status", "category_code", "status"),
        Index("ix_hazards_lat_lng", "lat", "lng"),
        Index("ix_hazards_due", "overdue", "due_at"),
        Index("ix_hazards_grid_code", "grid_code"),
    )


class HazardTip(TimestampMixin, db.Model):
    """A tip recorded on a ticket. relation: origin (created it) | joined (approved, same hazard) |
    duplicate (judged a duplicate: no reward). `first_valid` marks the first valid reporter's tip."""

    __tablename__ = "hazard_tips"

    id: Mapped[int] = mapped_column(primary_key=True)
    hazard_id: Mapped[int] = mapped_column(ForeignKey("hazards.id", ondelete="CASCADE"), nullable=False, index=True)
    tip_id: Mapped[int] = mapped_column(ForeignKey("tips.id", ondelete="CASCADE"), nullable=False, unique=True)
    relation: Mapped[str] = mapped_column(String(16), nullable=False)
    first_valid: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)


class HazardEvent(db.Model):
    """The ticket's history; each row is one webhook event (`uid` is the event id receivers dedup on).

    kind: created | status | tip_added | tip_removed | rerouted | overdue. actor_type: staff | department | system.
    """

    __tablename__ = "hazard_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(36), nullable=False, unique=True)
    hazard_id: Mapped[int] = mapped_column(ForeignKey("hazards.id", ondelete="CASCADE"), nullable=False, index=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    actor_type: Mapped[str] = mapped_column(String(16), nullable=False, default="system")
    actor_id: Mapped[int | None] = mapped_column(Integer)
    department_code: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    photo_ids: Mapped[list] = mapped_column(JSON, nullable=False, default=list)
    # The ticket as receivers see it at this moment (no reporter identity): every retry sends the same body.
    payload: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class DepartmentApiKey(TimestampMixin, db.Model):
    """An API key for a department system. Only the SHA-256 of the key is stored; `prefix` names it."""

    __tablename__ = "department_api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), nullable=False, index=True)
    prefix: Mapped[str] = mapped_column(String(16), nullable=False)
    key_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    label: Mapped[str | None] = mapped_column(String(64))
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    department: Mapped[Department] = relationship(lazy="joined")


class WebhookEndpoint(TimestampMixin, db.Model):
    """A receiver of ticket events (the city's grid system). The secret signs every delivery."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(512), nullable=False)
    secret: Mapped[str] = mapped_column(String(128), nullable=False)
    description: Mapped[str | None] = mapped_column(String(128))
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)


WEBHOOK_DELIVERY_STATUSES = ("pending", "delivered", "failing")


class WebhookDelivery(TimestampMixin, db.Model):
    """One event for one endpoint: delivered at least once; receivers dedup on the event id."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False)
    event_id: Mapped[int] = mapped_column(ForeignKey("hazard_events.id", ondelete="CASCADE"), nullable=False, index=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("endpoint_id", "event_id"),
                      Index("ix_webhook_deliveries_status", "status", "id"))


class WebhookAttempt(db.Model):
    """The delivery log: every POST we made, its answer or error, how long it took."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("webhook_deliveries.id", ondelete="CASCADE"),
                                             nullable=False, index=True)
    number: Mapped[int] = mapped_column(Integer, nullable=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class HazardNotice(TimestampMixin, db.Model):
    """A subscribe message owed to a reporter (tip accepted / hazard resolved / closed), sent once."""

    __tablename__ = "hazard_notices"

    id: Mapped[int] = mapped_column(primary_key=True)
    tip_id: Mapped[int] = mapped_column(ForeignKey("tips.id", ondelete="CASCADE"), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)  # accepted | resolved | closed
    round: Mapped[int] = mapped_column(Integer, nullable=False, default=0)  # a reopened ticket resolves again
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")  # pending | sent | refused
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("tip_id", "kind", "round"),)
