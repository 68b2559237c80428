"""Processes end with their parent: no worker, clock, job process, web server or sandbox that
`flask worker` or `flask demo` started keeps running unsupervised once its parent is gone (issue 13:
after `kill -9` of `flask worker`, a payouts worker and an intake worker ran on).

Two locks. On Linux the kernel signals the child when its parent dies (prctl PR_SET_PDEATHSIG): set
before exec for the processes we start, and in the processes RQ forks (job horse, scheduler), since
a fork clears it. Elsewhere, and as a second lock, each loop of ours checks that its parent is still
the one that started it: the starter writes its pid into the child's environment (PARENT_PID_ENV);
a process started by anyone else (systemd, a shell) has none and never stops for that reason.
"""
from __future__ import annotations

import ctypes
import functools
import os
import signal
import sys

PARENT_PID_ENV = "RENRENPAI_PARENT_PID"
PR_SET_PDEATHSIG = 1

_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def die_with_parent(parent_pid: int, sig: int = signal.SIGTERM) -> None:
    """Ask the kernel for `sig` when this process's parent dies; if `parent_pid` is already gone (it
    died before we asked), send it to ourselves now.

    The signal comes when the parent *thread* that forked us ends: start children from the main thread.
    """
    if _libc is not None:
        _libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), sig)


def child_options(env: dict | None = None) -> dict:
    """Keyword arguments for subprocess.Popen of a child that must end with this process."""
    env = dict(os.environ if env is None else env)
    env[PARENT_PID_ENV] = str(os.getpid())
    # runs in the child between fork and exec: only the prctl call and two syscalls
    return {"env": env, "preexec_fn": functools.partial(die_with_parent, os.getpid())}


def started_by() -> int | None:
    """The pid of the process that started this one through child_options(), if any."""
    value = os.environ.get(PARENT_PID_ENV, "")
    return int(value) if value.isdigit() else None


def parent_gone(parent_pid: int | None) -> bool:
    """True when this process was started by `parent_pid` and that process has died (we were
    re-parented). None (nobody of ours started us): never."""
    return parent_pid is not None and os.getppid() != parent_pid
