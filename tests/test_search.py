"""Policy search: paraphrases and typos find the right clause; uncovered questions are not found."""
from __future__ import annotations

import json

import pytest

from .conftest import ROOT


def cites(index, question, n=3):
    r = index.search(question)
    return [h.citation for h in r.hits[:n]] if r.found else []


def covers(got, want):
    g_src, _, g_sec = got.partition(" ")
    w_src, _, w_sec = want.partition(" ")
    return g_src == w_src and (g_sec == w_sec or g_sec.startswith(w_sec + "."))


@pytest.mark.parametrize("question, want", [
    ("a former client wants to be friends with me on instagram", ["bsmhft 3.2.1.unsolicited", "bsmhft 3.1"]),
    ("ex-patient added me on fb", ["bsmhft 3.2.1.unsolicited", "bsmhft 3.1"]),
    ("can i put the trust logo on my linkedin banner", ["bsmhft 3.1"]),
    ("who do I tell if someone is harassing me online because of my job", ["hpft A2", "bsmhft 3.2.2"]),
    ("is whatsapp ok for sending patient info", ["hpft 6.whatsapp"]),
    ("how long can a video on the hpft youtube be", ["hpft 6.youtube"]),
    ("does the policy apply when I'm on annual leave and posting from home", ["hpft 2", "bsmhft 3.1"]),
    ("we want to make an official facebook page for our ward", ["bsmhft 3.6", "bsmhft 3.7", "hpft 6"]),
])
def test_paraphrases_find_the_clause(index, question, want):
    """The top answer is one of the clauses that answers the question."""
    got = cites(index, question)
    assert got and any(covers(got[0], w) for w in want), got


@pytest.mark.parametrize("question, want", [
    ("can i give a linkedin reccomendation", "bsmhft 3.4"),
    ("what are the rules on whatsap groups for patient detials", "hpft 6.whatsapp"),
    ("discliamer wording for my bio", "bsmhft 3.1"),
])
def test_typos_are_corrected(index, question, want):
    r = index.search(question)
    assert r.corrections, "expected a spelling correction"
    assert any(covers(c, want) for c in cites(index, question))


def test_named_source_is_preferred(index):
    """The same topic exists in both trusts' policies; naming one picks it."""
    assert cites(index, "what does the HPFT policy say about disclaimers")[0].startswith("hpft ")
    assert cites(index, "what does the BSMHFT policy say about disclaimers")[0].startswith("bsmhft ")


def test_related_sections_are_distinct(index):
    got = cites(index, "an ex patient sent me a friend request")
    assert len(got) == len(set(got)) >= 2


@pytest.mark.parametrize("question", [
    "how do I book annual leave on the rota system",
    "what is the procedure for a fire drill",
    "how do I order printer toner",
    "when does the staff car park close",
    "can I change my pension contributions",
])
def test_questions_no_policy_covers_are_not_found(index, question):
    assert not index.search(question).found


def test_heldout_questions_meet_the_bar(index):
    """Questions written apart from the tuning set: a guard against overfitting the dev set."""
    items = [json.loads(l) for l in (ROOT / "tests" / "data" / "questions_heldout.jsonl").read_text().splitlines() if l]
    covered = [i for i in items if i["expect"]]
    top3 = sum(any(covers(c, w) for c in cites(index, i["question"]) for w in i["expect"]) for i in covered)
    out = [i for i in items if not i["expect"]]
    assert top3 / len(covered) >= 0.8
    assert all(not index.search(i["question"]).found for i in out)


@pytest.mark.parametrize("question", [
    "AND OR NOT NEAR(a b) * \"unbalanced ( quote",
    "what's the policy on 'quotes' and \"doubles\" - hyphens? col:umn ^caret",
    "social\x00media\x07 po\x1bst\u200b policy\u202e",
    "🙂🙂🙂 📸 🔥",
    "Политика в социальных сетях 社交媒体政策 سياسة وسائل التواصل",
    "a" * 50_000,
    "disclaimer " * 2000,
])
def test_hostile_input_never_raises(index, question):
    r = index.search(question)
    assert isinstance(r.found, bool)


def test_long_question_is_truncated_and_says_so(index):
    r = index.search("what disclaimer do I need on my personal blog? " + "blah " * 2000)
    assert r.truncated and r.found


def test_empty_question_is_marked_empty(index):
    for q in ("", "   ", "\n\t"):
        assert index.search(q).empty
