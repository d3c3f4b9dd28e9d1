"""'Can I post this?': check a draft and answer with the verdict, each problem, and how to fix it.

Draft replies are always private: a draft can hold patient details, so no surface may
echo one into a shared channel. The draft text is never logged.
"""
from __future__ import annotations

from knowledge.checker import MAX_DRAFT_CHARS, Checker, CheckResult

from .ask import MAX_BUTTON_TEXT
from .replies import Actions, Button, Copyable, Heading, Notice, Reply, Text
from .trust import TrustProfile

BANNERS = {
    "ok": ("OK to post: nothing in the policy stands against this as written.", "info"),
    "revise": ("Revise before posting: make the changes below first.", "warning"),
    "stop": ("Don't post this. Talk to the comms team (or your line manager or safeguarding lead) first.", "danger"),
}
LABELS = {
    "patient-identifiable": "Could identify a patient",
    "confidential-information": "Confidential information",
    "colleague-abuse": "Attacks a colleague",
    "service-user-relationship": "Professional boundaries with service users",
    "complaint-handling": "Handling a complaint on social media",
    "media-response": "Responding to the media",
    "suicide-safe-messaging": "Safe messaging about suicide",
    "safeguarding-children": "Safeguarding children and adults at risk",
    "official-representation": "Speaking for the trust",
    "whistleblowing-channel": "Raising concerns in the wrong place",
    "offensive-content": "Offensive content",
    "political-impartiality": "Political impartiality",
    "commercial-endorsement": "Commercial endorsement",
    "personal-data-collection": "Collecting personal data",
    "personal-safety": "Your personal safety",
    "missing-disclaimer": "Needs a personal-views disclaimer",
    "stigmatising-language": "Stigmatising language",
}
MAX_QUOTE_SHOWN = 200   # characters of a finding's quote shown in its heading (the finding keeps all of it)
ACCOUNT_WORDS = {"personal": "a personal account", "official": "the trust's official account",
                 "unknown": "an account you didn't say (I assumed the stricter case)"}


def helpline_line(trust: TrustProfile) -> str:
    """The signposting sentence the safer version adds to posts about suicide."""
    line = next((c for c in trust.crisis_lines if "samaritans" in c.name.lower()), None)
    if line:
        return f"If you're struggling, you can talk to Samaritans, free, day or night, on {line.number}."
    first = trust.crisis_lines[0]
    return f"If you're struggling, help is available: {first.name}, {first.number}."


class CheckHandler:
    def __init__(self, checker: Checker, trust: TrustProfile):
        self.checker = checker
        self.trust = trust

    def check(self, text: str, account: str = "unknown") -> CheckResult:
        return self.checker.check(text, account)

    def reply(self, text: str, account: str = "unknown") -> Reply:
        result = self.check(text, account)
        return self.render(result)

    def render(self, result: CheckResult) -> Reply:
        data = result.as_dict()
        if result.empty:
            return Reply("check_empty", [Text("Paste the text of your draft and I'll check it against the policy.")],
                         data, private=True)
        title, level = BANNERS[result.verdict]
        blocks = [Notice(title, level)]
        if result.truncated:   # up front: the verdict covers only part of the draft
            blocks.append(Notice(f"Your draft is {result.total_chars:,} characters; I checked the first "
                                 f"{result.checked_chars:,}. Check the rest separately.", "warning"))
        for f in result.findings:
            words = " ".join(f.quote.split())
            if len(words) > MAX_QUOTE_SHOWN:   # a whole unpunctuated paragraph would bury the rest of the reply
                cut = words.rfind(" ", 0, MAX_QUOTE_SHOWN - 1)
                words = words[:cut if cut > MAX_QUOTE_SHOWN // 2 else MAX_QUOTE_SHOWN - 1].rstrip() + "\u2026"
            how = f.fix or f.advice
            if f.fix and f.advice:
                how = f"{f.advice} {f.fix}"
            body = [Text(f.message)] + ([Text(f"How to fix: {how}")] if how else []) + [Text("Policy: " + ", ".join(f.cites))]
            blocks.append(Heading(f"{LABELS.get(f.category, f.category)}: \u201c{words}\u201d", item=len(body)))
            blocks += body
        if result.revised:
            blocks.append(Copyable(result.revised, "A safer version (check it still says what you mean)"))
        blocks.append(Text(f"Checked as a post for {ACCOUNT_WORDS[result.account]}."))
        buttons = []
        if result.verdict == "stop":
            draft = result.draft
            if draft and len(draft) <= MAX_BUTTON_TEXT:
                buttons.append(Button("Ask comms to review", "ask_comms", "draft|" + draft, "danger",
                                      confirm="Send this draft to the comms team's channel for review?"))
            else:
                blocks.append(Text(f"To have comms review it, send it to the {self.trust.comms.line()}."))
        if result.findings:
            buttons.append(Button("Why?", "why", result.findings[0].cites[0]))
        if buttons:
            blocks.append(Actions(tuple(buttons)))
        return Reply(f"check_{result.verdict}", blocks, data, private=True)


__all__ = ["CheckHandler", "MAX_DRAFT_CHARS", "helpline_line", "LABELS"]
