"""The Slack surface: slack-bolt's AsyncApp translating Slack events to the shared conversation.

Listeners (registered in `register`, top to bottom):
  message (DMs)          drafts and questions, answered in a thread
  app_mention            questions answered in a thread; draft checks answered privately (ephemeral)
  /report-contact        opens the five-step modal
  check_message          message shortcut: check any message, answer privately through its response_url
  app_home_opened        App Home: what the bot does, buttons, the user's recent reports
  block actions          report-flow buttons, Why?, feedback, Ask comms, escalation Acknowledge/Resolve
  view submissions       report steps, feedback reasons, drafts from App Home

Everything is acknowledged first (views opened straight after, within Slack's 3 s),
then the work is done; checks and searches run on the core's worker threads, so one
long check never holds up anyone else's ack. Retried events are handled once (their
event_id is claimed in the store). User text is escaped by blocks.py before it goes
back to Slack. When the database is out of reach, each kind of request gets "try
again" in the place Slack allows: the thread, the modal's field, a modal, or a DM.
"""
from __future__ import annotations

import asyncio
import logging
import re

import aiohttp

from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from handlers.conversation import Incoming, try_again
from handlers.escalation import Actor
from handlers.intents import REPORT, classify
from handlers.replies import Reply, Text
from handlers.store import StoreUnavailable
from handlers.untrusted import row_id

from . import modal
from .blocks import MAX_MODAL_BLOCKS, action_name, context, escape, fallback, section, title, to_blocks, unescape
from .edge import clean_text
from .notifier import SlackNotifier

log = logging.getLogger("policybot.slack")
SURFACE = "slack"
ACTIONS = re.compile(r"^(report_answer|report_back|report_cancel|report_continue|why|feedback|feedback_skip|ask_comms|"
                     r"esc_ack|esc_resolve|home_check|home_report):\d+$")
MENTION = re.compile(r"<@[A-Z0-9]+(?:\|[^>]*)?>")


class SlackSurface:
    def __init__(self, core, settings, *, token: str, signing_secret: str | None = None, base_url: str | None = None,
                 rate_limit_retries: int = 2):
        self.core = core
        self.settings = settings
        # One shared HTTP session: without it slack_sdk opens a new connection for every API call.
        self.session = aiohttp.ClientSession()
        client = AsyncWebClient(token=token, base_url=base_url or AsyncWebClient.BASE_URL, session=self.session)
        client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=rate_limit_retries))
        self.client = client
        self.signing_secret = signing_secret
        self.app = AsyncApp(client=client, signing_secret=signing_secret,
                            request_verification_enabled=signing_secret is not None)
        self.app.use(clean_text)
        groups = {settings.safeguarding_channel: settings.safeguarding_usergroup,
                  settings.comms_channel: settings.comms_usergroup or (
                      settings.safeguarding_usergroup if settings.safeguarding_channel == settings.comms_channel else "")}
        self.notifier = SlackNotifier(client, settings.comms_channel, settings.safeguarding_channel, usergroups=groups)
        if core.escalations:
            core.escalations.add_notifier(SURFACE, self.notifier)
        self._tasks: set[asyncio.Task] = set()
        self.register(self.app)

    # -- listener registration ------------------------------------------------

    def register(self, app: AsyncApp) -> None:
        app.event("message")(self.on_message)
        app.event("app_mention")(self.on_mention)
        app.event("app_home_opened")(self.on_home_opened)
        app.command("/report-contact")(self.on_report_command)
        app.shortcut("check_message")(self.on_check_shortcut)
        app.action(ACTIONS)(self.on_action)
        app.view(modal.CALLBACK)(self.on_report_submit)
        app.view("feedback_reason")(self.on_feedback_reason)
        app.view("check_draft")(self.on_check_draft)

    # -- events ---------------------------------------------------------------

    async def on_message(self, event: dict, body: dict) -> None:
        """A DM to the bot: a draft or a question. Other channels' messages are ignored."""
        if event.get("channel_type") != "im" or event.get("bot_id") or event.get("subtype"):
            return
        text = unescape(event.get("text", ""))
        thread = event.get("thread_ts") or event["ts"]  # a reply in the bot's thread is read as a follow-up there
        replies = await self.core.conversation.handle_async(
            Incoming(SURFACE, event["user"], text, event_id=body.get("event_id"), channel=event["channel"], thread=thread),
            self.core.worker.run)
        for reply in replies:
            await self.post(event["channel"], reply, thread_ts=thread)
        self.deliver_escalations()

    async def on_mention(self, event: dict, body: dict) -> None:
        """@policybot in a channel: questions in a thread, draft checks only to the person who asked."""
        text = unescape(MENTION.sub("", event.get("text", ""))).strip()
        user, channel, thread = event["user"], event["channel"], event.get("thread_ts") or event["ts"]
        if REPORT.match(text):
            await self.ephemeral(channel, user, Reply("report_here", [Text(
                "To report a contact, type /report-contact, or message me directly: reports are private.")]))
            return
        replies = await self.core.conversation.handle_async(
            Incoming(SURFACE, user, text, event_id=body.get("event_id"), channel=channel, thread=f"{channel}:{thread}"),
            self.core.worker.run)
        for reply in replies:
            if reply.private:
                await self.ephemeral(channel, user, reply, thread_ts=thread)
            else:
                await self.post(channel, reply, thread_ts=thread)
        self.deliver_escalations()

    async def on_home_opened(self, event: dict) -> None:
        if event.get("tab", "home") != "home":
            return
        await self.client.views_publish(user_id=event["user"], view=self.home_view(event["user"]))

    # -- commands and shortcuts -------------------------------------------------

    async def on_report_command(self, ack, command: dict) -> None:
        await ack()
        text = unescape(command.get("text", ""))
        try:
            replies = self.core.report.start(SURFACE, command["user_id"], text)
        except StoreUnavailable as exc:
            replies = [try_again(exc)]
        await self.client.views_open(trigger_id=command["trigger_id"], view=modal.view(replies[0]))
        await self.alert_by_dm(command["user_id"], replies[0])
        self.deliver_escalations()

    async def on_check_shortcut(self, ack, shortcut: dict, respond) -> None:
        """Reply through the shortcut's response_url: it reaches the user privately in any
        conversation, including ones the bot is not a member of (where postEphemeral fails)."""
        await ack()
        if shortcut.get("type") != "message_action":
            return  # a global shortcut (from the search bar) has no message to check
        text = unescape((shortcut.get("message") or {}).get("text", ""))
        reply = await self.core.worker.run(self.core.check.reply, text, "unknown", size=len(text))
        if shortcut.get("response_url"):
            await respond(text=fallback(reply), blocks=to_blocks(reply), response_type="ephemeral",
                          replace_original=False)
        else:
            await self.ephemeral(shortcut["channel"]["id"], shortcut["user"]["id"], reply)

    # -- buttons ----------------------------------------------------------------

    async def on_action(self, ack, body: dict, action: dict) -> None:
        await ack()
        name, user = action_name(action["action_id"]), body["user"]["id"]
        value = action.get("value", "")
        channel = (body.get("channel") or {}).get("id") or user
        if name in ("esc_ack", "esc_resolve"):
            await self.on_escalation_button(name, value, body, channel)
            return
        if name == "home_check":
            if body.get("trigger_id"):  # a modal needs the click's trigger
                await self.client.views_open(trigger_id=body["trigger_id"], view=check_draft_view())
            return
        if name == "home_report":
            if not body.get("trigger_id"):  # a modal needs the click's trigger
                return
            try:
                replies = self.core.report.start(SURFACE, user)
            except StoreUnavailable as exc:
                replies = [try_again(exc)]
            await self.client.views_open(trigger_id=body["trigger_id"], view=modal.view(replies[0]))
            return
        if body.get("view") and name in ("report_back", "report_cancel"):
            # Back / Cancel inside the modal: the same view shows the step we land on.
            replies = self.core.conversation.handle_action(SURFACE, user, name, value)
            if replies[0].kind == "try_again":  # keep the step on screen; say why nothing happened
                await self.post(user, replies[0])
                return
            await self.client.views_update(view_id=body["view"]["id"], view=modal.view(replies[0]))
            return
        # A replay of the same signed click carries the same action_ts: it is handled once.
        click = action.get("action_ts") or body.get("trigger_id")
        on = (body.get("container") or {}).get("message_ts") or (body.get("message") or {}).get("ts")
        replies = self.core.conversation.handle_action(SURFACE, user, name, value,
                                                       event_id=f"action:{user}:{click}" if click else None,
                                                       source=f"{channel}:{on}" if on else None)
        reply = replies[0] if replies else None
        if reply and reply.kind == "feedback_reason" and body.get("trigger_id"):
            await self.client.views_open(trigger_id=body["trigger_id"], view=feedback_view(reply.data["feedback_id"]))
            return
        if reply:
            thread = (body.get("message") or {}).get("thread_ts") or (body.get("message") or {}).get("ts")
            await self.ephemeral(channel, user, reply, thread_ts=thread)
        self.deliver_escalations()

    async def on_escalation_button(self, name: str, value: str, body: dict, channel: str) -> None:
        """Acknowledge / Resolve: only the team the escalation went to may; the name is only for display."""
        esc_id = row_id(value)
        if not self.core.escalations or esc_id is None:
            return
        person = body["user"]
        actor = Actor(SURFACE, person["id"], name=str(person.get("name") or person.get("username") or person["id"]),
                      where=channel)
        move = self.core.escalations.acknowledge if name == "esc_ack" else self.core.escalations.resolve
        try:
            moved = await move(esc_id, actor)
        except StoreUnavailable as exc:
            await self.ephemeral(channel, person["id"], try_again(exc))
            return
        if moved.refused:  # nothing changed; only the person who clicked sees why
            await self.ephemeral(channel, person["id"], Reply("escalation_refused", [Text(moved.refused)], private=True))

    # -- modal submissions ------------------------------------------------------

    async def on_report_submit(self, ack, body: dict, view: dict) -> None:
        user = body["user"]["id"]
        meta = modal.metadata(view)
        try:
            incident = self.core.report.active(SURFACE, user)
            if incident is None or incident.ref != meta.get("ref"):
                await ack(response_action="update", view=modal.view(Reply("report_none", [Text(
                    "That report is no longer in progress. Use /report-contact to start again.")], {"ref": meta.get("ref")})))
                return
            reply = self.core.report.answer(incident, modal.submitted_value(view.get("state", {})), step=meta.get("step"))[0]
        except StoreUnavailable as exc:
            log.warning("store unavailable, asked the user to try again: %s", exc)
            # The answer stays in the field, so pressing Next again is all it takes.
            await ack(response_action="errors", errors={"answer": "I couldn't save this just now. Nothing is lost: "
                                                                  "press Next again in a minute."})
            return
        if reply.data.get("error") and not reply.data.get("alert"):
            await ack(response_action="errors", errors={"answer": reply.data["error"][:150]})
            return
        await ack(response_action="update", view=modal.view(reply))
        await self.alert_by_dm(user, reply)
        if reply.kind == "report_done":
            await self.post(user, reply)
        self.deliver_escalations()

    async def on_feedback_reason(self, ack, view: dict) -> None:
        await ack()
        reason = modal.input_value(view, "reason")
        self.core.conversation.feedback_reason(row_id(view.get("private_metadata")) or 0, reason)

    async def on_check_draft(self, ack, body: dict, view: dict) -> None:
        """Ack at once with a 'checking' view (Slack wants the ack within 3 s), then show the result."""
        text = modal.input_value(view, "draft")
        account = modal.input_value(view, "account") or "unknown"
        await ack(response_action="update", view=result_view([section("Checking your draft…")]))
        reply = await self.core.worker.run(self.core.check.reply, text, account, size=len(text))
        await self.client.views_update(view_id=view.get("id") or body["view"]["id"], view=result_view(
            to_blocks(reply, buttons=False, max_blocks=MAX_MODAL_BLOCKS)))

    # -- sending ----------------------------------------------------------------

    async def post(self, channel: str, reply: Reply, thread_ts: str | None = None) -> None:
        await self.client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=fallback(reply),
                                           blocks=to_blocks(reply))

    async def ephemeral(self, channel: str, user: str, reply: Reply, thread_ts: str | None = None) -> None:
        """Only this user sees it. If the bot can't post in that channel, it DMs them instead."""
        try:
            await self.client.chat_postEphemeral(channel=channel, user=user, thread_ts=thread_ts,
                                                 text=fallback(reply), blocks=to_blocks(reply))
        except Exception as exc:  # e.g. not_in_channel: the answer must still reach them, privately
            log.info("ephemeral post failed (%s); sending by DM", type(exc).__name__)
            await self.post(user, reply)

    async def alert_by_dm(self, user: str, reply: Reply) -> None:
        """Risk information stays with the user after the modal closes."""
        alerts = reply.alerts()
        if alerts:
            await self.post(user, Reply("report_alert", alerts))

    def deliver_escalations(self) -> None:
        """Send pending escalations in the background (they are stored already, so none is lost)."""
        if not self.core.escalations:
            return
        task = asyncio.get_running_loop().create_task(self._deliver())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self) -> None:
        try:
            await self.core.escalations.deliver_new()
        except StoreUnavailable as exc:  # still stored as pending: the retry loop sends it later
            log.warning("escalation delivery postponed: %s", exc)

    async def drain(self) -> None:
        """Wait for background deliveries (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        await self.drain()
        await self.session.close()

    # -- views ------------------------------------------------------------------

    def home_view(self, user: str) -> dict:
        trust = self.core.config.trust
        blocks = [
            {"type": "header", "text": {"type": "plain_text", "text": "policybot: social media, safely"}},
            section(escape(
                f"I help {trust.short_name} staff use social media safely. Ask me about the policy, check a draft "
                "before you post it, or report contact from a patient, family member or member of the public on "
                "your personal accounts.")),
            {"type": "actions", "elements": [
                {"type": "button", "action_id": "home_check:0", "style": "primary",
                 "text": {"type": "plain_text", "text": "Check a draft"}, "value": "check"},
                {"type": "button", "action_id": "home_report:1", "text": {"type": "plain_text", "text": "Report a contact"},
                 "value": "report"}]},
            {"type": "divider"},
            section("*Your recent reports*"),
        ]
        try:
            mine = [i for i in self.core.store.list_incidents(user_id=user, limit=10, answers=False)
                    if i.surface == SURFACE][:5] if self.core.store else []
            missing = "None yet."
        except StoreUnavailable as exc:
            log.warning("App Home without recent reports: %s", exc)
            mine, missing = [], "Your reports can't be shown just now. Please try again in a minute."
        if not mine:
            blocks.append(context(missing))
        for inc in mine:
            flags = f" · risk: {', '.join(inc.risk_flags)}" if inc.risk_flags else ""
            blocks.append(context(escape(f"{inc.ref} · {inc.status.replace('_', ' ')} · {inc.created_at[:10]}{flags}")))
        blocks.append(context(escape(f"Questions about the policy? {trust.comms.line()}")))
        return {"type": "home", "blocks": blocks}


def feedback_view(feedback_id: int) -> dict:
    return {"type": "modal", "callback_id": "feedback_reason", "private_metadata": str(feedback_id),
            "title": title("What was wrong?"), "submit": title("Send"),
            "blocks": [{"type": "input", "block_id": "reason", "optional": True,
                        "label": {"type": "plain_text", "text": "Tell us what the answer got wrong (optional)"},
                        "element": {"type": "plain_text_input", "action_id": "value", "multiline": True, "max_length": 1000}}]}


def result_view(blocks: list[dict]) -> dict:
    """The 'Can I post this?' modal showing a check's result."""
    return {"type": "modal", "callback_id": "check_result", "title": title("Can I post this?"),
            "close": title("Close"), "blocks": blocks}


def check_draft_view() -> dict:
    return {"type": "modal", "callback_id": "check_draft", "title": title("Can I post this?"),
            "submit": title("Check"),
            "blocks": [
                {"type": "input", "block_id": "draft", "label": {"type": "plain_text", "text": "Your draft"},
                 "element": {"type": "plain_text_input", "action_id": "value", "multiline": True, "max_length": 3000}},
                {"type": "input", "block_id": "account", "optional": True,
                 "label": {"type": "plain_text", "text": "Which account is it for?"},
                 "element": {"type": "radio_buttons", "action_id": "value", "options": [
                     {"text": {"type": "plain_text", "text": "My personal account"}, "value": "personal"},
                     {"text": {"type": "plain_text", "text": "The trust's official account"}, "value": "official"}]}}]}


def slack_surface_from_env(core, settings, env) -> "SlackSurface":
    """Build the surface from environment variables; a missing one is a one-line error naming it."""
    from bot.config import ConfigError

    def need(name: str) -> str:
        value = env.get(name, "").strip()
        if not value:
            raise ConfigError(f"{name} is not set: export it (see README, 'Slack') or remove 'slack' from app.yaml")
        return value
    token = need("SLACK_BOT_TOKEN")
    secret = need("SLACK_SIGNING_SECRET") if settings.mode == "http" else None
    if settings.mode == "socket":
        need("SLACK_APP_TOKEN")
    base = env.get("SLACK_API_URL") or None
    if base and not base.endswith("/"):
        base += "/"
    return SlackSurface(core, settings, token=token, signing_secret=secret, base_url=base)
