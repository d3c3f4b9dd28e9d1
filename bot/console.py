"""The console surface: `policybot chat`, the same handlers as Slack and Teams, no credentials."""
from __future__ import annotations

import asyncio
import getpass
import sys
from typing import TextIO

from handlers.conversation import Incoming
from handlers.replies import render_text
from handlers.store import Escalation

from .app import Core

QUIT = {"quit", "exit", "bye", "/quit", "/exit"}
BANNER = ("policybot (console). Ask a policy question, paste a draft to check, or type /report-contact.\n"
          "Type 'help' for help, 'quit' to leave.")
WHO = {"safeguarding": "the safeguarding lead", "comms": "the comms team", "foi": "the FOI team",
       "line_manager": "your line manager", "review": "the comms team"}


class ConsoleNotifier:
    """Escalations in the console: shown on screen and recorded in the store (no one else to ping).
    Whoever runs policybot on this machine has the database itself, so they may act on any escalation."""

    def __init__(self, out: TextIO):
        self.out = out

    async def send(self, esc: Escalation) -> str:
        who = WHO.get(esc.kind, esc.kind)
        target = f" ({esc.target})" if esc.target else ""
        self.out.write(f"[escalation #{esc.id} recorded for {who}{target}"
                       + (f", report {esc.incident_ref}" if esc.incident_ref else "") + "]\n")
        self.out.flush()
        return f"console-{esc.id}"

    async def update(self, esc: Escalation) -> None:
        self.out.write(f"[escalation #{esc.id} is now {esc.status}]\n")

    async def tell_user(self, user: str, text: str) -> None:
        self.out.write(f"bot> {text}\n")

    async def may_act(self, esc: Escalation, actor) -> bool:
        return True


def run_console(core: Core, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout,
                user: str | None = None, prompt: str = "you> ") -> int:
    """Read a line, hand it to the conversation, print the replies, until quit or end of input."""
    user = user or _whoami()
    if core.escalations:
        core.escalations.add_notifier("console", ConsoleNotifier(stdout))
    stdout.write(BANNER + "\n")
    n = 0
    while True:
        if stdin.isatty():
            stdout.write(prompt)
            stdout.flush()
        line = stdin.readline()
        if not line:
            break
        text = line.rstrip("\n")
        if text.strip().lower() in QUIT:
            break
        n += 1
        for reply in core.conversation.handle(Incoming("console", user, text)):
            stdout.write("bot> " + render_text(reply).replace("\n", "\n     ") + "\n")
        if core.escalations:
            asyncio.run(core.escalations.deliver_pending())
        stdout.flush()
    stdout.write("Bye. Stay safe online.\n")
    return 0


def _whoami() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "console-user"
