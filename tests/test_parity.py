"""One conversation, three surfaces: the console, Slack and Teams show the same content."""
from __future__ import annotations

import asyncio
import html
import io
import re

import pytest

from bot.app import build_core
from bot.console import run_console
from bot.storage import SQLiteStore
from handlers.conversation import Incoming
from handlers.replies import Actions, Bullets, Copyable, Heading, Notice, Quote, Text

from . import test_slack, test_teams
from .conftest import ROOT

MESSAGES = [
    "an ex-patient added me on Facebook, what do I do?",
    "can I post this? Honestly our trust's new rota policy is a shambles",
    "can I post this? the lad in bay 3 thinks he's the king lol",
    "how do I book annual leave",
    # routed by what they are: a draft phrased as a question, a question without "?", a clinical incident,
    # an unclear one (both, in one reply), a question carrying an NHS number
    "Anyone else think our matron is useless?",
    "wheres the staff car parking at the hospital and how much is a permit",
    "my patient in bed 4 tried to hang himself, what should i do",
    "Anyone know if the trust lets us do sponsored posts?",
    "a patient gave me her NHS number 943 476 5919 over instagram what do i do with it",
]
KINDS = {"Anyone else think our matron is useless?": "check_stop",
         "wheres the staff car parking at the hospital and how much is a permit": "not_found",
         "my patient in bed 4 tried to hang himself, what should i do": "risk",
         "Anyone know if the trust lets us do sponsored posts?": "both"}


def facts(reply) -> list[str]:
    """The lines of a neutral reply that every surface must show."""
    out = []
    for blk in reply.blocks:
        if isinstance(blk, (Text, Heading, Notice)):
            out.append(blk.text)
        elif isinstance(blk, Quote):
            out += [blk.text.splitlines()[0][:80], blk.citation]
        elif isinstance(blk, Bullets):
            out += list(blk.items)
        elif isinstance(blk, Copyable):
            out.append(blk.text)
        elif isinstance(blk, Actions):
            out += [b.label for b in blk.buttons]
    return out


def norm(text: str) -> str:
    text = html.unescape(text).replace("*", "")
    text = re.sub(r"(?m)^\s*(?:>|\||-|•|bot>)\s?", "", text)
    return " ".join(text.split())


def assert_shows(surface: str, shown: str, reply) -> None:
    seen = norm(shown)
    missing = [f for f in facts(reply) if norm(f) not in seen]
    assert not missing, f"{surface} is missing {missing}"


@pytest.mark.parametrize("message", MESSAGES)
async def test_same_conversation_same_content_everywhere(tmp_path, message):
    async with test_slack.Rig(tmp_path / "slack") as slack_rig, test_teams.Rig(tmp_path / "teams.db") as teams_rig:
        expected = slack_rig.core.conversation.handle(Incoming("reference", "someone", message))[0]
        assert expected.kind == KINDS.get(message, expected.kind)
        console_core = build_core(ROOT / "app.yaml", store=SQLiteStore(tmp_path / "console.db"))
        out = io.StringIO()
        await asyncio.to_thread(run_console, console_core, io.StringIO(message + "\n"), out, "console-user")
        assert_shows("console", out.getvalue(), expected)

        await slack_rig.event(test_slack.dm(message, ts="42.0"), "EvParity")
        posted = await slack_rig.fake.wait_for("chat.postMessage", lambda p: p.get("thread_ts") == "42.0")
        assert_shows("slack", slack_rig.text_of(posted), expected)

        await teams_rig.send(message)
        assert_shows("teams", teams_rig.cards()[-1], expected)


async def test_a_follow_up_reads_the_same_everywhere(tmp_path):
    """Slack: a reply in the bot's thread; Teams and the console: the next message, a moment later."""
    first, follow = "can I accept a friend request from a patient on Facebook?", "what about Instagram?"
    async with test_slack.Rig(tmp_path / "slack") as slack_rig, test_teams.Rig(tmp_path / "teams.db") as teams_rig:
        ref = slack_rig.core.conversation
        ref.handle(Incoming("reference", "someone", first))
        expected = ref.handle(Incoming("reference", "someone", follow))[0]
        assert "follow-up to your last question" in expected.plain_text()

        console_core = build_core(ROOT / "app.yaml", store=SQLiteStore(tmp_path / "console.db"))
        out = io.StringIO()
        await asyncio.to_thread(run_console, console_core, io.StringIO(f"{first}\n{follow}\n"), out, "console-user")
        assert_shows("console", out.getvalue().split("bot>")[-1], expected)

        await slack_rig.event(test_slack.dm(first, ts="50.0"), "EvQ1")
        await slack_rig.fake.wait_for("chat.postMessage", lambda p: p.get("thread_ts") == "50.0")
        await slack_rig.event({**test_slack.dm(follow, ts="51.0"), "thread_ts": "50.0"}, "EvQ2")
        posted = await slack_rig.fake.wait_for("chat.postMessage", lambda p: p.get("thread_ts") == "50.0"
                                               and "follow-up" in slack_rig.text_of(p))
        assert_shows("slack", slack_rig.text_of(posted), expected)
        # a new top-level message is a new conversation on Slack: no context from another thread
        await slack_rig.event(test_slack.dm(follow, ts="52.0"), "EvQ3")
        fresh = await slack_rig.fake.wait_for("chat.postMessage", lambda p: p.get("thread_ts") == "52.0")
        assert "follow-up" not in slack_rig.text_of(fresh)

        await teams_rig.send(first)
        await teams_rig.send(follow)
        assert_shows("teams", teams_rig.cards()[-1], expected)
