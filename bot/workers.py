"""`policybot serve --workers N`: N server processes sharing one port, kept running by this one.

Each worker is a fresh `policybot serve` process that binds the port with SO_REUSEPORT, so
the kernel spreads connections across them; nothing is shared in memory, so every piece of
state lives in the store (SQLite in WAL mode on a local disk, or PostgreSQL). Fresh processes
rather than fork(): the knowledge base holds SQLite connections, which must not cross a fork.

The supervisor restarts a worker that dies (after a pause if it keeps dying at once), passes
SIGTERM / SIGINT on so workers finish what they are doing, and exits when they have.
Workers ask the kernel to stop them if the supervisor itself dies (PR_SET_PDEATHSIG).
"""
from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import time

log = logging.getLogger("policybot.workers")
RESTART_PAUSE = 1.0       # seconds before restarting a worker that died within QUICK_DEATH of starting
QUICK_DEATH = 5.0
GIVE_UP_AFTER = 5         # quick deaths in a row (e.g. the port is taken): stop everything and exit 1
STOP_GRACE = 30.0         # seconds workers get to finish after SIGTERM before they are killed


def die_with_parent() -> None:
    """In a worker: receive SIGTERM when the supervisor goes away, even by kill -9 (Linux only)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() == 1:  # the supervisor was already gone before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def worker_command(config: str | None, host: str, port: int) -> list[str]:
    return [sys.executable, "-m", "bot.cli", *(["--config", config] if config else []),
            "serve", "--host", host, "--port", str(port), "--worker"]


def supervise(n: int, command: list[str]) -> int:
    """Run n copies of `command` until SIGTERM or SIGINT; restart any that exits on its own."""
    stopping = False

    def stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    started: dict[int, tuple[subprocess.Popen, float]] = {}
    quick_deaths = {slot: 0 for slot in range(n)}
    failed = False

    def start(slot: int) -> None:
        proc = subprocess.Popen(command)
        started[slot] = (proc, time.monotonic())
        log.info("worker %s started (pid %s)", slot, proc.pid)

    for slot in range(n):
        start(slot)
    while not stopping:
        time.sleep(0.2)
        for slot, (proc, since) in list(started.items()):
            if proc.poll() is None or stopping:
                continue
            quick = time.monotonic() - since < QUICK_DEATH
            quick_deaths[slot] = quick_deaths[slot] + 1 if quick else 0
            if quick_deaths[slot] >= GIVE_UP_AFTER:
                log.error("worker %s keeps exiting at start-up (last status %s); stopping", slot, proc.returncode)
                stopping = failed = True
                break
            log.warning("worker %s (pid %s) exited with %s; restarting it", slot, proc.pid, proc.returncode)
            if quick:
                time.sleep(RESTART_PAUSE)
            start(slot)
    for proc, _ in started.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE
    for proc, _ in started.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return 1 if failed else 0
