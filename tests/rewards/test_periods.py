"""Budget periods are real months written YYYY-MM: a top-up of 2026-13 or 0000-00 passed dual control
and stranded its money in a month no payout ever reserves from (issue #16 point 6)."""
import pytest

from app.accounts import create_staff, issue_staff_token
from app.display import period_of
from app.errors import Unprocessable
from rewards import ledger
from rewards.budget import check_period, close_period, fund_period

NOT_MONTHS = ["2026-13", "0000-00", "2026-00", "2026-1", "26-12", "2026/12", "2026-12-01", "２０２６-１２", "", 202612, None]


def _months_from_now(offset: int) -> str:
    year, month = map(int, period_of().split("-"))
    index = year * 12 + month - 1 + offset
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _finance(db, username):
    user = create_staff(username, "correct-horse-1", ["finance"])
    token, _ = issue_staff_token(user)
    db.session.commit()
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("period", NOT_MONTHS)
def test_a_topup_request_for_a_month_that_does_not_exist_is_422(client, rdb, period):
    fin = _finance(rdb, "fin_p")
    reply = client.post("/api/staff/v1/finance/requests", headers=fin,
                        json={"kind": "topup", "payload": {"period": period, "amount_fen": 10_000}})
    assert reply.status_code == 422, reply.json
    error = reply.json["error"]
    assert error["code"] == "validation_error" and "YYYY-MM" in error["fields"]["period"][0]
    assert client.get("/api/staff/v1/finance/requests", headers=fin).json["items"] == []


@pytest.mark.parametrize("offset, accepted", [(-2, False), (-1, True), (0, True), (12, True), (13, False), (-12 * 30, False)])
def test_a_topup_request_is_for_last_month_to_a_year_ahead(client, rdb, offset, accepted):
    fin = _finance(rdb, "fin_w")
    reply = client.post("/api/staff/v1/finance/requests", headers=fin,
                        json={"kind": "topup", "payload": {"period": _months_from_now(offset), "amount_fen": 10_000}})
    assert reply.status_code == (201 if accepted else 422), reply.json
    if not accepted:
        assert "预算期" in reply.json["error"]["fields"]["period"][0]


def test_an_old_request_for_a_bad_month_cannot_be_approved(client, rdb):
    """A request stored before the check (or written around it) still funds nothing."""
    from rewards.models import FinanceRequest

    from app.models.staff import StaffUser

    _finance(rdb, "fin_a")
    second = _finance(rdb, "fin_b")
    requester = rdb.session.query(StaffUser).filter_by(username="fin_a").one()
    row = FinanceRequest(kind="topup", payload={"period": "2026-13", "amount_fen": 10_000}, requested_by=requester.id)
    rdb.session.add(row)
    rdb.session.commit()
    reply = client.post(f"/api/staff/v1/finance/requests/{row.id}/decision", headers=second, json={"approve": True})
    assert reply.status_code == 422 and "period" in reply.json["error"]["fields"]
    rdb.session.rollback()  # the request ran in this test's app context: end it as its teardown would
    assert rdb.session.get(FinanceRequest, row.id).status == "pending"
    assert "2026-13" not in ledger.budget_by_period()


@pytest.mark.parametrize("period", ["2026-13", "0000-00", "x"])
def test_funding_and_closing_refuse_a_month_that_does_not_exist(rdb, period):
    for action in (lambda: fund_period(period, 100), lambda: close_period(period)):
        with pytest.raises(Unprocessable) as caught:
            action()
        assert "period" in caught.value.fields
    rdb.session.rollback()
    assert check_period("2026-02") == "2026-02"


def test_rewards_fund_command_refuses_a_bad_month(app, rdb):
    runner = app.test_cli_runner()
    bad = runner.invoke(args=["rewards", "fund", "--period", "2026-13", "--amount-fen", "100"])
    assert bad.exit_code == 1 and "YYYY-MM" in bad.output
    far = runner.invoke(args=["rewards", "fund", "--period", _months_from_now(24), "--amount-fen", "100"])
    assert far.exit_code == 1 and "预算期只能是" in far.output
    good = runner.invoke(args=["rewards", "fund", "--period", period_of(), "--amount-fen", "100"])
    assert good.exit_code == 0, good.output
    rdb.session.expire_all()
    assert ledger.budget_by_period()[period_of()]["available"] == 100
