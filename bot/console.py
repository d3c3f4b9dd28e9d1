"""The console surface: `policybot chat`, the same handlers as Slack and Teams, no credentials."""
from __future__ import annotations

import getpass
import sys
from typing import Callable, TextIO

from handlers.conversation import Incoming
from handlers.replies import render_text

from .app import Core

QUIT = {"quit", "exit", "bye", "/quit", "/exit"}
BANNER = ("policybot (console). Ask a policy question, paste a draft to check, or type /report-contact.\n"
          "Type 'help' for help, 'quit' to leave.")


def run_console(core: Core, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout,
                user: str | None = None, prompt: str = "you> ") -> int:
    """Read a line, hand it to the conversation, print the replies, until quit or end of input."""
    user = user or _whoami()
    say: Callable[[str], None] = lambda s: (stdout.write(s + "\n"), stdout.flush())
    say(BANNER)
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
        for reply in core.conversation.handle(Incoming("console", user, text, event_id=f"console-{n}")):
            say("bot> " + render_text(reply).replace("\n", "\n     "))
    say("Bye. Stay safe online.")
    return 0


def _whoami() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "console-user"
