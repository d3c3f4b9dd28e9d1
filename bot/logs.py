"""Log output for `policybot serve`: plain text for a terminal, or one JSON object a line.

JSON lines are what Azure App Service hands on to Application Insights (and most log
shippers parse) without a custom pattern. Either way our own log calls never include
message text (drafts, questions, reports): they name events, ids and error types.

The libraries do put user text in their records: at DEBUG slack_sdk logs every Web API
request body (the draft we send back, the escalation summary), bolt logs the responses it
sends (modal views), msrest and botbuilder log Teams activities, and warnings such as
bolt's "Failed to run listener function (error: ...)" quote exception messages, which can
carry the text that caused them. `RedactUserText` is a filter for our log *handlers* (a
filter on a logger would miss its children's records). For any record from outside
`policybot`, it keeps the message up to the first sign of data (a bracket, a quote, a
newline, or a word like "body"), which keeps "Sending a request - url: POST
https://slack.com/api/chat.postMessage" and drops the body. For every record, an
exception keeps its type and traceback but not its message. `configure` puts it on the
handler it installs, so no level and no format lets user text through.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
import traceback

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FORMATS = ("text", "json")
OURS = "policybot"
WITHHELD = "[details withheld: they may hold user text]"
_DATA = re.compile(r"""[{\[("'<\n\r]|\b(?:body|text|data|json|payload|params|blocks|view|event|activity)\b""",
                   re.IGNORECASE)
_QUERY = re.compile(r"\?[^\s\"]*")
_ACCESS = re.compile(r'^(.*?"[A-Z]+ [^"]*" \d{3} \S+)')  # aiohttp's access line up to status and size
MAX_MESSAGE = 300


def _redact_message(name: str, message: str) -> str:
    if name == "aiohttp.access":
        line = _ACCESS.match(message)  # drop the Referer and User-Agent, which the caller chose
        return _QUERY.sub("?…", line.group(1) if line else message.split('"')[0])[:MAX_MESSAGE]
    cut = _DATA.search(message)
    if cut:
        message = f"{message[:cut.start()].rstrip(' ,:;-')} {WITHHELD}".lstrip()
    return _QUERY.sub("?…", message)[:MAX_MESSAGE]


def _redact_exception(exc_info) -> str:
    """The traceback (where it failed) without any exception's message (what it failed on)."""
    _, exc, _ = exc_info
    chain, seen = [], set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        chain.append(exc)
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    parts = []
    for exc in reversed(chain):
        parts.append("Traceback (most recent call last):\n" + "".join(traceback.format_tb(exc.__traceback__))
                     + f"{type(exc).__module__}.{type(exc).__qualname__}: [message withheld]")
    return "\n\nwhich led to:\n\n".join(parts)


class RedactUserText(logging.Filter):
    """Keep user text out of every record a handler writes (see the module docstring)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_policybot_redacted", False):
            return True
        if not (record.name == OURS or record.name.startswith(OURS + ".")):
            try:
                message = record.getMessage()
            except Exception:  # a library's bad format string: say so, show nothing of it
                message = "(unformattable log message)"
            record.msg, record.args = _redact_message(record.name, message), ()
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = _redact_exception(record.exc_info)
            record.exc_info = None
        elif record.exc_text and not record.name.startswith(OURS):
            record.exc_text = WITHHELD
        record._policybot_redacted = True
        return True


def install(handler: logging.Handler) -> logging.Handler:
    if not any(isinstance(f, RedactUserText) for f in handler.filters):
        handler.addFilter(RedactUserText())
    return handler



class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, exception if any."""

    def format(self, record: logging.LogRecord) -> str:
        out = {"time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
               "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:  # already formatted (RedactUserText leaves the traceback without the message)
            out["exception"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def configure(fmt: str = "text", level: int = logging.INFO, stream=None) -> logging.Handler:
    """Send every logger's records at `level` and above to one handler on stderr, formatted as asked."""
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    install(handler)  # user text withheld from every record, at every level
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    return handler
