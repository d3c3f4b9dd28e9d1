"""`policybot serve --workers N`: N server processes sharing one port, kept running by this one.

Each worker is a fresh `policybot serve` process that binds the port with SO_REUSEPORT, so
the kernel spreads connections across them; nothing is shared in memory, so every piece of
state lives in the store (SQLite in WAL mode on a local disk, or PostgreSQL). Fresh processes
rather than fork(): the knowledge base holds SQLite connections, which must not cross a fork.

The supervisor itself loads nothing: the first worker checks app.yaml, the packs and the
database (and migrates it) like a single server would, and only once it is listening do the
others start. If it cannot start, its one-line error is the output and its exit status is
ours. Afterwards the supervisor restarts a worker that dies (after a pause if it keeps dying
at once), passes SIGTERM / SIGINT on so workers finish what they are doing, and exits when
they have. Workers ask the kernel to stop them if the supervisor dies (PR_SET_PDEATHSIG).
"""
from __future__ import annotations

import ctypes
import logging
import os
import select
import signal
import subprocess
import sys
import time

log = logging.getLogger("policybot.workers")
RESTART_PAUSE = 1.0       # seconds before restarting a worker that died within QUICK_DEATH of starting
QUICK_DEATH = 5.0
GIVE_UP_AFTER = 5         # quick deaths in a row (e.g. the port is taken): stop everything and exit 1
STOP_GRACE = 30.0         # seconds workers get to finish after SIGTERM before they are killed
READY_FD = "POLICYBOT_READY_FD"  # a worker writes a line to this file descriptor once it listens


def die_with_parent() -> None:
    """In a worker: receive SIGTERM when the supervisor goes away, even by kill -9 (Linux only)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() == 1:  # the supervisor was already gone before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def tell_ready() -> None:
    """In a worker, once listening: tell the supervisor (if it asked)."""
    fd = os.environ.pop(READY_FD, "")
    if fd.isdigit():
        try:
            os.write(int(fd), b"ready\n")
            os.close(int(fd))
        except OSError:
            pass


def worker_command(config: str | None, host: str, port: int, log_format: str = "text") -> list[str]:
    return [sys.executable, "-m", "bot.cli", *(["--config", config] if config else []),
            "serve", "--host", host, "--port", str(port), "--log-format", log_format, "--worker"]


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

    def start(slot: int, ready_fd: int | None = None) -> subprocess.Popen:
        env = {**os.environ, **({READY_FD: str(ready_fd)} if ready_fd is not None else {})}
        proc = subprocess.Popen(command, env=env, pass_fds=() if ready_fd is None else (ready_fd,))
        started[slot] = (proc, time.monotonic())
        if ready_fd is None:  # the first one is announced once it listens: if it can't, its error says it all
            log.info("worker %s started (pid %s)", slot, proc.pid)
        return proc

    # The first worker alone, until it listens: it checks everything and migrates the database.
    read_end, write_end = os.pipe()
    first = start(0, write_end)
    os.close(write_end)
    with os.fdopen(read_end) as ready:
        while not stopping and first.poll() is None:
            if select.select([ready], [], [], 0.2)[0]:
                if ready.readline():
                    break
                first.wait()  # the pipe closed without a word: it is exiting
    if first.poll() is not None:
        return first.returncode or 1  # its one-line reason is already on stderr
    log.info("worker 0 is listening (pid %s)", first.pid)
    for slot in range(1, n):
        if not stopping:
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
