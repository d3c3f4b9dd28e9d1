"""The storage interface the handlers use: incidents, their answers, escalations, processed events.

Handlers depend only on this; bot/storage/ implements it (SQLite through sqlite-utils,
or PostgreSQL through psycopg for several replicas), and one contract test suite runs
against both. Store only what the incident log needs.
"""
from __future__ import annotations

import datetime as dt
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol

IN_PROGRESS, COMPLETED, CANCELLED = "in_progress", "completed", "cancelled"
PENDING, SENT, FAILED, ACKNOWLEDGED, RESOLVED = "pending", "sent", "failed", "acknowledged", "resolved"


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
    acknowledged_by: str = ""
    resolved_at: str | None = None
    resolved_by: str = ""


class Store(Protocol):
    def transaction(self) -> AbstractContextManager: ...
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
    # feedback on answers
    def add_feedback(self, surface: str, user_id: str, citation: str, vote: str, reason: str = "") -> int: ...
    def set_feedback_reason(self, feedback_id: int, reason: str) -> None: ...
    # state a chat platform keeps between turns (plain JSON), with etags for optimistic concurrency
    def read_state(self, keys: list[str]) -> dict[str, tuple[dict, int]]: ...
    def write_state(self, key: str, value: dict, expected_etag: int | None = None) -> int: ...
    def delete_state(self, keys: list[str]) -> None: ...
    # escalations
    def add_escalation(self, kind: str, summary: str, *, incident_ref: str | None = None,
                       requester_surface: str = "", requester_user: str = "", target: str = "") -> Escalation: ...
    def get_escalation(self, esc_id: int) -> Escalation | None: ...
    def save_escalation(self, esc: Escalation) -> None: ...
    def escalations(self, status: str | None = None, incident_ref: str | None = None) -> list[Escalation]: ...
