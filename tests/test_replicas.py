"""Two `policybot serve` processes on one database, both pointed at the fake Slack.

On PostgreSQL (the deployment with several instances), and on SQLite too (what `--workers N`
uses on one machine). Each replica is a real process: signed HTTP in, Web API calls out, and
`kill -9` is a real SIGKILL. No timing is asserted: each wait is for an event (a post reaching
the fake Slack, a row changing in the database, a process exiting).
"""
from __future__ import annotations

import asyncio
import json
import time
from types import SimpleNamespace

import aiohttp
import pytest

from handlers.store import StoreUnavailable

from .replicas import ANSWERS, Replica, ReplicaFake, caller, dm, step_of, write_config

LEASE = 4  # seconds a replica that died mid-send holds an escalation


@pytest.fixture
async def rig(storage, tmp_path):
    fake = await ReplicaFake().start()
    config = write_config(tmp_path, retry_every=0.3, lease=LEASE)
    replicas = {}

    async def start(name: str) -> Replica:
        replica = Replica(name, config, storage.env, fake, tmp_path).launch()
        replicas[name] = replica
        return await replica.ready()

    a, b = await asyncio.gather(start("a"), start("b"))
    yield SimpleNamespace(fake=fake, a=a, b=b, storage=storage, start=start, replicas=replicas)
    for replica in replicas.values():
        await replica.close()
    await fake.stop()


async def barrier(*replicas: Replica) -> None:
    """Each replica answers a new DM: everything it was handed before has been handled (events run in order)."""
    for r in replicas:
        ts = f"{time.time():.6f}"
        await r.event(dm("help", ts=ts, user="UBARRIER"), f"EvBarrier-{r.name}-{ts}")
        await r.fake.wait_for("chat.postMessage", lambda p: p.get("thread_ts") == ts, timeout=30)


async def until(check, timeout: float = 60.0, every: float = 0.05):
    """Wait for check() to return something truthy (a row reaching a state), and return it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        await asyncio.sleep(every)
    raise AssertionError("the condition was not met in time")


async def test_the_same_event_at_both_replicas_gives_one_reply_and_one_incident(rig):
    for n in range(5):  # five users, each event delivered to both replicas at the same moment
        event = dm("report contact", ts=f"50{n}.1", user=f"U5{n}")
        results = await asyncio.gather(rig.a.event(event, f"EvBoth{n}"),
                                       rig.b.event(event, f"EvBoth{n}", headers={"X-Slack-Retry-Num": "1"}))
        assert [status for status, _ in results] == [200, 200]
    for n in range(5):
        await rig.fake.wait_for("chat.postMessage", lambda p: p.get("thread_ts") == f"50{n}.1")
    await barrier(rig.a, rig.b)
    for n in range(5):
        replies = [p for p in rig.fake.of("chat.postMessage") if p.get("thread_ts") == f"50{n}.1"]
        assert len(replies) == 1 and "Which platform" in json.dumps(replies[0]["blocks"])
    assert rig.storage.count("incidents") == 5
    assert rig.storage.sql("SELECT count(DISTINCT user_id) FROM incidents") == [(5,)]


async def test_a_report_started_on_one_replica_completes_on_the_other(rig):
    await rig.a.command(user="U7")
    view = (await rig.fake.wait_for("views.open"))["view"]
    for i, answer in enumerate(ANSWERS):
        status, body = await [rig.b, rig.a][i % 2].submit(view, answer, user="U7")
        assert status == 200 and body["response_action"] == "update", body
        view = body["view"]
    assert "Thank you. Your report is INC-" in json.dumps(view)
    [(ref, status, answers)] = rig.storage.sql(
        "SELECT ref, status, (SELECT count(*) FROM answers WHERE incident_id = incidents.id) FROM incidents "
        "WHERE user_id = 'U7'")
    assert status == "completed" and answers == len(ANSWERS)
    await rig.fake.wait_for("chat.postMessage", lambda p: p["channel"] == "U7" and ref in p.get("text", ""))
    await until(lambda: rig.storage.sql("SELECT status FROM escalations WHERE kind = 'line_manager'") == [("sent",)])
    await barrier(rig.a, rig.b)
    assert len(rig.fake.posts("UMGR")) == 1  # the line manager's summary, once


async def test_kill_9_mid_flow_and_mid_escalation_loses_nothing_and_sends_nothing_twice(rig):
    fake = rig.fake
    # Mid-flow: replica a dies while opening the modal, after it stored the new report (and acknowledged
    # the command: the kill waits for the acknowledgement to reach us, then happens with views.open pending).
    acked, died = asyncio.Event(), asyncio.Event()

    async def kill_a_opening_the_modal(method: str) -> None:
        if method == "views.open" and caller() == "a" and not died.is_set():
            await acked.wait()
            rig.a.kill()
            died.set()
    fake.before_call = kill_a_opening_the_modal
    status, _ = await rig.a.command(user="U9")
    assert status == 200
    acked.set()
    await died.wait()
    [(ref,)] = rig.storage.sql("SELECT ref FROM incidents WHERE user_id = 'U9' AND status = 'in_progress'")
    fake.before_call = None
    # The user tries again; the other replica resumes the same report.
    opened = len(fake.of("views.open"))
    await rig.b.command(user="U9")
    view = (await until(lambda: fake.of("views.open")[opened:]))[0]["view"]
    assert "in progress" in json.dumps(view) and step_of(view) == "platform"
    survivor = await rig.start("c")  # a replacement instance comes up beside b
    for i, answer in enumerate(ANSWERS[:4]):
        _, body = await [rig.b, survivor][i % 2].submit(view, answer, user="U9")
        view = body["view"]

    # Mid-escalation: whichever replica posts the safeguarding alert is killed right after Slack accepted it,
    # before it can record the delivery (Slack's answer never reaches it). The other must not post it again.
    posted: dict[str, str] = {}
    answered = asyncio.Event()

    async def kill_the_sender(params: dict, message: dict) -> None:
        if params.get("channel") == "CSAFE" and not posted:
            posted.update(by=caller(), ts=message["ts"])
            await answered.wait()  # the user's step was answered first; the sender still awaits Slack
            rig.replicas[caller()].kill()
    fake.on_post = kill_the_sender
    _, body = await rig.b.submit(view, {"type": "plain_text_input", "value": "Says she will kill herself tonight"},
                                 user="U9")
    answered.set()
    view = body["view"]
    assert "Samaritans" in json.dumps(view) and step_of(view) == "screenshot"
    await until(lambda: posted.get("by") and rig.replicas[posted["by"]].proc.poll() is not None)
    alive = survivor if posted["by"] == "b" else rig.b
    row = await until(lambda: rig.storage.sql(
        "SELECT uid, message_ref, attempts FROM escalations WHERE kind = 'safeguarding' AND status = 'sent'"),
        timeout=LEASE * 10)
    [(uid, message_ref, attempts)] = row
    assert attempts == 2 and message_ref == f"CSAFE:{posted['ts']}"  # taken over, found, not posted again
    alerts = [m for m in fake.posts("CSAFE") if (m.get("metadata") or {}).get("event_payload", {}).get("uid") == uid]
    assert len(alerts) == 1

    # The report finishes on the replica still standing, with every answer once.
    for answer in ANSWERS[5:]:
        status, body = await alive.submit(view, answer, user="U9")
        assert status == 200, body
        view = body["view"]
    assert f"Thank you. Your report is {ref}" in json.dumps(view)
    steps = [s for (s,) in rig.storage.sql(
        "SELECT answers.step FROM answers JOIN incidents ON incidents.id = answers.incident_id WHERE ref = ? ORDER BY answers.id",
        [ref])]
    assert steps == ["platform", "contact_kind", "from_whom", "occurred_at", "description", "screenshot",
                     "line_manager", "notify_manager", "redirect", "privacy"]
    assert rig.storage.count("incidents") == 1
    await until(lambda: rig.storage.sql("SELECT status FROM escalations WHERE kind = 'line_manager'") == [("sent",)])
    await barrier(alive)
    assert len(fake.posts("UMGR")) == 1 and len([m for m in fake.posts("CSAFE") if m.get("metadata")]) == 1


# --- the database going away while serving ------------------------------------------------

@pytest.fixture
def own_cluster(tmp_path):
    """A PostgreSQL cluster of this test's own, so stopping it disturbs no other test."""
    import os

    from .pg.cluster import ClusterUnavailable, start_cluster
    from .pg.server import PgServer, Storage
    try:
        cluster = start_cluster()
    except ClusterUnavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required under CI=true: {exc}", pytrace=False)
        pytest.skip(f"PostgreSQL tests skipped: {exc}")
    server = PgServer(cluster.url, cluster)
    storage = Storage("postgres", tmp_path, server)
    yield SimpleNamespace(cluster=cluster, storage=storage)
    server.close()


@pytest.mark.postgres
async def test_database_going_away_gets_try_again_then_recovers_by_itself(own_cluster, tmp_path):
    fake = await ReplicaFake().start()
    replica = Replica("a", write_config(tmp_path, retry_every=0.3), own_cluster.storage.env, fake, tmp_path).launch()
    try:
        await replica.ready()
        thread = lambda ts: [p for p in fake.of("chat.postMessage") if p.get("thread_ts") == ts]  # noqa: E731
        ready = lambda: replica.http.get(replica.url + "/readyz")  # noqa: E731
        await replica.command(user="U61")  # a report under way when the database goes
        step_one = (await fake.wait_for("views.open"))["view"]

        own_cluster.cluster.stop()
        status, body = await replica.submit(step_one, ANSWERS[0], user="U61")
        assert body["response_action"] == "errors" and "press Next again" in body["errors"]["answer"]
        draft = "can I post this? Canary-4417 from Ward 4 says hi"
        await replica.event(dm(draft, ts="600.1"), "EvDown1")
        reply = await fake.wait_for("chat.postMessage", lambda p: p.get("thread_ts") == "600.1")
        assert "can't reach the incident log" in reply["text"] and "try again" in reply["text"]
        opened = len(fake.of("views.open"))
        await replica.command(user="U60")
        view = (await until(lambda: fake.of("views.open")[opened:]))[0]["view"]
        assert "can't reach the incident log" in json.dumps(view)
        async with ready() as resp:  # not ready, and why; the process itself stays alive
            checks = (await resp.json())["checks"]
            assert resp.status == 503 and checks["database"].startswith("unreachable: the PostgreSQL database")
        async with replica.http.get(replica.url + "/healthz") as resp:
            assert resp.status == 200

        own_cluster.cluster.start()

        async def database_back():
            async with ready() as resp:
                return (await resp.json())["checks"]["database"] == "ok"
        deadline = time.monotonic() + 60
        while not await database_back():  # the pool reconnects by itself; nothing restarts the server
            assert time.monotonic() < deadline, "the server did not reconnect to the database"
            await asyncio.sleep(0.1)
        await replica.event(dm("disclaimer wording?", ts="600.2"), "EvUp1")
        answer = await fake.wait_for("chat.postMessage", lambda p: p.get("thread_ts") == "600.2")
        assert "disclaimer" in json.dumps(answer["blocks"]).lower() and "can't reach" not in answer["text"]
        status, body = await replica.submit(step_one, ANSWERS[0], user="U61")  # Next again: nothing was lost
        assert body["response_action"] == "update" and step_of(body["view"]) == "contact_kind"
        opened = len(fake.of("views.open"))
        await replica.command(user="U60")
        await until(lambda: fake.of("views.open")[opened:])
        assert own_cluster.storage.sql("SELECT count(*) FROM incidents WHERE user_id = 'U60'") == [(1,)]
        assert len(thread("600.1")) == 1 and len(thread("600.2")) == 1
        logs = replica.logs()
        assert "store unavailable" in logs and "Canary-4417" not in logs and "Ward 4" not in logs
        assert "Traceback" not in logs
    finally:
        await replica.close()
        await fake.stop()


# --- serve --workers ------------------------------------------------------------------------

async def test_workers_share_the_port_and_a_dead_one_is_replaced(storage, tmp_path):
    fake = await ReplicaFake().start()
    server = Replica("w", write_config(tmp_path), storage.env, fake, tmp_path, workers=2).launch()
    try:
        await server.ready()

        async def pids_seen(want: int, exclude=()) -> set[int]:
            """Worker pids answering /healthz on fresh connections, until `want` distinct ones are seen."""
            seen: set[int] = set()
            deadline = time.monotonic() + 60
            while len(seen - set(exclude)) < want:
                assert time.monotonic() < deadline, f"only saw workers {seen}"
                async with aiohttp.ClientSession() as fresh:  # a new connection: SO_REUSEPORT may pick either
                    try:
                        async with fresh.get(server.url + "/healthz") as resp:
                            seen.add(int(resp.headers["X-Policybot-Worker"]))
                    except aiohttp.ClientError:
                        await asyncio.sleep(0.05)
            return seen - set(exclude)

        first = await pids_seen(2)
        assert server.proc.pid not in first
        victim = sorted(first)[0]
        import os
        import signal
        os.kill(victim, signal.SIGKILL)
        replaced = await pids_seen(2, exclude={victim})  # the supervisor started another
        assert len(replaced) == 2 and victim not in replaced
        # Both workers handle Slack events against the one store, each event once.
        for n in range(6):
            await server.event(dm("report contact", ts=f"70{n}.1", user=f"U7{n}"), f"EvW{n}")
        for n in range(6):
            await fake.wait_for("chat.postMessage", lambda p: p.get("thread_ts") == f"70{n}.1")
        assert storage.count("incidents") == 6
        server.proc.terminate()
        assert server.proc.wait(timeout=60) == 0
        for pid in replaced:  # the workers went with it
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
    finally:
        await server.close()
        await fake.stop()


@pytest.mark.postgres
async def test_teams_gets_try_again_while_the_database_is_away(own_cluster, caplog):
    """The same on Teams (in process, botbuilder's CloudAdapter and the fake connector): a card saying so."""
    from .test_teams import Rig as TeamsRig
    async with TeamsRig(own_cluster.storage) as rig:
        await rig.send("hello")  # the conversation reference is stored
        own_cluster.cluster.stop()
        assert await rig.send("can I post this? Canary-8812 on Ward 2") in (200, 201)
        assert "can't reach the incident log" in rig.cards()[-1]
        own_cluster.cluster.start()
        deadline = time.monotonic() + 60
        while True:
            try:
                rig.core.store.ping()
                break
            except StoreUnavailable:
                assert time.monotonic() < deadline, "no reconnection"
                await asyncio.sleep(0.1)
        await rig.send("report contact")
        assert "Step 1 of 5" in rig.cards()[-1]
    assert not any("Canary-8812" in r.getMessage() for r in caplog.records)
