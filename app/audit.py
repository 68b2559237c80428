"""The append-only audit trail. Callers add an entry in the same transaction as the action."""
from app.extensions import db
from app.models.audit import AuditEntry


def record_audit(action: str, object_type: str, object_id: int | None, *, actor=None,
                 actor_type: str | None = None, before: dict | None = None, after: dict | None = None,
                 note: str | None = None) -> AuditEntry:
    entry = AuditEntry(
        actor_type=actor_type or ("staff" if actor is not None else "system"),
        actor_id=getattr(actor, "id", actor if isinstance(actor, int) else None),
        action=action, object_type=object_type, object_id=object_id,
        before=before, after=after, note=note,
    )
    db.session.add(entry)
    return entry
