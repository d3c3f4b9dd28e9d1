"""Render platform-neutral replies as Slack Block Kit, escaping every piece of text.

Text from users (drafts, questions, descriptions) is escaped here, once: `&`, `<` and
`>` become entities, so `<!channel>`, `<@U123>` or `<https://evil|click>` in a draft
show as text and can never ping anyone or make a link.
"""
from __future__ import annotations

import re

from handlers.replies import Actions, Bullets, Copyable, Heading, Notice, Quote, Reply, Text, render_text

MAX_BLOCKS = 50
MAX_SECTION = 2900
ICONS = {"danger": ":no_entry:", "warning": ":warning:", "info": ":information_source:"}
VERDICT_ICONS = {"check_ok": ":white_check_mark:", "check_revise": ":pencil2:", "check_stop": ":no_entry:"}


def escape(text: str) -> str:
    return (text or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    """Slack message text to plain text: links and mentions to their labels, entities decoded."""
    text = re.sub(r"<(?:https?|mailto):[^|>]*\|([^>]*)>", r"\1", text or "")
    text = re.sub(r"<((?:https?|mailto):[^>]*)>", r"\1", text)
    text = re.sub(r"<[@#!][^|>]*\|([^>]*)>", r"\1", text)
    text = re.sub(r"<([@#!][^>]*)>", r"\1", text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _section(text: str) -> list[dict]:
    chunks = [text[i:i + MAX_SECTION] for i in range(0, len(text), MAX_SECTION)] or [""]
    return [{"type": "section", "text": {"type": "mrkdwn", "text": c or " "}} for c in chunks]


def _button(b, index: int) -> dict:
    out = {"type": "button", "action_id": f"{b.action}:{index}", "text": {"type": "plain_text", "text": b.label[:75]},
           "value": b.value[:2000]}
    if b.style in ("primary", "danger"):
        out["style"] = b.style
    if b.confirm:
        out["confirm"] = {"title": {"type": "plain_text", "text": "Are you sure?"},
                          "text": {"type": "plain_text", "text": b.confirm[:300]},
                          "confirm": {"type": "plain_text", "text": "Yes, send it"},
                          "deny": {"type": "plain_text", "text": "Cancel"}}
    return out


def to_blocks(reply: Reply, buttons: bool = True) -> list[dict]:
    blocks: list[dict] = []
    for blk in reply.blocks:
        if isinstance(blk, Heading):
            blocks += _section(f"*{escape(blk.text)}*")
        elif isinstance(blk, Text):
            blocks += _section(escape(blk.text))
        elif isinstance(blk, Notice):
            icon = VERDICT_ICONS.get(reply.kind, ICONS.get(blk.level, ""))
            blocks += _section(f"{icon} *{escape(blk.text)}*")
        elif isinstance(blk, Quote):
            quoted = "\n".join("> " + escape(line) for line in blk.text.splitlines())
            blocks += _section(quoted)
            blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": escape(blk.citation)[:2900]}]})
        elif isinstance(blk, Bullets):
            blocks += _section("\n".join(f"• {escape(i)}" for i in blk.items))
        elif isinstance(blk, Copyable):
            body = escape(blk.text).replace("```", "'''")
            blocks += _section((f"*{escape(blk.label)}*\n" if blk.label else "") + f"```{body}```")
        elif isinstance(blk, Actions) and buttons:
            blocks.append({"type": "actions", "elements": [_button(b, i) for i, b in enumerate(blk.buttons[:25])]})
    if len(blocks) > MAX_BLOCKS:
        blocks = blocks[:MAX_BLOCKS - 1] + _section("_(shortened: more than Slack can show in one message)_")
    return blocks


def fallback(reply: Reply) -> str:
    """The notification text Slack shows where blocks can't be."""
    return escape(render_text(reply))[:2900] or " "


def action_name(action_id: str) -> str:
    """Our action name from a Block Kit action_id ('report_answer:3' -> 'report_answer')."""
    return action_id.split(":", 1)[0]
