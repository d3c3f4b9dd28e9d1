"""A delivery process for the outbox tests: the real EscalationService and SlackNotifier against a fake Slack.

    python -m tests.outbox_worker DATABASE SLACK_API_URL [--tasks N] [--clock-offset SECONDS]

Prints "ready" once connected, waits for a line on stdin (so several workers can be started
together), then runs N concurrent delivery passes until nothing is due, and prints "done".
--clock-offset runs its clock ahead, so a worker started after another was killed sees that
worker's leases as expired without the test having to wait for them.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.notifier import SlackNotifier
from bot.storage import SQLiteStore
from handlers.escalation import EscalationService
from handlers.store import utcnow


async def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("database")
    p.add_argument("slack_url")
    p.add_argument("--tasks", type=int, default=1)
    p.add_argument("--clock-offset", type=float, default=0.0)
    args = p.parse_args(argv)
    offset = dt.timedelta(seconds=args.clock_offset)
    store = SQLiteStore(args.database)
    async with aiohttp.ClientSession() as session:
        client = AsyncWebClient(token="xoxb-test", base_url=args.slack_url, session=session)
        notifier = SlackNotifier(client, "CCOMMS", "CSAFE")
        service = EscalationService(store, {"slack": notifier}, clock=lambda: utcnow() + offset)
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        while True:
            passes = await asyncio.gather(*(service.deliver_pending() for _ in range(args.tasks)))
            if not any(passes):
                break
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
