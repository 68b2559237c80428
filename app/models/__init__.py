"""Core tables shared by every area. Area packages keep their own models next to their code."""
from app.models.audit import AuditEntry  # noqa: F401
from app.models.base import TimestampMixin, UTCDateTime, utcnow  # noqa: F401
from app.models.outbox import OutboxMessage  # noqa: F401
from app.models.photo import Photo  # noqa: F401
from app.models.resident import Resident, ResidentToken  # noqa: F401
from app.models.staff import ROLES, StaffRole, StaffToken, StaffUser  # noqa: F401
from app.models.tip import OPEN_TIP_STATUSES, TIP_STATUSES, Tip, TipEvent  # noqa: F401
