"""Fuzzing beyond the residents' API (issue #16 point 3): schemathesis generates requests from
/api/openapi.json for every staff, finance and department operation and sends them as each role
(moderator, supervisor, department staff, finance, admin, a department's API key); Hypothesis sends
Open311 (outside the OpenAPI document) hostile query strings and ids. Nothing may answer 5xx.

Unexpected errors become 500 answers here (PROPAGATE_UNEXPECTED off) so one run reports them all.
STAFF_FUZZ_EXAMPLES sets the examples per operation and role (default 4: a few minutes)."""
import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings, strategies as st
from schemathesis.checks import not_a_server_error

ROLES = {"moderator": ["moderator"], "supervisor": ["supervisor"], "department": ["department"],
         "finance": ["finance"], "admin": ["admin"]}
ID_EDGES = [0, 1, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 63 - 1, 2 ** 63, 10 ** 20]
HOSTILE = st.one_of(st.sampled_from(["²", "１２", "\ud800", "\x00", "-1", "1e9", "NaN", "open,closed", ",", "%00"]),
                    st.sampled_from(ID_EDGES).map(str), st.text(max_size=30))


@pytest.fixture
def staff_fuzz(make_app, sandbox_config, reference_data, db, wechat_sandbox):
    from tests.hazards.conftest import Helpers

    application = make_app(**sandbox_config, RATELIMIT_ENABLED=False, PROPAGATE_UNEXPECTED=False)
    with application.app_context():
        helpers = Helpers(db)
        helpers.new_hazard(0)  # something to read and move
        helpers.tip(*helpers.grid_point(1)[:2])  # something to review
        db.session.commit()
        serial = iter(range(10 ** 6))

        def credentials(role):
            if role == "dept_key":
                return helpers.dept_key("fire")
            _, headers = helpers.staff(f"fuzz_{role}_{next(serial)}", ROLES[role],
                                       "fire" if role == "department" else None)
            return headers

        yield application, credentials


@pytest.mark.slow
def test_fuzz_staff_finance_and_department_apis_find_no_5xx(staff_fuzz):
    application, credentials = staff_fuzz
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", application).include(
        path_regex=r"^/api/(staff|dept)/v1/")
    examples = int(os.environ.get("STAFF_FUZZ_EXAMPLES", "4"))
    failures, calls, statuses = [], [], []
    for result in schema.get_all_operations():
        operation = result.ok()
        strategy = operation.as_strategy()
        roles = ["dept_key"] if operation.path.startswith("/api/dept/") else [*ROLES]
        for role in roles:
            headers = credentials(role)  # fresh per operation: fuzzing logout ends its own token

            @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
            @given(case=strategy)
            def run(case):
                calls.append((operation.label, role))
                try:
                    statuses.append(case.call_and_validate(headers=headers, checks=[not_a_server_error]).status_code)
                except Exception as error:
                    failures.append(f"{operation.label} as {role}: {type(error).__name__}: {str(error)[:400]}")
                    raise

            try:
                run()
            except Exception:
                pass
    assert failures == []
    operations = {label for label, _ in calls}
    assert sum(s != 401 for s in statuses) > len(statuses) // 2, statuses  # mostly past the credentials
    assert any(200 <= s < 300 for s in statuses)
    assert len(operations) >= 25 and any(label.startswith("GET /api/dept/") for label in operations), operations


@pytest.mark.slow
def test_fuzz_open311_finds_no_5xx(staff_fuzz):
    application, _ = staff_fuzz
    client = application.test_client()
    names = ["service_request_id", "service_code", "status", "start_date", "end_date", "page", "page_size"]

    @settings(max_examples=int(os.environ.get("STAFF_FUZZ_EXAMPLES", "4")) * 40, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(query=st.dictionaries(st.sampled_from(names), HOSTILE, max_size=4), ident=HOSTILE)
    def run(query, ident):
        for path, args in (("/open311/v2/requests.json", query), ("/open311/v2/services.json", query),
                           (f"/open311/v2/requests/{ident}.json", {})):
            try:
                reply = client.get(path, query_string=args)
            except ValueError:  # the test client cannot even encode it (a lone surrogate): nothing sent
                continue
            assert reply.status_code < 500, (path, args, reply.get_data(as_text=True)[:300])

    run()
