"""Escalations: stored first, then delivered exactly once through the notifier of each destination.

Slack, Teams and the console each implement Notifier. An escalation is in the store before
anyone tries to send it, so a crash or a failed delivery never loses it; and a delivery
claims its row (store.claim_escalations: status `sending`, a lease, the claimant) in its own
transaction before it sends, so two deliveries running at once (tasks, threads, processes)
never both post it. A row claimed again (attempts > 1) may already have been posted by a
claimant that died before recording it: notifiers put the row's uid on every post and look
for it before posting again.

Who may acknowledge or resolve is the destination's business (members of the comms
channel, admins in app.yaml): the notifier of the actor's surface answers `may_act`.
Display names are data: stored beside the platform id, escaped wherever shown.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import os
import socket
import uuid
from dataclasses import dataclass
from typing import Callable, Protocol

from .store import ACKNOWLEDGED, RESOLVED, Escalation, Store, utcnow

log = logging.getLogger("policybot.escalation")
MAX_ATTEMPTS = 8
RETRY_AFTER = (5, 5, 15, 60, 300, 900, 1800, 3600)  # seconds after attempt n (index n) before the next one
LEASE = dt.timedelta(minutes=5)        # how long a claim holds a row before another claimant may take it
SEND_TIMEOUT = 120.0                   # seconds one delivery may take: well inside the lease
MAX_PER_PASS = 200                     # rows one pass delivers, so a pass always ends
DROPPED_DRAFT = "[draft delivered to the comms team; not kept here]"


class Undeliverable(Exception):
    """This escalation can never be delivered as it is (e.g. a line manager who is not a platform user)."""


@dataclass(frozen=True)
class Actor:
    """Who pressed Acknowledge or Resolve. `id` is what the audit trail keeps; `name` is for display only
    (untrusted text: a display name can say anything); `where` is the conversation the click came from."""
    surface: str
    id: str
    name: str = ""
    where: str = ""
    other_ids: tuple[str, ...] = ()   # other ids the platform gives the same person (Teams: Azure AD object id)

    @property
    def audit_id(self) -> str:
        return f"{self.surface}:{self.id}"

    @property
    def label(self) -> str:
        return " ".join((self.name or self.id).split())[:80] or self.id


class Notifier(Protocol):
    async def send(self, esc: Escalation) -> str:
        """Post the escalation to its team, carrying esc.uid; return the platform's id for the message.
        When esc.attempts > 1, first look for a post carrying esc.uid and return that instead of posting.
        Raise on failure (Undeliverable if retrying can never help)."""

    async def update(self, esc: Escalation) -> None:
        """Show a changed status (acknowledged, resolved) on the posted message."""

    async def tell_user(self, user: str, text: str) -> None:
        """Send a short plain-text message (escaped here) to a user of this surface."""

    async def may_act(self, esc: Escalation, actor: Actor) -> bool:
        """Whether this actor may acknowledge or resolve this escalation (members of its destination)."""


@dataclass(frozen=True)
class Moved:
    """The result of an acknowledge or resolve: the escalation, and whether anything changed."""
    escalation: Escalation | None
    changed: bool = False
    refused: str = ""   # why the actor may not do this (nothing changed)


TEAMS = {"safeguarding": "safeguarding", "comms": "comms", "foi": "comms", "review": "comms"}


def refusal(esc: Escalation) -> str:
    return f"Sorry, only the {TEAMS.get(esc.kind, 'comms')} team can do this."


def default_claimant() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class EscalationService:
    def __init__(self, store: Store, notifiers: dict[str, Notifier] | None = None, *,
                 routes: dict[str, tuple[str, ...]] | None = None, clock: Callable[[], dt.datetime] = utcnow,
                 claimant: str | None = None, lease: dt.timedelta = LEASE):
        self.store = store
        self.notifiers: dict[str, Notifier] = dict(notifiers or {})
        self.routes = dict(routes or {})   # requester surface -> destination surfaces (app.yaml escalations.routes)
        self.clock = clock
        self.claimant = claimant or default_claimant()
        self.lease = lease
        self.new = True  # something may be waiting (true at start-up: a restart may have left some)

    def add_notifier(self, surface: str, notifier: Notifier) -> None:
        self.notifiers[surface] = notifier

    # -- raising ----------------------------------------------------------------

    def destinations(self, kind: str, surface: str) -> tuple[str, ...]:
        """Where an escalation raised on `surface` goes: back to that surface unless app.yaml routes it.
        A summary for a line manager always goes to the surface the manager was picked on."""
        if kind == "line_manager" or not self.routes.get(surface):
            return (surface or "console",)
        return tuple(self.routes[surface])

    def raise_(self, kind: str, summary: str, *, incident_ref: str | None = None, surface: str = "",
               user: str = "", target: str = "", key: str | None = None) -> Escalation:
        """Store an escalation for each destination, once per `key` (an (escalation, action) identity:
        raising it again returns the row already stored and sends nothing more)."""
        self.new = True
        first: Escalation | None = None
        with self.store.transaction():
            for n, destination in enumerate(self.destinations(kind, surface)):
                row_key = None if key is None else (key if n == 0 else f"{key}@{destination}")
                esc = self.store.add_escalation(kind, summary, incident_ref=incident_ref, requester_surface=surface,
                                                requester_user=user, target=target, destination=destination,
                                                group_id=first.id if first else None, dedupe_key=row_key)
                first = first or esc
        return first

    def already_raised(self, key: str) -> Escalation | None:
        found = self.store.escalations(dedupe_key=key)
        return found[0] if found else None

    # -- delivering -------------------------------------------------------------

    async def deliver_new(self) -> list[Escalation]:
        """After a message: deliver only if something was raised (the periodic pass catches retries)."""
        if not self.new:
            return []
        self.new = False
        return await self.deliver_pending()

    async def deliver_pending(self, now: dt.datetime | None = None) -> list[Escalation]:
        """Claim and deliver, one row at a time, every row due for a destination this process serves."""
        done: list[Escalation] = []
        for _ in range(MAX_PER_PASS):
            claimed = self.store.claim_escalations(self.claimant, list(self.notifiers), now=now or self.clock(),
                                                   lease=self.lease, max_attempts=MAX_ATTEMPTS, limit=1)
            if not claimed:
                break
            esc = claimed[0]
            if await self._deliver(esc, now):
                done.append(self.store.get_escalation(esc.id))
        return done

    async def _deliver(self, esc: Escalation, now: dt.datetime | None) -> bool:
        notifier = self.notifiers[esc.destination]
        try:
            # A send must end well inside the lease, or another claimant could take the row mid-send.
            ref = await asyncio.wait_for(notifier.send(esc), min(SEND_TIMEOUT, self.lease.total_seconds() / 2))
        except Exception as exc:  # any failure is recorded and retried later (or given up on)
            at = now or self.clock()
            give_up = isinstance(exc, Undeliverable) or esc.attempts >= MAX_ATTEMPTS
            error = _error(exc)
            retry_at = None if give_up else at + dt.timedelta(
                seconds=RETRY_AFTER[min(esc.attempts, len(RETRY_AFTER) - 1)])
            if self.store.fail_escalation(esc.id, self.claimant, error=error, now=at, retry_at=retry_at) and give_up:
                await self._gave_up(esc, error, expected=isinstance(exc, Undeliverable) and esc.kind == "line_manager")
            return False
        # A draft may hold patient details: keep it only until it is delivered.
        summary = DROPPED_DRAFT if esc.kind == "review" else None
        if not self.store.finish_escalation(esc.id, self.claimant, message_ref=ref or "", now=now or self.clock(),
                                            summary=summary):
            log.warning("escalation #%s was delivered after its lease passed to another claimant", esc.id)
        return True

    async def _gave_up(self, esc: Escalation, error: str, expected: bool = False) -> None:
        """Out of retries: an alert line for whoever watches the logs (no summary or draft text), and
        the requester of a line-manager summary is told to pass it on themselves. A line manager who
        was typed rather than picked can never be messaged: the reporter is told, and it is no alert."""
        log.log(logging.WARNING if expected else logging.ERROR,
                ("" if expected else "ALERT ") + "escalation #%s (%s to %s) is undeliverable after %s attempt(s): %s; "
                "see `policybot escalations list --failed`", esc.id, esc.kind, esc.destination, esc.attempts, error)
        if esc.kind == "line_manager" and esc.requester_user:
            what = f"the summary of report {esc.incident_ref}" if esc.incident_ref else "the summary"
            await self._tell(esc.requester_surface, esc.requester_user,
                             f"I couldn't send your line manager {what}. Please tell them about it yourself.")

    # -- acknowledging ----------------------------------------------------------

    async def acknowledge(self, esc_id: int, actor: Actor) -> Moved:
        return await self._move(esc_id, ACKNOWLEDGED, actor, "is being looked at by {by}")

    async def resolve(self, esc_id: int, actor: Actor) -> Moved:
        return await self._move(esc_id, RESOLVED, actor, "has been resolved by {by}")

    async def _move(self, esc_id: int, status: str, actor: Actor, news: str) -> Moved:
        esc = self.store.get_escalation(esc_id)
        if esc is None:
            return Moved(None)
        judge = self.notifiers.get(actor.surface)
        if judge is None or not await judge.may_act(esc, actor):
            return Moved(esc, refused=refusal(esc))
        moved = self.store.move_escalation(esc_id, status, actor_id=actor.audit_id, actor_name=actor.label,
                                           now=self.clock())
        if not moved:
            return Moved(self.store.get_escalation(esc_id))  # a second or replayed click changes nothing
        for row in moved:  # every copy of it, on every surface it was posted to
            notifier = self.notifiers.get(row.destination)
            if notifier and row.message_ref:
                try:
                    await notifier.update(row)
                except Exception as exc:  # the store is right; a stale message is shown until the next change
                    log.warning("could not update escalation #%s on %s: %s", row.id, row.destination, _error(exc))
        first = moved[0]
        if first.requester_user and first.kind != "line_manager":
            what = f"Your report {first.incident_ref}" if first.incident_ref else "Your request to the comms team"
            await self._tell(first.requester_surface, first.requester_user, f"{what} {news.format(by=actor.label)}.")
        return Moved(next((r for r in moved if r.id == esc_id), first), changed=True)

    async def _tell(self, surface: str, user: str, text: str) -> None:
        """News for a requester goes to the surface they asked on (never another platform's DM)."""
        notifier = self.notifiers.get(surface)
        if notifier is None:
            log.info("no %s notifier in this process: the requester is not told", surface or "console")
            return
        try:
            await notifier.tell_user(user, text)
        except Exception as exc:
            log.warning("could not tell the requester on %s: %s", surface, _error(exc))


def _error(exc: BaseException) -> str:
    """What went wrong, without message text: the exception type and the platform's error code."""
    response = getattr(exc, "response", None)
    code = ""
    try:
        code = response.get("error", "") if response is not None else ""
    except Exception:
        code = ""
    if isinstance(exc, asyncio.TimeoutError):
        return f"TimeoutError: no answer within {SEND_TIMEOUT:.0f} s"
    detail = code or str(exc)
    return f"{type(exc).__name__}: {detail}"[:300]


def idempotency_key(*parts: str) -> str:
    """A stable key for an (escalation, action), without keeping the text it is made from."""
    return hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()
