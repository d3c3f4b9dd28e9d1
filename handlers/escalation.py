"""Escalations: stored first, then delivered through a notifier, retried until delivered.

Slack, Teams and the console each implement Notifier. Because an escalation is in the
store before anyone tries to send it, a crash or a failed delivery never loses it:
`deliver_pending` picks up whatever is still pending or failed.
"""
from __future__ import annotations

import datetime as dt
from typing import Protocol

from .store import ACKNOWLEDGED, FAILED, PENDING, RESOLVED, SENT, Escalation, Store, utcnow

MAX_ATTEMPTS = 8
RETRY_AFTER = (0, 5, 15, 60, 300, 900, 1800, 3600)  # seconds after the last attempt


class Notifier(Protocol):
    async def send(self, esc: Escalation) -> str:
        """Post the escalation to its team; return the platform's id for the message. Raise on failure."""

    async def update(self, esc: Escalation) -> None:
        """Show a changed status (acknowledged, resolved) on the posted message."""

    async def tell_user(self, surface: str, user: str, text: str) -> None:
        """Send a short message to the person who asked for the escalation."""


class EscalationService:
    def __init__(self, store: Store, notifier: Notifier | None = None):
        self.store = store
        self.notifier = notifier
        self.new = True  # something may be waiting (true at start-up: a restart may have left some)

    def raise_(self, kind: str, summary: str, *, incident_ref: str | None = None, surface: str = "",
               user: str = "", target: str = "") -> Escalation:
        self.new = True
        return self.store.add_escalation(kind, summary, incident_ref=incident_ref, requester_surface=surface,
                                         requester_user=user, target=target)

    async def deliver_new(self) -> list[Escalation]:
        """After a message: deliver only if something was raised (the periodic pass catches retries)."""
        if not self.new:
            return []
        self.new = False
        return await self.deliver_pending()

    def due(self, now: dt.datetime | None = None) -> list[Escalation]:
        now = now or utcnow()
        out = []
        for esc in self.store.escalations(status=PENDING) + self.store.escalations(status=FAILED):
            if esc.attempts >= MAX_ATTEMPTS:
                continue
            wait = RETRY_AFTER[min(esc.attempts, len(RETRY_AFTER) - 1)]
            last = dt.datetime.fromisoformat(esc.sent_at or esc.created_at)
            if esc.attempts == 0 or now >= last + dt.timedelta(seconds=wait):
                out.append(esc)
        return out

    async def deliver_pending(self, now: dt.datetime | None = None) -> list[Escalation]:
        """Try every escalation that is due; record each success or failure."""
        if self.notifier is None:
            return []
        done = []
        for esc in self.due(now):
            esc.attempts += 1
            try:
                esc.message_ref = await self.notifier.send(esc) or ""
            except Exception as exc:  # any failure is recorded and retried later
                esc.status, esc.last_error = FAILED, f"{type(exc).__name__}: {exc}"[:500]
                esc.sent_at = utcnow().isoformat()  # time of the last attempt, for the back-off
            else:
                esc.status, esc.last_error, esc.sent_at = SENT, "", utcnow().isoformat()
                if esc.kind == "review":  # a draft may hold patient details: keep it only until delivered
                    esc.summary = "[draft delivered to the comms team; not kept here]"
                done.append(esc)
            self.store.save_escalation(esc)
        return done

    async def acknowledge(self, esc_id: int, by: str) -> Escalation | None:
        return await self._move(esc_id, ACKNOWLEDGED, by, "is being looked at by {by}")

    async def resolve(self, esc_id: int, by: str) -> Escalation | None:
        return await self._move(esc_id, RESOLVED, by, "has been resolved by {by}")

    async def _move(self, esc_id: int, status: str, by: str, news: str) -> Escalation | None:
        esc = self.store.get_escalation(esc_id)
        if esc is None:
            return None
        if esc.status == RESOLVED or (esc.status == ACKNOWLEDGED and status == ACKNOWLEDGED):
            return esc  # a second click changes nothing
        now = utcnow().isoformat()
        if status == ACKNOWLEDGED or not esc.acknowledged_at:
            esc.acknowledged_at, esc.acknowledged_by = esc.acknowledged_at or now, esc.acknowledged_by or by
        if status == RESOLVED:
            esc.resolved_at, esc.resolved_by = now, by
        esc.status = status
        self.store.save_escalation(esc)
        if self.notifier:
            await self.notifier.update(esc)
            if esc.requester_user:
                what = f"Your report {esc.incident_ref}" if esc.incident_ref else "Your request to the comms team"
                await self.notifier.tell_user(esc.requester_surface, esc.requester_user, f"{what} {news.format(by=by)}.")
        return esc
