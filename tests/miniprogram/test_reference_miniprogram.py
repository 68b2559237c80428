"""The reference mini-program (miniprogram/) against the real server: gunicorn, the workers and the
WeChat sandbox on loopback, as in tests/test_journey.py, and the mini-program's own Node tests
(WeChat's miniprogram-simulate, a `wx` whose network calls reach them) run against that system.

Needs Node 20 and `npm ci` in miniprogram/ (.ci/run does it; so does `python3 dev.py test`).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from app.config import SANDBOX_SUBSCRIBE_TEMPLATES
from app.demo_data import make_demo_photo
from tests.test_journey import System

ROOT = Path(__file__).resolve().parents[2]
MINIPROGRAM = ROOT / "miniprogram"
STAFF = ("mp-test-moderator", "renrenpai-mp-test")

pytestmark = pytest.mark.slow


@pytest.fixture
def system(subprocess_env, wechat_sandbox, reference_data, db):
    running = System(subprocess_env, wechat_sandbox)
    try:
        yield running.start()
    finally:
        running.stop()


@pytest.mark.timeout(900)  # nine page journeys against real processes, on a machine shared with the suite
def test_the_pages_drive_the_real_server(system, tmp_path):
    node = shutil.which("node")
    assert node, "Node.js 20 is needed for the mini-program's tests"
    assert (MINIPROGRAM / "node_modules" / "miniprogram-simulate").is_dir(), \
        "the mini-program's test dependencies are missing: run `npm ci` in miniprogram/"
    system.flask("staff", "create", "--username", STAFF[0], "--password", STAFF[1], "--role", "moderator")
    month = datetime.now(timezone(timedelta(hours=8))).strftime("%Y-%m")
    system.flask("rewards", "fund", "--period", month, "--amount-fen", "100000")
    photos = tmp_path / "photos"
    photos.mkdir()
    for seed in (1, 2):
        (photos / f"photo{seed}.jpg").write_bytes(make_demo_photo(seed=seed))

    env = {**os.environ, "API_BASE": system.base, "SANDBOX_URL": system.sandbox.url, "PHOTO_DIR": str(photos),
           "STAFF_USER": STAFF[0], "STAFF_PASSWORD": STAFF[1],
           "TEMPLATES": json.dumps(SANDBOX_SUBSCRIBE_TEMPLATES)}
    tests = sorted(str(p.relative_to(MINIPROGRAM)) for p in (MINIPROGRAM / "test").glob("*.test.js"))
    result = subprocess.run([node, "--test", "--test-concurrency=1", *tests], cwd=MINIPROGRAM, env=env,
                            capture_output=True, text=True, timeout=840)
    report = f"{result.stdout[-8000:]}\n{result.stderr[-4000:]}"
    assert result.returncode == 0, report
    passed = re.search(r"^# pass (\d+)$", result.stdout, re.M)
    assert passed and int(passed.group(1)) >= 9 and re.search(r"^# fail 0$", result.stdout, re.M), report
