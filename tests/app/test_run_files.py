"""Two deployments (or demos) on one host with different instance folders do not collide: gunicorn's
control socket lives in the instance folder (deploy/gunicorn.conf.py), not ~/.gunicorn/gunicorn.ctl,
which every gunicorn of a user shared (issue 13)."""
import stat
import time

import pytest

from tests.fixtures.gunicorn import Gunicorn

pytestmark = pytest.mark.slow


def _is_socket(path) -> bool:
    return path.exists() and stat.S_ISSOCK(path.stat().st_mode)


def _socket_appears(path, within: float = 60) -> bool:
    """gunicorn's control server runs in a thread of the arbiter and is restarted around each fork
    of a worker: on a loaded machine the socket can appear a while after the first answer."""
    deadline = time.monotonic() + within
    while not _is_socket(path):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def test_two_instances_each_keep_their_own_control_socket(subprocess_env, tmp_path, db):
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in subprocess_env.items() if k != "XDG_RUNTIME_DIR"}
    env["HOME"] = str(home)
    first_dir, second_dir = tmp_path / "a", tmp_path / "b"
    first = Gunicorn({**env, "INSTANCE_PATH": str(first_dir)}, tmp_path, "a", {})
    second = Gunicorn({**env, "INSTANCE_PATH": str(second_dir)}, tmp_path, "b", {})
    try:
        first.wait_ready()
        second.wait_ready()
        assert _socket_appears(first_dir / "gunicorn.ctl"), first.log()
        assert _socket_appears(second_dir / "gunicorn.ctl"), second.log()
        assert not (home / ".gunicorn").exists()
        first.stop()
        assert not (first_dir / "gunicorn.ctl").exists()  # each cleans up its own ...
        assert _socket_appears(second_dir / "gunicorn.ctl")  # ... and only its own
    finally:
        first.stop()
        second.stop()
