"""Slow, pure work (checking a draft, searching the policy) run off the event loop.

Checking a 40,000-character draft takes a while. Run on the server's event loop it would hold
up every other user's acknowledgement (Slack wants one within 3 s, Teams an answer within 15 s).
So the surfaces hand checks and searches to worker threads and await the result; the loop
stays free to ack and answer everyone else. The work is pure (no store access), so it needs
no locking. Threads, not processes: the checker and the search index are built once and
shared, nothing has to be pickled, and the interpreter hands the loop its turn every few
milliseconds even while a check runs.

Two lanes: work on long text (over LONG_TEXT characters) has its own threads, so a queue of
40,000-character drafts never holds up a question or a short draft behind it.
"""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from functools import partial

LONG_TEXT = 5000   # characters: longer drafts are checked in the long lane
THREADS = 2        # for questions and short drafts
LONG_THREADS = 2   # for long drafts


class Worker:
    def __init__(self, threads: int = THREADS, long_threads: int = LONG_THREADS):
        self.quick = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="policybot-work")
        self.long = ThreadPoolExecutor(max_workers=long_threads, thread_name_prefix="policybot-long")

    async def run(self, fn, *args, size: int = 0, **kwargs):
        """fn(*args, **kwargs) on a worker thread; the caller's event loop carries on meanwhile.
        `size`: how many characters of text the work reads (which lane it goes to)."""
        pool = self.long if size > LONG_TEXT else self.quick
        return await asyncio.get_running_loop().run_in_executor(pool, partial(fn, *args, **kwargs))

    def close(self) -> None:
        for pool in (self.quick, self.long):
            pool.shutdown(wait=False, cancel_futures=True)
