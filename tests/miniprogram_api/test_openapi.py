"""The OpenAPI document: served, named uniquely, and held to by the API under fuzzing.

Schemathesis generates requests from /api/openapi.json for every /api/mp/v1 operation, with a real
resident token, and checks that nothing answers 5xx and every answer fits its documented schema.
"""
import os
import uuid

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance


def test_document_lists_every_resident_operation(mp_client):
    spec = mp_client.get("/api/openapi.json").get_json()
    paths = {p for p in spec["paths"] if p.startswith("/api/mp/v1")}
    assert paths >= {"/api/mp/v1/auth/login", "/api/mp/v1/categories", "/api/mp/v1/photos", "/api/mp/v1/tips",
                     "/api/mp/v1/tips/{tip_id}", "/api/mp/v1/tips/{tip_id}/withdraw", "/api/mp/v1/rewards",
                     "/api/mp/v1/hazards/nearby"}
    photos = spec["paths"]["/api/mp/v1/photos"]["post"]
    assert "multipart/form-data" in photos["requestBody"]["content"]
    tips = spec["paths"]["/api/mp/v1/tips"]["post"]
    assert any(p["name"] == "Idempotency-Key" and p["required"] for p in tips["parameters"])
    assert {"200", "201"} <= set(tips["responses"])
    assert "MpTipDetail" in spec["components"]["schemas"]
    page = mp_client.get("/api/docs")
    assert page.status_code == 200 and "/api/mp/v1/tips" in page.get_data(as_text=True)


@pytest.fixture
def fuzz_target(make_app, sandbox_config, reference_data, db, wechat_sandbox):
    """An app without rate limits (the fuzzer would exhaust them, not find bugs) whose unexpected
    errors become 500 answers for the checker instead of raising in the test."""
    from tests.miniprogram_api.conftest import Resident

    application = make_app(**sandbox_config, RATELIMIT_ENABLED=False, PROPAGATE_UNEXPECTED=False)
    with application.app_context():
        client = application.test_client()

        def login():
            openid = f"o_fuzz_{uuid.uuid4().hex[:12]}"
            body = client.post("/api/mp/v1/auth/login", json={"code": wechat_sandbox.login_code(openid)}).get_json()
            return Resident(client, body["token"], body["resident"]["id"], openid)

        login().submit()  # something to read
        yield application, None, login


@pytest.mark.slow
def test_fuzz_resident_api_finds_no_5xx_and_no_schema_violation(fuzz_target):
    application, _, login = fuzz_target
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", application).include(path_regex=r"^/api/mp/v1/")
    failures, calls, authorised = [], [], []
    checks = [not_a_server_error, response_schema_conformance, content_type_conformance]
    for result in schema.get_all_operations():
        operation = result.ok()

        strategy = operation.as_strategy()
        resident = login()  # a fresh token per operation: fuzzing /auth/logout revokes its own

        @settings(max_examples=int(os.environ.get("MP_FUZZ_EXAMPLES", "25")), deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(case=strategy)
        def run(case):
            headers = {"Authorization": f"Bearer {resident.token}"}
            calls.append(operation.label)
            try:
                response = case.call_and_validate(headers=headers, checks=checks)
                authorised.append(response.status_code != 401)
            except Exception as error:  # collect, so one run reports every operation
                failures.append(f"{operation.label}: {type(error).__name__}: {str(error)[:500]}")
                raise

        try:
            run()
        except Exception:
            pass
    assert failures == []
    assert len(set(calls)) >= 9 and len(calls) >= 100, calls  # every operation was exercised
    assert sum(authorised) > len(authorised) // 2  # mostly past the token check, into the views
