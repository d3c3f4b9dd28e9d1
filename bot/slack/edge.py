"""The edge between Slack's HTTP requests and bolt: refuse malformed requests, clean the text.

bolt parses the body before it verifies anything, and its parsing and middleware assume
Slack's shapes, so a non-numeric timestamp, a body that is not UTF-8 or not a JSON object,
or a `payload` that is a list ended in a 500 with a traceback. `refusal` answers those
first: 401 when the request cannot be authenticated, 400 when it is not a Slack request
we can read. `clean_text` (bolt middleware) replaces lone surrogates in every string of
the parsed body, in place, so listeners, the store and the Web API only see text that
can be encoded as UTF-8.
"""
from __future__ import annotations

import re
from typing import Mapping

from slack_bolt.request.internals import parse_body
from slack_sdk.signature import SignatureVerifier

from handlers.untrusted import scrub_deep

_TIMESTAMP = re.compile(r"[0-9]{1,15}")
# Where Slack sends an object (or a list of them), bolt and our listeners read them as such.
_OBJECTS = ("event", "view", "message", "previous_message", "container", "state")
_OBJECT_OR_ID = ("user", "channel", "team", "enterprise")
_INTERACTIVE = ("block_actions", "view_submission", "view_closed", "shortcut", "message_action")
_STRINGS = ("type", "subtype", "text", "command", "callback_id", "action_id", "block_id", "private_metadata",
            "trigger_id", "user_id")


def refusal(raw: bytes, headers: Mapping[str, str], signing_secret: str | None) -> tuple[int, str] | None:
    """The status (400 or 401) and reason this request must not reach bolt with, or None if it may."""
    timestamp = headers.get("X-Slack-Request-Timestamp")
    if signing_secret is not None and not (timestamp and _TIMESTAMP.fullmatch(timestamp.strip())):
        return (401, "missing or malformed X-Slack-Request-Timestamp")
    try:
        body = raw.decode("utf-8")
    except UnicodeDecodeError:
        return (400, "the body is not UTF-8")
    if signing_secret is not None and not SignatureVerifier(signing_secret).is_valid(
            body=body, timestamp=timestamp.strip(), signature=headers.get("X-Slack-Signature")):
        return (401, "invalid signature or stale timestamp")
    try:
        parsed = parse_body(body, headers.get("Content-Type", "").split(";")[0].strip() or None)
    except RecursionError:
        return (400, "the body is nested too deeply")
    except ValueError:
        return (400, "the body (or its payload) is not valid JSON")
    problem = _shape_problem(parsed)
    return (400, problem) if problem else None


def _shape_problem(body) -> str:
    if not isinstance(body, dict):
        return "the body (or its payload) is not a JSON object"
    nodes = [body] + [body[k] for k in ("event", "view") if isinstance(body.get(k), dict)]
    for node in nodes:
        for key in _OBJECTS:
            # bolt reads into an event or a view whenever the key is there, even to log it
            allowed = dict if key in ("event", "view") else (dict, type(None))
            if key in node and not isinstance(node[key], allowed):
                return f"'{key}' is not an object"
        for key in _OBJECT_OR_ID:
            if key in node and not isinstance(node[key], (dict, str, type(None))):
                return f"'{key}' is not an object or an id"
        for key in _STRINGS:
            if key in node and not isinstance(node[key], (str, type(None))):
                return f"'{key}' is not a string"
    for key in ("actions", "authorizations"):  # bolt reads the first of each
        if key in body and not (isinstance(body[key], list) and body[key]
                                and all(isinstance(a, dict) for a in body[key])):
            return f"'{key}' is not a list of objects"
    # What bolt's listener matching reads without checking it is there.
    if isinstance(body.get("event"), dict) and not isinstance(body["event"].get("type"), str):
        return "the event has no 'type'"
    if body.get("type") in ("view_submission", "view_closed") and not (
            isinstance(body.get("view"), dict) and all(isinstance(body["view"].get(k), str) for k in ("type", "callback_id"))):
        return "the view has no 'type' or 'callback_id'"
    if "command" in body and not all(isinstance(body.get(k), str) and body[k] for k in ("user_id", "trigger_id")):
        return "a slash command needs 'user_id' and 'trigger_id'"
    # What our listeners read (a listener that raises after ack() makes bolt wait 3 s and answer 404).
    event = body.get("event") if isinstance(body.get("event"), dict) else {}
    needed = _needed(event)
    if not all(isinstance(event.get(k), str) for k in needed):
        return f"a {event['type']} event needs {', '.join(repr(k) for k in needed)}"
    if body.get("type") in _INTERACTIVE and not isinstance((body.get("user") or {}).get("id") if isinstance(
            body.get("user"), dict) else None, str):
        return f"a {body['type']} payload needs 'user.id'"
    if body.get("type") == "message_action" and not (isinstance(body.get("channel"), dict)
                                                     and isinstance(body["channel"].get("id"), str)):
        return "a message_action payload needs 'channel.id'"
    if body.get("type") in ("block_actions", "view_submission") and "view" in body and not isinstance(
            body["view"].get("id"), str):
        return "the view has no 'id'"
    if body.get("type") == "block_actions" and not all(
            isinstance(a.get("action_id"), str) and isinstance(a.get("value", ""), str) for a in body.get("actions") or [{}]):
        return "an action has no 'action_id', or a 'value' that is not a string"
    return ""


def _needed(event: dict) -> tuple[str, ...]:
    """The fields of an event our listeners read."""
    if event.get("type") == "app_home_opened":
        return ("user",)
    if event.get("type") == "app_mention" or (event.get("type") == "message" and event.get("channel_type") == "im"
                                              and not (event.get("bot_id") or event.get("subtype"))):
        return ("user", "channel", "ts")
    return ()


async def clean_text(body: dict, next) -> None:
    """bolt middleware: lone surrogates out of every string of the request, before any listener."""
    scrub_deep(body)
    await next()
