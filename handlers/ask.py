"""Policy questions: answer from the policy itself, quoted and cited, or say it isn't there."""
from __future__ import annotations

from knowledge import KnowledgeBase
from knowledge.search import MAX_QUERY_CHARS, Hit, SearchResult

from .replies import Actions, Bullets, Button, Heading, Notice, Quote, Reply, Text
from .trust import TrustProfile


MAX_BUTTON_TEXT = 1900  # what a button may carry back (Slack allows 2,000 characters)


class AskHandler:
    def __init__(self, kb: KnowledgeBase, trust: TrustProfile):
        self.kb = kb
        self.trust = trust

    def search(self, question: str) -> SearchResult:
        return self.kb.index.search(question, limit=3)

    def cite(self, hit: Hit) -> dict:
        """Everything a surface needs to show and cite one clause."""
        c = hit.clause
        pack = self.kb.pack(c.source)
        return {"citation": c.citation, "clause_id": c.id, "source": c.source, "section": c.section,
                "title": c.title, "document": pack.short_name, "version": pack.version,
                "summary": c.summary, "quote": c.text, "score": hit.score}

    def label(self, hit: Hit) -> str:
        return self.label_clause(hit.clause)

    def answer(self, question: str) -> Reply:
        result = self.search(question)
        if result.empty:
            return help_reply(self.trust)
        notes = []
        if result.truncated:
            notes.append(f"Your question was long, so I searched its first {MAX_QUERY_CHARS:,} characters.")
        if result.corrections:
            fixed = ", ".join(f"'{a}' as '{b}'" for a, b in sorted(result.corrections.items()))
            notes.append(f"I read {fixed}.")
        if not result.found:
            return self._not_found(question, notes)
        best, related = result.hits[0], result.hits[1:]
        lead = best.clause.summary or f"The {self.kb.pack(best.clause.source).short_name} covers this."
        blocks = [Text(lead), Quote(best.clause.text, self.label(best))]
        partner = self.partner_note(best.clause.source)
        if partner:
            blocks.append(Notice(partner))
        if related:
            blocks.append(Heading("Related sections"))
            blocks.append(Bullets(tuple(f"{self.label(h)}: {h.clause.summary}".rstrip(": ") for h in related)))
        blocks += [Notice(n) for n in notes]
        blocks.append(Text(f"Anything unclear? Ask the {self.trust.comms.line()}."))
        cite = best.clause.citation
        blocks.append(Actions((Button("Helpful", "feedback", f"up|{cite}"), Button("Not helpful", "feedback", f"down|{cite}"),
                               Button("Ask a person", "ask_comms", "question|" + question[:MAX_BUTTON_TEXT]))))
        data = {"found": True, "lead": lead, "answers": [self.cite(h) for h in result.hits],
                "contact": self.trust.comms.line(), "notes": notes, "partner_document": bool(partner)}
        return Reply("answer", blocks, data)

    def partner_note(self, source: str) -> str:
        """An answer from a partner's document says whose it is: the user's own trust policy governs."""
        primary = self.kb.packs[0]
        if source == primary.source:
            return ""
        pack = self.kb.pack(source)
        whose = pack.organisation or pack.short_name
        return (f"This comes from {pack.short_name} ({whose}), a partner's document, not "
                f"{self.trust.short_name}'s own policy. Your own trust's social media policy is the one that "
                f"applies to you; if the two seem to differ, ask the {self.trust.comms.name}.")

    def explain(self, citation: str) -> Reply:
        """'Why?': the policy text behind a citation, quoted in full."""
        clauses = self.kb.clauses_for(citation)
        if not clauses:
            return Reply("why", [Text(f"I couldn't find {citation} in the active policies.")])
        blocks = [Heading(f"Why: {citation}")]
        blocks += [Quote(c.text, self.label_clause(c)) for c in clauses[:4]]
        return Reply("why", blocks, {"citation": citation, "clauses": [c.id for c in clauses]})

    def label_clause(self, clause) -> str:
        pack = self.kb.pack(clause.source)
        version = f" v{pack.version}" if pack.version[:1].isdigit() else f" ({pack.version})"
        return f"{pack.short_name}{version}, section {clause.section}: {clause.title}"

    def _not_found(self, question: str, notes: list[str]) -> Reply:
        docs = ", ".join(p.short_name for p in self.kb.packs)
        lead = "I couldn't find this in the social media policies I know, so I won't guess."
        blocks = [Text(lead), Text(f"I searched: {docs}."), *[Notice(n) for n in notes],
                  Text(f"The {self.trust.comms.line()} can help. Shall I pass your question to them?"),
                  Actions((Button("Ask the comms team", "ask_comms", "question|" + question[:MAX_BUTTON_TEXT], "primary"),))]
        data = {"found": False, "lead": lead, "answers": [], "contact": self.trust.comms.line(), "notes": notes}
        return Reply("not_found", blocks, data)


def help_reply(trust: TrustProfile) -> Reply:
    """What the bot does and how to use it; the answer to an empty message."""
    blocks = [
        Heading("I help you use social media safely under the trust's policy."),
        Bullets((
            "Ask me a question about the policy, e.g. \"An ex-patient added me on Facebook, what do I do?\"",
            "Paste a draft post, or start with \"can I post this?\", and I'll check it against the policy.",
            "Type /report-contact if a patient, family member or member of the public has contacted you "
            "on your personal social media.",
        )),
        Text(f"For anything else, contact the {trust.comms.line()}."),
    ]
    return Reply("help", blocks, {"found": False, "answers": [], "help": True})
