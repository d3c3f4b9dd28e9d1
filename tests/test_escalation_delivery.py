"""Each escalation reaches each destination exactly once, and only its team may act on it.

Concurrent deliveries in one process (tasks and threads) and in two processes, `kill -9`
right after the fake Slack accepts a post, replays of the same signed click; then who may
acknowledge or resolve, and display names treated as data. Copies are counted from what the
fake Slack holds, by the escalation uid each post carries in its metadata.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.notifier import SlackNotifier
from bot.storage import SQLiteStore
from handlers.escalation import MAX_ATTEMPTS, EscalationService
from handlers.store import SENT, UNDELIVERABLE, utcnow

from .conftest import ROOT
from .slack_fake import FakeSlack
from .test_slack import Rig

HOSTILE = "<!channel> <https://evil.example/login|Re-enter your NHSmail password>"


def seed(store, n: int) -> list:
    """n escalations of every kind that posts to Slack: comms, safeguarding, a draft for review
    (two posts: the alert and the draft in its thread) and a line manager's summary (a DM)."""
    rows = []
    for i in range(n):
        kind = ("comms", "safeguarding", "review", "line_manager")[i % 4]
        rows.append(store.add_escalation(kind, f"escalation {i}: details", requester_surface="slack",
                                         requester_user="U1", target=f"UMGR{i:03d}" if kind == "line_manager" else ""))
    return rows


def copies(fake: FakeSlack) -> Counter:
    """How many posts the fake Slack holds for each (escalation uid, part)."""
    out = Counter()
    for message in fake.posts():
        payload = (message.get("metadata") or {}).get("event_payload") or {}
        out[(payload.get("uid"), payload.get("part"))] += 1
    return out


def expected(rows) -> set:
    return {(r.uid, "alert") for r in rows} | {(r.uid, "draft") for r in rows if r.kind == "review"}


def assert_each_once(fake: FakeSlack, rows) -> None:
    counts = copies(fake)
    duplicates = {k: v for k, v in counts.items() if v > 1}
    kinds = {r.uid: r.kind for r in rows}
    assert not duplicates, f"posts that went out more than once: {[(kinds.get(u), p, n) for (u, p), n in duplicates.items()]}"
    assert set(counts) == expected(rows)


def slack_service(store, url: str, session, **kw) -> EscalationService:
    client = AsyncWebClient(token="xoxb-test", base_url=url + "/api/", session=session)
    return EscalationService(store, {"slack": SlackNotifier(client, "CCOMMS", "CSAFE")}, **kw)


# -- exactly once ------------------------------------------------------------------------

def _deliver_in_a_thread(db: Path, url: str) -> int:
    async def run():
        store = SQLiteStore(db)
        async with aiohttp.ClientSession() as session:
            service = slack_service(store, url, session)
            done = await asyncio.gather(*(service.deliver_pending() for _ in range(5)))
        store.close()
        return sum(len(d) for d in done)
    return asyncio.run(run())


async def test_concurrent_deliveries_in_one_process_post_each_escalation_once(tmp_path):
    """10 tasks sharing one connection and 4 threads with their own, all delivering the same 120 at once."""
    fake = await FakeSlack().start()
    store = SQLiteStore(tmp_path / "o.db")
    rows = seed(store, 120)
    try:
        async with aiohttp.ClientSession() as session:
            service = slack_service(store, fake.url, session)
            results = await asyncio.gather(*(service.deliver_pending() for _ in range(10)),
                                           *(asyncio.to_thread(_deliver_in_a_thread, tmp_path / "o.db", fake.url)
                                             for _ in range(4)))
        delivered = sum(len(r) for r in results[:10]) + sum(results[10:])
        assert delivered == 120
        assert_each_once(fake, rows)
        assert all(e.status == SENT and e.attempts == 1 for e in store.escalations())
        assert all(e.summary == "[draft delivered to the comms team; not kept here]"
                   for e in store.escalations() if e.kind == "review")
    finally:
        await fake.stop()


def worker(db: Path, url: str, tasks: int = 5, offset: float = 0.0) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "tests.outbox_worker", str(db), url + "/api/", "--tasks", str(tasks),
                             "--clock-offset", str(offset)], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    return proc


async def ready(proc: subprocess.Popen) -> None:
    line = await asyncio.to_thread(proc.stdout.readline)
    assert line.strip() == "ready", line


async def test_two_processes_delivering_at_once_post_each_escalation_once(tmp_path):
    fake = await FakeSlack().start()
    db = tmp_path / "o.db"
    store = SQLiteStore(db)
    rows = seed(store, 120)
    procs = [worker(db, fake.url) for _ in range(2)]
    try:
        for p in procs:
            await ready(p)
        for p in procs:  # both start delivering together
            p.stdin.write("go\n")
            p.stdin.flush()
        codes = await asyncio.gather(*(asyncio.to_thread(p.wait, 60) for p in procs))
        assert codes == [0, 0]
        assert_each_once(fake, rows)
        assert {e.status for e in store.escalations()} == {SENT}
        assert {e.claimed_by for e in store.escalations()} == {""}  # no claim left behind
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        await fake.stop()


async def test_kill_9_right_after_slack_accepts_a_post_never_posts_it_twice(tmp_path):
    """A worker is killed (SIGKILL) the moment the fake Slack has stored each of 8 posts: 4 times before
    Slack's answer goes back (the bot never learns the post landed), 4 times just after it. The next
    worker, its clock past the dead one's lease, claims the row again, finds the post in the channel's
    history by its uid, and records it instead of posting again. One kill lands between a draft
    review's alert and the draft in its thread: only the draft is then posted."""
    fake = await FakeSlack().start()
    db = tmp_path / "o.db"
    store = SQLiteStore(db)
    rows = seed(store, 8)
    victim: dict = {}
    kills = []

    async def on_post(params, message):
        proc = victim.get("proc")
        if proc is None or proc.poll() is not None:
            return
        if len(kills) % 2 == 0:
            os.kill(proc.pid, signal.SIGKILL)   # before Slack's answer is sent back
        else:
            asyncio.get_running_loop().call_soon(os.kill, proc.pid, signal.SIGKILL)  # as the answer goes back
        kills.append(message["ts"])
        victim.pop("proc")
    fake.on_post = on_post
    try:
        for n in range(12):
            proc = worker(db, fake.url, tasks=1, offset=n * 1000.0)  # each sees every earlier lease expired
            await ready(proc)
            victim["proc"] = proc if len(kills) < 8 else None
            proc.stdin.write("go\n")
            proc.stdin.flush()
            code = await asyncio.to_thread(proc.wait, 60)
            if code == 0 and len(kills) >= 8:
                break
            assert code == -signal.SIGKILL
        assert len(kills) == 8
        assert_each_once(fake, rows)
        assert {e.status for e in store.escalations()} == {SENT}
        retried = [e for e in store.escalations() if e.attempts > 1]
        assert retried and len(fake.of("conversations.history")) >= len(retried)
    finally:
        proc = victim.get("proc")
        if proc and proc.poll() is None:
            proc.kill()
        await fake.stop()


async def test_replays_of_one_signed_click_give_one_post(tmp_path):
    async with Rig(tmp_path) as rig:
        click = {"type": "block_actions", "user": {"id": "U1"}, "channel": {"id": "D1"}, "message": {"ts": "3.3"},
                 "trigger_id": "trig-1", "actions": [{"action_id": "ask_comms:0", "value": "draft|Ward 9 said hi",
                                                      "type": "button", "action_ts": "1700000000.123"}]}
        for _ in range(5):  # the very same signed request, five times
            status, _ = await rig.interact(click)
            assert status == 200
        await rig.slack.drain()
        # The same draft sent again with a new click: told it has gone already, nothing new posted.
        again = {**click, "trigger_id": "trig-2", "actions": [{**click["actions"][0], "action_ts": "1700000099.5"}]}
        await rig.interact(again)
        told = await rig.fake.wait_for("chat.postEphemeral", lambda p: "already sent" in p["text"])
        assert told["user"] == "U1"
        await rig.slack.drain()
        assert len(rig.core.store.escalations()) == 1
        assert_each_once(rig.fake, rig.core.store.escalations())
        assert len(rig.fake.posts("CCOMMS")) == 2  # the alert and the draft in its thread, once each


async def test_replayed_acknowledge_updates_once_and_tells_the_requester_once(tmp_path):
    async with Rig(tmp_path) as rig:
        await rig.command("a journalist from the paper messaged me about the ward")
        await rig.fake.wait_for("chat.postMessage", lambda p: p["channel"] == "CCOMMS")
        await rig.slack.drain()
        esc = rig.core.store.escalations()[0]
        click = {"type": "block_actions", "user": {"id": "UCOMMS", "name": "alex"}, "channel": {"id": "CCOMMS"},
                 "message": {"ts": "1.1"}, "actions": [{"action_id": "esc_ack:0", "value": str(esc.id),
                                                         "type": "button", "action_ts": "1700000000.5"}]}
        for _ in range(5):
            await rig.interact(click)
        await rig.fake.wait_for("chat.postMessage", lambda p: p["channel"] == "U1" and "being looked at" in p["text"])
        await asyncio.sleep(0)  # let any duplicate handler run before counting
        await rig.slack.drain()
        assert len(rig.fake.of("chat.update")) == 1
        assert len([p for p in rig.fake.of("chat.postMessage") if "being looked at" in p.get("text", "")]) == 1


# -- out of retries ------------------------------------------------------------------------

async def test_out_of_retries_raises_an_alert_line_without_the_text_and_lists_as_failed(tmp_path, caplog):
    from .test_report_contact import cli
    fake = await FakeSlack().start()
    db = tmp_path / "o.db"
    store = SQLiteStore(db)
    esc = store.add_escalation("review", "My patient on Ward 9 said hi", requester_surface="slack",
                               requester_user="U1")
    fake.fail_next["chat.postMessage"] = [(500, {})] * MAX_ATTEMPTS
    try:
        async with aiohttp.ClientSession() as session:
            service = slack_service(store, fake.url, session)
            at = utcnow()
            with caplog.at_level(logging.INFO):
                for n in range(MAX_ATTEMPTS + 2):
                    await service.deliver_pending(now=at)
                    at += dt_hours(3)
        row = store.get_escalation(esc.id)
        assert row.status == UNDELIVERABLE and row.attempts == MAX_ATTEMPTS
        alerts = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(alerts) == 1 and f"#{esc.id}" in alerts[0].getMessage() and "undeliverable" in alerts[0].getMessage()
        assert not any("Ward 9" in r.getMessage() for r in caplog.records)
        code, out = cli(["escalations", "list", "--failed"], db)
        assert code == 0 and f"#{esc.id}" in out and "undeliverable" in out and "Ward 9" not in out
        code, out = cli(["escalations", "list", "--status", "sent"], db)
        assert f"#{esc.id}" not in out
    finally:
        await fake.stop()


def dt_hours(n: int):
    import datetime as dt
    return dt.timedelta(hours=n)


async def until(condition, timeout: float = 5.0) -> None:
    """Wait for something the fake has recorded (no fixed sleeps)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


# -- who may act, and names as data (Slack) ------------------------------------------------

async def raised(rig) -> int:
    await rig.command("a journalist from the paper messaged me about the ward")
    await rig.fake.wait_for("chat.postMessage", lambda p: p["channel"] == "CCOMMS")
    await rig.slack.drain()
    return rig.core.store.escalations()[0].id


def press(rig, esc_id: int, user: dict, action: str = "esc_ack:0", channel: str = "CCOMMS"):
    return rig.interact({"type": "block_actions", "user": user, "channel": {"id": channel}, "message": {"ts": "1.1"},
                         "actions": [{"action_id": action, "value": str(esc_id), "type": "button"}]})


async def test_someone_outside_the_comms_channel_cannot_acknowledge_or_resolve(tmp_path):
    async with Rig(tmp_path) as rig:
        esc_id = await raised(rig)
        for action in ("esc_ack:0", "esc_resolve:1"):
            await press(rig, esc_id, {"id": "UOUTSIDER", "name": "mallory"}, action, channel="CCOMMS")
        await until(lambda: len([p for p in rig.fake.of("chat.postEphemeral")
                                 if "only the comms team can do this" in p["text"]]) == 2)
        await rig.slack.drain()
        assert all(p["user"] == "UOUTSIDER" for p in rig.fake.of("chat.postEphemeral"))
        esc = rig.core.store.get_escalation(esc_id)
        assert esc.status == SENT and not esc.acknowledged_by_id and not esc.resolved_by_id
        assert rig.fake.of("chat.update") == []
        assert not [p for p in rig.fake.of("chat.postMessage") if p["channel"] == "U1" and "looked at" in p["text"]]


async def test_a_user_group_in_app_yaml_decides_who_may_act(tmp_path):
    rig = Rig(tmp_path)
    async with rig:
        rig.slack.notifier.usergroups = {"CCOMMS": "SCOMMS"}
        rig.fake.usergroups = {"SCOMMS": ["UGROUP"]}
        esc_id = await raised(rig)
        await press(rig, esc_id, {"id": "UCOMMS", "name": "in the channel, not the group"})
        await rig.fake.wait_for("chat.postEphemeral", lambda p: "only the comms team" in p["text"])
        await press(rig, esc_id, {"id": "UGROUP", "name": "grouped"})
        await rig.fake.wait_for("chat.update")
        assert rig.core.store.get_escalation(esc_id).acknowledged_by_id == "slack:UGROUP"


async def test_a_hostile_display_name_on_slack_is_text_everywhere_and_the_audit_keeps_the_id(tmp_path):
    async with Rig(tmp_path) as rig:
        esc_id = await raised(rig)
        await press(rig, esc_id, {"id": "UALEX", "name": HOSTILE, "username": HOSTILE})
        updated = await rig.fake.wait_for("chat.update")
        told = await rig.fake.wait_for("chat.postMessage", lambda p: p["channel"] == "U1" and "looked at" in p["text"])
        for params in (updated, told):
            shown = json.dumps(params)
            assert "<!channel>" not in shown and "<https://" not in shown
        assert "&lt;!channel&gt;" in told["text"]
        assert "Acknowledged by <@UALEX>" in rig.text_of(updated)  # the mention is built from the id
        esc = rig.core.store.get_escalation(esc_id)
        assert esc.acknowledged_by_id == "slack:UALEX" and esc.acknowledged_by == HOSTILE

