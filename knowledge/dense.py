"""Dense retrieval: which clauses mean what the question means, whatever words it uses.

Each clause is indexed by several texts (its title with its summary, every also-answers phrasing, and its
text in passages of a few sentences), so a paraphrase can meet any of them; a clause scores the best
cosine of any of its texts. The vectors come from the shared embedding model and are cached in
`clause_vectors.npz` beside it, keyed by each text's hash, so start-up embeds only texts that changed
(a trust that edits its pack pays for the new texts once; `policybot index` refreshes the shipped cache).
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .embedding import EMBEDDING_DIR, Embedder
from .packs import Clause

CACHE_FILE = EMBEDDING_DIR / "clause_vectors.npz"
PASSAGE_SENTENCES = 2
_SENTENCE = re.compile(r"(?<=[.!?;:])\s+(?=[A-Z(•\-])|\n+")


def passages(text: str, size: int = PASSAGE_SENTENCES) -> list[str]:
    parts = [p.strip() for p in _SENTENCE.split(text) if p and len(p.strip()) > 20]
    return [" ".join(parts[i:i + size]) for i in range(0, len(parts), size)]


def index_texts(clause: Clause) -> list[str]:
    head = f"{clause.title}. {clause.summary}".strip()
    return [head, *clause.also_answers, *passages(clause.text)]


def _key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "replace")).hexdigest()


@dataclass(frozen=True)
class DenseHit:
    row: int          # index into the clauses given to DenseIndex
    score: float      # best cosine of any of the clause's texts
    via: str          # which text matched best (for --explain)


class DenseIndex:
    def __init__(self, clauses: list[Clause], embedder: Embedder, cache: Path = CACHE_FILE):
        self.embedder = embedder
        self.clauses = clauses
        texts, owners = [], []
        for row, clause in enumerate(clauses):
            for t in index_texts(clause):
                texts.append(t)
                owners.append(row)
        self.texts = texts
        self.owners = np.array(owners, dtype=np.int32)
        self.vectors = self._vectors(texts, cache)

    def _vectors(self, texts: list[str], cache: Path) -> np.ndarray:
        known: dict[str, np.ndarray] = {}
        if cache.is_file():
            try:
                data = np.load(cache, allow_pickle=False)
                known = dict(zip((str(k) for k in data["keys"]), data["vectors"]))
            except (OSError, ValueError, KeyError):
                known = {}  # a damaged cache is only slower: rebuild the vectors
        keys = [_key(t) for t in texts]
        missing = [i for i, k in enumerate(keys) if k not in known]
        if missing:
            fresh = self.embedder.embed([texts[i] for i in missing])
            for i, v in zip(missing, fresh):
                known[keys[i]] = v
        return np.stack([known[k] for k in keys]).astype(np.float32) if keys else np.zeros((0, 384), np.float32)

    def save_cache(self, cache: Path = CACHE_FILE) -> None:
        keys = np.array([_key(t) for t in self.texts])
        np.savez_compressed(cache, keys=keys, vectors=self.vectors.astype(np.float16))  # half size, same ranking

    def clause_scores(self, question: str) -> tuple[np.ndarray, np.ndarray]:
        """(best cosine per clause, cosine per index text); zeros for a question with no words."""
        q = self.embedder.embed_one(question)
        sims = self.vectors @ q if q.any() else np.zeros(len(self.texts), dtype=np.float32)
        best = np.full(len(self.clauses), -1.0, dtype=np.float32)
        np.maximum.at(best, self.owners, sims)
        return best, sims

    def search(self, question: str, limit: int = 20) -> list[DenseHit]:
        best, sims = self.clause_scores(question)
        if not sims.any():
            return []
        order = np.argsort(-best)[:limit]
        hits = []
        for row in order:
            mine = np.where(self.owners == row)[0]
            via = self.texts[int(mine[np.argmax(sims[mine])])]
            hits.append(DenseHit(int(row), float(best[row]), via))
        return hits
