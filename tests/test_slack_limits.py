"""Block Kit within every documented limit, at the 40,000-character cap and with 20+ findings.

The adversarial drafts go through the real server once (DM, @mention, the message shortcut's
response_url, the "Can I post this?" modal, App Home); each test below then holds every
message and view the bot sent to one of Slack's limits, or to one of our promises about
long text: buttons never dropped, text split on line boundaries, every code fence
closed, no entity cut in half, user text verbatim.
"""
from __future__ import annotations

import asyncio
import re

import pytest

from bot.slack.blocks import MAX_BLOCKS, to_blocks
from handlers.check import CheckHandler
from knowledge.checker import MAX_DRAFT_CHARS, CheckResult, Finding

from .block_kit import width
from .test_slack import Rig, dm

MANY = ("the lad in bay 3 thinks the telly is talking to him lol. Ward 4 nutter committed suicide. "
        "Vote Tory on Thursday! psycho schizo nutcase lunatic loony. DM me your NHS number. My patient John Smith "
        "on Ward 9. Buy Herbalife 20% off. You're an idiot, scum, bigoted, people like you. fuck shite twat wanker "
        "bastard. A journalist called me. & <b> &amp; `code` ``` fence\n")
MANY_AT_CAP = (MANY * 200)[:MAX_DRAFT_CHARS]
SAFER_AT_CAP = ("Had a crazy day. My friend's uncle committed suicide last year.\n"
                + "Lovely walk by the canal & the <ducks> were out &amp; about, ```code``` too.\n" * 600)[:MAX_DRAFT_CHARS]
ENTITIES_AT_CAP = ("Had a crazy day. My friend's uncle committed suicide last year.\n" + "&" * MAX_DRAFT_CHARS)[:MAX_DRAFT_CHARS]
STOP_FOR_BUTTON = (MANY * 6)[:1900]  # the longest draft a button can carry to the comms team
DRAFTS = {"many": MANY, "many_at_cap": MANY_AT_CAP, "safer_at_cap": SAFER_AT_CAP, "entities_at_cap": ENTITIES_AT_CAP}
MESSAGE_METHODS = ("chat.postMessage", "chat.postEphemeral", "chat.update", "response_url")


def _modal(text: str) -> dict:
    return {"type": "view_submission", "user": {"id": "U1"}, "trigger_id": "t", "view": {
        "id": "VCHECK", "type": "modal", "callback_id": "check_draft", "state": {"values": {
            "draft": {"value": {"type": "plain_text_input", "value": text}},
            "account": {"value": {"type": "radio_buttons", "selected_option": {"value": "personal"}}}}}}}


async def _run_all(tmp_path) -> dict:
    """Send every adversarial input through every entry point; return what the bot sent, per input."""
    sent: dict[str, list[tuple[str, dict]]] = {}
    async with Rig(tmp_path) as rig:
        def mark():
            return len(rig.fake.calls)

        async def settle(before: int, method: str, count: int = 1):
            for _ in range(1500):
                if len([m for m, _ in rig.fake.calls[before:] if m == method]) >= count:
                    break
                await asyncio.sleep(0.01)
            await rig.slack.drain()
            return rig.fake.calls[before:]

        for n, (name, draft) in enumerate(DRAFTS.items()):
            before = mark()
            await rig.event(dm(draft, ts=f"{n}.1"), f"EvDM{n}")
            sent[f"dm:{name}"] = await settle(before, "chat.postMessage")
            before = mark()
            await rig.event({"type": "app_mention", "channel": "C1", "user": "U1", "ts": f"{n}.2",
                             "text": "<@UBOT> can I post this? " + draft}, f"EvMention{n}")
            sent[f"mention:{name}"] = await settle(before, "chat.postEphemeral")
            before = mark()
            await rig.interact({"type": "message_action", "callback_id": "check_message", "trigger_id": "t",
                                "user": {"id": "U1"}, "channel": {"id": "C9"},
                                "response_url": f"{rig.fake.url}/response/T1/{n}/x",
                                "message": {"text": draft, "ts": f"{n}.3"}})
            sent[f"shortcut:{name}"] = await settle(before, "response_url")
            before = mark()
            status, body = await rig.interact(_modal(draft))
            assert status == 200 and body["response_action"] == "update"
            sent[f"modal:{name}"] = [("views.update", {"view": body["view"]})] + await settle(before, "views.update")
        before = mark()
        await rig.event(dm(STOP_FOR_BUTTON, ts="9.1"), "EvButton")
        sent["dm:stop_for_button"] = await settle(before, "chat.postMessage")
        for i in range(12):  # App Home with a full list of recent reports
            rig.core.report.start("slack", f"U{i}")
        rig.core.report.start("slack", "U1")
        before = mark()
        await rig.event({"type": "app_home_opened", "user": "U1", "channel": "D1", "tab": "home"}, "EvHome")
        sent["home"] = await settle(before, "views.publish")
        sent["rejected"] = list(rig.fake.rejected)
    return sent


@pytest.fixture(scope="module")
def sent(tmp_path_factory):
    return asyncio.run(_run_all(tmp_path_factory.mktemp("limits")))


def _payloads(sent, methods=None):
    for name, calls in sent.items():
        for method, params in calls if name != "rejected" else []:
            if methods is None or method in methods:
                yield name, method, params


def _blocks(params) -> list[dict]:
    return params.get("blocks") if "blocks" in params else (params.get("view") or {}).get("blocks") or []


def _walk(node):
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


def _sections(params) -> list[str]:
    return [b["text"]["text"] for b in _blocks(params) if b.get("type") == "section" and "text" in b]


def test_every_entry_point_answered_every_input_and_slack_accepted_it_all(sent):
    assert sent.pop("rejected") == []
    for name, calls in sent.items():
        assert any(m in MESSAGE_METHODS + ("views.update", "views.publish") for m, _ in calls), name


def test_no_message_has_more_than_50_blocks(sent):
    counts = {name: len(_blocks(p)) for name, _, p in _payloads(sent, MESSAGE_METHODS)}
    assert counts and max(counts.values()) <= 50, counts


def test_no_modal_or_home_tab_has_more_than_100_blocks(sent):
    counts = {name: len(_blocks(p)) for name, m, p in _payloads(sent) if m.startswith("views.")}
    assert counts and max(counts.values()) <= 100, counts
    assert max(counts.values()) > 50  # the modal uses the room it has, not the message limit


def test_no_section_text_over_3000_characters(sent):
    longest = max(width(t) for _, _, p in _payloads(sent) for t in _sections(p))
    assert 2500 < longest <= 3000  # long text fills sections to the limit, never past it


def test_no_button_value_over_2000_characters(sent):
    values = [(n, width(el["value"])) for n, _, p in _payloads(sent) for el in _walk(_blocks(p))
              if el.get("type") == "button" and "value" in el]
    assert values and max(v for _, v in values) <= 2000
    longest = [v for n, v in values if n == "dm:stop_for_button"]
    assert max(longest) > 1800  # "Ask comms to review" carries the whole (long) draft, within the limit


def test_no_action_id_over_255_characters(sent):
    ids = [el["action_id"] for _, _, p in _payloads(sent) for el in _walk(_blocks(p)) if "action_id" in el]
    assert ids and max(map(len, ids)) <= 255


def test_modal_titles_and_labels_within_24_characters(sent):
    views = [p["view"] for _, m, p in _payloads(sent) if m.startswith("views.") and p["view"].get("type") == "modal"]
    assert views
    for view in views:
        for field in ("title", "submit", "close"):
            if field in view:
                assert 0 < width(view[field]["text"]) <= 24, (field, view[field])


def test_buttons_are_never_dropped(sent):
    for name, _, params in _payloads(sent, MESSAGE_METHODS):
        if not name.split(":")[0] in ("dm", "mention", "shortcut"):
            continue
        buttons = [el["text"]["text"] for el in _walk(_blocks(params)) if el.get("type") == "button"]
        assert "Why?" in buttons, (name, buttons)
        if name.endswith((":many", ":stop_for_button")):  # a stop draft of up to 1,900 characters can go to comms
            assert "Ask comms to review" in buttons, (name, buttons)


def test_twenty_plus_findings_all_shown_or_counted(sent):
    for name in ("dm:many", "dm:many_at_cap"):
        params = [p for m, p in sent[name] if m == "chat.postMessage"][0]
        shown = [t for t in _sections(params) if t.startswith("*") and "\nPolicy: " in t]
        summary = [t for t in _sections(params) if "more finding" in t]
        assert len(shown) >= 20, name
        assert not summary  # one section per finding: 20+ findings fit in 50 blocks


def test_long_text_is_split_on_line_boundaries_and_loses_nothing(sent):
    params = [p for m, p in sent["dm:safer_at_cap"] if m == "chat.postMessage"][0]
    pieces = [t for t in _sections(params) if t.startswith("```")]
    assert len(pieces) >= 10
    for piece in pieces[:-1]:
        assert piece.endswith("\n```"), piece[-40:]  # each piece ends at the end of a line
    body = "".join(p[3:-3] for p in pieces)
    assert body.count("Lovely walk by the canal") == SAFER_AT_CAP.count("Lovely walk by the canal")


def test_every_code_fence_is_closed_in_its_own_section(sent):
    for name, _, params in _payloads(sent):
        for text in _sections(params):
            assert text.count("```") % 2 == 0, (name, text[:60], text[-60:])


def test_no_html_entity_is_cut(sent):
    for name, _, params in _payloads(sent):
        for text in _sections(params) + [params.get("text") or ""]:
            assert not re.search(r"&(?!amp;|lt;|gt;)", text), (name, text[-40:])


def test_a_safer_version_too_big_for_one_message_is_shortened_and_says_so(sent):
    params = [p for m, p in sent["dm:entities_at_cap"] if m == "chat.postMessage"][0]
    assert len(_blocks(params)) <= MAX_BLOCKS
    assert any("Shortened" in t for t in _sections(params))
    assert any(el.get("type") == "button" for el in _walk(_blocks(params)))


def test_user_text_is_verbatim_so_slack_links_nothing(sent):
    texts = [el for _, _, p in _payloads(sent) for el in _walk(_blocks(p)) if el.get("type") == "mrkdwn"]
    assert texts and all(el.get("verbatim") is True for el in texts)


def test_findings_past_the_block_limit_are_summarised_and_the_buttons_stay(core):
    """More findings than any real draft gives today: the extra ones are counted, not silently lost."""
    findings = [Finding("stigmatising-language" if i % 2 else "offensive-content", f"r{i}", "stop", i, i + 1,
                        "x", "A message.", ("bsmhft 3.1",), advice="Remove it.") for i in range(70)]
    result = CheckResult("stop", findings, "personal", None, 500, 500, draft="short draft")
    reply = CheckHandler(core.check.checker, core.config.trust).render(result)
    blocks = to_blocks(reply)
    assert len(blocks) == MAX_BLOCKS
    assert blocks[-1]["type"] == "actions"
    assert [e["text"]["text"] for e in blocks[-1]["elements"]] == ["Ask comms to review", "Why?"]
    texts = _sections({"blocks": blocks})
    summary = [t for t in texts if "more findings" in t]
    assert len(summary) == 1
    shown = sum(1 for t in texts if t.startswith(("*Offensive", "*Stigmatising")))
    dropped = int(re.search(r"and (\d+) more findings", summary[0]).group(1))
    assert shown + dropped == 70
    assert "Offensive content (" in summary[0] and "Stigmatising language (" in summary[0]
