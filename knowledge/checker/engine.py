"""The draft checker: run the rules over a normalised draft, decide the verdict, offer a safer version.

Verdict (categories.yaml): any stop-level finding gives "stop", else any revise-level
gives "revise", else "ok". The checker never logs or stores the draft.
"""
from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path

from ..packs import read_yaml
from .detectors import DETECTORS
from .normalise import Normalised, normalise
from .rules import Fix, Rule, RuleError, RuleSet
from .semantic import SemanticTier

MESSAGES_FILE = Path(__file__).resolve().parent / "semantic_messages.yaml"
SEMANTIC_PREFIX = "semantic-"

MAX_DRAFT_CHARS = 40_000
MAX_MATCHES_PER_RULE = 5
_NEGATION = re.compile(
    r"(?<![\w])(?:never|not|no|nor|don't|dont|do not|doesn't|does not|won't|will not|can't|cannot|can not|"
    r"shouldn't|should not|mustn't|must not|didn't|did not|wouldn't|avoid|without|refuse to)(?![\w])")
NEGATION_WINDOW = 48  # characters before a match, within its sentence


class Spans:
    """Sorted, non-overlapping-by-start spans with a logarithmic overlap test."""

    def __init__(self, spans):
        self._spans = sorted(spans)
        self._starts = [a for a, _ in self._spans]
        self._max_end = list(accumulate((b for _, b in self._spans), max))

    def overlaps(self, start: int, end: int) -> bool:
        i = bisect_left(self._starts, end) - 1   # spans that start before `end`
        return i >= 0 and self._max_end[i] > start


@dataclass(frozen=True)
class Finding:
    category: str
    rule: str
    severity: str
    start: int
    end: int
    quote: str
    message: str
    cites: tuple[str, ...]
    fix: str = ""       # what the mechanical fix does, if there is one
    advice: str = ""
    edit: Fix | None = field(default=None, repr=False, compare=False)  # that fix, for the safer version
    confidence: float | None = None  # the semantic tier's probability; None for rules and detectors

    @property
    def semantic(self) -> bool:
        return self.confidence is not None

    def as_dict(self) -> dict:
        out = {"category": self.category, "rule": self.rule, "severity": self.severity, "start": self.start,
               "end": self.end, "quote": self.quote, "message": self.message, "citations": list(self.cites),
               "fix": self.fix, "advice": self.advice, "source": "semantic" if self.semantic else "rule"}
        if self.semantic:
            out["confidence"] = round(self.confidence, 3)
        return out


@dataclass
class CheckResult:
    verdict: str | None            # None only for an empty draft
    findings: list[Finding] = field(default_factory=list)
    account: str = "unknown"
    revised: str | None = None
    checked_chars: int = 0
    total_chars: int = 0
    empty: bool = False
    draft: str = field(default="", repr=False)  # the text as given; never logged, not in as_dict()

    @property
    def truncated(self) -> bool:
        return self.checked_chars < self.total_chars

    def as_dict(self) -> dict:
        return {"verdict": self.verdict, "account": self.account,
                "findings": [f.as_dict() for f in self.findings], "revised": self.revised,
                "checked_chars": self.checked_chars, "total_chars": self.total_chars, "empty": self.empty}


def verdict_for(findings: list[Finding]) -> str:
    levels = {f.severity for f in findings}
    return "stop" if "stop" in levels else "revise" if "revise" in levels else "ok"


class Checker:
    def __init__(self, ruleset: RuleSet, disclaimer: str, helpline: str, semantic: SemanticTier | None = None):
        self.ruleset = ruleset
        self.disclaimer = disclaimer
        self.helpline = helpline
        self.semantic = semantic
        # A disclaimer cannot make postable a post that must not be posted.
        self._dropped_by_stop = {r.id for r in ruleset.rules if r.suppressed_by == "stop"}
        self._dropped_by_stop.add(SEMANTIC_PREFIX + "missing-disclaimer")
        self._messages = read_yaml(MESSAGES_FILE, error=RuleError) if semantic else {}

    def check(self, text: str, account: str = "unknown", revise: bool = True) -> CheckResult:
        account = account if account in ("personal", "official") else "unknown"
        text = text if isinstance(text, str) else ""
        checked = text[:MAX_DRAFT_CHARS]
        norm = normalise(checked)
        result = CheckResult(verdict=None, account=account, checked_chars=len(checked), total_chars=len(text), draft=text)
        if not norm.text.strip():
            result.empty = not text.strip()
            result.verdict = None if result.empty else "ok"
            return result
        dismissed: set[str] = set()
        findings = self._run(norm, account, dismissed)
        if self.semantic is not None:
            findings = self._with_semantic(findings, checked, norm, account, dismissed=dismissed)
        result.findings = findings
        result.verdict = verdict_for(findings)
        if revise and findings:
            result.revised = self._revise(checked, findings, account)
        return result

    def combine(self, text: str, account: str, hits) -> list[Finding]:
        """Rules plus given semantic hits, as check() combines them (for tuning thresholds offline)."""
        norm = normalise(text[:MAX_DRAFT_CHARS])
        dismissed: set[str] = set()
        rules = self._run(norm, account, dismissed)
        return self._with_semantic(rules, text[:MAX_DRAFT_CHARS], norm, account, hits, dismissed)

    # -- running rules -----------------------------------------------------

    def _run(self, norm: Normalised, account: str, dismissed: set[str] | None = None) -> list[Finding]:
        """The rules' findings. `dismissed` collects categories whose words appear only quoted, negated or
        allow-listed ("words like 'psycho' hurt"): the semantic tier must not flag a mention as a use."""
        allowed = Spans(m.span() for p in self.ruleset.allow for m in p.finditer(norm.text))
        seen: dict[tuple, bool] = {}  # (pattern, scope) -> found: each context is searched once per draft
        findings: list[Finding] = []
        for rule in self.ruleset.rules:
            if account not in rule.accounts:
                continue
            for start, end in self._candidates(rule, norm):
                if (allowed.overlaps(start, end) or (rule.skip_quoted and norm.in_quotes(start, end))
                        or (rule.negatable and self._negated(norm, start))):
                    if dismissed is not None:
                        dismissed.add(rule.category)
                    continue
                if not self._context_holds(rule, norm, start, seen):
                    continue
                a, b = norm.span(start, end)
                fix = rule.fix.for_words(self._view(rule, norm)[start:end]) if rule.fix else None
                findings.append(Finding(rule.category, rule.id, rule.severity, a, b, norm.original[a:b],
                                        rule.message, rule.cites, self._describe_fix(fix), rule.advice, fix))
                if not rule.each_match or sum(f.rule == rule.id for f in findings) >= MAX_MATCHES_PER_RULE:
                    break
        if any(f.severity == "stop" for f in findings):
            findings = [f for f in findings if f.rule not in self._dropped_by_stop]
        findings.sort(key=lambda f: (f.start, f.rule))
        return findings

    def _with_semantic(self, findings: list[Finding], text: str, norm: Normalised, account: str,
                       hits=None, dismissed: set[str] = frozenset()) -> list[Finding]:
        """Add the semantic tier's findings for categories the rules did not find (rules quote more precisely)
        and did not see only as a quoted or negated mention."""
        found = {f.category for f in findings} | set(dismissed)
        findings = list(findings)
        for hit in (self.semantic.score(text, norm, account) if hits is None else hits):
            if hit.category in found:
                continue
            if hit.category == "missing-disclaimer" and account == "official":
                continue  # the official account speaks for the trust: no personal-views disclaimer
            cat = self.ruleset.categories[hit.category]
            said = self._messages.get(hit.category) or {}
            severity = cat["level"]
            if hit.category == "suicide-safe-messaging" and not hit.stop_level:
                severity = "revise"   # the only problem is that the post signposts no help
            fix = None
            if said.get("fix") == "disclaimer" or (said.get("fix") == "helpline" and severity == "revise"):
                fix = Fix("append", said["fix"])
            findings.append(Finding(hit.category, SEMANTIC_PREFIX + hit.category, severity, hit.start, hit.end,
                                    text[hit.start:hit.end], said.get("message", cat.get("what", "")),
                                    tuple(cat.get("cites", ())), self._describe_fix(fix), said.get("advice", ""),
                                    fix, confidence=hit.probability))
        if any(f.severity == "stop" for f in findings):
            findings = [f for f in findings if f.rule not in self._dropped_by_stop]
        findings.sort(key=lambda f: (f.start, f.rule))
        return findings

    @staticmethod
    def _view(rule: Rule, norm: Normalised) -> str:
        return norm.leet if rule.view == "leet" else norm.cased if rule.case == "original" else norm.text

    def _candidates(self, rule: Rule, norm: Normalised):
        if rule.detector:
            yield from DETECTORS[rule.detector](norm, rule.params)
            return
        view = self._view(rule, norm)
        for pattern in rule.find:
            for m in pattern.finditer(view):
                yield m.span()

    @staticmethod
    def _context_holds(rule: Rule, norm: Normalised, pos: int, seen: dict[tuple, bool]) -> bool:
        """near / signals / unless around a candidate. Each (pattern, sentence or whole text) is searched at
        most once per draft, so a draft with thousands of candidates stays linear."""
        def found(p: re.Pattern, scope: str) -> bool:
            span = norm.sentence_at(pos) if scope == "sentence" else None
            key = (id(p), span)
            hit = seen.get(key)
            if hit is None:
                where = norm.text if span is None else norm.text[span[0]:span[1]]  # ^ anchors at the sentence
                hit = seen[key] = p.search(where) is not None
            return hit

        if rule.near and not all(found(p, rule.near_scope) for p in rule.near):
            return False
        if rule.signals and sum(1 for p in rule.signals if found(p, rule.signals_scope)) < rule.signals_min:
            return False
        if rule.unless and any(found(p, rule.unless_scope) for p in rule.unless):
            return False
        return True

    @staticmethod
    def _negated(norm: Normalised, start: int) -> bool:
        sent_start, _ = norm.sentence_at(start)
        before = norm.text[max(sent_start, start - NEGATION_WINDOW):start]
        return bool(_NEGATION.search(before))

    # -- the safer version -------------------------------------------------

    def _describe_fix(self, fix: Fix | None) -> str:
        if not fix:
            return ""
        if fix.kind == "replace":
            return f'Replace with "{fix.value}".'
        if fix.kind == "remove":
            return "Remove these words."
        return f'Add: "{self._append_text(fix.value)}"'

    def _append_text(self, value: str) -> str:
        return {"disclaimer": self.disclaimer, "helpline": self.helpline}.get(value, value)

    def _revise(self, text: str, findings: list[Finding], account: str) -> str | None:
        """Apply mechanical fixes; only offered when every finding has one and the result checks clean."""
        if any(f.edit is None for f in findings):
            return None
        edits, appends = [], []
        for f in findings:
            fix = f.edit
            if fix.kind == "append":
                extra = self._append_text(fix.value)
                if extra not in appends:
                    appends.append(extra)
            else:
                edits.append((f.start, f.end, fix.value if fix.kind == "replace" else ""))
        out, last = [], 0
        for start, end, new in sorted(edits):
            if start < last:
                continue  # overlapping findings: the first edit wins
            if new and text[start:end][:1].isupper():
                new = new[:1].upper() + new[1:]
            out.append(text[last:start])
            out.append(new)
            last = end
        out.append(text[last:])
        revised = re.sub(r"[ \t]{2,}", " ", "".join(out))
        revised = re.sub(r" +([,.!?;:])", r"\1", revised).strip()
        for extra in appends:
            revised = f"{revised}\n\n{extra}" if revised else extra
        again_norm = normalise(revised)
        dismissed: set[str] = set()
        again = self._run(again_norm, account, dismissed)
        if self.semantic is not None:
            again = self._with_semantic(again, revised, again_norm, account, dismissed=dismissed)
        fixed = {f.rule for f in findings}
        if any(f.rule in fixed for f in again):
            return None
        return revised
