"""The conversation entry point every surface calls: one message in, the bot's replies out.

Console, Slack and Teams only translate their events into `Incoming` (or a button press
into `handle_action`) and render the `Reply` objects that come back, so a conversation
behaves the same everywhere. Each message is handled in one store transaction that
also records its event id, so a duplicate delivery changes nothing and a crash loses
nothing half-done.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

from .ask import AskHandler, help_reply
from .check import CheckHandler
from .escalation import idempotency_key
from .intents import REPORT, classify
from .replies import Reply, Text
from .report_contact import ReportContactFlow
from .store import Store
from .trust import TrustProfile

HELP_WORDS = {"help", "?", "hi", "hello", "hey", "start", "menu", "what can you do"}


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
        self._awaiting_draft: dict[tuple[str, str], str] = {}  # (surface, user) -> account

    @contextmanager
    def _once(self, surface: str, event_id: str | None):
        """A transaction that claims the event id; yields False if the event was already handled."""
        if not (self.store and event_id):
            yield True
            return
        with self.store.transaction():
            yield self.store.claim_event(f"{surface}:{event_id}")

    def handle(self, msg: Incoming) -> list[Reply]:
        with self._once(msg.surface, msg.event_id) as first_time:
            if not first_time:
                return []
            return self._route(msg)

    def handle_action(self, surface: str, user: str, action: str, value: str = "",
                      event_id: str | None = None, source: str | None = None) -> list[Reply]:
        """A button press. Report-flow buttons carry 'step:answer' so a stale button can't answer the wrong step.
        `source` names the message the button was on, so pressing the same button again is recognised."""
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
            self.store.set_feedback_reason(feedback_id, " ".join(reason.split()))
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

    def _route(self, msg: Incoming) -> list[Reply]:
        text = (msg.text or "").strip()
        key = (msg.surface, msg.user)
        incident = self.report.active(msg.surface, msg.user) if self.report else None
        if incident is not None:
            if REPORT.match(text):
                return self.report.start(msg.surface, msg.user)
            return self.report.answer(incident, text)
        if not text or text.lower().strip(" !.") in HELP_WORDS:
            self._awaiting_draft.pop(key, None)
            return [help_reply(self.trust)]
        if key in self._awaiting_draft:
            return [self.check.reply(text, self._awaiting_draft.pop(key))]
        intent = classify(text)
        if intent.kind == "report" and self.report:
            return self.report.start(msg.surface, msg.user, REPORT.sub("", text, count=1))
        if intent.kind == "check_prompt":
            self._awaiting_draft[key] = intent.account
            return [Reply("check_prompt", [Text("Paste the text of your draft and I'll check it against the policy.")],
                          private=True)]
        if intent.kind == "check":
            return [self.check.reply(intent.text, intent.account)]
        if intent.kind == "report":
            return [Reply("report_unavailable", [Text(f"Tell your line manager and the {self.trust.comms.line()}.")])]
        return [self.ask.answer(intent.text or text)]
