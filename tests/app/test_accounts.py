import pytest

from app.accounts import authenticate, create_staff, issue_staff_token, staff_for_token
from app.errors import Conflict, Unauthorized, Unprocessable
from app.models import StaffUser


def test_staff_create_command_hashes_the_password(flask_cli, db):
    result = flask_cli("staff", "create", "--username", "mod1", "--password", "correct-horse", "--role", "moderator")
    assert "mod1" in result.stdout
    user = db.session.query(StaffUser).filter_by(username="mod1").one()
    assert user.role_names == ["moderator"]
    assert user.password_hash.startswith("$argon2id$")
    assert "correct-horse" not in user.password_hash
    assert user.display_name == "mod1"  # no --name: the console shows the username


def test_staff_create_takes_the_display_name(flask_cli, db):
    from app.display import staff_name

    flask_cli("staff", "create", "--username", "zhang3", "--password", "correct-horse", "--role", "finance",
              "--name", "张三")
    user = db.session.query(StaffUser).filter_by(username="zhang3").one()
    assert user.display_name == "张三" and staff_name(user.id) == "张三"


def test_staff_create_rejects_bad_input(flask_cli, db):
    bad_role = flask_cli("staff", "create", "--username", "x", "--password", "long-enough", "--role", "boss", check=False)
    assert bad_role.returncode == 1 and "未知角色" in bad_role.stderr
    no_dept = flask_cli("staff", "create", "--username", "d", "--password", "long-enough", "--role", "department", check=False)
    assert no_dept.returncode == 1 and "部门" in no_dept.stderr
    assert db.session.query(StaffUser).count() == 0


def test_staff_create_refuses_an_unknown_department(flask_cli, db, reference_data):
    unknown = flask_cli("staff", "create", "--username", "gas1", "--password", "long-enough", "--role", "department",
                        "--department", "gas", check=False)
    assert unknown.returncode == 1 and "部门不存在：gas" in unknown.stderr
    assert db.session.query(StaffUser).count() == 0
    db.session.rollback()  # end the read: SQLite holds its write lock until then
    known = flask_cli("staff", "create", "--username", "fire1", "--password", "long-enough", "--role", "department",
                      "--department", "fire")
    assert "fire1" in known.stdout
    assert db.session.query(StaffUser).filter_by(username="fire1").one().department_code == "fire"


def test_duplicate_username_conflicts(db):
    create_staff("a", "password1", ["moderator"])
    with pytest.raises(Conflict):
        create_staff("a", "password2", ["finance"])
    with pytest.raises(Unprocessable):
        create_staff("b", "short", ["finance"])


def test_authenticate_answers_the_same_for_unknown_and_disabled_users(db):
    create_staff("fin", "password1", ["finance"])
    gone = create_staff("gone", "password1", ["finance"])
    gone.active = False
    db.session.commit()
    assert authenticate("fin", "password1").username == "fin"
    for username, password in (("fin", "wrong"), ("nobody", "password1"), ("gone", "password1")):
        with pytest.raises(Unauthorized) as info:
            authenticate(username, password)
        assert (info.value.code, info.value.message) == ("invalid_credentials", "用户名或密码错误")


def test_tokens_are_stored_hashed_and_expire(db, app):
    user = create_staff("m", "password1", ["moderator"])
    token, ttl = issue_staff_token(user)
    db.session.commit()
    assert staff_for_token(token).id == user.id
    assert staff_for_token(token + "x") is None
    from app.models import StaffToken

    row = db.session.query(StaffToken).one()
    assert token not in row.token_hash
    from datetime import timedelta

    from app.models.base import utcnow

    row.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert staff_for_token(token) is None
