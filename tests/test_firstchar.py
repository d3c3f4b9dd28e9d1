"""The first-character hint on rule patterns (knowledge/checker/firstchar.py) must change no match: it only
lets the regex engine skip positions where no match can start."""
from __future__ import annotations

import re

import pytest

from benchmarks.adversarial import adversarial
from knowledge.checker.firstchar import first_class
from knowledge.checker.normalise import normalise
from knowledge.checker.rules import load_ruleset
from knowledge.training import load_corpus

WRAP = r"(?<![\w])(?:"   # how compile_pattern wraps every rule body


def _unhinted(p: re.Pattern) -> re.Pattern:
    at = p.pattern.find(WRAP)
    assert at > 0, f"no hint on {p.pattern[:60]}"
    return re.compile(p.pattern[at:], p.flags)


def test_every_rule_pattern_finds_the_same_matches_with_and_without_the_hint():
    ruleset = load_ruleset()
    patterns = [p for r in ruleset.rules for p in r.find + r.signals + r.near + r.unless] + list(ruleset.allow)
    hinted = [p for p in patterns if not p.pattern.startswith(WRAP)]
    assert len(hinted) > 0.9 * len(patterns)
    texts = [it["text"] for it in load_corpus()[::4]] + list(adversarial(2_000).values())
    texts += ["Ünïcödé Psycho", "£50 #nhs @ward 07700 900123", "ＰＳＹＣＨＯ", "it's 'psycho' — really", "K\u212aelvin ſchizo"]
    views = [v for t in texts for n in [normalise(t)] for v in (n.text, n.cased, n.leet)]
    for p in hinted:
        plain = _unhinted(p)
        for v in views:
            assert [m.span() for m in p.finditer(v)] == [m.span() for m in plain.finditer(v)], p.pattern[:80]


SAMPLE = "psnoaPSNOA019#@_ \t-'"


@pytest.mark.parametrize("pattern, flags, starts", [
    (r"psycho|nutter", 0, "pn"),
    (r"psycho|nutter", re.IGNORECASE, "pnPN"),
    (r"(?:so |a bit )?ocd", 0, "sao"),    # an optional prefix: its first letters and the next part's
    (r"\d{3} ?\d{3}", 0, "019"),
    (r"#\w+", 0, "#"),
])
def test_the_class_admits_exactly_the_characters_a_match_can_start_with(pattern, flags, starts):
    cls = first_class(pattern, flags)
    assert cls is not None
    admitted = {ch for ch in SAMPLE if re.fullmatch(f"[{cls}]", ch, flags)}
    assert admitted == set(starts)


@pytest.mark.parametrize("pattern, flags", [
    (r"x*", 0),          # can match the empty string
    (r".+ward", 0),      # starts with anything
    (r"[^a]bc", 0),      # a negated class
    (r"(?i:abc)", 0),    # scoped flags: a class read without them would miss "ABC"
])
def test_no_hint_where_the_first_character_cannot_be_bounded(pattern, flags):
    assert first_class(pattern, flags) is None
