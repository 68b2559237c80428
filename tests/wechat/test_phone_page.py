"""The sandbox's phone page (/__sandbox__/phone/): served by the sandbox process, and its residents'
API calls forwarded to the app as they are (status, error shape, Idempotency-Key, multipart)."""
import uuid

import requests

from app.demo_data import make_demo_photo

HOME_GCJ02 = {"lat": 23.01795, "lng": 113.75706, "coord": "gcj02"}  # 东城街道, as wx.getLocation gives it


def test_the_page_and_its_files_are_served(wechat_sandbox):
    base = wechat_sandbox.url + "/__sandbox__/phone/"
    page = requests.get(base, timeout=5)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "人人拍" in page.text and 'src="phone.js"' in page.text and 'lang="zh-CN"' in page.text
    script = requests.get(base + "phone.js", timeout=5)
    assert script.status_code == 200 and "Idempotency-Key" in script.text
    assert requests.get(base + "phone.css", timeout=5).status_code == 200
    assert requests.get(base + "nothing.js", timeout=5).status_code == 404
    for name in ("leaflet/leaflet.js", "leaflet/leaflet.css"):  # the console's vendored map library
        assert requests.get(base + name, timeout=5).status_code == 200
    places = requests.get(base + "places.json", timeout=5).json()
    assert len(places["outline"]) > 10 and {"name": "东城街道", "lat": 23.016, "lng": 113.786} in places["towns"]


def test_without_the_apps_address_the_forward_says_so(wechat_sandbox):
    reply = requests.get(wechat_sandbox.url + "/__sandbox__/phone/api/privacy", timeout=5)
    assert reply.status_code == 503
    assert reply.json()["error"]["code"] == "sandbox_app_unknown"


def test_the_residents_api_is_forwarded_as_it_is(wechat_sandbox, live_app, reference_data):
    app = live_app()
    wechat_sandbox.configure(app_url=app.url)
    api = wechat_sandbox.url + "/__sandbox__/phone/api/"
    direct = requests.get(app.url + "/api/mp/v1/privacy", timeout=5).json()
    assert requests.get(api + "privacy", timeout=5).json() == direct

    unauthorized = requests.get(api + "tips", timeout=5)
    assert unauthorized.status_code == 401 and unauthorized.json()["error"]["code"] == "unauthorized"

    code = wechat_sandbox.login_code("o-phone-page")
    token = requests.post(api + "auth/login", json={"code": code}, timeout=10).json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    photo = requests.post(api + "photos", headers=auth, timeout=10,
                          files={"file": ("photo.jpg", make_demo_photo(seed=7), "image/jpeg")})
    assert photo.status_code == 201, photo.text
    body = {"category": "fire_exit_blocked", "description": "安全出口被杂物堵住", "location": HOME_GCJ02,
            "photo_ids": [photo.json()["id"]]}
    key = {"Idempotency-Key": str(uuid.uuid4()), **auth}
    first = requests.post(api + "tips", json=body, headers=key, timeout=10)
    again = requests.post(api + "tips", json=body, headers=key, timeout=10)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    mine = requests.get(api + "tips", params={"limit": 5}, headers=auth, timeout=5).json()["items"]
    assert [t["id"] for t in mine] == [first.json()["id"]]
    missing = requests.get(api + "tips/999999", headers=auth, timeout=5)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "tip_not_found"
