"""Retention that really deletes: what `incidents purge` removes cannot be read back from the files."""
from __future__ import annotations

import asyncio
import datetime as dt
import io
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bot.app import build_core
from bot.config import ConfigError, load_config
from bot.console import run_console
from bot.storage import SQLiteStore
from bot.storage.sqlite import MIGRATIONS
from handlers.retention import Retention

from .conftest import ROOT
from benchmarks.probe_retention import STRINGS  # the probe's `strings`, one copy

GONE = {  # each one is past its retention period once aged below
    "description": "Glimmerquartz11 sent a wave",
    "risk": "Hollowmere12 knows where I live",
    "failed_draft": "Brackenfold13 on ward 7",
    "question": "Cindervale14 friend request",
    "feedback": "Duskwhistle15 was wrong",
    "delivered_draft": "Emberlyn16 in bay 2",  # its row stays (recent) but its text was dropped on delivery
    "unanswered": "Fizzlewood17 knitting policy",  # a question the bot could not answer, kept for policy owners
}
KEPT = {"description": "Fernhollow21 liked my photo", "feedback": "Gorsebrook22 too long"}
REPORT = ["/report-contact", "Facebook", "friend request", "former service user", "yesterday 9pm"]
REST = ["yes", "Priya Shah", "no", "not appropriate", "done"]


class Refusing:
    """A platform that refuses every delivery, for good."""

    async def send(self, esc):
        from handlers.escalation import Undeliverable
        raise Undeliverable("channel_not_found")

    async def update(self, esc):
        pass

    async def tell_user(self, user, text):
        pass

    async def may_act(self, esc, actor):
        return True


def chat(core, lines, user):
    run_console(core, io.StringIO("\n".join(lines) + "\n"), io.StringIO(), user=user)



def on_disk(db: Path) -> bytes:
    """What `strings` reads from the database file and its write-ahead log (runs of 4+ printable characters).
    In a child process, as `strings` would be: closing a file descriptor on the database in this process
    would drop the server connection's POSIX locks, and the purge would then think it was the last one."""
    return subprocess.run([sys.executable, "-c", STRINGS, str(db), f"{db}-wal"], capture_output=True,
                          check=True, timeout=60).stdout


def age(storage, days: int, sql: str) -> None:
    """Make rows older, straight in the database (as time passing would)."""
    when = (dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(days=days)).isoformat()
    storage.sql(sql.replace("?when", "'" + when + "'"))


@pytest.fixture
def sqlite_server(tmp_path):
    """The server's core on an SQLite file: its connection stays open through the purge, as in production."""
    from .pg.server import Storage
    storage = Storage("sqlite", tmp_path)
    core = build_core(ROOT / "app.yaml", store=storage.open())
    yield core, storage
    storage.close()


@pytest.fixture
def server(storage):
    """The same on either backend (SQLite, PostgreSQL)."""
    yield build_core(ROOT / "app.yaml", store=storage.open()), storage


def fill(core, storage) -> None:
    """Every kind of record, with text a purge must leave unreadable (GONE) or keep (KEPT)."""
    store, conv = core.store, core.conversation
    chat(core, REPORT + [GONE["description"]] + REST, user="nurse1")
    chat(core, REPORT + [GONE["risk"]] + REST, user="nurse2")
    chat(core, REPORT + [KEPT["description"]] + REST, user="nurse3")
    core.escalations.add_notifier("console", Refusing())
    conv.handle_action("console", "nurse1", "ask_comms", "draft|" + GONE["failed_draft"])
    conv.handle_action("console", "nurse1", "ask_comms", "question|" + GONE["question"])
    asyncio.run(core.escalations.deliver_pending())
    from bot.console import ConsoleNotifier
    core.escalations.add_notifier("console", ConsoleNotifier(io.StringIO()))
    conv.handle_action("console", "nurse4", "ask_comms", "draft|" + GONE["delivered_draft"])
    asyncio.run(core.escalations.deliver_pending())
    for user, reason in (("nurse1", GONE["feedback"]), ("nurse2", KEPT["feedback"])):
        fid = conv.handle_action("console", user, "feedback", "down|bsmhft 3.1")[0].data["feedback_id"]
        conv.feedback_reason(fid, reason)
    store.add_feedback("console", "nurse5", "", "not_found", GONE["unanswered"])
    # Age what must go: incidents past 1y, the failed draft past 7d, the question past 90d, feedback past 1y.
    age(storage, 400, "UPDATE incidents SET created_at = ?when WHERE user_id IN ('nurse1', 'nurse2')")
    age(storage, 8, "UPDATE escalations SET created_at = ?when WHERE kind = 'review' AND status = 'undeliverable'")
    age(storage, 91, "UPDATE escalations SET created_at = ?when WHERE kind = 'comms' AND incident_ref IS NULL")
    age(storage, 400, "UPDATE feedback SET created_at = ?when WHERE user_id = 'nurse1'")
    # 91 days: past the questions' period, within the votes' (nurse2's reason must stay)
    age(storage, 91, "UPDATE feedback SET created_at = ?when WHERE vote = 'not_found' OR user_id = 'nurse2'")


def purge_cli(storage, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    """`policybot incidents purge` in its own process, as the comms team runs it beside the server."""
    env = {**os.environ, **storage.env}
    return subprocess.run([sys.executable, "-m", "bot.cli", "incidents", "purge", *args], input=stdin, text=True,
                          capture_output=True, cwd=ROOT, env=env, timeout=120)


def test_purged_text_cannot_be_read_back_while_the_server_holds_the_database(sqlite_server):
    core, storage = sqlite_server
    db = storage.path
    fill(core, storage)
    before = on_disk(db)
    for key, text in {**GONE, **KEPT}.items():
        assert text.encode() in before, f"{key}: the test needs the text on disk before the purge"
    delivered = [e for e in core.store.escalations(status="sent") if e.kind == "review"]
    assert delivered and delivered[0].summary.startswith("[draft delivered")  # dropped from the row already

    proc = purge_cli(storage, "--yes")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "incidents        2" in out and "answers         20" in out
    assert "escalations      1  of those incidents" in out  # nurse2's alert to the safeguarding lead
    assert "1  drafts sent for comms review" in out and "1  questions for a person" in out
    assert "feedback         2" in out and "cannot be read back" in out

    after = on_disk(db)
    recoverable = [key for key, text in GONE.items() if text.encode() in after]
    assert recoverable == [], f"still readable with strings: {recoverable}"
    assert Path(f"{db}-wal").exists() and Path(f"{db}-wal").stat().st_size == 0  # emptied, still in use
    for key, text in KEPT.items():
        assert text.encode() in after, f"{key} is within its retention period and must be kept"
    # The server's connection goes on working, and sees exactly what is left.
    store = core.store
    assert [i.user_id for i in store.list_incidents()] == ["nurse3"]
    assert [(e.kind, e.status) for e in store.escalations(incident_ref=None) if e.incident_ref is None] == [("review", "sent")]
    assert [r["reason"] for r in store.feedback()] == [KEPT["feedback"]]
    store.add_feedback("console", "nurse3", "bsmhft 3.1", "up")


def test_purge_says_what_each_table_loses_and_asks_first(server):
    core, storage = server
    fill(core, storage)
    proc = purge_cli(storage, stdin="no\n")
    assert proc.returncode == 1 and "Nothing deleted" in proc.stdout
    assert "Retention: incidents 1y, drafts for review 7d, questions for a person 90d, feedback 1y." in proc.stdout
    lines = {line.split()[0]: line for line in proc.stdout.splitlines() if line.startswith("  ") and line.split()}
    assert {"incidents", "answers", "escalations", "feedback"} <= set(lines)
    assert len(core.store.list_incidents()) == 3 and len(core.store.feedback()) == 3
    proc = purge_cli(storage, "--older-than", "10y", "--yes")  # incidents kept for 10 years: only the rest goes
    assert proc.returncode == 0 and "incidents 10y from --older-than" in proc.stdout
    assert "Deleted 0 incident(s), 0 answer(s), 2 escalation(s) and 2 feedback record(s)" in proc.stdout
    assert len(core.store.list_incidents()) == 3
    proc = purge_cli(storage, "--yes")
    assert proc.returncode == 0 and "Deleted 2 incident(s), 20 answer(s), 1 escalation(s)" in proc.stdout
    assert "Nothing to delete" in purge_cli(storage, "--yes").stdout
    assert [i.user_id for i in core.store.list_incidents()] == ["nurse3"]
    assert [r["reason"] for r in core.store.feedback()] == [KEPT["feedback"]]


def test_retention_periods_come_from_app_yaml(tmp_path):
    text = (ROOT / "app.yaml").read_text().replace("local_rules: knowledge/", f"local_rules: {ROOT}/knowledge/")
    cfg = tmp_path / "app.yaml"
    cfg.write_text(text + "\nretention:\n  drafts: 2d\n  questions: 12w\n")
    config = load_config(cfg)
    assert config.retention == Retention(drafts=dt.timedelta(days=2), questions=dt.timedelta(days=84))
    assert load_config(ROOT / "app.yaml").retention == Retention()  # the shipped file states the defaults
    for bad, says in (("  drafts: forever\n", "retention.drafts"), ("  answers: 1y\n", "retention.answers")):
        cfg.write_text(text + "\nretention:\n" + bad)
        with pytest.raises(ConfigError, match=says):
            load_config(cfg)


def test_the_retention_defaults_are_written_out_in_app_yaml_and_the_readme():
    """An operator reads how long each record is kept in the shipped app.yaml and the README, not in the code."""
    import yaml
    from handlers.retention import describe, parse_period
    shipped = yaml.safe_load((ROOT / "app.yaml").read_text())["retention"]
    defaults = {name: getattr(Retention(), name) for name in ("incidents", "drafts", "questions", "feedback")}
    assert {k: parse_period(v) for k, v in shipped.items()} == defaults
    readme = (ROOT / "README.md").read_text()
    for name, period in defaults.items():
        assert f"| `{name}` | `{describe(period)}` |" in readme, name


def test_an_old_database_is_converted_once_and_its_free_space_cleared(tmp_path):
    """A file made before policybot set auto_vacuum and secure_delete, with text left in its free pages
    by an old-style delete, is rebuilt on open: the leftovers go and later purges can shrink it."""
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA secure_delete = OFF")  # the build default varies (Debian's is ON); this is the worst case
    conn.execute("PRAGMA journal_mode = WAL")
    for version, migration in enumerate(MIGRATIONS, 1):
        for statement in filter(str.strip, migration.split(";")):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {version}")
    for i in range(50):
        conn.execute("INSERT INTO feedback (surface, user_id, citation, vote, reason, created_at) "
                     "VALUES ('console', 'u', 'c', 'down', ?, '2020-01-01')", [f"{GONE['feedback']} {i} " * 20])
    conn.execute("DELETE FROM feedback")
    conn.close()  # the last connection checkpoints: the deleted text is in the database file's free pages
    assert GONE["feedback"].encode() in on_disk(db)
    assert sqlite3.connect(db).execute("PRAGMA auto_vacuum").fetchone()[0] == 0

    store = SQLiteStore(db)
    assert store.db.execute("PRAGMA auto_vacuum").fetchone()[0] == 2
    assert store.db.execute("PRAGMA secure_delete").fetchone()[0] == 1
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert GONE["feedback"].encode() not in on_disk(db)
    store.close()
