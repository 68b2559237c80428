"""Intake benchmark. Run from the repository root:

    .venv/bin/python bench/intake.py [--repeat 7]

Photo processing (this part): app.media.processing.process_photo on
  - a 12-megapixel (4000×3000) JPEG of about 4 MB, EXIF orientation 6 (a phone held upright),
  - a 500 KB phone-compressed JPEG (1920×1440) with the same EXIF (orientation 6), and
  - a 500 KB JPEG as the mini-program uploads it (1920×1440, upright, no EXIF: what
    wx.chooseMedia's "compressed" output is; the tips bench uploads this one unless
    --tips-photo oriented),
each compared with ONE full-size decode (Image.open + load) of the same file in the same run;
the goal is processing cheaper than that one decode. Then peak RSS of processing one 12-MP photo
in a fresh subprocess (VmHWM), against a subprocess that only imports the same modules
(goal: < 150 MB).
Test photos are generated (noise + texture, so sizes are realistic) into a temp folder.

Tips through gunicorn (bench_tips_through_gunicorn): the real app under gunicorn
(deploy/gunicorn.conf.py: gthread, 2 workers per CPU, 4 threads each) on a scratch database
(DATABASE_URL / REDIS_URL when set, else a temp SQLite file and the embedded Redis) with the WeChat
sandbox; client threads each act as residents: log in (code2session through the sandbox), upload
one ~500 KB JPEG, create one tip with an Idempotency-Key. Printed: tips/s for the whole flow, and
for upload + tip with an existing token, p50/p95 per request, against a bare Flask endpoint that
only writes the multipart upload to disk, under the same gunicorn settings, in the same run.
Rate limits stay on (Redis counters are part of the cost); the per-IP limits are raised because
every bench client shares 127.0.0.1. No worker runs: a tip is "accepted" once it is committed
with its intake message.

    .venv/bin/python bench/intake.py --only tips --tips 400 --concurrency 8
"""
from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MEMORY_GOAL_MB = 150


def make_photo(width: int, height: int, seed: int, noise: float):
    """A photo-like image: blurred random structure, shapes, and sensor noise."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFilter

    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (height // 24, width // 24, 3), dtype=np.uint8)
    image = Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(image)
    for _ in range(60):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        w, h = int(rng.integers(20, width // 5)), int(rng.integers(20, height // 5))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x, y, x + w, y + h], fill=colour)
    image = image.filter(ImageFilter.GaussianBlur(1.0))
    pixels = np.asarray(image, dtype=np.float32) + rng.normal(0, noise, (height, width, 3)).astype(np.float32)
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8))


def write_test_photos(folder: Path) -> dict[str, Path]:
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6
    exif.get_ifd(0x8769)[0x9003] = "2024:05:01 09:30:15"
    phone = make_photo(1920, 1440, 2, 8.0)
    photos = {
        "12 MP, ~4 MB": (make_photo(4000, 3000, 1, 10.0), 88, exif.tobytes()),
        "phone-compressed, ~500 KB": (phone, 80, exif.tobytes()),
        "mini-program, ~500 KB": (phone, 80, b""),
    }
    paths = {}
    for index, (name, (image, quality, exif_bytes)) in enumerate(photos.items()):
        path = folder / f"photo{index}.jpg"
        image.save(path, "JPEG", quality=quality, exif=exif_bytes)
        paths[name] = path
    return paths


def timed(function, repeat: int) -> list[float]:
    function()  # warm-up: imports, caches
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        samples.append(time.perf_counter() - started)
    return samples


def bench_photo_processing(paths: dict[str, Path], repeat: int) -> list[dict]:
    from PIL import Image

    from app.media.processing import DISPLAY_SIZE, display_copy, preview_photo, process_photo

    def full_decode(path):
        with Image.open(path) as image:
            image.load()

    def reduced_decode(path):  # the decode process_photo does, alone
        with Image.open(path) as image:
            scale = DISPLAY_SIZE / max(image.size)
            if scale < 1:
                image.draft("RGB", (int(image.width * scale), int(image.height * scale)))
            image.load()

    rows = []
    for name, path in paths.items():
        with Image.open(path) as image:
            size = image.size
        # Interleave so machine noise hits all alike.
        decode, reduced, process, preview, display = [], [], [], [], []
        for _ in range(repeat):
            decode += timed(lambda: full_decode(path), 1)
            reduced += timed(lambda: reduced_decode(path), 1)
            process += timed(lambda: process_photo(str(path)), 1)
            preview += timed(lambda: preview_photo(str(path)), 1)
            display += timed(lambda: display_copy(str(path)), 1)
        rows.append({
            "photo": name, "pixels": f"{size[0]}x{size[1]}", "bytes": path.stat().st_size,
            "decode_ms": statistics.median(decode) * 1000, "process_ms": statistics.median(process) * 1000,
            "reduced_ms": statistics.median(reduced) * 1000,
            "ratio": statistics.median(process) / statistics.median(decode),
            "ratio_best": min(process) / min(decode),
            "preview_ms": statistics.median(preview) * 1000, "display_ms": statistics.median(display) * 1000,
            "preview_ratio": statistics.median(preview) / statistics.median(decode),
            "display_ratio": statistics.median(display) / statistics.median(decode),
        })
    return rows


def child_peak_rss(mode: str, path: Path) -> float:
    """Peak RSS (MB) of a fresh interpreter that imports only, or imports and processes `path`."""
    result = subprocess.run([sys.executable, __file__, "--child", mode, str(path)], cwd=ROOT,
                            capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return json.loads(result.stdout.strip().splitlines()[-1])["peak_rss_mb"]


def child_main(mode: str, path: str) -> None:
    from app.media.processing import process_photo  # noqa: F401 - the import is the baseline

    if mode == "process":
        process_photo(path)
    print(json.dumps({"peak_rss_mb": peak_rss_kb() / 1024}))


def peak_rss_kb() -> int:
    """VmHWM: this process's own peak. ru_maxrss would do, except Linux carries it across exec,
    so a child forked from this (image-laden) parent would report the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# --- tips through gunicorn --------------------------------------------------------------------

BENCH_LIMITS = {"MP_RATELIMIT_IP": "1000000/minute", "MP_RATELIMIT_LOGIN_IP": "1000000/minute"}


def bare_app():
    """The baseline: a Flask endpoint that writes the multipart upload to disk and answers 201."""
    import uuid

    from flask import Flask, jsonify, request

    app = Flask("bare")
    folder = Path(os.environ["BENCH_BARE_DIR"])

    @app.post("/upload")
    def upload():
        request.files["file"].save(folder / f"{uuid.uuid4().hex}.jpg")
        return jsonify({"ok": True}), 201

    return app


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, proc, seconds: float = 60) -> None:
    import requests

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {proc.returncode}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def start_gunicorn(target: str, port: int, env: dict, log) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy/gunicorn.conf.py"),
                             "--bind", f"127.0.0.1:{port}", "--access-logfile", "/dev/null",
                             "--error-logfile", "-", target],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def stop(proc) -> None:
    if proc and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


_CLK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu_seconds(pids) -> float:
    """utime + stime of these processes and every live descendant (Linux /proc)."""
    children: dict[int, list[int]] = {}
    cpu: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry.name), int(fields[1])
        children.setdefault(ppid, []).append(pid)
        cpu[pid] = (int(fields[11]) + int(fields[12])) / _CLK
    total, stack, seen = 0.0, list(pids), set()
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += cpu.get(pid, 0.0)
        stack.extend(children.get(pid, ()))
    return total


def postgres_backend_pids(url: str) -> list[int]:
    """Backends serving the bench database (their CPU is part of a tip's cost)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from app.config import normalize_database_url

    parsed = make_url(normalize_database_url(url))
    if parsed.get_backend_name() != "postgresql":
        return []
    engine = create_engine(parsed)
    with engine.connect() as conn:
        pids = [row[0] for row in conn.execute(text(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"))]
    engine.dispose()
    return pids


class CpuMeter:
    """CPU seconds spent by groups of server processes (and this client) during a measured phase.
    `groups`: name -> callable returning pids (each with its live descendants)."""

    def __init__(self, groups):
        self.groups = groups if isinstance(groups, dict) else {"server": groups}

    def __enter__(self):
        self.pids = {name: fn() for name, fn in self.groups.items()}
        self.start = {name: process_cpu_seconds(pids) for name, pids in self.pids.items()}
        self.client0 = time.process_time()
        return self

    def __exit__(self, *exc):
        self.by_group = {}
        for name, fn in self.groups.items():
            pids = set(self.pids[name]) | set(fn())  # a backend that appeared mid-run started at ~0
            self.by_group[name] = process_cpu_seconds(pids) - self.start[name]
        self.server = sum(self.by_group.values())
        self.client = time.process_time() - self.client0


def run_clients(count: int, concurrency: int, work) -> tuple[float, dict[str, list[float]]]:
    """Run work(index, session, timings) for index in range(count) on `concurrency` threads."""
    import threading

    import requests

    timings: dict[str, list[float]] = {}
    lock = threading.Lock()
    counter = iter(range(count))
    errors = []

    def worker():
        session = requests.Session()
        local: dict[str, list[float]] = {}
        while True:
            with lock:
                index = next(counter, None)
            if index is None:
                break
            try:
                work(index, session, local)
            except Exception as error:  # noqa: BLE001 - reported below
                errors.append(repr(error))
        with lock:
            for name, values in local.items():
                timings.setdefault(name, []).extend(values)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} requests failed, first: {errors[0]}")
    return elapsed, timings


def timed_request(local, name, call):
    started = time.perf_counter()
    response = call()
    local.setdefault(name, []).append(time.perf_counter() - started)
    return response


def bench_tips_through_gunicorn(photo: Path, tips: int, concurrency: int) -> dict:
    import uuid

    import requests

    from app.config import SANDBOX_WECHAT

    data = photo.read_bytes()
    results = {}
    from bench.common import embedded_redis_stopped, reset_database

    with tempfile.TemporaryDirectory(prefix="bench-tips-") as scratch, \
            embedded_redis_stopped(Path(scratch) / "instance"):
        scratch = Path(scratch)
        log = open(scratch / "servers.log", "wb")
        env = {**os.environ, **SANDBOX_WECHAT, "PYTHONPATH": str(ROOT), "APP_ENV": "development",
               "INSTANCE_PATH": str(scratch / "instance"), "MEDIA_STORAGE": str(scratch / "media"),
               "LOG_LEVEL": "WARNING", "BENCH_BARE_DIR": str(scratch / "bare")}
        (scratch / "bare").mkdir()
        if not os.environ.get("DATABASE_URL"):
            env["DATABASE_URL"] = f"sqlite:///{scratch / 'bench.db'}"
        else:
            reset_database(env["DATABASE_URL"])
        sandbox_port, app_port, bare_port = free_port(), free_port(), free_port()
        env["WECHAT_API_BASE"] = env["WECHAT_PAY_API_BASE"] = f"http://127.0.0.1:{sandbox_port}/"
        subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "init"], cwd=ROOT, env=env, check=True,
                       capture_output=True)
        procs = []
        try:
            sandbox = subprocess.Popen([sys.executable, "-m", "app.wechat_sandbox", "--port", str(sandbox_port),
                                        "--state", str(scratch / "sandbox.db")], cwd=ROOT, env=env,
                                       stdout=log, stderr=subprocess.STDOUT)
            procs.append(sandbox)
            wait_http(f"http://127.0.0.1:{sandbox_port}/__sandbox__/health", sandbox)
            overrides = repr({**BENCH_LIMITS})
            app_proc = start_gunicorn(f"app:create_app({overrides})", app_port, env, log)
            procs.append(app_proc)
            bare_proc = start_gunicorn("bench.intake:bare_app()", bare_port, env, log)
            procs.append(bare_proc)
            base = f"http://127.0.0.1:{app_port}/api/mp/v1"
            wait_http(f"http://127.0.0.1:{app_port}/healthz", app_proc)
            wait_http(f"http://127.0.0.1:{bare_port}/", bare_proc)
            lat, lng = 23.0209 + 0.0028, 113.7518 + 0.0054  # 南城, as GCJ-02 (approximately)
            run_tag = uuid.uuid4().hex[:8]

            def login(index, session, local):
                answer = timed_request(local, "login", lambda: session.post(
                    f"{base}/auth/login", json={"code": f"sbx:bench-{run_tag}-{index}"}, timeout=30))
                answer.raise_for_status()
                return answer.json()["token"]

            def upload_and_tip(index, session, local, token):
                headers = {"Authorization": f"Bearer {token}"}
                photo_answer = timed_request(local, "photo", lambda: session.post(
                    f"{base}/photos", files={"file": ("photo.jpg", data, "image/jpeg")}, headers=headers, timeout=30))
                if photo_answer.status_code != 201:
                    raise RuntimeError(f"photo {photo_answer.status_code} {photo_answer.text[:200]}")
                body = {"category": "lpg_illegal", "description": "压测报料", "photo_ids": [photo_answer.json()["id"]],
                        "location": {"lat": lat, "lng": lng, "coord": "gcj02"}}
                tip_answer = timed_request(local, "tip", lambda: session.post(
                    f"{base}/tips", json=body, headers={**headers, "Idempotency-Key": uuid.uuid4().hex}, timeout=30))
                if tip_answer.status_code != 201:
                    raise RuntimeError(f"tip {tip_answer.status_code} {tip_answer.text[:200]}")

            def full_flow(index, session, local):
                upload_and_tip(index, session, local, login(index, session, local))

            def bare(index, session, local):
                answer = timed_request(local, "bare", lambda: session.post(
                    f"http://127.0.0.1:{bare_port}/upload", files={"file": ("photo.jpg", data, "image/jpeg")}, timeout=30))
                answer.raise_for_status()

            # warm-up: every worker imports, connects, builds its geo index
            run_clients(concurrency * 4, concurrency, full_flow)
            run_clients(concurrency * 4, concurrency, bare)
            tokens = [login(10_000 + i, requests.Session(), {}) for i in range(tips)]

            app_pids = {"app": lambda: [app_proc.pid], "sandbox": lambda: [sandbox.pid],
                        "postgres": lambda: postgres_backend_pids(env["DATABASE_URL"])}

            with CpuMeter(lambda: [bare_proc.pid]) as bare_cpu:
                bare_s, bare_t = run_clients(tips, concurrency, bare)
            with CpuMeter(app_pids) as full_cpu:
                full_s, full_t = run_clients(tips, concurrency, lambda i, s, l: full_flow(20_000 + i, s, l))
            with CpuMeter(app_pids) as token_cpu:
                token_s, token_t = run_clients(tips, concurrency, lambda i, s, l: upload_and_tip(i, s, l, tokens[i]))
            bare2_s, _ = run_clients(tips, concurrency, bare)
            results = {
                "tips": tips, "concurrency": concurrency, "photo_bytes": len(data),
                "bare_per_s": tips / bare_s, "bare_again_per_s": tips / bare2_s,
                "full_per_s": tips / full_s, "token_per_s": tips / token_s,
                "cpu_ms": {name: (meter.server / tips * 1000, meter.client / tips * 1000)
                           for name, meter in (("bare", bare_cpu), ("full", full_cpu), ("token", token_cpu))},
                "cpu_groups_ms": {name: {g: v / tips * 1000 for g, v in meter.by_group.items()}
                                  for name, meter in (("full", full_cpu), ("token", token_cpu))},
                "latency_ms": {name: (statistics.median(v) * 1000, sorted(v)[int(len(v) * 0.95) - 1] * 1000)
                               for name, v in {**bare_t, **full_t, **{f"{k} (token reused)": v for k, v in token_t.items()}}.items()},
            }
        finally:
            for proc in reversed(procs):
                stop(proc)
            log.close()
    return results


def print_tips(result: dict) -> None:
    print(f"\nTips through gunicorn ({result['tips']} tips, {result['concurrency']} client threads, "
          f"photo {result['photo_bytes']:,} bytes; CPUs: {os.cpu_count()})")
    bare = (result["bare_per_s"] + result["bare_again_per_s"]) / 2
    print(f"  bare upload-to-disk endpoint: {result['bare_per_s']:.1f}/s before, {result['bare_again_per_s']:.1f}/s after")
    for name, key in (("login + photo + tip", "full_per_s"), ("photo + tip, token reused", "token_per_s")):
        rate = result[key]
        print(f"  {name:28} {rate:6.1f} tips/s  = {rate / bare:.2f} × bare"
              f"  (goal ≥ 0.5 × bare and ≥ 50/s: {'met' if rate >= 0.5 * bare and rate >= 50 else 'NOT met'})")
    cpu = result["cpu_ms"]
    print("  server CPU per item (gunicorn workers + sandbox + PostgreSQL backends; not Redis), client CPU:")
    for name, label in (("bare", "bare upload"), ("full", "login + photo + tip"), ("token", "photo + tip, token reused")):
        server_ms, client_ms = cpu[name]
        ratio = cpu["bare"][0] / server_ms if server_ms else float("nan")
        print(f"    {label:28} {server_ms:6.1f} ms server  {client_ms:5.1f} ms client  -> {2000 / server_ms:6.1f}/s on"
              f" 2 dedicated cores = {ratio:.2f} × bare")
        if name in result["cpu_groups_ms"]:
            print("      " + ", ".join(f"{g} {v:.1f} ms" for g, v in result["cpu_groups_ms"][name].items()))
    print("  latency p50 / p95 (ms):")
    for name, (p50, p95) in result["latency_ms"].items():
        print(f"    {name:28} {p50:7.1f} {p95:7.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--only", choices=("photos", "tips"), default=None)
    parser.add_argument("--tips", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--tips-photo", choices=("miniprogram", "oriented"), default="miniprogram")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(*args.child)
        return

    with tempfile.TemporaryDirectory(prefix="bench-intake-") as folder:
        paths = write_test_photos(Path(folder))
        if args.only != "tips":
            bench_photos(paths, args.repeat)
        if args.only != "photos":
            name = "mini-program, ~500 KB" if args.tips_photo == "miniprogram" else "phone-compressed, ~500 KB"
            print(f"tips bench photo: {name}")
            print_tips(bench_tips_through_gunicorn(paths[name], args.tips, args.concurrency))


def bench_photos(paths: dict[str, Path], repeat: int) -> None:
    print(f"Photo processing (median of {repeat}, interleaved; CPUs: {os.cpu_count()})")
    print(f"{'photo':28} {'pixels':>10} {'bytes':>10} {'1 full decode':>14} {'draft decode':>13}"
          f" {'process_photo':>14} {'ratio':>6} {'best':>6}")
    rows = bench_photo_processing(paths, repeat)
    for row in rows:
        print(f"{row['photo']:28} {row['pixels']:>10} {row['bytes']:>10,} {row['decode_ms']:>11.1f} ms"
              f" {row['reduced_ms']:>10.1f} ms {row['process_ms']:>11.1f} ms {row['ratio']:>6.2f} {row['ratio_best']:>6.2f}")
    print("ratio = process_photo / one full decode (median; best = min/min). draft decode = the reduced"
          " decode inside process_photo, alone.")
    print("The intake split: the upload request runs preview_photo (verify, EXIF, thumbnail, hashes); the"
          " photo.display job runs display_copy.")
    for row in rows:
        print(f"  {row['photo']:28} preview_photo {row['preview_ms']:6.1f} ms = {row['preview_ratio']:.2f} × decode;"
              f"  display_copy {row['display_ms']:6.1f} ms = {row['display_ratio']:.2f} × decode")
    big = paths["12 MP, ~4 MB"]
    baseline = child_peak_rss("import", big)
    peak = child_peak_rss("process", big)
    verdict = "OK" if peak < MEMORY_GOAL_MB else "OVER"
    print(f"Peak RSS, fresh process: imports only {baseline:.1f} MB; imports + process one 12-MP photo "
          f"{peak:.1f} MB (+{peak - baseline:.1f} MB); goal < {MEMORY_GOAL_MB} MB: {verdict}")


if __name__ == "__main__":
    main()
