"""The console shell: session login with throttled failures, CSRF on every unsafe request, role checks
and a navigation that lists only the pages the staff member's roles allow."""
import re

import pytest
from flask import Blueprint, url_for

from app.console import CONSOLE_PAGES, console_required, register_console_page


def _staff(username, roles, password="correct-horse-1"):
    from app.accounts import create_staff
    from app.extensions import db

    user = create_staff(username, password, roles, department_code="dept_x" if "department" in roles else None)
    db.session.commit()
    return user


@pytest.fixture(scope="module")
def shell_app(make_app, app):
    """An app with two probe pages (one per role) registered like an area would."""
    application = make_app(WTF_CSRF_ENABLED=True, STAFF_LOGIN_LIMIT_IP="10/minute")
    probe = Blueprint("probe_console", __name__, url_prefix="/console/probe")

    @probe.route("/money")
    @console_required("finance")
    def money():
        return "money-page"

    @probe.route("/echo", methods=["POST"])
    @console_required()
    def echo():
        return "posted"

    application.register_blueprint(probe)
    register_console_page("probe_console.money", "探针财务页", ["finance"], order=999)
    return application


@pytest.fixture
def shell(shell_app, db):
    # requests push their own app context (g and the CSRF token are per request, as in production)
    return shell_app.test_client()


def _csrf(html):
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def _login(client, username, password="correct-horse-1", next_=None):
    page = client.get("/console/login")
    token = _csrf(page.get_data(as_text=True))
    url = "/console/login" + (f"?next={next_}" if next_ else "")
    return client.post(url, data={"username": username, "password": password, "csrf_token": token})


def test_pages_need_a_session_and_redirect_to_login(shell):
    response = shell.get("/console/probe/money")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/console/login?next=/console/probe/money")


def test_login_logout_and_navigation_by_role(shell, shell_app):
    _staff("cai", ["finance"])
    response = _login(shell, "cai", next_="/console/probe/money")
    assert response.status_code == 302 and response.headers["Location"] == "/console/probe/money"
    page = shell.get("/console/probe/money")
    assert page.status_code == 200 and page.get_data(as_text=True) == "money-page"
    # /console/ opens the first page the role may see (areas' finance pages come before the probe's)
    allowed = sorted((p for p in CONSOLE_PAGES.values() if "finance" in p.roles), key=lambda p: (p.order, p.label))
    with shell_app.test_request_context():
        first = url_for(allowed[0].endpoint)
    assert shell.get("/console/").headers["Location"] == first
    # logout needs the CSRF token too
    assert shell.post("/console/logout").status_code == 400
    token = _csrf(shell.get("/console/login").get_data(as_text=True))
    assert shell.post("/console/logout", data={"csrf_token": token}).status_code == 302
    assert shell.get("/console/probe/money").status_code == 302


def test_wrong_role_gets_403_and_nav_hides_the_page(shell):
    _staff("mod", ["moderator"])
    assert _login(shell, "mod").status_code == 302
    assert shell.get("/console/probe/money").status_code == 403
    html = shell.get("/console/", follow_redirects=True).get_data(as_text=True)
    assert "探针财务页" not in html


def test_nav_lists_the_page_for_its_role(shell):
    _staff("cai2", ["finance"])
    _login(shell, "cai2")
    html = shell.get("/console/login").get_data(as_text=True)  # any page drawn from base.html
    assert "探针财务页" in html and "退出登录" in html


def test_wrong_passwords_slow_down_their_address_not_the_account(shell, shell_app):
    _staff("victim", ["moderator"])
    for _ in range(5):
        response = _login(shell, "victim", password="wrong-password")
        assert response.status_code == 401
        assert "用户名或密码错误" in response.get_data(as_text=True)
    # from the guesser's address even the right password waits (else the wait would be an oracle) …
    response = _login(shell, "victim")
    assert response.status_code == 429 and "秒后再试" in response.get_data(as_text=True)
    assert int(response.headers["Retry-After"]) >= 1
    # … but the staff member at their own desk signs in
    desk = shell_app.test_client()
    desk.environ_base["REMOTE_ADDR"] = "10.20.30.40"
    assert _login(desk, "victim").status_code == 302


def test_login_posts_are_rate_limited_per_address(shell):
    _staff("someone", ["moderator"])
    statuses = [_login(shell, f"nobody{i}", password="x").status_code for i in range(11)]
    assert statuses[:10] == [401] * 10 and statuses[10] == 429


def test_post_without_csrf_token_is_refused(shell):
    _staff("mod2", ["moderator"])
    _login(shell, "mod2")
    assert shell.post("/console/probe/echo").status_code == 400
    token = _csrf(shell.get("/console/login").get_data(as_text=True))
    assert shell.post("/console/probe/echo", data={"csrf_token": token}).get_data(as_text=True) == "posted"
    assert shell.post("/console/probe/echo", headers={"X-CSRFToken": token}).status_code == 200


def test_login_never_redirects_off_site(shell):
    _staff("mod3", ["moderator"])
    response = _login(shell, "mod3", next_="https://evil.example/console")
    assert response.status_code == 302 and response.headers["Location"] == "/console/"


def test_bearer_token_does_not_open_the_console(shell):
    _staff("api", ["finance"])
    token = shell.post("/api/staff/v1/auth/login", json={"username": "api", "password": "correct-horse-1"}).json["token"]
    response = shell.get("/console/probe/money", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 302
