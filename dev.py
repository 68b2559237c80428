#!/usr/bin/env python3
"""The two set-up commands of the README, with nothing but Python 3.11+ installed.

    python3 dev.py up     everything on the embedded default (SQLite, embedded Redis, WeChat sandbox,
                          web, workers) with demo data; prints the console URL and demo logins
    python3 dev.py test   the whole test suite (PostgreSQL/Redis when DATABASE_URL/REDIS_URL name them)

Both create .venv/ and install the pinned requirements the first time (and again when they change);
`test` also installs the reference mini-program's Node test dependencies from its lock file.
"""
import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTHON = VENV / "bin" / "python"


def ensure_venv(requirements: str) -> None:
    if sys.version_info < (3, 11):
        sys.exit("Python 3.11 or newer is needed")
    if not PYTHON.exists():
        print("creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    stamp = VENV / f".installed-{requirements}"
    # requirements-dev.txt has a companion installed without dependencies (see that file for why)
    no_deps = ROOT / requirements.replace(".txt", "-nodeps.txt")
    digest = _requirements_digest(ROOT / requirements)
    if no_deps.exists():
        digest += _requirements_digest(no_deps)
    if stamp.exists() and stamp.read_text() == digest:
        return
    print(f"installing {requirements} into .venv (first run takes a few minutes) ...", flush=True)
    subprocess.run([str(PYTHON), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    subprocess.run([str(PYTHON), "-m", "pip", "install", "-q", "-r", str(ROOT / requirements)], check=True)
    if no_deps.exists():
        subprocess.run([str(PYTHON), "-m", "pip", "install", "-q", "--no-deps", "-r", str(no_deps)], check=True)
    stamp.write_text(digest)


def ensure_node_modules() -> None:
    """miniprogram/'s test dependencies (tests/miniprogram runs its Node tests): `npm ci` from the
    lock file, again when the lock file changes. Without npm the test says what is missing."""
    folder = ROOT / "miniprogram"
    lock = folder / "package-lock.json"
    stamp = folder / "node_modules" / ".installed-lock"
    if not lock.exists() or (stamp.exists() and stamp.read_text() == hashlib.sha256(lock.read_bytes()).hexdigest()):
        return
    if subprocess.run(["npm", "--version"], capture_output=True).returncode != 0:
        print("npm not found: the mini-program's tests will fail (install Node.js 20)", file=sys.stderr)
        return
    print("installing the mini-program's test dependencies (npm ci) ...", flush=True)
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=folder, check=True)
    stamp.write_text(hashlib.sha256(lock.read_bytes()).hexdigest())


def _requirements_digest(path: Path) -> str:
    """Hash the file and every file it includes with -r, so an edit anywhere reinstalls."""
    digest = hashlib.sha256()
    for line in path.read_text().splitlines():
        digest.update(line.encode())
        if line.startswith("-r "):
            digest.update(_requirements_digest(path.parent / line[3:].strip()).encode())
    return digest.hexdigest()


def main(argv):
    command = argv[1] if len(argv) > 1 else "help"
    os.chdir(ROOT)
    if command == "up":
        ensure_venv("requirements.txt")
        os.execv(str(PYTHON), [str(PYTHON), "-m", "flask", "--app", "wsgi", "demo", *argv[2:]])
    if command == "test":
        ensure_venv("requirements-dev.txt")
        ensure_node_modules()
        args = argv[2:] or []
        if not any(a.startswith("-n") for a in args):
            args = ["-n", os.environ.get("TEST_PROCESSES", "2"), *args]
        if not any(a.startswith("--dist") for a in args):
            # tests marked xdist_group run in one process: tests/test_cluster.py shares one cluster
            args = ["--dist", "loadgroup", *args]
        result = subprocess.run([str(PYTHON), "-m", "pytest", *args])
        if result.returncode == 5:  # pytest: no tests collected — a broken suite, not a pass
            print("no tests were collected", file=sys.stderr)
            return 1
        return result.returncode
    print(__doc__)
    return 0 if command in ("help", "-h", "--help") else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
