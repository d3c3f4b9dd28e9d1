"""The incident log in SQLite, through sqlite-utils.

- The file is created readable and writable by its owner only (0600), in a 0700 folder
  if we create the folder: it holds details of contacts from patients and the public.
- WAL mode and a busy timeout, so several users (or processes) writing at once wait
  rather than fail; write transactions take the lock up front (BEGIN IMMEDIATE).
- The schema carries a version and migrates forward automatically on open.
- Deleted means gone: `secure_delete` overwrites deleted text, the file is in incremental
  auto-vacuum mode (an older file is converted once, on open), and a purge hands the freed
  pages back and empties the write-ahead log, so `strings` on the database or its -wal
  finds nothing that was purged, even while another process has the database open.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import threading
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Sequence

import sqlite_utils

from handlers.retention import Cutoffs, Purge
from handlers.store import (ACKNOWLEDGED, CLAIMABLE, FAILED, IN_PROGRESS, PENDING, RESOLVED, SENDING, SENT,
                            UNDELIVERABLE, Answer, Escalation, Incident, utcnow)

from . import expiry

BUSY_TIMEOUT_MS = 10_000
EVENT_RETENTION = dt.timedelta(days=14)
INCREMENTAL = 2  # PRAGMA auto_vacuum: free pages can be handed back to the filesystem on demand

# Each entry moves the schema forward by one version. Never edit a released one: add another.
MIGRATIONS: list[str] = [
    # 1: incidents, their answers, processed events, reference counters
    """
    CREATE TABLE incidents (
        id INTEGER PRIMARY KEY,
        ref TEXT NOT NULL UNIQUE,
        surface TEXT NOT NULL,
        user_id TEXT NOT NULL,
        status TEXT NOT NULL,
        step TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        completed_at TEXT,
        fields TEXT NOT NULL DEFAULT '{}',
        risk_flags TEXT NOT NULL DEFAULT '[]',
        history TEXT NOT NULL DEFAULT '[]'
    );
    CREATE INDEX incidents_by_user ON incidents (surface, user_id, status);
    CREATE INDEX incidents_by_created ON incidents (created_at);
    CREATE TABLE answers (
        id INTEGER PRIMARY KEY,
        incident_id INTEGER NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
        step TEXT NOT NULL,
        value TEXT NOT NULL,
        answered_at TEXT NOT NULL
    );
    CREATE INDEX answers_by_incident ON answers (incident_id);
    CREATE TABLE processed_events (event_id TEXT PRIMARY KEY, processed_at TEXT NOT NULL);
    CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
    """,
    # 2: escalations, kept until delivered and resolved
    """
    CREATE TABLE escalations (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        summary TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at TEXT NOT NULL,
        incident_ref TEXT,
        requester_surface TEXT NOT NULL DEFAULT '',
        requester_user TEXT NOT NULL DEFAULT '',
        target TEXT NOT NULL DEFAULT '',
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT NOT NULL DEFAULT '',
        sent_at TEXT,
        message_ref TEXT NOT NULL DEFAULT '',
        acknowledged_at TEXT,
        acknowledged_by TEXT NOT NULL DEFAULT '',
        resolved_at TEXT,
        resolved_by TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX escalations_by_status ON escalations (status);
    CREATE INDEX escalations_by_incident ON escalations (incident_ref);
    """,
    # 3: feedback on answers (which clause, up or down, an optional reason; never the question)
    """
    CREATE TABLE feedback (
        id INTEGER PRIMARY KEY,
        surface TEXT NOT NULL,
        user_id TEXT NOT NULL,
        citation TEXT NOT NULL,
        vote TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL
    );
    """,
    # 4: state a chat platform keeps between turns (e.g. Teams conversation references), as JSON
    """
    CREATE TABLE bot_state (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        etag INTEGER NOT NULL,
        updated_at TEXT NOT NULL
    );
    """,
    # 5: escalations as an outbox: one destination per row, claims with a lease, a uid each post
    # carries, an idempotency key, and who acted by platform id (the name is only for display)
    """
    ALTER TABLE escalations ADD COLUMN destination TEXT NOT NULL DEFAULT '';
    ALTER TABLE escalations ADD COLUMN group_id INTEGER;
    ALTER TABLE escalations ADD COLUMN uid TEXT NOT NULL DEFAULT '';
    ALTER TABLE escalations ADD COLUMN dedupe_key TEXT;
    ALTER TABLE escalations ADD COLUMN claimed_by TEXT NOT NULL DEFAULT '';
    ALTER TABLE escalations ADD COLUMN lease_until TEXT;
    ALTER TABLE escalations ADD COLUMN next_attempt_at TEXT;
    ALTER TABLE escalations ADD COLUMN acknowledged_by_id TEXT NOT NULL DEFAULT '';
    ALTER TABLE escalations ADD COLUMN resolved_by_id TEXT NOT NULL DEFAULT '';
    UPDATE escalations SET destination = requester_surface, uid = lower(hex(randomblob(16)));
    CREATE UNIQUE INDEX escalations_by_dedupe_key ON escalations (dedupe_key);
    CREATE INDEX escalations_due ON escalations (destination, status);
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


def _iso(when: dt.datetime) -> str:
    """Times are stored as UTC ISO strings to the second, so they compare correctly as text."""
    if when.tzinfo is None:
        raise ValueError("times given to the store must carry a time zone")
    return when.astimezone(dt.timezone.utc).replace(microsecond=0).isoformat()


def _private_file(path: Path) -> None:
    """Create (or tighten) the database file so only its owner can read it."""
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


class SQLiteStore:
    def __init__(self, path: str | os.PathLike, migrate_to: int = SCHEMA_VERSION):
        self.path = str(path)
        memory = self.path == ":memory:"
        if not memory:
            _private_file(Path(self.path))
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                               check_same_thread=False)
        self.db = sqlite_utils.Database(conn)
        self._lock = threading.RLock()
        self._depth = 0
        self.memory = memory
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA secure_delete = ON")  # deleted and overwritten text is zeroed, not left in free space
        if not memory:
            conn.execute(f"PRAGMA auto_vacuum = {INCREMENTAL}")  # takes effect now in a new file, else via VACUUM
            conn.execute("PRAGMA journal_mode = WAL")
            # With WAL, NORMAL never corrupts the database; a power cut (not a crash) can lose the
            # last commits. It saves an fsync on every message.
            conn.execute("PRAGMA synchronous = NORMAL")
            for suffix in ("-wal", "-shm"):
                if os.path.exists(self.path + suffix):
                    os.chmod(self.path + suffix, 0o600)
        self.migrate(migrate_to)

    # -- schema ------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    def migrate(self, target: int = SCHEMA_VERSION) -> None:
        with self.transaction():
            current = self.schema_version
            if current > SCHEMA_VERSION:
                raise RuntimeError(f"{self.path}: database schema v{current} is newer than this policybot "
                                   f"(v{SCHEMA_VERSION}); upgrade policybot")
            for version in range(current + 1, target + 1):
                for statement in filter(str.strip, MIGRATIONS[version - 1].split(";")):
                    self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version = {version}")
        self._convert_to_incremental_vacuum()
        self.prune_events()

    def _convert_to_incremental_vacuum(self) -> None:
        """A file made before policybot set auto_vacuum is rebuilt once (VACUUM), which also clears out any
        text left in its free space by deletes made without secure_delete. If another process holds the
        database busy, it is tried again on the next open; purges fall back to a full VACUUM meanwhile."""
        if self.memory or self.db.execute("PRAGMA auto_vacuum").fetchone()[0] == INCREMENTAL:
            return
        with self._lock:
            try:
                self.db.execute(f"PRAGMA auto_vacuum = {INCREMENTAL}")
                self.db.execute("VACUUM")
            except sqlite3.OperationalError:  # database is locked: not now
                pass

    @contextmanager
    def transaction(self):
        """One write transaction; nested calls join the outer one."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self
                finally:
                    self._depth -= 1
                return
            self.db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self
            except BaseException:
                self._depth = 0
                self.db.execute("ROLLBACK")
                raise
            self._depth = 0
            self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.conn.close()

    def ping(self) -> None:
        """Raise if the database can't be read (for /readyz)."""
        self.db.execute("SELECT count(*) FROM sqlite_master").fetchone()

    # -- events ------------------------------------------------------------

    def claim_event(self, event_id: str) -> bool:
        with self.transaction():
            cur = self.db.execute("INSERT OR IGNORE INTO processed_events (event_id, processed_at) VALUES (?, ?)",
                                  [event_id, utcnow().isoformat()])
            return cur.rowcount == 1

    def prune_events(self, now: dt.datetime | None = None) -> None:
        cutoff = ((now or utcnow()) - EVENT_RETENTION).isoformat()
        with self.transaction():
            self.db.execute("DELETE FROM processed_events WHERE processed_at < ?", [cutoff])

    # -- incidents ---------------------------------------------------------

    def _next_ref(self, year: int) -> str:
        name = f"incident-{year}"
        self.db.execute("INSERT INTO counters (name, value) VALUES (?, 1) "
                        "ON CONFLICT (name) DO UPDATE SET value = value + 1", [name])
        n = self.db.execute("SELECT value FROM counters WHERE name = ?", [name]).fetchone()[0]
        return f"INC-{year}-{n:04d}"

    def create_incident(self, surface: str, user_id: str, step: str) -> Incident:
        now = utcnow()
        with self.transaction():
            ref = self._next_ref(now.year)
            row = {"ref": ref, "surface": surface, "user_id": user_id, "status": IN_PROGRESS, "step": step,
                   "created_at": now.isoformat(), "updated_at": now.isoformat(), "fields": "{}",
                   "risk_flags": "[]", "history": "[]"}
            row_id = self.db["incidents"].insert(row).last_pk
        return self._incident(dict(row, id=row_id, completed_at=None))

    def _incident(self, row: dict, answers: bool = True) -> Incident:
        inc = Incident(id=row["id"], ref=row["ref"], surface=row["surface"], user_id=row["user_id"],
                       status=row["status"], step=row["step"], created_at=row["created_at"],
                       updated_at=row["updated_at"], completed_at=row["completed_at"],
                       fields=json.loads(row["fields"]), risk_flags=json.loads(row["risk_flags"]),
                       history=json.loads(row["history"]))
        if answers:
            inc.answers = [Answer(r["step"], r["value"], r["answered_at"]) for r in self.db.query(
                "SELECT step, value, answered_at FROM answers WHERE incident_id = ? ORDER BY id", [inc.id])]
        return inc

    def active_incident(self, surface: str, user_id: str) -> Incident | None:
        rows = list(self.db.query("SELECT * FROM incidents WHERE surface = ? AND user_id = ? AND status = ? "
                                  "ORDER BY id DESC LIMIT 1", [surface, user_id, IN_PROGRESS]))
        return self._incident(rows[0]) if rows else None

    def get_incident(self, ref: str) -> Incident | None:
        rows = list(self.db.query("SELECT * FROM incidents WHERE ref = ?", [ref.strip().upper()]))
        return self._incident(rows[0]) if rows else None

    def save_incident(self, incident: Incident) -> None:
        incident.updated_at = utcnow().isoformat()
        with self.transaction():
            self.db["incidents"].update(incident.id, {
                "status": incident.status, "step": incident.step, "updated_at": incident.updated_at,
                "completed_at": incident.completed_at, "fields": json.dumps(incident.fields, ensure_ascii=False),
                "risk_flags": json.dumps(incident.risk_flags), "history": json.dumps(incident.history)})

    def add_answer(self, incident: Incident, step: str, value: str) -> None:
        answer = Answer(step, value, utcnow().isoformat())
        with self.transaction():
            self.db["answers"].insert({"incident_id": incident.id, "step": step, "value": value,
                                       "answered_at": answer.answered_at})
        incident.answers.append(answer)

    def list_incidents(self, since: dt.datetime | None = None, status: str | None = None,
                       user_id: str | None = None, limit: int | None = None, before: dt.datetime | None = None,
                       answers: bool = True) -> list[Incident]:
        rows = self._select("incidents", {"created_at >= ?": since.isoformat() if since else None,
                                          "created_at < ?": before.isoformat() if before else None,
                                          "status = ?": status, "user_id = ?": user_id}, "id DESC", limit)
        return [self._incident(r, answers=answers) for r in rows]

    def purge_incidents(self, refs: list[str]) -> int:
        if not refs:
            return 0
        marks = ",".join("?" * len(refs))
        with self.transaction():
            self.db.execute(f"DELETE FROM escalations WHERE incident_ref IN ({marks})", refs)
            n = self.db.execute(f"DELETE FROM incidents WHERE ref IN ({marks})", refs).rowcount
        self.scrub()
        return n

    # -- retention ---------------------------------------------------------

    def expired(self, cutoffs: Cutoffs) -> Purge:
        """What purge_expired would delete now."""
        return self._purge(cutoffs, delete=False)

    def purge_expired(self, cutoffs: Cutoffs) -> Purge:
        """Delete everything past its retention period in one transaction, then scrub the files."""
        purge = self._purge(cutoffs, delete=True)
        purge.scrubbed = self.scrub()
        purge.note = ("The deleted text was overwritten and the write-ahead log emptied: it cannot be read back "
                      "from the database files." if purge.scrubbed else
                      "Another process kept the database busy, so its write-ahead log still holds old copies of "
                      "the deleted text: run this again when it is idle.")
        return purge

    def _purge(self, cutoffs: Cutoffs, delete: bool) -> Purge:
        args = expiry.params(cutoffs)
        purge = Purge()
        with self.transaction():
            purge.incidents = [r[0] for r in self.db.execute(expiry.REFS, args)]
            for name, (table, where) in expiry.EXPIRED.items():
                if name != "incidents":
                    setattr(purge, name, self.db.execute(f"SELECT count(*) FROM {table} WHERE {where}", args).fetchone()[0])
            if delete:
                for table, where in expiry.EXPIRED.values():
                    self.db.execute(f"DELETE FROM {table} WHERE {where}", args)
        return purge

    def scrub(self) -> bool:
        """Make deleted text unrecoverable from the files. secure_delete has zeroed it in the pages; hand the
        free pages back to the filesystem, then copy the write-ahead log into the database and empty it
        (its old frames still hold the text as it was written). False if another connection's open read
        kept the log from being emptied for longer than the busy timeout."""
        if self.memory:
            return True
        with self._lock:
            if self.db.execute("PRAGMA auto_vacuum").fetchone()[0] == INCREMENTAL:
                self.db.execute("PRAGMA incremental_vacuum").fetchall()
            else:  # not converted yet (the database was busy when it was opened): rebuild it instead
                self.db.execute("VACUUM")
            busy, _, _ = self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return busy == 0

    # -- feedback ----------------------------------------------------------

    def add_feedback(self, surface: str, user_id: str, citation: str, vote: str, reason: str = "") -> int:
        with self.transaction():
            return self.db["feedback"].insert({"surface": surface, "user_id": user_id, "citation": citation,
                                               "vote": vote, "reason": reason[:1000],
                                               "created_at": utcnow().isoformat()}).last_pk

    def set_feedback_reason(self, feedback_id: int, reason: str) -> None:
        with self.transaction():
            self.db["feedback"].update(int(feedback_id), {"reason": reason[:1000]})

    def feedback(self) -> list[dict]:
        return list(self.db.query("SELECT * FROM feedback ORDER BY id"))

    # -- platform state ----------------------------------------------------

    def read_state(self, keys: list[str]) -> dict[str, tuple[dict, int]]:
        if not keys:
            return {}
        rows = self.db.query(f"SELECT key, value, etag FROM bot_state WHERE key IN ({','.join('?' * len(keys))})",
                             list(keys))
        return {r["key"]: (json.loads(r["value"]), r["etag"]) for r in rows}

    def write_state(self, key: str, value: dict, expected_etag: int | None = None) -> int:
        """Store plain JSON data; with expected_etag, refuse (KeyError) if someone else wrote first."""
        with self.transaction():
            row = self.db.execute("SELECT etag FROM bot_state WHERE key = ?", [key]).fetchone()
            if expected_etag is not None and row and row[0] != expected_etag:
                raise KeyError(f"state {key!r} changed since it was read (etag {row[0]}, not {expected_etag})")
            etag = (row[0] if row else 0) + 1
            self.db.execute("INSERT INTO bot_state (key, value, etag, updated_at) VALUES (?, ?, ?, ?) "
                            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, etag = excluded.etag, "
                            "updated_at = excluded.updated_at",
                            [key, json.dumps(value, ensure_ascii=False), etag, utcnow().isoformat()])
            return etag

    def delete_state(self, keys: list[str]) -> None:
        if keys:
            with self.transaction():
                self.db.execute(f"DELETE FROM bot_state WHERE key IN ({','.join('?' * len(keys))})", list(keys))

    # -- escalations (the outbox: see handlers/store.py for the contract) ---------

    def add_escalation(self, kind: str, summary: str, *, incident_ref: str | None = None,
                       requester_surface: str = "", requester_user: str = "", target: str = "",
                       destination: str = "", group_id: int | None = None,
                       dedupe_key: str | None = None) -> Escalation:
        row = {"kind": kind, "summary": summary, "status": PENDING, "created_at": utcnow().isoformat(),
               "incident_ref": incident_ref, "requester_surface": requester_surface,
               "requester_user": requester_user, "target": target,
               "destination": destination or requester_surface, "group_id": group_id,
               "uid": uuid.uuid4().hex, "dedupe_key": dedupe_key}
        names = ", ".join(row)
        with self.transaction():
            cur = self.db.execute(f"INSERT INTO escalations ({names}) VALUES ({', '.join('?' * len(row))}) "
                                  "ON CONFLICT (dedupe_key) DO NOTHING RETURNING id", list(row.values()))
            found = cur.fetchone()
            if found is None:  # the same (escalation, action) was raised before: that row stands
                found = self.db.execute("SELECT id FROM escalations WHERE dedupe_key = ?", [dedupe_key]).fetchone()
        return self.get_escalation(found[0])

    def get_escalation(self, esc_id: int) -> Escalation | None:
        rows = list(self.db.query("SELECT * FROM escalations WHERE id = ?", [int(esc_id)]))
        return Escalation(**rows[0]) if rows else None

    def save_escalation(self, esc: Escalation) -> None:
        data = dict(vars(esc))
        data.pop("id")
        with self.transaction():
            self.db["escalations"].update(esc.id, data)

    def escalations(self, status: str | None = None, incident_ref: str | None = None,
                    dedupe_key: str | None = None, group: int | None = None) -> list[Escalation]:
        rows = self._select("escalations", {"status = ?": status, "incident_ref = ?": incident_ref,
                                            "dedupe_key = ?": dedupe_key,
                                            "(id = ? OR group_id = ?)": None if group is None else (group, group)},
                            "id")
        return [Escalation(**r) for r in rows]

    def claim_escalations(self, claimant: str, destinations: Sequence[str], *, now: dt.datetime,
                          lease: dt.timedelta, max_attempts: int, limit: int = 1) -> list[Escalation]:
        if not destinations:
            return []
        at = _iso(now)
        marks = ",".join("?" * len(destinations))
        with self.transaction():  # BEGIN IMMEDIATE: the write lock is taken before anything is read
            rows = self.db.execute(
                "UPDATE escalations SET status = ?, claimed_by = ?, lease_until = ?, attempts = attempts + 1 "
                "WHERE id IN (SELECT id FROM escalations "
                f"             WHERE destination IN ({marks}) "
                "                AND ((status IN (?, ?) AND attempts < ? "
                "                      AND (next_attempt_at IS NULL OR next_attempt_at <= ?)) "
                "                     OR (status = ? AND lease_until <= ?)) "
                "              ORDER BY id LIMIT ?) RETURNING *",
                [SENDING, claimant, _iso(now + lease), *destinations, *CLAIMABLE, int(max_attempts), at,
                 SENDING, at, int(limit)])
            names = [d[0] for d in rows.description]
            claimed = [Escalation(**dict(zip(names, r))) for r in rows.fetchall()]
        return sorted(claimed, key=lambda e: e.id)

    def finish_escalation(self, esc_id: int, claimant: str, *, message_ref: str, now: dt.datetime,
                          summary: str | None = None) -> bool:
        extra, params = ("", []) if summary is None else (", summary = ?", [summary])
        with self.transaction():
            return self.db.execute(
                "UPDATE escalations SET status = CASE status WHEN ? THEN ? ELSE status END, message_ref = ?, "
                "sent_at = ?, last_error = '', claimed_by = '', lease_until = NULL, next_attempt_at = NULL"
                f"{extra} WHERE id = ? AND claimed_by = ?",
                [SENDING, SENT, message_ref, _iso(now), *params, int(esc_id), claimant]).rowcount == 1

    def fail_escalation(self, esc_id: int, claimant: str, *, error: str, now: dt.datetime,
                        retry_at: dt.datetime | None) -> bool:
        with self.transaction():
            return self.db.execute(
                "UPDATE escalations SET status = ?, last_error = ?, next_attempt_at = ?, claimed_by = '', "
                "lease_until = NULL WHERE id = ? AND claimed_by = ? AND status = ?",
                [UNDELIVERABLE if retry_at is None else FAILED, error[:500], None if retry_at is None else _iso(retry_at),
                 int(esc_id), claimant, SENDING]).rowcount == 1

    def move_escalation(self, esc_id: int, status: str, *, actor_id: str, actor_name: str,
                        now: dt.datetime) -> list[Escalation]:
        at = _iso(now)
        with self.transaction():
            row = self.db.execute("SELECT coalesce(group_id, id) FROM escalations WHERE id = ?", [int(esc_id)]).fetchone()
            if row is None:
                return []
            group = row[0]
            if status == ACKNOWLEDGED:
                cur = self.db.execute(
                    "UPDATE escalations SET status = ?, acknowledged_at = ?, acknowledged_by = ?, acknowledged_by_id = ? "
                    "WHERE (id = ? OR group_id = ?) AND status NOT IN (?, ?) RETURNING *",
                    [ACKNOWLEDGED, at, actor_name, actor_id, group, group, ACKNOWLEDGED, RESOLVED])
            elif status == RESOLVED:
                cur = self.db.execute(
                    "UPDATE escalations SET status = ?, resolved_at = ?, resolved_by = ?, resolved_by_id = ?, "
                    "acknowledged_at = coalesce(acknowledged_at, ?), "
                    "acknowledged_by = CASE WHEN acknowledged_by_id = '' THEN ? ELSE acknowledged_by END, "
                    "acknowledged_by_id = CASE WHEN acknowledged_by_id = '' THEN ? ELSE acknowledged_by_id END "
                    "WHERE (id = ? OR group_id = ?) AND status != ? RETURNING *",
                    [RESOLVED, at, actor_name, actor_id, at, actor_name, actor_id, group, group, RESOLVED])
            else:
                raise ValueError(f"an escalation can only be moved to {ACKNOWLEDGED} or {RESOLVED}, not {status!r}")
            names = [d[0] for d in cur.description]
            moved = [Escalation(**dict(zip(names, r))) for r in cur.fetchall()]
        return sorted(moved, key=lambda e: e.id)

    def _select(self, table: str, conditions: dict[str, object], order: str, limit: int | None = None):
        """Rows of `table` matching every condition whose value is not None."""
        used = {cond: value for cond, value in conditions.items() if value is not None}
        sql = f"SELECT * FROM {table}" + (" WHERE " + " AND ".join(used) if used else "") + f" ORDER BY {order}"
        if limit:
            sql += f" LIMIT {int(limit)}"
        params = [p for v in used.values() for p in (v if isinstance(v, tuple) else (v,))]
        return self.db.query(sql, params)
