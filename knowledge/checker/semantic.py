"""The checker's semantic tier: a per-category classifier over sentence embeddings.

Rules catch what has a fixed shape (an NHS number, "committed suicide"); they cannot see that a post mocks
a colleague without naming them, or answers a relative in public. The semantic tier reads meaning: the draft
and each of its sentences go through all-MiniLM-L6-v2 fine-tuned on knowledge/training/corpus
(tools/finetune_checker.py), with a few cues about who is speaking to whom, and one sigmoid head per
category gives a probability. A category whose probability passes its threshold (chosen in cross-validation for stop-level
recall first) becomes a finding that quotes the sentence that drove it and cites the category's clauses.

Run time is a tokenizer and one int8 ONNX model on onnxruntime: no torch.
"""
from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..embedding import EMBEDDING_DIR, RESTORE, TOKENIZER_FILE, ModelError, verify
from .normalise import Normalised

CHECKER_DIR = Path(__file__).resolve().parent
MODEL_FILE = "semantic-int8.onnx"
SPEC_FILE = "semantic.json"
SEMANTIC_CHARS = 4_000      # the semantic reading covers this much of a draft; rules read all of it
MAX_UNITS = 24              # sentences embedded per draft, besides the draft as a whole
MIN_UNIT_CHARS = 12
SUICIDE = "suicide-safe-messaging"
SUICIDE_STOP = "suicide-safe-messaging:stop"   # the head that tells unsafe content from missing signposting

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
    """The fine-tuned classifier (semantic-int8.onnx, heads and thresholds in semantic.json), sha256-checked."""

    def __init__(self, directory: Path = CHECKER_DIR, threads: int = 1):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        spec_path = directory / SPEC_FILE
        try:
            spec = json.loads(spec_path.read_text())
            want = spec["provenance"]["sha256"]
        except (OSError, ValueError, KeyError):
            raise ModelError(f"classifier spec {spec_path} is missing or unreadable: {RESTORE}") from None
        verify(directory, {MODEL_FILE: want})
        if spec.get("cue_names") != CUE_NAMES:
            raise ModelError(f"classifier {directory / MODEL_FILE} was trained with other cues: {RESTORE}")
        verify(EMBEDDING_DIR, {TOKENIZER_FILE: _pinned_tokenizer()})
        self.heads = list(spec["heads"])
        self.thresholds = np.array(spec["thresholds"], dtype=np.float32)
        self.sentence_weight = float(spec.get("sentence_weight", 1.0))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(directory / MODEL_FILE), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(f"classifier {directory / MODEL_FILE} could not be loaded ({type(exc).__name__}): {RESTORE}") from None
        self._tokenizer = Tokenizer.from_file(str(EMBEDDING_DIR / TOKENIZER_FILE))
        self._tokenizer.enable_truncation(int(spec.get("max_tokens", 128)))
        self._index = {h: i for i, h in enumerate(self.heads)}

    def probabilities(self, texts: list[str], cue_rows: np.ndarray) -> np.ndarray:
        """One row of head probabilities per text (empty text scores zero)."""
        out = np.zeros((len(texts), len(self.heads)), dtype=np.float32)
        live = [i for i, t in enumerate(texts) if t.strip()]
        if not live:
            return out
        enc = self._tokenizer.encode_batch([texts[i] for i in live])
        width = max(len(e.ids) for e in enc)
        ids = np.zeros((len(live), width), dtype=np.int64)
        mask = np.zeros((len(live), width), dtype=np.int64)
        for r, e in enumerate(enc):
            ids[r, :len(e.ids)] = e.ids
            mask[r, :len(e.ids)] = 1
        probs = self._session.run(None, {"input_ids": ids, "attention_mask": mask,
                                         "cues": cue_rows[live].astype(np.float32)})[0]
        out[live] = np.nan_to_num(probs)
        return out

    def read(self, original: str, norm: Normalised, account: str):
        """Per head: the best probability over the draft and its sentences; and which sentence gave it."""
        spans = units(norm)
        head = original[:SEMANTIC_CHARS]
        texts = [head] + ([original[a:b] for a, b in spans] if len(spans) > 1 else [])
        cue = cues(head, account)
        probs = self.probabilities(texts, np.tile(cue, (len(texts), 1)))
        whole, parts = probs[0], probs[1:]
        best = whole if not len(parts) else np.maximum(whole, parts.max(axis=0) * self.sentence_weight)
        where = []
        for i in range(len(self.heads)):
            if len(parts):
                where.append(spans[int(parts[:, i].argmax())])
            else:
                where.append(spans[0] if spans else (0, len(head)))
        return best, where

    def hits(self, best: np.ndarray, where: list[tuple[int, int]], thresholds: np.ndarray | None = None) -> list[SemanticHit]:
        thresholds = self.thresholds if thresholds is None else thresholds
        out = []
        for i, cat in enumerate(self.heads):
            if cat == SUICIDE_STOP or best[i] < thresholds[i]:
                continue
            stop_level = True
            if cat == SUICIDE and SUICIDE_STOP in self._index:
                j = self._index[SUICIDE_STOP]
                stop_level = bool(best[j] >= thresholds[j])
            out.append(SemanticHit(cat, float(best[i]), float(thresholds[i]), where[i][0], where[i][1], stop_level))
        return out

    def score(self, original: str, norm: Normalised, account: str) -> list[SemanticHit]:
        return self.hits(*self.read(original, norm, account))


def _pinned_tokenizer() -> str:
    try:
        return json.loads((EMBEDDING_DIR / "provenance.json").read_text())["model"]["files"][TOKENIZER_FILE]
    except (OSError, ValueError, KeyError):
        raise ModelError(f"{EMBEDDING_DIR / 'provenance.json'} is missing or unreadable: {RESTORE}") from None


_shared: SemanticTier | None = None
_shared_lock = threading.Lock()


def shared_semantic_tier() -> SemanticTier:
    """One classifier per process (loading it costs ~0.3 s and ~40 MB): every checker shares it."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = SemanticTier()
        return _shared
