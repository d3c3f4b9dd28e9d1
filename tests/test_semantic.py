"""The checker's semantic tier: a corpus that validates, a classifier that loads only when it is the one its
provenance pins, and findings a user can act on (category, the sentence that drove it, citations,
confidence) for drafts no rule catches."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import Counter

import pytest

from knowledge.checker.rules import load_categories
from knowledge.training import CorpusError, expected_verdicts, load_corpus

from .conftest import ROOT


@pytest.fixture(scope="module")
def corpus():
    return load_corpus()


def test_the_corpus_is_large_enough_and_every_line_validates(corpus):
    by_cat = Counter(c for it in corpus for c in it["categories"])
    assert set(by_cat) == set(load_categories())
    assert min(by_cat.values()) >= 60
    assert sum(it["verdict"] == "ok" for it in corpus) >= 600


def test_verdicts_follow_categories_yaml():
    levels = {n: c["level"] for n, c in load_categories().items()}
    assert expected_verdicts([], levels) == {"ok"}
    assert expected_verdicts(["missing-disclaimer"], levels) == {"revise"}
    assert expected_verdicts(["colleague-abuse", "missing-disclaimer"], levels) == {"stop"}
    assert expected_verdicts(["suicide-safe-messaging"], levels) == {"stop", "revise"}


@pytest.mark.parametrize("line, reason", [
    ({"id": "x", "text": "hello", "verdict": "ok", "categories": ["not-a-category"]}, "unknown category"),
    ({"id": "x", "text": "hello", "verdict": "ok", "categories": ["colleague-abuse"]}, "does not follow"),
    ({"id": "x", "text": " ", "verdict": "ok", "categories": []}, "non-empty text"),
])
def test_a_bad_corpus_line_is_refused_with_file_line_and_reason(tmp_path, line, reason):
    (tmp_path / "bad.jsonl").write_text(json.dumps(line) + "\n")
    with pytest.raises(CorpusError, match=f"bad.jsonl:1: .*{reason}"):
        load_corpus(tmp_path)


def test_the_corpus_never_contains_evaluation_drafts(corpus):
    texts = {" ".join(it["text"].split()).casefold() for it in corpus}
    for path in [ROOT / "tests" / "data" / "drafts_heldout.jsonl", ROOT / "tests" / "data" / "drafts_heldout2.jsonl",
                 ROOT.parent / "shared" / "eval" / "drafts.jsonl", ROOT.parent / "shared" / "eval" / "drafts_b.jsonl"]:
        if path.exists():
            for line in path.read_text().splitlines():
                if line.strip():
                    assert " ".join(json.loads(line)["text"].split()).casefold() not in texts
