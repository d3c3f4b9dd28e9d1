"""Untrusted text from users and platforms, made safe to store, to send as UTF-8 and to print on a terminal.

- Lone surrogates (a JSON "\\ud800" escape, or bytes that were not UTF-8 read with
  surrogateescape) cannot be encoded as UTF-8: SQLite, the platforms' APIs and our JSON
  output would fail on them, after the user's message was already acknowledged. They
  become U+FFFD, the replacement character, at every edge where text comes in.
- A terminal obeys escape sequences (colours, cursor moves, window titles, OSC 8 links)
  and control characters (a carriage return overwrites the line), and bidirectional
  overrides reorder what it shows: text we echo from a draft must not do any of that.
"""
from __future__ import annotations

import re
import unicodedata

REPLACEMENT = "\ufffd"
_SURROGATE = re.compile("[\ud800-\udfff]")
# ESC [ ... final (CSI), ESC ] ... BEL or ST (OSC), ESC P/X/^/_ ... ST (DCS, SOS, PM, APC),
# the 8-bit forms of CSI and OSC, then any other two-character ESC sequence.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]?|\x9b[0-?]*[ -/]*[@-~]?"
                      r"|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
                      r"|(?:\x1b[PX^_]|[\x90\x98\x9e\x9f])[^\x1b\x9c]*(?:\x1b\\|\x9c)?"
                      r"|\x1b[ -~]?")
_BIDI_CONTROLS = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def scrub_surrogates(text: str) -> str:
    """Text that can be encoded as UTF-8: each lone surrogate becomes U+FFFD."""
    return _SURROGATE.sub(REPLACEMENT, text) if isinstance(text, str) else text


def scrub_deep(data) -> int:
    """Replace lone surrogates in every string (keys too) of a parsed JSON value, in place,
    so everything that holds a reference to a part of it sees clean text. Returns how many
    strings changed. Iterative: deeply nested input cannot exhaust the stack."""
    changed = 0
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key in list(node):
                if isinstance(key, str) and _SURROGATE.search(key):
                    node[scrub_surrogates(key)] = node.pop(key)
                    changed += 1
            slots = node.items()
        elif isinstance(node, list):
            slots = enumerate(node)
        else:
            continue
        for where, value in list(slots):
            if isinstance(value, str):
                if _SURROGATE.search(value):
                    node[where] = scrub_surrogates(value)
                    changed += 1
            elif isinstance(value, (dict, list)):
                stack.append(value)
    return changed


def terminal_safe(text: str) -> str:
    """Text fit to print on a terminal: escape sequences removed, control characters (other
    than newline and tab) and bidirectional overrides dropped, lone surrogates replaced."""
    text = _ESCAPES.sub("", scrub_surrogates(text or ""))
    return "".join(c for c in text if c in "\n\t" or (unicodedata.category(c) != "Cc" and c not in _BIDI_CONTROLS))


def row_id(value) -> int | None:
    """A database id from a button's value or a view's metadata: ASCII digits that fit SQLite's INTEGER,
    or None. (str.isdigit accepts '²', which int() refuses, and int() accepts more than SQLite stores.)"""
    text = value.strip() if isinstance(value, str) else ""
    return int(text) if text.isascii() and text.isdecimal() and len(text) < 19 else None
