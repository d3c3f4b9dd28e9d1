"""Escalations in Slack: a message in the team's channel with Acknowledge / Resolve buttons.

Every post carries the escalation row's uid as Slack message metadata, so a retry after a
crash (the post landed, our record of it did not) finds the post in the channel's recent
history (conversations.history with include_all_metadata) instead of posting it twice.
Only members of the channel an escalation went to (or of the user group app.yaml names for
it) may acknowledge or resolve it. Display names are escaped like any user text.
"""
from __future__ import annotations

import datetime as dt
import logging
import re

from slack_sdk.errors import SlackApiError

from handlers.escalation import Actor, Undeliverable
from handlers.store import ACKNOWLEDGED, RESOLVED, Escalation

from .blocks import MAX_SECTION, escape, fit, mrkdwn

log = logging.getLogger("policybot.slack")
TITLES = {"safeguarding": ":rotating_light: Safeguarding alert", "comms": ":mega: For the comms team",
          "foi": ":page_facing_up: Possible FOI request", "review": ":mag: Draft for review",
          "line_manager": ":clipboard: Report from your team"}
SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")   # a line manager picked with users_select
SLACK_ID = re.compile(r"^[UW][A-Z0-9]+$")        # any Slack user id (safe inside <@...>)
EVENT_TYPE = "policybot_escalation"
HISTORY_SLACK = dt.timedelta(minutes=10)  # how far before the escalation was raised to look (clock skew)
HISTORY_PAGES = 10                        # pages of 200 messages: a busy channel's few hours


def metadata(esc: Escalation, part: str) -> dict:
    """No text, only what finds the post again: which escalation row, which part of it."""
    return {"event_type": EVENT_TYPE, "event_payload": {"uid": esc.uid, "escalation": esc.id, "part": part}}


def _is(message: dict, esc: Escalation, part: str) -> bool:
    meta = message.get("metadata") or {}
    payload = meta.get("event_payload") or {}
    return meta.get("event_type") == EVENT_TYPE and payload.get("uid") == esc.uid and payload.get("part") == part


def who(audit_id: str, name: str) -> str:
    """Someone who acted, for a Slack message: a mention built from a Slack user id, else their escaped name."""
    surface, _, user = (audit_id or "").partition(":")
    if surface == "slack" and SLACK_ID.match(user):
        return f"<@{user}>"
    return escape(" ".join((name or user or "someone").split()))


class SlackNotifier:
    def __init__(self, client, comms_channel: str, safeguarding_channel: str = "", foi_channel: str = "",
                 usergroups: dict[str, str] | None = None):
        self.client = client
        self.channels = {"safeguarding": safeguarding_channel or comms_channel, "foi": foi_channel or comms_channel}
        self.comms_channel = comms_channel
        self.usergroups = {k: v for k, v in (usergroups or {}).items() if v}  # channel id -> user group id

    def channel_for(self, esc: Escalation) -> str:
        if esc.kind == "line_manager":
            if not SLACK_USER.match(esc.target or ""):
                raise Undeliverable("the line manager is not a Slack user id (typed, not picked)")
            return esc.target  # posting to a user id lands in the bot's DM with them
        return self.channels.get(esc.kind, self.comms_channel)

    def blocks(self, esc: Escalation) -> list[dict]:
        raised_by = f"<@{esc.requester_user}>" if esc.requester_surface == "slack" and \
            SLACK_ID.match(esc.requester_user or "") else \
            escape(f"{esc.requester_surface} user {esc.requester_user}".strip())
        state = {ACKNOWLEDGED: f":eyes: Acknowledged by {who(esc.acknowledged_by_id, esc.acknowledged_by)}",
                 RESOLVED: f":white_check_mark: Resolved by {who(esc.resolved_by_id, esc.resolved_by)}"}.get(
                     esc.status, ":hourglass: Waiting for someone to pick this up")
        body = "The draft is in the thread below." if esc.kind == "review" else fit(escape(esc.summary), MAX_SECTION)
        blocks = [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{TITLES.get(esc.kind, escape(esc.kind))}*"
                                                                       + (f" (report {escape(esc.incident_ref)})" if esc.incident_ref else "")}},
            {"type": "section", "text": mrkdwn(body)},
            {"type": "context", "elements": [mrkdwn(f"Raised by {raised_by} · #{esc.id} · {state}")]},
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
        return fit(escape(f"{TITLES.get(esc.kind, esc.kind)}: {esc.summary}"), 2900)

    # -- delivering ---------------------------------------------------------------

    async def send(self, esc: Escalation) -> str:
        target = self.channel_for(esc)
        retry = esc.attempts > 1  # an earlier attempt may have been accepted before its claimant died
        channel, ts = (await self._find_alert(target, esc)) if retry else (None, None)
        if ts is None:
            resp = await self.client.chat_postMessage(channel=target, text=self._text(esc), blocks=self.blocks(esc),
                                                      metadata=metadata(esc, "alert"))
            channel, ts = resp["channel"], resp["ts"]
        if esc.kind == "review":
            # The draft goes in the thread: status updates rewrite only the parent message, and the
            # store drops the draft once it is delivered.
            if not (retry and await self._found_reply(channel, ts, esc)):
                await self.client.chat_postMessage(channel=channel, thread_ts=ts, text=fit(escape(esc.summary), 2900) or " ",
                                                   metadata=metadata(esc, "draft"))
        return f"{channel}:{ts}"

    async def _find_alert(self, target: str, esc: Escalation) -> tuple[str | None, str | None]:
        """The channel and ts of this row's post, if an earlier attempt made it; (channel, None) if not."""
        try:
            channel = target
            if SLACK_ID.match(target):  # a DM: its history is under the DM's own channel id
                channel = (await self.client.conversations_open(users=target))["channel"]["id"]
            oldest = dt.datetime.fromisoformat(esc.created_at) - HISTORY_SLACK
            cursor = None
            for _ in range(HISTORY_PAGES):
                resp = await self.client.conversations_history(channel=channel, oldest=f"{oldest.timestamp():.6f}",
                                                               include_all_metadata=True, limit=200, cursor=cursor)
                for message in resp.get("messages") or []:
                    if _is(message, esc, "alert"):
                        log.info("escalation #%s was already posted (found in the channel's history)", esc.id)
                        return channel, message["ts"]
                cursor = (resp.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    break
        except SlackApiError as exc:  # e.g. a missing history scope: deliver, at the risk of a second copy
            log.warning("could not read the history of %s to avoid a duplicate (%s); posting",
                        target, exc.response.get("error", "error"))
        return None, None

    async def _found_reply(self, channel: str, ts: str, esc: Escalation) -> bool:
        try:
            resp = await self.client.conversations_replies(channel=channel, ts=ts, include_all_metadata=True, limit=200)
        except SlackApiError as exc:
            log.warning("could not read the thread to avoid a duplicate (%s); posting", exc.response.get("error", "error"))
            return False
        return any(_is(m, esc, "draft") for m in resp.get("messages") or [])

    async def update(self, esc: Escalation) -> None:
        if ":" in (esc.message_ref or ""):
            channel, ts = esc.message_ref.split(":", 1)
            await self.client.chat_update(channel=channel, ts=ts, text=self._text(esc), blocks=self.blocks(esc),
                                          metadata=metadata(esc, "alert"))

    async def tell_user(self, user: str, text: str) -> None:
        """Bot-authored news for the requester (a reference and who picked it up); names in it are escaped."""
        if SLACK_ID.match(user or ""):
            await self.client.chat_postMessage(channel=user, text=escape(text))

    # -- who may act ------------------------------------------------------------------

    async def may_act(self, esc: Escalation, actor: Actor) -> bool:
        """Members of the channel the escalation went to, or of the user group app.yaml names for it."""
        if actor.surface != "slack" or esc.destination != "slack" or esc.kind == "line_manager" \
                or not SLACK_ID.match(actor.id or ""):
            return False
        channel = self.channel_for(esc)
        try:
            if channel in self.usergroups:
                resp = await self.client.usergroups_users_list(usergroup=self.usergroups[channel])
                return actor.id in (resp.get("users") or [])
            cursor = None
            while True:
                resp = await self.client.conversations_members(channel=channel, limit=1000, cursor=cursor)
                if actor.id in (resp.get("members") or []):
                    return True
                cursor = (resp.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    return False
        except SlackApiError as exc:  # can't tell who is in the team: refuse rather than let anyone act
            log.warning("could not check who may act on escalation #%s (%s)", esc.id, exc.response.get("error", "error"))
            return False
