"""Helpers for the ticket tests: residents and tips written directly (the residents' API is another
area's), approved through the real acceptance steps, staff and department keys."""
from __future__ import annotations

import itertools
import json

import pytest
import shapely
from sqlalchemy import select

_serial = itertools.count(1)


@pytest.fixture
def hz(db, reference_data):
    """The database with the catalogue and demo grids, and the helpers below."""
    return Helpers(db)


class Helpers:
    def __init__(self, db):
        self.db = db

    # places ------------------------------------------------------------------------------------
    def grid_point(self, index: int = 0):
        """(lat, lng, grid) inside a demo grid: the representative point of the index-th grid."""
        from app.geo.models import Grid

        grid = self.db.session.scalars(select(Grid).where(Grid.synthetic.is_(True)).order_by(Grid.id)
                                       .offset(index).limit(1)).one()
        point = shapely.from_geojson(grid.geometry).representative_point()
        return point.y, point.x, grid

    # people --------------------------------------------------------------------------------------
    def resident(self, openid: str | None = None):
        from app.models.resident import Resident

        resident = Resident(openid=openid or f"o-hz-{next(_serial):06d}-secretopenid")
        self.db.session.add(resident)
        self.db.session.flush()
        return resident

    def tip(self, lat, lng, category="fire_exit_blocked", resident=None, status="pending_review", **values):
        from app.models.tip import Tip

        resident = resident or self.resident()
        n = next(_serial)
        tip = Tip(resident_id=resident.id, idempotency_key=f"k{n}", request_hash="0" * 64, category=category,
                  description=values.pop("description", "楼道安全出口被杂物堵住"), lat=lat, lng=lng, coord_in="wgs84",
                  address=values.pop("address", "东莞市某路 1 号"), status=status, **values)
        self.db.session.add(tip)
        self.db.session.flush()
        return tip

    def approve(self, tip, *, category=None, severity=2, department=None, duplicate_of=None, actor=None, commit=True):
        """What moderation's approve does: CAS the tip to accepted, run every acceptance step."""
        from app.tips import change_tip_status, run_acceptance_steps

        assert change_tip_status(tip.id, ("pending_review",), "accepted", "审核通过")
        decision = {"action": "approve", "category": category or tip.category, "severity": severity,
                    "reason": None, "message": None, "department": department, "duplicate_of": duplicate_of}
        answer = run_acceptance_steps(tip, decision, actor)
        if commit:
            self.db.session.commit()
        return answer

    def new_hazard(self, index=0, category="fire_exit_blocked", **kwargs):
        from app.hazards.models import Hazard

        lat, lng, _ = self.grid_point(index)
        tip = self.tip(lat, lng, category)
        answer = self.approve(tip, **kwargs)
        return self.db.session.get(Hazard, answer["hazard"]["id"]), tip

    def staff(self, username, roles, department=None):
        from app.accounts import create_staff, issue_staff_token

        user = create_staff(username, "password-123", list(roles), department)
        token, _ = issue_staff_token(user)
        self.db.session.commit()
        return user, {"Authorization": f"Bearer {token}"}

    def dept_key(self, department):
        from app.hazards.keys import create_department_key

        key, _ = create_department_key(department)
        self.db.session.commit()
        return {"X-Api-Key": key}

    def set_status(self, hazard_id, status):
        from sqlalchemy import update

        from app.hazards.models import Hazard

        self.db.session.execute(update(Hazard).where(Hazard.id == hazard_id).values(status=status))
        self.db.session.commit()

    def timeline(self, tip_id, internal=False):
        from app.models.tip import TipEvent

        query = select(TipEvent).where(TipEvent.tip_id == tip_id).order_by(TipEvent.id)
        if not internal:
            query = query.where(TipEvent.internal.is_(False))
        return [(e.status, e.note) for e in self.db.session.scalars(query)]


def dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)
