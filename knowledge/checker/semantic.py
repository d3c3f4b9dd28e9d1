"""The checker's semantic tier: per-category classifiers over sentence embeddings and word features.

Rules catch what has a fixed shape (an NHS number, "committed suicide"); they cannot see that a post mocks
a colleague without naming them, or answers a relative in public. The semantic tier reads meaning: the
draft is embedded with the shared all-MiniLM-L6-v2 model (knowledge/embedding, the same file search uses),
a few cues about who is speaking to whom are added, and so are its words and word pairs (TF-IDF,
words.py). One logistic regression per category, trained on knowledge/training/corpus by
tools/train_semantic.py, gives a probability; a gate head (any problem at all?) must pass before any
category does. A category whose probability passes its threshold (chosen out of fold on the corpus)
becomes a finding that quotes the sentence that drove it most and cites the category's clauses.

Run time is the shared embedding model and two dot products: no torch, no scikit-learn.
"""
from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..embedding import Embedder, ModelError, shared_embedder
from .normalise import Normalised, normalise
from .words import Vocabulary

CHECKER_DIR = Path(__file__).resolve().parent
WEIGHTS_FILE = "semantic.npz"
SPEC_FILE = "semantic.json"
RESTORE_TIER = "restore it with `git checkout -- knowledge/checker` or rebuild it with tools/train_semantic.py"
SEMANTIC_CHARS = 4_000      # the semantic reading covers this much of a draft; rules read all of it
MAX_UNITS = 24              # sentences embedded per draft, besides the draft as a whole
MIN_UNIT_CHARS = 12
SUICIDE = "suicide-safe-messaging"
SUICIDE_STOP = "suicide-safe-messaging:stop"   # the head that tells unsafe content from missing signposting
GATE = "any-finding"   # the head that tells a post with any problem from a safe one: no finding without it

# Cues about who speaks to whom and what the post carries; post-level, appended to every unit's embedding.
_CUES = [
    ("account_personal", None),
    ("account_official", None),
    ("account_unknown", None),
    ("addresses_someone", re.compile(r"^\s*(?:@\w+|(?:hi|hiya|hello|hey|dear|morning|evening)\s+@?[A-Z][a-z]+)", re.I)),
    ("mentions_handle", re.compile(r"(?<![\w.])@\w{2,}")),
    ("second_person", re.compile(r"\b(?:you|your|you're|youre|u|ur)\b", re.I)),
    ("speaks_in_role", re.compile(r"\b(?:on behalf of|speaking for|as (?:a|an|the) [a-z ]{0,30}(?:nurse|manager|doctor|"
                                  r"consultant|psychiatrist|worker|lead|therapist|member of staff|employee|matron)|"
                                  r"i work (?:at|for|on))\b", re.I)),
    ("signposts_help", re.compile(r"\b(?:samaritans|116\s?123|shout|85258|papyrus|nhs\s?111|111,? option 2|helpline|"
                                  r"crisis (?:line|team)|hopeline)\b", re.I)),
    ("disclaims_views", re.compile(r"\b(?:views?|opinions?|thoughts?) (?:are |is )?(?:my|all my|entirely my) own\b|"
                                   r"\b(?:my own|personal) (?:views|opinions)\b|\bnot (?:the views|those) of\b", re.I)),
    ("describes_photo", re.compile(r"\[(?:photo|image|pic|picture|video|screenshot)\b", re.I)),
    ("gives_age", re.compile(r"\b\d{1,2}\s?(?:yo|y/o|yrs?|years?)(?: old)?\b|\(\d{1,2}\)|\baged \d{1,2}\b", re.I)),
    ("hashtags", re.compile(r"(?<![\w&])#\w+")),
]
CUE_NAMES = [name for name, _ in _CUES]
CUE_SCALE = 0.5


def cues(text: str, account: str) -> np.ndarray:
    """The cue vector for a whole draft (0/1 each, scaled to sit beside a unit embedding)."""
    out = np.zeros(len(_CUES), dtype=np.float32)
    for i, (name, pattern) in enumerate(_CUES):
        if name.startswith("account_"):
            out[i] = name == f"account_{account}"
        else:
            out[i] = pattern.search(text) is not None
    return out * CUE_SCALE


def units(norm: Normalised, limit: int = SEMANTIC_CHARS) -> list[tuple[int, int]]:
    """Original-text spans of the sentences the tier reads (the first MAX_UNITS within `limit`)."""
    spans = []
    for a, b in norm.sentences:
        oa, ob = norm.span(a, b)
        if oa >= limit:
            break
        if ob - oa >= MIN_UNIT_CHARS or len(norm.sentences) == 1:
            spans.append((oa, min(ob, limit)))
        if len(spans) >= MAX_UNITS:
            break
    return spans


@dataclass(frozen=True)
class SemanticHit:
    category: str
    probability: float
    threshold: float
    start: int
    end: int
    stop_level: bool  # for suicide-safe-messaging: unsafe content (stop) rather than only no signposting


class SemanticTier:
    """Per-category logistic regression (semantic.npz, sha256-pinned in semantic.json) over the shared
    embedding model's vectors, the cues and word/word-pair TF-IDF (knowledge/checker/words.py). A gate head
    (any problem at all?) must pass too: seventeen heads each with a small false-alarm rate would otherwise
    flag most safe posts. Run time is one embedding batch and two dot products."""

    def __init__(self, embedder: Embedder | None = None, directory: Path = CHECKER_DIR):
        spec_path = directory / SPEC_FILE
        try:
            spec = json.loads(spec_path.read_text())
            want = spec["provenance"]["sha256"]
        except (OSError, ValueError, KeyError):
            raise ModelError(f"classifier spec {spec_path} is missing or unreadable: {RESTORE_TIER}") from None
        if not (directory / WEIGHTS_FILE).is_file():
            raise ModelError(f"classifier file {directory / WEIGHTS_FILE} is missing: {RESTORE_TIER}")
        if hashlib.sha256((directory / WEIGHTS_FILE).read_bytes()).hexdigest() != want:
            raise ModelError(f"classifier file {directory / WEIGHTS_FILE} is corrupt (sha256 differs from "
                             f"{SPEC_FILE}): {RESTORE_TIER}")
        if spec.get("cue_names") != CUE_NAMES:
            raise ModelError(f"classifier {directory / WEIGHTS_FILE} was trained with other cues: {RESTORE_TIER}")
        data = np.load(directory / WEIGHTS_FILE, allow_pickle=False)
        self.heads = [str(h) for h in data["heads"]]
        self.W = data["W"].astype(np.float32)
        self.b = data["b"].astype(np.float32)
        self.words = Vocabulary([str(t) for t in data["vocab"]], data["idf"]) if "vocab" in data else None
        self.W_words = data["W_words"].astype(np.float32) if self.words is not None else None
        self.thresholds = np.array(spec["thresholds"], dtype=np.float32)
        self.sentence_weight = float(spec.get("sentence_weight", 1.0))
        self.embedder = embedder or shared_embedder()
        self._index = {h: i for i, h in enumerate(self.heads)}

    def probabilities(self, texts: list[str], cue_rows: np.ndarray, folded: list[str] | None = None) -> np.ndarray:
        """One row of head probabilities per text (`folded`: the texts normalised, for the word features)."""
        feats = np.hstack([self.embedder.embed(texts), cue_rows.astype(np.float32)])
        z = feats @ self.W.T + self.b
        if self.words is not None:
            folded = folded if folded is not None else [normalise(t).text for t in texts]
            z = z + np.stack([self.words.scores(t, self.W_words) for t in folded])
        return _sigmoid(z)

    def read(self, original: str, norm: Normalised, account: str, thresholds: np.ndarray | None = None):
        """Per head: the best probability over the draft (and its sentences, with a sentence weight); and
        which sentence to quote. Sentences are embedded only when the draft yields a finding (the gate and a
        category head both pass), to choose the sentence to quote."""
        thresholds = self.thresholds if thresholds is None else thresholds
        head = original[:SEMANTIC_CHARS]
        cue = cues(head, account)
        whole = self.probabilities([head], cue[None, :], [norm.text])[0]
        spans = units(norm)
        first = [spans[0] if spans else (0, len(head))] * len(self.heads)
        fires = bool(self.hits(whole, first, thresholds))
        if len(spans) <= 1 or not (fires or self.sentence_weight > 0):
            return whole, first
        parts = self.probabilities([original[a:b] for a, b in spans], np.tile(cue, (len(spans), 1)))
        best = np.maximum(whole, parts.max(axis=0) * self.sentence_weight) if self.sentence_weight > 0 else whole
        where = [spans[int(parts[:, i].argmax())] for i in range(len(self.heads))]
        return best, where

    def hits(self, best: np.ndarray, where: list[tuple[int, int]], thresholds: np.ndarray | None = None) -> list[SemanticHit]:
        thresholds = self.thresholds if thresholds is None else thresholds
        out = []
        gate = self._index.get(GATE)
        if gate is not None and best[gate] < thresholds[gate]:
            return out
        for i, cat in enumerate(self.heads):
            if cat in (SUICIDE_STOP, GATE) or best[i] < thresholds[i]:
                continue
            stop_level = True
            if cat == SUICIDE and SUICIDE_STOP in self._index:
                j = self._index[SUICIDE_STOP]
                stop_level = bool(best[j] >= thresholds[j])
            out.append(SemanticHit(cat, float(best[i]), float(thresholds[i]), where[i][0], where[i][1], stop_level))
        return out

    def score(self, original: str, norm: Normalised, account: str) -> list[SemanticHit]:
        return self.hits(*self.read(original, norm, account))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


_shared: SemanticTier | None = None
_shared_lock = threading.Lock()


def shared_semantic_tier() -> SemanticTier:
    """One classifier per process (loading it costs ~0.3 s and ~40 MB): every checker shares it."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = SemanticTier()
        return _shared
