"""Property-based tests with hostile text: the checker, search, the report flow, JSON Lines and the HTTP edges.

Each property says what a user (or an attacker) would notice: no exception escapes, nothing
from user text becomes a live `<!channel>`, `<!here>`, mention or link on Slack or Markdown on
Teams, every output is valid UTF-8 JSON, and no request gets a 500. Budgets are in fuzz.py.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import io
import itertools
import json
import logging
import time
import urllib.parse
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.cli import jsonl
from bot.slack import modal
from bot.slack.blocks import fallback, to_blocks
from bot.slack.notifier import SlackNotifier
from bot.storage import SQLiteStore
from bot.teams.cards import escalation_card, to_card
from handlers.conversation import Conversation, Incoming
from handlers.escalation import EscalationService
from handlers.report_contact import STEPS, ReportContactFlow
from handlers.triage import Triage
from handlers.untrusted import scrub_surrogates
from knowledge.checker import MAX_DRAFT_CHARS
from knowledge.search import MAX_QUERY_CHARS

from .fuzz import (FRAGMENTS, assert_slack_safe, assert_teams_safe, budget, deep_json, hostile_text, json_values,
                   slack_command, slack_event, slack_payload, teams_fields, tried, utf8_json)
from .slack_fake import event_body, payload_body, post
from .test_slack import FORM, JSON, Rig as SlackRig, dm
from .teams_fake import activity
from .test_teams import Rig as TeamsRig

NOW = dt.datetime(2026, 11, 21, 14, 30, tzinfo=ZoneInfo("Europe/London"))
ACCOUNTS = st.sampled_from(["personal", "official", "unknown", "", "PERSONAL", "\ud800"])


def assert_reply_safe(reply) -> None:
    assert_slack_safe(to_blocks(reply), fallback(reply))
    assert_teams_safe(to_card(reply))
    if reply.kind.startswith("report_"):
        assert_slack_safe(modal.view(reply))


# -- the checker ---------------------------------------------------------------------------------------


@budget(300)
@given(text=hostile_text(), account=ACCOUNTS)
def test_checker_on_hostile_text(core, text, account):
    tried("checker")
    result = core.check.check(text, account)
    assert result.verdict in ("ok", "revise", "stop") or (result.empty and result.verdict is None)
    assert result.account in ("personal", "official", "unknown")
    assert result.total_chars == len(text) and result.checked_chars == min(len(text), MAX_DRAFT_CHARS)
    for f in result.findings:
        assert 0 <= f.start <= f.end <= result.checked_chars and f.quote == text[f.start:f.end]
    json.loads(json.dumps(result.as_dict(), allow_nan=False))


@budget(200)
@given(text=hostile_text(), account=ACCOUNTS)
def test_check_replies_render_safely_everywhere(core, text, account):
    """What each surface shows for a draft (after the edge has replaced lone surrogates)."""
    tried("check reply")
    assert_reply_safe(core.check.reply(scrub_surrogates(text), scrub_surrogates(account)))


# -- search --------------------------------------------------------------------------------------------


@budget(300)
@given(text=st.one_of(hostile_text(), st.lists(st.sampled_from(FRAGMENTS), max_size=30).map(" ".join)))
def test_search_on_hostile_text(core, index, text):
    tried("search")
    result = index.search(text)
    assert len(result.hits) <= 3 and all(h.score == h.score for h in result.hits)  # no NaN scores
    assert result.truncated == (len(text) > MAX_QUERY_CHARS)
    reply = core.ask.answer(scrub_surrogates(text))
    assert reply.kind in ("answer", "not_found", "help")
    assert_reply_safe(reply)
    utf8_json(reply.data)


# -- the report flow ---------------------------------------------------------------------------------


def _answers_for(step_index: int) -> list[str]:
    step = STEPS[step_index % len(STEPS)]
    return [c.label for c in step.choices] or ["yes", "no", "yesterday 9pm", "Priya Shah"]


@st.composite
def report_session(draw) -> list[str]:
    """A report from start to (maybe) finish: mostly sensible answers, with hostile ones, commands and restarts."""
    lines = [draw(st.sampled_from(["/report-contact", "report contact", "/report-contact " + draw(hostile_text(200))]))]
    for i in range(draw(st.integers(1, 14))):
        lines.append(draw(st.one_of(
            st.sampled_from(_answers_for(i)), st.sampled_from(["back", "cancel", "help", "/report-contact", ""]),
            hostile_text(max_chars=1200))))
    return lines


@pytest.fixture(scope="module")
def triage(core):
    return Triage.load(core.config.trust)


@budget(60)
@given(lines=report_session())
def test_report_flow_on_hostile_answers(core, triage, lines):
    tried("report flow")
    store = SQLiteStore(":memory:")
    escalations = EscalationService(store)
    report = ReportContactFlow(store, triage, escalations, core.config.trust, clock=lambda: NOW)
    conv = Conversation(core.config.trust, core.ask, core.check, report, store)
    for n, line in enumerate(lines):
        for reply in conv.handle(Incoming("fuzz", "nurse", line, event_id=f"ev{n}")):
            assert_reply_safe(reply)
    for inc in store.list_incidents():
        assert inc.status in ("in_progress", "completed", "cancelled")
        utf8_json({"fields": inc.fields, "answers": [vars(a) for a in inc.answers], "flags": inc.risk_flags})
        if inc.status == "completed":
            assert set(inc.fields) == {s.name for s in STEPS}
    notifier = SlackNotifier(client=None, comms_channel="CCOMMS")
    for esc in store.escalations():
        assert_slack_safe(notifier.blocks(esc), notifier._text(esc))
        assert_teams_safe(escalation_card(esc))
    store.close()


# -- JSON Lines ------------------------------------------------------------------------------------------


def _line(value) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


@budget(100)
@given(lines=st.lists(st.one_of(
    st.builds(lambda i, t: _line({"id": i, "text": t}), st.one_of(st.none(), st.integers(), hostile_text(50)),
              hostile_text()),
    json_values.map(_line), st.binary(max_size=200), st.integers(1, 3000).map(lambda d: deep_json(d).encode())),
    min_size=1, max_size=8))
def test_jsonl_gives_each_line_one_valid_answer(core, lines):
    tried("jsonl")
    lines = [line.replace(b"\n", b" ").replace(b"\r", b" ") for line in lines]  # one input line each
    stdin = io.TextIOWrapper(io.BytesIO(b"\n".join(lines) + b"\n"), encoding="utf-8")
    out_bytes = io.BytesIO()
    stdout = io.TextIOWrapper(out_bytes, encoding="utf-8", errors="strict", write_through=True)
    jsonl(stdin, stdout, "text", lambda item: core.check.check(item["text"], str(item.get("account") or "unknown")).as_dict())
    answers = out_bytes.getvalue().decode("utf-8").splitlines()
    assert len(answers) == sum(1 for line in lines if line.decode("utf-8", "replace").strip())
    for answer in answers:
        obj = json.loads(answer)
        assert "error" in obj or "verdict" in obj


# -- the HTTP edges: our aiohttp server with the real bolt and botbuilder stacks, fake platforms ------------


class Edges:
    """Both rigs on one event loop of their own, so Hypothesis (which is synchronous) can drive them."""

    def __init__(self, tmp_path):
        self.loop = asyncio.new_event_loop()
        self.slack = SlackRig(tmp_path / "slack")
        self.teams = TeamsRig(tmp_path / "teams.db")
        (tmp_path / "slack").mkdir()
        self.run(self.slack.__aenter__())
        self.run(self.teams.__aenter__())
        self.ids = itertools.count(1)
        self.errors: list[logging.LogRecord] = []
        self.watch = _Errors(self.errors)
        for name in ("slack_bolt", "policybot"):
            logging.getLogger(name).addHandler(self.watch)

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    def close(self):
        for name in ("slack_bolt", "policybot"):
            logging.getLogger(name).removeHandler(self.watch)
        self.run(self.slack.__aexit__(None, None, None))
        self.run(self.teams.__aexit__(None, None, None))
        self.loop.close()


class _Errors(logging.Handler):
    def __init__(self, into):
        super().__init__(logging.ERROR)
        self.into = into

    def emit(self, record):
        self.into.append(record)


@pytest.fixture(scope="module")
def edges(tmp_path_factory):
    e = Edges(tmp_path_factory.mktemp("edges"))
    yield e
    e.close()


@budget(60)
@given(text=hostile_text(), channel=st.sampled_from(["im", "mention"]))
def test_slack_messages_with_hostile_text(edges, text, channel):
    tried("slack message")
    rig, n = edges.slack, next(edges.ids)
    user, ts = f"UF{n}", f"{n}.5"
    if channel == "im":
        event = dm(text, ts=ts, user=user)
    else:
        event = {"type": "app_mention", "channel": "CFUZZ", "user": user, "ts": ts, "text": "<@UBOT> " + text}
    errors = len(edges.errors)
    status, _ = edges.run(rig.event(event, f"EvF{n}"))
    assert status == 200
    reply = edges.run(_slack_reply(rig, ts, user))
    assert_slack_safe(reply.get("blocks") or [], reply.get("text", ""))
    edges.run(rig.slack.drain())
    assert edges.errors[errors:] == [], [r.getMessage() for r in edges.errors[errors:]]


async def _slack_reply(rig, ts: str, user: str, timeout: float = 10.0) -> dict:
    """The bot's reply to one message: in its thread, or privately to its sender."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for method, params in rig.fake.calls:
            if method in ("chat.postMessage", "chat.postEphemeral") and (
                    params.get("thread_ts") == ts or (method == "chat.postEphemeral" and params.get("user") == user)):
                return params
        await asyncio.sleep(0.01)
    raise AssertionError(f"no reply to {ts}")


def _slack_body(kind: str, value) -> tuple[str, str]:
    if kind == "event":
        return event_body(value, "EvShape"), JSON
    if kind == "payload":
        return payload_body(value), FORM
    if kind == "command":
        return urllib.parse.urlencode(value), FORM
    if kind == "raw":
        return json.dumps(value), JSON
    return deep_json(2000 + len(json.dumps(value))), JSON


@budget(200)
@given(request=st.one_of(st.tuples(st.just("event"), slack_event), st.tuples(st.just("payload"), slack_payload),
                         st.tuples(st.just("command"), slack_command), st.tuples(st.just("raw"), json_values),
                         st.tuples(st.just("deep"), json_values)))
def test_slack_requests_of_any_shape_never_get_a_500(edges, request):
    tried("slack shape")
    body, content_type = _slack_body(*request)
    errors = len(edges.errors)
    status, _ = edges.run(post(edges.slack.http, edges.slack.url + "/slack/events", scrub_surrogates(body),
                               content_type))
    edges.run(edges.slack.slack.drain())
    assert status in (200, 400, 401, 404)  # 404: a request no listener is for (bolt's answer)
    # Whatever passes the edge is handled without an exception (after ack(), bolt would stall 3 s and say 404).
    assert edges.errors[errors:] == [], [r.getMessage() for r in edges.errors[errors:]]


@budget(150)
@given(timestamp=st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=20),
       signature=st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=80))
def test_slack_unsigned_requests_get_401(edges, timestamp, signature):
    tried("slack auth")
    headers = {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": signature}
    status, _ = edges.run(post(edges.slack.http, edges.slack.url + "/slack/events", event_body(dm("hi"), "EvA"),
                               JSON, headers, signed=False))
    assert status == 401


@budget(60)
@given(text=hostile_text(), name=hostile_text(max_chars=60))
def test_teams_messages_with_hostile_text(edges, text, name):
    tried("teams message")
    rig, n = edges.teams, next(edges.ids)
    before = len(rig.fake.calls)
    status = edges.run(rig.send(text, name=name, user=f"29:fuzz{n}", conv=f"a:fuzz-{n}"))
    assert status in (200, 201)
    sent = rig.fake.calls[before:]
    assert sent, "every message gets a reply"
    for _, _, act in sent:
        utf8_json(act)
        for att in act.get("attachments") or []:
            assert_teams_safe(att["content"])
        assert "went wrong" not in (act.get("text") or "")


@budget(200)
@given(fields=teams_fields, raw=st.one_of(st.none(), st.none(), json_values))
def test_teams_activities_of_any_shape_never_get_a_500(edges, fields, raw):
    tried("teams shape")
    rig, n = edges.teams, next(edges.ids)
    body = raw if raw is not None else {**activity(rig.fake.url, "hi", user=f"29:s{n}", conv=f"a:s-{n}"), **fields}

    async def send():
        async with rig.http.post(rig.url, data=json.dumps(body).encode("utf-8", "surrogatepass"),
                                 headers={"Content-Type": "application/json"}) as resp:
            return resp.status
    errors = len(edges.errors)
    status = edges.run(send())
    if raw is None and not {"conversation", "recipient", "replyToId"} & set(fields):
        # Ids the (fake) connector can route: the turn itself must not fail. (With hostile ids in the reply's
        # URL the connector refuses the reply, which is logged, and the request still gets no 500.)
        assert [r.getMessage() for r in edges.errors[errors:] if "turn failed" in r.getMessage()] == []
    # botbuilder answers an invoke it has no handler for with 501 Not Implemented, by design.
    assert status in (200, 201, 400, 401, 415) or (status == 501 and isinstance(body, dict) and body.get("type") == "invoke")


# -- the 100,000-character cases, behind the checker's 40,000-character cap -----------------------------

FILLER = "Café 😂 <!channel> [x](https://evil.example) \u200b NEAR(a b) \x1b[31m ** "


def test_a_100k_draft_is_checked_up_to_the_cap_and_says_so(core):
    text = (FILLER * 3000)[:100_000]
    result = core.check.check(text, "personal")
    assert result.truncated and result.checked_chars == MAX_DRAFT_CHARS and result.total_chars == 100_000
    reply = core.check.render(result)
    assert "I checked the first 40,000" in fallback(reply)
    assert_reply_safe(core.check.reply(text, "personal"))


def test_a_100k_draft_of_repeated_findings_is_checked_up_to_the_cap(core):
    """Was minutes before the checker became linear-time (10,000 characters of 'bay 3 ' took 12 s)."""
    text = ("my patient in bay 3 " * 6000)[:100_000]
    result = core.check.check(text, "personal")
    assert result.truncated and result.checked_chars == MAX_DRAFT_CHARS and result.verdict == "stop"
    assert_reply_safe(core.check.render(result))


def test_a_100k_question_is_searched_up_to_its_cap(core):
    reply = core.ask.answer(("ex-patient facebook friend request " + FILLER) * 1500)
    assert reply.kind == "answer" and "searched its first 4,000" in fallback(reply)


def test_100k_messages_over_the_edges(edges):
    text = (FILLER * 3000)[:100_000]
    rig = edges.slack
    status, _ = edges.run(rig.event(dm("can I post this? " + text, ts="100000.1", user="UBIG"), "EvBig"))
    assert status == 200
    reply = edges.run(_slack_reply(rig, "100000.1", "UBIG", timeout=60))
    assert_slack_safe(reply["blocks"], reply["text"])
    assert edges.run(edges.teams.send("can I post this? " + text, user="29:big", conv="a:big")) in (200, 201)
