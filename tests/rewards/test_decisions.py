"""rewards/decisions.py (the decision table as data) and docs/WECHAT.md §Decision table say the same."""
import re
from pathlib import Path

from rewards import decisions

WECHAT_MD = Path(__file__).resolve().parents[2] / "docs" / "WECHAT.md"
ROW = re.compile(r"^\|\s*`(send|query|status)`\s*\|\s*`([^`]+)`\s*\|\s*`([a-z_]+)`\s*\|")


def _doc_rows():
    text = WECHAT_MD.read_text(encoding="utf-8")
    section = text.split("### Decision table", 1)[1].split("\n### ", 1)[0]
    return {m.groups() for m in map(ROW.match, section.splitlines()) if m}


def test_the_doc_and_the_data_agree():
    data = {(row.call, row.code, row.action) for row in decisions.ROWS}
    doc = _doc_rows()
    assert doc - data == set(), "rows in docs/WECHAT.md that rewards/decisions.py lacks"
    assert data - doc == set(), "rows of rewards/decisions.py missing from docs/WECHAT.md"


def test_every_row_is_unique_and_every_action_known():
    keys = [(row.call, row.code) for row in decisions.ROWS]
    assert len(keys) == len(set(keys))
    assert {row.action for row in decisions.ROWS} <= set(decisions.ACTIONS)


def test_every_documented_code_has_a_row():
    """Every code the sandbox can inject on a send (WeChat's documented table) and every gethbinfo status."""
    from app.wechat import HB_STATUSES
    from app.wechat_sandbox.faults import PAY_CODES

    sends = {row.code for row in decisions.ROWS if row.call == "send"}
    assert set(PAY_CODES) - {"NOT_FOUND"} <= sends
    assert {row.code for row in decisions.ROWS if row.call == "status"} == set(HB_STATUSES)


def test_the_merchant_condition_never_declines_a_resident():
    for code in ("NOTENOUGH", "SENDAMOUNT_LIMIT", "NO_AUTH", "CA_ERROR", "SIGN_ERROR", "API_METHOD_CLOSED",
                 "MSGAPPID_ERROR"):
        assert decisions.decide("send", code).action == decisions.PAUSE
    assert decisions.decide("send", "SENDAMOUNT_LIMIT").resumes == decisions.NEXT_DAY
    assert decisions.decide("send", "RCVDAMOUNT_LIMIT").action == decisions.DEFER
    finals = {row.code for row in decisions.ROWS if row.action == decisions.FINAL}
    assert finals == {"OPENID_ERROR", "USER_ERROR"}
    assert all(decisions.resident_reason(code) for code in finals)


def test_unlisted_codes_are_asked_about_never_final():
    assert decisions.decide("send", "NEW_RISK_CONTROL").action == decisions.QUERY_FIRST
    assert decisions.decide("send", "HTTP_502").action == decisions.QUERY_FIRST
    assert decisions.decide("send", None).action == decisions.QUERY_FIRST
    assert decisions.decide("query", "NEW_RISK_CONTROL").action == decisions.QUERY_AGAIN
