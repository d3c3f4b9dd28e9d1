"""The conversation entry point every surface calls: one message in, the bot's replies out.

Console, Slack and Teams only translate their events into `Incoming` and render the
`Reply` objects that come back, so a conversation behaves the same everywhere.
"""
from __future__ import annotations

from dataclasses import dataclass

from .ask import AskHandler, help_reply
from .replies import Reply
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
    def __init__(self, trust: TrustProfile, ask: AskHandler):
        self.trust = trust
        self.ask = ask

    def handle(self, msg: Incoming) -> list[Reply]:
        text = (msg.text or "").strip()
        if not text or text.lower().strip(" !.") in HELP_WORDS:
            return [help_reply(self.trust)]
        return [self.ask.answer(text)]
