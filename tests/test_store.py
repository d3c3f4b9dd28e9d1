"""The store contract on both backends, under concurrent replicas; PostgreSQL's migrations and start-up errors.

"Replicas" here are separate store objects on one database, each with its own connections,
driven from threads at the same moment: what two processes would do.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from handlers.store import StoreUnavailable

from .conftest import ROOT


def together(n: int, work):
    """Run work(i) for i in range(n) on n threads released at the same moment; return the results in order."""
    barrier = threading.Barrier(n)

    def run(i):
        barrier.wait()
        return work(i)
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def test_an_event_is_claimed_once_across_replicas(storage):
    replicas = [storage.open() for _ in range(4)]
    won = together(4, lambda i: replicas[i].claim_event("slack:EvSame"))
    assert sorted(won) == [False, False, False, True]
    assert storage.count("processed_events") == 1


def test_a_rolled_back_claim_is_free_again(storage):
    store = storage.open()
    with pytest.raises(ZeroDivisionError):
        with store.transaction():
            assert store.claim_event("slack:Ev1")
            1 / 0  # the work failed: the event must stay unclaimed so a retry can do it
    assert storage.open().claim_event("slack:Ev1")


def test_reference_numbers_stay_unique_and_sequential_across_replicas(storage):
    replicas = [storage.open() for _ in range(3)]
    refs = together(3, lambda i: [replicas[i].create_incident("slack", f"U{i}", "platform").ref for _ in range(15)])
    numbers = sorted(int(r.rsplit("-", 1)[1]) for batch in refs for r in batch)
    assert numbers == list(range(1, 46))
    year = refs[0][0].split("-")[1]
    assert all(r.startswith(f"INC-{year}-") for batch in refs for r in batch)


def test_a_rolled_back_incident_leaves_no_gap(storage):
    store = storage.open()
    first = store.create_incident("slack", "U1", "platform")
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.create_incident("slack", "U2", "platform")
            raise RuntimeError("crash before commit")
    again = store.create_incident("slack", "U3", "platform")
    assert [first.ref[-4:], again.ref[-4:]] == ["0001", "0002"]


def test_state_etags_hold_across_replicas(storage):
    a, b = storage.open(), storage.open()
    assert a.write_state("ref:comms", {"v": 1}) == 1
    _, seen = a.read_state(["ref:comms"])["ref:comms"]
    assert b.write_state("ref:comms", {"v": 2}, expected_etag=seen) == 2
    with pytest.raises(KeyError):
        a.write_state("ref:comms", {"v": 3}, expected_etag=seen)  # stale: b wrote since a read it
    assert b.read_state(["ref:comms"]) == {"ref:comms": ({"v": 2}, 2)}
    # Racing writers with the same stale etag: exactly one wins.
    def race(i):
        try:
            return [a, b][i].write_state("ref:comms", {"v": 10 + i}, expected_etag=2)
        except KeyError:
            return None
    assert sorted(map(str, together(2, race))) == ["3", "None"]


def test_purge_and_listings_behave_the_same(storage):
    store = storage.open()
    keep, old = store.create_incident("slack", "U1", "platform"), store.create_incident("teams", "U2", "platform")
    store.add_answer(old, "platform", "facebook")
    store.add_escalation("comms", "about the old one", incident_ref=old.ref)
    store.add_escalation("comms", "a question with no incident")
    storage.sql("UPDATE incidents SET created_at = ? WHERE ref = ?", ["2020-01-01T00:00:00+00:00", old.ref])
    import datetime as dt
    cutoff = dt.datetime(2021, 1, 1, tzinfo=dt.timezone.utc)
    assert [i.ref for i in store.list_incidents(before=cutoff)] == [old.ref]
    assert [i.ref for i in store.list_incidents(since=cutoff)] == [keep.ref]
    assert [i.ref for i in store.list_incidents(limit=1)] == [old.ref]  # newest id first
    assert store.purge_incidents([old.ref]) == 1
    assert store.get_incident(old.ref) is None and storage.count("answers") == 0
    assert [e.summary for e in store.escalations()] == ["a question with no incident"]


def test_text_round_trips_exactly(storage):
    store = storage.open()
    inc = store.create_incident("slack", "U1", "platform")
    tricky = "Zoë 🙂 <!channel> '; DROP TABLE incidents;-- \u202eevil\u202c \\N %s {}"
    store.add_answer(inc, "description", tricky)
    inc.fields = {"platform": "x", "description": tricky, "screenshot": "no"}
    store.save_incident(inc)
    again = storage.open().get_incident(inc.ref.lower())
    assert again.fields == inc.fields and list(again.fields) == ["platform", "description", "screenshot"]
    assert again.answers[0].value == tricky


# --- PostgreSQL only: schema, migrations, start-up errors ---------------------------------

def _pg_columns(url: str) -> dict[str, list[str]]:
    import psycopg
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT table_name, column_name FROM information_schema.columns "
                            "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position").fetchall()
    out: dict[str, list[str]] = {}
    for table, column in rows:
        out.setdefault(table, []).append(column)
    out.pop("policybot_schema", None)
    return out


@pytest.fixture
def pg(postgres_server, tmp_path):
    from .pg.server import Storage
    backend = Storage("postgres", tmp_path, postgres_server, migrated=False)
    yield backend
    backend.close()


@pytest.mark.postgres
def test_both_stores_have_the_same_schema_versions_and_columns(pg, tmp_path):
    from bot.storage import SCHEMA_VERSION, SQLiteStore
    from bot.storage import postgres
    assert postgres.SCHEMA_VERSION == SCHEMA_VERSION
    lite = SQLiteStore(tmp_path / "x.db")
    sqlite_columns = {t: [row[1] for row in lite.db.execute(f"PRAGMA table_info({t})").fetchall()]
                      for t in lite.db.table_names()}
    pg.open()
    assert _pg_columns(pg.url) == sqlite_columns


@pytest.mark.postgres
def test_migrations_move_forward_and_keep_data(pg):
    from bot.storage.postgres import SCHEMA_VERSION
    old = pg.open(migrate_to=1)
    inc = old.create_incident("console", "u", "platform")
    assert old.schema_version == 1
    store = pg.open()
    assert store.schema_version == SCHEMA_VERSION and store.get_incident(inc.ref).user_id == "u"
    store.add_escalation("comms", "x")  # tables from later versions exist


@pytest.mark.postgres
def test_replicas_starting_together_migrate_once(pg):
    from bot.storage.postgres import SCHEMA_VERSION
    stores = together(5, lambda i: pg.open())  # without the advisory lock, CREATE TABLE races and fails
    pg.stores.extend(stores)
    assert {s.schema_version for s in stores} == {SCHEMA_VERSION}
    assert pg.sql("SELECT version FROM policybot_schema") == [(SCHEMA_VERSION,)]


@pytest.mark.postgres
def test_a_newer_schema_is_refused_in_one_line(pg):
    pg.open()
    pg.sql("UPDATE policybot_schema SET version = 99")
    with pytest.raises(StoreUnavailable, match=r"has schema v99, newer than this policybot"):
        pg.open()


def _cli(env_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["POLICYBOT_DATABASE_URL"] = env_url
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.postgres
def test_bad_database_urls_fail_in_one_line_naming_what_failed(pg, postgres_server, monkeypatch, capsys):
    from .pg.server import database_url
    if postgres_server.cluster is None:
        pytest.skip("needs the throwaway cluster (password roles)")
    pg.sql("CREATE ROLE nurse LOGIN PASSWORD 'right-one'")
    socket = re.search(r"host=([^&]+)", postgres_server.url).group(1)
    cases = [
        ("postgresql://policybot@127.0.0.1:1/policybot", r"127\.0\.0\.1:1 .*Connection refused"),
        (database_url(postgres_server.url, "no_such_db"), r"database 'no_such_db' .*does not exist"),
        (f"postgresql://nurse:wrong-one@/{pg.dbname}?host={socket}", r"as 'nurse'.*password authentication failed"),
        ("postgresql://policybot@/x?host=/nonexistent/dir", r"socket /nonexistent/dir"),
        ("postgresql://x@h/db?not_an_option=1", r"not a valid PostgreSQL URL"),
    ]
    from bot.cli import main
    for url, expect in cases:
        monkeypatch.setenv("POLICYBOT_DATABASE_URL", url)
        assert main(["incidents", "list"]) == 2, url
        out, err = capsys.readouterr()
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("policybot: "), (url, err)
        assert re.search(expect, lines[0]), (url, lines[0])
        assert "wrong-one" not in err and out == ""
    # And `serve` as a real process (one, or a supervisor whose first worker finds out): exit status 2,
    # the same one line, no traceback.
    for (url, expect), workers in zip(cases[:3:2], ("1", "2")):
        done = _cli(url, "serve", "--port", "39999", "--workers", workers)  # fails before it listens
        assert done.returncode == 2 and "Traceback" not in done.stderr and "wrong-one" not in done.stderr
        assert re.fullmatch(r"policybot: [^\n]+\n", done.stderr) and re.search(expect, done.stderr), done.stderr


def test_a_password_in_app_yaml_is_refused(tmp_path):
    import yaml
    from bot.config import ConfigError, load_config
    raw = yaml.safe_load((ROOT / "app.yaml").read_text())
    raw["checker"]["local_rules"] = str(ROOT / raw["checker"]["local_rules"])
    raw["storage"] = {"url": "postgresql://bot:hunter2@db.example/policybot"}
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump(raw))
    saved = os.environ.pop("POLICYBOT_DATABASE_URL", None)
    try:
        with pytest.raises(ConfigError, match="password must not be in app.yaml") as err:
            load_config(path)
        assert "hunter2" not in str(err.value)
        raw["storage"] = {"url": "postgresql://bot@db.example/policybot?sslmode=require"}
        path.write_text(yaml.safe_dump(raw))
        assert load_config(path).database_url == "postgresql://bot@db.example/policybot?sslmode=require"
        os.environ["POLICYBOT_DATABASE_URL"] = "postgresql://other@elsewhere/db"
        assert load_config(path).database_url == "postgresql://other@elsewhere/db"  # the environment wins
    finally:
        os.environ.pop("POLICYBOT_DATABASE_URL", None)
        if saved is not None:
            os.environ["POLICYBOT_DATABASE_URL"] = saved


@pytest.mark.postgres
def test_escalations_waiting_before_the_outbox_migration_are_still_delivered(pg):
    import datetime as dt
    old = pg.open(migrate_to=4)
    pg.sql("INSERT INTO escalations (kind, summary, status, created_at, requester_surface, requester_user) "
           "VALUES ('safeguarding', 'x', 'pending', ?, 'slack', 'U1')", ["2026-01-01T00:00:00+00:00"])
    assert old.schema_version == 4
    store = pg.open()
    [row] = store.escalations()
    assert row.destination == "slack" and len(row.uid) == 32
    claimed = store.claim_escalations("A", ["slack"], now=dt.datetime.now(dt.timezone.utc),
                                      lease=dt.timedelta(minutes=5), max_attempts=8)
    assert [e.id for e in claimed] == [row.id]


def test_paste_your_draft_carries_over_to_another_replica(storage, core):
    """'Can I post this?' reaches one replica and the draft the other: the draft is still checked."""
    from handlers.conversation import Conversation, Incoming
    one, other = (Conversation(core.config.trust, core.ask, core.check, store=storage.open()) for _ in range(2))
    [prompt] = one.handle(Incoming("slack", "U1", "can I post this?", event_id="Ev1"))
    assert prompt.kind == "check_prompt"
    draft = "What does the policy say about LinkedIn?"  # alone, this reads as a question
    [checked] = other.handle(Incoming("slack", "U1", draft, event_id="Ev2"))
    assert checked.kind.startswith("check") and "verdict" in checked.data
    [again] = other.handle(Incoming("slack", "U1", draft, event_id="Ev3"))  # asked once, checked once
    assert not again.kind.startswith("check")
    assert storage.sql("SELECT count(*) FROM bot_state WHERE key LIKE 'awaiting_draft:%'") == [(0,)]
