"""Teams conventions end to end over HTTP: the message extension, the welcome on install, cards
within the size Teams accepts (with "Show all"), app types, and what a failed turn logs."""
from __future__ import annotations

import json
import logging
import time

import pytest

from bot.app import build_core
from bot.config import ConfigError
from bot.storage import SQLiteStore
from bot.teams.bot import teams_surface_from_env
from bot.teams.cards import card_text
from bot.teams.sizing import MAX_CARD_BYTES, size

from .conftest import ROOT
from .teams_fake import BOT
from .test_slack_limits import MANY, MANY_AT_CAP, SAFER_AT_CAP
from .test_teams import Rig

USER = {"id": "29:nurse", "name": "Nurse One", "aadObjectId": "aad-29:nurse"}


def _activity(rig, kind: str, conv: str = "a:dm-1", conv_type: str = "personal", **extra) -> dict:
    return {"type": kind, "id": f"act-{time.monotonic_ns()}", "channelId": "msteams", "serviceUrl": rig.fake.url,
            "timestamp": "2026-11-21T14:30:00Z", "from": USER, "recipient": BOT,
            "conversation": {"id": conv, "conversationType": conv_type, "tenantId": "tenant-1"},
            "channelData": {"tenant": {"id": "tenant-1"}}, **extra}


async def _post(rig, body: dict):
    async with rig.http.post(rig.url, json=body) as resp:
        text = await resp.text()
        return resp.status, (json.loads(text) if text.strip().startswith("{") else text)


def _fetch_task(rig, html: str, conv="19:general@thread.tacv2", conv_type="channel") -> dict:
    return _activity(rig, "invoke", conv, conv_type, name="composeExtension/fetchTask", value={
        "commandId": "checkMessage", "commandContext": "message", "messagePayload": {
            "id": "1700000000000", "messageType": "message", "body": {"contentType": "html", "content": html},
            "from": {"user": {"id": "aad-someone", "displayName": "Someone"}}}})


def _submit(rig, data: dict, conv="19:general@thread.tacv2", conv_type="channel") -> dict:
    return _activity(rig, "invoke", conv, conv_type, name="composeExtension/submitAction", value={
        "commandId": "checkMessage", "commandContext": "message", "data": data})


def _dialog_card(body: dict) -> dict:
    assert body["task"]["type"] == "continue"
    return body["task"]["value"]["card"]["content"]


async def test_message_extension_checks_a_message_privately_in_a_dialog(tmp_path):
    async with Rig(tmp_path / "t.db") as rig:
        html = ("<p>Monday mood: the lad in bay 3 thinks the telly talks to him &amp; <b>lol</b></p>"
                "<p>DM me your NHS number</p>")
        status, body = await _post(rig, _fetch_task(rig, html))
        assert status == 200
        card = _dialog_card(body)
        text = card_text(card)
        assert "Don't post this" in text and "Could identify a patient" in text and "[Why?]" in text
        assert body["task"]["value"]["title"] == "Check against policy"
        assert rig.fake.calls == []  # nothing posted in the conversation: only the asker sees the dialog

        why = next(a["data"] for a in card["actions"] if a["title"] == "Why?")
        status, body = await _post(rig, _submit(rig, why))
        assert status == 200 and "Why:" in card_text(_dialog_card(body))

        ask = next(a["data"] for a in card["actions"] if a["title"] == "Ask comms to review")
        status, body = await _post(rig, _submit(rig, ask))
        assert "[Yes, send it]" in card_text(_dialog_card(body)) and rig.core.store.escalations() == []
        status, body = await _post(rig, _submit(rig, {**ask, "confirmed": True}))
        assert "Sent to the comms team" in card_text(_dialog_card(body))
        assert [e.kind for e in rig.core.store.escalations()] == ["review"]

        status, body = await _post(rig, _submit(rig, {"action": "dismiss"}))
        assert status == 200 and body == {}  # an empty response: the dialog closes


async def test_message_extension_reads_the_text_not_the_html(tmp_path):
    async with Rig(tmp_path / "t.db") as rig:
        seen = []
        inner = rig.core.check.check
        rig.core.check.check = lambda text, account="unknown": seen.append(text) or inner(text, account)
        await _post(rig, _fetch_task(rig, "<div>Line one &amp; <at>Alex</at></div><div>Line&nbsp;two</div>"))
        assert seen == ["Line one & Alex\nLine two"]


async def test_welcome_card_once_on_install_and_again_after_a_reinstall(tmp_path):
    async with Rig(tmp_path / "t.db") as rig:
        status, _ = await _post(rig, _activity(rig, "installationUpdate", action="add"))
        assert status in (200, 201)
        welcomes = [c for c in rig.cards("a:dm-1") if "Hello, I'm policybot" in c]
        assert len(welcomes) == 1
        assert "[Check a draft]" in welcomes[0] and "[Report a contact]" in welcomes[0]
        # Teams also sends conversationUpdate with the bot among the members added: no second welcome.
        await _post(rig, _activity(rig, "conversationUpdate", membersAdded=[BOT]))
        assert len([c for c in rig.cards("a:dm-1") if "Hello, I'm policybot" in c]) == 1
        # The bot can reach the user before they have written a word (a stored conversation reference).
        assert await rig.teams.reference("ref:user:29:nurse") is not None
        await _post(rig, _activity(rig, "installationUpdate", action="remove"))
        await _post(rig, _activity(rig, "conversationUpdate", membersAdded=[BOT]))
        assert len([c for c in rig.cards("a:dm-1") if "Hello, I'm policybot" in c]) == 2


async def test_welcome_in_a_team_only_for_the_bot_and_without_private_buttons(tmp_path):
    async with Rig(tmp_path / "t.db") as rig:
        team = {"tenant": {"id": "tenant-1"}, "team": {"id": "19:team@thread.tacv2"}, "eventType": "teamMemberAdded"}
        chan = "19:general@thread.tacv2"
        await _post(rig, {**_activity(rig, "conversationUpdate", chan, "channel", membersAdded=[
            {"id": "29:newcomer", "name": "New Person"}]), "channelData": team})
        assert rig.fake.calls == []  # a colleague joining the team is not the bot's business
        await _post(rig, {**_activity(rig, "conversationUpdate", chan, "channel", membersAdded=[BOT]),
                          "channelData": team})
        welcome = rig.cards(chan)
        assert len(welcome) == 1 and "@mention me with a question" in welcome[0]
        assert "[Check a draft]" not in welcome[0]


async def test_card_at_the_40000_character_cap_fits_and_show_all_sends_the_rest(tmp_path):
    async with Rig(tmp_path / "t.db") as rig:
        assert await rig.send("can I post this? " + SAFER_AT_CAP) == 201
        verb, conv, act = rig.fake.outgoing()[-1]
        card = act["attachments"][0]["content"]
        assert size(card) <= MAX_CARD_BYTES
        text = card_text(card)
        assert "[Show all]" in text and "[Why?]" in text and "That is the start of it" in text
        show_all = next(a["data"] for a in card["actions"] if a["title"] == "Show all")
        before = len(rig.fake.outgoing())
        await rig.send(value=show_all)
        parts = [a["attachments"][0]["content"] for _, _, a in rig.fake.outgoing()[before:]]
        assert len(parts) > 1 and all(size(p) <= MAX_CARD_BYTES for p in parts)
        whole = "\n".join(card_text(p) for p in parts)
        assert whole.count("Lovely walk by the canal") == SAFER_AT_CAP.count("Lovely walk by the canal")
        assert "part 1 of" in whole
        # The Rig's exit checks that the fake connector refused nothing as too big.


async def test_many_findings_at_the_cap_fit_in_one_card(tmp_path):
    async with Rig(tmp_path / "t.db") as rig:
        for draft in (MANY, MANY_AT_CAP):
            await rig.send("can I post this? " + draft)
            card = rig.fake.outgoing()[-1][2]["attachments"][0]["content"]
            text = card_text(card)
            assert size(card) <= MAX_CARD_BYTES and "[Why?]" in text
            shown = text.count("Policy: ")
            more = [line for line in text.splitlines() if "more finding" in line]
            total = len(rig.core.check.check(draft).findings)
            if more:  # those not shown are counted, and "Show all" sends them
                assert "[Show all]" in text and shown + int(more[0].split()[1]) == total
            else:
                assert shown == total


async def test_show_all_after_the_reply_is_gone_says_so(tmp_path):
    async with Rig(tmp_path / "t.db") as rig:
        await rig.send(value={"action": "show_all", "value": "not-a-token"})
        assert "I no longer have that" in rig.cards()[-1]


def test_app_type_is_single_tenant_by_default_and_other_types_by_setting(tmp_path):
    core = build_core(ROOT / "app.yaml", store=SQLiteStore(tmp_path / "x.db"))
    creds = {"MicrosoftAppId": "11111111-2222-3333-4444-555555555555", "MicrosoftAppPassword": "secret"}
    with pytest.raises(ConfigError, match="MicrosoftAppTenantId is not set: a SingleTenant bot"):
        teams_surface_from_env(core, creds, "0.0.0.0")
    assert teams_surface_from_env(core, {**creds, "MicrosoftAppTenantId": "t1"}, "0.0.0.0").app_type == "SingleTenant"
    assert teams_surface_from_env(core, {**creds, "MicrosoftAppType": "MultiTenant"}, "0.0.0.0").app_type == "MultiTenant"
    msi = {"MicrosoftAppId": creds["MicrosoftAppId"], "MicrosoftAppType": "UserAssignedMSI", "MicrosoftAppTenantId": "t1"}
    assert teams_surface_from_env(core, msi, "0.0.0.0").app_type == "UserAssignedMSI"  # no password: a managed identity
    with pytest.raises(ConfigError, match="MicrosoftAppType 'Sometimes'"):
        teams_surface_from_env(core, {**creds, "MicrosoftAppType": "Sometimes"}, "0.0.0.0")


async def test_a_failed_turn_logs_where_it_failed_but_not_what_was_said(tmp_path, caplog):
    async with Rig(tmp_path / "t.db") as rig:
        async def boom(ctx):
            raise ValueError(f"could not handle {ctx.activity.text}")
        rig.teams.on_message = boom
        with caplog.at_level(logging.ERROR, logger="policybot.teams"):
            await rig.send("Canary-4471 my patient on ward 9")
        assert "Sorry, something went wrong" in rig.cards()[-1]
        logged = [r.getMessage() for r in caplog.records if r.name == "policybot.teams"]
        assert len(logged) == 1 and "turn failed: ValueError at test_teams_app.py:" in logged[0]
        assert "Canary-4471" not in logged[0] and "boom" in logged[0]
