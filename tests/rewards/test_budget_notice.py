"""Where money starts (issue 13): after `init` the month's budget is 0 and every approval comes back
not_granted (program_month_cap). `init` says so with the command that funds it, and the operator page
warns while it is true."""
import pytest

from app.display import period_of
from app.extensions import db
from rewards.budget import EMPTY_BUDGET_WARNING, describe_budget_for_init
from tests.rewards.helpers import fund


def _ops_page(client) -> str:
    from app.accounts import create_staff

    create_staff("budget-boss", "correct-horse-9", ["supervisor"])
    db.session.commit()
    assert client.post("/console/login", data={"username": "budget-boss", "password": "correct-horse-9"}).status_code == 302
    page = client.get("/console/ops")
    assert page.status_code == 200
    return page.get_data(as_text=True)


def test_operator_page_warns_while_this_months_budget_is_zero(client, rdb):
    html = _ops_page(client)
    assert EMPTY_BUDGET_WARNING == "本月预算为 0：审核通过的报料不会发放红包"
    assert EMPTY_BUDGET_WARNING in html
    assert f"rewards fund --period {period_of()}" in html
    fund(10_000)
    assert EMPTY_BUDGET_WARNING not in client.get("/console/ops").get_data(as_text=True)


def test_a_spent_budget_warns_again(client, rdb):
    from rewards.budget import reserve_from_period

    fund(500)
    assert reserve_from_period(period_of(), 500)  # what an approval takes
    db.session.commit()
    assert EMPTY_BUDGET_WARNING in _ops_page(client)


def test_init_step_names_the_command_that_funds_the_budget(rdb):
    period = period_of()
    said = describe_budget_for_init()
    assert f"{period} has 0 fen" in said and "program_month_cap" in said
    assert f"flask --app wsgi rewards fund --period {period} --amount-fen N" in said
    fund(10_000)
    assert describe_budget_for_init() == f"{period} has 10000 fen available"


@pytest.mark.slow
def test_init_says_the_budget_is_zero_and_how_to_fund_it(flask_cli, tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}"}
    first = flask_cli("init", env=env).stdout
    period = period_of()
    assert f"reward budget: {period} has 0 fen" in first
    assert f"rewards fund --period {period} --amount-fen N" in first
    assert first.rstrip().endswith("init: done")
    flask_cli("rewards", "fund", "--period", period, "--amount-fen", "50000", env=env)
    assert f"reward budget: {period} has 50000 fen available" in flask_cli("init", env=env).stdout
