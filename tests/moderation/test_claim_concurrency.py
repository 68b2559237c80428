"""Many moderators claiming at once never get the same tip (threads, each with its own connection;
SKIP LOCKED on PostgreSQL, BEGIN IMMEDIATE on SQLite)."""
import threading
from collections import Counter

from sqlalchemy import update

from app.extensions import db
from app.models.tip import Tip
from tests.moderation.factories import make_resident, make_staff, make_tip

MODERATORS = 8
TIPS = 60


def test_concurrent_claims_never_double_claim(app, db, reference_data):
    from moderation.queue import claim_next

    resident = make_resident()
    for i in range(TIPS):
        make_tip(resident, [], status="pending_review", publish=False, priority=i % 3)
    staff_ids = [make_staff(f"mod{i}", ["moderator"]).id for i in range(MODERATORS)]
    db.session.commit()
    claimed: dict[int, list[int]] = {sid: [] for sid in staff_ids}
    errors = []
    start = threading.Barrier(MODERATORS)

    def moderator(staff_id):
        try:
            with app.app_context():
                from app.models.staff import StaffUser

                me = db.session.get(StaffUser, staff_id)
                db.session.commit()  # SQLite: never wait at the barrier holding the write lock
                start.wait(timeout=30)
                while True:
                    tip = claim_next(me)
                    if tip is None:
                        break
                    claimed[staff_id].append(tip.id)
                    # decide at once (a minimal decision: off the queue), so the next claim moves on
                    done = db.session.execute(update(Tip).where(Tip.id == tip.id, Tip.claimed_by == staff_id)
                                              .values(status="rejected")).rowcount
                    db.session.commit()
                    assert done == 1, "decided a tip we did not hold"
                db.session.remove()
        except Exception:  # surfaced below
            import traceback

            errors.append(traceback.format_exc())

    threads = [threading.Thread(target=moderator, args=(sid,)) for sid in staff_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    counts = Counter(tip_id for ids in claimed.values() for tip_id in ids)
    assert len(counts) == TIPS and max(counts.values()) == 1
    assert sum(1 for ids in claimed.values() if ids) > 1  # really concurrent: more than one got work
