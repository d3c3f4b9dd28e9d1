"""The labelled corpus the semantic tier is trained on (knowledge/training/corpus/*.jsonl).

Written from the policy clauses and categories.yaml, in many voices (see README.md here), never from the
rules or the evaluation sets. `load_corpus` validates every item: its categories exist, and its verdict
is the one categories.yaml gives for them (with the suicide signposting exception).
"""
from __future__ import annotations

import json
from pathlib import Path

from ..checker.rules import load_categories

CORPUS_DIR = Path(__file__).resolve().parent / "corpus"
ACCOUNTS = ("personal", "official", "unknown")
SUICIDE = "suicide-safe-messaging"


class CorpusError(ValueError):
    """A corpus line that cannot be used; says which file, line and why."""


def expected_verdicts(categories: list[str], levels: dict[str, str]) -> set[str]:
    """The verdicts categories.yaml allows for these categories."""
    if not categories:
        return {"ok"}
    stops = [c for c in categories if levels[c] == "stop"]
    if not stops:
        return {"revise"}
    if stops == [SUICIDE]:
        return {"stop", "revise"}  # revise when the only problem is a post about suicide that signposts no help
    return {"stop"}


def load_corpus(directory: Path = CORPUS_DIR) -> list[dict]:
    levels = {name: c["level"] for name, c in load_categories().items()}
    items, ids = [], {}
    for path in sorted(directory.glob("*.jsonl")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            where = f"{path.name}:{n}"
            try:
                item = json.loads(line)
            except ValueError as exc:
                raise CorpusError(f"{where}: not JSON ({exc})") from None
            text, cats, verdict = item.get("text"), item.get("categories"), item.get("verdict")
            if not isinstance(text, str) or not text.strip():
                raise CorpusError(f"{where}: needs a non-empty text")
            if not isinstance(cats, list) or any(c not in levels for c in cats):
                raise CorpusError(f"{where}: unknown category in {cats!r}")
            if verdict not in expected_verdicts(cats, levels):
                raise CorpusError(f"{where}: verdict {verdict!r} does not follow from {cats} (categories.yaml)")
            if item.get("account", "unknown") not in ACCOUNTS:
                raise CorpusError(f"{where}: account must be one of {', '.join(ACCOUNTS)}")
            iid = str(item.get("id") or where)
            if iid in ids:
                raise CorpusError(f"{where}: duplicate id {iid!r} (also {ids[iid]})")
            ids[iid] = where
            items.append({"id": iid, "text": text, "account": item.get("account", "unknown"),
                          "verdict": verdict, "categories": sorted(set(cats)), "why": item.get("why", ""),
                          "author": item.get("author", ""), "platform": item.get("platform", ""),
                          "file": path.name})
    return items
