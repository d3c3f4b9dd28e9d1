"""`policybot check` and the conversation's routing of drafts and questions."""
from __future__ import annotations

import io
import json

import pytest

from bot.cli import main
from handlers.conversation import Incoming
from handlers.intents import classify


def run(argv, stdin=""):
    out = io.StringIO()
    code = main(argv, stdin=io.StringIO(stdin), stdout=out)
    return code, out.getvalue()


def test_check_readable_marks_the_words():
    code, out = run(["check", "--account", "personal", "Monday mood: completely schizo"])
    assert code == 0 and ">>schizo<<" in out and "Revise before posting" in out and "frazzled" in out


def test_check_reads_stdin_with_dash():
    code, out = run(["check", "--account", "personal", "--json", "-"], "the lad in bay 3 thinks he's the king 😂")
    data = json.loads(out)
    assert data["verdict"] == "stop" and data["findings"][0]["category"] == "patient-identifiable"
    assert data["findings"][0]["citations"] and data["findings"][0]["quote"]


def test_check_jsonl_in_score_format():
    lines = "\n".join([json.dumps({"id": "a", "text": "Samaritans: 116 123. Free, any time", "account": "personal"}),
                       json.dumps({"id": "b", "text": "", "account": "personal"}),
                       "{broken", json.dumps({"id": "c", "text": "Vote Tory on Thursday!", "account": "personal"})])
    code, out = run(["check", "--jsonl"], lines)
    got = [json.loads(l) for l in out.splitlines()]
    assert [g.get("id") for g in got] == ["a", "b", None, "c"]
    assert got[0]["verdict"] == "ok" and got[1]["empty"] and "error" in got[2] and got[3]["verdict"] != "ok"
    assert "political-impartiality" in {f["category"] for f in got[3]["findings"]}


@pytest.mark.parametrize("text, kind", [
    ("an ex-patient added me on Facebook, what do I do?", "ask"),
    ("can I put the trust logo on my linkedin?", "ask"),
    ("disclaimer wording?", "ask"),
    ("can I post this? Off to the loony bin again", "check"),
    ("Is this ok to post: loving my new job!", "check"),
    ("Would you know how to spot the signs? Free training here: https://example.org #SuicidePrevention", "check"),
    ("So proud of our team today! #NHS", "check"),
    ("can I post this?", "check_prompt"),
    ("an ex-patient added me on facebook", "ask"),
    ("a service user's mum messaged me on instagram last night", "ask"),
    ("My mate tagged me in the best photo from the weekend #throwback https://x.example", "check"),
    ("/report-contact", "report"),
    ("", "help"),
])
def test_intent(text, kind):
    assert classify(text).kind == kind


def test_account_hint_from_the_request():
    assert classify("can I post this on the trust account: Open day Saturday!").account == "official"
    assert classify("check this for my personal account: loving life").account == "personal"


def test_conversation_prompts_for_a_draft_then_checks_it(core):
    conv = core.conversation
    first = conv.handle(Incoming("console", "u1", "can I post this?"))
    assert first[0].kind == "check_prompt"
    second = conv.handle(Incoming("console", "u1", "How do I book annual leave"))  # pasted as the draft
    assert second[0].kind.startswith("check_") and second[0].private
    third = conv.handle(Incoming("console", "u1", "How do I book annual leave"))
    assert third[0].kind == "not_found"


def test_draft_replies_are_private_and_stop_offers_comms(core):
    reply = core.conversation.handle(Incoming("console", "u2", "can I post this? My patient on Ward 4 is driving me mad lol"))[0]
    assert reply.private and reply.kind == "check_stop"
    assert [b.action for b in reply.buttons] == ["ask_comms", "why"]
