"""The storage interface the handlers use: incidents, their answers, escalations, processed events.

Handlers depend only on this; bot/storage/ implements it (SQLite through sqlite-utils,
or PostgreSQL through psycopg for several replicas), and one contract test suite runs
against both. Store only what the incident log needs.

Escalations are an outbox with exactly-once effect. Each row goes to one destination
surface (an escalation sent to Slack and Teams is two rows sharing a `group_id`), and moves:

    pending --claim--> sending --finish--> sent --move--> acknowledged --move--> resolved
                       sending --fail, retry_at--> failed --claim--> sending ...
                       sending --fail, no retry--> undeliverable (out of retries: alerted)
                       sending, lease expired --claim by another claimant--> sending

A claim is its own committed transaction that sets status `sending`, the claimant's id and
a lease expiry, so no two deliveries (tasks, threads or processes) ever hold the same row;
finish and fail only take effect for the claimant that still holds the lease. `attempts`
counts claims, so a claim that returns attempts > 1 means an earlier attempt may already
have reached the platform (the process died between the platform accepting the post and
`finish`): the notifier then looks for a post carrying the row's `uid` before posting again.
The SQL each method must run is given in its docstring; tests/test_outbox.py holds every
store to it. Times passed in are timezone-aware datetimes; Escalation carries them back as
ISO-8601 strings in UTC (SQLite stores that text, to the second, so it compares as text;
PostgreSQL can use timestamptz). A claimant is any string unique to one delivering process
(EscalationService uses host:pid:random).
"""
from __future__ import annotations

import datetime as dt
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, Sequence

if TYPE_CHECKING:
    from .retention import Cutoffs, Purge

IN_PROGRESS, COMPLETED, CANCELLED = "in_progress", "completed", "cancelled"
PENDING, SENT, FAILED, ACKNOWLEDGED, RESOLVED = "pending", "sent", "failed", "acknowledged", "resolved"
SENDING, UNDELIVERABLE = "sending", "undeliverable"   # claimed by a delivery; out of retries
CLAIMABLE = (PENDING, FAILED)                            # claimable when due (plus SENDING whose lease expired)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


class StoreUnavailable(RuntimeError):
    """The database cannot be reached (or opened) right now; nothing was saved. The message names what
    failed (host, authentication, database) and never holds user text, so it is safe to log and show."""


@dataclass
class Answer:
    step: str
    value: str
    answered_at: str


@dataclass
class Incident:
    id: int
    ref: str
    surface: str
    user_id: str
    status: str
    step: str
    created_at: str
    updated_at: str
    completed_at: str | None = None
    fields: dict[str, str] = field(default_factory=dict)   # the latest answer for each step
    risk_flags: list[str] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)    # every answer, in order, with timestamps
    history: list[str] = field(default_factory=list)        # steps visited, for "back"


@dataclass
class Escalation:
    id: int
    kind: str               # safeguarding | comms | foi | line_manager | review
    summary: str
    status: str
    created_at: str
    incident_ref: str | None = None
    requester_surface: str = ""
    requester_user: str = ""
    target: str = ""
    attempts: int = 0
    last_error: str = ""
    sent_at: str | None = None
    message_ref: str = ""   # the platform's id for the posted message, to update it later
    acknowledged_at: str | None = None
    acknowledged_by: str = ""       # display name only: untrusted text, escaped wherever it is shown
    resolved_at: str | None = None
    resolved_by: str = ""           # display name only
    # the outbox (see the module docstring)
    destination: str = ""           # the surface this row is posted to (slack, teams, console)
    group_id: int | None = None     # the first row's id when one escalation goes to several surfaces
    uid: str = ""                   # random token set on insert, carried by every post of this row
    dedupe_key: str | None = None   # unique: raising the same (escalation, action) twice gives one row
    claimed_by: str = ""            # the claimant holding the lease while status is sending
    lease_until: str | None = None  # ISO time the claim expires
    next_attempt_at: str | None = None  # ISO time a failed row is due again
    acknowledged_by_id: str = ""    # the audit trail: "<surface>:<platform user id>" of who acted
    resolved_by_id: str = ""

    @property
    def group(self) -> int:
        return self.group_id or self.id


class Store(Protocol):
    def transaction(self) -> AbstractContextManager: ...
    def ping(self) -> None:
        """Raise if the database can't be reached."""
    def claim_event(self, event_id: str) -> bool:
        """Record a platform event id; False if it was already processed (a duplicate delivery)."""
    # incidents
    def create_incident(self, surface: str, user_id: str, step: str) -> Incident: ...
    def active_incident(self, surface: str, user_id: str) -> Incident | None: ...
    def get_incident(self, ref: str) -> Incident | None: ...
    def save_incident(self, incident: Incident) -> None: ...
    def add_answer(self, incident: Incident, step: str, value: str) -> None: ...
    def list_incidents(self, since: dt.datetime | None = None, status: str | None = None,
                       user_id: str | None = None, limit: int | None = None, before: dt.datetime | None = None,
                       answers: bool = True) -> list[Incident]:
        """Newest first. answers=False skips loading every answer when only the summary fields are needed."""
    def purge_incidents(self, refs: list[str]) -> int: ...
    # retention (handlers/retention.py): what is past its period, and deleting it so it cannot be read back
    def expired(self, cutoffs: Cutoffs) -> Purge: ...
    def purge_expired(self, cutoffs: Cutoffs) -> Purge: ...
    # feedback on answers
    def add_feedback(self, surface: str, user_id: str, citation: str, vote: str, reason: str = "") -> int: ...
    def set_feedback_reason(self, feedback_id: int, reason: str) -> None: ...
    def feedback(self) -> list[dict]:
        """Every feedback row, oldest first: vote up / down (a clause's citation, an optional reason) or
        not_found (no citation; the question with identifiers removed, when app.yaml keeps it)."""
    # state a chat platform keeps between turns (plain JSON), with etags for optimistic concurrency
    def read_state(self, keys: list[str]) -> dict[str, tuple[dict, int]]: ...
    def write_state(self, key: str, value: dict, expected_etag: int | None = None) -> int: ...
    def delete_state(self, keys: list[str]) -> None: ...
    # escalations
    def add_escalation(self, kind: str, summary: str, *, incident_ref: str | None = None,
                       requester_surface: str = "", requester_user: str = "", target: str = "",
                       destination: str = "", group_id: int | None = None,
                       dedupe_key: str | None = None) -> Escalation:
        """A new pending row (destination defaults to requester_surface) with a fresh random uid.
        With a dedupe_key already stored, nothing is inserted and the existing row is returned:
        INSERT ... ON CONFLICT (dedupe_key) DO NOTHING, then SELECT ... WHERE dedupe_key = :key."""
    def get_escalation(self, esc_id: int) -> Escalation | None: ...
    def save_escalation(self, esc: Escalation) -> None:
        """Overwrite every field (for tools and migrations; deliveries use claim/finish/fail)."""
    def escalations(self, status: str | None = None, incident_ref: str | None = None,
                    dedupe_key: str | None = None, group: int | None = None) -> list[Escalation]:
        """In id order; each filter applies when given (group: id = :group OR group_id = :group)."""

    def claim_escalations(self, claimant: str, destinations: Sequence[str], *, now: dt.datetime,
                          lease: dt.timedelta, max_attempts: int, limit: int = 1) -> list[Escalation]:
        """Take up to `limit` due rows for sending, in one committed transaction of their own:

            UPDATE escalations
               SET status = 'sending', claimed_by = :claimant, lease_until = :now + :lease,
                   attempts = attempts + 1
             WHERE id IN (SELECT id FROM escalations
                           WHERE destination IN (:destinations)
                             AND ((status IN ('pending', 'failed') AND attempts < :max_attempts
                                   AND (next_attempt_at IS NULL OR next_attempt_at <= :now))
                                  OR (status = 'sending' AND lease_until <= :now))
                           ORDER BY id LIMIT :limit
                           FOR UPDATE SKIP LOCKED)          -- PostgreSQL; SQLite: BEGIN IMMEDIATE
            RETURNING *

        Returns the claimed rows as they are after the update, in id order (empty if none is due).
        A row whose lease expired is claimable whatever its attempts, so the caller can find out
        whether the dead claimant's post landed before it gives up on the row."""

    def finish_escalation(self, esc_id: int, claimant: str, *, message_ref: str, now: dt.datetime,
                          summary: str | None = None) -> bool:
        """Record a delivery; only the claimant still holding the row can:

            UPDATE escalations
               SET status = CASE status WHEN 'sending' THEN 'sent' ELSE status END,
                   message_ref = :message_ref, sent_at = :now, last_error = '',
                   claimed_by = '', lease_until = NULL, next_attempt_at = NULL
                   [, summary = :summary]
             WHERE id = :id AND claimed_by = :claimant

        (a row acknowledged while it was being sent keeps its status). False if no row changed:
        the lease was lost to another claimant."""

    def fail_escalation(self, esc_id: int, claimant: str, *, error: str, now: dt.datetime,
                        retry_at: dt.datetime | None) -> bool:
        """Record a failed attempt; only the claimant still holding the row can:

            UPDATE escalations
               SET status = CASE WHEN :retry_at IS NULL THEN 'undeliverable' ELSE 'failed' END,
                   last_error = :error, next_attempt_at = :retry_at,
                   claimed_by = '', lease_until = NULL
             WHERE id = :id AND claimed_by = :claimant AND status = 'sending'

        retry_at None means give up (out of retries, or a destination that can never work)."""

    def move_escalation(self, esc_id: int, status: str, *, actor_id: str, actor_name: str,
                        now: dt.datetime) -> list[Escalation]:
        """Acknowledge or resolve an escalation and every copy of it (its group), at most once:

            acknowledged:  UPDATE escalations SET status = 'acknowledged', acknowledged_at = :now,
                               acknowledged_by = :actor_name, acknowledged_by_id = :actor_id
                            WHERE (id = :group OR group_id = :group)
                              AND status NOT IN ('acknowledged', 'resolved') RETURNING *
            resolved:      UPDATE escalations SET status = 'resolved', resolved_at = :now,
                               resolved_by = :actor_name, resolved_by_id = :actor_id,
                               acknowledged_at = COALESCE(acknowledged_at, :now),
                               acknowledged_by = CASE WHEN acknowledged_by_id = '' THEN :actor_name
                                                      ELSE acknowledged_by END,
                               acknowledged_by_id = CASE WHEN acknowledged_by_id = '' THEN :actor_id
                                                         ELSE acknowledged_by_id END
                            WHERE (id = :group OR group_id = :group) AND status != 'resolved' RETURNING *

        where :group is the row's group_id, or its id. Returns the changed rows in id order; empty
        when nothing changed (a second or replayed click), so callers tell people only once."""
