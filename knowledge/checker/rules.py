"""Checker rules as data: load, validate and compile knowledge/rules/*.yaml and a trust's overrides.

A rule says what it looks for (patterns over the normalised draft, or a code
detector), in which accounts, what to tell the user, which clauses it comes from and
how to fix it. Patterns may name lexicon groups as {group}. A bad rule file stops
start-up with the file, the rule and the reason.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..packs import KNOWLEDGE_DIR, PackError, load_sections, read_yaml
from .firstchar import with_first_char_hint

RULES_DIR = KNOWLEDGE_DIR / "rules"
ACCOUNTS = ("personal", "official", "unknown")
LEVELS = ("stop", "revise")
SCOPES = ("sentence", "text")
_RULE_KEYS = {"id", "category", "severity", "accounts", "find", "detector", "params", "near", "near_scope",
              "signals", "signals_min", "signals_scope", "unless", "unless_scope", "view", "negatable",
              "skip_quoted", "case", "suppressed_by", "each_match", "message", "cites", "fix", "advice"}
_FIX_KEYS = {"replace", "remove", "append"}
_GROUP = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


class RuleError(PackError):
    """A rule file that cannot be used; the message names the file, the rule and the reason."""


@dataclass(frozen=True)
class Fix:
    kind: str                 # replace | remove | append
    value: str | dict = ""    # replacement text (or {matched words: replacement}); for append:
                              # "disclaimer", "helpline" or literal text

    def for_words(self, words: str) -> "Fix | None":
        """The fix for one match: a replace mapping may have nothing for these words."""
        if self.kind == "replace" and isinstance(self.value, dict):
            new = self.value.get(" ".join(words.split()))
            return Fix("replace", new) if new is not None else None
        return self


@dataclass
class Rule:
    id: str
    category: str
    severity: str
    message: str
    cites: tuple[str, ...]
    accounts: frozenset[str]
    find: list[re.Pattern] = field(default_factory=list)
    detector: str = ""
    params: dict = field(default_factory=dict)
    near: list[re.Pattern] = field(default_factory=list)
    near_scope: str = "text"
    signals: list[re.Pattern] = field(default_factory=list)
    signals_min: int = 0
    signals_scope: str = "text"
    unless: list[re.Pattern] = field(default_factory=list)
    unless_scope: str = "text"
    view: str = "text"
    negatable: bool = False
    skip_quoted: bool = False
    case: str = "folded"
    suppressed_by: str = ""
    each_match: bool = False
    fix: Fix | None = None
    advice: str = ""
    source: str = ""


@dataclass
class RuleSet:
    rules: list[Rule]
    categories: dict[str, dict]
    lexicon: dict[str, list[str]]
    allow: list[re.Pattern]


def _phrase(term: str) -> str:
    """A lexicon term as regex: 're:' terms are regex, others literal with flexible spaces."""
    term = str(term).strip()
    if term.startswith("re:"):
        return term[3:].strip()
    return r"\s+".join(re.escape(w) for w in term.casefold().split())


def expand(pattern: str, lexicon: dict[str, list[str]], where: str) -> str:
    def sub(m: re.Match) -> str:
        name = m.group(1)
        if name not in lexicon:
            raise RuleError(f"{where}: unknown lexicon group {{{name}}}")
        return "(?:" + "|".join(_phrase(t) for t in sorted(lexicon[name], key=len, reverse=True)) + ")"
    return _GROUP.sub(sub, pattern)


def compile_pattern(pattern, lexicon, where: str, case: str = "folded", hint: bool = True) -> re.Pattern:
    """A rule pattern, whole words only; `hint` adds the first-character look-ahead (firstchar.py)."""
    if not isinstance(pattern, str) or not pattern.strip():
        raise RuleError(f"{where}: patterns must be non-empty strings")
    if pattern.startswith("re:"):  # rule patterns are regexes already; accept the lexicon's prefix too
        pattern = pattern[3:].strip()
    body = expand(pattern, lexicon, where)
    flags = 0 if case == "original" else re.IGNORECASE
    try:
        wrapped = r"(?<![\w])(?:" + body + r")(?![\w])"
        return re.compile(with_first_char_hint(body, wrapped, flags) if hint else wrapped, flags)
    except re.error as exc:
        raise RuleError(f"{where}: pattern {pattern!r} is not a valid regular expression: {exc}") from None


def _list(raw, key, where) -> list:
    value = raw.get(key, [])
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise RuleError(f"{where}: '{key}' must be a list")
    return value


def _scope(raw, key, where) -> str:
    scope = raw.get(key, "text")
    if scope not in SCOPES:
        raise RuleError(f"{where}: '{key}' must be one of {', '.join(SCOPES)}")
    return scope


def build_rule(raw, path: str, categories: dict, lexicon: dict, citations: set[str], detectors: set[str]) -> Rule:
    if not isinstance(raw, dict):
        raise RuleError(f"{path}: each rule must be a mapping")
    rid = raw.get("id")
    where = f"{path}: rule {rid!r}" if rid else f"{path}: a rule with no id"
    if not isinstance(rid, str) or not re.fullmatch(r"[a-z0-9][a-z0-9\-]*", rid):
        raise RuleError(f"{where}: id must be lower-case letters, digits and '-'")
    unknown = sorted(set(raw) - _RULE_KEYS)
    if unknown:
        raise RuleError(f"{where}: unknown field(s) {', '.join(unknown)}")
    category = raw.get("category")
    if category not in categories:
        raise RuleError(f"{where}: category {category!r} is not in categories.yaml")
    severity = raw.get("severity", categories[category]["level"])
    if severity not in LEVELS:
        raise RuleError(f"{where}: severity must be one of {', '.join(LEVELS)}")
    message = raw.get("message")
    if not isinstance(message, str) or not message.strip():
        raise RuleError(f"{where}: missing 'message'")
    cites = _list(raw, "cites", where) or categories[category].get("cites", [])
    for c in cites:
        if c not in citations:
            raise RuleError(f"{where}: citation {c!r} is not in sections.yaml")
    accounts = _list(raw, "accounts", where) or list(ACCOUNTS)
    bad = [a for a in accounts if a not in ACCOUNTS]
    if bad:
        raise RuleError(f"{where}: unknown account(s) {', '.join(map(str, bad))}")
    detector = raw.get("detector", "")
    if detector and detector not in detectors:
        raise RuleError(f"{where}: unknown detector {detector!r} (known: {', '.join(sorted(detectors))})")
    case = raw.get("case", "folded")
    if case not in ("folded", "original"):
        raise RuleError(f"{where}: case must be 'folded' or 'original'")
    find = [compile_pattern(p, lexicon, where, case) for p in _list(raw, "find", where)]
    if not find and not detector:
        raise RuleError(f"{where}: needs 'find' patterns or a 'detector'")
    view = raw.get("view", "text")
    if view not in ("text", "leet"):
        raise RuleError(f"{where}: view must be 'text' or 'leet'")
    fix = None
    if raw.get("fix") is not None:
        f = raw["fix"]
        if not isinstance(f, dict) or len(f) != 1 or not set(f) <= _FIX_KEYS:
            raise RuleError(f"{where}: fix must be one of {{replace: text}}, {{remove: true}}, {{append: text}}")
        kind, value = next(iter(f.items()))
        if kind == "replace" and isinstance(value, dict):
            value = {" ".join(str(k).casefold().split()): str(v) for k, v in value.items()}
        elif not isinstance(value, (str, bool)):
            raise RuleError(f"{where}: fix {kind} must be text")
        fix = Fix(kind, value if isinstance(value, dict) else "" if value is True else str(value))
    signals = [compile_pattern(p, lexicon, where) for p in _list(raw, "signals", where)]
    signals_min = raw.get("signals_min", 1 if signals else 0)
    if not isinstance(signals_min, int) or signals_min > len(signals):
        raise RuleError(f"{where}: signals_min must be a number no larger than the number of signals")
    suppressed_by = raw.get("suppressed_by", "")
    if suppressed_by and suppressed_by not in LEVELS:
        raise RuleError(f"{where}: suppressed_by must be 'stop' or 'revise'")
    return Rule(
        id=rid, category=category, severity=severity, message=" ".join(message.split()), cites=tuple(cites),
        accounts=frozenset(accounts), find=find, detector=detector,
        params={**dict(raw.get("params") or {}), "_extra_names": tuple(lexicon.get("first_names", ()))},
        near=[compile_pattern(p, lexicon, where) for p in _list(raw, "near", where)],
        near_scope=_scope(raw, "near_scope", where),
        signals=signals, signals_min=signals_min, signals_scope=_scope(raw, "signals_scope", where),
        unless=[compile_pattern(p, lexicon, where) for p in _list(raw, "unless", where)],
        unless_scope=_scope(raw, "unless_scope", where), view=view,
        negatable=bool(raw.get("negatable", False)), skip_quoted=bool(raw.get("skip_quoted", False)),
        case=case, suppressed_by=suppressed_by, each_match=bool(raw.get("each_match", False)), fix=fix,
        advice=" ".join(str(raw.get("advice", "")).split()), source=path)


def load_categories(path: Path = RULES_DIR / "categories.yaml") -> dict[str, dict]:
    data = read_yaml(path, error=RuleError) or {}
    cats = data.get("categories")
    if not isinstance(cats, dict) or not cats:
        raise RuleError(f"{path}: expected a 'categories' mapping")
    for name, c in cats.items():
        if not isinstance(c, dict) or c.get("level") not in LEVELS:
            raise RuleError(f"{path}: category {name!r} needs a level of stop or revise")
    return cats


def load_lexicon(path: Path = RULES_DIR / "lexicon.yaml") -> dict[str, list[str]]:
    data = read_yaml(path, error=RuleError) or {}
    groups = data.get("groups")
    if not isinstance(groups, dict):
        raise RuleError(f"{path}: expected a 'groups' mapping of name to a list of terms")
    out = {}
    for name, terms in groups.items():
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", str(name)) or not isinstance(terms, list) or not terms:
            raise RuleError(f"{path}: group {name!r} must be a lower_case name with a non-empty list of terms")
        out[str(name)] = [str(t) for t in terms]
    return out


def load_ruleset(local: Path | None = None, rules_dir: Path = RULES_DIR,
                 extra_terms: dict[str, list[str]] | None = None) -> RuleSet:
    """The shipped rules plus a trust's own file (disable rules, add terms, allow phrases, add rules).

    `extra_terms` adds words to lexicon groups from the deployment (e.g. the trust's names).
    """
    from .detectors import DETECTORS

    categories = load_categories(rules_dir / "categories.yaml")
    lexicon = load_lexicon(rules_dir / "lexicon.yaml")
    for group, terms in (extra_terms or {}).items():
        lexicon.setdefault(group, []).extend(t for t in terms if t.strip())
    citations = {f"{src} {sec}" for src, meta in load_sections().items() for sec in meta["sections"]}
    overrides = {}
    if local:
        overrides = read_yaml(Path(local), error=RuleError) or {}
        unknown = sorted(set(overrides) - {"disable", "terms", "allow", "rules"})
        if unknown:
            raise RuleError(f"{local}: unknown field(s) {', '.join(unknown)} (allowed: disable, terms, allow, rules)")
        for group, terms in (overrides.get("terms") or {}).items():
            if not isinstance(terms, list):
                raise RuleError(f"{local}: terms.{group} must be a list")
            lexicon.setdefault(str(group), []).extend(str(t) for t in terms)
    raw_rules: list[tuple[str, dict]] = []
    for path in sorted(rules_dir.glob("*.yaml")):
        if path.name in ("categories.yaml", "lexicon.yaml"):
            continue
        data = read_yaml(path, error=RuleError) or {}
        if not isinstance(data.get("rules"), list):
            raise RuleError(f"{path}: expected a 'rules' list")
        raw_rules += [(str(path), r) for r in data["rules"]]
    if local:
        raw_rules += [(str(local), r) for r in _list(overrides, "rules", str(local))]
    rules, seen = [], {}
    for path, raw in raw_rules:
        rule = build_rule(raw, path, categories, lexicon, citations, set(DETECTORS))
        if rule.id in seen:
            raise RuleError(f"{path}: rule {rule.id!r}: duplicate id (also in {seen[rule.id]})")
        seen[rule.id] = path
        rules.append(rule)
    disabled = set(_list(overrides, "disable", str(local))) if local else set()
    unknown_ids = disabled - set(seen)
    if unknown_ids:
        raise RuleError(f"{local}: cannot disable unknown rule(s) {', '.join(sorted(unknown_ids))}")
    rules = [r for r in rules if r.id not in disabled]
    allow_terms = lexicon.get("allow", []) + [str(a) for a in _list(overrides, "allow", str(local))] if local \
        else lexicon.get("allow", [])
    allow = [compile_pattern(_phrase(a), lexicon, "allow-list") for a in allow_terms]
    return RuleSet(rules=rules, categories=categories, lexicon=lexicon, allow=allow)
