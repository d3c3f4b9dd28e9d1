"""The edge between Teams' HTTP requests and botbuilder: refuse malformed activities, clean the text.

CloudAdapter reads the body itself and assumes a Bot Framework activity: a body that was
not JSON came back as 401, and one that was not an object, or an activity with no sender
or conversation, crashed the turn with a 500. `read_activity` parses the body once,
answers 400 (or 415) for anything that is not an activity we can handle, replaces lone
surrogates in every string, and hands CloudAdapter a request whose JSON is that cleaned
activity. Authentication is still CloudAdapter's (401).
"""
from __future__ import annotations

import json
import unicodedata
from urllib.parse import urlsplit

from botbuilder.schema import Activity

from handlers.untrusted import scrub_deep

_NEEDED = {"message": ("from", "conversation", "recipient")}


class ActivityRequest:
    """What CloudAdapter.process reads from a request (method, headers, json()), with our cleaned body."""

    def __init__(self, request, body: dict):
        self.method, self.headers, self._body = request.method, request.headers, body

    async def json(self) -> dict:
        return self._body


async def read_activity(request) -> tuple[dict | None, tuple[int, str] | None]:
    """The request's activity, cleaned; or the status and reason it is refused with."""
    if "application/json" not in request.headers.get("Content-Type", ""):
        return None, (415, "activities are JSON (Content-Type: application/json)")
    raw = await request.read()
    try:
        body = json.loads(raw.decode("utf-8"))
    except RecursionError:
        return None, (400, "the body is nested too deeply")
    except ValueError:  # not UTF-8, or not JSON
        return None, (400, "the body is not JSON")
    problem = _shape_problem(body)
    if problem:
        return None, (400, problem)
    scrub_deep(body)
    try:
        Activity().deserialize(body)
    except Exception:  # msrest raises its own errors for fields of the wrong type (e.g. a timestamp)
        return None, (400, "the body is not a Bot Framework activity")
    return body, None


def _shape_problem(body) -> str:
    if not isinstance(body, dict):
        return "the body is not a JSON object"
    if not isinstance(body.get("type"), str) or not body["type"]:
        return "the activity has no 'type'"
    for key in ("from", "conversation", "recipient", "channelData"):
        if body.get(key) is not None and not isinstance(body[key], dict):
            return f"'{key}' is not an object"
    for key in ("id", "serviceUrl", "channelId", "replyToId", "text", "locale"):
        if body.get(key) is not None and not isinstance(body[key], str):
            return f"'{key}' is not a string"
    for key in ("entities", "attachments", "membersAdded", "membersRemoved"):
        if body.get(key) is not None and not (isinstance(body[key], list) and all(isinstance(e, dict) for e in body[key])):
            return f"'{key}' is not a list of objects"
    for key in _NEEDED.get(body["type"], ()):
        if not isinstance((body.get(key) or {}).get("id"), str):
            return f"a {body['type']} activity needs '{key}.id'"
    # Ids go into the connector's URLs and headers when we reply: a control character there fails the reply.
    ids = {"id": body.get("id"), "replyToId": body.get("replyToId"), "channelId": body.get("channelId"),
           **{f"{k}.id": (body.get(k) or {}).get("id") for k in ("from", "conversation", "recipient")}}
    for key, value in ids.items():
        if value is not None and (not isinstance(value, str) or not value.strip() or len(value) > 2000
                                  or _has_controls(value)):
            return f"'{key}' is not an id"
    if body["type"] == "message" and not _url(body.get("serviceUrl")):
        return "a message activity needs an http(s) 'serviceUrl'"
    return ""


def _has_controls(text: str) -> bool:
    return any(unicodedata.category(c) == "Cc" for c in text)


def _url(value) -> bool:
    if not isinstance(value, str) or _has_controls(value) or " " in value:
        return False
    try:
        parts = urlsplit(value)
        return parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        return False
