"""The conversation entry point every surface calls: one message in, the bot's replies out.

Console, Slack and Teams only translate their events into `Incoming` and render the
`Reply` objects that come back, so a conversation behaves the same everywhere.
"""
from __future__ import annotations

from dataclasses import dataclass

from .ask import AskHandler, help_reply
from .check import CheckHandler
from .intents import classify
from .replies import Reply, Text
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
    def __init__(self, trust: TrustProfile, ask: AskHandler, check: CheckHandler):
        self.trust = trust
        self.ask = ask
        self.check = check
        self._awaiting_draft: dict[tuple[str, str], str] = {}  # (surface, user) -> account

    def handle(self, msg: Incoming) -> list[Reply]:
        text = (msg.text or "").strip()
        key = (msg.surface, msg.user)
        if not text or text.lower().strip(" !.") in HELP_WORDS:
            self._awaiting_draft.pop(key, None)
            return [help_reply(self.trust)]
        if key in self._awaiting_draft:
            return [self.check.reply(text, self._awaiting_draft.pop(key))]
        intent = classify(text)
        if intent.kind == "check_prompt":
            self._awaiting_draft[key] = intent.account
            return [Reply("check_prompt", [Text("Paste the text of your draft and I'll check it against the policy.")],
                          private=True)]
        if intent.kind == "check":
            return [self.check.reply(intent.text, intent.account)]
        if intent.kind == "report":
            return [Reply("report_unavailable", [Text("Reporting a contact is not available here yet. "
                                                      f"Tell your line manager and the {self.trust.comms.line()}.")])]
        return [self.ask.answer(intent.text or text)]
