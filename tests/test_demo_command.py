"""`flask demo` on the embedded default: everything up with demo data, Ctrl-C stops every process it
started (the embedded Redis too), and a second start keeps the data — and staff can log in, every
time (issue 13: the second start held SQLite's write lock and every login waited 15 s for a 500)."""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.fixtures.sandbox import free_port

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow
START_CEILING = 1200  # seconds for one start: generous, see _start_demo


def _start_demo(instance: Path, port: int, sandbox_port: int, extra_env: dict | None = None):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "APP_ENV")}
    env.pop("XDG_RUNTIME_DIR", None)
    # a home of its own: nothing of the run may land there (gunicorn's control socket did, in ~/.gunicorn)
    # LOG_LEVEL as a newcomer has it (INFO): every log line goes to instance/logs/, not to the terminal
    env.pop("LOG_LEVEL", None)
    env.update({"INSTANCE_PATH": str(instance), "PYTHONPATH": str(ROOT), "HOME": str(instance / "home")})
    env.update(extra_env or {})
    proc = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "demo", "--port", str(port),
                             "--sandbox-port", str(sandbox_port)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.PIPE, text=True, start_new_session=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
    # Follow readiness, not a clock: wait while the demo lives until /healthz answers and the banner is
    # out. A busy machine makes that minutes (a fixed 240 s failed under load); the ceiling is only for
    # a demo that hangs, and the demo itself gives up on a web server that exits or never answers.
    deadline = time.monotonic() + START_CEILING
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the demo exited before it was ready:\n" + "".join(lines)[-3000:]
        if any("Ctrl-C" in line for line in lines) and _healthy(port):
            return proc, lines
        time.sleep(0.5)
    raise AssertionError(f"not ready within {START_CEILING} s:\n" + "".join(lines)[-3000:])


def _healthy(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200
    except requests.RequestException:
        return False


def _wait_for(lines: list[str], needle: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not any(needle in line for line in lines):
        time.sleep(0.5)
    assert any(needle in line for line in lines), f"{needle!r} not shown:\n" + "".join(lines)[-3000:]


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        out = subprocess.run(["pgrep", "-P", str(todo.pop())], capture_output=True, text=True).stdout.split()
        found += [int(p) for p in out]
        todo += out
    return found


def _stop(proc) -> None:
    children = _descendants(proc.pid)
    assert children, "the demo started no processes"
    proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
    assert proc.wait(timeout=90) == 0
    time.sleep(0.5)
    alive = [pid for pid in children if subprocess.run(["kill", "-0", str(pid)], capture_output=True).returncode == 0]
    assert alive == [], f"left running: {alive}"


def _log_in(base: str) -> str:
    """The staff API and the console both let the demo moderator in; returns the API token. (With the
    database locked, each waited out SQLite's 15-s busy timeout and answered 500.)"""
    login = requests.post(base + "/api/staff/v1/auth/login", json={"username": "moderator",
                                                                   "password": "renrenpai-demo"}, timeout=60)
    assert login.status_code == 200, login.text
    console = requests.Session()
    form = console.get(base + "/console/login", timeout=60)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    page = console.post(base + "/console/login", data={"csrf_token": csrf, "username": "moderator",
                                                       "password": "renrenpai-demo"}, timeout=60)
    assert page.status_code == 200 and page.url.startswith(base + "/console/") and "退出" in page.text, page.text[:500]
    return login.json()["token"]


@pytest.mark.timeout(2 * START_CEILING + 600)  # two starts of every process: a ceiling for a hang only
def test_demo_runs_everything_stops_everything_and_keeps_its_data(tmp_path):
    port, sandbox_port = free_port(), free_port()
    proc, lines = _start_demo(tmp_path, port, sandbox_port)
    try:
        text = "".join(lines)
        assert f"http://127.0.0.1:{port}/console/" in text and "renrenpai-demo" in text
        assert "demo tips: " in text and "already loaded" not in text
        base = f"http://127.0.0.1:{port}"
        assert requests.get(base + "/readyz", timeout=60).status_code == 200
        # every per-run file under the instance folder (issue 13): two demos in two folders never collide
        assert (tmp_path / "gunicorn.ctl").exists() and not (tmp_path / "home" / ".gunicorn").exists()
        assert f"state {tmp_path / 'wechat_sandbox.db'}" in text
        # the demo keeps /metrics open, and says so (production wants METRICS_TOKEN or METRICS_PUBLIC=1)
        assert f"{base}/metrics" in text and "open in the demo" in text
        assert requests.get(base + "/metrics", timeout=60).status_code == 200
        token = _log_in(base)
        claimed = requests.post(base + "/api/staff/v1/review/claim", headers={"Authorization": f"Bearer {token}"},
                                timeout=60)
        assert claimed.status_code == 200 and claimed.json()["status"] == "pending_review"
        assert requests.get(f"http://127.0.0.1:{sandbox_port}/__sandbox__/redpacks", timeout=60).json()["items"]
        # the phone page, printed beside the console, reaches the app: a demo resident sees their tips
        phone = f"http://127.0.0.1:{sandbox_port}/__sandbox__/phone/"
        assert phone in text and "人人拍" in requests.get(phone, timeout=60).text
        code = requests.post(f"http://127.0.0.1:{sandbox_port}/__sandbox__/codes", json={"openid": "demo-resident-01"},
                             timeout=60).json()["code"]
        resident = requests.post(phone + "api/auth/login", json={"code": code}, timeout=60).json()["token"]
        assert requests.get(phone + "api/tips", headers={"Authorization": f"Bearer {resident}"},
                            timeout=60).json()["items"]

        # the terminal reads like a product (issue 13): a line per event, the logs in instance/logs/ as JSON
        tip = claimed.json()
        decided = requests.post(f"{base}/api/staff/v1/tips/{tip['id']}/decision", timeout=60,
                                headers={"Authorization": f"Bearer {token}"},
                                json={"action": "approve", "category": tip["category"]["code"], "severity": 2})
        assert decided.status_code == 200, decided.text
        _wait_for(lines, f"报料 #{tip['id']} 审核通过（moderator）")
        _wait_for(lines, f"红包已发出：报料 #{tip['id']}，¥")  # paid by the worker through the sandbox
        assert not [line for line in lines if line.lstrip().startswith("{")], "JSON log lines on the terminal"
        assert len(lines) < 80, "".join(lines)
        for name in ("web", "worker", "sandbox", "demo"):
            log_lines = (tmp_path / "logs" / f"{name}.log").read_text(encoding="utf-8").splitlines()
            assert any(line.startswith("{") and json.loads(line).get("level") for line in log_lines), name
        # Enter shows the banner again
        banners = sum("Ctrl-C" in line for line in lines)
        proc.stdin.write("\n")
        proc.stdin.flush()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and sum("Ctrl-C" in line for line in lines) == banners:
            time.sleep(0.5)
        assert sum("Ctrl-C" in line for line in lines) == banners + 1
    finally:
        if proc.poll() is None:
            _stop(proc)
    assert not (tmp_path / "redis.sock").exists()

    proc, lines = _start_demo(tmp_path, port, sandbox_port)
    try:
        assert "already loaded" in "".join(lines)
        _log_in(f"http://127.0.0.1:{port}")
    finally:
        _kill(proc, tmp_path)


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False


def _kill(proc, instance: Path) -> None:
    """SIGKILL of the demo itself (issue 13): every process it started ends too (app/lifeline.py)."""
    children = _descendants(proc.pid)
    assert len(children) >= 4, children  # sandbox, gunicorn and its workers, flask worker and its children
    # the embedded Redis the demo started is a daemon (processes join it), so not a descendant: it ends too
    children.append(int((instance / "redis.pid").read_text()))
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 90  # gunicorn and the workers stop gracefully on the SIGTERM they get
    while time.monotonic() < deadline and any(_running(pid) for pid in children):
        time.sleep(0.5)
    left = [pid for pid in children if _running(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    from app.embedded import stop_embedded_redis

    stop_embedded_redis(instance)  # if it was left running (the assertion below says so)
    assert left == [], f"left running after the demo was killed: {left}"



def test_the_demo_pays_by_transfer(tmp_path):
    """`PAYOUT_CHANNEL=transfer python3 dev.py up`: the same demo paying by 商家转账 — the demo data's
    bills confirmed, lapsed or waiting; a new approval's bill waits for its resident, who confirms it
    (the wx.requestMerchantTransfer stand-in) and the result notification comes back to the demo's web."""
    port, sandbox_port = free_port(), free_port()
    proc, lines = _start_demo(tmp_path, port, sandbox_port, {"PAYOUT_CHANNEL": "transfer"})
    try:
        sandbox = f"http://127.0.0.1:{sandbox_port}/__sandbox__"
        bills = requests.get(sandbox + "/transfers", timeout=60).json()["items"]
        assert {b["state"] for b in bills} == {"WAIT_USER_CONFIRM", "SUCCESS", "FAIL"}
        assert requests.get(sandbox + "/redpacks", timeout=60).json()["items"] == []
        base = f"http://127.0.0.1:{port}"
        token = _log_in(base)
        tip = requests.post(base + "/api/staff/v1/review/claim", headers={"Authorization": f"Bearer {token}"},
                            timeout=60).json()
        decided = requests.post(f"{base}/api/staff/v1/tips/{tip['id']}/decision", timeout=60,
                                headers={"Authorization": f"Bearer {token}"},
                                json={"action": "approve", "category": tip["category"]["code"], "severity": 2})
        assert decided.status_code == 200, decided.text
        _wait_for(lines, f"商家转账已发起，等待居民确认收款：报料 #{tip['id']}，¥")
        bill = next(b for b in requests.get(sandbox + "/transfers", timeout=60).json()["items"]
                    if b["state"] == "WAIT_USER_CONFIRM" and b["create_time"] == max(
                        x["create_time"] for x in requests.get(sandbox + "/transfers", timeout=60).json()["items"]))
        assert requests.post(f"{sandbox}/transfers/{bill['out_bill_no']}/confirm", timeout=60).status_code == 200
        _wait_for(lines, "居民已确认收款：报料 #")
    finally:
        if proc.poll() is None:
            _stop(proc)
