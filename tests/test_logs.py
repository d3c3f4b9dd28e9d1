"""No user text in logs at any level: the suite's conversations, with every logger at DEBUG."""
from __future__ import annotations

import io
import json
import logging

import pytest

from bot.logs import configure

from .test_slack import Rig as SlackRig, dm
from .test_teams import Rig as TeamsRig

CANARIES = {
    "draft": "Zorblax7 on ward 4",
    "question": "Quuxington8",
    "description": "Frobnitz9 says he will hurt himself",
    "review": "Wibblewick6",
    "ask_person": "Plonkford5",
    "feedback": "Snergle4",
    "teams_draft": "Gazorpa3 in bay 2",
    "teams_question": "Thrimble2",
    "teams_report": "Vexmoor1 keeps messaging",
}


class Raw(logging.Handler):
    """What the libraries log before any redaction: the leak the filter exists to stop."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.fixture(params=["text", "json"])
def debug_logs(request):
    """`policybot serve`'s logging (either format), with every logger at DEBUG."""
    root = logging.getLogger()
    saved_level, saved_handlers = root.level, list(root.handlers)
    out = io.StringIO()
    configure(request.param, logging.DEBUG, stream=out)
    raw = Raw()
    root.handlers.insert(0, raw)  # called first, unfiltered: it sees the records as the libraries made them
    yield raw, out
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


async def _slack_conversations(tmp_path):
    async with SlackRig(tmp_path) as rig:
        await rig.event(dm(f"can I post this? my patient {CANARIES['draft']} is driving me mad lol", ts="1.1"), "E1")
        await rig.fake.wait_for("chat.postMessage", lambda p: p.get("thread_ts") == "1.1")
        await rig.event(dm(f"an ex-patient {CANARIES['question']} added me on Facebook, what do I do?", ts="2.2"), "E2")
        await rig.fake.wait_for("chat.postMessage", lambda p: p.get("thread_ts") == "2.2")
        await rig.interact({"type": "block_actions", "user": {"id": "U1"}, "trigger_id": "t", "channel": {"id": "D1"},
                            "message": {"ts": "2.3"}, "actions": [
                                {"action_id": "feedback:1", "value": "down|bsmhft 3.2.1.unsolicited", "type": "button"}]})
        view = await rig.fake.wait_for("views.open", lambda p: p["view"]["callback_id"] == "feedback_reason")
        await rig.interact({"type": "view_submission", "user": {"id": "U1"}, "view": {
            "id": "V2", "type": "modal", "callback_id": "feedback_reason", "private_metadata": view["view"]["private_metadata"],
            "state": {"values": {"reason": {"value": {"type": "plain_text_input", "value": CANARIES["feedback"]}}}}}})
        for key, what in (("review", "draft"), ("ask_person", "question")):
            await rig.interact({"type": "block_actions", "user": {"id": "U1"}, "channel": {"id": "D1"},
                                "message": {"ts": "3.3"}, "actions": [
                                    {"action_id": "ask_comms:0", "value": f"{what}|{CANARIES[key]}", "type": "button"}]})
            await rig.fake.wait_for("chat.postMessage", lambda p: CANARIES[key] in rig.text_of(p))
        await rig.command()
        view = (await rig.fake.wait_for("views.open", lambda p: p["view"]["callback_id"] == "report_step"))["view"]
        radio = lambda v: {"type": "radio_buttons", "selected_option": {"value": v}}
        typed = lambda v: {"type": "plain_text_input", "value": v}
        for value in (radio("facebook"), radio("message"), radio("public"), typed("yesterday 9pm"),
                      typed(CANARIES["description"]), radio("yes"), {"type": "users_select", "selected_user": "UMGR"},
                      radio("yes"), radio("not_appropriate"), radio("done")):
            _, body = await rig.submit(view, value)
            view = body["view"]
        assert "Thank you" in str(view)
        await rig.fake.wait_for("chat.postMessage", lambda p: p["channel"] == "UMGR")
        await rig.slack.drain()


async def _teams_conversations(tmp_path):
    async with TeamsRig(tmp_path / "t.db") as rig:
        await rig.send(f"can I post this? the lad {CANARIES['teams_draft']} thinks the telly talks to him")
        await rig.send(f"an ex-patient {CANARIES['teams_question']} added me on Facebook, what do I do?")
        for text in ("report contact", "Instagram", "message", "public", "yesterday 9pm", CANARIES["teams_report"]):
            assert await rig.send(text) in (200, 201)
        assert rig.core.report.active("teams", "29:nurse").fields["description"] == CANARIES["teams_report"]


async def test_conversations_at_debug_log_no_user_text(tmp_path, debug_logs, monkeypatch):
    raw, out = debug_logs
    # botbuilder logs through msrest, its HTTP client: with msrest's HTTP logger on (as someone debugging
    # the Teams connection would turn it on) every activity we send is logged whole, cards and all.
    from msrest.pipeline.universal import HTTPLogger
    monkeypatch.setattr(HTTPLogger, "enable_http_logger", True, raising=False)
    monkeypatch.setattr(HTTPLogger, "__init__", lambda self, enable_http_logger=True: None)
    await _slack_conversations(tmp_path)
    await _teams_conversations(tmp_path)
    logged = out.getvalue()
    # The libraries did log at DEBUG, and without the filter they would have leaked.
    for library in ("slack_sdk", "slack_bolt", "msrest", "aiohttp.access"):
        assert library in logged, library
    leaked_raw = {k for k, c in CANARIES.items() if any(c in line for line in raw.lines)}
    assert {"draft", "question", "description", "review", "ask_person", "teams_draft", "teams_question"} <= leaked_raw, \
        leaked_raw
    leaked = {k for k, c in CANARIES.items() if c in logged}
    assert leaked == set(), [line for line in logged.splitlines() if any(c in line for c in CANARIES.values())][:5]
    assert "chat.postMessage" in logged  # what was called still shows; only the data is withheld


def test_exception_messages_are_withheld_but_the_traceback_stays(debug_logs):
    _, out = debug_logs
    try:
        int(f"{CANARIES['draft']}")
    except ValueError:
        logging.getLogger("slack_bolt.AsyncApp").exception(f"Failed to run listener function (error: {CANARIES['draft']})")
        logging.getLogger("policybot.server").exception("escalation delivery pass failed")
    logged = out.getvalue()
    assert CANARIES["draft"] not in logged
    assert "builtins.ValueError: [message withheld]" in logged and "test_logs.py" in logged
    assert "Failed to run listener function [details withheld" in logged
    assert "escalation delivery pass failed" in logged


def test_access_log_keeps_the_request_line_not_the_query_or_user_agent(debug_logs):
    _, out = debug_logs
    logging.getLogger("aiohttp.access").info(
        f'127.0.0.1 [21/Nov/2026:14:30:00 +0000] "POST /slack/events?q={CANARIES["question"]} HTTP/1.1" 200 12 "-" '
        f'"{CANARIES["draft"]}"')
    logged = out.getvalue()
    line = json.loads(logged)["message"] if logged.startswith("{") else logged
    assert '"POST /slack/events?… HTTP/1.1" 200 12' in line and "Quux" not in logged and "Zorblax" not in logged
