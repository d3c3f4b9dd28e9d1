"""Load: concurrent simulated Slack users DM-ing `policybot serve` on loopback, with a fake Web API.

Measures, per message, the time from sending the signed event to the bot's chat.postMessage
reaching the fake Slack; reports p50/p95/p99, events/s, errors, replies later than 3 s, and the
server's peak memory (summed over its processes), and how busy the bot, PostgreSQL and this load
generator kept the CPUs (on a small machine they share the cores, which caps what more workers
can show). Bounded: USERS x MESSAGES requests to
127.0.0.1 only, then it stops.

Run: .venv/bin/python benchmarks/bench_slack_load.py [--users 100] [--messages 10] [--think 1.0]
     [--workers 1] [--store sqlite|postgres]
--think 0 makes it a saturation test: with no pause, latency is mostly queueing (users / events per s).
--matrix runs SQLite and PostgreSQL with 1 and 2 workers in one go (a throwaway PostgreSQL
cluster, as the tests use) and prints one table, so the ratios between them hold:
     .venv/bin/python benchmarks/bench_slack_load.py --matrix --think 0 --messages 30
Not a test: it measures, it asserts nothing.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aiohttp import ClientSession, ClientTimeout

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.slack_fake import SIGNING_SECRET, FakeSlack, event_body, sign  # noqa: E402

TEXTS = ["an ex-patient added me on Facebook, what do I do?", "disclaimer wording?",
         "can I post this? Proud of our team today! #NHS", "the lad in bay 3 thinks he's the king lol",
         "whats the samaritans number", "Honestly our trust's new rota policy is a shambles"]


class TimedFake(FakeSlack):
    """The fake Slack, noting when each threaded reply arrives."""

    def __init__(self):
        super().__init__()
        self.arrived: dict[str, float] = {}
        self.waiters: dict[str, asyncio.Event] = {}

    def answer(self, method, params):
        if method == "chat.postMessage" and params.get("thread_ts"):
            ts = params["thread_ts"]
            self.arrived.setdefault(ts, time.perf_counter())
            if ts in self.waiters:
                self.waiters[ts].set()
        return super().answer(method, params)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree(pid: int) -> list[int]:
    """pid and all its descendants (the supervisor and its workers, or the postmaster and its backends)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            todo += [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
        except OSError:
            pass
    return out


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def peak_kb(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


async def wait_ready(url: str, workers: int, timeout: float = 120.0) -> None:
    """Until every worker answers /healthz (fresh connections, so SO_REUSEPORT reaches each)."""
    seen: set[int] = set()
    deadline = time.monotonic() + timeout
    while len(seen) < workers:
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: the server did not start ({len(seen)} of {workers} workers answered)")
        try:
            async with ClientSession() as fresh, fresh.get(url + "/healthz") as r:
                if r.status == 200:
                    seen.add(r.headers.get("X-Policybot-Worker", ""))
                    continue
        except OSError:
            pass
        await asyncio.sleep(0.05)


async def run_one(args, store: str, workers: int, database_env: dict) -> dict:
    fake = await TimedFake().start()
    port = free_port()
    exe = Path(sys.executable).parent / "policybot"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("POLICYBOT_DATABASE")},
           "SLACK_BOT_TOKEN": "xoxb-bench", "SLACK_SIGNING_SECRET": SIGNING_SECRET,
           "SLACK_API_URL": fake.url + "/api/", **database_env}
    prefix = os.environ.get("BENCH_SERVER_PREFIX", "").split()  # e.g. a profiler
    server = subprocess.Popen(prefix + [str(exe), "serve", "--port", str(port), "--workers", str(workers)], env=env,
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    latencies, errors, late = [], 0, 0
    try:
        await wait_ready(url, workers)
        async with ClientSession(timeout=ClientTimeout(total=10)) as http:

            async def user(u: int) -> None:
                nonlocal errors, late
                await asyncio.sleep(args.think * u / args.users)  # users start spread over one pause
                for m in range(args.messages):
                    if m:
                        await asyncio.sleep(args.think)
                    ts = f"{u}.{m:06d}"
                    fake.waiters[ts] = asyncio.Event()
                    event = {"type": "message", "channel_type": "im", "channel": f"D{u}", "user": f"U{u}",
                             "text": TEXTS[(u + m) % len(TEXTS)], "ts": ts}
                    body = event_body(event, f"Ev{u}-{m}")
                    start = time.perf_counter()
                    try:
                        async with http.post(url + "/slack/events", data=body.encode(),
                                             headers={"Content-Type": "application/json", **sign(body)}) as r:
                            if r.status != 200:
                                errors += 1
                                continue
                        await asyncio.wait_for(fake.waiters[ts].wait(), timeout=10)
                    except (asyncio.TimeoutError, OSError):
                        errors += 1
                        continue
                    took = fake.arrived[ts] - start
                    latencies.append(took)
                    late += took > 3.0

            pids = tree(server.pid)
            pg_pids = tree(args.postgres_pid) if store == "postgres" else []
            cpu0, pg0, t0 = cpu_seconds(pids), cpu_seconds(pg_pids), time.perf_counter()
            me0 = sum(os.times()[:2])
            await asyncio.gather(*(user(u) for u in range(args.users)))
            wall = time.perf_counter() - t0
            client_cpu = sum(os.times()[:2]) - me0  # this process: the simulated users and the fake Slack
            server_cpu = cpu_seconds(pids) - cpu0
            pg_cpu = cpu_seconds(tree(args.postgres_pid)) - pg0 if store == "postgres" else None
        peak = peak_kb(tree(server.pid))
    finally:
        server.send_signal(2 if prefix else 15)  # SIGINT lets a profiler write its report
        server.wait(timeout=60)
        await fake.stop()
    lat = sorted(latencies)
    q = lambda p: round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 1) if lat else None  # noqa: E731
    return {"store": store, "workers": workers, "users": args.users, "think_s": args.think,
            "messages": args.users * args.messages, "answered": len(lat),
            "p50_ms": q(0.50), "p95_ms": q(0.95), "p99_ms": q(0.99),
            "mean_ms": round(statistics.mean(lat) * 1000, 1) if lat else None,
            "events_per_s": round(len(lat) / wall, 1), "errors": errors, "later_than_3s": late,
            "server_cpu_ms_per_event": round(1000 * server_cpu / max(1, len(lat)), 2),
            "server_cpu_busy": round(server_cpu / wall, 2),
            "postgres_cpu_busy": round(pg_cpu / wall, 2) if pg_cpu is not None else None,
            "load_generator_cpu_busy": round(client_cpu / wall, 2),
            "machine_load_avg_1m": round(os.getloadavg()[0], 1),
            "server_peak_rss_mb": round(peak / 1024, 1)}


def table(rows: list[dict]) -> str:
    head = ("store", "workers", "events/s", "p50 ms", "p95 ms", "p99 ms", "> 3 s", "errors", "bot CPU busy",
            "postgres CPU busy", "load generator CPU busy", "bot peak RSS MB", "load avg")
    keys = ("store", "workers", "events_per_s", "p50_ms", "p95_ms", "p99_ms", "later_than_3s", "errors",
            "server_cpu_busy", "postgres_cpu_busy", "load_generator_cpu_busy", "server_peak_rss_mb",
            "machine_load_avg_1m")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append("| " + " | ".join("-" if r[k] is None else str(r[k]) for k in keys) + " |")
    return "\n".join(lines)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--messages", type=int, default=10, help="messages per user")
    ap.add_argument("--think", type=float, default=1.0,
                    help="seconds each user waits between messages (0: no pause, a saturation test)")
    ap.add_argument("--workers", type=int, default=1, help="policybot serve --workers")
    ap.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--matrix", action="store_true", help="SQLite and PostgreSQL, 1 and 2 workers, one table")
    args = ap.parse_args()
    runs = [(s, w) for s in ("sqlite", "postgres") for w in (1, 2)] if args.matrix else [(args.store, args.workers)]
    cluster = None
    if any(s == "postgres" for s, _ in runs):
        from tests.pg.cluster import start_cluster
        cluster = start_cluster()  # a throwaway cluster, as the tests use (fsync off: it measures us, not disks)
        args.postgres_pid = int((cluster.data / "postmaster.pid").read_text().split()[0])
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for n, (store, workers) in enumerate(runs):
                if store == "sqlite":
                    database = {"POLICYBOT_DATABASE": f"{tmp}/bench-{n}.db"}
                else:
                    import psycopg
                    with psycopg.connect(cluster.url, autocommit=True) as conn:
                        conn.execute(f"CREATE DATABASE bench_{n}")
                    from tests.pg.server import database_url
                    database = {"POLICYBOT_DATABASE_URL": database_url(cluster.url, f"bench_{n}")}
                row = await run_one(args, store, workers, database)
                rows.append(row)
                print(json.dumps(row), file=sys.stderr)
    finally:
        if cluster:
            cluster.destroy()
    if args.matrix:
        print(f"{args.users} users, {args.messages} messages each, think {args.think} s, {os.cpu_count()} cores\n")
        print(table(rows))
    else:
        print(json.dumps(rows[0], indent=2))


if __name__ == "__main__":
    asyncio.run(main())
