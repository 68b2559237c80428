def test_limits_are_per_app_and_answer_429_with_retry_after(make_app, db):
    limited = make_app(RATELIMIT_ENABLED=True, STAFF_LOGIN_LIMIT_IP="10/minute")
    unlimited = make_app(RATELIMIT_ENABLED=False, STAFF_LOGIN_LIMIT_IP="10/minute")  # built later: must not switch the first one off
    client = limited.test_client()
    # other names each time: the address limit, not the per-account throttle
    codes = [client.post("/api/staff/v1/auth/login", json={"username": f"x{n}", "password": "y"}).status_code
             for n in range(11)]
    assert codes[:10] == [401] * 10
    assert codes[10] == 429
    response = client.post("/api/staff/v1/auth/login", json={"username": "x", "password": "y"})
    assert response.get_json()["error"]["code"] == "rate_limited"
    assert int(response.headers["Retry-After"]) >= 1
    other = unlimited.test_client()
    assert all(other.post("/api/staff/v1/auth/login", json={"username": f"y{n}", "password": "y"}).status_code == 401
               for n in range(12))
