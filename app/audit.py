"""The append-only audit trail. Callers add an entry in the same transaction as the action."""
from flask import has_request_context, request

from app.extensions import db
from app.models.audit import AuditEntry

# Actors whose client address is kept: people and systems acting for the city, never residents.
_ADDRESSED_ACTORS = ("staff", "department")


def record_audit(action: str, object_type: str, object_id: int | None, *, actor=None,
                 actor_type: str | None = None, before: dict | None = None, after: dict | None = None,
                 note: str | None = None) -> AuditEntry:
    actor_type = actor_type or ("staff" if actor is not None else "system")
    entry = AuditEntry(
        actor_type=actor_type,
        actor_id=getattr(actor, "id", actor if isinstance(actor, int) else None),
        action=action, object_type=object_type, object_id=object_id,
        before=before, after=after, note=note,
        client_addr=client_address() if actor_type in _ADDRESSED_ACTORS else None,
    )
    db.session.add(entry)
    return entry


def client_address() -> str | None:
    """The caller's address: after ProxyFix (TRUSTED_PROXY_COUNT), the client the proxy saw."""
    return (request.remote_addr or None) if has_request_context() else None
