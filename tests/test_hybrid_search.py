"""Hybrid search: meaning finds clauses words miss, the trust's own policy comes first, partner answers say
whose they are, and a policy owner can see why an answer was chosen."""
from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest

from bot.cli import main
from knowledge.dense import CACHE_FILE, DenseIndex, _key, index_texts

from .conftest import ROOT


def test_dense_retriever_finds_a_paraphrase_that_shares_no_keyword_with_its_clause(index):
    # No word of this question (stop words aside) occurs in bsmhft 3.4's title, summary or text.
    question = "am I ok to vouch for an old colleague's skills on a networking site"
    dense = [index.clauses[h.row].citation for h in index.dense_hits(question, 3)]
    assert "bsmhft 3.4" in dense
    r = index.search(question)
    assert r.found and "bsmhft 3.4" in [h.citation for h in r.hits[:3]]


def test_the_deployments_own_pack_wins_a_near_tie(index):
    # Both BSMHFT 3.6 and HPFT 6 cover a ward's own Facebook page; the BSMHFT deployment answers from BSMHFT.
    r = index.search("we'd like to start a facebook page just for our ward team")
    assert r.found
    assert r.hits[0].clause.source == "bsmhft"


def test_an_answer_from_a_partner_document_says_whose_it_is(core):
    reply = core.ask.answer("how long can a video on the hpft youtube be")
    assert reply.data["answers"][0]["source"] == "hpft"
    assert reply.data["partner_document"] is True
    text = " ".join(str(b) for b in reply.blocks)
    assert "partner's document, not BSMHFT's own policy" in text


def test_an_answer_from_the_trusts_own_policy_has_no_partner_note(core):
    reply = core.ask.answer("an ex-patient added me on Facebook, what do I do?")
    assert reply.data["answers"][0]["source"] == "bsmhft"
    assert reply.data["partner_document"] is False


@pytest.mark.parametrize("question", [
    "how do I change the font size in my outlook signature",
    "what's the best time of day to post to get more likes on instagram",
    "can I swap a night shift with a colleague next week",
])
def test_questions_about_other_things_are_declined_even_when_they_name_a_platform(index, question):
    assert not index.search(question).found


def test_explain_shows_both_retrievers_and_the_decision(capsys):
    out = io.StringIO()
    assert main(["ask", "--explain", "can I put the trust logo on my linkedin banner"], stdout=out) == 0
    text = out.getvalue()
    assert "FTS5 (keywords)" in text and "Dense (meaning)" in text and "Fused: FOUND" in text
    assert "bsmhft 3.1" in text


def test_the_shipped_vector_cache_covers_every_index_text(index):
    # A stale cache means every start-up embeds the missing texts; `policybot index` refreshes it.
    data = np.load(CACHE_FILE, allow_pickle=False)
    cached = set(str(k) for k in data["keys"])
    missing = [t for c in index.clauses for t in index_texts(c) if _key(t) not in cached]
    assert not missing, f"{len(missing)} index texts are not cached: run `policybot index`"


def test_a_damaged_vector_cache_only_costs_time(index, tmp_path):
    bad = tmp_path / "clause_vectors.npz"
    bad.write_bytes(b"not a numpy file")
    rebuilt = DenseIndex(index.clauses[:3], index.dense.embedder, cache=bad)
    assert rebuilt.vectors.shape[0] == len(rebuilt.texts)
    assert np.allclose(np.linalg.norm(rebuilt.vectors, axis=1), 1.0, atol=1e-3)


def test_a_corrupt_model_file_stops_start_up_with_one_line(tmp_path):
    import shutil
    copy = tmp_path / "embedding"
    shutil.copytree(ROOT / "knowledge" / "embedding", copy, ignore=shutil.ignore_patterns("__pycache__"))
    model = copy / "minilm-l6-v2-int8.onnx"
    model.write_bytes(model.read_bytes()[:1000])
    code = ("import sys; from pathlib import Path; from knowledge.embedding import Embedder, ModelError\n"
            "try:\n    Embedder(Path(sys.argv[1]))\nexcept ModelError as e:\n    print(e); sys.exit(2)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(copy)], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    assert "minilm-l6-v2-int8.onnx is corrupt" in proc.stdout and "restore it" in proc.stdout
    assert "Traceback" not in proc.stderr
