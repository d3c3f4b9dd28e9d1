"""Adaptive Cards kept under the size Teams accepts.

Teams refuses a bot message over about 28 KB (413 RequestEntityTooLarge). A check of a
40,000-character draft rendered in full is far over that: its safer version alone is 40 KB
before escaping. So a reply whose card is too big is shortened: long text becomes a
preview, findings past what fits are summarised by category, and a "Show all" button
sends the whole reply as several cards, each within the limit.

Sizes are counted as UTF-16 (two bytes a character), the strictest reading of the limit,
with room left for the activity around the card. The full replies behind "Show all" are
kept in this process's memory only, for an hour: drafts never go to disk.
"""
from __future__ import annotations

import json
import secrets
import time
from collections import Counter, OrderedDict

from handlers.replies import Actions, Button, Copyable, Heading, Reply, Text

MAX_ACTIVITY_BYTES = 28 * 1024   # what Teams accepts for one message
MAX_CARD_BYTES = 24 * 1024       # a card, leaving room for the activity that carries it
PREVIEW_CHARS = 1500             # of a long safer version, in the shortened card
PART_CHARS = 4000                # of long text in each "Show all" part (escaping can double it)
KEEP_SECONDS = 3600
KEEP_MAX = 200


def size(obj) -> int:
    """Bytes as UTF-16, which is at least the UTF-8 size of the same JSON."""
    return len(json.dumps(obj, ensure_ascii=False).encode("utf-16-le"))


class Overflow:
    """Replies too big for one card, in memory for an hour, for their "Show all" button."""

    def __init__(self, keep_seconds: float = KEEP_SECONDS, keep_max: int = KEEP_MAX, clock=time.monotonic):
        self.keep_seconds, self.keep_max, self.clock = keep_seconds, keep_max, clock
        self._items: OrderedDict[str, tuple[float, Reply]] = OrderedDict()

    def keep(self, reply: Reply) -> str:
        self._expire()
        token = secrets.token_urlsafe(12)
        self._items[token] = (self.clock() + self.keep_seconds, reply)
        while len(self._items) > self.keep_max:
            self._items.popitem(last=False)
        return token

    def get(self, token: str) -> Reply | None:
        self._expire()
        found = self._items.get(token)
        return found[1] if found else None

    def _expire(self) -> None:
        now = self.clock()
        for token in [t for t, (until, _) in self._items.items() if until < now]:
            del self._items[token]


def _items(reply: Reply) -> list[list]:
    """The reply's blocks in units: a finding (heading and its body) is one unit; anything else its own."""
    out, blocks, i = [], list(reply.blocks), 0
    while i < len(blocks):
        n = 1 + (blocks[i].item if isinstance(blocks[i], Heading) else 0)
        out.append(blocks[i:i + n])
        i += n
    return out


def _is_finding(unit: list) -> bool:
    return isinstance(unit[0], Heading) and unit[0].item > 0


def _label(unit: list) -> str:
    return unit[0].text.split(": \u201c", 1)[0][:80]


def _cut(text: str, limit: int) -> str:
    """At most `limit` characters, ending at a line break or space where there is one."""
    if len(text) <= limit:
        return text
    for sep in ("\n", " "):
        cut = text.rfind(sep, 0, limit)
        if cut > limit // 2:
            return text[:cut].rstrip()
    return text[:limit]


def shorten(reply: Reply, token: str, findings_shown: int) -> Reply:
    """The reply with long text as a preview, findings past the first `findings_shown` summarised,
    and a "Show all" button."""
    blocks, dropped = [], []
    shown, summary_at = 0, None
    for unit in _items(reply):
        if _is_finding(unit):
            if shown < findings_shown:
                blocks += unit
                shown += 1
            else:
                if not dropped:
                    summary_at = len(blocks)
                dropped.append(unit)
            continue
        blk = unit[0]
        if isinstance(blk, Copyable) and len(blk.text) > PREVIEW_CHARS:
            blocks.append(Copyable(_cut(blk.text, PREVIEW_CHARS) + " …", blk.label))
            blocks.append(Text(f"That is the start of it ({len(blk.text):,} characters): "
                               "\"Show all\" sends you the whole text."))
        elif isinstance(blk, Actions):
            blocks.append(Actions(blk.buttons + (Button("Show all", "show_all", token),)))
        else:
            blocks.append(blk)
    if not any(isinstance(b, Actions) for b in blocks):
        blocks.append(Actions((Button("Show all", "show_all", token),)))
    if dropped:
        counts = Counter(_label(u) for u in dropped)
        names = ", ".join(f"{label} ({n})" if n > 1 else label for label, n in counts.items())
        blocks.insert(summary_at, Text(f"…and {len(dropped)} more finding{'s' if len(dropped) > 1 else ''}: "
                                       f"{names}. \"Show all\" sends you every one."))
    return Reply(reply.kind, blocks, reply.data, reply.private)


def fit(reply: Reply, render, overflow: Overflow, limit: int = MAX_CARD_BYTES) -> dict:
    """The card for `reply`, shortened (with "Show all") if it is over `limit`."""
    card = render(reply)
    if size(card) <= limit:
        return card
    token = overflow.keep(reply)
    findings = sum(1 for u in _items(reply) if _is_finding(u))
    while True:  # as many findings as fit, down to none
        card = render(shorten(reply, token, findings))
        if size(card) <= limit or findings == 0:
            break
        findings = max(findings - max(1, findings // 4), 0)
    if size(card) > limit:  # only a giant quote or text is left: cut every text down to a preview
        short = shorten(reply, token, 0)
        card = render(Reply(short.kind, [Text(_cut(b.text, PREVIEW_CHARS) + " …") if isinstance(b, Text) else b
                                         for b in short.blocks], short.data, short.private))
    return card


def parts(reply: Reply, render, limit: int = MAX_CARD_BYTES) -> list[dict]:
    """The whole reply as cards within `limit`, in order: what "Show all" sends. No buttons."""
    units: list[list] = []
    for unit in _items(reply):
        blk = unit[0]
        if isinstance(blk, Actions):
            continue
        if isinstance(blk, Copyable) and len(blk.text) > PART_CHARS:
            text, pieces = blk.text, []
            while text:
                piece = _cut(text, PART_CHARS)
                pieces.append(piece)
                text = text[len(piece):].lstrip("\n")
            units += [[Copyable(p, f"{blk.label} (part {n} of {len(pieces)})" if blk.label else "")]
                      for n, p in enumerate(pieces, 1)]
        else:
            units.append(unit)
    cards, current = [], []
    for unit in units:
        if current and size(render(Reply(reply.kind, current + unit))) > limit:
            cards.append(render(Reply(reply.kind, current)))
            current = []
        current = current + unit
    if current:
        cards.append(render(Reply(reply.kind, current)))
    return cards
