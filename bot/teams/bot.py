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
import re
from types import SimpleNamespace

from botbuilder.core import ActivityHandler, MessageFactory, TurnContext
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication
from botbuilder.schema import Activity, ActivityTypes, Attachment, ChannelAccount, ConversationParameters

from handlers.conversation import Incoming, try_again
from handlers.escalation import Actor, Undeliverable
from handlers.intents import REPORT
from handlers.replies import Reply, Text
from handlers.store import Escalation, StoreUnavailable

from .cards import confirm_card, escalation_card, text_card, to_card
from .storage import SQLiteBotStorage

log = logging.getLogger("policybot.teams")
SURFACE = "teams"
CARD = "application/vnd.microsoft.card.adaptive"
COMMS_KEY, SAFEGUARDING_KEY = "ref:comms", "ref:safeguarding"
REGISTER = ("register comms channel", "register safeguarding channel")
# A Teams user as the people picker gives them (an Azure AD object id) or as the connector does (29:...).
TEAMS_USER = re.compile(r"^(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|29:[\w\-.:]+)$")


def _attach(card_json: dict) -> Attachment:
    return Attachment(content_type=CARD, content=card_json)


class TeamsNotifier:
    """Escalations as cards in the registered channel, summaries for a line manager in a 1:1 chat with
    them, news for the requester in their own 1:1 chat. Every post carries the row's uid in its
    channelData. (The Bot Framework connector can't read a conversation's history, so unlike Slack a
    retry after a crash can't look for an earlier post: a re-sent card says so.)"""

    def __init__(self, surface: "TeamsSurface"):
        self.surface = surface

    @staticmethod
    def key_for(esc: Escalation) -> str:
        return SAFEGUARDING_KEY if esc.kind == "safeguarding" else COMMS_KEY

    async def send(self, esc: Escalation) -> str:
        if esc.kind == "line_manager":
            return await self.send_to_manager(esc)
        key = self.key_for(esc)
        ref = await self.surface.reference(key)
        if ref is None and key != COMMS_KEY:
            key, ref = COMMS_KEY, await self.surface.reference(COMMS_KEY)
        if ref is None:
            raise LookupError("no comms channel registered yet: type '@policybot register comms channel' there")
        sent = {}

        async def post(ctx: TurnContext):
            resp = await ctx.send_activity(self._activity(esc, escalation_card(esc, resent=esc.attempts > 1)))
            sent["id"] = resp.id if resp else ""
        await self.surface.continue_conversation(ref, post)
        return f"{key}|{sent.get('id', '')}"

    async def send_to_manager(self, esc: Escalation) -> str:
        """The line manager picked with the people picker (an Azure AD object id) gets the summary 1:1."""
        if not TEAMS_USER.match(esc.target or ""):
            raise Undeliverable("the line manager was typed as a name, not picked from the directory")
        ref = await self.surface.reference(f"ref:user:{esc.requester_user}")
        if ref is None:
            raise LookupError("no conversation with the requester to reach their tenant from")
        params = ConversationParameters(is_group=False, bot=ref.bot, members=[ChannelAccount(id=esc.target)],
                                        tenant_id=(ref.conversation.tenant_id or None),
                                        channel_data={"tenant": {"id": ref.conversation.tenant_id}})
        sent = {}

        async def deliver(ctx: TurnContext):
            resp = await ctx.send_activity(self._activity(esc, escalation_card(esc, resent=esc.attempts > 1)))
            sent["conversation"] = ctx.activity.conversation.id if ctx.activity.conversation else ""
            sent["id"] = resp.id if resp else ""
        await self.surface.adapter.create_conversation(self.surface.app_id or None, deliver, params,
                                                       ref.channel_id or "msteams", ref.service_url)
        return f"dm:{sent.get('conversation', '')}|{sent.get('id', '')}"

    @staticmethod
    def _activity(esc: Escalation, card_json: dict) -> Activity:
        activity = MessageFactory.attachment(_attach(card_json))
        activity.channel_data = {"policybotEscalation": {"uid": esc.uid, "id": esc.id}}
        return activity

    async def update(self, esc: Escalation) -> None:
        key, _, activity_id = (esc.message_ref or "").partition("|")
        ref = await self.surface.reference(key) if activity_id and key.startswith("ref:") else None
        if ref is None:
            return

        async def replace(ctx: TurnContext):
            await ctx.update_activity(Activity(id=activity_id, type=ActivityTypes.message,
                                               attachments=[_attach(escalation_card(esc))]))
        await self.surface.continue_conversation(ref, replace)

    async def tell_user(self, user: str, text: str) -> None:
        ref = await self.surface.reference(f"ref:user:{user}")
        if ref is not None:
            async def say(ctx: TurnContext):  # a card: its text is escaped, so a name can't become a link
                await ctx.send_activity(MessageFactory.attachment(_attach(text_card(text))))
            await self.surface.continue_conversation(ref, say)

    async def may_act(self, esc: Escalation, actor: Actor) -> bool:
        """An admin from app.yaml, or someone clicking in the channel the escalation was posted to."""
        if actor.surface != SURFACE or esc.destination != SURFACE or esc.kind == "line_manager":
            return False
        if self.surface.is_admin(actor.id, *actor.other_ids):
            return True
        key = (esc.message_ref or "").partition("|")[0] or self.key_for(esc)
        ref = await self.surface.reference(key) if key.startswith("ref:") else None
        return bool(ref and ref.conversation and actor.where and
                    actor.where.split(";messageid=")[0] == ref.conversation.id)


class PolicyTeamsBot(ActivityHandler):
    def __init__(self, surface: "TeamsSurface"):
        self.surface = surface

    async def on_message_activity(self, turn_context: TurnContext):
        await self.surface.on_message(turn_context)


class TeamsSurface:
    def __init__(self, core, app_id: str = "", app_password: str = "", app_type: str = "MultiTenant",
                 tenant_id: str = "", settings=None):
        from bot.config import TeamsSettings
        self.core = core
        self.app_id = app_id
        self.settings = settings or getattr(core.config, "teams_settings", None) or TeamsSettings()
        config = SimpleNamespace(APP_ID=app_id or None, APP_PASSWORD=app_password or None,
                                 APP_TYPE=app_type or "MultiTenant", APP_TENANTID=tenant_id or None)
        self.adapter = CloudAdapter(ConfigurationBotFrameworkAuthentication(config))
        self.adapter.on_turn_error = self.on_turn_error
        self.storage = SQLiteBotStorage(core.store)
        self._remembered: dict[str, dict] = {}  # references this process has already stored
        self.bot = PolicyTeamsBot(self)
        self.notifier = TeamsNotifier(self)
        if core.escalations:
            core.escalations.add_notifier(SURFACE, self.notifier)

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

    def is_admin(self, *user_ids: str) -> bool:
        return any(u and u in self.settings.admins for u in user_ids)

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
            await self.register_channel(ctx, COMMS_KEY if lowered.startswith("register comms") else SAFEGUARDING_KEY)
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

    async def register_channel(self, ctx: TurnContext, key: str) -> None:
        """Where escalations go is decided in app.yaml: only its teams/channels, or its admins, may register."""
        act = ctx.activity
        data = act.channel_data if isinstance(act.channel_data, dict) else {}
        team = str((data.get("team") or {}).get("id") or "")
        channel = str((data.get("channel") or {}).get("id") or act.conversation.id.split(";messageid=")[0])
        what = "escalations for the comms team" if key == COMMS_KEY else "safeguarding alerts"
        allowed = set(self.settings.register_from)
        if not ((team and team in allowed) or channel in allowed
                or self.is_admin(act.from_property.id, act.from_property.aad_object_id or "")):
            log.warning("refused to register a %s channel from a team not in app.yaml", key.removeprefix("ref:"))
            await ctx.send_activity(MessageFactory.text(
                f"I can't send {what} here: only the teams and channels listed under teams.register_from in "
                f"policybot's app.yaml (or an admin listed under teams.admins) can register. To allow this channel, "
                f"ask whoever runs policybot to add its id: channel {channel}" + (f", team {team}" if team else "") + "."))
            return
        await self.remember(key, act)
        await ctx.send_activity(MessageFactory.text(f"Done: {what} will come to this channel."))

    async def on_card_action(self, ctx: TurnContext, data: dict, user: str, in_channel: bool) -> None:
        action, value = str(data.get("action", "")), str(data.get("value", ""))
        if action == "dismiss":
            return
        if data.get("confirm") and not data.get("confirmed"):
            # "Yes" on the confirmation remembers which card the button was on (the same button twice is one request)
            asked = {**data, "source": ctx.activity.reply_to_id or ""}
            await ctx.send_activity(MessageFactory.attachment(_attach(confirm_card(data["confirm"], asked))))
            return
        if action in ("esc_ack", "esc_resolve"):
            if not (self.core.escalations and value.isdigit()):
                return
            person = ctx.activity.from_property
            actor = Actor(SURFACE, user, name=person.name or user, where=ctx.activity.conversation.id,
                          other_ids=(person.aad_object_id,) if person.aad_object_id else ())
            move = self.core.escalations.acknowledge if action == "esc_ack" else self.core.escalations.resolve
            moved = await move(int(value), actor)
            if moved.refused:
                await ctx.send_activity(MessageFactory.attachment(_attach(text_card(moved.refused))))
            return
        if action == "report_submit":
            action, value = "report_answer", f"{data.get('step', '')}:{data.get('answer', '')}"
        source = str(data.get("source") or ctx.activity.reply_to_id or "") or None
        replies = self.core.conversation.handle_action(SURFACE, user, action, value, event_id=ctx.activity.id,
                                                       source=f"{ctx.activity.conversation.id}:{source}" if source else None)
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
                        app_type=env.get("MicrosoftAppType", "MultiTenant"), tenant_id=env.get("MicrosoftAppTenantId", ""),
                        settings=core.config.teams_settings)
