"""Client addresses behind reverse proxies: TRUSTED_PROXY_COUNT hops of X-Forwarded-For, read through
Werkzeug's ProxyFix, key the rate limits and the audit. In-process, then through real gunicorn."""
import itertools

import pytest
import requests

from app.accounts import create_staff
from app.config import ConfigError, load_config
from app.models.audit import AuditEntry
from tests.fixtures.gunicorn import gunicorn  # noqa: F401 (fixture)

LIMIT = {"STAFF_LOGIN_LIMIT_IP": "3/minute", "RATELIMIT_ENABLED": True}
_names = itertools.count()


def login(client, forwarded=None, username=None, password="wrong-password"):
    """One staff login from 127.0.0.1 (where nginx runs), forwarding for `forwarded`."""
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    # a new name each time: this measures the per-address limit, not the per-account throttle
    return client.post("/api/staff/v1/auth/login", headers=headers, environ_base={"REMOTE_ADDR": "127.0.0.1"},
                       json={"username": username or f"nobody{next(_names)}", "password": password})


def test_behind_one_proxy_each_client_has_its_own_bucket(make_app, db):
    client = make_app(TRUSTED_PROXY_COUNT=1, **LIMIT).test_client()

    assert [login(client, "198.51.100.1").status_code for _ in range(4)] == [401, 401, 401, 429]
    assert login(client, "198.51.100.2").status_code == 401  # another client behind the same nginx
    # a client that sends its own X-Forwarded-For only adds to the left of what nginx appends
    assert login(client, "198.51.100.2, 198.51.100.1").status_code == 429
    assert login(client, "198.51.100.1, 198.51.100.2").status_code == 401


def test_without_trusted_proxies_the_header_changes_nothing(make_app, db):
    client = make_app(TRUSTED_PROXY_COUNT=0, **LIMIT).test_client()

    codes = [login(client, f"198.51.100.{n}").status_code for n in range(1, 5)]

    assert codes == [401, 401, 401, 429]  # one bucket: the connection's address


def test_console_and_api_logins_share_the_address_bucket(make_app, db):
    client = make_app(TRUSTED_PROXY_COUNT=1, **LIMIT).test_client()
    headers = {"X-Forwarded-For": "198.51.100.9"}
    for _ in range(3):
        reply = client.post("/console/login", data={"username": f"nobody{next(_names)}", "password": "wrong-password"},
                            headers=headers)
        assert reply.status_code == 401
    assert login(client, "198.51.100.9").status_code == 429
    assert client.get("/console/login", headers=headers).status_code == 200  # only POSTs count


def test_default_address_limit_lets_an_office_sign_in_its_shift():
    """An office behind one NAT: 50 staff signing in within a minute, a few hundred in an hour."""
    from limits import parse_many

    limits = {item.GRANULARITY.name: item.amount for item in parse_many(load_config(env={})["STAFF_LOGIN_LIMIT_IP"])}
    assert limits["minute"] >= 50 and limits["hour"] >= 500


def test_login_audit_records_the_forwarded_client(make_app, db):
    create_staff("fin", "password-ok", ["finance"])
    db.session.commit()
    proxied = make_app(TRUSTED_PROXY_COUNT=1).test_client()
    direct = make_app(TRUSTED_PROXY_COUNT=0).test_client()

    assert login(proxied, "203.0.113.10, 198.51.100.7", "fin", "password-ok").status_code == 200
    assert login(direct, "198.51.100.7", "fin", "password-ok").status_code == 200

    entries = db.session.query(AuditEntry).filter_by(action="staff.login").order_by(AuditEntry.id).all()
    assert [e.client_addr for e in entries] == ["198.51.100.7", "127.0.0.1"]


@pytest.mark.parametrize("value", ["one", "-1", "1.5", "10"])
def test_trusted_proxy_count_must_be_a_small_whole_number(value):
    with pytest.raises(ConfigError, match="TRUSTED_PROXY_COUNT"):
        load_config({"APP_ENV": "testing"}, env={"TRUSTED_PROXY_COUNT": value})


def test_trusted_proxy_count_is_read_from_the_environment():
    assert load_config({"APP_ENV": "testing"}, env={})["TRUSTED_PROXY_COUNT"] == 0
    assert load_config({"APP_ENV": "testing"}, env={"TRUSTED_PROXY_COUNT": "2"})["TRUSTED_PROXY_COUNT"] == 2


# --- through real gunicorn with the deploy configuration ----------------------------------------------
def http_login(server, forwarded, username=None, password="wrong-password"):
    return requests.post(server.url + "/api/staff/v1/auth/login", headers={"X-Forwarded-For": forwarded},
                         json={"username": username or f"nobody{next(_names)}", "password": password}, timeout=10)


@pytest.mark.slow
def test_through_gunicorn_two_clients_behind_one_proxy_get_separate_buckets(gunicorn, db):
    create_staff("fin", "password-ok", ["finance"])
    db.session.commit()
    behind_nginx = gunicorn("proxied", None, **LIMIT)  # the deploy configuration's own count
    direct = gunicorn("direct", 0, **LIMIT)
    behind_nginx.wait_ready()
    direct.wait_ready()

    # what nginx sends: the client's own header (if any), then the address nginx saw
    assert [http_login(behind_nginx, "198.51.100.21").status_code for _ in range(4)] == [401, 401, 401, 429]
    assert http_login(behind_nginx, "198.51.100.22").status_code == 401
    assert http_login(behind_nginx, "198.51.100.22, 198.51.100.21").status_code == 429  # spoofed left part
    assert http_login(behind_nginx, "203.0.113.40", "fin", "password-ok").status_code == 200

    # no trusted proxy: a spoofed header changes nothing, every attempt is 127.0.0.1's
    assert [http_login(direct, f"198.51.100.{n}").status_code for n in range(31, 35)] == [401, 401, 401, 429]

    db.session.rollback()
    [entry] = db.session.query(AuditEntry).filter_by(action="staff.login").all()
    assert entry.client_addr == "203.0.113.40"
    # gunicorn's access log shows the client too (ProxyFix rewrote the environ it logs from)
    behind_nginx.stop()
    assert "203.0.113.40" in behind_nginx.log()
