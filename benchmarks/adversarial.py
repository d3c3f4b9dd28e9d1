"""Adversarial drafts for the checker's time budget: repeated triggers, digit and punctuation runs,
homoglyphs, zero-width splits. Shared by benchmarks/bench_check.py and the linear-time tests."""
from __future__ import annotations


def adversarial(size: int) -> dict[str, str]:
    def fill(unit: str) -> str:
        return (unit * (size // len(unit) + 1))[:size]
    return {
        "bay-3": fill("bay 3 "),
        "triggers": fill("my patient in bed 4 on the ward, psycho nutter, committed suicide, vote labour! "),
        "digits": fill("0123456789"),
        "punctuation": fill("!?.,;:'\"-*"),
        "leet-run": fill("@$!0134 "),
        "homoglyphs": fill("рsусhо раtіеnt "),
        "zero-width": fill("p\u200bs\u200by\u200bc\u200bh\u200bo "),
        "spaced": fill("s c h i z o "),
        "one-sentence": fill("and the patient on the ward said "),
        "emoji": fill("😂🔥💙 "),
        "quotes": fill("'a' \"b\" "),
        "phone-ish": fill("07700 900123 943 476 5919 "),
    }
