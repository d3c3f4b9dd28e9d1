"""Acknowledgements while other users' drafts at the 40,000-character cap are being checked.

In one process: our aiohttp server with the real bolt stack and a fake Slack on 127.0.0.1.
Heavy users keep sending 40,000-character drafts (each waits for its answer, then sends the
next); meanwhile a light user sends short questions. For
each of the light user's events it measures the time to the HTTP acknowledgement (Slack wants
it within 3 s) and to the threaded answer. `--inline` runs checks and searches on the event
loop, as before they moved to worker threads, for comparison. Bounded: a fixed number of
requests to 127.0.0.1, then it stops.

`--slow S` adds S seconds to every long check (a sleep), standing in for the pre-linear checker
that took 14-28 s on such drafts.

Run: .venv/bin/python benchmarks/bench_ack_under_load.py [--heavy 4] [--light 20] [--inline] [--slow 0]
Not a test: it measures, it asserts nothing.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from aiohttp import ClientSession, web  # noqa: E402

from bot.app import build_core  # noqa: E402
from bot.config import SlackSettings  # noqa: E402
from bot.server import build_web_app  # noqa: E402
from bot.slack.app import SlackSurface  # noqa: E402
from bot.storage import SQLiteStore  # noqa: E402
from tests.slack_fake import SIGNING_SECRET, FakeSlack, event_body, post  # noqa: E402

HEAVY = ("the lad in bay 3 thinks the telly is talking to him lol. Ward 4 nutter committed suicide. Vote Tory on "
         "Thursday! psycho schizo. My patient John Smith on Ward 9. Buy Herbalife 20% off. A journalist called me.\n")


def dm(text: str, ts: str, user: str) -> dict:
    return {"type": "message", "channel_type": "im", "channel": "D" + user, "user": user, "text": text, "ts": ts}


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


async def main(heavy: int, light: int, inline: bool, slow: float) -> None:
    fake = await FakeSlack().start()
    tmp = tempfile.mkdtemp()
    core = build_core(ROOT / "app.yaml", store=SQLiteStore(Path(tmp) / "b.db"))
    if inline:  # the old behaviour: pending work done on the event loop
        async def on_loop(fn, *args, size=0, **kwargs):
            return fn(*args, **kwargs)
        core.worker.run = on_loop
    if slow:
        inner = core.check.check

        def slowed(text, account="unknown"):
            if len(text) > 10_000:
                time.sleep(slow)
            return inner(text, account)
        core.check.check = slowed
    slack = SlackSurface(core, SlackSettings(mode="http", comms_channel="CCOMMS"), token="xoxb-bench",
                         signing_secret=SIGNING_SECRET, base_url=fake.url + "/api/")
    runner = web.AppRunner(build_web_app(core, slack), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/slack/events"
    draft = (HEAVY * 400)[:40_000]
    acks, answers = [], []
    async with ClientSession() as http:
        t0 = time.perf_counter()
        core.check.check("can I post this? " + draft, "unknown")
        one_check = time.perf_counter() - t0
        stop = asyncio.Event()

        async def heavy_user(n: int):
            i = 0
            while not stop.is_set():  # each sends a draft, waits for its answer, sends the next
                ts = f"h{n}.{i}"
                await post(http, url, event_body(dm("can I post this? " + draft, ts, f"UH{n}"), f"EvH{n}.{i}"),
                           "application/json")
                await fake.wait_for("chat.postMessage", lambda p, ts=ts: p.get("thread_ts") == ts, timeout=300)
                i += 1

        tasks = [asyncio.create_task(heavy_user(n)) for n in range(heavy)]
        await asyncio.sleep(one_check / 2)
        for i in range(light):
            ts = f"l.{i}"
            start = time.perf_counter()
            status, _ = await post(http, url, event_body(dm("whats the samaritans number?", ts, "UL"), f"EvL{i}"),
                                   "application/json")
            acks.append(time.perf_counter() - start)
            await fake.wait_for("chat.postMessage", lambda p, ts=ts: p.get("thread_ts") == ts, timeout=300)
            answers.append(time.perf_counter() - start)
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.gather(*tasks)
    await slack.close()
    await runner.cleanup()
    await fake.stop()
    core.close()
    mode = "inline (checks on the event loop)" if inline else "worker threads"
    print(f"{mode}: {heavy} users sending 40,000-character drafts (one check: {one_check:.2f} s), "
          f"{light} short questions from another user")
    for name, values in (("ack", acks), ("answer", answers)):
        print(f"  {name:6}  median {statistics.median(values) * 1000:7.0f} ms   p95 {pct(values, 95) * 1000:7.0f} ms   "
              f"max {max(values) * 1000:7.0f} ms   over 3 s: {sum(v > 3 for v in values)}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--heavy", type=int, default=4)
    p.add_argument("--light", type=int, default=20)
    p.add_argument("--inline", action="store_true")
    p.add_argument("--slow", type=float, default=0.0)
    a = p.parse_args()
    asyncio.run(main(a.heavy, a.light, a.inline, a.slow))
