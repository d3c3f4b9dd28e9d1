"""The Slack app end to end, offline: our aiohttp server and the real bolt stack, a fake Slack on 127.0.0.1."""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
import urllib.parse
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiohttp import ClientSession, web

from bot.app import build_core
from bot.config import SlackSettings
from bot.server import build_web_app, start_socket_mode
from bot.slack.app import SlackSurface
from bot.storage import SQLiteStore

from .conftest import ROOT
from .slack_fake import SIGNING_SECRET, FakeSlack, event_body, payload_body, post

NOW = dt.datetime(2026, 11, 21, 14, 30, tzinfo=ZoneInfo("Europe/London"))
JSON, FORM = "application/json", "application/x-www-form-urlencoded"
SETTINGS = SlackSettings(mode="http", comms_channel="CCOMMS", safeguarding_channel="CSAFE")


class Rig:
    """Our server on a free port, talking to a fake Slack. `where` is a test's `storage` (either backend)
    or a folder for an SQLite file."""

    def __init__(self, where):
        self.open_store = where.open if not isinstance(where, Path) else (lambda: SQLiteStore(where / "slack.db"))

    async def __aenter__(self):
        self.fake = await FakeSlack().start()
        self.fake.members = {"CCOMMS": ["UCOMMS", "UALEX"], "CSAFE": ["USAFE"]}
        self.core = build_core(ROOT / "app.yaml", store=self.open_store(), clock=lambda: NOW)
        self.slack = SlackSurface(self.core, SETTINGS, token="xoxb-test", signing_secret=SIGNING_SECRET,
                                  base_url=self.fake.url + "/api/")
        self.runner = web.AppRunner(build_web_app(self.core, self.slack))
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
        self.http = ClientSession()
        return self

    async def __aexit__(self, *exc):
        await self.slack.close()
        await self.http.close()
        await self.runner.cleanup()
        await self.fake.stop()
        if exc[0] is None:
            assert self.fake.rejected == [], "Slack would have refused these calls"

    async def event(self, event: dict, event_id: str, headers=None):
        return await post(self.http, self.url + "/slack/events", event_body(event, event_id), JSON, headers)

    async def interact(self, payload: dict):
        return await post(self.http, self.url + "/slack/events", payload_body(payload), FORM)

    async def command(self, text: str = "", user: str = "U1"):
        body = urllib.parse.urlencode({"command": "/report-contact", "text": text, "user_id": user, "team_id": "T1",
                                       "channel_id": "D1", "trigger_id": "trig", "response_url": "http://x"})
        return await post(self.http, self.url + "/slack/events", body, FORM)

    async def submit(self, view: dict, value: dict, user: str = "U1"):
        view = {**view, "id": "V1", "state": {"values": {"answer": {"value": value}}}}
        return await self.interact({"type": "view_submission", "user": {"id": user}, "trigger_id": "trig", "view": view})

    def text_of(self, params: dict) -> str:
        """Everything Slack would render or notify from this call: every text field, plus the action ids."""
        found = [params.get("text", "")]

        def walk(node):
            if isinstance(node, dict):
                for key, value in node.items():
                    if key == "text" and isinstance(value, str) or key == "action_id":
                        found.append(value)
                    elif key != "value":
                        walk(value)
            elif isinstance(node, list):
                for item in node:
                    walk(item)
        walk(params.get("blocks") or params.get("view") or [])
        return "\n".join(found)


def dm(text: str, ts: str = "111.222", user: str = "U1") -> dict:
    return {"type": "message", "channel_type": "im", "channel": "D1", "user": user, "text": text, "ts": ts}


async def test_dm_draft_check_in_thread_with_findings_and_buttons(tmp_path):
    async with Rig(tmp_path) as rig:
        draft = "&lt;!channel&gt; the lad in bay 3 thinks the telly is talking to him :joy: <@U999> <!here>"
        status, _ = await rig.event(dm(draft), "Ev1")
        assert status == 200
        msg = await rig.fake.wait_for("chat.postMessage", lambda p: p.get("thread_ts") == "111.222")
        text = rig.text_of(msg)
        assert "Don't post this" in text and "Could identify a patient" in text and "bsmhft 3.1" in text
        assert "ask_comms:0" in text and "Are you sure?" in text
        # Slack markup from the draft is echoed as text, never live: no ping, no mention.
        for live in ("<!channel>", "<!here>", "<@U999>"):
            assert live not in text


async def test_dm_question_gets_cited_answer_and_feedback(storage):
    async with Rig(storage) as rig:
        await rig.event(dm("an ex-patient added me on Facebook, what do I do?", ts="5.5"), "Ev2")
        msg = await rig.fake.wait_for("chat.postMessage", lambda p: p.get("thread_ts") == "5.5")
        text = rig.text_of(msg)
        assert "3.2.1.unsolicited" in text and "Do not engage" in text
        assert "feedback:0" in text and "ask_comms:2" in text
        await rig.interact({"type": "block_actions", "user": {"id": "U1"}, "trigger_id": "trig",
                            "channel": {"id": "D1"}, "message": {"ts": "5.6"},
                            "actions": [{"action_id": "feedback:1", "value": "down|bsmhft 3.2.1.unsolicited",
                                         "type": "button"}]})
        view = await rig.fake.wait_for("views.open", lambda p: p["view"]["callback_id"] == "feedback_reason")
        await rig.interact({"type": "view_submission", "user": {"id": "U1"}, "view": {
            "id": "V2", "type": "modal", "callback_id": "feedback_reason", "private_metadata": view["view"]["private_metadata"],
            "state": {"values": {"reason": {"value": {"type": "plain_text_input", "value": "too long"}}}}}})
        rows = rig.core.store.feedback()
        assert [(r["citation"], r["vote"], r["reason"]) for r in rows] == [("bsmhft 3.2.1.unsolicited", "down", "too long")]


async def test_mention_answers_questions_in_thread_and_drafts_privately(tmp_path):
    async with Rig(tmp_path) as rig:
        await rig.event({"type": "app_mention", "channel": "C1", "user": "U1", "ts": "7.7",
                         "text": "<@UBOT> can I put the trust logo on my linkedin?"}, "Ev3")
        answer = await rig.fake.wait_for("chat.postMessage", lambda p: p.get("thread_ts") == "7.7")
        assert "logo" in rig.text_of(answer)
        await rig.event({"type": "app_mention", "channel": "C1", "user": "U1", "ts": "8.8",
                         "text": "<@UBOT> can I post this? My patient on Ward 4 is driving me mad"}, "Ev4")
        private = await rig.fake.wait_for("chat.postEphemeral")
        assert private["user"] == "U1" and private["channel"] == "C1" and "Don't post this" in rig.text_of(private)
        assert not [p for p in rig.fake.of("chat.postMessage") if p.get("thread_ts") == "8.8"]


async def test_message_shortcut_checks_privately_through_its_response_url(tmp_path):
    async with Rig(tmp_path) as rig:
        status, _ = await rig.interact({"type": "message_action", "callback_id": "check_message", "trigger_id": "t",
                                        "user": {"id": "U1"}, "channel": {"id": "C9"},
                                        "response_url": rig.fake.url + "/response/T1/1/abc",
                                        "message": {"text": "Vote Tory on Thursday! #GE", "ts": "1.1"}})
        assert status == 200
        private = await rig.fake.wait_for("response_url")
        assert private["response_type"] == "ephemeral" and private["replace_original"] is False
        assert "Political impartiality" in rig.text_of(private)
        # respond() reaches the user even where the bot isn't a member; postEphemeral would fail there.
        assert rig.fake.of("chat.postEphemeral") == [] and rig.fake.of("chat.postMessage") == []


async def test_report_contact_modal_flow_with_validation_error_and_risk(storage):
    async with Rig(storage) as rig:
        status, _ = await rig.command()
        assert status == 200
        opened = (await rig.fake.wait_for("views.open"))["view"]
        assert opened["callback_id"] == "report_step" and "Step 1 of 5" in json.dumps(opened)
        radio = lambda v: {"type": "radio_buttons", "selected_option": {"value": v}}
        typed = lambda v: {"type": "plain_text_input", "value": v}
        view = opened
        for value in (radio("facebook"), radio("message"), radio("public")):
            status, body = await rig.submit(view, value)
            assert body["response_action"] == "update"
            view = body["view"]
        status, body = await rig.submit(view, typed("tomorrow 9pm"))
        assert body == {"response_action": "errors", "errors": {"answer": body["errors"]["answer"]}}
        assert "future" in body["errors"]["answer"]
        status, body = await rig.submit(view, typed("yesterday 9pm"))
        view = body["view"]
        status, body = await rig.submit(view, typed("Says she wants to end it all tonight"))
        view = body["view"]
        shown = json.dumps(view)
        assert shown.index("Samaritans") < shown.index("Have you kept a screenshot")
        crisis_dm = await rig.fake.wait_for("chat.postMessage", lambda p: p["channel"] == "U1")
        assert "116 123" in rig.text_of(crisis_dm)  # the first DM is the crisis information, nothing empty before it
        alert = await rig.fake.wait_for("chat.postMessage", lambda p: p["channel"] == "CSAFE")
        assert "Safeguarding alert" in rig.text_of(alert) and "esc_ack:0" in rig.text_of(alert)
        for value in (radio("yes"), {"type": "users_select", "selected_user": "UMGR"}, radio("yes"),
                      radio("not_appropriate"), radio("done")):
            status, body = await rig.submit(view, value)
            view = body["view"]
        assert "Thank you. Your report is INC-2026-0001" in json.dumps(view)
        await rig.fake.wait_for("chat.postMessage", lambda p: p["channel"] == "U1" and "INC-2026-0001" in rig.text_of(p)
                                and "Thank you" in rig.text_of(p))
        to_manager = await rig.fake.wait_for("chat.postMessage", lambda p: p["channel"] == "UMGR")
        assert "Report from your team" in rig.text_of(to_manager)
        inc = rig.core.store.get_incident("INC-2026-0001")
        assert inc.status == "completed" and inc.fields["line_manager"] == "UMGR" and inc.risk_flags == ["suicide"]


async def test_escalation_acknowledge_and_resolve_update_message_store_and_requester(storage):
    async with Rig(storage) as rig:
        await rig.command("a journalist from the paper messaged me about the ward")
        posted = await rig.fake.wait_for("chat.postMessage", lambda p: p["channel"] == "CCOMMS")
        await rig.slack.drain()  # the delivery records the post after Slack has accepted it: wait for that
        esc = rig.core.store.escalations()[0]
        assert esc.kind == "comms" and esc.status == "sent"
        click = lambda action: rig.interact({"type": "block_actions", "user": {"id": "UCOMMS", "username": "alex"},
                                             "channel": {"id": "CCOMMS"}, "message": {"ts": "1.1"},
                                             "actions": [{"action_id": action, "value": str(esc.id), "type": "button"}]})
        await click("esc_ack:0")
        updated = await rig.fake.wait_for("chat.update")
        assert "Acknowledged by <@UCOMMS>" in rig.text_of(updated) and "esc_ack" not in rig.text_of(updated)
        await rig.fake.wait_for("chat.postMessage", lambda p: p["channel"] == "U1" and "being looked at" in p["text"])
        await click("esc_resolve:1")
        await rig.fake.wait_for("chat.update", lambda p: "Resolved by" in rig.text_of(p))
        assert rig.core.store.get_escalation(esc.id).status == "resolved"


async def test_ask_comms_to_review_sends_the_draft_after_confirmation(storage):
    async with Rig(storage) as rig:
        await rig.interact({"type": "block_actions", "user": {"id": "U1"}, "channel": {"id": "D1"},
                            "message": {"ts": "3.3"},
                            "actions": [{"action_id": "ask_comms:0", "value": "draft|My patient on Ward 9 said hi",
                                         "type": "button"}]})
        parent = await rig.fake.wait_for("chat.postMessage", lambda p: p["channel"] == "CCOMMS" and "thread_ts" not in p)
        assert "Draft for review" in rig.text_of(parent) and "Ward 9" not in rig.text_of(parent)
        threaded = await rig.fake.wait_for("chat.postMessage", lambda p: p["channel"] == "CCOMMS" and p.get("thread_ts"))
        assert "Ward 9" in threaded["text"]
        await rig.slack.drain()  # the delivery is recorded (and the draft dropped) after Slack accepts it
        assert "Ward 9" not in rig.core.store.escalations()[0].summary  # not kept once delivered


async def test_forged_signature_and_stale_timestamp_are_refused_without_api_calls(tmp_path):
    async with Rig(tmp_path) as rig:
        body = event_body(dm("hello"), "Ev9")
        forged = {"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=" + "0" * 64}
        status, _ = await post(rig.http, rig.url + "/slack/events", body, JSON, forged, signed=False)
        assert status == 401
        from .slack_fake import sign
        stale = sign(body, timestamp=int(time.time()) - 600)
        status, _ = await post(rig.http, rig.url + "/slack/events", body, JSON, stale, signed=False)
        assert status == 401
        await asyncio.sleep(0.2)
        assert rig.fake.calls == []


async def test_retried_event_is_handled_once(storage):
    async with Rig(storage) as rig:
        await rig.event(dm("disclaimer wording?", ts="9.9"), "EvSame")
        await rig.fake.wait_for("chat.postMessage", lambda p: p.get("thread_ts") == "9.9")
        status, _ = await rig.event(dm("disclaimer wording?", ts="9.9"), "EvSame",
                                    headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
        assert status == 200
        await asyncio.sleep(0.3)
        await rig.slack.drain()
        assert len([p for p in rig.fake.of("chat.postMessage") if p.get("thread_ts") == "9.9"]) == 1


async def test_rate_limited_call_is_retried(tmp_path):
    async with Rig(tmp_path) as rig:
        rig.fake.fail_next["chat.postMessage"] = [(429, {"Retry-After": "0"})]
        await rig.event(dm("whats the samaritans number", ts="4.4"), "Ev429")
        attempts = lambda: [p for p in rig.fake.of("chat.postMessage") if p.get("thread_ts") == "4.4"]
        for _ in range(300):  # the retry handler waits Retry-After plus a little jitter
            if len(attempts()) >= 2:
                break
            await asyncio.sleep(0.02)
        assert len(attempts()) == 2  # the 429, then the retry that landed
        assert rig.fake.fail_next["chat.postMessage"] == []


async def test_app_home_shows_actions_and_recent_reports(storage):
    async with Rig(storage) as rig:
        rig.core.report.start("slack", "U1")
        await rig.event({"type": "app_home_opened", "user": "U1", "channel": "D1", "tab": "home"}, "EvHome")
        home = (await rig.fake.wait_for("views.publish"))["view"]
        text = json.dumps(home)
        assert "Check a draft" in text and "Report a contact" in text and "INC-2026-0001" in text


async def test_socket_mode_against_a_fake_websocket(tmp_path):
    fake = await FakeSlack().start()
    core = build_core(ROOT / "app.yaml", store=SQLiteStore(tmp_path / "s.db"), clock=lambda: NOW)
    slack = SlackSurface(core, SlackSettings(mode="socket", comms_channel="CCOMMS"), token="xoxb-test",
                         base_url=fake.url + "/api/")
    handler = await start_socket_mode(slack, "xapp-test")
    try:
        await fake.wait_for("apps.connections.open")
        for _ in range(100):
            if fake.sockets:
                break
            await asyncio.sleep(0.02)
        await fake.push({"envelope_id": "env-1", "type": "events_api", "accepts_response_payload": False,
                         "payload": json.loads(event_body(dm("disclaimer wording?", ts="6.6"), "EvSock"))})
        msg = await fake.wait_for("chat.postMessage", lambda p: p.get("thread_ts") == "6.6")
        assert "disclaimer" in json.dumps(msg["blocks"]).lower()
        assert any(a.get("envelope_id") == "env-1" for a in fake.socket_acks)
        # slack_sdk's own client reconnects a dropped connection (we run no watchdog of our own).
        await fake.sockets[-1].close()
        before = len(fake.of("apps.connections.open"))
        for _ in range(200):
            if len(fake.of("apps.connections.open")) > before:
                break
            await asyncio.sleep(0.05)
        assert len(fake.of("apps.connections.open")) > before
        for _ in range(200):
            if len(fake.sockets) > 1 and not fake.sockets[-1].closed:
                break
            await asyncio.sleep(0.02)
        await fake.push({"envelope_id": "env-2", "type": "events_api", "accepts_response_payload": False,
                         "payload": json.loads(event_body(dm("whats the samaritans number", ts="6.7"), "EvSock2"))})
        await fake.wait_for("chat.postMessage", lambda p: p.get("thread_ts") == "6.7")  # events flow again
    finally:
        await handler.close_async()
        await slack.close()
        await fake.stop()


async def test_back_inside_the_modal_returns_to_the_previous_question(storage):
    async with Rig(storage) as rig:
        await rig.command()
        opened = (await rig.fake.wait_for("views.open"))["view"]
        _, body = await rig.submit(opened, {"type": "radio_buttons", "selected_option": {"value": "x"}})
        assert '"contact_kind"' in body["view"]["private_metadata"]
        await rig.interact({"type": "block_actions", "user": {"id": "U1"}, "trigger_id": "t",
                            "view": {**body["view"], "id": "V1"},
                            "actions": [{"action_id": "report_back:0", "value": "contact_kind", "type": "button"}]})
        back = (await rig.fake.wait_for("views.update"))["view"]
        assert json.loads(back["private_metadata"])["step"] == "platform"
        assert rig.core.report.active("slack", "U1").step == "platform"
