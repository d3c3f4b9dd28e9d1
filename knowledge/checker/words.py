"""Word and word-pair features for the semantic tier (TF-IDF over a vocabulary learnt from the corpus).

The sentence embedding reads the gist of a post; it blurs the few ordinary words that decide it ("my
views", "PALS", "reporter", "discharged"). TF-IDF over words and word pairs keeps them. The same code
builds the vocabulary at training time (tools/train_semantic.py) and turns a draft into features at
run time, so the two can never disagree; the vocabulary and its idf ship in semantic.npz.
"""
from __future__ import annotations

import math
import re
from collections import Counter

import numpy as np

# A word is two or more letters/digits, read from the normalised text (case-folded, homoglyphs mapped).
_WORD = re.compile(r"\w\w+")
MIN_DF = 2          # a term must appear in this many training drafts to join the vocabulary
MAX_CHARS = 4_000   # the same share of a draft the embedding reads


def terms(text: str) -> list[str]:
    """Words and adjacent word pairs of already-normalised text."""
    words = _WORD.findall(text[:MAX_CHARS])
    return words + [f"{a} {b}" for a, b in zip(words, words[1:])]


class Vocabulary:
    """term -> column, with smoothed idf (ln((1+n)/(1+df)) + 1), sublinear tf and L2 norm per draft."""

    def __init__(self, vocab: list[str], idf: np.ndarray):
        self.vocab = list(vocab)
        self.index = {t: i for i, t in enumerate(self.vocab)}
        self.idf = np.asarray(idf, dtype=np.float32)

    @classmethod
    def learn(cls, texts: list[str], min_df: int = MIN_DF) -> "Vocabulary":
        df = Counter()
        for t in texts:
            df.update(set(terms(t)))
        vocab = sorted(t for t, n in df.items() if n >= min_df)
        n = len(texts)
        idf = np.array([math.log((1 + n) / (1 + df[t])) + 1 for t in vocab], dtype=np.float32)
        return cls(vocab, idf)

    def __len__(self) -> int:
        return len(self.vocab)

    def sparse_row(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(columns, values) of one normalised text's L2-normalised TF-IDF vector."""
        counts = Counter(i for i in map(self.index.get, terms(text)) if i is not None)
        if not counts:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        cols = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        tf = 1.0 + np.log(np.fromiter(counts.values(), dtype=np.float32, count=len(counts)))
        vals = tf * self.idf[cols]
        return cols, (vals / np.linalg.norm(vals)).astype(np.float32)

    def scores(self, text: str, weights: np.ndarray) -> np.ndarray:
        """weights[:, vocab] @ tfidf(text): each head's word contribution, without building a dense vector."""
        cols, vals = self.sparse_row(text)
        if not len(cols):
            return np.zeros(weights.shape[0], dtype=np.float32)
        return weights[:, cols] @ vals
