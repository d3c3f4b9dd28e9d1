"""Hostile text for the property-based tests (Hypothesis), and the checks every surface's output must pass.

The text mixes what people paste and what attackers try: empty, NUL and control characters,
lone surrogates, right-to-left overrides, zero-width characters, emoji floods, Slack markup
(`<!channel>`, links, mentions), Markdown and Adaptive Card injection, FTS5 query syntax,
policy words that make the checker find things, and arbitrary Unicode. `BUDGET` bounds
each property's examples so the whole suite stays within minutes on two cores; set
POLICYBOT_FUZZ=deep for a long local run.
"""
from __future__ import annotations

import json
import os
import re
from collections import Counter

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# How many examples each property gets: (ci, deep). Deadlines are off: a shared CI machine's
# speed is not a property of the code (and tests never assert timings; benchmarks/ measure speed).
DEEP = os.environ.get("POLICYBOT_FUZZ") == "deep"
TALLY: Counter = Counter()  # hostile inputs tried, per property (reported at the end of the run)


def budget(ci: int, deep: int | None = None, **extra):
    return settings(max_examples=(deep or ci * 20) if DEEP else ci, deadline=None, derandomize=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture, HealthCheck.large_base_example],
                    **extra)


def tried(name: str) -> None:
    TALLY[name] += 1


MAX_FUZZ_CHARS = 2_000  # keeps each example fast; the 100k cases in test_fuzz.py cover length itself

SLACK_MARKUP = ["<!channel>", "<!here>", "<!everyone>", "<@U0BOSS>", "<#C0GENERAL|general>", "<!subteam^S0ALL>",
                "<https://evil.example/login|Re-enter your NHSmail password>", "<mailto:x@evil.example|mail>",
                "&lt;!channel&gt;", "&amp;lt;", "<!date^1392734382^{date}|x>", "*bold*", "_it_", "~s~", "`code`",
                "```", "> quote", ":joy:", "<@U1|boss>", "<tel:999|call>"]
MARKDOWN = ["**bold**", "[click](https://evil.example)", "![x](https://evil.example/x.png)", "<at>Everyone</at>",
            "# heading", "- item", "1. item", "| a | b |", "\\", "${user.name}", "{{template}}",
            '{"type": "Action.OpenUrl", "url": "https://evil.example"}', '"}]}, {"type": "TextBlock", "text": "x',
            "<script>alert(1)</script>", "<b>b</b>", "&#60;", "%00", "\\u0000"]
FTS5 = ['"', '""', "*", "^", "NEAR(a b, 2)", "AND", "OR", "NOT", "title:logo", "{title text}:x", "(", ")", "-x",
        "+", ":", "a*", '"unterminated', "NEAR(", "'", ";", "--", "/*", "%", "_"]
INVISIBLE = ["\x00", "\x01", "\x07", "\x08", "\x1b[31m", "\x1b]0;title\x07", "\x7f", "\x85", "\x9b", "\r", "\t",
             "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u202e", "\u202d", "\u2066", "\u2069", "\u061c",
             "\u00ad", "\ufffd", "\uffff", "\U000e0001", "\u0301\u0301\u0301"]
SURROGATES = ["\ud800", "\udfff", "\udc80", "\ud83d", "\ude00"]
EMOJI = ["😂", "👩‍👩‍👧‍👦", "🏳️‍🌈", "🇬🇧", "🙂" * 50, "😂" * 300, "\u2764\ufe0f", "🧑🏽‍⚕️"]
POLICY = ["my patient", "on ward 4", "bay 3", "committed suicide", "schizo", "loony bin", "NHS number 943 476 5919",
          "07700 900123", "nurse@example.nhs.uk", "B15 2TT", "DOB 01/02/1990", "Vote Tory", "the trust",
          "ex-patient added me on facebook", "journalist", "kill myself", "can I post this?", "/report-contact",
          "friend request", "disclaimer", "logo", "yes", "no", "back", "cancel", "help", "1", "7", "yesterday 9pm"]
FRAGMENTS = SLACK_MARKUP + MARKDOWN + FTS5 + INVISIBLE + SURROGATES + EMOJI + POLICY

any_char = st.characters(codec=None, exclude_categories=())  # every code point, lone surrogates included


@st.composite
def hostile_text(draw, max_chars: int = MAX_FUZZ_CHARS, surrogates: bool = True) -> str:
    pieces = draw(st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(any_char, max_size=20),
                                     st.text(st.sampled_from(" \n\t.,!?"), max_size=3)), max_size=40))
    text = draw(st.sampled_from(["", " ", "\n"])).join(pieces)
    if draw(st.booleans()):
        text = text * draw(st.integers(1, 20))  # floods
    text = text[:max_chars]
    if not surrogates:
        text = re.sub("[\ud800-\udfff]", "", text)
    return text


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                         st.floats(allow_nan=False, allow_infinity=False), hostile_text(max_chars=200))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(hostile_text(max_chars=20), inner, max_size=4), max_leaves=20)


def deep_json(depth: int) -> str:
    return "[" * depth + "]" * depth


# -- what every output must be ------------------------------------------------------------------------

LIVE_SLACK = re.compile(r"<[!@#]|<(?:https?|mailto|tel|slack):", re.IGNORECASE)
MD_SPECIAL = set("\\`*_[]()#+-!|>~<")


def utf8_json(payload) -> str:
    """The payload as the platforms receive it: it must be valid JSON that encodes to UTF-8."""
    dumped = json.dumps(payload, ensure_ascii=False, allow_nan=False)
    dumped.encode("utf-8")  # raises on a lone surrogate
    assert json.loads(dumped) == payload
    return dumped


def texts(node, key: str = "text") -> list[str]:
    out = []
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, dict):
            for k, v in n.items():
                if k == key and isinstance(v, str):
                    out.append(v)
                elif k not in ("value", "data", "private_metadata"):  # button payloads are never rendered
                    stack.append(v)
        elif isinstance(n, list):
            stack.extend(n)
    return out


def assert_slack_safe(blocks_or_view, fallback: str = "") -> None:
    """Nothing in what Slack renders can ping, mention or link: user text arrives escaped."""
    utf8_json(blocks_or_view)
    for text in texts(blocks_or_view) + [fallback]:
        live = LIVE_SLACK.search(text)
        assert live is None, f"live Slack markup {text[live.start():live.start() + 30]!r}"


def assert_teams_safe(card: dict) -> None:
    """Every TextBlock's Markdown characters are escaped: no links, mentions, emphasis or HTML from user text."""
    utf8_json(card)
    for text in texts(card):
        bare = set(re.sub(r"\\.", "", text, flags=re.DOTALL)) & MD_SPECIAL
        assert not bare, f"unescaped Markdown {sorted(bare)} in {text[:80]!r}"


# -- platform requests: Slack's and Teams' shapes, with any value in any place ------------------------------

def _maybe(strategy):
    """Mostly the shape the platform sends (so requests get past the first check), sometimes anything."""
    return st.one_of(strategy, strategy, strategy, json_values)


ids = st.one_of(st.sampled_from(["U1", "UCOMMS", "C1", "D1", "V1", "1.1", ""]), hostile_text(max_chars=30))
SLACK_ACTIONS = ["report_answer:0", "report_back:0", "report_cancel:1", "why:1", "feedback:0", "ask_comms:0",
                 "home_check:0", "home_report:1", "esc_ack:0", "esc_resolve:1", "unknown:0"]
NUMBERISH = st.sampled_from(["1", "2", "0", "-1", "1.5", "²", "١", "99999999999999999999999", " 1", ""])
slack_action = st.fixed_dictionaries({"action_id": _maybe(st.sampled_from(SLACK_ACTIONS))},
                                     optional={"value": st.one_of(NUMBERISH, _maybe(hostile_text(max_chars=300))),
                                               "type": _maybe(st.just("button")),
                                               "block_id": json_values, "selected_option": json_values})
slack_view = st.fixed_dictionaries({"callback_id": _maybe(st.sampled_from(["report_step", "feedback_reason",
                                                                            "check_draft", "report_done", "x"]))},
                                   optional={"id": ids, "type": _maybe(st.just("modal")),
                                             "private_metadata": _maybe(st.sampled_from(
                                                 ['{"ref": "INC-2026-0001", "step": "platform"}', "7", "", "x"])),
                                             "state": _maybe(st.fixed_dictionaries({"values": json_values}))})
_user = _maybe(st.fixed_dictionaries({"id": ids}, optional={"name": hostile_text(max_chars=40)}))
slack_payload = st.one_of(
    # what Slack sends for each kind of interaction, with hostile values in its fields ...
    st.fixed_dictionaries({"type": st.just("block_actions"), "user": _user, "actions": st.lists(slack_action, min_size=1,
                                                                                                 max_size=2)},
                          optional={"channel": _maybe(st.fixed_dictionaries({"id": ids})), "trigger_id": ids,
                                    "view": slack_view, "container": json_values,
                                    "message": _maybe(st.fixed_dictionaries({"ts": ids}))}),
    st.fixed_dictionaries({"type": st.sampled_from(["view_submission", "view_closed"]), "user": _user,
                           "view": slack_view}),
    st.fixed_dictionaries({"type": st.sampled_from(["message_action", "shortcut"]), "user": _user,
                           "callback_id": _maybe(st.sampled_from(["check_message", "x"]))},
                          optional={"channel": _maybe(st.fixed_dictionaries({"id": ids})), "trigger_id": ids,
                                    "message": _maybe(st.fixed_dictionaries({"text": hostile_text(max_chars=300),
                                                                             "ts": ids}))}),
    # ... and anything at all in the same places.
    st.fixed_dictionaries({"type": json_values}, optional={"user": json_values, "actions": json_values,
                                                           "view": json_values, "callback_id": json_values}))
slack_event = st.fixed_dictionaries(
    {"type": _maybe(st.sampled_from(["message", "app_mention", "app_home_opened", "reaction_added"]))},
    optional={"channel_type": _maybe(st.sampled_from(["im", "channel"])), "user": ids, "channel": ids, "ts": ids,
              "text": _maybe(hostile_text(max_chars=500)), "subtype": json_values, "bot_id": json_values,
              "thread_ts": ids, "tab": _maybe(st.sampled_from(["home", "messages"])), "message": json_values})
slack_command = st.fixed_dictionaries({"command": st.sampled_from(["/report-contact", "/other"])},
                                      optional={"text": hostile_text(max_chars=300, surrogates=False),
                                                "user_id": hostile_text(max_chars=20, surrogates=False),
                                                "trigger_id": st.text(max_size=10)})

TEAMS_ACTIONS = ["report_submit", "report_answer", "report_back", "report_cancel", "why", "feedback", "ask_comms",
                 "esc_ack", "esc_resolve", "dismiss", "unknown"]
teams_value = st.fixed_dictionaries({"action": _maybe(st.sampled_from(TEAMS_ACTIONS))},
                                    optional={"value": st.one_of(NUMBERISH, _maybe(hostile_text(max_chars=300))),
                                              "step": json_values,
                                              "answer": _maybe(hostile_text(max_chars=300)), "confirm": json_values,
                                              "confirmed": json_values})
teams_fields = st.fixed_dictionaries({}, optional={
    "text": _maybe(hostile_text(max_chars=500)), "value": _maybe(teams_value),
    "conversation": _maybe(st.fixed_dictionaries({"id": ids}, optional={
        "conversationType": _maybe(st.sampled_from(["personal", "channel", "groupChat"])), "tenantId": json_values})),
    "from": _maybe(st.fixed_dictionaries({"id": ids}, optional={"name": _maybe(hostile_text(max_chars=60))})),
    "entities": _maybe(st.lists(st.fixed_dictionaries({"type": _maybe(st.just("mention")), "mentioned": json_values,
                                                       "text": json_values}), max_size=2)),
    "type": _maybe(st.sampled_from(["message", "conversationUpdate", "invoke", "messageReaction", "typing"])),
    "replyToId": ids, "channelData": json_values, "attachments": json_values, "locale": json_values,
    "timestamp": json_values})
