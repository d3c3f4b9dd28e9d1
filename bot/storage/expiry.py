"""Which rows a purge removes (handlers/retention.py says why), as SQL both stores run.

Each entry is a kind of record `Purge` counts: its table, and the rows of it that are past their
retention period, given the cutoffs as named parameters (:incidents, :drafts, :questions,
:feedback; `for_postgres` turns them into psycopg's %(name)s). Timestamps are ISO 8601 text in
UTC on both stores, so they compare as strings. Incidents come last: the others select by them.
"""
from __future__ import annotations

import re

_LAST_TOUCHED = "COALESCE(resolved_at, acknowledged_at, sent_at, next_attempt_at, created_at)"

EXPIRED: dict[str, tuple[str, str]] = {
    "incident_escalations": ("escalations", "incident_ref IS NOT NULL AND (incident_ref IN "
                             "(SELECT ref FROM incidents WHERE created_at < :incidents) "
                             "OR incident_ref NOT IN (SELECT ref FROM incidents))"),
    "drafts": ("escalations", f"incident_ref IS NULL AND kind = 'review' AND {_LAST_TOUCHED} < :drafts"),
    "questions": ("escalations", f"incident_ref IS NULL AND kind != 'review' AND {_LAST_TOUCHED} < :questions"),
    # questions the bot could not answer (kept as 'not_found' feedback) go with the questions
    "feedback": ("feedback", "(vote = 'not_found' AND created_at < :questions) "
                             "OR (vote != 'not_found' AND created_at < :feedback)"),
    "answers": ("answers", "incident_id IN (SELECT id FROM incidents WHERE created_at < :incidents)"),
    "incidents": ("incidents", "created_at < :incidents"),
}
TABLES = tuple(dict.fromkeys(table for table, _ in EXPIRED.values()))
REFS = "SELECT ref FROM incidents WHERE created_at < :incidents ORDER BY id"


def params(cutoffs) -> dict[str, str]:
    return {k: getattr(cutoffs, k).isoformat() for k in ("incidents", "drafts", "questions", "feedback")}


def for_postgres(sql: str) -> str:
    return re.sub(r":(\w+)", r"%(\1)s", sql)
