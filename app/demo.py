"""`flask demo`: the whole system on the embedded default, with demo data, in one command.

Starts the WeChat sandbox, the web server (gunicorn) and `flask worker`, runs `init` and the demo
data steps, prints where to look, and stops every process it started on Ctrl-C. The data lives in
instance/ and is kept between runs. Every process logs to its file under instance/logs/ (JSON, as
in production); the terminal shows one line per notable event and every error (app/demo_feed.py),
and the banner again on Enter or, after some events, every few minutes.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

# Demo data steps that areas register: (name, dotted path of a function returning a summary).
DEMO_STEPS: list[tuple[str, str]] = []
DEMO_PASSWORD = "renrenpai-demo"
BANNER_EVERY = 300  # seconds: the banner comes back when events have pushed it up since
LOG_NAMES = ("web", "worker", "sandbox", "demo")  # instance/logs/<name>.log
DEMO_STAFF = [
    ("moderator", ["moderator"], None, "审核员"),
    ("supervisor", ["supervisor", "moderator"], None, "审核主管"),
    ("finance", ["finance"], None, "财务"),
    ("finance2", ["finance"], None, "财务复核"),
    ("fire", ["department"], "fire", "消防部门"),
    ("admin", ["admin"], None, "管理员"),
]


def register_demo_step(name: str, path: str) -> None:
    if (name, path) not in DEMO_STEPS:
        DEMO_STEPS.append((name, path))


def ensure_demo_staff() -> str:
    from sqlalchemy import select

    from app.accounts import create_staff
    from app.extensions import db
    from app.models.staff import StaffUser

    created = 0
    for username, roles, department, name in DEMO_STAFF:
        if db.session.scalar(select(StaffUser.id).where(StaffUser.username == username)) is None:
            create_staff(username, DEMO_PASSWORD, roles, department, display_name=name)
            created += 1
    db.session.commit()
    return f"{created} created"


register_demo_step("demo staff", "app.demo.ensure_demo_staff")
register_demo_step("demo tips", "app.demo_data.seed_demo_tips")  # needs the staff above


# How long a process may take to answer before the demo gives up on it: generous, because the wait
# follows the process (it ends as soon as the process answers, or has exited) and a busy machine can
# take minutes to import the app in two gunicorn workers.
START_CEILING = 900


def _wait_http(url: str, timeout: float = START_CEILING, alive=lambda: True) -> bool:
    """True once `url` answers; False when `alive()` says the process behind it has ended, or after
    `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        try:
            with urllib.request.urlopen(url, timeout=5):
                return True
        except Exception:
            time.sleep(0.2)
    return False


@click.command("demo")
@click.option("--port", default=5000, show_default=True, help="web port")
@click.option("--sandbox-port", default=None, type=int, help="WeChat sandbox port (default from WECHAT_API_BASE)")
@click.option("--no-serve", is_flag=True, help="load the demo data and exit")
@with_appcontext
def demo_command(port, sandbox_port, no_serve):
    """Everything up on the embedded default, with demo data."""
    from urllib.parse import urlparse

    from app.commands import run_init
    from app.db import run_in_own_session
    from app.demo_feed import LogFeed
    from app.log import log_to_file

    app = current_app._get_current_object()
    if app.config["APP_ENV"] == "production":
        raise click.UsageError("the demo never runs in production")
    sandbox_port = sandbox_port or urlparse(app.config["WECHAT_API_BASE"]).port
    env = dict(os.environ, REDIS_URL=app.config["REDIS_URL"], INSTANCE_PATH=app.instance_path,
               WECHAT_API_BASE=f"http://127.0.0.1:{sandbox_port}/",
               WECHAT_PAY_API_BASE=f"http://127.0.0.1:{sandbox_port}/",
               PUBLIC_BASE_URL=f"http://127.0.0.1:{port}")
    # this process too (it loads the demo data through the sandbox): the same addresses as the children
    app.config.update({k: env[k] for k in ("WECHAT_API_BASE", "WECHAT_PAY_API_BASE", "PUBLIC_BASE_URL")})
    app.config["WECHAT_PUSH_URL"] = env["WECHAT_PUSH_URL"] = f"http://127.0.0.1:{port}/wechat/push"
    # 商家转账 (PAYOUT_CHANNEL=transfer): WeChat Pay's result notifications come back to this demo's web
    app.config["WECHAT_TRANSFER_NOTIFY_URL"] = env["WECHAT_TRANSFER_NOTIFY_URL"] = (
        f"http://127.0.0.1:{port}/wechat/pay/transfer-notify")
    flask_cmd = [sys.executable, "-m", "flask", "--app", "wsgi"]
    # every file of this run lives under its instance folder, so two demos (two folders) never collide
    sandbox_state = os.environ.get("SANDBOX_STATE") or os.path.join(app.instance_path, "wechat_sandbox.db")
    processes: list[tuple[str, subprocess.Popen]] = []
    stopping, again = threading.Event(), threading.Event()
    logs = Path(app.instance_path) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_to_file(logs / "demo.log")  # this process's own log lines too: the terminal is for people
    feed = guard = None

    def start(name, cmd):
        from app.lifeline import child_options

        with open(logs / f"{name}.log", "ab") as out:  # the child keeps its own copy of the descriptor
            # each child ends with this process, even a SIGKILLed one (app/lifeline.py)
            processes.append((name, subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                                     **child_options(env))))

    def stop_all(*_):
        stopping.set()

    signal.signal(signal.SIGINT, stop_all)
    signal.signal(signal.SIGTERM, stop_all)
    try:
        if not os.environ.get("REDIS_URL"):  # the embedded Redis this process started ends with it too
            from app.lifeline import child_options

            guard = subprocess.Popen([sys.executable, "-c", "import sys; from app.embedded import stop_with_parent; "
                                      "stop_with_parent(sys.argv[1])", app.instance_path], **child_options(env))
        if "wechat-sandbox" in app.cli.commands:
            start("sandbox", flask_cmd + ["wechat-sandbox", "--port", str(sandbox_port), "--state", sandbox_state])
            sandbox = processes[-1][1]
            if not _wait_http(f"http://127.0.0.1:{sandbox_port}/__sandbox__/redpacks",
                              alive=lambda: sandbox.poll() is None):
                raise click.ClickException(f"the WeChat sandbox did not come up; see {logs / 'sandbox.log'}")
        run_init(echo=click.echo)
        for name, path in DEMO_STEPS:  # each step's session ends with it: this process waits below
            click.echo(f"{name}: {run_in_own_session(app, _resolve(path))}")
        if no_serve:
            return
        # the demo data ran RQ workers in this process, and they install their own signal handlers
        signal.signal(signal.SIGINT, stop_all)
        signal.signal(signal.SIGTERM, stop_all)
        feed = LogFeed({name: logs / f"{name}.log" for name in LOG_NAMES}, click.echo).start()
        start("web", [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "2",
                      "--threads", "4", "--access-logfile", "-",
                      "--control-socket", os.path.join(app.instance_path, "gunicorn.ctl"),
                      "--logger-class", "app.gunicorn_log.RedactingLogger", "wsgi:app"])
        start("worker", flask_cmd + ["worker"])
        # two gunicorn workers importing the app take seconds, minutes on a busy machine: wait while it lives
        web = processes[-2][1]
        if not _wait_http(f"http://127.0.0.1:{port}/healthz", alive=lambda: web.poll() is None):
            raise click.ClickException(f"the web server did not come up; see {logs / 'web.log'}")
        banner = _welcome(port, sandbox_port, app.instance_path, sandbox_state)
        click.echo(banner)
        shown_after, shown_at = feed.printed, time.monotonic()
        _listen_for_enter(again)
        while not stopping.is_set():
            for name, proc in processes:
                if proc.poll() is not None:
                    click.echo(f"{name} exited with {proc.returncode}; stopping. The end of {logs / (name + '.log')}:",
                               err=True)
                    click.echo(_tail(logs / f"{name}.log"), err=True)
                    stopping.set()
            pushed_up = feed.printed > shown_after and time.monotonic() - shown_at > BANNER_EVERY
            if again.is_set() or pushed_up:
                again.clear()
                click.echo(banner)
                shown_after, shown_at = feed.printed, time.monotonic()
            stopping.wait(0.5)
    finally:
        if feed is not None:
            feed.stop()
        for _name, proc in reversed(processes):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _name, proc in processes:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        if guard is not None:
            guard.kill()  # a normal stop: Redis is stopped below, once every other process has ended
            guard.wait()
        if not os.environ.get("REDIS_URL"):
            from app.embedded import stop_embedded_redis

            stop_embedded_redis(app.instance_path)  # it persists to instance/ (AOF) for the next run
        click.echo("人人拍 demo stopped; data kept in " + app.instance_path)


def _welcome(port, sandbox_port, instance, sandbox_state) -> str:
    base = f"http://127.0.0.1:{port}"
    lines = [
        "",
        "人人拍 is running on the embedded default (SQLite + embedded Redis + WeChat sandbox).",
        f"  staff console     {base}/console/",
        f"  residents' API    {base}/api/mp/v1   (OpenAPI: {base}/api/openapi.json)",
        f"  phone page        http://127.0.0.1:{sandbox_port}/__sandbox__/phone/   (a resident, as the mini-program)",
        f"  WeChat sandbox    http://127.0.0.1:{sandbox_port}/__sandbox__/redpacks   (state {sandbox_state})",
        f"  data and run files {instance}   (database, Redis, photos, gunicorn.ctl)",
        f"  logs              {instance}/logs/   (JSON: web, worker, sandbox, demo)",
        f"  metrics           {base}/metrics   (open in the demo; production wants METRICS_TOKEN)",
        f"  demo logins (password {DEMO_PASSWORD}):",
    ]
    lines += [f"    {username:<11} {', '.join(roles)}{' (' + dept + ')' if dept else ''}"
              for username, roles, dept, _ in DEMO_STAFF]
    lines += ["Below: tips, decisions and red packets as they happen, and errors. Press Enter to see this again,",
              "Ctrl-C to stop everything.", ""]
    return "\n".join(lines)


def _listen_for_enter(again: threading.Event) -> None:
    """Each line on stdin (Enter) asks for the banner again. A demo in the background of a terminal
    does not read it: the terminal would stop the whole process group (SIGTTIN)."""
    try:
        if sys.stdin is None or (sys.stdin.isatty() and os.tcgetpgrp(sys.stdin.fileno()) != os.getpgrp()):
            return
    except (OSError, ValueError):
        return

    def listen():
        for _line in sys.stdin:  # ends at EOF (stdin closed or /dev/null)
            again.set()

    threading.Thread(target=listen, name="demo-enter", daemon=True).start()


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _resolve(path):
    import importlib

    module_name, _, attr = path.rpartition(".")
    return getattr(importlib.import_module(module_name), attr)
