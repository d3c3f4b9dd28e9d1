"""/report-contact: the five steps for unsolicited contact on personal social media.

BSMHFT policy 3.2.1 ("Unsolicited engagement"): 1 do not engage; 2 document the
interaction; 3 report to your line manager; 4 redirect to approved channels where
appropriate; 5 review your privacy settings. STEPS below is the whole flow, in order:
each step says what to tell the user, what to ask, how to read the answer and (by its
place in the list) where to go next. Every answer is triaged for risk, and crisis
information is shown the moment a risk appears. The state lives in the store, so a
restart resumes where the user was; each answer is saved in one transaction.
"""
from __future__ import annotations

import datetime as dt
import re
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from zoneinfo import ZoneInfo

from knowledge.checker.normalise import normalise
from knowledge.packs import KNOWLEDGE_DIR, read_yaml

from .escalation import EscalationService
from .replies import Actions, Block, Bullets, Button, Copyable, Heading, Notice, Reply, Text
from .store import CANCELLED, COMPLETED, Incident, Store, utcnow
from .triage import Flag, Triage
from .trust import TrustProfile
from .when import WhenError, parse_when

MAX_DESCRIPTION = 1000
MAX_NAME = 100
CANCEL_WORDS = {"cancel", "stop", "quit", "abandon", "/cancel"}
BACK_WORDS = {"back", "go back", "previous", "undo", "/back"}
HELP_WORDS = {"help", "?", "/help"}
# A person picked from a platform's people picker arrives as an id (Slack U..., a Teams Azure AD
# object id or 29:...), not a name: don't show it to the user as if it were one.
PLATFORM_ID = re.compile(r"^(?:[UW][A-Z0-9]{2,}|(?i:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})|29:\S+)$")
PAUSE_AFTER = 5 * 60  # seconds of silence after which the next message is not taken as an answer unasked


class Invalid(ValueError):
    """An answer we can't use; the message says what we need instead."""


@dataclass(frozen=True)
class Choice:
    value: str
    label: str
    words: tuple[str, ...] = ()


@dataclass(frozen=True)
class Step:
    name: str
    policy_step: int          # which of the five policy steps this belongs to
    question: str
    kind: str                 # choice | yesno | when | text | person
    choices: tuple[Choice, ...] = ()
    intro: str = ""           # told before the question the first time the step is shown


PLATFORMS = (
    Choice("x", "X (Twitter)", ("x", "twitter", "tweet", "x.com")),
    Choice("facebook", "Facebook", ("facebook", "fb", "messenger")),
    Choice("instagram", "Instagram", ("instagram", "insta", "ig")),
    Choice("linkedin", "LinkedIn", ("linkedin", "linked in")),
    Choice("whatsapp", "WhatsApp", ("whatsapp", "whats app")),
    Choice("tiktok", "TikTok", ("tiktok", "tik tok")),
    Choice("other", "Other", ("other", "snapchat", "threads", "bluesky", "reddit", "youtube", "email", "text")),
)
KINDS = (
    Choice("request", "Friend or follow request", ("friend request", "follow request", "friend", "follow", "followed",
                                                   "connection", "connect", "add", "added", "request")),
    Choice("message", "Private message", ("message", "messaged", "dm", "pm", "inbox", "private message", "text")),
    Choice("comment", "Comment on my post", ("comment", "commented", "reply", "replied")),
    Choice("tag", "Tagged me", ("tag", "tagged", "mention", "mentioned")),
    Choice("other", "Other", ("other",)),
)
FROM = (
    Choice("former_service_user", "Former service user", ("former", "ex", "past", "discharged", "used to")),
    Choice("current_service_user", "Current service user", ("current", "service user", "patient", "client")),
    Choice("family_or_carer", "Family member or carer", ("family", "carer", "relative", "mum", "dad", "parent",
                                                          "son", "daughter", "wife", "husband", "partner")),
    Choice("public", "Member of the public", ("public", "stranger", "someone", "member of the public")),
    Choice("unknown", "Don't know", ("unknown", "don't know", "dont know", "not sure", "no idea")),
)
REDIRECT = (
    Choice("used", "I sent a redirect message", ("used", "sent", "yes", "done", "did")),
    Choice("not_appropriate", "Not appropriate here", ("not appropriate", "no", "inappropriate", "not", "won't", "wont")),
    Choice("later", "I'll decide later", ("later", "maybe", "not yet", "unsure")),
)
PRIVACY = (
    Choice("done", "I've reviewed my settings", ("done", "yes", "reviewed", "changed", "updated", "did")),
    Choice("already_private", "They were already private", ("already", "private")),
    Choice("later", "I'll do it later", ("later", "not yet", "no", "tomorrow")),
)
YES = {"yes", "y", "yeah", "yep", "yup", "sure", "ok", "okay", "please", "i have", "kept", "done", "true"}
NO = {"no", "n", "nope", "nah", "not", "didn't", "didnt", "haven't", "havent", "deleted", "false", "no thanks"}

STEPS: tuple[Step, ...] = (
    Step("platform", 2, "Which platform was it on?", "choice", PLATFORMS, intro=(
        "Step 1 of 5: don't engage. Don't reply, don't accept or decline the request, and don't delete "
        "anything: the message may be needed for the report.\n"
        "Step 2 of 5: document it. I'll record the platform, date, time and what it was. Record only what "
        "the report needs, and no more personal details than necessary.")),
    Step("contact_kind", 2, "What kind of contact was it?", "choice", KINDS),
    Step("from_whom", 2, "Who was it from?", "choice", FROM),
    Step("occurred_at", 2, 'When did it happen? (e.g. "now", "yesterday 9pm", "21/11/2026 18:30")', "when"),
    Step("description", 2, "In a sentence or two, what did it say or do? (Only what the report needs.)", "text"),
    Step("screenshot", 2, "Have you kept a screenshot or a copy of it? (yes / no)", "yesno"),
    Step("line_manager", 3, "Who is your line manager?", "person", intro=(
        "Step 3 of 5: report it to your line manager as soon as you can, so they can review it and act.")),
    Step("notify_manager", 3, "Shall I send your line manager a summary of this report? (yes / no)", "yesno"),
    Step("redirect", 4, "Did you send them a redirect message?", "choice", REDIRECT, intro=(
        "Step 4 of 5: if appropriate, politely point them to the trust's official channels. You could send:")),
    Step("privacy", 5, "What have you done about your privacy settings?", "choice", PRIVACY, intro=(
        "Step 5 of 5: review your privacy settings to limit who can see and contact you.")),
)
BY_NAME = {s.name: s for s in STEPS}


def _next(step: Step) -> str | None:
    i = STEPS.index(step)
    return STEPS[i + 1].name if i + 1 < len(STEPS) else None


@dataclass
class FlowContent:
    """The wording that is data (knowledge/report_contact.yaml)."""
    redirect: str
    privacy: dict[str, list[str]]
    no_redirect: dict[str, str] = None      # flag -> why no redirect message is suggested after that risk
    crisis_redirect: str = ""               # what to send instead after a threat of suicide ({crisis})

    @classmethod
    def load(cls, path: Path = KNOWLEDGE_DIR / "report_contact.yaml") -> "FlowContent":
        data = read_yaml(path) or {}
        privacy = {k: [str(i) for i in v] for k, v in (data.get("privacy") or {}).items()}
        missing = [c.value for c in PLATFORMS if c.value not in privacy]
        if missing or not data.get("redirect"):
            raise ValueError(f"{path}: needs 'redirect' and a privacy checklist for {', '.join(missing) or 'each platform'}")
        no_redirect = {str(k): " ".join(str(v).split()) for k, v in (data.get("no_redirect") or {}).items()}
        return cls(redirect=" ".join(str(data["redirect"]).split()), privacy=privacy, no_redirect=no_redirect,
                   crisis_redirect=" ".join(str(data.get("crisis_redirect") or "").split()))


class ReportContactFlow:
    def __init__(self, store: Store, triage: Triage, escalations: EscalationService, trust: TrustProfile,
                 content: FlowContent | None = None, clock: Callable[[], dt.datetime] | None = None,
                 monotonic: Callable[[], float] = time.monotonic):
        self.store = store
        self.triage = triage
        self.escalations = escalations
        self.trust = trust
        self.content = content or FlowContent.load()
        self.tz = ZoneInfo(trust.timezone)
        self.clock = clock or (lambda: dt.datetime.now(self.tz))
        self.monotonic = monotonic
        self._seen: dict[tuple[str, str], float] = {}  # (surface, user) -> when this process last worked on their report

    # -- entry points ---------------------------------------------------------

    def active(self, surface: str, user: str) -> Incident | None:
        return self.store.active_incident(surface, user)

    def touch(self, incident: Incident) -> None:
        """The user is working on this report now (their next message may be an answer to it)."""
        self._seen[(incident.surface, incident.user_id)] = self.monotonic()

    def paused(self, incident: Incident) -> bool:
        """True after a restart (this process never saw the report) or a pause of more than a few minutes:
        the next message must not be taken as an answer without asking."""
        seen = self._seen.get((incident.surface, incident.user_id))
        return seen is None or self.monotonic() - seen > PAUSE_AFTER

    def accepts(self, incident: Incident, text: str) -> bool:
        """Whether `text` reads as an answer to the current step (without recording anything)."""
        command = " ".join((text or "").lower().split())
        if command in CANCEL_WORDS | BACK_WORDS | HELP_WORDS:
            return True
        try:
            self._read(BY_NAME[incident.step], text)
        except Invalid:
            return False
        return True

    def resume_prompt(self, incident: Incident) -> Reply:
        """Asked before anything is stored, when a report was left and the user comes back."""
        step = BY_NAME[incident.step]
        self.touch(incident)
        return Reply("report_resume", [
            Notice(f"You have a report in progress ({incident.ref}, step {step.policy_step} of 5): continue, or cancel?",
                   "warning"),
            Text(f"The next question is: {step.question}"),
            Actions((Button("Continue report", "report_continue", step.name, "primary"),
                     Button("Cancel", "report_cancel", step.name, "danger")))],
            {"ref": incident.ref, "status": incident.status, "step": step.name, "policy_step": step.policy_step},
            private=True)

    def waiting(self, incident: Incident) -> Reply:
        """A note after a message that was handled as something else: the report is still there."""
        step = BY_NAME[incident.step]
        return Reply("report_waiting", [Text(f"Your report {incident.ref} is waiting at step {step.policy_step} of 5: "
                                             f"{step.question} Reply to carry on, or type 'cancel'.")],
                     {"ref": incident.ref, "step": step.name}, private=True)

    def start(self, surface: str, user: str, text: str = "") -> list[Reply]:
        """/report-contact: resume a report in progress, or start one (triaging any text given)."""
        with self.store.transaction():
            incident = self.active(surface, user)
            if incident:
                self.touch(incident)
                return [self.prompt(incident, notes=[f"You have report {incident.ref} in progress, "
                                                     "so let's carry on where you left off. (Type 'cancel' to abandon it.)"])]
            incident = self.store.create_incident(surface, user, STEPS[0].name)
            self.touch(incident)
            risk = self._triage(incident, text)
            opening = [Heading("Reporting contact on your personal social media"),
                       Text("I'll walk you through the five steps in the trust's policy (BSMHFT 3.2.1). "
                            "Type 'back' to change an answer, or 'cancel' to stop.")]
            return [self.prompt(incident, lead=risk + opening, alert=bool(risk))]

    def answer(self, incident: Incident, text: str, step: str | None = None) -> list[Reply]:
        """One answer to the current step. `step` says which question a button answered."""
        command = " ".join((text or "").lower().split())
        self.touch(incident)
        with self.store.transaction():
            if command in CANCEL_WORDS:
                return [self._cancel(incident)]
            if command in BACK_WORDS:
                if incident.history:
                    incident.step = incident.history.pop()
                    self.store.save_incident(incident)
                return [self.prompt(incident, notes=[] if incident.history or incident.step != STEPS[0].name
                                    else ["This is the first question."])]
            if step is not None and step != incident.step:
                return [self.prompt(incident, notes=["That answer was for a different question, so I haven't "
                                                     "recorded it. This is where we are:"])]
            if command in HELP_WORDS:
                return [self.prompt(incident, notes=["Answer the question below, or type 'back' or 'cancel'."])]
            current = BY_NAME[incident.step]
            risk = self._triage(incident, text) if current.kind in ("text", "person") else []
            try:
                value = self._read(current, text)
            except Invalid as problem:
                return [self.prompt(incident, lead=risk, notes=[str(problem)], repeat=True)]
            self.store.add_answer(incident, current.name, value)
            incident.fields[current.name] = value
            incident.history.append(current.name)
            following = _next(current)
            if following is None:
                return [self._complete(incident, lead=risk)]
            incident.step = following
            self.store.save_incident(incident)
            return [self.prompt(incident, lead=risk)]

    # -- reading answers ------------------------------------------------------

    def _read(self, step: Step, text: str) -> str:
        raw = (text or "").strip()
        if not raw:
            raise Invalid("I didn't get an answer. " + self._expect(step))
        if step.kind == "choice":
            return self._choose(step, raw)
        if step.kind == "yesno":
            words = " ".join(normalise(raw).text.split()).strip(" .!")
            if words in YES or words.startswith(("yes", "yeah")):
                return "yes"
            if words in NO or words.startswith(("no", "nope")):
                return "no"
            raise Invalid("Please answer yes or no.")
        if step.kind == "when":
            try:
                return parse_when(raw, self.clock()).isoformat()
            except WhenError as problem:
                raise Invalid(str(problem)) from None
        clean = _clean_text(raw)
        if not any(c.isalnum() for c in clean):
            raise Invalid("I need some words here, not just symbols. " + self._expect(step))
        limit = MAX_NAME if step.kind == "person" else MAX_DESCRIPTION
        if len(clean) > limit:
            raise Invalid(f"That's {len(clean):,} characters; please keep it under {limit:,}. "
                          "Record only what the report needs: no need to copy the whole message.")
        return clean

    def _choose(self, step: Step, raw: str) -> str:
        text = " ".join(normalise(raw).text.split())
        if text.isdigit() and 1 <= int(text) <= len(step.choices):
            return step.choices[int(text) - 1].value
        for choice in step.choices:
            if text in (choice.value, choice.label.lower()):
                return choice.value
        for choice in step.choices:
            if any(re.search(r"(?<![\w])" + re.escape(w) + r"(?![\w])", text) for w in choice.words):
                return choice.value
        raise Invalid(f"I didn't recognise {raw[:40]!r}. " + self._expect(step))

    @staticmethod
    def _expect(step: Step) -> str:
        if step.choices:
            return "Choose one: " + ", ".join(f"{i}. {c.label}" for i, c in enumerate(step.choices, 1)) + "."
        return step.question

    # -- risk -----------------------------------------------------------------

    def _triage(self, incident: Incident, text: str) -> list[Block]:
        """Raise any new risk flags: record them, escalate at once, and return what to show now."""
        flags = [f for f in self.triage.scan(text) if f.name not in incident.risk_flags]
        if not flags:
            return []
        incident.risk_flags = incident.risk_flags + [f.name for f in flags]
        self.store.save_incident(incident)
        for flag in flags:
            self.escalations.raise_(flag.escalate, self._risk_summary(incident, flag, text), incident_ref=incident.ref,
                                    surface=incident.surface, user=incident.user_id, key=f"{incident.ref}:risk:{flag.name}")
        blocks = self.triage.blocks(flags)
        line = self.triage.policy_line(flags)
        return blocks + ([line] if line else [])

    def _risk_summary(self, incident: Incident, flag: Flag, text: str) -> str:
        said = _clean_text(text)[:MAX_DESCRIPTION]
        return (f"{flag.label} in report {incident.ref} from {incident.surface} user {incident.user_id}.\n"
                f"What they were told: {flag.tell}\n" + (f"What was reported: {said}\n" if said else "")
                + self.summary(incident))

    # -- replies --------------------------------------------------------------

    def prompt(self, incident: Incident, lead: list[Block] | None = None, notes: list[str] | None = None,
               repeat: bool = False, alert: bool | None = None) -> Reply:
        """The current step's question, after `lead` (risk information first) and any notes.
        `alert` (default: whether there is a lead) marks newly raised risk for surfaces to keep on show."""
        step = BY_NAME[incident.step]
        blocks: list[Block] = list(lead or [])
        blocks += [Notice(n, "warning") for n in notes or []]
        if not repeat and step.name not in incident.history:
            blocks += self._intro(step, incident)
        blocks.append(Text(f"{incident.ref}, step {step.policy_step} of 5: {step.question}"))
        buttons = [Button(c.label, "report_answer", f"{step.name}:{c.value}") for c in step.choices]
        if step.kind == "yesno":
            buttons = [Button("Yes", "report_answer", f"{step.name}:yes"), Button("No", "report_answer", f"{step.name}:no")]
        buttons += [Button("Back", "report_back", step.name), Button("Cancel", "report_cancel", step.name, "danger")]
        blocks.append(Actions(tuple(buttons)))
        return Reply("report_step", blocks, {
            "ref": incident.ref, "status": incident.status, "step": step.name, "policy_step": step.policy_step,
            "question": step.question, "kind": step.kind, "risk_flags": list(incident.risk_flags),
            "choices": [{"value": c.value, "label": c.label} for c in step.choices],
            "error": notes[0] if repeat and notes else "", "alert": bool(lead) if alert is None else alert},
            private=True)

    def _intro(self, step: Step, incident: Incident) -> list[Block]:
        blocks: list[Block] = [Text(line) for line in step.intro.split("\n") if line]
        if step.name == "redirect":
            return self._redirect_intro(incident)
        if step.name == "privacy":
            platform = incident.fields.get("platform", "other")
            label = next((c.label for c in PLATFORMS if c.value == platform), "your platform")
            blocks.append(Text(f"For {label}:"))
            blocks.append(Bullets(tuple(self.content.privacy.get(platform, self.content.privacy["other"]))))
        return blocks

    def _redirect_intro(self, incident: Incident) -> list[Block]:
        """Step 4 follows the risk: no redirect to a harasser, a journalist or someone threatening; the crisis
        lines instead of PALS after a threat of suicide; the ordinary redirect for ordinary contact."""
        flags = [self.triage.by_name[r] for r in incident.risk_flags if r in self.triage.by_name]
        flags.sort(key=lambda f: not f.urgent)
        withheld = [f for f in flags if f.name in (self.content.no_redirect or {})]
        suicide = any(f.name == "suicide" for f in flags) and self.content.crisis_redirect
        if not withheld and not suicide:
            channels = "; ".join(c.line() for c in self.trust.approved_channels)
            return [Text(line) for line in BY_NAME["redirect"].intro.split("\n") if line] + [
                Copyable(self.content.redirect.format(channels=channels), "Redirect message")]
        blocks: list[Block] = [Text("Step 4 of 5: don't send the usual redirect message here.")]
        blocks += [Notice(self.content.no_redirect[f.name], "warning") for f in withheld]
        if suicide:
            crisis = ", ".join(f"{c.name} on {c.number}" for c in self.trust.crisis_lines)
            blocks.append(Text("If they are at risk and you do reply, send them where to get help now instead:"))
            blocks.append(Copyable(self.content.crisis_redirect.format(crisis=crisis), "Crisis message"))
        return blocks

    def _cancel(self, incident: Incident) -> Reply:
        incident.status = CANCELLED
        self.store.save_incident(incident)
        kept = (" Any risk alerts already sent still stand." if incident.risk_flags else "")
        return Reply("report_cancelled", [Text(f"Report {incident.ref} cancelled; I won't ask anything more.{kept} "
                                               "You can start again with /report-contact. Please still tell your "
                                               "line manager about the contact.")],
                     {"ref": incident.ref, "status": CANCELLED}, private=True)

    def _complete(self, incident: Incident, lead: list[Block]) -> Reply:
        incident.status, incident.step = COMPLETED, "done"
        incident.completed_at = utcnow().isoformat()
        self.store.save_incident(incident)
        manager = incident.fields.get("line_manager", "")
        notes = []
        named = "your line manager" if not manager or PLATFORM_ID.match(manager) else manager
        if incident.fields.get("notify_manager") == "yes":
            self.escalations.raise_("line_manager", self.summary(incident), incident_ref=incident.ref,
                                    surface=incident.surface, user=incident.user_id, target=manager,
                                    key=f"{incident.ref}:line_manager")
            notes.append(f"I'll send {named} a summary.")
        else:
            notes.append(f"Please tell {named} about it as soon as you can.")
        if incident.risk_flags:
            notes.append("The people alerted about the risk will follow up with you.")
        blocks = list(lead) + [Heading(f"Thank you. Your report is {incident.ref}."),
                               Text(self.summary(incident)), *[Text(n) for n in notes],
                               Text(f"Questions? Contact the {self.trust.comms.line()}.")]
        return Reply("report_done", blocks, {"ref": incident.ref, "status": COMPLETED, "alert": bool(lead),
                                             "risk_flags": list(incident.risk_flags)}, private=True)

    def summary(self, incident: Incident) -> str:
        f = incident.fields
        label = lambda choices, v: next((c.label for c in choices if c.value == v), v or "-")
        when = f.get("occurred_at")
        if when:
            when = dt.datetime.fromisoformat(when).astimezone(self.tz).strftime("%d/%m/%Y %H:%M")
        parts = [f"Report {incident.ref} ({incident.status.replace('_', ' ')})",
                 f"Platform: {label(PLATFORMS, f.get('platform'))}; contact: {label(KINDS, f.get('contact_kind'))}; "
                 f"from: {label(FROM, f.get('from_whom'))}; when: {when or '-'}"]
        if f.get("description"):
            parts.append(f"What happened: {f['description']}")
        parts.append(f"Screenshot kept: {f.get('screenshot', '-')}; line manager: {f.get('line_manager', '-')}; "
                     f"redirect: {label(REDIRECT, f.get('redirect'))}; privacy: {label(PRIVACY, f.get('privacy'))}")
        if incident.risk_flags:
            names = ", ".join(self.triage.by_name[r].label for r in incident.risk_flags if r in self.triage.by_name)
            parts.append(f"Risk: {names}")
        return "\n".join(parts)


def _clean_text(text: str) -> str:
    """Free text as stored: control and invisible characters dropped, whitespace collapsed, letters as typed."""
    kept = "".join(c for c in (text or "") if c in "\n\t" or unicodedata.category(c)[0] != "C")
    return " ".join(kept.split())
