"""Console sessions are held server-side: logout, a password change and disabling the account end them
for every copy of the cookie (tested by replaying the real cookie); they live STAFF_TOKEN_TTL and end
after STAFF_SESSION_IDLE without a request."""
import time
from datetime import timedelta

import pytest

from app.accounts import create_staff
from app.models import StaffToken
from app.models.audit import AuditEntry
from app.models.base import utcnow

PASSWORD = "password-ok"


@pytest.fixture
def staff(db):
    user = create_staff("cai", PASSWORD, ["finance"])
    db.session.commit()
    return user


@pytest.fixture
def console_app(make_app):
    return make_app()


def sign_in(app):
    """A browser that signed in through the form; returns (client, the session cookie's value)."""
    client = app.test_client()
    assert client.post("/console/login", data={"username": "cai", "password": PASSWORD}).status_code == 302
    return client, client.get_cookie("session").value


def replay(app, cookie):
    """Someone else's browser presenting a copy of the cookie: signed in?"""
    thief = app.test_client()
    thief.set_cookie("session", cookie)
    return not thief.get("/console/").headers.get("Location", "").startswith("/console/login")


def test_a_cookie_replayed_after_logout_is_refused(console_app, staff, db):
    client, cookie = sign_in(console_app)
    assert replay(console_app, cookie)

    assert client.post("/console/logout").status_code == 302

    assert not replay(console_app, cookie)
    db.session.rollback()
    assert [e.action for e in db.session.query(AuditEntry).order_by(AuditEntry.id)] == ["staff.login", "staff.logout"]


def test_logout_ends_only_that_session(console_app, staff):
    first, first_cookie = sign_in(console_app)
    _second, second_cookie = sign_in(console_app)
    first.post("/console/logout")
    assert not replay(console_app, first_cookie) and replay(console_app, second_cookie)


def test_a_password_change_ends_every_session_and_token(console_app, staff, flask_cli, db):
    _client, cookie = sign_in(console_app)
    api = console_app.test_client()
    token = api.post("/api/staff/v1/auth/login", json={"username": "cai", "password": PASSWORD}).get_json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert api.get("/api/staff/v1/finance/summary", headers=headers).status_code == 200

    flask_cli("staff", "password", "--username", "cai", "--password", "a-new-password")

    assert not replay(console_app, cookie)
    assert api.get("/api/staff/v1/finance/summary", headers=headers).status_code == 401
    assert console_app.test_client().post("/console/login", data={"username": "cai", "password": "a-new-password"}
                                          ).status_code == 302


def test_disabling_an_account_ends_its_sessions(console_app, staff, flask_cli, db):
    _client, cookie = sign_in(console_app)

    result = flask_cli("staff", "disable", "--username", "cai")

    assert "disabled" in result.stdout
    assert not replay(console_app, cookie)
    db.session.rollback()
    assert db.session.query(StaffToken).filter(StaffToken.revoked_at.is_(None)).count() == 0
    db.session.rollback()  # no transaction held while the command writes (SQLite)
    flask_cli("staff", "enable", "--username", "cai")
    assert not replay(console_app, cookie)  # enabling again does not bring old sessions back
    sign_in(console_app)


def test_password_and_disable_commands_refuse_unknown_accounts_and_short_passwords(staff, flask_cli):
    assert flask_cli("staff", "disable", "--username", "nobody", check=False).returncode == 1
    short = flask_cli("staff", "password", "--username", "cai", "--password", "short", check=False)
    assert short.returncode == 1 and "8" in short.stderr


def test_an_idle_session_ends(make_app, staff):
    app = make_app(STAFF_SESSION_IDLE=1)
    client, cookie = sign_in(app)
    time.sleep(0.6)
    assert replay(app, cookie)  # a request within the idle time keeps it alive …
    time.sleep(0.6)
    assert replay(app, cookie)
    time.sleep(1.3)
    assert not replay(app, cookie)  # … and a second without one ends it


def test_sessions_live_as_long_as_a_staff_token(console_app, staff, db):
    client, cookie = sign_in(console_app)
    ttl = console_app.config["STAFF_TOKEN_TTL"]
    assert console_app.permanent_session_lifetime == timedelta(seconds=ttl)
    expires = client.get_cookie("session").expires
    assert abs((expires - utcnow()).total_seconds() - ttl) < 60

    db.session.rollback()
    [row] = db.session.query(StaffToken).all()
    assert abs((row.expires_at - utcnow()).total_seconds() - ttl) < 60
    row.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert not replay(console_app, cookie)


def test_console_sessions_and_api_tokens_do_not_stand_in_for_each_other(console_app, staff, db):
    _client, cookie = sign_in(console_app)
    from flask.sessions import SecureCookieSessionInterface

    serializer = SecureCookieSessionInterface().get_signing_serializer(console_app)
    console_token = serializer.loads(cookie)["staff_session"]
    assert console_token.startswith("stc_")
    api = console_app.test_client()
    assert api.get("/api/staff/v1/finance/summary",
                   headers={"Authorization": f"Bearer {console_token}"}).status_code == 401

    api_token = api.post("/api/staff/v1/auth/login", json={"username": "cai", "password": PASSWORD}).get_json()["token"]
    forged = console_app.test_client()
    forged.set_cookie("session", serializer.dumps({"staff_session": api_token}))
    assert forged.get("/console/").headers["Location"].startswith("/console/login")
