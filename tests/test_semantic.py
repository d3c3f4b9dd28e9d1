"""The checker's semantic tier: a corpus that validates, a classifier that loads only when it is the one its
provenance pins, and findings a user can act on (category, the sentence that drove it, citations,
confidence) for drafts no rule catches."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import Counter

import numpy as np
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


@pytest.fixture(scope="module")
def checker(core):
    assert core.check.checker.semantic is not None, "app.yaml ships with the semantic tier on"
    return core.check.checker


@pytest.mark.parametrize("text, category", [
    # No rule matches these: the tier reads who is speaking to whom and what about.
    ("Off to chat to a reporter from the Evening Mail about what really goes on at our unit tomorrow", "media-response"),
    ("Thinking of you and your lad, Maureen. Message me any time if you want an update on how he's doing x",
     "service-user-relationship"),
])
def test_the_semantic_tier_flags_what_no_rule_catches_and_says_why(checker, text, category):
    rules_only = [f for f in checker.check(text, "personal").findings if not f.semantic]
    assert not any(f.category == category for f in rules_only)
    r = checker.check(text, "personal")
    hit = next(f for f in r.findings if f.category == category)
    assert r.verdict == "stop"
    assert hit.semantic and 0.0 < hit.confidence <= 1.0
    assert hit.quote == text[hit.start:hit.end] and len(hit.quote) >= 12   # the sentence that drove it
    cites = set(load_categories()[category]["cites"])
    assert set(hit.cites) == cites
    d = hit.as_dict()
    assert d["source"] == "semantic" and d["confidence"] == round(hit.confidence, 3) and d["message"]


@pytest.mark.parametrize("text", [
    "Lovely sunny walk along the canal with the dog this morning ☀️🐕",
    "Words like 'schizo' and 'psycho' hurt. Choose kinder ones.",
])
def test_everyday_posts_and_quoted_mentions_stay_ok(checker, text):
    assert checker.check(text, "personal").verdict == "ok"


@pytest.mark.parametrize("text", ["🔥🔥🔥", "\u200b\u200b", "x" * 50_000, "😂" * 5_000, "\x00\x01 ok"])
def test_symbol_floods_and_huge_drafts_get_a_defined_answer(checker, text):
    r = checker.check(text, "personal")
    assert r.verdict in (None, "ok", "revise", "stop")
    assert all(f.confidence is None or 0.0 <= f.confidence <= 1.0 for f in r.findings)


def test_a_missing_or_corrupt_classifier_stops_start_up_with_one_line(tmp_path):
    copy = tmp_path / "checker"
    copy.mkdir()
    for name in ("semantic.json", "semantic.npz"):
        shutil.copy(ROOT / "knowledge" / "checker" / name, copy / name)
    (copy / "semantic.npz").write_bytes(b"\x00" * 100)
    code = ("import sys; from pathlib import Path\nfrom knowledge.checker.semantic import SemanticTier, ModelError\n"
            "try:\n    SemanticTier(directory=Path(sys.argv[1]))\nexcept ModelError as e:\n    print(e); sys.exit(2)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(copy)], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and "semantic.npz is corrupt" in proc.stdout and "Traceback" not in proc.stderr
    (copy / "semantic.npz").unlink()
    proc = subprocess.run([sys.executable, "-c", code, str(copy)], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and "semantic.npz is missing" in proc.stdout


def test_the_shipped_classifier_records_its_provenance():
    spec = json.loads((ROOT / "knowledge" / "checker" / "semantic.json").read_text())
    prov = spec["provenance"]
    assert prov["made_by"] == "tools/train_semantic.py"
    assert prov["corpus"]["items"] == len(load_corpus())
    # a head per category, one telling unsafe suicide content from missing signposting, and the gate
    assert len(spec["thresholds"]) == len(spec["heads"]) == len(load_categories()) + 2


def test_no_semantic_finding_unless_the_gate_says_the_post_has_a_problem(checker):
    """Seventeen heads each with a small false-alarm rate would flag most safe posts; the gate head (any
    problem at all?) must agree before any of them is shown."""
    from knowledge.checker.normalise import normalise
    from knowledge.checker.semantic import GATE

    tier = checker.semantic
    text = "Off to chat to a reporter from the Evening Mail about what really goes on at our unit tomorrow"
    best, where = tier.read(text, normalise(text), "personal")
    assert any(h.category == "media-response" for h in tier.hits(best, where))
    closed = tier.thresholds.copy()
    closed[tier.heads.index(GATE)] = 1.01
    assert tier.hits(best, where, closed) == []


@pytest.mark.parametrize("text", ["🔥🔥", "zzqx vvbn", "the the the the", "ＰＡＴＩＥＮＴ", "ward " * 5000])
def test_word_features_of_odd_text_are_finite_and_the_draft_gets_a_verdict(checker, text):
    from knowledge.checker.normalise import normalise

    words = checker.semantic.words
    scores = words.scores(normalise(text).text, checker.semantic.W_words)
    assert scores.shape == (len(checker.semantic.heads),) and np.isfinite(scores).all()
    r = checker.check(text, "personal")
    assert r.verdict in ("ok", "revise", "stop")
    assert all(f.confidence is None or 0.0 <= f.confidence <= 1.0 for f in r.findings)


def test_a_long_unpunctuated_draft_is_quoted_short_in_the_reply(core):
    """The tier quotes the sentence that drove it; a sentence can be a whole paragraph with no full stop.
    The reply shows the start of it, so the rest of the advice is not buried."""
    from handlers.check import MAX_QUOTE_SHOWN
    from bot.slack.blocks import fallback

    text = ("off to chat to a reporter from the evening mail tomorrow about what really goes on at our unit "
            "and how the managers treat us and the state of the place ") * 4
    result = core.check.check(text, "personal")
    hit = next(f for f in result.findings if f.semantic)
    assert len(hit.quote) > MAX_QUOTE_SHOWN
    shown = fallback(core.check.render(result))
    assert hit.quote not in shown and hit.quote[:100] in shown and "\u2026" in shown
