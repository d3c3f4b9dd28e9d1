"""The console surface: `policybot chat`, the same handlers as Slack and Teams, no credentials.

A terminal user expects Enter to send, and a pasted draft to arrive whole. So in a
terminal, lines that arrive together (a paste) are one message, blank lines and all,
and a line of three quotes starts and ends a message typed by hand over several lines.
Piped input is one message per line, with the same quote blocks. Buttons are numbered:
typing the number or the label presses it, running the same action as on Slack and Teams.
"""
from __future__ import annotations

import asyncio
import getpass
import os
import select
import sys
from typing import Iterator, TextIO

from handlers.conversation import Incoming
from handlers.replies import render_text
from handlers.store import Escalation, StoreUnavailable
from handlers.untrusted import terminal_safe

from .app import Core

QUIT = {"quit", "exit", "bye", "/quit", "/exit"}
BANNER = ("policybot (console). Ask a policy question, paste a draft to check, or type /report-contact.\n"
          "Enter sends. A pasted draft of several lines is sent as one message; to type several lines yourself,\n"
          'put a line of three quotes (""") before and after them. Press a button by typing its number or label.\n'
          "Type 'help' for help, 'quit' to leave.")
BLOCK = '"""'
PASTE_GAP = 0.05  # seconds: lines that follow within this are the rest of a paste (no one types that fast)
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
        self.out.write(terminal_safe(f"[escalation #{esc.id} recorded for {who}{target}"
                                     + (f", report {esc.incident_ref}" if esc.incident_ref else "")) + "]\n")
        self.out.flush()
        return f"console-{esc.id}"

    async def update(self, esc: Escalation) -> None:
        self.out.write(f"[escalation #{esc.id} is now {esc.status}]\n")

    async def tell_user(self, user: str, text: str) -> None:
        self.out.write(f"bot> {terminal_safe(text)}\n")

    async def may_act(self, esc: Escalation, actor) -> bool:
        return True


class ConsoleInput:
    """Messages from the terminal (or a pipe): a paste or a \"\"\"-block is one message, otherwise one line is."""

    def __init__(self, stdin: TextIO):
        self.stdin = stdin
        try:
            self.fd = stdin.fileno() if stdin.isatty() else None
        except (AttributeError, OSError, ValueError):
            self.fd = None
        self._buffer = b""

    @property
    def tty(self) -> bool:
        return self.fd is not None

    def _line(self) -> str | None:
        if self.fd is None:
            line = self.stdin.readline()
            return line.rstrip("\r\n") if line else None
        while b"\n" not in self._buffer:
            chunk = os.read(self.fd, 65536)   # the raw fd, so nothing waits unseen in a Python buffer
            if not chunk:
                if not self._buffer:
                    return None
                line, self._buffer = self._buffer, b""
                return line.decode("utf-8", "replace")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode("utf-8", "replace").rstrip("\r")

    def _more_waiting(self) -> bool:
        if self.fd is None:
            return False
        if b"\n" in self._buffer:
            return True
        return bool(select.select([self.fd], [], [], PASTE_GAP)[0])

    def messages(self) -> Iterator[str]:
        while True:
            line = self._line()
            if line is None:
                return
            if line.strip() == BLOCK:
                lines = []
                while (more := self._line()) is not None and more.strip() != BLOCK:
                    lines.append(more)
                yield "\n".join(lines)
                continue
            lines = [line]
            while self._more_waiting():
                more = self._line()
                if more is None:
                    break
                lines.append(more)
            yield "\n".join(lines).strip("\n")


def run_console(core: Core, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout,
                user: str | None = None, prompt: str = "you> ") -> int:
    """Read a message, hand it to the conversation, print the replies, until quit or end of input."""
    user = user or _whoami()
    if core.escalations:
        core.escalations.add_notifier("console", ConsoleNotifier(stdout))
    stdout.write(BANNER + "\n")
    reader = ConsoleInput(stdin)
    messages = reader.messages()
    while True:
        if reader.tty:
            stdout.write(prompt)
            stdout.flush()
        text = next(messages, None)
        if text is None or text.strip().lower() in QUIT:
            break
        number = 1
        for reply in core.conversation.handle(Incoming("console", user, text)):
            stdout.write("bot> " + terminal_safe(render_text(reply, number_from=number)).replace("\n", "\n     ") + "\n")
            number += len(reply.buttons)
        if core.escalations:
            try:
                asyncio.run(core.escalations.deliver_pending())
            except StoreUnavailable:  # they stay pending; the next pass sends them
                pass
        stdout.flush()
    stdout.write("Bye. Stay safe online.\n")
    return 0


def _whoami() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "console-user"
