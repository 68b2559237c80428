from app.accounts import create_staff


def test_login_gives_a_token_and_roles(client, db):
    create_staff("sup", "password1", ["supervisor", "moderator"])
    db.session.commit()
    response = client.post("/api/staff/v1/auth/login", json={"username": "sup", "password": "password1"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["roles"] == ["moderator", "supervisor"] and body["token"].startswith("stf_")


def test_wrong_password_is_401_in_the_error_shape(client, db):
    create_staff("sup", "password1", ["supervisor"])
    db.session.commit()
    response = client.post("/api/staff/v1/auth/login", json={"username": "sup", "password": "nope"})
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "invalid_credentials"


def test_malformed_login_is_422(client):
    response = client.post("/api/staff/v1/auth/login", json={"username": ""})
    assert response.status_code == 422
    assert set(response.get_json()["error"]["fields"]) >= {"username", "password"}
    response = client.post("/api/staff/v1/auth/login", data="not json", content_type="application/json")
    assert response.status_code in (400, 422)
    assert "error" in response.get_json()
