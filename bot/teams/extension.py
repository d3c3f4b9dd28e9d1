"""The message extension "Check against policy": the Teams twin of Slack's message shortcut.

On any message's "..." menu (More actions), it checks the message's text and shows the
result in a dialog only the person who asked sees: nothing is posted in the conversation.
Buttons in the dialog (Why?, Ask comms to review, Show all) come back as submitAction
invokes and answer with the next dialog card. The command is declared in
teams/manifest.json (composeExtensions, an action command in the message context with
fetchTask), so Teams asks the bot for the dialog (composeExtension/fetchTask).
"""
from __future__ import annotations

import html
from html.parser import HTMLParser

from botbuilder.schema import Attachment
from botbuilder.schema.teams import (MessagingExtensionActionResponse, TaskModuleContinueResponse,
                                     TaskModuleMessageResponse, TaskModuleTaskInfo)
from msrest.serialization import Model

from handlers.replies import Reply, Text

COMMAND = "checkMessage"
TITLE = "Check against policy"
_BREAKS = {"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "blockquote", "pre"}


class _Text(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.handle_endtag(tag)

    def handle_endtag(self, tag):
        if tag in _BREAKS and self.out and not self.out[-1].endswith("\n"):
            self.out.append("\n")

    def handle_data(self, data):
        self.out.append(data)


def message_text(payload) -> str:
    """The plain text of a Teams message payload (its body is HTML or text)."""
    body = getattr(payload, "body", None)
    content = (getattr(body, "content", None) or "") if body else ""
    if (getattr(body, "content_type", None) or "html").lower() != "html":
        return content.strip()
    parser = _Text()
    parser.feed(content)
    parser.close()
    lines = (" ".join(line.split()) for line in html.unescape("".join(parser.out)).splitlines())
    return "\n".join(line for line in lines if line).strip()


def dialog(card: dict, title: str = TITLE) -> MessagingExtensionActionResponse:
    return MessagingExtensionActionResponse(task=TaskModuleContinueResponse(value=TaskModuleTaskInfo(
        title=title, card=Attachment(content_type="application/vnd.microsoft.card.adaptive", content=card),
        width="large", height="large")))


def closing(message: str) -> MessagingExtensionActionResponse:
    """Close the dialog with a short message."""
    return MessagingExtensionActionResponse(task=TaskModuleMessageResponse(value=message))


class Serialised(Model):
    """A messaging extension response that is already JSON, as a model whose fields pass through
    serialisation unchanged (see PolicyTeamsBot.on_invoke_activity)."""
    _attribute_map = {"task": {"key": "task", "type": "object"},
                      "compose_extension": {"key": "composeExtension", "type": "object"},
                      "cache_info": {"key": "cacheInfo", "type": "object"}}

    def __init__(self, body: dict):
        super().__init__()
        self.task, self.compose_extension = body.get("task"), body.get("composeExtension")
        self.cache_info = body.get("cacheInfo")


def unavailable() -> Reply:
    return Reply("extension_unknown", [Text("That isn't something I can do from this menu.")], private=True)
