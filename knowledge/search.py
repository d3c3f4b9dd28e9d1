"""Policy search: which clauses answer a member of staff's question, best first.

SQLite FTS5 (porter stemming, unicode61) tokenises, stems and holds the postings.
Each of the user's words is looked up on its own, as a quoted FTS string, so user
text never reaches FTS query syntax. BM25 is a sum over terms, so the per-term
scores add up to the usual ranking while letting us weight what the user typed
above synonyms and spelling corrections, and tell how much of the question a
clause actually covers. That coverage is what decides "not in the policy".
"""
from __future__ import annotations

import math
import re
import sqlite3
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .packs import KNOWLEDGE_DIR, Clause, Pack, PackError, read_yaml

MAX_QUERY_CHARS = 4000
# Column weights for bm25(): title, body (clause text + summary), also-answers phrasings.
COLUMN_WEIGHTS = (4.0, 1.0, 3.0)
SYNONYM_WEIGHT = 0.5
CORRECTION_WEIGHT = 0.8
NAMED_SOURCE_BOOST = 2.0
PHRASE_BONUS = 0.5
# The not-found gate. A question that uses social media vocabulary (vocabulary.yaml
# topic_words) is almost surely about the policy, so a partial match answers it; one
# that uses none ("how do I book annual leave?") must be covered closely. Coverage is
# the share of the question's IDF weight that the clause matches.
MIN_SCORE = 2.5
TOPIC_MIN_COVERAGE = 0.15
TOPIC_MIN_SCORE = 4.0
OFFTOPIC_MIN_COVERAGE = 0.5
MIN_CORRECTABLE = 5  # shorter words are too often real words ("fire" is not a typo of "five")
# Related sections must score at least this share of the best one.
RELATED_SHARE = 0.2
# Hybrid ranking (tuned on the development questions only): reciprocal rank fusion of FTS5 and dense
# retrieval; the deployment's own pack wins near ties; the dense retriever's best cosine can answer a
# question the words missed, or veto a lexical match that means something else.
DENSE_CANDIDATES = 20
RRF_K = 5
LEXICAL_WEIGHT = 1.0
DENSE_WEIGHT = 1.0
PRIMARY_BONUS = 0.15
SCORE_WEIGHT = 0.2
DENSE_FOUND = 0.70
DENSE_FOUND_TOPICAL = 0.55
DENSE_VETO = 0.40
ANSWER_FLOOR = 0.38

_TOKEN = re.compile(r"[^\W_]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")

STOPWORDS = frozenset("""
a about above after again against all also am an and any anyone anything are aren as at be because been before
being below between both but by can cannot could couldn did didn do does doesn doing don done during each
even few for from further get gets getting got had has have having he her here hers herself him himself his how
i if in into is isn it its itself just let lets me might more most must my myself no nor not now of off on once
only or other our ours ourselves out over own really same she should shouldn so some someone something such than
that the their theirs them themselves then there these they this those through to too until up us very was wasn
we were what whats when where which while who whom whos why will with won would wouldn you your yours yourself
yourselves s t d ll m re ve im ive id hi hey hello please pls thanks thank ok okay yes yeah actually still thing
things stuff like lot lots way want wanted wants need needs meant supposed allowed fine alright sure know mean
does anybody somebody bit kind sort tell say said go going put saw see seen sent try trying keeps keep
""".split())


def normalise(text: str) -> str:
    """NFKC, no control or invisible formatting characters, lower case, single spaces."""
    text = unicodedata.normalize("NFKC", text)
    text = _CONTROL.sub(" ", text)
    return " ".join(text.lower().split())


def words(text: str) -> list[str]:
    """Split like FTS5's unicode61 tokenizer: runs of letters and digits, diacritics removed."""
    out = []
    for w in _TOKEN.findall(text.lower()):
        if not w.isascii():
            w = "".join(c for c in unicodedata.normalize("NFKD", w) if not unicodedata.combining(c))
        if w:
            out.append(w)
    return out


def _osa(a: str, b: str) -> int:
    """Optimal string alignment distance (Levenshtein plus adjacent transpositions)."""
    prev2, prev = None, list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


def _deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1:] for i in range(len(word))}


@dataclass(frozen=True)
class Hit:
    clause: Clause
    score: float
    coverage: float
    matched: tuple[str, ...]
    lexical: float = 0.0     # the FTS5 score (0 when only the dense retriever found it)
    dense: float = 0.0       # the best cosine of any of the clause's index texts

    @property
    def citation(self) -> str:
        return self.clause.citation


@dataclass
class SearchResult:
    question: str
    found: bool
    hits: list[Hit] = field(default_factory=list)
    preferred_sources: tuple[str, ...] = ()
    corrections: dict[str, str] = field(default_factory=dict)
    truncated: bool = False
    empty: bool = False
    # What each retriever said, for `policybot ask --explain`.
    lexical: list[Hit] = field(default_factory=list)
    lexical_found: bool = False
    dense: list = field(default_factory=list)

    @property
    def best(self) -> Hit | None:
        return self.hits[0] if self.found and self.hits else None


@dataclass
class _Concept:
    """One word of the question with the search terms that can stand for it."""
    word: str
    terms: list[tuple[str, float]]
    idf: float


class PolicyIndex:
    """An in-memory FTS5 index over the active packs' clauses."""

    def __init__(self, packs: list[Pack], vocabulary: Vocabulary | None = None, embedder=None):
        self.packs = list(packs)
        self.clauses: list[Clause] = [c for p in self.packs for c in p.clauses]
        self.vocabulary = vocabulary or Vocabulary.load()
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        self._db.execute("CREATE VIRTUAL TABLE clause_fts USING fts5("
                         "title, body, also, tokenize='porter unicode61 remove_diacritics 2')")
        self._db.executemany(
            "INSERT INTO clause_fts(rowid, title, body, also) VALUES (?, ?, ?, ?)",
            [(i, c.title, f"{c.text}\n{c.summary}", "\n".join(c.also_answers)) for i, c in enumerate(self.clauses)])
        self._postings: dict[str, dict[int, float]] = {}
        self._phrases: dict[str, frozenset[int]] = {}
        self._n = len(self.clauses)
        self._source_names = self._name_patterns()
        self._vocab = Counter(w for c in self.clauses
                              for w in words(" ".join((c.title, c.text, c.summary, *c.also_answers))))
        self._delete_index: dict[str, list[str]] = {}
        for w in self._vocab:
            if len(w) >= 3 and w.isalpha():
                for key in (w, *_deletes(w)):
                    self._delete_index.setdefault(key, []).append(w)
        self.dense = None
        if embedder is not None:
            from .dense import DenseIndex
            self.dense = DenseIndex(self.clauses, embedder)
        self._row = {c.id: i for i, c in enumerate(self.clauses)}
        self.primary = self.packs[0].source if self.packs else ""

    # -- building blocks -------------------------------------------------

    def _name_patterns(self) -> list[tuple[re.Pattern, str]]:
        pats = []
        for p in self.packs:
            for name in sorted(set(p.names) | {p.source}, key=len, reverse=True):
                pats.append((re.compile(r"(?<![\w])" + re.escape(name) + r"(?![\w])"), p.source))
        return pats

    def postings(self, term: str) -> dict[int, float]:
        """{row: bm25 contribution} for one term; cached, as the index never changes."""
        hit = self._postings.get(term)
        if hit is None:
            fts = '"' + term.replace('"', '""') + '"'
            rows = self._db.execute(
                "SELECT rowid, -bm25(clause_fts, ?, ?, ?) FROM clause_fts WHERE clause_fts MATCH ?",
                (*COLUMN_WEIGHTS, fts)).fetchall()
            hit = self._postings[term] = dict(rows)
        return hit

    def _phrase_rows(self, a: str, b: str) -> frozenset[int]:
        key = f"{a} {b}"
        rows = self._phrases.get(key)
        if rows is None:
            fts = '{title also} : "' + key.replace('"', '""') + '"'
            rows = self._phrases[key] = frozenset(r for (r,) in self._db.execute(
                "SELECT rowid FROM clause_fts WHERE clause_fts MATCH ?", (fts,)))
        return rows

    def _idf(self, df: int) -> float:
        return math.log((self._n - df + 0.5) / (df + 0.5) + 1.0)

    def correct(self, word: str) -> str | None:
        """The closest word the policies use, for a word they never use (typos)."""
        if len(word) < MIN_CORRECTABLE or not word.isalpha():
            return None
        cands = set(self._delete_index.get(word, ()))
        for d in _deletes(word):
            cands.update(self._delete_index.get(d, ()))
        limit = 2 if len(word) >= 7 else 1
        best = None
        for c in cands:
            dist = _osa(word, c)
            if dist <= limit and (best is None or (dist, -self._vocab[c]) < best[0]):
                best = ((dist, -self._vocab[c]), c)
        return best[1] if best else None

    def _concepts(self, tokens: list[str], corrections: dict[str, str]) -> list[_Concept]:
        concepts, seen = [], set()
        for w in tokens:
            if w in STOPWORDS or w in seen or (len(w) < 2 and not w.isdigit()):
                continue
            seen.add(w)
            terms = [(w, 1.0)]
            df = len(self.postings(w))
            if df == 0:
                fixed = self.correct(w)
                if fixed:
                    corrections[w] = fixed
                    terms.append((fixed, CORRECTION_WEIGHT))
                    df = len(self.postings(fixed))
            for syn in self.vocabulary.synonyms.get(w, ()):
                terms.append((syn, SYNONYM_WEIGHT))
            concepts.append(_Concept(w, terms, self._idf(df)))
        return concepts

    # -- the search ------------------------------------------------------

    def search(self, question: str, limit: int = 3) -> SearchResult:
        raw = question if isinstance(question, str) else ""
        truncated = len(raw) > MAX_QUERY_CHARS
        text = normalise(raw[:MAX_QUERY_CHARS])
        result = SearchResult(question=raw, found=False, truncated=truncated)
        if not text:
            result.empty = True
            return result
        preferred, stripped = [], text
        for pat, source in self._source_names:
            if pat.search(stripped):
                if source not in preferred:
                    preferred.append(source)
                stripped = pat.sub(" ", stripped)
        result.preferred_sources = tuple(preferred)
        # "Is this in the HPFT policy?" prefers HPFT; the name itself is not a search word,
        # unless it is all the question has ("what is ATB?").
        tokens = words(stripped)
        if not any(w not in STOPWORDS for w in tokens):
            tokens = words(text)
        tokens = [r for w in tokens for r in self.vocabulary.rewrite.get(w, (w,))]
        concepts = self._concepts(tokens, result.corrections)
        if not concepts:
            result.empty = not tokens
            return result

        scores: dict[int, float] = {}
        covered: dict[int, list[_Concept]] = {}
        for concept in concepts:
            best_for_row: dict[int, float] = {}
            for term, weight in concept.terms:
                for row, s in self.postings(term).items():
                    v = weight * s
                    if v > best_for_row.get(row, 0.0):
                        best_for_row[row] = v
            for row, v in best_for_row.items():
                scores[row] = scores.get(row, 0.0) + v
                covered.setdefault(row, []).append(concept)
        content = [c.word for c in concepts]
        for a, b in zip(content, content[1:]):
            for row in self._phrase_rows(a, b):
                if row in scores:
                    scores[row] *= 1.0 + PHRASE_BONUS

        total_idf = sum(c.idf for c in concepts) or 1.0
        ranked = []
        for row, s in scores.items():
            clause = self.clauses[row]
            if clause.source in preferred:
                s *= NAMED_SOURCE_BOOST
            cov = sum(c.idf for c in covered[row]) / total_idf
            ranked.append(Hit(clause, round(s, 4), round(cov, 3), tuple(c.word for c in covered[row]), round(s, 4)))
        ranked.sort(key=lambda h: (-h.score, h.clause.id))
        topical = any(w in self.vocabulary.topic_words for w in tokens)
        lexical_found = False
        if ranked:
            best = ranked[0]
            if topical:
                lexical_found = best.coverage >= TOPIC_MIN_COVERAGE and best.score >= TOPIC_MIN_SCORE
            else:
                lexical_found = best.coverage >= OFFTOPIC_MIN_COVERAGE and best.score >= MIN_SCORE
        result.lexical, result.lexical_found = ranked[:DENSE_CANDIDATES], lexical_found
        if self.dense is not None:
            result.dense = self.dense_hits(raw[:MAX_QUERY_CHARS])
            per_clause, _ = self.dense.clause_scores(raw[:MAX_QUERY_CHARS])
            ranked, result.found = self._fuse(result.dense, ranked, lexical_found, topical, preferred, per_clause)
        else:
            result.found = lexical_found
        if not ranked:
            return result
        best = ranked[0]
        seen_citations = set()
        for hit in ranked:
            if len(result.hits) >= limit:
                break
            if hit.citation in seen_citations:
                continue
            if result.hits and hit.score < RELATED_SHARE * best.score:
                break
            seen_citations.add(hit.citation)
            result.hits.append(hit)
        return result

    # -- hybrid ranking ----------------------------------------------------

    def dense_hits(self, question: str, limit: int = DENSE_CANDIDATES):
        return self.dense.search(question, limit) if self.dense is not None else []

    def _fuse(self, dense: list, lexical: list[Hit], lexical_found: bool, topical: bool,
              preferred: list[str], question_scores=None) -> tuple[list[Hit], bool]:
        """Reciprocal rank fusion of the FTS5 and dense rankings, the primary pack winning near ties, and
        "found" decided on evidence from both retrievers."""
        lex_rank = {self._row[h.clause.id]: (r, h) for r, h in enumerate(lexical[:DENSE_CANDIDATES])}
        dense_rank = {h.row: (r, h) for r, h in enumerate(dense)}
        lex_max = max((h.lexical for h in lexical[:1]), default=0.0) or 1.0
        fused = []
        for row in set(lex_rank) | set(dense_rank):
            clause = self.clauses[row]
            lex_hit = lex_rank.get(row, (None, None))[1]
            d = dense_rank.get(row, (None, None))[1]
            # Rank fusion orders the candidates; the scores themselves (share of the best keyword score,
            # cosine) break its ties, so a clause both retrievers like a lot beats one each likes a little.
            score = 0.0
            if lex_hit is not None:
                score += LEXICAL_WEIGHT / (RRF_K + lex_rank[row][0]) + SCORE_WEIGHT * lex_hit.lexical / lex_max
            if d is not None:
                score += DENSE_WEIGHT / (RRF_K + dense_rank[row][0]) + SCORE_WEIGHT * max(d.score, 0.0)
            if clause.source == self.primary:
                score *= 1.0 + PRIMARY_BONUS
            if clause.source in preferred:
                score *= NAMED_SOURCE_BOOST
            fused.append(Hit(clause, round(score * 100, 4), lex_hit.coverage if lex_hit else 0.0,
                             lex_hit.matched if lex_hit else (), lex_hit.lexical if lex_hit else 0.0,
                             round(d.score, 4) if d else 0.0))
        fused.sort(key=lambda h: (-h.score, h.clause.id))
        top_dense = dense[0].score if dense else 0.0
        if lexical_found:
            found = top_dense >= DENSE_VETO
        else:
            found = top_dense >= (DENSE_FOUND_TOPICAL if topical else DENSE_FOUND)
        if found and fused and question_scores is not None:
            # No weak match shown: the clause we would quote must itself mean something like the question.
            found = float(question_scores[self._row[fused[0].clause.id]]) >= ANSWER_FLOOR
        return fused, found

@dataclass(frozen=True)
class Vocabulary:
    """Search vocabulary from vocabulary.yaml: synonyms, stemming rewrites, topic words."""
    synonyms: dict[str, list[str]]
    rewrite: dict[str, list[str]]
    topic_words: frozenset[str]

    @classmethod
    def load(cls, path: Path = KNOWLEDGE_DIR / "vocabulary.yaml") -> "Vocabulary":
        data = read_yaml(path) or {}

        def mapping(key):
            raw = data.get(key) or {}
            if not isinstance(raw, dict):
                raise PackError(f"{path}: '{key}' must be a mapping of word to a list of words")
            return {str(k).lower(): [w for v in (vals or []) for w in words(str(v))] for k, vals in raw.items()}

        topic = data.get("topic_words") or []
        if not isinstance(topic, list):
            raise PackError(f"{path}: 'topic_words' must be a list")
        return cls(synonyms=mapping("terms"), rewrite=mapping("rewrite"),
                   topic_words=frozenset(w for t in topic for w in words(str(t))))
