"""Slack's documented Block Kit limits, checked the way Slack checks them before accepting a message or view.

The fake Slack refuses (`invalid_blocks`) any call that breaks one, as the real one does,
so every test that sends Slack something also holds it to these limits. Sources: Slack's
Block Kit reference (blocks, block elements, composition objects, views) and the
chat.postMessage reference.
"""
from __future__ import annotations

MESSAGE_BLOCKS, VIEW_BLOCKS = 50, 100
MESSAGE_TEXT = 40_000
SECTION_TEXT = 3000
LIMITS = {  # (object, field): max characters
    ("button", "text"): 75, ("button", "value"): 2000, ("button", "action_id"): 255, ("button", "url"): 3000,
    ("header", "text"): 150, ("input", "label"): 2000, ("input", "hint"): 2000,
    ("view", "title"): 24, ("view", "submit"): 24, ("view", "close"): 24, ("view", "private_metadata"): 3000,
    ("view", "callback_id"): 255, ("confirm", "title"): 100, ("confirm", "text"): 300, ("confirm", "confirm"): 30,
    ("confirm", "deny"): 30, ("option", "text"): 75, ("option", "value"): 150, ("element", "placeholder"): 150,
    ("element", "action_id"): 255, ("block", "block_id"): 255,
}


def width(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _text(obj) -> str:
    return obj.get("text", "") if isinstance(obj, dict) else (obj or "")


def _check(kind: str, obj: dict, field: str, where: str, out: list[str]) -> None:
    if field in obj:
        value = _text(obj[field])
        if width(value) > LIMITS[(kind, field)]:
            out.append(f"{where}.{field}: {width(value)} characters, more than {LIMITS[(kind, field)]}")


def _element(el: dict, where: str, out: list[str]) -> None:
    kind = "button" if el.get("type") == "button" else "element"
    for field in ("text", "value", "action_id", "url", "placeholder"):
        if (kind, field) in LIMITS:
            _check(kind, el, field, where, out)
    if "confirm" in el:
        for field in ("title", "text", "confirm", "deny"):
            _check("confirm", el["confirm"], field, f"{where}.confirm", out)
    if el.get("type") == "plain_text_input" and el.get("max_length", 0) > 3000:
        out.append(f"{where}.max_length: more than 3000")
    options = el.get("options") or []
    if len(options) > (10 if el.get("type") in ("radio_buttons", "checkboxes") else 100):
        out.append(f"{where}.options: {len(options)} options")
    for i, opt in enumerate(options):
        for field in ("text", "value"):
            _check("option", opt, field, f"{where}.options[{i}]", out)


def block_problems(blocks: list, max_blocks: int) -> list[str]:
    out: list[str] = []
    if not isinstance(blocks, list):
        return ["blocks: not a list"]
    if len(blocks) > max_blocks:
        out.append(f"{len(blocks)} blocks, more than {max_blocks}")
    for i, blk in enumerate(blocks):
        where = f"blocks[{i}]({blk.get('type')})"
        _check("block", blk, "block_id", where, out)
        kind = blk.get("type")
        if kind == "section":
            if "text" in blk and width(_text(blk["text"])) > SECTION_TEXT:
                out.append(f"{where}.text: {width(_text(blk['text']))} characters, more than {SECTION_TEXT}")
            if not _text(blk.get("text")) and not blk.get("fields"):
                out.append(f"{where}: a section needs text or fields")
            for j, f in enumerate(blk.get("fields") or []):
                if width(_text(f)) > 2000:
                    out.append(f"{where}.fields[{j}]: more than 2000 characters")
            if "accessory" in blk:
                _element(blk["accessory"], f"{where}.accessory", out)
        elif kind == "context":
            elements = blk.get("elements") or []
            if len(elements) > 10:
                out.append(f"{where}: {len(elements)} elements, more than 10")
            for j, el in enumerate(elements):
                if width(_text(el)) > SECTION_TEXT:
                    out.append(f"{where}.elements[{j}]: more than {SECTION_TEXT} characters")
        elif kind == "actions":
            elements = blk.get("elements") or []
            if len(elements) > 25:
                out.append(f"{where}: {len(elements)} elements, more than 25")
            for j, el in enumerate(elements):
                _element(el, f"{where}.elements[{j}]", out)
        elif kind == "header":
            _check("header", blk, "text", where, out)
        elif kind == "input":
            _check("input", blk, "label", where, out)
            _check("input", blk, "hint", where, out)
            _element(blk.get("element") or {}, f"{where}.element", out)
    return out


def message_problems(params: dict) -> list[str]:
    """What Slack would refuse in a chat.postMessage / postEphemeral / update or response_url body."""
    out = []
    if width(params.get("text") or "") > MESSAGE_TEXT:
        out.append(f"text: more than {MESSAGE_TEXT} characters")
    if params.get("blocks") is not None:
        out += block_problems(params["blocks"], MESSAGE_BLOCKS)
    return out


def view_problems(view: dict) -> list[str]:
    """What Slack would refuse in a modal or Home tab view."""
    out = []
    if view.get("type") == "modal" and not _text(view.get("title")):
        out.append("view.title: a modal needs a title")
    for field in ("title", "submit", "close", "private_metadata", "callback_id"):
        _check("view", view, field, "view", out)
    return out + block_problems(view.get("blocks") or [], VIEW_BLOCKS)
