"""The /report-contact modal: each step of the platform-neutral flow as one Slack view.

Slack allows only a couple of pushed views, so every step replaces the last
(`response_action: update`), with the incident ref and step in private_metadata and
the flow's state in our store. Bad answers show inline on the field.
"""
from __future__ import annotations

import json

from handlers.replies import Actions, Reply, Text

from .blocks import MAX_MODAL_BLOCKS, title, to_blocks

CALLBACK = "report_step"
TITLE = title("Report a contact")


def _element(data: dict) -> dict:
    kind = data["kind"]
    if kind in ("choice", "yesno"):
        options = data["choices"] or [{"value": "yes", "label": "Yes"}, {"value": "no", "label": "No"}]
        return {"type": "radio_buttons", "action_id": "value",
                "options": [{"text": {"type": "plain_text", "text": o["label"][:75]}, "value": o["value"]}
                            for o in options[:10]]}
    if kind == "person":
        return {"type": "users_select", "action_id": "value", "placeholder": {"type": "plain_text", "text": "Choose a person"}}
    element = {"type": "plain_text_input", "action_id": "value", "multiline": kind == "text", "max_length": 3000}
    if kind == "when":
        element["placeholder"] = {"type": "plain_text", "text": "e.g. now, yesterday 9pm, 21/11/2026 18:30"}
    return element


def view(reply: Reply) -> dict:
    """A modal for a flow reply: the step's question as an input, or the end of the flow."""
    data = reply.data
    if reply.kind != "report_step":
        return {"type": "modal", "callback_id": "report_done", "title": TITLE,
                "close": {"type": "plain_text", "text": "Close"},
                "private_metadata": json.dumps({"ref": data.get("ref", "")}),
                "blocks": to_blocks(reply, buttons=False, max_blocks=MAX_MODAL_BLOCKS)}
    info = [b for b in reply.blocks if not isinstance(b, Actions)]
    if info and isinstance(info[-1], Text) and data["question"] in info[-1].text:
        info = info[:-1]  # the question becomes the input's label
    blocks = to_blocks(Reply(reply.kind, info), buttons=False, max_blocks=MAX_MODAL_BLOCKS - 2)
    blocks.append({"type": "input", "block_id": "answer", "element": _element(data),
                   "label": {"type": "plain_text", "text": f"Step {data['policy_step']} of 5: {data['question']}"[:2000]}})
    blocks.append({"type": "actions", "block_id": "nav", "elements": [
        {"type": "button", "action_id": "report_back:0", "text": {"type": "plain_text", "text": "Back"}, "value": data["step"]},
        {"type": "button", "action_id": "report_cancel:1", "style": "danger", "value": data["step"],
         "text": {"type": "plain_text", "text": "Cancel report"}}]})
    return {"type": "modal", "callback_id": CALLBACK, "title": TITLE,
            "submit": title("Next"), "close": title("Finish later"),
            "private_metadata": json.dumps({"ref": data["ref"], "step": data["step"]}), "blocks": blocks}


def _object(value) -> dict:
    return value if isinstance(value, dict) else {}


def submitted_value(view_state: dict) -> str:
    """The answer from a submitted view, whatever kind of input the step used ("" if there is none)."""
    field = _object(_object(_object(_object(view_state).get("values")).get("answer")).get("value"))
    for value in (_object(field.get("selected_option")).get("value"), field.get("selected_user"), field.get("value")):
        if isinstance(value, str) and value:
            return value
    return ""


def input_value(view: dict, block_id: str) -> str:
    """The value of one input block of a submitted view (text, choice or user), or ""."""
    return submitted_value({"values": {"answer": _object(_object(_object(view).get("state")).get("values")).get(block_id)}})


def metadata(view: dict) -> dict:
    """Our private_metadata ({"ref", "step"}); {} if it is missing or not ours, so the user is told the
    report is no longer in progress rather than getting an error."""
    try:
        meta = json.loads(_object(view).get("private_metadata") or "{}")
    except (ValueError, TypeError, RecursionError):
        return {}
    return {k: v for k, v in meta.items() if isinstance(v, str)} if isinstance(meta, dict) else {}
