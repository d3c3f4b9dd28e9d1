"""Every input gets an answer, never a traceback: JSON Lines, terminals, and the Slack and Teams edges."""
from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import urllib.parse

import pytest

from bot.cli import main
from handlers.untrusted import terminal_safe

from .conftest import ROOT
from .slack_fake import event_body, payload_body, post, sign
from .test_slack import FORM, JSON, Rig as SlackRig, dm
from .test_teams import Rig as TeamsRig

DEEP = "[" * 100_000 + "]" * 100_000
HOSTILE_LINES = [
    b'{"id": "ok1", "text": "So proud of our team today! #NHS"}',
    DEEP.encode(),
    b'{"id": "sur", "text": "my patient on ward 4 \\ud800 said hi"}',
    b'{"id": "ff", "text": "caf\xff on ward 4"}',
    b"42",
    b'"just a string"',
    b'{"id": "nofield"}',
    b'{"id": {"nested": "id"}, "text": "x"}',
    b'{"id": "nan", "text": NaN}',
    b'{"id": 1e999, "text": "x"}',
    b'{"id": "ctl", "text": "tab\there and \x1b[31mred"}',
    b"\x00\x01\x02",
    b'{"id": "ok2", "text": "Vote Tory on Thursday!", "account": "personal"}',
]


def run_cli(argv: list[str], stdin: bytes) -> tuple[int, bytes, bytes]:
    """The real command in a child process: real stdin/stdout bytes, so encoding problems show."""
    proc = subprocess.run([sys.executable, "-m", "bot.cli", *argv], input=stdin, capture_output=True, cwd=ROOT,
                          timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.parametrize("command, field", [("check", "text"), ("ask", "question"), ("chat", "text")])
def test_jsonl_answers_every_line_and_survives_hostile_ones(command, field):
    lines = [line.replace(b'"text"', f'"{field}"'.encode()) for line in HOSTILE_LINES]
    code, out, err = run_cli([command, "--jsonl"], b"\n".join(lines) + b"\n")
    assert code == 0 and b"Traceback" not in err, err.decode("utf-8", "replace")[-2000:]
    got = [json.loads(line) for line in out.decode("utf-8").splitlines()]  # strict UTF-8, strict JSON
    assert len(got) == len(lines), "every non-blank input line gets exactly one output line"
    assert [g["id"] for g in got] == ["ok1", None, "sur", "ff", None, None, "nofield", None, None, None, "ctl", None,
                                      "ok2"]
    errors = {i for i, g in enumerate(got) if "error" in g}
    assert errors == {1, 4, 5, 6, 7, 8, 9, 11}
    assert "nested too deeply" in got[1]["error"] and "JSON int" in got[4]["error"]
    assert f"missing text field '{field}'" in got[6]["error"]
    # Text that cannot be UTF-8 is replaced, answered, and the answer says so.
    for i in (2, 3):
        assert "error" not in got[i] and "U+FFFD" in got[i]["warning"]
    if command in ("check", "chat"):
        assert got[12]["verdict"] in ("revise", "stop") and got[2]["verdict"] == "stop"


def test_jsonl_answers_stay_one_line_each_whatever_splits_them():
    """U+2028, U+0085 and C1 controls are line breaks to some readers (found by the fuzz suite)."""
    out = io.StringIO()
    main(["check", "--jsonl"], stdin=io.StringIO('{"id": "a\u2028b\\u0085c\x9b", "text": "x"}\n'), stdout=out)
    [line] = out.getvalue().splitlines()
    assert json.loads(line)["id"] == "a\u2028b\u0085c\x9b"


def test_jsonl_in_process_with_text_streams():
    out = io.StringIO()
    lines = '{"id": "a", "text": "x\\udfff"}\n[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[' + "[" * 5000 + "\n"
    assert main(["check", "--jsonl"], stdin=io.StringIO(lines), stdout=out) == 0
    got = [json.loads(line) for line in out.getvalue().splitlines()]
    out.getvalue().encode("utf-8")
    assert got[0]["id"] == "a" and "warning" in got[0] and "error" in got[1]


ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x1b[31m\rMy patient on Ward 4\x1b[0m is a schizo \u202egnp.exe\x9b31m\x07"


def test_check_on_a_terminal_strips_escape_and_control_sequences():
    code, out, _ = run_cli(["check", "--account", "personal", "-"], ESCAPES.encode())
    text = out.decode("utf-8")
    assert code == 0 and ">>schizo<<" in text and "Ward 4" in text
    for bad in ("\x1b", "\x07", "\r", "\u202e", "\x9b"):
        assert bad not in text


def test_chat_strips_escape_sequences_from_echoed_text(tmp_path, monkeypatch):
    monkeypatch.setenv("POLICYBOT_DATABASE", str(tmp_path / "chat.db"))
    draft = "\x1b]0;pwned\x07Monday \x1b[2Jmood:\r completely \u202eschizo \x1b[31mlol\x1b[0m\x9b31m"
    code, out, _ = run_cli(["chat"], ("can I post this? " + draft + "\nquit\n").encode())
    text = out.decode("utf-8")
    assert code == 0 and "Revise before posting" in text and "A safer version" in text and "frazzled lol" in text
    assert not any(c in text for c in "\x1b\x07\r\u202e\x9b")


def test_terminal_safe_keeps_ordinary_text():
    assert terminal_safe("Café 😂 👩‍👩‍👧 ward\tbay\nnext") == "Café 😂 👩‍👩‍👧 ward\tbay\nnext"
    assert terminal_safe("a\x1b[1;31mb\x1b]8;;http://x\x1b\\c\x1bcd\x00e\ud800") == "abcde\ufffd"


# -- Slack ------------------------------------------------------------------------------------------


def _form(payload) -> str:
    return urllib.parse.urlencode({"payload": payload if isinstance(payload, str) else json.dumps(payload)})


@pytest.mark.parametrize("body, content_type", [
    ('{"type": "event_callback", "event": "not an object"}', JSON),
    ("[1, 2]", JSON),
    ('"a string"', JSON),
    ("{not json", JSON),
    ("[" * 50_000 + "]" * 50_000, JSON),
    ('{"type": 5}', JSON),
    ('{"type": "event_callback", "authorizations": "x", "event": {"type": "message"}}', JSON),
    (_form("[1, 2]"), FORM),
    (_form("null"), FORM),
    (_form("{broken"), FORM),
    (_form({"type": "block_actions", "user": {"id": "U1"}, "actions": "nope"}), FORM),
    (_form({"type": "view_submission", "user": {"id": "U1"}, "view": ["not", "an", "object"]}), FORM),
    # found by the fuzz suite: bolt's listener matching reads these without checking them
    (_form({"type": "block_actions", "user": {"id": "U1"}, "actions": []}), FORM),
    (_form({"type": "block_actions", "user": {"id": "U1"}, "actions": [{}]}), FORM),
    (_form({"type": "view_submission", "user": {"id": "U1"}, "view": {"id": "V1"}}), FORM),
    (_form({"type": "view_submission", "view": {"callback_id": "report_step"}}), FORM),
    (_form({"type": None, "view": None}), FORM),
    ('{"type": "event_callback", "event": null}', JSON),
    (_form({"type": "block_actions", "user": {"id": "U1"}, "actions": [{"action_id": "why:1", "value": None}]}), FORM),
    ('{"type": "event_callback", "event": {"text": "no type"}}', JSON),
    (urllib.parse.urlencode({"command": "/report-contact", "text": "no user"}), FORM),
    ('{"type": "event_callback", "event": {"type": "message", "subtype": {"x": 1}}}', JSON),
])
async def test_slack_malformed_signed_requests_get_400(tmp_path, body, content_type):
    async with SlackRig(tmp_path) as rig:
        status, _ = await post(rig.http, rig.url + "/slack/events", body, content_type)
        assert status == 400
        assert rig.fake.calls == []


async def test_slack_unauthenticated_requests_get_401_even_when_malformed(tmp_path):
    async with SlackRig(tmp_path) as rig:
        body = event_body(dm("hello"), "Ev1")
        for ts in ("abc", "", "12.5", "1e9", "-1", "١٢٣"):
            headers = {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": "v0=" + "0" * 64}
            status, _ = await post(rig.http, rig.url + "/slack/events", body, JSON, headers, signed=False)
            assert status == 401, ts
            # Signed with the real secret over that timestamp: its age cannot be checked, so still refused.
            status, _ = await post(rig.http, rig.url + "/slack/events", body, JSON, sign(body, timestamp=ts),
                                   signed=False)
            assert status == 401, ts
        status, _ = await post(rig.http, rig.url + "/slack/events", "[1]", JSON, signed=False)
        assert status == 401
        raw = b'{"type": "event_callback", "x": "\xff"}'
        async with rig.http.post(rig.url + "/slack/events", data=raw, headers={
                "Content-Type": JSON, "X-Slack-Request-Timestamp": str(int(time.time())),
                "X-Slack-Signature": "v0=" + "0" * 64}) as resp:
            assert resp.status == 400  # not UTF-8: it cannot even be verified


async def test_slack_private_metadata_that_is_not_ours_gets_an_answer(tmp_path):
    async with SlackRig(tmp_path) as rig:
        for meta in ("not json", "[1]", '{"ref": 5}', "[" * 5000):
            view = {"id": "V1", "type": "modal", "callback_id": "report_step", "private_metadata": meta,
                    "state": {"values": {"answer": {"value": {"type": "plain_text_input", "value": "x"}}}}}
            status, body = await rig.interact({"type": "view_submission", "user": {"id": "U1"}, "view": view})
            assert status == 200 and body["response_action"] == "update"
            assert "no longer in progress" in json.dumps(body["view"])
        for meta in ("not a number", ""):
            view = {"id": "V2", "type": "modal", "callback_id": "feedback_reason", "private_metadata": meta,
                    "state": {"values": {"reason": ["odd"]}}}
            status, _ = await rig.interact({"type": "view_submission", "user": {"id": "U1"}, "view": view})
            assert status == 200


async def test_slack_lone_surrogates_are_cleaned_before_the_store(tmp_path):
    async with SlackRig(tmp_path) as rig:
        status, _ = await rig.interact({"type": "block_actions", "user": {"id": "U1"}, "channel": {"id": "D1"},
                                        "message": {"ts": "3.3"},
                                        "actions": [{"action_id": "ask_comms:0", "type": "button",
                                                     "value": "question|Can I \ud800 friend an ex-patient?"}]})
        assert status == 200
        posted = await rig.fake.wait_for("chat.postMessage", lambda p: p["channel"] == "CCOMMS")
        assert "Can I \ufffd friend an ex-patient?" in rig.text_of(posted)
        told = await rig.fake.wait_for("chat.postEphemeral")
        assert "Sent to the comms team" in rig.text_of(told)
        # The report flow: a description with a lone surrogate is stored, with U+FFFD.
        await rig.command()
        view = (await rig.fake.wait_for("views.open"))["view"]
        for value in ({"type": "radio_buttons", "selected_option": {"value": "x"}},
                      {"type": "radio_buttons", "selected_option": {"value": "message"}},
                      {"type": "radio_buttons", "selected_option": {"value": "public"}},
                      {"type": "plain_text_input", "value": "yesterday 9pm"},
                      {"type": "plain_text_input", "value": "Sent \udc80 a wave"}):
            status, body = await rig.submit(view, value)
            assert status == 200 and body["response_action"] == "update"
            view = body["view"]
        assert rig.core.report.active("slack", "U1").fields["description"] == "Sent \ufffd a wave"


# -- Teams ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [
    b"{not json", b"[1]", b'"x"', b"5", b"{}", b'{"type": "message"}', b'{"type": "message", "text": "hi"}',
    b'{"type": 5}', b"[" * 50_000 + b"]" * 50_000, b'{"type": "message", "text": "\xff"}',
    b'{"type": "message", "from": "me", "conversation": {"id": "c"}, "recipient": {"id": "b"}, "serviceUrl": "u"}',
    b'{"type": "message", "from": {"id": "u"}, "conversation": {"id": "c"}, "recipient": {"id": "b"},'
    b' "serviceUrl": "http://127.0.0.1:9", "entities": "x"}',
    b'{"type": "message", "from": {"id": "u"}, "conversation": {"id": "c"}, "recipient": {"id": "b"},'
    b' "serviceUrl": "http://127.0.0.1:9", "timestamp": "not a time"}',
    # found by the fuzz suite: ids go into the connector's URLs and headers when the bot replies
    b'{"type": "message", "from": {"id": "u"}, "conversation": {"id": "<!channel>\\n"}, "recipient": {"id": "b"},'
    b' "serviceUrl": "http://127.0.0.1:9"}',
    b'{"type": "message", "from": {"id": "u"}, "conversation": {"id": "c"}, "recipient": {"id": "b"},'
    b' "serviceUrl": "not a url"}',
])
async def test_teams_malformed_activities_get_400(tmp_path, raw):
    async with TeamsRig(tmp_path / "t.db") as rig:
        async with rig.http.post(rig.url, data=raw, headers={"Content-Type": "application/json"}) as resp:
            assert resp.status == 400
        assert rig.fake.calls == []


async def test_teams_connector_refusing_the_reply_is_logged_not_a_500(tmp_path):
    async with TeamsRig(tmp_path / "t.db") as rig:
        from .teams_fake import activity
        body = activity(rig.fake.url + "nowhere/", "disclaimer wording?")  # the connector answers 404 there
        async with rig.http.post(rig.url, json=body) as resp:
            assert resp.status == 201
        assert rig.fake.calls == []


async def test_teams_card_action_with_a_forged_confirm_still_gets_a_card(tmp_path):
    """Found by the fuzz suite: a 'confirm' that is not text ended the turn with 'something went wrong'."""
    async with TeamsRig(tmp_path / "t.db") as rig:
        assert await rig.send("", value={"action": "ask_comms", "value": "draft|x", "confirm": {"a": [1]}}) == 201
        assert "Yes, send it" in rig.cards()[-1] and "went wrong" not in rig.cards()[-1]


async def test_teams_lone_surrogates_are_cleaned_at_the_edge(tmp_path):
    async with TeamsRig(tmp_path / "t.db") as rig:
        status = await rig.send("can I post this? my patient on ward 4 \ud800 said hi", name="Nurse \udfff One")
        assert status in (200, 201)
        card = rig.cards()[-1]
        assert "Don't post this" in card and "went wrong" not in card
        stored = rig.core.store.read_state(["ref:user:29:nurse"])["ref:user:29:nurse"][0]
        assert stored["user"]["name"] == "Nurse \ufffd One"


def test_incident_listings_cannot_drive_the_terminal(tmp_path, monkeypatch):
    from bot.app import build_core
    from bot.storage import SQLiteStore
    db = tmp_path / "i.db"
    core = build_core(ROOT / "app.yaml", store=SQLiteStore(db))
    esc = core.escalations.raise_("comms", "a question", surface="teams", user="29:x")
    import asyncio
    from handlers.escalation import Actor
    core.escalations.add_notifier("teams", _Anyone())
    asyncio.run(core.escalations.acknowledge(esc.id, Actor("teams", "29:alex", name="\x1b]0;owned\x07Alex\x1b[2J")))
    core.store.db.execute("UPDATE escalations SET last_error = ? WHERE id = ?", ["boom\x1b[31m\r", esc.id])
    monkeypatch.setenv("POLICYBOT_DATABASE", str(db))
    out = io.StringIO()
    assert main(["escalations", "list"], stdin=io.StringIO(), stdout=out) == 0
    assert "error: boom" in out.getvalue() and "\x1b" not in out.getvalue() and "\r" not in out.getvalue()
    out = io.StringIO()
    assert main(["incidents", "list"], stdin=io.StringIO(), stdout=out) == 0
    esc = core.store.get_escalation(esc.id)
    assert esc.acknowledged_by.startswith("\x1b")  # stored as given: the listing is what cleans it


class _Anyone:
    async def send(self, esc):
        return "m1"

    async def update(self, esc):
        pass

    async def tell_user(self, user, text):
        pass

    async def may_act(self, esc, actor):
        return True


@pytest.mark.parametrize("value", ["²", "99999999999999999999999", "-1", "1.5", " "])
async def test_escalation_buttons_with_a_value_that_is_no_row_id_do_nothing_quickly(tmp_path, value):
    """Found by the fuzz suite: str.isdigit accepts '²' (int() then fails) and int() accepts ids SQLite
    can't hold; the listener raised after ack(), so bolt stalled 3 s and answered 404."""
    async with SlackRig(tmp_path) as rig:
        status, _ = await rig.interact({"type": "block_actions", "user": {"id": "U1"}, "channel": {"id": "C1"},
                                        "actions": [{"action_id": "esc_ack:0", "value": value, "type": "button"}]})
        assert status == 200
    async with TeamsRig(tmp_path / "t.db") as rig:
        assert await rig.send("", value={"action": "esc_resolve", "value": value}) == 201
        assert not any("went wrong" in c for c in rig.cards())


async def test_slack_global_shortcut_to_the_message_check_is_acknowledged_and_ignored(tmp_path):
    async with SlackRig(tmp_path) as rig:
        for channel in ({}, {"id": "C1"}, None):
            status, _ = await rig.interact({"type": "shortcut", "callback_id": "check_message", "trigger_id": "t",
                                            "user": {"id": "U1"}, "channel": channel})
            assert status == 200
        await rig.slack.drain()
        assert [m for m, _ in rig.fake.calls if m != "auth.test"] == []


async def test_slack_message_action_without_a_channel_gets_400(tmp_path):
    async with SlackRig(tmp_path) as rig:
        status, _ = await rig.interact({"type": "message_action", "callback_id": "check_message", "user": {"id": "U1"},
                                        "channel": {}, "message": {"text": "x", "ts": "1.1"}})
        assert status == 400
