"""Open311 GeoReport v2 conformance of the read side (issue #16 point 9), driven as a GeoReport
client would (http://wiki.open311.org/GeoReport_v2): discovery → endpoint → services (JSON and XML)
→ a service's definition → requests filtered by comma lists → one request; errors are GeoReport's
list of {code, description} in both formats."""
from xml.etree import ElementTree

import pytest


class GeoReportClient:
    """What a GeoReport v2 client does: follow discovery, ask for .json or .xml, read both alike."""

    def __init__(self, client):
        self.client = client
        discovery = client.get("/open311/v2/discovery.json")
        assert discovery.status_code == 200
        endpoint = discovery.json["endpoints"][0]
        assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
        assert {"application/json", "text/xml"} <= set(endpoint["formats"])
        self.base = endpoint["url"].split("://", 1)[1].split("/", 1)[1]
        self.base = "/" + self.base

    def get(self, resource, fmt="json", **params):
        reply = self.client.get(f"{self.base}{resource}.{fmt}", query_string=params)
        if fmt == "json":
            return reply.status_code, reply.json
        assert reply.mimetype == "text/xml", reply.mimetype
        root = ElementTree.fromstring(reply.data)
        return reply.status_code, [{child.tag: child.text for child in item} for item in root]


@pytest.fixture
def georeport(hz, client):
    hazards = [hz.new_hazard(i, category="lpg_illegal")[0] for i in range(3)]
    hz.set_status(hazards[0].id, "closed")
    return GeoReportClient(client), hazards


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_services_and_a_service_definition(georeport, fmt):
    api, _ = georeport
    status, services = api.get("services", fmt)
    assert status == 200 and any(s["service_code"] == "lpg_illegal" for s in services)
    assert {"service_code", "service_name", "description", "metadata", "type", "keywords", "group"} <= set(services[0])
    status, definition = api.get("services/lpg_illegal", fmt)
    assert status == 200
    if fmt == "json":
        assert definition == {"service_code": "lpg_illegal", "attributes": []}
    status, errors = api.get("services/no_such_service", fmt)
    assert status == 404 and errors[0]["code"] in (404, "404") and errors[0]["description"]


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_requests_take_comma_lists_and_errors_are_georeports(georeport, fmt):
    api, hazards = georeport
    closed, opened = hazards[0], hazards[1:]
    _, both = api.get("requests", fmt, status="open,closed")
    assert {r["service_request_id"] for r in both} >= {str(h.id) for h in hazards}
    _, only_open = api.get("requests", fmt, status="open")
    assert {r["service_request_id"] for r in only_open} == {str(h.id) for h in opened}
    assert all(r["status"] == "open" for r in only_open)
    _, only_closed = api.get("requests", fmt, status="closed")
    assert [r["service_request_id"] for r in only_closed] == [str(closed.id)]
    _, picked = api.get("requests", fmt, service_request_id=f"{opened[0].id},{closed.id}")
    assert {r["service_request_id"] for r in picked} == {str(opened[0].id), str(closed.id)}
    status, one = api.get(f"requests/{closed.id}", fmt)
    assert status == 200 and one[0]["status"] == "closed" and one[0]["service_code"] == "lpg_illegal"
    for params in ({"status": "pending"}, {"page": "x"}, {"start_date": "yesterday"}):
        status, errors = api.get("requests", fmt, **params)
        assert status == 422 and len(errors) == 1
        assert set(errors[0]) == {"code", "description"} and str(errors[0]["code"]) == "422"
    status, errors = api.get("requests/999999", fmt)
    assert status == 404 and errors[0]["description"] == "工单不存在"


def test_discovery_in_xml(georeport):
    api, _ = georeport
    reply = api.client.get("/open311/v2/discovery.xml")
    root = ElementTree.fromstring(reply.data)
    assert root.tag == "discovery"
    assert root.find("endpoints/endpoint/specification").text == "http://wiki.open311.org/GeoReport_v2"
    assert {f.text for f in root.findall("endpoints/endpoint/formats/format")} == {"application/json", "text/xml"}


@pytest.mark.parametrize("method, path, status", [
    ("GET", "/open311/v2/no_such_resource.json", 404),
    ("GET", "/open311/v2/no_such_resource.xml", 404),
    ("GET", "/open311/v2/requests/abc.json", 404),
    ("GET", "/open311/v2/requests/1.csv", 404),
    ("GET", "/open311/v2/", 404),
    ("POST", "/open311/v2/requests.json", 405),
    ("DELETE", "/open311/v2/services.xml", 405),
])
def test_urls_no_route_matches_answer_georeports_errors(client, method, path, status):
    """Unmatched URLs under the prefix are GeoReport's errors too, not the project's JSON shape."""
    reply = client.open(path, method=method)
    assert reply.status_code == status
    if path.endswith(".xml"):
        assert reply.mimetype == "text/xml"
        root = ElementTree.fromstring(reply.data)
        assert root.tag == "errors"
        errors = [{child.tag: child.text for child in item} for item in root]
    else:
        errors = reply.json
    assert isinstance(errors, list) and len(errors) == 1
    assert set(errors[0]) == {"code", "description"} and str(errors[0]["code"]) == str(status)
    assert errors[0]["description"] in ("找不到该资源", "不支持该请求方法")
