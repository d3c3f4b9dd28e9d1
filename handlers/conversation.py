"""The conversation entry point every surface calls: one message in, the bot's replies out.

Console, Slack and Teams only translate their events into `Incoming` (or a button press
into `handle_action`) and render the `Reply` objects that come back, so a conversation
behaves the same everywhere. Each message is handled in one store transaction that
also records its event id, so a duplicate delivery changes nothing and a crash loses
nothing half-done. When the database cannot be reached, the user is asked to try again
(nothing was done or saved) and the log says so, without their text.
"""
from __future__ import annotations

import datetime as dt
import logging
from contextlib import contextmanager
from dataclasses import dataclass

from .ask import AskHandler, help_reply
from .check import CheckHandler
from .escalation import idempotency_key
from .intents import REPORT, classify
from .replies import Reply, Text
from .report_contact import ReportContactFlow
from .store import Store, StoreUnavailable, utcnow
from .trust import TrustProfile

log = logging.getLogger("policybot.conversation")
AWAIT_DRAFT_FOR = dt.timedelta(minutes=30)  # "paste your draft" is forgotten after this
HELP_WORDS = {"help", "?", "hi", "hello", "hey", "start", "menu", "what can you do"}


def try_again(exc: StoreUnavailable | None = None) -> Reply:
    """The answer when the incident log is out of reach: say so plainly; nothing was saved."""
    if exc is not None:
        log.warning("store unavailable, asked the user to try again: %s", exc)  # names the database, no user text
    return Reply("try_again", [Text("Sorry, I can't reach the incident log just now, so I haven't done or saved "
                                    "anything. Please try again in a minute.")], private=True)


@dataclass(frozen=True)
class Incoming:
    """A message from a user on some surface. Text is untrusted and never logged."""
    surface: str
    user: str
    text: str
    event_id: str | None = None
    channel: str | None = None


class Conversation:
    def __init__(self, trust: TrustProfile, ask: AskHandler, check: CheckHandler,
                 report: ReportContactFlow | None = None, store: Store | None = None):
        self.trust = trust
        self.ask = ask
        self.check = check
        self.report = report
        self.store = store
        self._awaiting_draft: dict[tuple[str, str], str] = {}  # (surface, user) -> account, when there is no store

    @contextmanager
    def _once(self, surface: str, event_id: str | None):
        """A transaction that claims the event id; yields False if the event was already handled."""
        if not (self.store and event_id):
            yield True
            return
        with self.store.transaction():
            yield self.store.claim_event(f"{surface}:{event_id}")

    def handle(self, msg: Incoming) -> list[Reply]:
        try:
            with self._once(msg.surface, msg.event_id) as first_time:
                if not first_time:
                    return []
                return self._route(msg)
        except StoreUnavailable as exc:
            return [try_again(exc)]

    def handle_action(self, surface: str, user: str, action: str, value: str = "",
                      event_id: str | None = None, source: str | None = None) -> list[Reply]:
        """A button press. Report-flow buttons carry 'step:answer' so a stale button can't answer the wrong step.
        `source` names the message the button was on, so pressing the same button again is recognised."""
        try:
            return self._action(surface, user, action, value, event_id, source)
        except StoreUnavailable as exc:
            return [try_again(exc)]

    def _action(self, surface: str, user: str, action: str, value: str, event_id: str | None,
                source: str | None) -> list[Reply]:
        with self._once(surface, event_id) as first_time:
            if not first_time:
                return []
            incident = self.report.active(surface, user) if self.report else None
            if action.startswith("report_") and incident is None:
                return [Reply("report_none", [Text("That report is no longer in progress. "
                                                   "Type /report-contact to start a new one.")], private=True)]
            step, _, answer = value.partition(":")
            if action == "report_answer":
                return self.report.answer(incident, answer, step=step)
            if action in ("report_back", "report_cancel"):
                return self.report.answer(incident, action.removeprefix("report_"), step=step or None)
            if action == "why":
                return [self.ask.explain(value)]
            if action == "feedback":
                return [self._feedback(surface, user, value)]
            if action == "ask_comms":
                return [self._ask_comms(surface, user, value, source)]
            return [Reply("unknown_action", [Text("Sorry, that button isn't available here.")], private=True)]

    def _feedback(self, surface: str, user: str, value: str) -> Reply:
        vote, _, citation = value.partition("|")
        vote = "up" if vote == "up" else "down"
        feedback_id = self.store.add_feedback(surface, user, citation, vote) if self.store else 0
        if vote == "up":
            return Reply("feedback_thanks", [Text("Thanks, glad it helped.")], {"feedback_id": feedback_id}, private=True)
        return Reply("feedback_reason", [Text("Thanks for telling me. What was wrong with the answer? (optional)")],
                     {"feedback_id": feedback_id, "citation": citation}, private=True)

    def feedback_reason(self, feedback_id: int, reason: str) -> Reply:
        if self.store and feedback_id:
            try:
                self.store.set_feedback_reason(feedback_id, " ".join(reason.split()))
            except StoreUnavailable as exc:
                return try_again(exc)
        return Reply("feedback_thanks", [Text("Thanks, that helps us improve the answers.")], private=True)

    def _ask_comms(self, surface: str, user: str, value: str, source: str | None = None) -> Reply:
        """Pass a question, or (after the user confirmed) a draft, to the comms team."""
        what, _, text = value.partition("|")
        if not (self.report and text.strip()):
            return Reply("ask_comms_unavailable", [Text(f"Please contact the {self.trust.comms.line()} directly.")],
                         private=True)
        kind, label = ("review", "Draft for review") if what == "draft" else ("comms", "Question")
        # Once per (escalation, action): pressing the same button again sends nothing more. The key is
        # the message the button was on where the surface says (no trace of the draft is kept).
        key = idempotency_key(surface, user, "ask_comms", kind, *(["on", source] if source else [text]))
        escalations = self.report.escalations
        if escalations.already_raised(key):
            return Reply("ask_comms_sent", [Text("You've already sent this to the comms team. They'll get back to "
                                                 "you, and I'll tell you when they pick it up.")], private=True)
        escalations.raise_(kind, f"{label} from {surface} user {user}:\n{text}", surface=surface, user=user, key=key)
        return Reply("ask_comms_sent", [Text("Sent to the comms team. They'll get back to you, and I'll tell you "
                                             "when they pick it up.")], private=True)

    # "can I post this?" then the draft in the next message: kept in the store, not in this process,
    # because with several replicas the next message may reach another one. Only the account kind is kept.

    @staticmethod
    def _state_key(key: tuple[str, str]) -> str:
        return f"awaiting_draft:{key[0]}:{key[1]}"

    def _await_draft(self, key: tuple[str, str], account: str) -> None:
        if self.store is None:
            self._awaiting_draft[key] = account
            return
        self.store.write_state(self._state_key(key), {"account": account, "since": utcnow().isoformat()})

    def _take_awaiting(self, key: tuple[str, str]) -> str | None:
        """The account kind if this user was asked to paste a draft (recently), forgetting it."""
        if self.store is None:
            return self._awaiting_draft.pop(key, None)
        found = self.store.read_state([self._state_key(key)]).get(self._state_key(key))
        if not found:
            return None
        self.store.delete_state([self._state_key(key)])
        value = found[0]
        if utcnow() - dt.datetime.fromisoformat(value.get("since", "1970-01-01T00:00:00+00:00")) > AWAIT_DRAFT_FOR:
            return None
        return str(value.get("account") or "unknown")

    def _route(self, msg: Incoming) -> list[Reply]:
        text = (msg.text or "").strip()
        key = (msg.surface, msg.user)
        incident = self.report.active(msg.surface, msg.user) if self.report else None
        if incident is not None:
            if REPORT.match(text):
                return self.report.start(msg.surface, msg.user)
            return self.report.answer(incident, text)
        if not text or text.lower().strip(" !.") in HELP_WORDS:
            self._take_awaiting(key)
            return [help_reply(self.trust)]
        account = self._take_awaiting(key)
        if account is not None:
            return [self.check.reply(text, account)]
        intent = classify(text)
        if intent.kind == "report" and self.report:
            return self.report.start(msg.surface, msg.user, REPORT.sub("", text, count=1))
        if intent.kind == "check_prompt":
            self._await_draft(key, intent.account)
            return [Reply("check_prompt", [Text("Paste the text of your draft and I'll check it against the policy.")],
                          private=True)]
        if intent.kind == "check":
            return [self.check.reply(intent.text, intent.account)]
        if intent.kind == "report":
            return [Reply("report_unavailable", [Text(f"Tell your line manager and the {self.trust.comms.line()}.")])]
        return [self.ask.answer(intent.text or text)]
