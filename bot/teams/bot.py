"""The Teams surface: botbuilder's CloudAdapter translating activities to the shared conversation.

All botbuilder imports live in bot/teams/: the botbuilder-python SDK is archived upstream
(its successor is the Microsoft 365 Agents SDK), so moving SDK later touches one folder.

  personal chat       drafts and questions, answered with Adaptive Cards
  channel, group chat answers only when @mentioned; draft checks go to the user in a 1:1 chat
  "report contact"    the five-step flow as a sequence of cards, updated in place
  register comms      "@policybot register comms channel" stores where escalations go
  card buttons        report steps, Why?, feedback, ask comms (confirmed first), Acknowledge/Resolve, Show all
  message extension   "Check against policy" on any message: the result in a private dialog (extension.py)
  installed           a welcome card, once per conversation, when the bot is added

Checks and searches run on the core's worker threads, so a long one never holds up another
user's turn. Cards too big for Teams are shortened, with "Show all" (sizing.py).
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import re
import traceback
from types import SimpleNamespace

from botbuilder.core import MessageFactory, TurnContext
from botbuilder.core.teams import TeamsActivityHandler
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication
from botbuilder.schema import Activity, ActivityTypes, Attachment, ChannelAccount, ConversationParameters
from botbuilder.schema.teams import MessagingExtensionActionResponse

from handlers.conversation import Incoming, try_again
from handlers.escalation import Actor, Undeliverable
from handlers.intents import REPORT
from handlers.replies import Reply, Text
from handlers.store import Escalation, StoreUnavailable
from handlers.untrusted import row_id

from . import extension
from .cards import confirm_card, escalation_card, text_card, to_card, welcome_card
from .sizing import Overflow, fit, parts
from .storage import SQLiteBotStorage

log = logging.getLogger("policybot.teams")
SURFACE = "teams"
CARD = "application/vnd.microsoft.card.adaptive"
COMMS_KEY, SAFEGUARDING_KEY = "ref:comms", "ref:safeguarding"
REGISTER = ("register comms channel", "register safeguarding channel")
# A Teams user as the people picker gives them (an Azure AD object id) or as the connector does (29:...).
TEAMS_USER = re.compile(r"^(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|29:[\w\-.:]+)$")
APP_TYPES = {"singletenant": "SingleTenant", "multitenant": "MultiTenant", "userassignedmsi": "UserAssignedMSI"}


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


class PolicyTeamsBot(TeamsActivityHandler):
    def __init__(self, surface: "TeamsSurface"):
        self.surface = surface

    async def on_message_activity(self, turn_context: TurnContext):
        await self.surface.on_message(turn_context)

    async def on_teams_members_added_dispatch(self, members_added, team_info, turn_context: TurnContext):
        """Only the bot's own arrival matters (a welcome): no member lookups for everyone else added."""
        await self.on_members_added_activity(members_added, turn_context)

    async def on_members_added_activity(self, members_added, turn_context: TurnContext):
        if any(m.id == turn_context.activity.recipient.id for m in members_added or []):
            await self.surface.welcome(turn_context)

    async def on_installation_update_add(self, turn_context: TurnContext):
        await self.surface.welcome(turn_context)

    async def on_installation_update_remove(self, turn_context: TurnContext):
        await self.surface.storage.delete([self.surface.welcomed_key(turn_context.activity)])

    async def on_invoke_activity(self, turn_context: TurnContext):
        """botbuilder 4.17's TeamsActivityHandler serialises an invoke's response body and CloudAdapter.process
        serialises it again, which fails on the dict (the same bug as microsoft/teams-sdk#2547). Give
        CloudAdapter the model back, so it serialises it once."""
        response = await super().on_invoke_activity(turn_context)
        if response is not None and isinstance(response.body, dict) and \
                turn_context.activity.name in ("composeExtension/fetchTask", "composeExtension/submitAction"):
            response.body = extension.Serialised(response.body)
        return response

    async def on_teams_messaging_extension_fetch_task(self, turn_context: TurnContext, action):
        return await self.surface.on_extension_fetch(turn_context, action)

    async def on_teams_messaging_extension_submit_action(self, turn_context: TurnContext, action):
        return await self.surface.on_extension_submit(turn_context, action)


class TeamsSurface:
    def __init__(self, core, app_id: str = "", app_password: str = "", app_type: str = "SingleTenant",
                 tenant_id: str = "", settings=None):
        """app_type: SingleTenant (the default: Azure takes no new multi-tenant bots since 31 July 2025),
        UserAssignedMSI, or MultiTenant for an existing registration. Without an app id, authentication
        is off (local development against the Bot Framework Emulator only)."""
        from bot.config import TeamsSettings
        self.core = core
        self.app_id = app_id
        self.settings = settings or getattr(core.config, "teams_settings", None) or TeamsSettings()
        app_type = APP_TYPES.get((app_type or "SingleTenant").lower())
        if app_type is None:
            raise ValueError("MicrosoftAppType must be SingleTenant, UserAssignedMSI or MultiTenant")
        if app_id and app_type != "MultiTenant" and not tenant_id:
            raise ValueError(f"a {app_type} bot needs its tenant id: set MicrosoftAppTenantId")
        if not app_id:
            app_type = "MultiTenant"  # botbuilder's only mode with no credentials (authentication off)
        self.app_type = app_type
        config = SimpleNamespace(APP_ID=app_id or None, APP_PASSWORD=app_password or None,
                                 APP_TYPE=app_type, APP_TENANTID=tenant_id or None)
        self.adapter = CloudAdapter(ConfigurationBotFrameworkAuthentication(config))
        self.adapter.on_turn_error = self.on_turn_error
        self.storage = SQLiteBotStorage(core.store)
        self._remembered: dict[str, dict] = {}  # references this process has already stored
        self.overflow = Overflow()  # replies too big for one card, for "Show all" (memory only)
        self.bot = PolicyTeamsBot(self)
        self.notifier = TeamsNotifier(self)
        if core.escalations:
            core.escalations.add_notifier(SURFACE, self.notifier)

    async def on_turn_error(self, context: TurnContext, error: Exception) -> None:
        """Log where it failed (the exception's type and its stack, file:line function), never its
        message or the activity's text, which may quote the user. The database being away gets its own
        try-again card (its message names the database, never user text)."""
        if isinstance(error, StoreUnavailable):  # e.g. storing a conversation reference
            await context.send_activity(MessageFactory.attachment(_attach(to_card(try_again(error)))))
            return
        """Log where it failed (the exception's type and its stack, file:line function), never its
        message or the activity's text, which may quote the user."""
        act = context.activity
        where = " < ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.name}"
                           for f in reversed(traceback.extract_tb(error.__traceback__)[-8:]))
        log.error("turn failed: %s at %s (activity %s, type %s, conversation type %s)", type(error).__name__,
                  where or "?", act.id, act.type, act.conversation.conversation_type if act.conversation else None)
        try:
            await context.send_activity("Sorry, something went wrong on my side. Please try again.")
        except Exception as again:  # e.g. the connector is unreachable: logged, not a 500 with a traceback
            log.error("could not tell the user either: %s", type(again).__name__)

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
        replies = await self.core.conversation.handle_async(
            Incoming(SURFACE, user, text, event_id=act.id, channel=act.conversation.id), self.core.worker.run)
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
            await ctx.send_activity(MessageFactory.attachment(_attach(confirm_card(str(data["confirm"])[:300], asked))))
            return
        if action == "show_all":
            for part in self.show_all(value):
                await ctx.send_activity(MessageFactory.attachment(_attach(part)))
            return
        if action in ("esc_ack", "esc_resolve"):
            esc_id = row_id(value)
            if not (self.core.escalations and esc_id is not None):
                return
            person = ctx.activity.from_property
            actor = Actor(SURFACE, user, name=person.name or user, where=ctx.activity.conversation.id,
                          other_ids=(person.aad_object_id,) if person.aad_object_id else ())
            move = self.core.escalations.acknowledge if action == "esc_ack" else self.core.escalations.resolve
            moved = await move(esc_id, actor)
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

    def card(self, reply: Reply) -> dict:
        """The reply's card, shortened with "Show all" if it is bigger than Teams accepts."""
        return fit(reply, to_card, self.overflow)

    def show_all(self, token: str) -> list[dict]:
        reply = self.overflow.get(token)
        if reply is None:
            return [to_card(Reply("show_all_gone", [Text(
                "I no longer have that (I keep long replies for an hour, and never on disk). "
                "Send the draft again to check it.")]))]
        return parts(reply, to_card)

    async def send(self, ctx: TurnContext, reply: Reply) -> None:
        await ctx.send_activity(MessageFactory.attachment(_attach(self.card(reply))))

    # -- welcome ----------------------------------------------------------------------

    @staticmethod
    def welcomed_key(act: Activity) -> str:
        return f"welcomed:{(act.conversation.id if act.conversation else '').split(';messageid=')[0]}"

    async def welcome(self, ctx: TurnContext) -> None:
        """Greet a conversation the bot was added to, once (Teams sends both installationUpdate and
        conversationUpdate on install). In a personal chat, also keep where to reach the user."""
        act = ctx.activity
        key = self.welcomed_key(act)
        if (await self.storage.read([key])).get(key):
            return
        await self.storage.write({key: {"at": dt.datetime.now(dt.timezone.utc).isoformat()}})
        personal = (act.conversation.conversation_type or "personal") == "personal"
        if personal and act.from_property and act.from_property.id != act.recipient.id:
            await self.remember(f"ref:user:{act.from_property.id}", act)
        trust = self.core.config.trust
        await ctx.send_activity(MessageFactory.attachment(_attach(
            welcome_card(trust.name, trust.comms.line(), personal))))

    # -- the message extension ----------------------------------------------------------

    async def on_extension_fetch(self, ctx: TurnContext, action):
        """'Check against policy' on a message: check its text, show the result in a private dialog."""
        if action.command_id != extension.COMMAND:
            return extension.dialog(to_card(extension.unavailable()))
        text = extension.message_text(action.message_payload)
        reply = await self.core.worker.run(self.core.check.reply, text, "unknown", size=len(text))
        return extension.dialog(self.card(reply))

    async def on_extension_submit(self, ctx: TurnContext, action):
        """A button in the dialog: the next card in the same dialog, or close it."""
        data = action.data if isinstance(action.data, dict) else {}
        name, value = str(data.get("action", "")), str(data.get("value", ""))
        user = ctx.activity.from_property.id
        if name in ("", "dismiss"):
            return MessagingExtensionActionResponse()  # an empty response closes the dialog
        if data.get("confirm") and not data.get("confirmed"):
            return extension.dialog(confirm_card(data["confirm"], data))
        if name == "show_all":
            cards = self.show_all(value)
            if len(cards) == 1:
                return extension.dialog(cards[0])
            await self.send_privately(ctx, user, None, cards=cards)
            return extension.closing("I've sent you all of it in our private chat.")
        if name.startswith("report_") or name in ("esc_ack", "esc_resolve"):
            return extension.dialog(to_card(extension.unavailable()))
        replies = self.core.conversation.handle_action(SURFACE, user, name, value, event_id=ctx.activity.id)
        if self.core.escalations:
            await self.core.escalations.deliver_new()
        return extension.dialog(self.card(replies[0])) if replies else MessagingExtensionActionResponse()

    async def send_privately(self, ctx: TurnContext, user: str, reply: Reply | None,
                             cards: list[dict] | None = None) -> None:
        """A draft check asked for in a channel goes to the user's own 1:1 chat, never the channel."""
        act = ctx.activity
        params = ConversationParameters(is_group=False, bot=act.recipient, members=[ChannelAccount(id=user)],
                                        tenant_id=(act.conversation.tenant_id or None),
                                        channel_data={"tenant": {"id": act.conversation.tenant_id}})

        async def deliver(private_ctx: TurnContext):
            for content in cards or [self.card(reply)]:
                await private_ctx.send_activity(MessageFactory.attachment(_attach(content)))
        await self.adapter.create_conversation(self.app_id or None, deliver, params, act.channel_id, act.service_url)
        if reply is not None:
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
    app_type = env.get("MicrosoftAppType", "").strip() or "SingleTenant"
    if app_type.lower() not in APP_TYPES:
        raise ConfigError(f"MicrosoftAppType {app_type!r}: use SingleTenant (the default), UserAssignedMSI or MultiTenant")
    msi = app_type.lower() == "userassignedmsi"
    if app_id and not msi and not env.get("MicrosoftAppPassword", "").strip():
        raise ConfigError("MicrosoftAppPassword is not set (MicrosoftAppId is): export both")
    tenant = env.get("MicrosoftAppTenantId", "").strip()
    if app_id and app_type.lower() != "multitenant" and not tenant:
        raise ConfigError(f"MicrosoftAppTenantId is not set: a {APP_TYPES[app_type.lower()]} bot needs its "
                          "Microsoft Entra tenant id (Azure Bot resource > Configuration)")
    return TeamsSurface(core, app_id=app_id, app_password=env.get("MicrosoftAppPassword", ""),
                        app_type=app_type, tenant_id=tenant, settings=core.config.teams_settings)
