"""The whole journey of docs/DESIGN.md §Flow, through the HTTP APIs only, against real processes.

gunicorn serves the app, `flask worker` runs every queue with the clock (outbox relay, sweeper), and
the WeChat sandbox is the other side of every WeChat call — all on loopback, on the test database
and Redis (PostgreSQL + Redis in CI, SQLite + embedded Redis on the embedded default). The test
talks to nothing but their HTTP interfaces (and one operator command to make a department key).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from datetime import time as dt_time
from pathlib import Path

import pytest
import requests
from app.demo_data import make_demo_photo, recompress_photo
from tests.fixtures.sandbox import free_port

ROOT = Path(__file__).resolve().parent.parent
SHANGHAI = timezone(timedelta(hours=8))
# A street in 东城街道 and points a few metres away (WGS-84; the API also takes gcj02).
HOME = (23.0205, 113.7518)
NEAR_HOME = (23.02062, 113.75188)      # about 15 m away: "nearby" for a venue hazard (50 m)
ELSEWHERE = (23.0469, 113.7446)        # a few km north

pytestmark = pytest.mark.slow


# --- the running system ---------------------------------------------------------------------------

class System:
    """Web (gunicorn) + worker processes on free ports, with the sandbox; HTTP helpers."""

    def __init__(self, env: dict, sandbox, channel: str = "redpack"):
        self.sandbox = sandbox
        self.channel = channel
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {**env, "PAYOUT_CHANNEL": channel,
                    "WECHAT_TRANSFER_NOTIFY_URL": self.base + "/wechat/pay/transfer-notify",
                    "WECHAT_API_BASE": sandbox.url + "/", "WECHAT_PAY_API_BASE": sandbox.url + "/",
                    "PUBLIC_BASE_URL": self.base, "WECHAT_PUSH_URL": self.base + "/wechat/push",
                    # the clock's sweeps run every couple of seconds so the journey takes seconds
                    "REWARDS_SWEEP_INTERVAL": "2",
                    "LOG_LEVEL": "WARNING"}
        self.processes: list[subprocess.Popen] = []
        self.http = requests.Session()

    def start(self):
        self.sandbox.configure(push_url=self.env["WECHAT_PUSH_URL"])
        self._spawn([sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{self.port}", "--workers", "2",
                     "--threads", "4", "--timeout", "60", "wsgi:app"])
        self._spawn([sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--rq-workers", "2"])
        wait_for(lambda: self._ready(), timeout=60, what="web server ready")
        return self

    def _spawn(self, cmd):
        log = open(os.devnull, "wb")
        self.processes.append(subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                               start_new_session=True))

    def _ready(self):
        try:
            return self.http.get(self.base + "/readyz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def stop(self):
        for proc in self.processes:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.processes:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)

    def call(self, method, path, token=None, expect=200, **kwargs):
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        reply = self.http.request(method, self.base + path, headers=headers, timeout=30, **kwargs)
        expected = expect if isinstance(expect, tuple) else (expect,)
        assert reply.status_code in expected, f"{method} {path}: {reply.status_code} {reply.text[:500]}"
        return reply.json() if reply.content and reply.headers.get("Content-Type", "").startswith("application/json") \
            else reply

    def flask(self, *args, env=None) -> str:
        result = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args], cwd=ROOT,
                                env={**self.env, **(env or {})},
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"flask {' '.join(args)}: {result.stdout}\n{result.stderr}"
        return result.stdout


def wait_for(probe, timeout=60.0, interval=1.0, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


@pytest.fixture(params=["redpack", "transfer"])
def system(request, subprocess_env, wechat_sandbox, reference_data, db):
    """The running system paying by red packet or by 商家转账 (PAYOUT_CHANNEL)."""
    running = System(subprocess_env, wechat_sandbox, channel=request.param)
    try:
        yield running.start()
    finally:
        running.stop()


# --- actors -------------------------------------------------------------------------------------

class Resident:
    def __init__(self, system: System, openid: str):
        self.system, self.openid = system, openid
        code = system.sandbox.login_code(openid)
        answer = system.call("POST", "/api/mp/v1/auth/login", json={"code": code})
        self.token = answer["token"]
        self.id = answer["resident"]["id"]

    def call(self, method, path, **kwargs):
        return self.system.call(method, "/api/mp/v1" + path, token=self.token, **kwargs)

    def upload(self, jpeg: bytes) -> int:
        answer = self.call("POST", "/photos", expect=201, files={"file": ("photo.jpg", jpeg, "image/jpeg")})
        return answer["id"]

    def report(self, category, point, photos, description) -> int:
        body = {"category": category, "description": description,
                "location": {"lat": point[0], "lng": point[1], "coord": "wgs84"},
                "photo_ids": [self.upload(p) for p in photos]}
        key = str(uuid.uuid4())
        tip = self.call("POST", "/tips", expect=201, json=body, headers={"Idempotency-Key": key})
        # a flaky network resends the same request: the same tip comes back
        again = self.call("POST", "/tips", expect=200, json=body, headers={"Idempotency-Key": key})
        assert again["id"] == tip["id"]
        return tip["id"]

    def tip(self, tip_id):
        return self.call("GET", f"/tips/{tip_id}")

    def rewards(self):
        return self.call("GET", "/rewards")["items"]


def staff_login(system: System, username: str, password: str = "renrenpai-demo") -> str:
    return system.call("POST", "/api/staff/v1/auth/login", json={"username": username, "password": password})["token"]


def statuses(timeline) -> list[str]:
    return [entry["status"] for entry in timeline]


# --- the journey ----------------------------------------------------------------------------------

def test_the_whole_journey(system):
    sandbox = system.sandbox
    for username, role in (("mod", "moderator"), ("boss", "supervisor"), ("cash", "finance"), ("cash2", "finance")):
        system.flask("staff", "create", "--username", username, "--password", "renrenpai-demo", "--role", role)
    dept_key = system.flask("dept-key", "create", "--department", "fire").strip().splitlines()[-1].split()[-1]
    # finance tops up this month's red-packet budget under dual control: one asks, another approves
    cash = staff_login(system, "cash")
    month = datetime.now(SHANGHAI).strftime("%Y-%m")
    asked = system.call("POST", "/api/staff/v1/finance/requests", token=cash, expect=201,
                        json={"kind": "topup", "payload": {"period": month, "amount_fen": 100_000}})
    system.call("POST", f"/api/staff/v1/finance/requests/{asked['id']}/decision", token=staff_login(system, "cash2"),
                json={"approve": True})

    # 1. A resident reports an e-bike charging in a stairwell; a neighbour forwards the same photo.
    photo = make_demo_photo(seed=1)
    alice = Resident(system, "o-journey-alice")
    bob = Resident(system, "o-journey-bob")
    carol = Resident(system, "o-journey-carol")
    first = alice.report("ebike_indoor_charging", HOME, [photo, make_demo_photo(seed=2)], "楼道里有电动车在充电，很危险")
    second = bob.report("ebike_indoor_charging", NEAR_HOME, [recompress_photo(photo)], "三楼楼梯间电动车充电")
    third = carol.report("rental_unsafe", ELSEWHERE, [make_demo_photo(seed=3)], "出租屋窗户全部焊死了防盗网，没有逃生口")

    # 2. The intake checks run in the worker: every tip waits for a moderator.
    for resident, tip_id in ((alice, first), (bob, second), (carol, third)):
        wait_for(lambda: resident.tip(tip_id)["status"] == "pending_review", timeout=90,
                 what=f"tip {tip_id} pending_review")

    # 3. The moderator claims the oldest first and approves it; the copy is a duplicate of it.
    mod = staff_login(system, "mod")
    claimed = system.call("POST", "/api/staff/v1/review/claim", token=mod)
    assert claimed["id"] == first and claimed["lease_until"]
    decision = system.call("POST", f"/api/staff/v1/tips/{first}/decision", token=mod,
                           json={"action": "approve", "category": "ebike_indoor_charging", "severity": 2})
    assert decision["tip"]["status"] == "accepted"
    hazard_id = decision["hazard"]["id"]
    assert decision["reward"]["amount_fen"] == 1000  # the catalogue's reward for severity 2

    claimed = system.call("POST", "/api/staff/v1/review/claim", token=mod)
    assert claimed["id"] == second
    assert any(c["tip_id"] == first and c["kind"] == "photo" for c in claimed["candidates"]), claimed["candidates"]
    decision = system.call("POST", f"/api/staff/v1/tips/{second}/decision", token=mod,
                           json={"action": "duplicate", "duplicate_of": {"tip_id": first},
                                 "message": "该隐患已有人上报，感谢您的关注"})
    assert decision["tip"]["status"] == "duplicate" and decision["reward"] is None

    claimed = system.call("POST", "/api/staff/v1/review/claim", token=mod)
    assert claimed["id"] == third
    decision = system.call("POST", f"/api/staff/v1/tips/{third}/decision", token=mod,
                           json={"action": "approve", "category": "rental_unsafe", "severity": 1})
    third_reward = decision["reward"]["amount_fen"]
    assert third_reward == 500
    assert system.call("POST", "/api/staff/v1/review/claim", token=mod, expect=204).status_code == 204

    # 4. The ticket reaches the fire department, which handles it; a supervisor verifies and closes.
    tickets = system.call("GET", "/api/dept/v1/tickets", headers={"X-Api-Key": dept_key})["items"]
    ticket = next(t for t in tickets if t["id"] == hazard_id)
    assert "openid" not in str(ticket) and "o-journey" not in str(tickets)
    system.call("POST", f"/api/dept/v1/tickets/{hazard_id}/ack", headers={"X-Api-Key": dept_key})
    system.call("POST", f"/api/dept/v1/tickets/{hazard_id}/resolve", headers={"X-Api-Key": dept_key},
                json={"note": "已劝离电动车并张贴禁止充电告示", "photo_ids": []})
    boss = staff_login(system, "boss")
    system.call("POST", f"/api/staff/v1/hazards/{hazard_id}/transition", token=boss,
                json={"to": "verified", "note": "现场复核已整改"})
    system.call("POST", f"/api/staff/v1/hazards/{hazard_id}/transition", token=boss,
                json={"to": "closed", "note": "结案"})

    # 5. The reward goes out; Alice takes it in WeChat and sees it claimed: she opens the red packet,
    # or (商家转账) confirms receipt with wx.requestMerchantTransfer and the parameters the API gave.
    transfer = system.channel == "transfer"
    waiting = "waiting_confirm" if transfer else "sent"
    sent = wait_for(lambda: [r for r in alice.rewards() if r["status"] == waiting], timeout=90, what="reward sent")
    assert sent[0]["tip_id"] == first
    payouts = system.call("GET", "/api/staff/v1/finance/payouts", token=cash)["items"]
    billno = {p["tip_id"]: p["mch_billno"] for p in payouts}
    assert set(billno) == {first, third}
    assert {p["channel"] for p in payouts} == {system.channel}
    if transfer:
        assert set(sent[0]["transfer"]) == {"mch_id", "app_id", "package"} and sent[0]["package"] is None
        assert {p["out_bill_no"] for p in payouts} == set(billno.values())
        confirmed = requests.post(f"{sandbox.url}/__sandbox__/client/transfers/confirm",
                                  json={**sent[0]["transfer"], "openid": alice.openid}, timeout=10)
        assert confirmed.status_code == 200, confirmed.text
    else:
        assert sent[0]["package"]
        sandbox.claim(billno[first])
    wait_for(lambda: [r for r in alice.rewards() if r["status"] == "claimed"], timeout=60, what="reward claimed")

    # 6. Carol never takes hers: once its 24 h run out WeChat refunds the packet (or closes the
    # transfer bill, OVERDUE_CLOSE) and the ledger shows it, the amount back in the budget.
    # (The sandbox lets it lapse now rather than jumping its clock, so both sides date it today.)
    wait_for(lambda: [r for r in carol.rewards() if r["status"] == waiting], timeout=60, what="carol's reward sent")
    if transfer:
        assert sandbox.expire_transfer(billno[third])["state"] == "FAIL"
    else:
        assert sandbox.expire(billno[third])["status"] == "REFUND"
    lapsed = "cancelled" if transfer else "refunded"
    wait_for(lambda: [r for r in carol.rewards() if r["status"] == lapsed], timeout=60, what=lapsed)
    today = datetime.now(SHANGHAI).date().isoformat()
    tomorrow = (datetime.now(SHANGHAI).date() + timedelta(days=1)).isoformat()
    summary = system.call("GET", f"/api/staff/v1/finance/summary?from={today}&to={today}", token=cash)
    assert summary["refunded_fen"] == (0 if transfer else third_reward)
    assert summary["claimed_fen"] == 1000
    assert summary["in_flight_fen"] == 0

    # 7. The next morning, once WeChat has made the day's fund-flow bill, finance reconciles the
    # day: nothing out of place. Today's bill does not exist yet, so the API refuses today.
    refused = system.call("POST", "/api/staff/v1/finance/reconciliations", token=cash, json={"date": today},
                          expect=422)
    assert refused["error"]["code"] == "bill_not_ready"
    next_morning = datetime.combine(date.fromisoformat(tomorrow), dt_time(11, 0), SHANGHAI).isoformat()
    sandbox.set_clock(datetime.fromisoformat(next_morning))  # WeChat has made the bill by then
    printed = system.flask("rewards", "reconcile", "--date", today, env={"APP_CLOCK": next_morning})
    sandbox.set_clock(None)
    assert today in printed
    result = system.call("GET", f"/api/staff/v1/finance/reconciliations/{today}", token=cash)
    assert result["status"] == "done", result
    assert result["exceptions"] == [] and result["matched"] >= (1 if transfer else 2)
    assert "ok" in system.flask("rewards", "check").lower()

    # 8. What each resident sees: every step of their tip, the hazard's progress, the packet.
    mine = alice.tip(first)
    steps = statuses(mine["timeline"])
    for step in ("received", "pending_review", "accepted"):
        assert step in steps, steps
    assert mine["hazard"]["id"] == hazard_id and mine["hazard"]["status"] == "closed"
    assert any("resolved" in s or "closed" in s for s in steps), steps
    assert mine["reward"]["status"] == "claimed"
    copy = bob.tip(second)
    assert copy["status"] == "duplicate" and copy["duplicate_of"] in ({"tip_id": first}, {"hazard_id": hazard_id})
    assert bob.rewards() == []
    # the reporters were told: accepted, resolved, closed reach Alice as subscribe messages
    assert [m for m in sandbox.messages() if m.get("openid") == "o-journey-alice"]
