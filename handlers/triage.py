"""Risk triage: signs of risk in what someone sent a member of staff, and what to do at once.

The flags, their patterns and responses live in knowledge/triage.yaml; the numbers and
contacts come from app.yaml. Crisis information is shown the moment a flag is raised.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from knowledge.checker.normalise import normalise
from knowledge.checker.rules import RuleError, compile_pattern
from knowledge.packs import KNOWLEDGE_DIR, read_yaml

from .replies import Block, Bullets, Notice, Text
from .trust import TrustProfile

ESCALATE_TO = ("safeguarding", "comms", "foi")
CRISIS = ("all", "emergency", "none")


@dataclass(frozen=True)
class Flag:
    name: str
    label: str
    patterns: tuple
    tell: str
    escalate: str
    crisis_lines: str
    cites: tuple[str, ...]
    urgent: bool = False
    in_messages: tuple = ()      # a person at risk now, in any message (stricter than `patterns`)
    message_tell: str = ""       # what to tell the member of staff when it is found there


class Triage:
    def __init__(self, flags: list[Flag], trust: TrustProfile):
        self.flags = flags
        self.trust = trust
        self.by_name = {f.name: f for f in flags}

    @classmethod
    def load(cls, trust: TrustProfile, path: Path = KNOWLEDGE_DIR / "triage.yaml") -> "Triage":
        data = read_yaml(path, error=RuleError) or {}
        flags = []
        for name, raw in (data.get("flags") or {}).items():
            where = f"{path}: flag {name!r}"
            if not isinstance(raw, dict) or not raw.get("label") or not raw.get("patterns") or not raw.get("tell"):
                raise RuleError(f"{where}: needs label, patterns and tell")
            if raw.get("escalate") not in ESCALATE_TO:
                raise RuleError(f"{where}: escalate must be one of {', '.join(ESCALATE_TO)}")
            if raw.get("crisis_lines", "none") not in CRISIS:
                raise RuleError(f"{where}: crisis_lines must be one of {', '.join(CRISIS)}")
            flags.append(Flag(name=str(name), label=str(raw["label"]),
                              patterns=tuple(compile_pattern(p, {}, where) for p in raw["patterns"]),
                              tell=" ".join(str(raw["tell"]).split()), escalate=raw["escalate"],
                              crisis_lines=raw.get("crisis_lines", "none"), cites=tuple(raw.get("cites") or ()),
                              urgent=bool(raw.get("urgent", False)),
                              in_messages=tuple(compile_pattern(p, {}, where) for p in raw.get("in_messages") or ()),
                              message_tell=" ".join(str(raw.get("message_tell") or raw["tell"]).split())))
        if not flags:
            raise RuleError(f"{path}: no flags")
        return cls(flags, trust)

    def scan(self, text: str) -> list[Flag]:
        norm = normalise(text or "").text
        return [f for f in self.flags if any(p.search(norm) for p in f.patterns)]

    def scan_message(self, text: str) -> list[Flag]:
        """Flags for a person at risk now in any message to the bot, whatever it is routed to."""
        norm = " ".join(normalise(text or "").text.replace("\u2019", "'").split())
        return [f for f in self.flags if any(p.search(norm) for p in f.in_messages)]

    def crisis(self, flags: list[Flag]) -> tuple[str, ...]:
        """The crisis lines these flags call for, one line each (all, 999 only, or none)."""
        wanted = {f.crisis_lines for f in flags}
        if "all" in wanted:
            lines = self.trust.crisis_lines
        elif "emergency" in wanted:
            lines = [c for c in self.trust.crisis_lines if c.number.strip() == "999"] or self.trust.crisis_lines[:1]
        else:
            return ()
        return tuple(f"{c.name}: {c.number}" + (f" ({c.note})" if c.note else "") for c in lines)

    def blocks(self, flags: list[Flag]) -> list[Block]:
        """What to show at once for newly raised flags: the most urgent first, its crisis lines straight after."""
        flags = sorted(flags, key=lambda f: not f.urgent)
        wanted = {f.crisis_lines for f in flags}
        lines = "all" if "all" in wanted else "emergency" if "emergency" in wanted else "none"
        out: list[Block] = []
        for i, flag in enumerate(flags):
            out.append(Notice(f"{flag.label}: {flag.tell}", "danger" if flag.urgent else "warning"))
            if i == 0 and lines != "none":
                crisis = self.trust.crisis_lines if lines == "all" else [
                    c for c in self.trust.crisis_lines if c.number.strip() == "999"] or self.trust.crisis_lines[:1]
                out.append(Bullets(tuple(f"{c.name}: {c.number}" + (f" ({c.note})" if c.note else "")
                                         for c in crisis)))
        return out

    def policy_line(self, flags: list[Flag]) -> Block | None:
        cites = sorted({c for f in flags for c in f.cites})
        return Text("Policy: " + ", ".join(cites)) if cites else None
