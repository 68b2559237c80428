"""Hazard reference data: departments (职能部门) and categories (隐患类别). Tickets are added beside them."""
from sqlalchemy import JSON, Boolean, Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import TimestampMixin

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
