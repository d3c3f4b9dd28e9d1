"""Render platform-neutral replies as Slack Block Kit, escaping every piece of text, within Slack's limits.

Text from users (drafts, questions, descriptions) is escaped here, once: `&`, `<` and
`>` become entities, so `<!channel>`, `<@U123>` or `<https://evil|click>` in a draft
show as text and can never ping anyone or make a link. Every mrkdwn text object is
`verbatim`, so Slack doesn't auto-link channel names, mentions or URLs in it either.

Slack refuses a whole message that breaks one of its Block Kit limits, so everything is
built inside them (https://docs.slack.dev/reference/block-kit): 50 blocks a message, 100 a
modal or Home tab, 3,000 characters of section text, 2,000 of button value, 255 of
action_id, 24 of modal title. Long text is split across sections on line boundaries, never
inside an entity (`&amp;`), each piece of a code block fenced on its own. When a reply
has more findings than fit, the buttons stay and the findings that don't fit are summarised.
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field

from handlers.replies import Actions, Bullets, Copyable, Heading, Notice, Quote, Reply, Text, render_text

MAX_BLOCKS = 50            # blocks in a message
MAX_MODAL_BLOCKS = 100     # blocks in a modal or the Home tab
MAX_SECTION = 3000         # characters in a section's text
MAX_CONTEXT = 3000         # characters in a context element's text
MAX_BUTTON_VALUE = 2000
MAX_BUTTON_TEXT = 75
MAX_ACTION_ID = 255
MAX_ELEMENTS = 25          # elements in an actions block
MAX_TITLE = 24             # a modal's title, submit and close labels
MAX_CONFIRM_TEXT = 300
MAX_FALLBACK = 3000        # the notification text (Slack cuts `text` at 40,000; this is what people read)
MAX_HEADING = 500          # characters of a heading's own text, before escaping
FENCE = "```"
ICONS = {"danger": ":no_entry:", "warning": ":warning:", "info": ":information_source:"}
VERDICT_ICONS = {"check_ok": ":white_check_mark:", "check_revise": ":pencil2:", "check_stop": ":no_entry:"}
_ENTITY_TAIL = re.compile(r"&[a-z]{0,3}$")  # an entity cut short at the end of a piece: '&', '&am', '&l'


def escape(text: str) -> str:
    return (text or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    """Slack message text to plain text: links and mentions to their labels, entities decoded."""
    text = re.sub(r"<(?:https?|mailto):[^|>]*\|([^>]*)>", r"\1", text or "")
    text = re.sub(r"<((?:https?|mailto):[^>]*)>", r"\1", text)
    text = re.sub(r"<[@#!][^|>]*\|([^>]*)>", r"\1", text)
    text = re.sub(r"<([@#!][^>]*)>", r"\1", text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def width(text: str) -> int:
    """Length as Slack may count it: UTF-16 code units (an emoji is two), never less than characters."""
    return len(text.encode("utf-16-le")) // 2


def _cut_at(text: str, limit: int) -> int:
    """Where to cut `text` so the first piece is within `limit`: after the last line break or space
    that fits, never inside an entity or between a character and its combining marks."""
    end = cut = 0
    for i, ch in enumerate(text):  # the longest prefix within the limit, counted as Slack counts
        end_w = end + (2 if ord(ch) > 0xFFFF else 1)
        if end_w > limit:
            break
        end = end_w
        cut = i + 1
    else:
        return len(text)
    prefix = text[:cut]
    for sep in ("\n", " "):
        at = prefix.rfind(sep)
        if at > limit // 2:
            return at + 1
    while cut > 1 and (unicodedata.combining(text[cut]) or text[cut] in "\u200d\ufe0f" or text[cut - 1] == "\u200d"):
        cut -= 1
    tail = _ENTITY_TAIL.search(text[:cut])
    if tail and tail.start() > 0:
        cut = tail.start()
    return cut


def split(text: str, limit: int) -> list[str]:
    """Escaped text in pieces of at most `limit`, cut on line boundaries where a line fits."""
    pieces, current = [], ""
    for line in text.splitlines(keepends=True):
        if width(current) + width(line) <= limit:
            current += line
            continue
        if current:
            pieces.append(current)
            current = ""
        while width(line) > limit:
            cut = _cut_at(line, limit)
            pieces.append(line[:cut])
            line = line[cut:]
        current = line
    if current or not pieces:
        pieces.append(current)
    return pieces


def fit(text: str, limit: int, more: str = "…") -> str:
    """Escaped text cut to `limit` at a safe place, marked as shortened."""
    if width(text) <= limit:
        return text
    return text[:_cut_at(text, limit - width(more))].rstrip() + more


def mrkdwn(text: str) -> dict:
    return {"type": "mrkdwn", "text": text or " ", "verbatim": True}


def plain(text: str, limit: int) -> dict:
    return {"type": "plain_text", "text": (text or " ")[:limit], "emoji": True}


def section(text: str) -> dict:
    return {"type": "section", "text": mrkdwn(fit(text, MAX_SECTION))}


def sections(text: str, prefix: str = "", suffix: str = "") -> list[dict]:
    """Escaped text as as many sections as it needs, each piece wrapped in prefix/suffix (a code fence)."""
    room = MAX_SECTION - width(prefix) - width(suffix)
    return [section(prefix + piece + suffix) for piece in split(text, room)]


def context(text: str) -> dict:
    return {"type": "context", "elements": [mrkdwn(fit(text, MAX_CONTEXT))]}


def title(text: str) -> dict:
    """A modal's title (or submit/close label): Slack allows 24 characters."""
    return plain(text if len(text) <= MAX_TITLE else text[:MAX_TITLE - 1].rstrip() + "…", MAX_TITLE)


def _button(b, index: int) -> dict:
    out = {"type": "button", "action_id": f"{b.action}:{index}"[:MAX_ACTION_ID],
           "text": plain(b.label, MAX_BUTTON_TEXT), "value": b.value[:MAX_BUTTON_VALUE]}
    if b.style in ("primary", "danger"):
        out["style"] = b.style
    if b.confirm:
        out["confirm"] = {"title": plain("Are you sure?", 100),
                          "text": plain(b.confirm, MAX_CONFIRM_TEXT),
                          "confirm": plain("Yes, send it", 30),
                          "deny": plain("Cancel", 30)}
    return out


@dataclass
class _Unit:
    """The blocks one part of a reply becomes. `finding`: may be summarised when space runs out;
    `long`: may be shortened (a long safer version); anything else is always shown."""
    blocks: list[dict]
    kind: str = "keep"
    label: str = ""
    notes: list[str] = field(default_factory=list)


def _label(heading: str) -> str:
    """A finding's category from its heading, 'Could identify a patient: "bay 3"'."""
    return heading.split(": \u201c", 1)[0][:80]


def _units(reply: Reply, buttons: bool) -> list[_Unit]:
    units: list[_Unit] = []
    blocks = list(reply.blocks)
    i = 0
    while i < len(blocks):
        blk = blocks[i]
        i += 1
        if isinstance(blk, Heading):
            # An item (a finding: its heading, message, how to fix it, the policy) as one unit, one section.
            head = blk.text if len(blk.text) <= MAX_HEADING else blk.text[:MAX_HEADING - 1] + "…"
            lines = [f"*{escape(' '.join(head.split()))}*"]
            body = blocks[i:i + blk.item]
            if blk.item and all(isinstance(b, Text) for b in body):
                lines += [escape(b.text) for b in body]
                i += blk.item
                units.append(_Unit(sections("\n".join(lines)), "finding", _label(blk.text)))
            else:
                units.append(_Unit(sections(lines[0])))
        elif isinstance(blk, Text):
            units.append(_Unit(sections(escape(blk.text))))
        elif isinstance(blk, Notice):
            icon = VERDICT_ICONS.get(reply.kind, ICONS.get(blk.level, ""))
            units.append(_Unit(sections(f"{icon} *{escape(blk.text)}*")))
        elif isinstance(blk, Quote):
            quoted = "\n".join("> " + escape(line) for line in blk.text.splitlines())
            units.append(_Unit(sections(quoted) + [context(escape(blk.citation))]))
        elif isinstance(blk, Bullets):
            units.append(_Unit(sections("\n".join(f"• {escape(item)}" for item in blk.items))))
        elif isinstance(blk, Copyable):
            body = escape(blk.text).replace(FENCE, "'''")
            label = [section(f"*{escape(blk.label)}*")] if blk.label else []
            units.append(_Unit(label + sections(body, FENCE, FENCE), "long", blk.label or "text"))
        elif isinstance(blk, Actions) and buttons:
            shown = [_button(b, n) for n, b in enumerate(blk.buttons)]
            units.append(_Unit([{"type": "actions", "elements": shown[k:k + MAX_ELEMENTS]}
                                for k in range(0, len(shown), MAX_ELEMENTS)]))
    return units


def _fit(units: list[_Unit], max_blocks: int) -> list[dict]:
    """Every unit within max_blocks: what must show shows; long text is shortened and findings
    summarised ("...and 12 more: ...") before anything else is lost."""
    total = sum(len(u.blocks) for u in units)
    if total <= max_blocks:
        return [b for u in units for b in u.blocks]
    room = max_blocks - sum(len(u.blocks) for u in units if u.kind == "keep")
    findings = [u for u in units if u.kind == "finding"]
    longs = [u for u in units if u.kind == "long"]
    need_f = sum(len(u.blocks) for u in findings)
    room -= 1 if findings else 0  # the summary line
    # Long text gets what findings leave, but findings keep at least half the room if they need it.
    long_room = max(room - min(need_f, room // 2), 0)
    for u in longs:
        if len(u.blocks) > long_room:
            u.blocks = u.blocks[:max(long_room - 1, 0)] + [section(
                "_(Shortened: the rest is more than Slack can show in one message. Check the draft "
                "in shorter parts to see all of it.)_")]
        long_room -= len(u.blocks)
        room -= len(u.blocks)
    shown_f, dropped = 0, []
    for u in findings:
        if not dropped and shown_f + len(u.blocks) <= room:
            shown_f += len(u.blocks)
        else:
            dropped.append(u)
            u.blocks = []
    if dropped:
        counts = Counter(u.label for u in dropped)
        names = ", ".join(f"{label} ({n})" if n > 1 else label for label, n in counts.items())
        summary = section(f"_…and {len(dropped)} more finding{'s' if len(dropped) > 1 else ''} not shown here: "
                          f"{escape(names)}. Fix the ones above and check again to see the rest._")
        last = findings.index(dropped[0])
        findings[last].blocks = [summary]
    out = [b for u in units for b in u.blocks]
    if len(out) > max_blocks:  # only if what must show is itself too much: the buttons still come last
        buttons = [b for b in out if b["type"] == "actions"]
        out = [b for b in out if b["type"] != "actions"][:max_blocks - len(buttons)] + buttons
    return out


def to_blocks(reply: Reply, buttons: bool = True, max_blocks: int = MAX_BLOCKS) -> list[dict]:
    return _fit(_units(reply, buttons), max_blocks)


def fallback(reply: Reply) -> str:
    """The notification text Slack shows where blocks can't be."""
    return fit(escape(render_text(reply)), MAX_FALLBACK) or " "


def action_name(action_id: str) -> str:
    """Our action name from a Block Kit action_id ('report_answer:3' -> 'report_answer')."""
    return action_id.split(":", 1)[0]
