"""How long each kind of record is kept, and what a purge removes.

Set in app.yaml under `retention:`; `policybot incidents purge` deletes what is older:

- incidents: an incident, its answers and its escalations, by when the incident was created;
- drafts: drafts sent to the comms team for review ("Ask comms to review"), counted from the
  last thing that happened to one (resolved, acknowledged, delivered, its next retry; or
  being sent for review, if it was never delivered);
- questions: questions passed to a person ("Ask a person") and any other escalation that
  has no incident, counted the same way; and the questions the bot could not answer (kept
  for policy owners as 'not_found' feedback), by when they were asked;
- feedback: helpful / not helpful votes with their optional reasons, by when they were given.

An escalation whose incident is already gone goes at the next purge, whatever its age.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

PERIOD = re.compile(r"^(\d+)\s*(d|w|m|y)$")
DAYS = {"d": 1, "w": 7, "m": 30, "y": 365}


def parse_period(text: str) -> dt.timedelta:
    """'90d', '12w', '6m' (30 days each), '1y' (365 days). ValueError says what is expected."""
    m = PERIOD.match(str(text).strip().lower())
    if not m or int(m.group(1)) == 0:
        raise ValueError(f"use a number and d, w, m or y, e.g. 90d or 1y (got {text!r})")
    return dt.timedelta(days=int(m.group(1)) * DAYS[m.group(2)])


def describe(period: dt.timedelta) -> str:
    days = period.days
    return f"{days // 365}y" if days % 365 == 0 else f"{days}d"


@dataclass(frozen=True)
class Cutoffs:
    """Records last touched before these times are deleted."""
    incidents: dt.datetime
    drafts: dt.datetime
    questions: dt.datetime
    feedback: dt.datetime


@dataclass(frozen=True)
class Retention:
    incidents: dt.timedelta = dt.timedelta(days=365)
    drafts: dt.timedelta = dt.timedelta(days=7)
    questions: dt.timedelta = dt.timedelta(days=90)
    feedback: dt.timedelta = dt.timedelta(days=365)

    def cutoffs(self, now: dt.datetime, incidents: dt.timedelta | None = None) -> Cutoffs:
        return Cutoffs(incidents=now - (incidents or self.incidents), drafts=now - self.drafts,
                       questions=now - self.questions, feedback=now - self.feedback)

    def line(self) -> str:
        return (f"incidents {describe(self.incidents)}, drafts for review {describe(self.drafts)}, "
                f"questions for a person {describe(self.questions)}, feedback {describe(self.feedback)}")


@dataclass
class Purge:
    """What a purge removes (or removed), table by table."""
    incidents: list[str] = field(default_factory=list)  # their references
    answers: int = 0
    incident_escalations: int = 0  # of those incidents, or of incidents already gone
    drafts: int = 0
    questions: int = 0
    feedback: int = 0
    scrubbed: bool = True          # the store did all it could to make the deleted text unreadable
    note: str = ""                 # what the store says about its files after deleting

    @property
    def escalations(self) -> int:
        return self.incident_escalations + self.drafts + self.questions

    @property
    def rows(self) -> int:
        return len(self.incidents) + self.answers + self.escalations + self.feedback
