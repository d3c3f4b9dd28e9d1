"""Escalations in Slack: a message in the team's channel with Acknowledge / Resolve buttons."""
from __future__ import annotations

import re

from handlers.store import ACKNOWLEDGED, RESOLVED, Escalation

from .blocks import escape

TITLES = {"safeguarding": ":rotating_light: Safeguarding alert", "comms": ":mega: For the comms team",
          "foi": ":page_facing_up: Possible FOI request", "review": ":mag: Draft for review",
          "line_manager": ":clipboard: Report from your team"}
SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")


class SlackNotifier:
    def __init__(self, client, comms_channel: str, safeguarding_channel: str = "", foi_channel: str = ""):
        self.client = client
        self.channels = {"safeguarding": safeguarding_channel or comms_channel, "foi": foi_channel or comms_channel}
        self.comms_channel = comms_channel

    def channel_for(self, esc: Escalation) -> str:
        if esc.kind == "line_manager":
            if not SLACK_USER.match(esc.target or ""):
                raise ValueError(f"line manager {esc.target!r} is not a Slack user id")
            return esc.target  # posting to a user id lands in the bot's DM with them
        return self.channels.get(esc.kind, self.comms_channel)

    def blocks(self, esc: Escalation) -> list[dict]:
        raised_by = f"<@{esc.requester_user}>" if esc.requester_surface == "slack" and esc.requester_user else \
            escape(f"{esc.requester_surface} user {esc.requester_user}".strip())
        state = {ACKNOWLEDGED: f":eyes: Acknowledged by {esc.acknowledged_by}",
                 RESOLVED: f":white_check_mark: Resolved by {esc.resolved_by}"}.get(esc.status, ":hourglass: Waiting for someone to pick this up")
        body = "The draft is in the thread below." if esc.kind == "review" else escape(esc.summary)[:2900]
        blocks = [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{TITLES.get(esc.kind, escape(esc.kind))}*"
                                                                       + (f" (report {escape(esc.incident_ref)})" if esc.incident_ref else "")}},
            {"type": "section", "text": {"type": "mrkdwn", "text": body or " "}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"Raised by {raised_by} · #{esc.id} · {state}"}]},
        ]
        if esc.kind != "line_manager" and esc.status != RESOLVED:
            buttons = [{"type": "button", "action_id": "esc_resolve:1", "text": {"type": "plain_text", "text": "Resolve"},
                        "value": str(esc.id), "style": "primary"}]
            if esc.status != ACKNOWLEDGED:
                buttons.insert(0, {"type": "button", "action_id": "esc_ack:0", "value": str(esc.id),
                                   "text": {"type": "plain_text", "text": "Acknowledge"}})
            blocks.append({"type": "actions", "elements": buttons})
        return blocks

    def _text(self, esc: Escalation) -> str:
        if esc.kind == "review":
            return TITLES["review"]
        return escape(f"{TITLES.get(esc.kind, esc.kind)}: {esc.summary}")[:2900]

    async def send(self, esc: Escalation) -> str:
        resp = await self.client.chat_postMessage(channel=self.channel_for(esc), text=self._text(esc),
                                                  blocks=self.blocks(esc))
        if esc.kind == "review":
            # The draft goes in the thread: status updates rewrite only the parent message, and the
            # store drops the draft once it is delivered.
            await self.client.chat_postMessage(channel=resp["channel"], thread_ts=resp["ts"],
                                               text=escape(esc.summary)[:2900] or " ")
        return f"{resp['channel']}:{resp['ts']}"

    async def update(self, esc: Escalation) -> None:
        if ":" in (esc.message_ref or ""):
            channel, ts = esc.message_ref.split(":", 1)
            await self.client.chat_update(channel=channel, ts=ts, text=self._text(esc), blocks=self.blocks(esc))

    async def tell_user(self, surface: str, user: str, text: str) -> None:
        """Bot-authored news for the requester (a reference and who picked it up)."""
        if surface == "slack":
            await self.client.chat_postMessage(channel=user, text=text)
