"""Several hosts on one machine (issue 18 point 1): two web hosts (gunicorn, deploy/gunicorn.conf.py)
behind a real nginx running the project's deploy/nginx config, two `flask worker` hosts, one
PostgreSQL database, one Redis server (AOF on) and S3-compatible storage (moto's server). Each host is
its own process group with its own instance folder and HOST_NAME; HOST_COUNT=4 everywhere.

PostgreSQL is required whatever engine the suite runs on (SQLite cannot be shared by hosts, and the
app refuses it with HOST_COUNT > 1): DATABASE_URL's server, else the machine's on 127.0.0.1:5432
(CI has one), else the test fails saying so (tests/fixtures/postgres.py). Redis is a server of its
own on a free port — the test kills, restarts and flushes it. The cluster is built once for the
module (it takes minutes on a loaded machine) and the cases run in order against it.

WeChat is the sandbox on loopback; the residents' per-address limits are raised for the cluster, since
every test request comes from 127.0.0.1 through nginx (which appends X-Forwarded-For as deployed).
"""
from __future__ import annotations

import functools
import http.server
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path

import pytest
import redis as redis_lib
import requests

from app.demo_data import make_demo_photo
from tests.fixtures.postgres import create_database, drop_database, postgres_server
from tests.fixtures.sandbox import SandboxServer, free_port
from tests.test_journey import wait_for as journey_wait_for

ROOT = Path(__file__).resolve().parent.parent
HOME = (23.0205, 113.7518)
PASSWORD = "renrenpai-cluster"
PAY_RATE = 10          # calls/s: the app's shared limit and the sandbox's (WeChat's) alike
TRANSIENT = (429, 502, 503, 504)

# One process runs them all (`dev.py test` distributes with --dist loadgroup): one cluster, not one per
# xdist worker.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900), pytest.mark.xdist_group("cluster")]

# Every request of these tests comes from 127.0.0.1 through nginx: the per-address limits would
# count all "residents" as one phone.
WEB_OVERRIDES = {"MP_RATELIMIT_IP": "100000/minute", "MP_RATELIMIT_LOGIN_IP": "100000/minute",
                 "MP_RATELIMIT_RESIDENT": "100000/minute", "MP_RATELIMIT_PHOTOS": "100000/minute",
                 "MP_RATELIMIT_TIPS": "100000/minute"}


wait_for = functools.partial(journey_wait_for, interval=0.5)  # the journey's, polled twice as often


class Host:
    """One machine: a process group of its own, its own instance folder and HOST_NAME."""

    def __init__(self, cluster: "Cluster", name: str, command: list[str], env: dict):
        self.cluster, self.name, self.command = cluster, name, command
        self.folder = cluster.root / name
        (self.folder / "instance").mkdir(parents=True, exist_ok=True)
        self.env = {**env, "INSTANCE_PATH": str(self.folder / "instance"), "HOST_NAME": name}
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self):
        self.starts += 1
        log = open(self.folder / f"run-{self.starts}.log", "wb")
        self.proc = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal_group(self, sig):
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, timeout=40):
        """SIGTERM to the whole group (gunicorn drains its requests, workers finish their jobs)."""
        if not self.alive():
            return
        self.signal_group(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.signal_group(signal.SIGKILL)
            self.proc.wait()
        self._wait_group_gone()

    def kill(self):
        """SIGKILL to every process of the host at once: the machine is gone."""
        self.signal_group(signal.SIGKILL)
        self.proc.wait()
        self._wait_group_gone()

    def _wait_group_gone(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        self.signal_group(signal.SIGKILL)

    def log(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(self.folder.glob("run-*.log")))


class WebHost(Host):
    def __init__(self, cluster, name, env):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py",
                   f"app:create_app({WEB_OVERRIDES!r})"]
        super().__init__(cluster, name, command, {**env, "GUNICORN_BIND": f"127.0.0.1:{self.port}",
                                                  "GUNICORN_WORKERS": "1", "GUNICORN_THREADS": "4"})

    def wait_ready(self, timeout=240):
        def ready():
            assert self.alive(), f"{self.name} exited:\n{self.log()}"
            try:
                return requests.get(self.url + "/readyz", timeout=3).status_code == 200
            except requests.RequestException:
                return False
        wait_for(ready, timeout=timeout, what=f"{self.name} ready")
        return self


class WorkerHost(Host):
    def __init__(self, cluster, name, env):
        super().__init__(cluster, name, [sys.executable, "-m", "flask", "--app", "wsgi", "worker",
                                         "--rq-workers", "1", "--payout-workers", "1"], env)


class RedisServer:
    """redis-server of our own: appendonly yes (as docs/DEPLOY.md asks), restartable on its port."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
             "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--logfile",
             str(self.folder / "redis.log"), "--maxmemory-policy", "noeviction"], start_new_session=True)
        conn = redis_lib.Redis.from_url(self.url)
        wait_for(lambda: self._ping(conn), timeout=30, interval=0.1, what="redis")
        return self

    @staticmethod
    def _ping(conn):
        try:
            return conn.ping()
        except redis_lib.RedisError:
            return False

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Nginx:
    """Debian's nginx running deploy/nginx/renrenpai.conf, changed only where a test must: a loopback
    port without TLS, the two web hosts as the upstream, logs in the test's folder."""

    def __init__(self, folder: Path, upstreams: list[int]):
        self.folder = folder
        (folder / "tmp").mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        site = (ROOT / "deploy" / "nginx" / "renrenpai.conf").read_text()
        replacements = [
            ("server 127.0.0.1:8000;", "\n    ".join(f"server 127.0.0.1:{p};" for p in upstreams)),
            ("listen 443 ssl http2;", f"listen 127.0.0.1:{self.port};"),
            ("/var/log/nginx/access.log", str(folder / "access.log")),
        ]
        for old, new in replacements:
            assert old in site, f"deploy/nginx/renrenpai.conf no longer has {old!r}: update tests/test_cluster.py"
            site = site.replace(old, new)
        (folder / "renrenpai.conf").write_text(site)
        tmp = folder / "tmp"
        (folder / "nginx.conf").write_text(
            ("user root;\n" if os.geteuid() == 0 else "")
            + f"daemon off;\nworker_processes 1;\npid {folder / 'nginx.pid'};\nerror_log {folder / 'error.log'} warn;\n"
            "events { worker_connections 512; }\n"
            "http {\n"
            f"  access_log {folder / 'access.log'};\n"
            + "".join(f"  {kind}_temp_path {tmp / kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi",
                                                                         "scgi"))
            + f"  include {folder / 'renrenpai.conf'};\n"
            "}\n")
        binary = "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else "nginx"
        self.proc = subprocess.Popen([binary, "-p", str(folder), "-e", str(folder / "error.log"),
                                      "-c", str(folder / "nginx.conf")], start_new_session=True,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def wait_ready(self):
        def ready():
            assert self.proc.poll() is None, (self.folder / "error.log").read_text(errors="replace")
            try:
                return requests.get(self.url + "/healthz", timeout=3).status_code == 200
            except requests.RequestException:
                return False
        wait_for(ready, timeout=60, what="nginx")
        return self

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


class WebhookReceiver:
    """The city's grid system: records every delivered event id (2xx at once)."""

    def __init__(self):
        self.events: list[dict] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.events.append({"id": self.headers.get("X-RRP-Event-Id"), "body": json.loads(body)})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def hazard_ids(self) -> set[int]:
        return {event["body"]["hazard"]["id"] for event in list(self.events)}


class Cluster:
    def __init__(self, root: Path, moto_endpoint: str):
        self.root = root
        self.timings: dict[str, float] = {}
        started = time.monotonic()
        self.pg_server = postgres_server()
        self.db_name = f"rrp_cluster_{os.getpid()}"
        self.database_url = create_database(self.pg_server, self.db_name).render_as_string(hide_password=False)
        self.redis = RedisServer(root / "redis").start()
        self.sandbox = SandboxServer(root / "sandbox-state.db").start()
        self.sandbox.configure(pay_rate_limit=PAY_RATE)
        self.bucket = self._make_bucket(moto_endpoint)
        self.webhooks = WebhookReceiver()
        web_ports = [free_port(), free_port()]
        self.nginx = Nginx(root / "nginx", web_ports)
        self.env = self._host_env(moto_endpoint)
        self._init_database()
        self.web = [WebHost(self, name, self.env) for name in ("web-a", "web-b")]
        for host, port in zip(self.web, web_ports):  # nginx's upstream names these ports
            host.port, host.url = port, f"http://127.0.0.1:{port}"
            host.env["GUNICORN_BIND"] = f"127.0.0.1:{port}"
        self.workers = [WorkerHost(self, name, self.env) for name in ("worker-1", "worker-2")]
        for host in [*self.web, *self.workers]:
            host.start()
        for host in self.web:
            host.wait_ready()
        self.nginx.wait_ready()
        wait_for(lambda: all(h.alive() for h in self.workers) and self.redis_conn().get("periodic:outbox.relay"),
                 timeout=240, what="a worker host's clock")
        self.timings["setup_s"] = time.monotonic() - started
        self.app = self._make_app()
        self.http = requests.Session()

    # --- building it ------------------------------------------------------------------------------
    def _make_bucket(self, endpoint):
        import boto3

        name = f"rrp-cluster-{time.time_ns()}"
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                     aws_secret_access_key="testing").create_bucket(Bucket=name)
        return f"s3://{name}/media?endpoint_url={endpoint}&region=us-east-1&addressing_style=path"

    def _host_env(self, moto_endpoint):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PYTEST_", "DATABASE_", "REDIS_URL", "MEDIA_STORAGE", "AWS_", "HOST_"))}
        env.update({
            "APP_ENV": "development", "HOST_COUNT": "4", "PYTHONPATH": str(ROOT),
            "DATABASE_URL": self.database_url, "REDIS_URL": self.redis.url, "MEDIA_STORAGE": self.bucket,
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
            "WECHAT_API_BASE": self.sandbox.url + "/", "WECHAT_PAY_API_BASE": self.sandbox.url + "/",
            "WECHAT_TIMEOUT": "5", "PUBLIC_BASE_URL": self.nginx.url,
            "WECHAT_PUSH_URL": self.nginx.url + "/wechat/push",
            "WECHAT_PAY_RATE_LIMIT": str(PAY_RATE), "OUTBOX_LEASE_SECONDS": "3",
            "REWARDS_SWEEP_INTERVAL": "5", "REWARDS_CHECK_SCHEDULE": "wechat",
            "TIPS_PER_RESIDENT_PER_DAY": "100000", "LOG_LEVEL": "WARNING", "LOG_JSON": "0",
        })
        self.sandbox.configure(push_url=env["WECHAT_PUSH_URL"])
        return env

    def _init_database(self):
        started = time.monotonic()
        self.flask("init")
        self.flask("hazards", "webhook-add", "--url", self.webhooks.url, "--secret", "cluster-webhook-secret")
        for username, role in (("mod", "moderator"), ("cash", "finance")):
            self.flask("staff", "create", "--username", username, "--password", PASSWORD, "--role", role)
        self.timings["init_s"] = time.monotonic() - started

    def _make_app(self):
        from app import create_app

        return create_app({"APP_ENV": "testing", "INSTANCE_PATH": str(self.root / "test-instance"),
                           "SQLALCHEMY_DATABASE_URI": self.database_url, "REDIS_URL": self.redis.url,
                           "MEDIA_STORAGE": self.bucket, "LOG_JSON": False, "LOG_LEVEL": "WARNING"})

    def flask(self, *args, env=None, check=True) -> subprocess.CompletedProcess:
        result = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args], cwd=ROOT,
                                env={**self.env, "INSTANCE_PATH": str(self.root / "cli-instance"), "HOST_NAME": "cli",
                                     **(env or {})}, capture_output=True, text=True, timeout=300)
        if check:
            assert result.returncode == 0, f"flask {' '.join(args)}: {result.stdout}\n{result.stderr}"
        return result

    def redis_conn(self):
        return redis_lib.Redis.from_url(self.redis.url, socket_timeout=5)

    def close(self):
        for host in [*getattr(self, "workers", []), *getattr(self, "web", [])]:
            host.stop(timeout=20)
        if hasattr(self, "nginx"):
            self.nginx.stop()
        self.sandbox.stop()
        self.redis.kill()
        self.webhooks.server.shutdown()
        drop_database(self.pg_server, self.db_name)

    # --- talking to it ----------------------------------------------------------------------------
    def call(self, method, path, token=None, expect=200, base=None, **kwargs):
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        reply = self.http.request(method, (base or self.nginx.url) + path, headers=headers, timeout=60, **kwargs)
        expected = expect if isinstance(expect, tuple) else (expect,)
        assert reply.status_code in expected, f"{method} {path}: {reply.status_code} {reply.text[:500]}"
        ctype = reply.headers.get("Content-Type", "")
        return reply.json() if reply.content and ctype.startswith("application/json") else reply

    def staff_token(self, username="mod", base=None) -> str:
        return self.call("POST", "/api/staff/v1/auth/login", base=base,
                         json={"username": username, "password": PASSWORD})["token"]


_photo_seeds = itertools.count(100)
_places = itertools.count()


def new_place() -> tuple[float, float]:
    """Points ~200 m apart in 东城街道: each report its own hazard (a second report of one is not rewarded)."""
    n = next(_places)
    return HOME[0] + (n % 5) * 0.002, HOME[1] + (n // 5 % 5) * 0.002


class Resident:
    def __init__(self, cluster: Cluster, openid: str | None = None, base: str | None = None):
        self.cluster = cluster
        self.openid = openid or f"o-cluster-{uuid.uuid4().hex[:12]}"
        self.login(base)

    def login(self, base=None):
        code = self.cluster.sandbox.login_code(self.openid)
        answer = self.cluster.call("POST", "/api/mp/v1/auth/login", base=base, json={"code": code})
        self.token, self.id = answer["token"], answer["resident"]["id"]

    def call(self, method, path, base=None, **kwargs):
        return self.cluster.call(method, "/api/mp/v1" + path, token=self.token, base=base, **kwargs)

    def upload(self, jpeg=None, base=None) -> dict:
        jpeg = jpeg or make_demo_photo(seed=next(_photo_seeds))
        return self.call("POST", "/photos", base=base, expect=201, files={"file": ("photo.jpg", jpeg, "image/jpeg")})

    def report(self, base=None, photo_id=None) -> int:
        lat, lng = new_place()
        body = {"category": "ebike_indoor_charging", "description": "楼道里有电动车在充电",
                "location": {"lat": lat, "lng": lng, "coord": "wgs84"},
                "photo_ids": [photo_id or self.upload(base=base)["id"]]}
        return self.call("POST", "/tips", base=base, expect=201, json=body,
                         headers={"Idempotency-Key": str(uuid.uuid4())})["id"]

    def tip(self, tip_id, base=None):
        return self.call("GET", f"/tips/{tip_id}", base=base)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, moto_endpoint):
    running = None
    try:
        running = Cluster(tmp_path_factory.mktemp("cluster"), moto_endpoint)
        yield running
    finally:
        if running is not None:
            print(f"\ncluster timings (s): {running.timings}")  # for docs/SCALE.md; shown with -s
            running.close()


# --- helpers over the database ----------------------------------------------------------------------

def payouts_by_reward(cluster, payout_ids) -> dict[int, object]:
    from app.extensions import db
    from rewards.models import Payout

    with cluster.app.app_context():
        rows = db.session.query(Payout).filter(Payout.id.in_(list(payout_ids))).all()
        found = {p.id: (p.status, p.mch_billno) for p in rows}
        db.session.remove()
    return found


def fund(cluster):
    from app.extensions import db
    from tests.rewards.helpers import fund as fund_period

    with cluster.app.app_context():
        fund_period(amount_fen=100_000_000)
        db.session.remove()


def make_payouts(cluster, count) -> list[int]:
    """`count` approved tips with their rewards, made in-process on the cluster's database: the
    payout jobs go to the shared Redis and the worker hosts take them at once."""
    from tests.rewards.helpers import approve, fund, make_resident, make_tip

    with cluster.app.app_context():
        fund(amount_fen=100_000_000)
        ids = [approve(make_tip(make_resident()))["id"] for _ in range(count)]
        from app.extensions import db

        db.session.remove()
    return ids


def assert_money_clean(cluster):
    from tests.rewards.helpers import assert_books_hold, assert_sandbox_matches_ledger

    with cluster.app.app_context():
        assert_books_hold()
        assert_sandbox_matches_ledger(cluster.sandbox)
    billnos = [p["mch_billno"] for p in cluster.sandbox.redpacks()]
    assert len(billnos) == len(set(billnos)), "a packet was paid twice"
    printed = cluster.flask("rewards", "check")
    assert printed.returncode == 0, printed.stdout + printed.stderr


def wait_all_sent(cluster, payout_ids, timeout):
    last = {}

    def done():
        states = payouts_by_reward(cluster, payout_ids)
        last["not_sent"] = {pid: s for pid, s in states.items() if s[0] != "sent"}
        return len(states) == len(payout_ids) and not last["not_sent"]
    try:
        wait_for(done, timeout=timeout, interval=1.0, what="every payout sent")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; not sent: {dict(list(last['not_sent'].items())[:10])}; "
                             f"worker hosts: {[(h.name, h.alive()) for h in cluster.workers]}") from None


def lock_runs(cluster, seconds) -> list[tuple[str, int, datetime]]:
    """Every run of the outbox relay seen in `seconds`: the periodic lock's values, "host pid time"."""
    conn = cluster.redis_conn()
    seen, runs = set(), []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = conn.get("periodic:outbox.relay")
        if value and value not in seen:
            seen.add(value)
            host, pid, moment = value.decode().split(" ")
            runs.append((host, int(pid), datetime.fromisoformat(moment)))
        time.sleep(0.03)
    return runs


def restart_worker_host(cluster, host):
    host.start()
    wait_for(lambda: host.alive() and any(r[0] == host.name for r in lock_runs(cluster, 3)) or not host.alive(),
             timeout=240, what=f"{host.name}'s clock running again")
    assert host.alive(), host.log()


# --- the cases, in order ------------------------------------------------------------------------------

def test_photo_session_and_token_work_on_either_web_host(cluster):
    a, b = cluster.web
    alice = Resident(cluster, base=a.url)                     # token issued by host A
    photo = alice.upload(base=a.url)                          # stored through host A
    tip_id = alice.report(base=b.url, photo_id=photo["id"])   # host B sees A's photo row
    shown = alice.tip(tip_id, base=b.url)                     # and signs URLs for A's object
    url = shown["photos"][0]["thumb_url"]
    got = requests.get(url, timeout=30)
    assert got.status_code == 200 and got.content[:3] == b"\xff\xd8\xff", (url, got.status_code)
    assert alice.call("GET", "/tips", base=b.url)["items"][0]["id"] == tip_id

    # a console session begun on host A carries on on host B
    console = requests.Session()
    form = console.get(a.url + "/console/login", timeout=30).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    signed_in = console.post(a.url + "/console/login", data={"csrf_token": csrf, "username": "mod",
                                                             "password": PASSWORD}, timeout=30, allow_redirects=False)
    assert signed_in.status_code in (302, 303), signed_in.text[:300]
    page = console.get(b.url + "/console/", timeout=30)   # the moderator's first page, not the login form
    assert page.status_code == 200 and "/console/login" not in page.url, (page.status_code, page.url)
    assert all(r.url.startswith(b.url) for r in [*page.history, page])

    # a staff API token too
    token = cluster.staff_token(base=a.url)
    assert "items" in cluster.call("GET", "/api/staff/v1/review/queue", token=token, base=b.url)

    # a host configured with a local photo folder refuses to start among several
    refused = subprocess.run([sys.executable, "-c", "import wsgi"], cwd=ROOT, capture_output=True, text=True,
                             timeout=120, env={**cluster.env, "MEDIA_STORAGE": str(cluster.root / "local-media"),
                                               "INSTANCE_PATH": str(cluster.root / "refused")})
    assert refused.returncode != 0
    assert "HOST_COUNT=4" in refused.stderr and "本机文件夹" in refused.stderr, refused.stderr[-1000:]


def test_periodic_work_runs_once_per_interval_and_survives_sigkill_of_its_holder(cluster):
    runs = lock_runs(cluster, 8)
    assert len(runs) >= 4, runs  # every 1 s
    moments = [r[2] for r in runs]
    gaps = [(later - earlier).total_seconds() for earlier, later in zip(moments, moments[1:])]
    assert min(gaps) >= 0.9, gaps  # once per interval across both clocks (the lock lives 950 ms)

    holder_name = runs[-1][0]
    holder = next(h for h in cluster.workers if h.name == holder_name)
    other = next(h for h in cluster.workers if h is not holder)
    killed_at = datetime.now().astimezone()
    holder.kill()
    after = [r for r in lock_runs(cluster, 8) if r[2] > killed_at]
    assert len(after) >= 3, after
    assert {r[0] for r in after} == {other.name}
    first = min(r[2] for r in after)
    assert (first - killed_at).total_seconds() < 5.0, (killed_at, after[:3])  # the lock lives < 1 s
    moments = [r[2] for r in after]
    assert min((b - a).total_seconds() for a, b in zip(moments, moments[1:])) >= 0.9
    restart_worker_host(cluster, holder)


def test_pay_rate_limit_holds_across_worker_hosts(cluster):
    before = cluster.sandbox.stats()["pay_freq_limited"]
    started = time.monotonic()
    ids = make_payouts(cluster, 60)
    wait_all_sent(cluster, ids, timeout=300)
    elapsed = time.monotonic() - started
    cluster.timings["pay_60_s"] = elapsed
    assert cluster.sandbox.stats()["pay_freq_limited"] == before, "the sandbox refused a call over its limit"
    assert elapsed >= 60 / PAY_RATE - 1.5  # the limit was the pace
    assert_money_clean(cluster)


def test_killing_a_worker_host_mid_payout_pays_nothing_twice(cluster):
    ids = make_payouts(cluster, 40)
    victim = cluster.workers[0]
    wait_for(lambda: sum(s[0] == "sent" for s in payouts_by_reward(cluster, ids).values()) >= 8,
             timeout=300, interval=0.2, what="payouts under way")
    victim.kill()
    started = time.monotonic()
    wait_all_sent(cluster, ids, timeout=600)
    cluster.timings["finish_after_kill_s"] = time.monotonic() - started
    assert_money_clean(cluster)
    restart_worker_host(cluster, victim)


@pytest.mark.parametrize("loss", ["restart", "flush"])
def test_redis_lost_loses_no_tip_payout_or_webhook(cluster, loss):
    fund(cluster)
    residents = [Resident(cluster) for _ in range(2)]
    early = [r.report() for r in residents]
    for resident, tip_id in zip(residents, early):
        wait_for(lambda: resident.tip(tip_id)["status"] == "pending_review", timeout=240,
                 what=f"tip {tip_id} checked")
    for host in cluster.workers:  # nothing drains: whatever is queued now is only in Redis and the outbox
        host.stop()
    mod = cluster.staff_token()
    decided = []
    while True:
        claimed = cluster.call("POST", "/api/staff/v1/review/claim", token=mod, expect=(200, 204))
        if not isinstance(claimed, dict):
            break
        decision = cluster.call("POST", f"/api/staff/v1/tips/{claimed['id']}/decision", token=mod,
                                json={"action": "approve", "category": "ebike_indoor_charging", "severity": 2})
        decided.append(decision)
    assert {t for t in early} <= {d["tip"]["id"] for d in decided}
    late = [r.report() for r in residents]   # their intake jobs wait in Redis

    if loss == "restart":
        cluster.redis.kill()                 # SIGKILL; the AOF has what was fsynced
        cluster.redis.start()
    else:
        cluster.redis_conn().flushall()
    for host in cluster.workers:
        host.start()

    # a second report of the same hazard is not rewarded (not_granted): nothing to pay there
    payout_ids = [d["reward"]["id"] for d in decided if d.get("reward") and d["reward"]["status"] != "not_granted"]
    hazard_ids = {d["hazard"]["id"] for d in decided if d.get("hazard")}
    assert payout_ids and hazard_ids
    wait_all_sent(cluster, payout_ids, timeout=300)
    wait_for(lambda: hazard_ids <= cluster.webhooks.hazard_ids(), timeout=300, what="a webhook for every new ticket")
    for resident in residents:               # a new login, in case the loss took a session with it
        resident.login()
    for resident, tip_id in zip(residents, late):
        wait_for(lambda: resident.tip(tip_id)["status"] == "pending_review", timeout=300,
                 what=f"tip {tip_id} checked after the loss")
    assert_money_clean(cluster)


def test_rolling_restart_of_the_web_hosts_loses_no_tip(cluster):
    residents = [Resident(cluster) for _ in range(3)]
    photos = [make_demo_photo(seed=500 + i) for i in range(6)]
    sent: dict[str, tuple[int, int]] = {}   # Idempotency-Key -> (resident, tip id)
    retries, failures = [0], []
    stop = threading.Event()
    session = requests.Session()

    def post(resident, path, **kwargs):
        """The mini-program's client: a transient failure is retried, with the same Idempotency-Key."""
        headers = {"Authorization": f"Bearer {resident.token}", **kwargs.pop("headers", {})}
        for _attempt in range(60):
            try:
                reply = session.post(cluster.nginx.url + "/api/mp/v1" + path, timeout=30, headers=headers, **kwargs)
            except requests.RequestException:
                retries[0] += 1
                time.sleep(0.2)
                continue
            if reply.status_code in TRANSIENT:
                retries[0] += 1
                time.sleep(float(reply.headers.get("Retry-After") or 0.2))
                continue
            return reply
        raise AssertionError(f"{path}: no answer after 60 tries")

    def stream():
        for n in itertools.count():
            if stop.is_set():
                return
            resident = residents[n % len(residents)]
            try:
                upload = post(resident, "/photos", files={"file": ("p.jpg", photos[n % len(photos)], "image/jpeg")})
                assert upload.status_code == 201, upload.text[:300]
                key = str(uuid.uuid4())
                body = {"category": "ebike_indoor_charging", "description": f"第 {n} 条",
                        "location": {"lat": HOME[0], "lng": HOME[1], "coord": "wgs84"},
                        "photo_ids": [upload.json()["id"]]}
                reply = post(resident, "/tips", json=body, headers={"Idempotency-Key": key})
                assert reply.status_code in (200, 201), reply.text[:300]
                sent[key] = (resident.id, reply.json()["id"])
            except Exception as exc:  # noqa: BLE001 - reported by the test
                failures.append(repr(exc))
                return
            time.sleep(0.1)

    thread = threading.Thread(target=stream, daemon=True)
    thread.start()
    time.sleep(3)
    for host in cluster.web:                   # one at a time: the other carries the stream meanwhile
        before = len(sent)
        host.stop()
        time.sleep(1)
        host.start().wait_ready()
        wait_for(lambda: len(sent) > before + 2 or failures, timeout=120, what="tips flowing again")
    time.sleep(2)
    stop.set()
    thread.join(timeout=120)
    assert not failures, failures
    assert len(sent) >= 10, len(sent)

    from app.extensions import db
    from app.models.tip import Tip

    with cluster.app.app_context():
        rows = db.session.query(Tip.idempotency_key, Tip.id).filter(
            Tip.resident_id.in_([r.id for r in residents])).all()
        db.session.remove()
    stored = {key: tip_id for key, tip_id in rows}
    assert len(rows) == len(sent), (len(rows), len(sent))           # none double-created
    assert {k: v[1] for k, v in sent.items()} == stored              # none lost, each key its one tip
    cluster.timings["rolling_tips"] = len(sent)
    cluster.timings["rolling_retries"] = retries[0]
