"""Intake benchmark. Run from the repository root:

    .venv/bin/python bench/intake.py [--repeat 7]

Photo processing (this part): app.media.processing.process_photo on
  - a 12-megapixel (4000×3000) JPEG of about 4 MB, and
  - a 500 KB phone-compressed JPEG (1920×1440),
each compared with ONE full-size decode (Image.open + load) of the same file in the same run;
the goal is processing cheaper than that one decode. Then peak RSS of processing one 12-MP photo
in a fresh subprocess (VmHWM), against a subprocess that only imports the same modules
(goal: < 150 MB).
Test photos are generated (noise + texture, so sizes are realistic) into a temp folder.

TODO(integrator): tips/s through gunicorn — start `gunicorn wsgi:app` on a free port against a
scratch database, log in a sandbox resident, and time N × (POST /api/mp/v1/photos with the 500 KB
photo, then POST /api/mp/v1/tips with Idempotency-Key) from a few client threads; print tips/s
and p50/p95 latency next to the figures below. Add it as a `bench_tips_through_gunicorn()` here
and call it from main() after the photo part.
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
    photos = {
        "12 MP, ~4 MB": (make_photo(4000, 3000, 1, 10.0), 88),
        "phone-compressed, ~500 KB": (make_photo(1920, 1440, 2, 8.0), 80),
    }
    paths = {}
    for index, (name, (image, quality)) in enumerate(photos.items()):
        path = folder / f"photo{index}.jpg"
        image.save(path, "JPEG", quality=quality, exif=exif.tobytes())
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

    from app.media.processing import DISPLAY_SIZE, process_photo

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
        decode, reduced, process = [], [], []
        for _ in range(repeat):
            decode += timed(lambda: full_decode(path), 1)
            reduced += timed(lambda: reduced_decode(path), 1)
            process += timed(lambda: process_photo(str(path)), 1)
        rows.append({
            "photo": name, "pixels": f"{size[0]}x{size[1]}", "bytes": path.stat().st_size,
            "decode_ms": statistics.median(decode) * 1000, "process_ms": statistics.median(process) * 1000,
            "reduced_ms": statistics.median(reduced) * 1000,
            "ratio": statistics.median(process) / statistics.median(decode),
            "ratio_best": min(process) / min(decode),
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(*args.child)
        return

    with tempfile.TemporaryDirectory(prefix="bench-intake-") as folder:
        paths = write_test_photos(Path(folder))
        print(f"Photo processing (median of {args.repeat}, interleaved; CPUs: {os.cpu_count()})")
        print(f"{'photo':28} {'pixels':>10} {'bytes':>10} {'1 full decode':>14} {'draft decode':>13}"
              f" {'process_photo':>14} {'ratio':>6} {'best':>6}")
        for row in bench_photo_processing(paths, args.repeat):
            print(f"{row['photo']:28} {row['pixels']:>10} {row['bytes']:>10,} {row['decode_ms']:>11.1f} ms"
                  f" {row['reduced_ms']:>10.1f} ms {row['process_ms']:>11.1f} ms {row['ratio']:>6.2f} {row['ratio_best']:>6.2f}")
        print("ratio = process_photo / one full decode (median; best = min/min). draft decode = the reduced"
              " decode inside process_photo, alone.")
        big = paths["12 MP, ~4 MB"]
        baseline = child_peak_rss("import", big)
        peak = child_peak_rss("process", big)
        verdict = "OK" if peak < MEMORY_GOAL_MB else "OVER"
        print(f"Peak RSS, fresh process: imports only {baseline:.1f} MB; imports + process one 12-MP photo "
              f"{peak:.1f} MB (+{peak - baseline:.1f} MB); goal < {MEMORY_GOAL_MB} MB: {verdict}")


if __name__ == "__main__":
    main()
