"""Teams escalations end to end: each surface's own notifier, the line manager picked and messaged 1:1,
who may register a channel or act on an escalation, and display names as data.

Our aiohttp server with the real botbuilder CloudAdapter and slack-bolt stacks, the fake
connector and the fake Slack on 127.0.0.1.
"""
from __future__ import annotations

import json
import logging
import re

from aiohttp import ClientSession, web

from bot.app import build_core
from bot.config import SlackSettings, TeamsSettings
from bot.server import build_web_app
from bot.slack.app import SlackSurface
from bot.storage import SQLiteStore
from bot.teams.bot import TeamsSurface
from handlers.store import ACKNOWLEDGED, SENT, UNDELIVERABLE

from .conftest import ROOT
from .slack_fake import SIGNING_SECRET, FakeSlack, payload_body, post
from .teams_fake import FakeConnector, activity
from .test_escalation_delivery import HOSTILE, until
from .test_teams import NOW, shown

COMMS = "19:comms@thread.tacv2"
TEAM = "19:team-comms@thread.tacv2"
OTHER = "19:random@thread.tacv2"
MANAGER = "6f1f9a43-0000-4c4c-9a9a-3d2b1c0e7f11"  # an Azure AD object id, as the people picker gives it
SETTINGS = TeamsSettings(register_from=(TEAM,), admins=("29:admin",))
JOURNALIST = "report contact a journalist messaged me asking about the ward"


def live_markup(act: dict) -> list[str]:
    """Markup in a Teams activity's card text that Teams would act on: an unescaped '<' (an
    autolink, <at> or HTML) or a Markdown link."""
    texts = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "TextBlock":
                texts.append(node.get("text", ""))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(act.get("attachments") or [])
    return [t for t in texts + [act.get("text") or ""] if re.search(r"(?<!\\)<|(?<!\\)\]\(", t)]


class Both:
    """One core with the Slack and the Teams surface, as `policybot serve` runs with the shipped app.yaml."""

    def __init__(self, tmp_path, slack: bool = True):
        self.tmp_path, self.with_slack = tmp_path, slack

    async def __aenter__(self):
        self.connector = await FakeConnector().start()
        self.fake = await FakeSlack().start()
        self.fake.members = {"CCOMMS": ["UCOMMS", "UALEX"], "CSAFE": ["USAFE"]}
        self.core = build_core(ROOT / "app.yaml", store=SQLiteStore(self.tmp_path / "both.db"), clock=lambda: NOW)
        self.teams = TeamsSurface(self.core, settings=SETTINGS)
        self.slack = SlackSurface(self.core, SlackSettings(mode="http", comms_channel="CCOMMS", safeguarding_channel="CSAFE"),
                                  token="xoxb-test", signing_secret=SIGNING_SECRET,
                                  base_url=self.fake.url + "/api/") if self.with_slack else None
        self.runner = web.AppRunner(build_web_app(self.core, self.slack, self.teams))
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
        self.http = ClientSession()
        return self

    async def __aexit__(self, *exc):
        if self.slack:
            await self.slack.close()
        await self.http.close()
        await self.runner.cleanup()
        await self.connector.stop()
        await self.fake.stop()

    async def teams_says(self, text: str = "", **kw) -> int:
        async with self.http.post(self.url + "/api/messages", json=activity(self.connector.url, text, **kw)) as resp:
            return resp.status

    async def register(self, what: str = "comms", user: str = "29:alex", conv: str = COMMS, team: str = TEAM):
        return await self.teams_says(f"register {what} channel", conv=conv + ";messageid=171", kind="channel",
                                     mention=True, user=user, name="Alex",
                                     channel_data={"team": {"id": team}, "channel": {"id": conv},
                                                   "tenant": {"id": "tenant-1"}})

    async def slack_click(self, payload: dict):
        return await post(self.http, self.url + "/slack/events", payload_body(payload), "application/x-www-form-urlencoded")

    def teams_posts(self, conv: str) -> list[dict]:
        return [a for verb, c, a in self.connector.calls if verb in ("send", "reply") and c == conv]

    def replies_text(self, conv: str) -> list[str]:
        return [shown(a) for verb, c, a in self.connector.calls if c.split(";")[0] == conv]


# -- one notifier per surface -------------------------------------------------------------

async def test_an_escalation_goes_back_to_the_surface_it_came_from(tmp_path):
    async with Both(tmp_path) as rig:
        await rig.register()
        await rig.teams_says(JOURNALIST)
        posted = await rig.connector.wait_for(lambda c: c[0] in ("send", "reply") and c[1] == COMMS)
        assert "For the comms team" in shown(posted[2])
        assert posted[2]["channelData"]["policybotEscalation"]["uid"] == rig.core.store.escalations()[0].uid
        assert rig.fake.posts() == []  # nothing from Teams reaches Slack's comms channel
        # And a Slack report goes to Slack only.
        body = payload_body({"type": "block_actions", "user": {"id": "U1"}, "channel": {"id": "D1"},
                             "message": {"ts": "3.3"}, "actions": [{"action_id": "ask_comms:2", "type": "button",
                                                                     "value": "question|Can I post ward photos?",
                                                                     "action_ts": "1.5"}]})
        await post(rig.http, rig.url + "/slack/events", body, "application/x-www-form-urlencoded")
        await rig.fake.wait_for("chat.postMessage", lambda p: p["channel"] == "CCOMMS")
        await rig.slack.drain()
        assert len(rig.teams_posts(COMMS)) == 1
        assert {(e.requester_surface, e.destination) for e in rig.core.store.escalations()} == {
            ("teams", "teams"), ("slack", "slack")}


async def test_app_yaml_can_send_teams_escalations_to_both_and_either_copy_acknowledges_both(tmp_path):
    async with Both(tmp_path) as rig:
        rig.core.escalations.routes = {"teams": ("teams", "slack")}
        await rig.register()
        await rig.teams_says(JOURNALIST)
        await rig.connector.wait_for(lambda c: c[0] in ("send", "reply") and c[1] == COMMS)
        slack_post = await rig.fake.wait_for("chat.postMessage", lambda p: p["channel"] == "CCOMMS")
        teams_row, slack_row = rig.core.store.escalations()
        assert (teams_row.destination, slack_row.destination, slack_row.group_id) == ("teams", "slack", teams_row.id)
        assert "teams user 29:nurse" in rig.fake.posts("CCOMMS")[0]["text"]
        assert slack_post["metadata"]["event_payload"]["uid"] == slack_row.uid
        # A comms team member with a hostile display name acknowledges the Slack copy.
        await rig.slack_click({"type": "block_actions", "user": {"id": "UALEX", "name": HOSTILE},
                               "channel": {"id": "CCOMMS"}, "message": {"ts": "1.1"},
                               "actions": [{"action_id": "esc_ack:0", "value": str(slack_row.id), "type": "button"}]})
        teams_update = await rig.connector.wait_for(lambda c: c[0] == "update" and c[1] == COMMS)
        await rig.fake.wait_for("chat.update")
        told = await rig.connector.wait_for(lambda c: c[1] == "a:dm-1" and "being looked at" in shown(c[2]))
        # Both copies show it; the requester hears on Teams, where they asked, and not on Slack.
        assert all(e.status == ACKNOWLEDGED and e.acknowledged_by_id == "slack:UALEX" for e in rig.core.store.escalations())
        assert "Acknowledged by" in shown(teams_update[2])
        assert not [p for p in rig.fake.of("chat.postMessage") if "being looked at" in p.get("text", "")]
        for act in (teams_update[2], told[2]):  # the name is escaped Markdown on Teams: no link, no mention
            assert not live_markup(act) and HOSTILE in shown(act)  # and still reads as what they typed


async def test_a_teams_card_sent_again_after_a_crash_says_it_may_be_a_second_copy(tmp_path):
    """The connector can't read a channel's history, so a row whose claimant died mid-send (its lease
    ran out) is sent again; the card says it may already be there, and it is one row, acted on once."""
    import datetime as dt
    async with Both(tmp_path, slack=False) as rig:
        await rig.register()
        esc = rig.core.escalations.raise_("comms", "Question from teams user 29:nurse:\nCan I post ward photos?",
                                          surface="teams", user="29:nurse")
        dead = rig.core.store.claim_escalations("dead-process", ("teams",), now=NOW, lease=dt.timedelta(minutes=5),
                                                max_attempts=8)
        assert [e.id for e in dead] == [esc.id]
        assert await rig.core.escalations.deliver_pending(now=NOW) == []  # the dead claimant's lease still holds
        assert rig.teams_posts(COMMS) == []
        [again] = await rig.core.escalations.deliver_pending(now=NOW + dt.timedelta(minutes=6))
        assert again.id == esc.id and again.attempts == 2
        [card] = rig.teams_posts(COMMS)
        assert "Sent again after an interruption" in shown(card) and f"#{esc.id}" in shown(card)
        assert card["channelData"]["policybotEscalation"]["uid"] == esc.uid
        assert rig.core.store.get_escalation(esc.id).status == SENT


async def test_a_hostile_teams_display_name_reaches_slack_as_text(tmp_path):
    """The probe's case: a Teams caller's from.name became a live <!channel> and a phishing link in
    Slack's comms channel and in the requester's DM. Here a Slack user's question is copied to Teams
    too, and a comms team member acknowledges the Teams copy under that name."""
    async with Both(tmp_path) as rig:
        rig.core.escalations.routes = {"slack": ("slack", "teams")}
        await rig.register()
        await rig.slack_click({"type": "block_actions", "user": {"id": "U1"}, "channel": {"id": "D1"},
                               "message": {"ts": "3.3"}, "actions": [{"action_id": "ask_comms:2", "type": "button",
                                                                       "value": "question|Can I post ward photos?",
                                                                       "action_ts": "1.5"}]})
        await rig.fake.wait_for("chat.postMessage", lambda p: p["channel"] == "CCOMMS")
        await rig.connector.wait_for(lambda c: c[0] in ("send", "reply") and c[1] == COMMS)
        await rig.slack.drain()
        slack_row, teams_row = rig.core.store.escalations()
        assert (slack_row.destination, teams_row.destination) == ("slack", "teams")
        await rig.teams_says(value={"action": "esc_ack", "value": str(teams_row.id)}, conv=COMMS + ";messageid=9",
                             kind="channel", user="29:alex", name=HOSTILE)
        updated = await rig.fake.wait_for("chat.update")
        told = await rig.fake.wait_for("chat.postMessage", lambda p: p["channel"] == "U1" and "looked at" in p["text"])
        for params in (updated, told):  # the comms channel's copy, and the requester's DM
            sent = json.dumps(params)
            assert "<!channel>" not in sent and "<https://" not in sent, sent
        assert "&lt;!channel&gt; &lt;https://evil.example/login|Re-enter your NHSmail password&gt;" in told["text"]
        assert "&lt;!channel&gt;" in json.dumps(updated)
        assert all(e.acknowledged_by_id == "teams:29:alex" and e.acknowledged_by == HOSTILE
                   for e in rig.core.store.escalations())


# -- the line manager: picked with the people picker, messaged 1:1 --------------------------

async def teams_report(rig, manager_answer: str, description: str = "Sent me a friend request") -> None:
    await rig.teams_says("report contact")
    submit = lambda step, answer: rig.teams_says(value={"action": "report_submit", "step": step, "answer": answer},
                                                 reply_to="r-card")
    for step, answer in (("platform", "facebook"), ("contact_kind", "request"), ("from_whom", "former_service_user"),
                         ("occurred_at", "yesterday 9pm"), ("description", description), ("screenshot", "yes")):
        await submit(step, answer)
    picker = [a for v, _, a in rig.connector.calls if v == "update"][-1]
    rig.picker_card = picker["attachments"][0]["content"]
    for step, answer in (("line_manager", manager_answer), ("notify_manager", "yes"), ("redirect", "used"),
                         ("privacy", "done")):
        await submit(step, answer)


async def test_the_line_manager_is_picked_from_the_directory_and_gets_the_summary_one_to_one(tmp_path):
    async with Both(tmp_path, slack=False) as rig:
        await rig.register()
        await teams_report(rig, MANAGER)
        [picker] = [b for b in rig.picker_card["body"] if b.get("id") == "answer"]
        assert picker["type"] == "Input.ChoiceSet"
        assert picker["choices.data"] == {"type": "Data.Query", "dataset": "graph.microsoft.com/users"}
        created = await rig.connector.wait_for(lambda c: c[0] == "create")
        assert created[2]["members"] == [{"id": MANAGER}] and created[2]["isGroup"] is False
        summary = await rig.connector.wait_for(lambda c: c[0] in ("send", "reply") and c[1] == created[1])
        text = shown(summary[2])
        assert "Report from your team" in text and "INC-2026-0001" in text
        assert "[Acknowledge]" not in text and "[Resolve]" not in text
        assert rig.teams_posts(COMMS) == []  # not posted to the comms channel
        assert any("I'll send your line manager a summary" in t for t in rig.replies_text("a:dm-1"))
        [esc] = rig.core.store.escalations()
        assert (esc.kind, esc.status, esc.target, esc.destination) == ("line_manager", SENT, MANAGER, "teams")


async def test_a_line_manager_typed_as_a_name_is_not_sent_anywhere_and_the_requester_is_told(tmp_path, caplog):
    async with Both(tmp_path, slack=False) as rig:
        await rig.register()
        with caplog.at_level(logging.WARNING):
            await teams_report(rig, "Priya Shah")
        await until(lambda: any("tell them about it yourself" in t for t in rig.replies_text("a:dm-1")))
        [esc] = rig.core.store.escalations()
        assert esc.status == UNDELIVERABLE and esc.attempts == 1
        assert not [c for c in rig.connector.calls if c[0] == "create"] and rig.teams_posts(COMMS) == []
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # the reporter's to act on, no alert
        assert not [r for r in caplog.records if "Priya" in r.getMessage()]


# -- who may register a channel, and who may act --------------------------------------------

async def test_register_is_accepted_only_from_app_yaml_teams_or_admins_and_refused_with_why(tmp_path):
    async with Both(tmp_path, slack=False) as rig:
        await rig.register(conv=OTHER, team="19:some-other-team@thread.tacv2", user="29:mallory")
        refusal = rig.replies_text(OTHER)[-1]
        assert "can't send escalations for the comms team here" in refusal
        assert "teams.register_from" in refusal and OTHER in refusal and "19:some-other-team@thread.tacv2" in refusal
        assert rig.core.store.read_state(["ref:comms"]) == {}
        await rig.register("safeguarding", conv=OTHER, team="19:some-other-team@thread.tacv2", user="29:mallory")
        assert rig.core.store.read_state(["ref:safeguarding"]) == {}
        # A channel of a team listed in app.yaml may; so may an admin, anywhere.
        await rig.register()
        assert "Done: escalations for the comms team" in rig.replies_text(COMMS)[-1]
        await rig.register("safeguarding", conv=OTHER, team="19:some-other-team@thread.tacv2", user="29:admin")
        assert "Done: safeguarding alerts" in rig.replies_text(OTHER)[-1]
        assert rig.core.store.read_state(["ref:safeguarding"])["ref:safeguarding"][0]["conversation"]["id"] == OTHER


async def test_only_the_registered_channel_or_an_admin_may_acknowledge_or_resolve(tmp_path):
    async with Both(tmp_path, slack=False) as rig:
        await rig.register()
        await rig.teams_says(JOURNALIST)
        await rig.connector.wait_for(lambda c: c[0] in ("send", "reply") and c[1] == COMMS)
        [esc] = rig.core.store.escalations()
        # Someone in their own chat with the bot sends the card's data: refused, nothing changes.
        for action in ("esc_ack", "esc_resolve"):
            await rig.teams_says(value={"action": action, "value": str(esc.id)}, conv="a:dm-mallory",
                                 user="29:mallory", name="Mallory")
        assert sum("only the comms team can do this" in t for t in rig.replies_text("a:dm-mallory")) == 2
        unchanged = rig.core.store.get_escalation(esc.id)
        assert unchanged.status == SENT and not unchanged.acknowledged_by_id
        assert not [c for c in rig.connector.calls if c[0] == "update" and c[1] == COMMS]
        # From the registered channel it works, with the hostile name shown as text and the id kept.
        await rig.teams_says(value={"action": "esc_ack", "value": str(esc.id)}, conv=COMMS + ";messageid=9",
                             kind="channel", user="29:alex", name=HOSTILE)
        update = await rig.connector.wait_for(lambda c: c[0] == "update" and c[1] == COMMS)
        assert not live_markup(update[2]) and HOSTILE in shown(update[2])
        acked = rig.core.store.get_escalation(esc.id)
        assert acked.acknowledged_by_id == "teams:29:alex" and acked.acknowledged_by == HOSTILE
        # An admin from app.yaml may resolve it from anywhere.
        await rig.teams_says(value={"action": "esc_resolve", "value": str(esc.id)}, conv="a:dm-admin",
                             user="29:admin", name="Admin")
        assert rig.core.store.get_escalation(esc.id).resolved_by_id == "teams:29:admin"


async def test_the_same_ask_comms_button_confirmed_twice_on_teams_sends_one_review(tmp_path):
    async with Both(tmp_path, slack=False) as rig:
        await rig.register()
        data = {"action": "ask_comms", "value": "draft|My patient on Ward 9", "confirm": "Send this draft?"}
        for n in range(2):  # the button on the check card, then "Yes, send it" on its confirmation, twice
            await rig.teams_says(value=data, reply_to="check-card-1")
            confirm = [a for v, _, a in rig.connector.calls if v in ("send", "reply")][-1]
            yes = confirm["attachments"][0]["content"]["actions"][0]["data"]
            assert yes["confirmed"] is True and yes["source"] == "check-card-1"
            await rig.teams_says(value=yes, reply_to=f"confirm-{n}")
        assert [e.kind for e in rig.core.store.escalations()] == ["review"]
        assert len(rig.teams_posts(COMMS)) == 1
        assert any("already sent this to the comms team" in t for t in rig.replies_text("a:dm-1"))


def test_app_yaml_settings_for_routes_and_teams_are_checked(tmp_path):
    import pytest
    import yaml

    from bot.config import ConfigError, load_config
    shipped = yaml.safe_load((ROOT / "app.yaml").read_text())

    def load(**changes):
        path = tmp_path / "app.yaml"
        checker = {**shipped.get("checker", {}), "local_rules": str(ROOT / shipped["checker"]["local_rules"])}
        path.write_text(yaml.safe_dump({**shipped, "checker": checker, **changes}))
        return load_config(path)
    config = load(escalations={"routes": {"teams": ["teams", "slack"]}},
                  teams={"enabled": True, "register_from": [TEAM], "admins": ["29:admin"]})
    assert config.escalation_routes == {"teams": ("teams", "slack")}
    assert config.teams_settings == TeamsSettings(register_from=(TEAM,), admins=("29:admin",))
    assert load().escalation_routes == {}  # by default each surface's escalations stay on it
    with pytest.raises(ConfigError, match=r"escalations\.routes\.teams: 'pager' is not an enabled surface"):
        load(escalations={"routes": {"teams": ["pager"]}})
    with pytest.raises(ConfigError, match=r"teams\.admins: expected a list of ids"):
        load(teams={"enabled": True, "admins": "29:admin"})
