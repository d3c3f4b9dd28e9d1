"""The Teams surface: botbuilder's CloudAdapter translating activities to the shared conversation.

All botbuilder imports live in bot/teams/: the botbuilder-python SDK is archived upstream
(its successor is the Microsoft 365 Agents SDK), so moving SDK later touches one folder.

  personal chat       drafts and questions, answered with Adaptive Cards
  channel             answers only when @mentioned; draft checks go to the user in a 1:1 chat
  "report contact"    the five-step flow as a sequence of cards, updated in place
  register comms      "@policybot register comms channel" stores where escalations go
  card buttons        report steps, Why?, feedback, ask comms (confirmed first), Acknowledge/Resolve
"""
from __future__ import annotations

import ipaddress
import logging
from types import SimpleNamespace

from botbuilder.core import ActivityHandler, MessageFactory, TurnContext
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication
from botbuilder.schema import Activity, ActivityTypes, Attachment, ChannelAccount, ConversationParameters

from handlers.conversation import Incoming, try_again
from handlers.intents import REPORT
from handlers.replies import Reply, Text
from handlers.store import Escalation, StoreUnavailable

from .cards import card, confirm_card, escalation_card, to_card
from .storage import SQLiteBotStorage

log = logging.getLogger("policybot.teams")
SURFACE = "teams"
CARD = "application/vnd.microsoft.card.adaptive"
COMMS_KEY, SAFEGUARDING_KEY = "ref:comms", "ref:safeguarding"
REGISTER = ("register comms channel", "register safeguarding channel")


def _attach(card_json: dict) -> Attachment:
    return Attachment(content_type=CARD, content=card_json)


class TeamsNotifier:
    """Escalations as cards in the registered channel; news to the requester in their 1:1 chat."""

    def __init__(self, surface: "TeamsSurface"):
        self.surface = surface

    async def send(self, esc: Escalation) -> str:
        key = SAFEGUARDING_KEY if esc.kind == "safeguarding" else COMMS_KEY
        ref = await self.surface.reference(key) or await self.surface.reference(COMMS_KEY)
        if ref is None:
            raise LookupError("no comms channel registered yet: type '@policybot register comms channel' there")
        sent = {}

        async def post(ctx: TurnContext):
            resp = await ctx.send_activity(MessageFactory.attachment(_attach(escalation_card(esc))))
            sent["id"] = resp.id if resp else ""
        await self.surface.continue_conversation(ref, post)
        return f"{key}|{sent.get('id', '')}"

    async def update(self, esc: Escalation) -> None:
        key, _, activity_id = (esc.message_ref or "").partition("|")
        ref = await self.surface.reference(key) if activity_id else None
        if ref is None:
            return

        async def replace(ctx: TurnContext):
            await ctx.update_activity(Activity(id=activity_id, type=ActivityTypes.message,
                                               attachments=[_attach(escalation_card(esc))]))
        await self.surface.continue_conversation(ref, replace)

    async def tell_user(self, surface: str, user: str, text: str) -> None:
        ref = await self.surface.reference(f"ref:user:{user}") if surface == SURFACE else None
        if ref is not None:
            async def say(ctx: TurnContext):
                await ctx.send_activity(MessageFactory.text(text))
            await self.surface.continue_conversation(ref, say)


class PolicyTeamsBot(ActivityHandler):
    def __init__(self, surface: "TeamsSurface"):
        self.surface = surface

    async def on_message_activity(self, turn_context: TurnContext):
        await self.surface.on_message(turn_context)


class TeamsSurface:
    def __init__(self, core, app_id: str = "", app_password: str = "", app_type: str = "MultiTenant",
                 tenant_id: str = ""):
        self.core = core
        self.app_id = app_id
        config = SimpleNamespace(APP_ID=app_id or None, APP_PASSWORD=app_password or None,
                                 APP_TYPE=app_type or "MultiTenant", APP_TENANTID=tenant_id or None)
        self.adapter = CloudAdapter(ConfigurationBotFrameworkAuthentication(config))
        self.adapter.on_turn_error = self.on_turn_error
        self.storage = SQLiteBotStorage(core.store)
        self._remembered: dict[str, dict] = {}  # references this process has already stored
        self.bot = PolicyTeamsBot(self)
        self.notifier = TeamsNotifier(self)
        if core.escalations and core.escalations.notifier is None:
            core.escalations.notifier = self.notifier

    async def on_turn_error(self, context: TurnContext, error: Exception) -> None:
        if isinstance(error, StoreUnavailable):  # e.g. reading a conversation reference; the message names no user text
            await context.send_activity(MessageFactory.attachment(_attach(to_card(try_again(error)))))
            return
        log.error("turn failed: %s", type(error).__name__)  # never the message text
        await context.send_activity("Sorry, something went wrong on my side. Please try again.")

    # -- conversation references (for proactive messages) --------------------------

    async def remember(self, key: str, activity: Activity) -> None:
        """Keep where to reach this conversation later. A channel's thread is the ';messageid=' part of
        its conversation id: dropping it makes proactive messages new posts, not replies in that thread."""
        ref = TurnContext.get_conversation_reference(activity)
        ref.activity_id = None
        if ref.conversation and ref.conversation.id:
            ref.conversation.id = ref.conversation.id.split(";messageid=")[0]
        data = ref.serialize()
        if self._remembered.get(key) != data:  # it rarely changes: don't write on every message
            await self.storage.write({key: data})
            self._remembered[key] = data

    async def reference(self, key: str):
        from botbuilder.schema import ConversationReference
        found = (await self.storage.read([key])).get(key)
        if not found:
            return None
        found = {k: v for k, v in found.items() if k != "e_tag"}
        return ConversationReference().deserialize(found)

    async def continue_conversation(self, ref, logic) -> None:
        await self.adapter.continue_conversation(ref, logic, self.app_id or None)

    # -- incoming -------------------------------------------------------------------

    async def on_message(self, ctx: TurnContext) -> None:
        act = ctx.activity
        user = act.from_property.id
        in_channel = (act.conversation.conversation_type or "personal") != "personal"
        if not in_channel:
            await self.remember(f"ref:user:{user}", act)
        if act.value and isinstance(act.value, dict):
            await self.on_card_action(ctx, act.value, user, in_channel)
        else:
            await self.on_text(ctx, user, in_channel)
        if self.core.escalations:
            try:
                await self.core.escalations.deliver_new()
            except StoreUnavailable as exc:  # still stored as pending: the retry loop sends it later
                log.warning("escalation delivery postponed: %s", exc)

    async def on_text(self, ctx: TurnContext, user: str, in_channel: bool) -> None:
        act = ctx.activity
        if in_channel:
            mentioned = any(((e.additional_properties or {}).get("mentioned") or {}).get("id") == act.recipient.id
                            for e in TurnContext.get_mentions(act))
            if not mentioned:
                return  # in channels the bot speaks only when spoken to
            text = (TurnContext.remove_recipient_mention(act) or "").strip()
        else:
            text = (act.text or "").strip()
        lowered = " ".join(text.lower().split())
        if in_channel and lowered in REGISTER:
            key = COMMS_KEY if lowered.startswith("register comms") else SAFEGUARDING_KEY
            await self.remember(key, act)
            await ctx.send_activity(MessageFactory.text(
                f"Done: {'escalations for the comms team' if key == COMMS_KEY else 'safeguarding alerts'} will come to this channel."))
            return
        if in_channel and REPORT.match(text):
            await self.send(ctx, Reply("report_here", [Text("Reports are private: message me directly and type 'report contact'.")]))
            return
        replies = self.core.conversation.handle(Incoming(SURFACE, user, text, event_id=act.id,
                                                         channel=act.conversation.id))
        for reply in replies:
            if in_channel and reply.private:
                await self.send_privately(ctx, user, reply)
            else:
                await self.send(ctx, reply)

    async def on_card_action(self, ctx: TurnContext, data: dict, user: str, in_channel: bool) -> None:
        action, value = str(data.get("action", "")), str(data.get("value", ""))
        if action == "dismiss":
            return
        if data.get("confirm") and not data.get("confirmed"):
            await ctx.send_activity(MessageFactory.attachment(_attach(confirm_card(data["confirm"], data))))
            return
        if action in ("esc_ack", "esc_resolve"):
            move = self.core.escalations.acknowledge if action == "esc_ack" else self.core.escalations.resolve
            await move(int(value), by=ctx.activity.from_property.name or user)
            return
        if action == "report_submit":
            action, value = "report_answer", f"{data.get('step', '')}:{data.get('answer', '')}"
        replies = self.core.conversation.handle_action(SURFACE, user, action, value, event_id=ctx.activity.id)
        for reply in replies:
            if reply.kind.startswith("report_") and ctx.activity.reply_to_id:
                # The flow's card is updated in place; risk information also arrives as its own message.
                await ctx.update_activity(Activity(id=ctx.activity.reply_to_id, type=ActivityTypes.message,
                                                   attachments=[_attach(to_card(reply))]))
                if reply.alerts():
                    await self.send(ctx, Reply("report_alert", reply.alerts()))
                if reply.kind == "report_done":
                    await self.send(ctx, reply)
            else:
                await self.send(ctx, reply)

    # -- outgoing -------------------------------------------------------------------

    async def send(self, ctx: TurnContext, reply: Reply) -> None:
        await ctx.send_activity(MessageFactory.attachment(_attach(to_card(reply))))

    async def send_privately(self, ctx: TurnContext, user: str, reply: Reply) -> None:
        """A draft check asked for in a channel goes to the user's own 1:1 chat, never the channel."""
        act = ctx.activity
        params = ConversationParameters(is_group=False, bot=act.recipient, members=[ChannelAccount(id=user)],
                                        tenant_id=(act.conversation.tenant_id or None),
                                        channel_data={"tenant": {"id": act.conversation.tenant_id}})

        async def deliver(private_ctx: TurnContext):
            await self.send(private_ctx, reply)
        await self.adapter.create_conversation(self.app_id or None, deliver, params, act.channel_id, act.service_url)
        await ctx.send_activity(MessageFactory.text("I've sent you the result in a private chat."))


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def teams_surface_from_env(core, env, host: str) -> TeamsSurface:
    from bot.config import ConfigError
    app_id = env.get("MicrosoftAppId", "").strip()
    if not app_id and not _loopback(host):
        raise ConfigError(
            f"MicrosoftAppId is not set, and --host {host} is not loopback. Without an app id Bot Framework skips "
            "authentication and would send replies to any serviceUrl a caller gives. Set MicrosoftAppId and "
            "MicrosoftAppPassword, or bind to 127.0.0.1 for local development.")
    if app_id and not env.get("MicrosoftAppPassword", "").strip():
        raise ConfigError("MicrosoftAppPassword is not set (MicrosoftAppId is): export both")
    return TeamsSurface(core, app_id=app_id, app_password=env.get("MicrosoftAppPassword", ""),
                        app_type=env.get("MicrosoftAppType", "MultiTenant"), tenant_id=env.get("MicrosoftAppTenantId", ""))
