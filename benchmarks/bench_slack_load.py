"""Load: concurrent simulated Slack users DM-ing `policybot serve` on loopback, with a fake Web API.

Measures, per message, the time from sending the signed event to the bot's chat.postMessage
reaching the fake Slack; reports p50/p95/p99, events/s, errors, replies later than 3 s, and the
server's peak memory. Bounded: USERS x MESSAGES requests to 127.0.0.1 only, then it stops.

Run: .venv/bin/python benchmarks/bench_slack_load.py [--users 100] [--messages 10] [--think 1.0]
--think 0 makes it a saturation test: with no pause, latency is mostly queueing (users / events per s).
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


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--messages", type=int, default=10, help="messages per user")
    ap.add_argument("--think", type=float, default=1.0,
                    help="seconds each user waits between messages (0: no pause, a saturation test)")
    args = ap.parse_args()
    fake = await TimedFake().start()
    port = free_port()
    exe = Path(sys.executable).parent / "policybot"
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "SLACK_BOT_TOKEN": "xoxb-bench", "SLACK_SIGNING_SECRET": SIGNING_SECRET,
               "SLACK_API_URL": fake.url + "/api/", "POLICYBOT_DATABASE": f"{tmp}/bench.db"}
        prefix = os.environ.get("BENCH_SERVER_PREFIX", "").split()  # e.g. a profiler
        server = subprocess.Popen(prefix + [str(exe), "serve", "--port", str(port)], env=env, cwd=ROOT,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        latencies, errors, late = [], 0, 0
        try:
            async with ClientSession(timeout=ClientTimeout(total=10)) as http:
                for _ in range(200):
                    try:
                        async with http.get(url + "/healthz") as r:
                            if r.status == 200:
                                break
                    except OSError:
                        await asyncio.sleep(0.05)

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

                cpu0, t0 = cpu_seconds(server.pid), time.perf_counter()
                await asyncio.gather(*(user(u) for u in range(args.users)))
                wall = time.perf_counter() - t0
                server_cpu = cpu_seconds(server.pid) - cpu0
            peak = peak_kb(server.pid)
        finally:
            server.send_signal(2 if prefix else 15)  # SIGINT lets a profiler write its report
            server.wait(timeout=30)
            await fake.stop()
    lat = sorted(latencies)
    q = lambda p: round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 1) if lat else None
    print(json.dumps({"users": args.users, "think_s": args.think, "messages": args.users * args.messages,
                      "answered": len(lat),
                      "p50_ms": q(0.50), "p95_ms": q(0.95), "p99_ms": q(0.99),
                      "mean_ms": round(statistics.mean(lat) * 1000, 1) if lat else None,
                      "events_per_s": round(len(lat) / wall, 1), "errors": errors, "later_than_3s": late,
                      "server_cpu_ms_per_event": round(1000 * server_cpu / max(1, len(lat)), 2),
                      "server_cpu_busy": round(server_cpu / wall, 2),
                      "server_peak_rss_mb": round(peak / 1024, 1)}, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
