"""Probe: does each escalation reach Slack exactly once? Counts deliveries tried and duplicates.

Four faults, all on loopback with the fake Slack from tests/slack_fake.py:
  one process    N escalations, 10 delivery tasks on one connection and 4 threads with their own, at once
  two processes  the same N, two delivery processes started together
  kill -9        a delivery process killed the moment Slack has stored a post, K times, each time restarted
  replays        the same signed "Ask comms to review" click sent 5 times to `policybot serve`'s Slack route

A copy is a post in the fake Slack for an escalation (its "#id"), counted per part (the alert,
and a draft review's thread reply). Duplicates = copies beyond the first.

Run:   .venv/bin/python benchmarks/probe_escalations.py [--escalations 120] [--kills 8]
Older code, e.g. main (same API for what this drives):
       .venv/bin/python benchmarks/probe_escalations.py --code /path/to/other/checkout
Not a test: it measures, it asserts nothing.
"""
from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import types
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
ID = re.compile(r"· #(\d+) ·")


def _fake_module():
    """This checkout's fake Slack, whichever code is under test. Loaded as a module of a package of
    its own (tests/ under another name), so its relative imports work and --code's tests/ can't shadow it."""
    if "probe_tests" not in sys.modules:
        package = types.ModuleType("probe_tests")
        package.__path__ = [str(HERE / "tests")]
        sys.modules["probe_tests"] = package
    return importlib.import_module("probe_tests.slack_fake")


def service(store, url, session):
    """The code under test's escalation service with its Slack notifier, whichever API it has."""
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.slack.notifier import SlackNotifier
    from handlers.escalation import EscalationService
    notifier = SlackNotifier(AsyncWebClient(token="xoxb-probe", base_url=url + "/api/", session=session), "CCOMMS", "CSAFE")
    if hasattr(EscalationService, "add_notifier"):
        return EscalationService(store, {"slack": notifier})
    return EscalationService(store, notifier)


def seed(store, n: int) -> None:
    for i in range(n):
        kind = ("comms", "safeguarding", "review", "line_manager")[i % 4]
        store.add_escalation(kind, f"probe escalation {i}", requester_surface="slack", requester_user="U1",
                             target=f"UMGR{i:03d}" if kind == "line_manager" else "")


def copies(fake) -> tuple[Counter, int]:
    """Copies per (escalation id, part), and how many posts were tried in all."""
    parents, out, tried = {}, Counter(), 0
    for method, params in fake.calls:
        if method != "chat.postMessage":
            continue
        tried += 1
    for channel, messages in fake.history.items():
        for m in messages:
            text = json.dumps(m.get("blocks") or [], ensure_ascii=False)
            found = ID.search(text)
            if found and "thread_ts" not in m:
                parents[(channel, m["ts"])] = found.group(1)
                out[(found.group(1), "alert")] += 1
        for m in messages:
            if "thread_ts" in m and (channel, m["thread_ts"]) in parents:
                out[(parents[(channel, m["thread_ts"])], "draft")] += 1
    return out, tried


def report(name: str, fake, escalations: int, reviews: int) -> None:
    """`escalations` raised (or clicks made), `reviews` of them draft reviews (two posts each)."""
    counts, tried = copies(fake)
    wanted = escalations + reviews
    posted = len({k[0] for k in counts})
    print(f"{name:<15} escalations {escalations:>4}  posts tried {tried:>5}  posts wanted {wanted:>4}  "
          f"duplicate posts {sum(counts.values()) - wanted:>5}  escalations posted {posted:>4}  "
          f"of them more than once {len({k[0] for k, v in counts.items() if v > 1}):>4}  "
          f"most copies of one {max(counts.values(), default=0):>3}")


async def one_process(n: int, work: Path) -> None:
    import aiohttp

    from bot.storage import SQLiteStore
    fake = await _fake_module().FakeSlack().start()
    db = work / "one.db"
    store = SQLiteStore(db)
    seed(store, n)

    def in_thread():
        async def run():
            s = SQLiteStore(db)
            async with aiohttp.ClientSession() as session:
                svc = service(s, fake.url, session)
                await asyncio.gather(*(svc.deliver_pending() for _ in range(5)))
        asyncio.run(run())
    async with aiohttp.ClientSession() as session:
        svc = service(store, fake.url, session)
        await asyncio.gather(*(svc.deliver_pending() for _ in range(10)), *(asyncio.to_thread(in_thread) for _ in range(4)))
    report("one process", fake, n, n // 4 + (n % 4 > 2))
    await fake.stop()


def spawn(db: Path, url: str, code: str, offset: float, tasks: int = 5) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, "--worker", str(db), url, "--code", code, "--offset", str(offset),
                             "--tasks", str(tasks)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


async def two_processes(n: int, work: Path, code: str) -> None:
    from bot.storage import SQLiteStore
    fake = await _fake_module().FakeSlack().start()
    db = work / "two.db"
    seed(SQLiteStore(db), n)
    procs = [spawn(db, fake.url, code, 0) for _ in range(2)]
    for p in procs:
        await asyncio.to_thread(p.stdout.readline)
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    await asyncio.gather(*(asyncio.to_thread(p.wait) for p in procs))
    report("two processes", fake, n, n // 4 + (n % 4 > 2))
    await fake.stop()


async def kill_9(kills: int, work: Path, code: str) -> None:
    from bot.storage import SQLiteStore
    fake = await _fake_module().FakeSlack().start()
    db = work / "kill.db"
    seed(SQLiteStore(db), kills)
    victim, done = {}, []

    async def on_post(params, message):
        proc = victim.pop("proc", None)
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)  # Slack has the post; the bot never hears back
            done.append(message["ts"])
    fake.on_post = on_post
    for n in range(kills * 3):
        proc = spawn(db, fake.url, code, n * 1000.0, tasks=1)
        await asyncio.to_thread(proc.stdout.readline)
        if len(done) < kills:
            victim["proc"] = proc
        proc.stdin.write("go\n")
        proc.stdin.flush()
        code_ = await asyncio.to_thread(proc.wait)
        if code_ == 0 and len(done) >= kills:
            break
    report(f"kill -9 (x{len(done)})", fake, kills, kills // 4 + (kills % 4 > 2))
    await fake.stop()


async def replays(work: Path) -> None:
    from aiohttp import ClientSession, web

    from bot.app import build_core
    from bot.config import SlackSettings
    from bot.server import build_web_app
    from bot.slack.app import SlackSurface
    from bot.storage import SQLiteStore
    fakes = _fake_module()
    fake = await fakes.FakeSlack().start()
    core = build_core(HERE / "app.yaml", store=SQLiteStore(work / "replay.db"))
    slack = SlackSurface(core, SlackSettings(mode="http", comms_channel="CCOMMS", safeguarding_channel="CSAFE"),
                         token="xoxb-probe", signing_secret=fakes.SIGNING_SECRET, base_url=fake.url + "/api/")
    runner = web.AppRunner(build_web_app(core, slack))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/slack/events"
    body = fakes.payload_body({"type": "block_actions", "user": {"id": "U1"}, "channel": {"id": "D1"},
                               "message": {"ts": "3.3"}, "trigger_id": "trig-1",
                               "actions": [{"action_id": "ask_comms:0", "value": "draft|probe draft", "type": "button",
                                            "action_ts": "1700000000.123"}]})
    async with ClientSession() as http:
        for _ in range(5):
            await fakes.post(http, url, body, "application/x-www-form-urlencoded")
            await slack.drain()
    await slack.drain()
    report("5 replays", fake, 1, 1)
    await slack.close()
    await runner.cleanup()
    await fake.stop()


async def worker(db: str, url: str, offset: float, tasks: int) -> None:
    import datetime as dt

    import aiohttp

    from bot.storage import SQLiteStore
    async with aiohttp.ClientSession() as session:
        svc = service(SQLiteStore(db), url, session)
        if hasattr(svc, "clock"):
            from handlers.store import utcnow
            svc.clock = lambda: utcnow() + dt.timedelta(seconds=offset)
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        while any(await asyncio.gather(*(svc.deliver_pending() for _ in range(tasks)))):
            pass


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--escalations", type=int, default=120)
    p.add_argument("--kills", type=int, default=8)
    p.add_argument("--code", default=str(HERE), help="the checkout whose bot/ and handlers/ to probe")
    p.add_argument("--worker", nargs=2, metavar=("DB", "URL"), help=argparse.SUPPRESS)
    p.add_argument("--offset", type=float, default=0.0, help=argparse.SUPPRESS)
    p.add_argument("--tasks", type=int, default=5, help=argparse.SUPPRESS)
    args = p.parse_args()
    sys.path.insert(0, str(Path(args.code).resolve()))
    if args.worker:
        asyncio.run(worker(args.worker[0], args.worker[1], args.offset, args.tasks))
        return
    import logging
    logging.basicConfig(level=logging.CRITICAL)
    print(f"code under test: {Path(args.code).resolve()}")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["POLICYBOT_DATABASE"] = str(Path(tmp) / "unused.db")
        work = Path(tmp)
        asyncio.run(one_process(args.escalations, work))
        asyncio.run(two_processes(args.escalations, work, args.code))
        asyncio.run(kill_9(args.kills, work, args.code))
        asyncio.run(replays(work))


if __name__ == "__main__":
    main()
