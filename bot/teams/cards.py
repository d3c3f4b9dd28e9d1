"""Render platform-neutral replies as Adaptive Cards for Teams, escaping user text once, here.

TextBlocks in Teams render a little Markdown, so user text (drafts, questions,
descriptions) has its Markdown characters escaped: a draft's `**`, `[link](url)` or
`<at>` shows as typed. Buttons are Action.Submit carrying our action and value.
"""
from __future__ import annotations

import re

from handlers.replies import Actions, Bullets, Copyable, Heading, Notice, Quote, Reply, Text
from handlers.store import ACKNOWLEDGED, RESOLVED, Escalation

SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
_MD = re.compile(r"([\\`*_\[\]()#+\-!|>~<])")
COLOURS = {"danger": "attention", "warning": "warning", "info": "accent"}
VERDICT = {"check_ok": "good", "check_revise": "warning", "check_stop": "attention"}


def md_escape(text: str) -> str:
    return _MD.sub(r"\\\1", text or "")


def _text(text: str, **style) -> dict:
    return {"type": "TextBlock", "text": md_escape(text), "wrap": True, **style}


def card(body: list[dict], actions: list[dict] | None = None) -> dict:
    out = {"type": "AdaptiveCard", "$schema": SCHEMA, "version": "1.4", "body": body or [_text(" ")]}
    if actions:
        out["actions"] = actions
    return out


def text_card(text: str) -> dict:
    """A card with one line of plain text (escaped): news for a requester, a refusal."""
    return card([_text(text)])


def submit(title: str, data: dict, style: str = "") -> dict:
    action = {"type": "Action.Submit", "title": title[:80], "data": data}
    if style in ("primary", "danger"):
        action["style"] = "positive" if style == "primary" else "destructive"
    return action


def body_of(reply: Reply) -> list[dict]:
    body: list[dict] = []
    for blk in reply.blocks:
        if isinstance(blk, Heading):
            body.append(_text(blk.text, weight="Bolder", size="Medium"))
        elif isinstance(blk, Text):
            body.append(_text(blk.text))
        elif isinstance(blk, Notice):
            colour = VERDICT.get(reply.kind, COLOURS.get(blk.level, "default"))
            body.append(_text(blk.text, weight="Bolder", color=colour))
        elif isinstance(blk, Quote):
            body.append({"type": "Container", "style": "emphasis", "items": [
                _text(blk.text, isSubtle=False), _text(blk.citation, isSubtle=True, size="Small")]})
        elif isinstance(blk, Bullets):
            body.append(_text("\n".join(f"• {i}" for i in blk.items)))
        elif isinstance(blk, Copyable):
            items = ([_text(blk.label, weight="Bolder")] if blk.label else []) + [_text(blk.text, fontType="Monospace")]
            body.append({"type": "Container", "style": "emphasis", "items": items})
    return body


def actions_of(reply: Reply) -> list[dict]:
    out = []
    for blk in reply.blocks:
        if isinstance(blk, Actions):
            for b in blk.buttons:
                data = {"action": b.action, "value": b.value}
                if b.confirm:
                    data["confirm"] = b.confirm
                out.append(submit(b.label, data, b.style))
    return out


def to_card(reply: Reply) -> dict:
    if reply.kind == "report_step":
        return report_card(reply)
    return card(body_of(reply), actions_of(reply))


def confirm_card(question: str, data: dict) -> dict:
    """Adaptive Cards have no confirm dialog: a second card asks before acting."""
    yes = {k: v for k, v in data.items() if k != "confirm"}
    yes["confirmed"] = True
    return card([_text(question, weight="Bolder")], [submit("Yes, send it", yes, "danger"),
                                                      submit("No", {"action": "dismiss"})])


def report_card(reply: Reply) -> dict:
    """One step of the report flow: what to know, the question as an input, Next / Back / Cancel."""
    data = reply.data
    info = [b for b in reply.blocks if not isinstance(b, Actions)]
    if info and isinstance(info[-1], Text) and data["question"] in info[-1].text:
        info = info[:-1]
    body = body_of(Reply(reply.kind, info))
    label = f"Step {data['policy_step']} of 5: {data['question']}"
    if data["kind"] in ("choice", "yesno"):
        choices = data["choices"] or [{"value": "yes", "label": "Yes"}, {"value": "no", "label": "No"}]
        field = {"type": "Input.ChoiceSet", "id": "answer", "style": "expanded", "label": label,
                 "choices": [{"title": c["label"], "value": c["value"]} for c in choices]}
    elif data["kind"] == "person":
        # Teams' people picker: search the organisation's directory; the answer is the person's
        # Azure AD object id, so the summary can be sent to them 1:1.
        field = {"type": "Input.ChoiceSet", "id": "answer", "label": label, "isRequired": True,
                 "placeholder": "Search for your line manager", "choices": [],
                 "choices.data": {"type": "Data.Query", "dataset": "graph.microsoft.com/users"}}
    else:
        field = {"type": "Input.Text", "id": "answer", "label": label, "isMultiline": data["kind"] == "text",
                 "maxLength": 3000}
    body.append(field)
    if data.get("error"):
        body.append(_text(data["error"], color="attention"))
    step = data["step"]
    return card(body, [submit("Next", {"action": "report_submit", "step": step}, "primary"),
                       submit("Back", {"action": "report_back", "value": step}),
                       submit("Cancel report", {"action": "report_cancel", "value": step}, "danger")])


TITLES = {"safeguarding": "Safeguarding alert", "comms": "For the comms team", "foi": "Possible FOI request",
          "review": "Draft for review", "line_manager": "Report from your team"}


def escalation_card(esc: Escalation, resent: bool = False) -> dict:
    """Names (who acknowledged or resolved) are display text: escaped like any user text. A summary
    for a line manager is for them to read: it has no Acknowledge / Resolve."""
    state = {ACKNOWLEDGED: f"Acknowledged by {esc.acknowledged_by}",
             RESOLVED: f"Resolved by {esc.resolved_by}"}.get(esc.status, "Waiting for someone to pick this up")
    title = TITLES.get(esc.kind, esc.kind) + (f" (report {esc.incident_ref})" if esc.incident_ref else "")
    body = [_text(title, weight="Bolder", size="Medium",
                  color="attention" if esc.kind == "safeguarding" else "default"), _text(esc.summary)]
    if esc.kind == "line_manager":
        body.append(_text(f"#{esc.id} · sent to you as their line manager by policybot", isSubtle=True, size="Small"))
        return card(body)
    body.append(_text(f"#{esc.id} · {state}", isSubtle=True, size="Small"))
    if resent:
        body.append(_text(f"Sent again after an interruption: if #{esc.id} is already in this channel, this is the same one.",
                          isSubtle=True, size="Small"))
    actions = []
    if esc.status != RESOLVED:
        if esc.status != ACKNOWLEDGED:
            actions.append(submit("Acknowledge", {"action": "esc_ack", "value": str(esc.id)}))
        actions.append(submit("Resolve", {"action": "esc_resolve", "value": str(esc.id)}, "primary"))
    return card(body, actions)


def card_text(card_json: dict) -> str:
    """All visible text of a card (for tests and the parity check)."""
    out = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "TextBlock":
                out.append(re.sub(r"\\(.)", r"\1", node.get("text", "")))
            if node.get("type") == "Action.Submit":
                out.append(f"[{node.get('title')}]")
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(card_json)
    return "\n".join(out)


def im_back(title: str, text: str) -> dict:
    """A button that sends `text` as if the user had typed it."""
    return {"type": "Action.Submit", "title": title[:80], "data": {"msteams": {"type": "imBack", "value": text}}}


def welcome_card(trust_name: str, comms_line: str, personal: bool) -> dict:
    """The greeting when the app is installed: what the bot does and how to start, before anyone writes."""
    body = [_text("Hello, I'm policybot", weight="Bolder", size="Medium"),
            _text(f"I help {trust_name} staff use social media safely, under the trust's own policy.")]
    if personal:
        body.append(_text("\n".join((
            "• Ask me a question about the policy: \"An ex-patient added me on Facebook, what do I do?\"",
            "• Paste a draft post, or start with \"can I post this?\", and I'll check it.",
            "• Type \"report contact\" if a patient, family member or member of the public has contacted you "
            "on your personal social media."))))
        body.append(_text("Drafts are checked and never kept. You can also check any message: "
                          "its ... menu > More actions > Check against policy.", isSubtle=True))
        actions = [im_back("Check a draft", "can I post this?"), im_back("Report a contact", "report contact"),
                   im_back("Help", "help")]
    else:
        body.append(_text("@mention me with a question about the policy and I'll answer here, quoting the clause. "
                          "Drafts and reports are private: message me directly for those, or use a message's "
                          "... menu > More actions > Check against policy."))
        actions = []
    body.append(_text(f"For anything else, contact the {comms_line}.", isSubtle=True, size="Small"))
    return card(body, actions)
