"""The Open311 read side as a third-party client sees it (issue #16 point 9): the `georeport` package
from PyPI (a GeoReport v2 client, installed by dev.py from requirements-dev-nodeps.txt) talks HTTP to
the app on a real port, in JSON and in XML, and reads services, a service's definition, requests
filtered by comma lists, one request, and GeoReport's errors."""
import threading

import pytest
import requests
from georeport import GeoReport
from werkzeug.serving import make_server


@pytest.fixture
def open311(make_app, hz):
    hazards = [hz.new_hazard(i, category="lpg_illegal")[0] for i in range(3)]
    hz.set_status(hazards[0].id, "closed")
    ids = [h.id for h in hazards]
    server = make_server("127.0.0.1", 0, make_app(RATELIMIT_ENABLED=False), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/open311/v2", ids
    server.shutdown()
    thread.join(timeout=10)


def _as_list(value):
    """xmltodict gives one element as a dict and several as a list."""
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_the_georeport_client_reads_every_resource(open311, fmt):
    base, (closed, *opened) = open311
    client = GeoReport(base, output_format=fmt)

    services = _as_list(client.get_service_list())
    lpg = next(s for s in services if s["service_code"] == "lpg_illegal")
    assert lpg["service_name"] and lpg["type"] == "realtime"
    definition = client.get_service_definition("lpg_illegal")
    assert definition["service_code"] == "lpg_illegal"

    both = _as_list(client.get_service_requests(status="open,closed"))
    assert {str(i) for i in (closed, *opened)} <= {r["service_request_id"] for r in both}
    only_open = _as_list(client.get_service_requests(status="open", service_code="lpg_illegal"))
    assert {r["service_request_id"] for r in only_open} == {str(i) for i in opened}
    picked = _as_list(client.get_service_requests(service_request_id=f"{opened[0]},{closed}"))
    assert {r["service_request_id"] for r in picked} == {str(opened[0]), str(closed)}

    one = _as_list(client.get_service_request(str(closed)))
    assert one[0]["status"] == "closed" and one[0]["service_code"] == "lpg_illegal"


def test_the_georeport_client_sees_georeports_errors(open311):
    base, _ = open311
    with pytest.raises(requests.HTTPError) as missing:
        GeoReport(base).get_service_request("999999")
    assert missing.value.response.status_code == 404
    assert missing.value.response.json() == [{"code": 404, "description": "工单不存在"}]
    with pytest.raises(requests.HTTPError) as unknown:
        GeoReport(base, output_format="xml").get_service_definition("no_such_service")
    assert unknown.value.response.status_code == 404
    assert b"<errors>" in unknown.value.response.content
