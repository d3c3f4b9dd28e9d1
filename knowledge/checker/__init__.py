"""The draft checker: "can I post this?" against the policy's rules."""
from .engine import MAX_DRAFT_CHARS, Checker, CheckResult, Finding, verdict_for
from .rules import RuleError, RuleSet, load_ruleset

__all__ = ["Checker", "CheckResult", "Finding", "MAX_DRAFT_CHARS", "RuleError", "RuleSet", "load_ruleset", "verdict_for"]
