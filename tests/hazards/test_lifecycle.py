"""The ticket lifecycle: the whole transition table, roles, notes, SLA deadlines, overdue, hooks, races."""
import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.errors import Conflict, Forbidden, NotFound, Unprocessable
from app.hazards import lifecycle
from app.hazards.lifecycle import TRANSITIONS, Actor, register_transition_hook, transition_hazard
from app.hazards.models import HAZARD_STATUSES, Hazard, HazardEvent
from app.hazards.sla import flag_overdue, sweep_overdue
from app.models.base import utcnow

SUPERVISOR = Actor("staff", 1, None, ("supervisor",))
ALL_PAIRS = [(a, b) for a in HAZARD_STATUSES for b in HAZARD_STATUSES]


def _note_for(to):
    return "说明" if to in lifecycle.NOTE_REQUIRED else None


@pytest.fixture
def ticket(hz):
    hazard, tip = hz.new_hazard(0)
    return hazard


def test_the_table_has_the_five_step_loop_and_its_side_roads():
    path = ["reported", "dispatched", "accepted", "handling", "resolved", "verified", "closed"]
    assert all((a, b) in TRANSITIONS for a, b in zip(path, path[1:]))
    assert {("dispatched", "returned"), ("returned", "dispatched"), ("resolved", "reopened"),
            ("reopened", "handling")} <= set(TRANSITIONS)
    assert not any(frm == "closed" for frm, _ in TRANSITIONS)  # closed is final


@pytest.mark.parametrize("from_status,to_status", ALL_PAIRS)
def test_every_pair_is_allowed_exactly_when_the_table_says(hz, ticket, from_status, to_status):
    hz.set_status(ticket.id, from_status)
    if (from_status, to_status) in TRANSITIONS:
        hazard = transition_hazard(ticket.id, to_status, SUPERVISOR, _note_for(to_status))
        hz.db.session.commit()
        assert hazard.status == to_status
        event = hz.db.session.scalars(select(HazardEvent).order_by(HazardEvent.id.desc())).first()
        assert (event.from_status, event.to_status) == (from_status, to_status)
    else:
        with pytest.raises(Conflict) as caught:
            transition_hazard(ticket.id, to_status, SUPERVISOR, _note_for(to_status))
        assert caught.value.status == 409 and caught.value.code == "illegal_transition"
        hz.db.session.rollback()
        assert hz.db.session.get(Hazard, ticket.id).status == from_status


def test_illegal_moves_over_http_are_409_in_the_one_error_shape(hz, client, ticket):
    _, headers = hz.staff("sup", ["supervisor"])
    for to in HAZARD_STATUSES:
        if ("dispatched", to) in TRANSITIONS:
            continue
        reply = client.post(f"/api/staff/v1/hazards/{ticket.id}/transition", json={"to": to, "note": "x"},
                            headers=headers)
        assert reply.status_code == 409, to
        assert reply.json["error"]["code"] == "illegal_transition" and reply.json["error"]["message"]
    assert client.post(f"/api/staff/v1/hazards/{ticket.id}/transition", json={"to": "nonsense"},
                       headers=headers).status_code == 422
    assert client.post("/api/staff/v1/hazards/999999/transition", json={"to": "accepted"},
                       headers=headers).status_code == 404


def test_departments_make_only_department_moves_on_their_own_tickets(hz, ticket):
    own = Actor("department", None, "fire")
    other = Actor("department", None, "police")
    with pytest.raises(NotFound):
        transition_hazard(ticket.id, "accepted", other)
    transition_hazard(ticket.id, "accepted", own)
    transition_hazard(ticket.id, "resolved", own, "已清理")
    with pytest.raises(Forbidden):
        transition_hazard(ticket.id, "verified", own)  # 采办分离: the handler does not verify itself
    hz.db.session.rollback()


def test_moves_that_need_a_note_refuse_without_one(hz, ticket):
    fire = Actor("department", None, "fire")
    with pytest.raises(Unprocessable) as caught:
        transition_hazard(ticket.id, "returned", fire, "  ")
    assert caught.value.code == "note_required"
    transition_hazard(ticket.id, "accepted", fire)
    with pytest.raises(Unprocessable):
        transition_hazard(ticket.id, "resolved", fire)
    hz.db.session.rollback()


def test_returned_tickets_are_rerouted_by_supervisors(hz, ticket):
    transition_hazard(ticket.id, "returned", Actor("department", None, "fire"), "不属于消防职责，应由住建处理")
    hz.db.session.commit()
    hazard = hz.db.session.get(Hazard, ticket.id)
    assert hazard.return_reason.startswith("不属于")
    with pytest.raises(Unprocessable):
        transition_hazard(ticket.id, "dispatched", SUPERVISOR, department_code="no_such")
    hz.db.session.rollback()
    hazard = transition_hazard(ticket.id, "dispatched", SUPERVISOR, "改派住建", department_code="housing")
    hz.db.session.commit()
    assert hazard.department.code == "housing" and hazard.status == "dispatched"
    assert hz.db.session.scalar(select(HazardEvent.kind).order_by(HazardEvent.id.desc())) == "rerouted"
    with pytest.raises(NotFound):  # the old department lost it
        transition_hazard(ticket.id, "accepted", Actor("department", None, "fire"))
    transition_hazard(ticket.id, "accepted", Actor("department", None, "housing"))
    hz.db.session.rollback()


def test_each_step_gets_its_sla_deadline_from_the_catalogue(hz, ticket):
    from app.hazards.catalogue import get_category

    sla = get_category("fire_exit_blocked").sla_hours
    fire = Actor("department", None, "fire")
    hazard = hz.db.session.get(Hazard, ticket.id)
    assert _hours(hazard.due_at - hazard.status_changed_at) == pytest.approx(sla["accept"], abs=0.01)
    hazard = transition_hazard(ticket.id, "accepted", fire)
    resolve_due = hazard.due_at
    assert _hours(resolve_due - hazard.status_changed_at) == pytest.approx(sla["resolve"], abs=0.01)
    hazard = transition_hazard(ticket.id, "handling", fire)
    assert hazard.due_at == resolve_due  # same step: the clock keeps running
    hazard = transition_hazard(ticket.id, "resolved", fire, "已清理")
    assert _hours(hazard.due_at - hazard.status_changed_at) == pytest.approx(sla["verify"], abs=0.01)
    transition_hazard(ticket.id, "verified", SUPERVISOR)
    hazard = transition_hazard(ticket.id, "closed", SUPERVISOR)
    assert hazard.due_at is None and hazard.closed_at is not None
    hz.db.session.commit()


def _hours(delta: timedelta) -> float:
    return delta.total_seconds() / 3600


def test_overdue_tickets_are_flagged_once_listed_and_cleared_by_a_move(hz, client, ticket):
    from app.hazards.queries import list_overdue

    other, _ = hz.new_hazard(40)
    late = utcnow() - timedelta(minutes=5)
    hz.db.session.execute(Hazard.__table__.update().where(Hazard.id == ticket.id).values(due_at=late))
    hz.db.session.commit()
    assert sweep_overdue() == 1
    assert flag_overdue() == 0  # flagged once
    assert [h.id for h in list_overdue()] == [ticket.id]
    hazard = hz.db.session.get(Hazard, ticket.id)
    assert hazard.overdue and hazard.overdue_since is not None
    assert hz.db.session.scalar(select(func.count(HazardEvent.id)).where(HazardEvent.kind == "overdue")) == 1
    _, headers = hz.staff("sup", ["supervisor"])
    listed = client.get("/api/staff/v1/hazards/overdue", headers=headers).json["items"]
    assert [h["id"] for h in listed] == [ticket.id] and listed[0]["overdue"]
    assert [h["id"] for h in client.get("/api/staff/v1/hazards?overdue=true", headers=headers).json["items"]] == [
        ticket.id]
    transition_hazard(ticket.id, "accepted", Actor("department", None, "fire"))
    hz.db.session.commit()
    assert list_overdue() == [] and other.id not in [h.id for h in list_overdue()]


def test_the_sweep_is_registered_as_a_periodic_job(app):
    from app.queue import PERIODIC

    assert PERIODIC["hazards.sla_sweep"].func == "app.hazards.sla.sweep_overdue"
    assert not PERIODIC["hazards.sla_sweep"].inline  # never holds up the clock's outbox relay


def test_transition_hooks_run_inside_the_transaction(hz, ticket):
    seen = []

    def hook(hazard, frm, to):
        seen.append((hazard.id, frm, to))
        if to == "verified":
            raise RuntimeError("a hook that fails takes the move down with it")

    register_transition_hook(hook)
    try:
        fire = Actor("department", None, "fire")
        transition_hazard(ticket.id, "accepted", fire)
        transition_hazard(ticket.id, "resolved", fire, "好了")
        hz.db.session.commit()
        with pytest.raises(RuntimeError):
            transition_hazard(ticket.id, "verified", SUPERVISOR)
        hz.db.session.rollback()
        assert hz.db.session.get(Hazard, ticket.id).status == "resolved"
    finally:
        lifecycle.TRANSITION_HOOKS.remove(hook)
    assert seen == [(ticket.id, "dispatched", "accepted"), (ticket.id, "accepted", "resolved"),
                    (ticket.id, "resolved", "verified")]


def test_reopened_tickets_resolve_again_and_count_rounds(hz, ticket):
    fire = Actor("department", None, "fire")
    transition_hazard(ticket.id, "accepted", fire)
    transition_hazard(ticket.id, "resolved", fire, "清理了")
    hazard = transition_hazard(ticket.id, "reopened", SUPERVISOR, "现场仍有杂物")
    assert hazard.reopen_count == 1
    transition_hazard(ticket.id, "handling", fire)
    hazard = transition_hazard(ticket.id, "resolved", fire, "彻底清理")
    hz.db.session.commit()
    assert hazard.resolution_note == "彻底清理"


def test_two_actors_at_once_one_wins_the_other_gets_409(hz, app, ticket):
    """Two department staff ack the same ticket at the same moment, in separate sessions/connections."""
    hazard_id = ticket.id
    results = []
    barrier = threading.Barrier(2)

    def act(label):
        from app.extensions import db

        with app.app_context():
            try:
                barrier.wait(timeout=10)
                transition_hazard(hazard_id, "accepted", Actor("department", None, "fire"))
                db.session.commit()
                results.append((label, "won"))
            except Conflict as exc:
                db.session.rollback()
                results.append((label, exc.code))
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                db.session.rollback()
                results.append((label, repr(exc)))
            finally:
                db.session.remove()

    hz.db.session.rollback()  # this session holds no lock while the two race (SQLite: BEGIN IMMEDIATE)
    threads = [threading.Thread(target=act, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    outcomes = sorted(r for _, r in results)
    assert len(outcomes) == 2 and outcomes[1] == "won", results
    assert outcomes[0] in ("hazard_state_changed", "illegal_transition")
    hz.db.session.expire_all()
    assert hz.db.session.scalar(select(func.count(HazardEvent.id)).where(HazardEvent.to_status == "accepted")) == 1


def test_a_reroute_racing_a_department_ack_leaves_one_consistent_outcome(hz, app, ticket):
    """Two supervisors re-route the same returned ticket at once: one department gets it, never both."""
    hazard_id = ticket.id
    transition_hazard(ticket.id, "returned", Actor("department", None, "fire"), "不是我们的")
    hz.db.session.commit()
    results = {}
    barrier = threading.Barrier(2)

    def act(label, fn):
        from app.extensions import db

        with app.app_context():
            try:
                barrier.wait(timeout=10)
                fn()
                db.session.commit()
                results[label] = "ok"
            except (Conflict, NotFound, Forbidden) as exc:
                db.session.rollback()
                results[label] = exc.code
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                db.session.rollback()
                results[label] = repr(exc)
            finally:
                db.session.remove()

    reroute = lambda: transition_hazard(hazard_id, "dispatched", SUPERVISOR, department_code="housing")  # noqa: E731
    again = lambda: transition_hazard(hazard_id, "dispatched", SUPERVISOR, department_code="water")  # noqa: E731
    hz.db.session.rollback()
    threads = [threading.Thread(target=act, args=("housing", reroute)),
               threading.Thread(target=act, args=("water", again))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results.values()).count("ok") == 1, results
    hz.db.session.expire_all()
    hazard = hz.db.session.get(Hazard, hazard_id)
    winner = next(k for k, v in results.items() if v == "ok")
    assert hazard.department.code == winner and hazard.status == "dispatched"


def test_sweep_and_overdue_commands(hz, flask_cli, ticket):
    hz.db.session.execute(Hazard.__table__.update().where(Hazard.id == ticket.id)
                          .values(due_at=utcnow() - timedelta(hours=2)))
    hz.db.session.commit()
    assert "1 ticket(s) newly overdue" in flask_cli("hazards", "sweep-sla").stdout
    listed = flask_cli("hazards", "overdue").stdout
    assert f"#{ticket.id}\tfire\t已分拨" in listed


def test_without_auto_dispatch_a_new_ticket_waits_for_a_supervisor(hz, make_app):
    other = make_app(HAZARD_AUTO_DISPATCH=False)
    with other.app_context():
        from app.extensions import db
        from tests.hazards.conftest import Helpers

        helpers = Helpers(db)
        hazard, _ = helpers.new_hazard(0)
        assert hazard.status == "reported"
        assert transition_hazard(hazard.id, "dispatched", SUPERVISOR).status == "dispatched"
        db.session.commit()
        db.session.remove()
