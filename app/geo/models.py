"""Towns (镇街) and grids (网格, each in a 社区/村 when the grid file says which). A grid's polygon is GeoJSON text in WGS-84, plus its bounding box."""
from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import TimestampMixin, UTCDateTime, utcnow


class Town(TimestampMixin, db.Model):
    __tablename__ = "towns"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), nullable=False, unique=True)
    name: Mapped[str] = mapped_column(String(64), nullable=False)


class Grid(TimestampMixin, db.Model):
    __tablename__ = "grids"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), nullable=False, unique=True)
    name: Mapped[str] = mapped_column(String(128), nullable=False)
    town_id: Mapped[int] = mapped_column(ForeignKey("towns.id"), nullable=False, index=True)
    community: Mapped[str | None] = mapped_column(String(64))  # 社区/村 below the 镇街, when the file has it
    geometry: Mapped[str] = mapped_column(Text, nullable=False)  # GeoJSON Polygon/MultiPolygon
    min_lat: Mapped[float] = mapped_column(Float, nullable=False)
    min_lng: Mapped[float] = mapped_column(Float, nullable=False)
    max_lat: Mapped[float] = mapped_column(Float, nullable=False)
    max_lng: Mapped[float] = mapped_column(Float, nullable=False)
    area_m2: Mapped[float] = mapped_column(Float, nullable=False)
    synthetic: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)

    town: Mapped[Town] = relationship(lazy="joined")
