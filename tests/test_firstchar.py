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


def _unhinted(p: re.Pattern) -> re.Pattern:
    return re.compile(re.sub(r"^\(\?=\[(?:\\.|[^\]\\])*\]\)", "", p.pattern), p.flags)


def test_every_rule_pattern_finds_the_same_matches_with_and_without_the_hint():
    ruleset = load_ruleset()
    patterns = [p for r in ruleset.rules for p in r.find + r.signals + r.near + r.unless]
    assert sum(p.pattern.startswith("(?=[") for p in patterns) > 0.9 * len(patterns)
    texts = [it["text"] for it in load_corpus()[::3]] + list(adversarial(2_000).values())
    texts += ["Ünïcödé Psycho", "£50 #nhs @ward 07700 900123", "ＰＳＹＣＨＯ", "it's 'psycho' — really"]
    views = [v for t in texts for n in [normalise(t)] for v in (n.text, n.cased, n.leet)]
    for p in patterns:
        plain = _unhinted(p)
        for v in views:
            assert [m.span() for m in p.finditer(v)] == [m.span() for m in plain.finditer(v)], p.pattern[:80]


@pytest.mark.parametrize("pattern, flags, expect", [
    (r"psycho|nutter", 0, "pn"),
    (r"(?:so |a bit )?ocd", 0, "saso"),   # an optional prefix: its first letters and the next part's
    (r"\d{3} ?\d{3}", 0, r"\d"),
    (r"#\w+", 0, "\\#"),
    (r"x*", 0, None),                     # can match the empty string: no hint
    (r".+ward", 0, None),                 # starts with anything: no hint
    (r"[^a]bc", 0, None),
])
def test_first_class_bounds_what_a_match_can_start_with(pattern, flags, expect):
    got = first_class(pattern, flags)
    if expect is None:
        assert got is None
    else:
        assert got is not None and set(got) == set(expect)
