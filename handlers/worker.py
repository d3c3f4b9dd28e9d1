"""Slow, pure work (checking a draft, searching the policy) run off the event loop.

Checking a 40,000-character draft takes a while. Run on the server's event loop it would hold
up every other user's acknowledgement (Slack wants one within 3 s, Teams an answer within 15 s).
So the surfaces hand checks and searches to a small thread pool and await the result; the
loop stays free to ack and answer everyone else. The work is pure (no store access), so it
needs no locking. Threads, not processes: the checker and the search index are built once
and shared, nothing has to be pickled, and the interpreter hands the loop its turn every few
milliseconds even while a check runs.
"""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from functools import partial

THREADS = 4


class Worker:
    def __init__(self, threads: int = THREADS):
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="policybot-work")

    async def run(self, fn, *args, **kwargs):
        """fn(*args, **kwargs) on a worker thread; the caller's event loop carries on meanwhile."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, partial(fn, *args, **kwargs))

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
