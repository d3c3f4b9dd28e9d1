"""One user's long check never holds up anyone else: checks and searches run off the event loop.

User A's check is made slow deterministically: it blocks on a threading.Event until the test
releases it. Meanwhile user B is acked and answered. Nothing here measures time: if checks
ran on the event loop, A's blocked check would stall the whole server, B would be served only
after A's check gave up waiting, and the recorded order would say so.
"""
from __future__ import annotations

import asyncio
import threading

from .test_slack import Rig as SlackRig, dm
from .test_teams import Rig as TeamsRig

A_DRAFT = "can I post this? USER-A-DRAFT the lad in bay 3 thinks the telly talks to him"
GIVE_UP = 20.0  # seconds a blocked check waits before carrying on anyway, so a failing run still ends


class SlowCheck:
    """Wraps a CheckHandler's check: A's draft waits for `release`; the order of events is recorded."""

    def __init__(self, check_handler):
        self.inner = check_handler.check
        self.started, self.release = threading.Event(), threading.Event()
        self.order: list[str] = []
        check_handler.check = self

    def __call__(self, text, account="unknown"):
        if "USER-A-DRAFT" in text:
            self.started.set()
            self.release.wait(GIVE_UP)
            self.order.append("A's check finished")
        return self.inner(text, account)

    async def wait_started(self):
        for _ in range(1000):
            if self.started.is_set():
                return
            await asyncio.sleep(0.01)
        raise AssertionError("A's check never started")


async def test_slack_acks_and_answers_others_while_a_long_check_runs(tmp_path):
    async with SlackRig(tmp_path) as rig:
        slow = SlowCheck(rig.core.check)
        status, _ = await rig.event(dm(A_DRAFT, ts="1.1", user="UA"), "EvA")
        assert status == 200  # A is acked at once too
        await slow.wait_started()

        status, _ = await rig.event(dm("what's the samaritans number?", ts="2.1", user="UB"), "EvB")
        slow.order.append(f"B's message acked ({status})")
        status, _ = await rig.command(user="UB")
        slow.order.append(f"B's command acked ({status})")
        await rig.fake.wait_for("views.open")
        answer = await rig.fake.wait_for("chat.postMessage", lambda p: p.get("thread_ts") == "2.1", timeout=GIVE_UP + 5)
        slow.order.append("B answered")
        assert "116 123" in rig.text_of(answer)

        slow.release.set()
        await rig.fake.wait_for("chat.postMessage", lambda p: p.get("thread_ts") == "1.1")
        assert slow.order == ["B's message acked (200)", "B's command acked (200)", "B answered",
                              "A's check finished"]


async def test_teams_answers_others_while_a_long_check_runs(tmp_path):
    async with TeamsRig(tmp_path / "t.db") as rig:
        slow = SlowCheck(rig.core.check)
        a_turn = asyncio.create_task(rig.send(A_DRAFT, user="29:a", conv="a:dm-a"))  # Teams waits for A's turn
        await slow.wait_started()

        status = await rig.send("what's the samaritans number?", user="29:b", conv="a:dm-b")
        slow.order.append(f"B answered ({status})")
        assert any("116 123" in c for c in rig.cards("a:dm-b"))

        slow.release.set()
        assert await a_turn == 201
        assert slow.order == ["B answered (201)", "A's check finished"]
        assert any("Don't post this" in c for c in rig.cards("a:dm-a"))


async def test_checks_and_searches_on_worker_threads_answer_as_they_do_one_at_a_time(core):
    """The checker and the search index are shared by the worker threads: concurrent use changes nothing."""
    from handlers.worker import Worker

    questions = ["an ex-patient added me on Facebook, what do I do?", "can I put the trust logo on my linkedin?",
                 "disclaimer wording?", "whats the samaritans number", "can I post about a protest?"]
    drafts = ["the lad in bay 3 thinks the telly talks to him lol", "Vote Tory on Thursday! #GE",
              "My friend's uncle committed suicide last year. " * 200, "Proud of our team today! #NHS"]
    expected = ([core.ask.answer(q).data for q in questions], [core.check.check(d).as_dict() for d in drafts])
    worker = Worker()
    try:
        asked = [worker.run(core.ask.answer, q, size=len(q)) for q in questions * 4]
        checked = [worker.run(core.check.check, d, size=len(d)) for d in drafts * 4]
        answers = await asyncio.gather(*asked)
        results = await asyncio.gather(*checked)
    finally:
        worker.close()
    assert [a.data for a in answers] == expected[0] * 4
    assert [r.as_dict() for r in results] == expected[1] * 4


async def test_no_check_search_or_scan_runs_on_the_event_loop(tmp_path):
    """Whatever a message turns out to be (draft, question, both, a risk, the draft after "can I post
    this?", a follow-up), its check, search and scans run on worker threads."""
    async with SlackRig(tmp_path) as rig:
        conv = rig.core.conversation
        where: list[tuple[str, str]] = []

        def noting(name, fn):
            def wrapped(*args, **kwargs):
                where.append((name, threading.current_thread().name))
                return fn(*args, **kwargs)
            return wrapped
        rig.core.check.check = noting("check", rig.core.check.check)
        rig.core.ask.answer = noting("search", rig.core.ask.answer)
        conv.triage.scan_message = noting("risk scan", conv.triage.scan_message)
        messages = ["the lad in bay 3 thinks the telly talks to him lol #NHS", "an ex-patient added me on Facebook, what do I do?",
                    "Honestly our trust's new rota policy is a shambles", "a patient said online he will kill himself tonight",
                    "can I post this?", "Proud of our team today! #NHS", "can I friend a colleague on facebook?",
                    "what about instagram?"]
        for n, text in enumerate(messages):
            await rig.event(dm(text, ts=f"{n}.1"), f"EvWhere{n}")
            await rig.fake.wait_for("chat.postMessage", lambda p, n=n: p.get("thread_ts") == f"{n}.1")
        assert {name for name, _ in where} == {"check", "search", "risk scan"}
        on_loop = [(name, thread) for name, thread in where if not thread.startswith("policybot-")]
        assert on_loop == []
