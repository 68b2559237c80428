"""Staff login throttling instead of an account lock: failures slow down their (account, address)
pair with a doubling wait; a generous per-account ceiling stops a guess spread over many addresses but
never the addresses the account signs in from; unknown users get exactly the same answers."""
import re
import threading

import pytest

from app.accounts import create_staff
from app.login_throttle import _keys

STAFF = ("fin", "password-ok")


def login(client, address, username="fin", password="wrong-password"):
    return client.post("/api/staff/v1/auth/login", json={"username": username, "password": password},
                       environ_base={"REMOTE_ADDR": address})


def answer(reply):
    body = reply.get_json()
    return reply.status_code, body["error"]["code"] if "error" in body else "ok"


@pytest.fixture
def staff(db):
    create_staff(*STAFF, ["finance"])
    db.session.commit()


@pytest.fixture
def client(make_app, db):
    # A first wait of a minute, not a second: on a loaded machine one Argon2 check can outlast a
    # second, and the wait would be over before the next guess arrives.
    return make_app(RATELIMIT_ENABLED=True, STAFF_LOGIN_BACKOFF_BASE=60).test_client()


def test_the_right_password_is_never_refused_because_someone_else_guessed(client, staff):
    guesses = [answer(login(client, "198.51.100.66")) for _ in range(12)]
    assert guesses[:5] == [(401, "invalid_credentials")] * 5
    assert set(guesses[5:]) == {(429, "login_throttled")}
    # the guesser's own right guess now waits too: the throttle answers before the password is checked
    assert answer(login(client, "198.51.100.66", password=STAFF[1])) == (429, "login_throttled")

    assert answer(login(client, "203.0.113.5", password=STAFF[1])) == (200, "ok")


def test_unknown_and_real_users_get_the_same_answers(client, staff):
    real = [login(client, "198.51.100.1") for _ in range(7)]
    ghost = [login(client, "198.51.100.2", username="ghost") for _ in range(7)]

    assert [answer(r) for r in real] == [answer(r) for r in ghost] == \
        [(401, "invalid_credentials")] * 5 + [(429, "login_throttled")] * 2
    assert [r.get_json()["error"]["message"] for r in real] == [r.get_json()["error"]["message"] for r in ghost]


def test_the_wait_doubles_up_to_its_cap(make_app, redis_conn, staff):
    client = make_app(RATELIMIT_ENABLED=True, STAFF_LOGIN_FREE_FAILURES=2, STAFF_LOGIN_BACKOFF_BASE=60,
                      STAFF_LOGIN_BACKOFF_MAX=480).test_client()
    pair = _keys("fin", "198.51.100.7")[0]
    assert [login(client, "198.51.100.7").status_code for _ in range(2)] == [401, 401]  # the free failures
    waits = []
    for _ in range(5):
        refused = login(client, "198.51.100.7")
        assert answer(refused) == (429, "login_throttled")
        waits.append(int(re.search(r"请 (\d+) 秒后再试", refused.get_json()["error"]["message"]).group(1)))
        assert abs(int(refused.headers["Retry-After"]) - waits[-1]) <= 1  # a second may pass between them
        redis_conn.hset(pair, "until", 0)  # the wait is over: one more guess, which fails
        assert answer(login(client, "198.51.100.7")) == (401, "invalid_credentials")
    expected = [60, 120, 240, 480, 480]
    assert all(want - 2 <= got <= want for got, want in zip(waits, expected)), waits  # seconds already gone


def test_a_success_clears_the_pair(client, staff):
    for _ in range(4):
        assert login(client, "198.51.100.8").status_code == 401
    assert login(client, "198.51.100.8", password=STAFF[1]).status_code == 200
    assert [login(client, "198.51.100.8").status_code for _ in range(5)] == [401] * 5


def test_the_account_ceiling_spares_the_addresses_it_signs_in_from(make_app, staff):
    client = make_app(RATELIMIT_ENABLED=True, STAFF_LOGIN_ACCOUNT_CEILING=6).test_client()
    assert login(client, "10.1.1.1", password=STAFF[1]).status_code == 200  # the office, last week
    for n in range(6):  # a guess spread over many addresses
        assert login(client, f"198.51.100.{100 + n}").status_code == 401

    stranger = login(client, "203.0.113.77", password=STAFF[1])
    assert answer(stranger) == (429, "login_throttled") and 1 <= int(stranger.headers["Retry-After"]) <= 3600
    assert answer(login(client, "10.1.1.1", password=STAFF[1])) == (200, "ok")
    # other accounts are untouched
    assert answer(login(client, "203.0.113.77", username="ghost")) == (401, "invalid_credentials")


def test_a_burst_of_parallel_guesses_gets_only_the_free_attempts(make_app, staff):
    app = make_app(RATELIMIT_ENABLED=True, STAFF_LOGIN_FREE_FAILURES=3)
    codes, barrier = [], threading.Barrier(10)

    def guess():
        client = app.test_client()
        barrier.wait()
        codes.append(login(client, "198.51.100.99").status_code)

    threads = [threading.Thread(target=guess) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) == [401] * 3 + [429] * 7
