"""The escalation outbox, at the store interface (handlers/store.py): claims, leases, finish/fail, moves.

Written against the Store protocol only, so every store can be held to it: add a store to
STORES and `open_store` (a spec must be picklable, to open the same store in another process).
"""
from __future__ import annotations

import datetime as dt
import multiprocessing
import threading

import pytest

from handlers.store import (ACKNOWLEDGED, FAILED, PENDING, RESOLVED, SENDING, SENT, UNDELIVERABLE, Escalation,
                            utcnow)

STORES = ["sqlite"]
LEASE = dt.timedelta(minutes=5)
T0 = utcnow()


def open_store(spec: tuple[str, str]):
    kind, where = spec
    if kind == "sqlite":
        from bot.storage import SQLiteStore
        return SQLiteStore(where)
    raise ValueError(f"no such store: {kind}")


@pytest.fixture(params=STORES)
def spec(request, tmp_path):
    return {"sqlite": ("sqlite", str(tmp_path / "outbox.db"))}[request.param]


@pytest.fixture
def store(spec):
    s = open_store(spec)
    yield s
    s.close()


def add(store, n: int = 1, destination: str = "slack", **kw) -> list[Escalation]:
    return [store.add_escalation("comms", f"escalation {i}", requester_surface="slack", requester_user="U1",
                                 destination=destination, **kw) for i in range(n)]


def claim(store, who: str, at: dt.datetime = T0, destinations=("slack",), limit: int = 1, max_attempts: int = 8):
    return store.claim_escalations(who, list(destinations), now=at, lease=LEASE, max_attempts=max_attempts, limit=limit)


def test_new_rows_are_pending_with_a_uid_and_their_destination(store):
    a, b = add(store, 2)
    assert a.status == PENDING and a.destination == "slack" and a.attempts == 0
    assert a.uid and b.uid and a.uid != b.uid
    default = store.add_escalation("comms", "x", requester_surface="teams")
    assert default.destination == "teams"


def test_a_claim_takes_each_due_row_once_for_its_own_destinations(store):
    slack_rows = add(store, 3)
    [teams_row] = add(store, 1, destination="teams")
    first = claim(store, "A", limit=2)
    assert [e.id for e in first] == [slack_rows[0].id, slack_rows[1].id]
    assert all(e.status == SENDING and e.claimed_by == "A" and e.attempts == 1 and e.lease_until for e in first)
    second = claim(store, "B", limit=5)
    assert [e.id for e in second] == [slack_rows[2].id]
    assert claim(store, "C", limit=5) == []
    assert [e.id for e in claim(store, "T", destinations=("teams",))] == [teams_row.id]
    assert claim(store, "nobody", destinations=()) == []


def test_a_held_row_goes_to_another_claimant_only_after_its_lease_expires(store):
    [row] = add(store)
    [held] = claim(store, "A")
    assert claim(store, "B", at=T0 + LEASE - dt.timedelta(seconds=1)) == []
    [taken] = claim(store, "B", at=T0 + LEASE)
    assert taken.id == row.id and taken.claimed_by == "B" and taken.attempts == 2  # attempts > 1: look first
    # The first claimant lost the row: its late report changes nothing.
    assert store.finish_escalation(row.id, "A", message_ref="late", now=T0 + LEASE) is False
    assert store.fail_escalation(row.id, "A", error="late", now=T0 + LEASE, retry_at=T0 + LEASE) is False
    assert store.get_escalation(row.id).claimed_by == "B"
    assert store.finish_escalation(row.id, "B", message_ref="C1:1.1", now=T0 + LEASE) is True
    done = store.get_escalation(row.id)
    assert (done.status, done.message_ref, done.claimed_by, done.lease_until) == (SENT, "C1:1.1", "", None)
    assert claim(store, "C", at=T0 + 10 * LEASE) == []  # sent rows are never claimed again


def test_a_lease_expired_row_is_claimable_whatever_its_attempts(store):
    [row] = add(store)
    claim(store, "A", max_attempts=1)
    [again] = claim(store, "B", at=T0 + LEASE, max_attempts=1)  # so B can find out whether A's post landed
    assert again.attempts == 2


def test_a_failed_row_waits_until_retry_at_and_gives_up_at_max_attempts(store):
    [row] = add(store)
    claim(store, "A")
    assert store.fail_escalation(row.id, "A", error="ConnectionError: down", now=T0,
                                 retry_at=T0 + dt.timedelta(seconds=60)) is True
    failed = store.get_escalation(row.id)
    assert (failed.status, failed.last_error, failed.claimed_by) == (FAILED, "ConnectionError: down", "")
    assert claim(store, "B", at=T0 + dt.timedelta(seconds=59)) == []
    [retry] = claim(store, "B", at=T0 + dt.timedelta(seconds=60))
    assert retry.attempts == 2
    assert store.fail_escalation(row.id, "B", error="gave up", now=T0, retry_at=None) is True
    assert store.get_escalation(row.id).status == UNDELIVERABLE
    assert claim(store, "C", at=T0 + dt.timedelta(days=1)) == []
    [other] = add(store)
    claim(store, "A", max_attempts=1)
    store.fail_escalation(other.id, "A", error="x", now=T0, retry_at=T0)
    assert claim(store, "B", at=T0 + dt.timedelta(days=1), max_attempts=1) == []  # out of attempts


def test_finish_can_drop_the_summary_and_keeps_an_acknowledgement_made_while_sending(store):
    [row] = add(store)
    claim(store, "A")
    assert store.move_escalation(row.id, ACKNOWLEDGED, actor_id="slack:U2", actor_name="Alex", now=T0)
    assert store.finish_escalation(row.id, "A", message_ref="C1:2.2", now=T0, summary="[dropped]") is True
    done = store.get_escalation(row.id)
    assert (done.status, done.message_ref, done.summary, done.acknowledged_by_id) == \
        (ACKNOWLEDGED, "C1:2.2", "[dropped]", "slack:U2")


def test_raising_the_same_key_twice_gives_one_row(store):
    a = store.add_escalation("review", "draft", requester_surface="slack", dedupe_key="k1")
    b = store.add_escalation("review", "draft again", requester_surface="slack", dedupe_key="k1")
    assert a.id == b.id and b.summary == "draft"
    assert [e.id for e in store.escalations(dedupe_key="k1")] == [a.id]
    c = store.add_escalation("review", "other", requester_surface="slack")
    d = store.add_escalation("review", "other", requester_surface="slack")
    assert c.id != d.id  # no key, no deduplication


def test_acknowledge_and_resolve_move_a_whole_group_once(store):
    first = store.add_escalation("comms", "x", requester_surface="teams", destination="teams")
    copy = store.add_escalation("comms", "x", requester_surface="teams", destination="slack", group_id=first.id)
    assert [e.id for e in store.escalations(group=first.id)] == [first.id, copy.id]
    moved = store.move_escalation(copy.id, ACKNOWLEDGED, actor_id="slack:U2", actor_name="<!channel>", now=T0)
    assert [e.id for e in moved] == [first.id, copy.id]
    assert all(e.status == ACKNOWLEDGED and e.acknowledged_by_id == "slack:U2" and e.acknowledged_by == "<!channel>"
               for e in moved)
    assert store.move_escalation(first.id, ACKNOWLEDGED, actor_id="teams:29:x", actor_name="X", now=T0) == []
    resolved = store.move_escalation(first.id, RESOLVED, actor_id="teams:29:x", actor_name="X", now=T0)
    assert all(e.status == RESOLVED and e.resolved_by_id == "teams:29:x" and e.acknowledged_by_id == "slack:U2"
               for e in resolved) and len(resolved) == 2
    assert store.move_escalation(first.id, RESOLVED, actor_id="teams:29:y", actor_name="Y", now=T0) == []
    assert store.move_escalation(999_999, RESOLVED, actor_id="x", actor_name="x", now=T0) == []


def test_resolving_without_acknowledging_records_who_did_both(store):
    [row] = add(store)
    [done] = store.move_escalation(row.id, RESOLVED, actor_id="cli:ops", actor_name="Ops", now=T0)
    assert (done.acknowledged_by_id, done.resolved_by_id, done.acknowledged_at) == ("cli:ops", "cli:ops", done.resolved_at)


# -- concurrency: threads and processes, each with its own connection ------------------

def _claim_everything(spec, who: str, out, rounds) -> None:
    """Claim one row per round until none is left. Every claimant claims in every round at once
    (the barrier), so each claim really races all the others."""
    s = open_store(spec)
    got = []
    while True:
        try:
            rounds.wait(30)
        except threading.BrokenBarrierError:
            break
        rows = claim(s, who, limit=1)
        if not rows:
            break
        got.append(rows[0].id)
        s.finish_escalation(rows[0].id, who, message_ref=f"{who}:{rows[0].id}", now=T0)
    s.close()
    out.put(got) if hasattr(out, "put") else out.append(got)


def test_concurrent_claimants_in_threads_never_share_a_row(store, spec):
    rows = add(store, 200)
    results: list[list[int]] = []
    rounds = threading.Barrier(8)
    threads = [threading.Thread(target=_claim_everything, args=(spec, f"thread-{i}", results, rounds)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    claimed = [i for got in results for i in got]
    assert sorted(claimed) == [r.id for r in rows]  # every row claimed, none twice
    assert [len(got) for got in results] == [25] * 8  # one each per round: no claim ever got a taken row
    assert all(e.status == SENT and e.attempts == 1 for e in store.escalations())


def test_concurrent_claimants_in_two_processes_never_share_a_row(store, spec):
    rows = add(store, 200)
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    rounds = ctx.Barrier(2)
    procs = [ctx.Process(target=_claim_everything, args=(spec, f"process-{i}", out, rounds)) for i in range(2)]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    claimed = [i for got in results for i in got]
    assert sorted(claimed) == [r.id for r in rows]
    assert [len(got) for got in results] == [100, 100]
    assert all(e.attempts == 1 for e in store.escalations())


def test_sqlite_escalations_waiting_before_the_outbox_migration_are_still_delivered(tmp_path):
    from bot.storage import SQLiteStore
    old = SQLiteStore(tmp_path / "v4.db", migrate_to=4)
    old.db.execute("INSERT INTO escalations (kind, summary, status, created_at, requester_surface, requester_user) "
                   "VALUES ('safeguarding', 'x', 'pending', ?, 'slack', 'U1')", [T0.isoformat()])
    old.close()
    store = SQLiteStore(tmp_path / "v4.db")
    [row] = store.escalations()
    assert row.destination == "slack" and len(row.uid) == 32
    assert [e.id for e in claim(store, "A")] == [row.id]
