"""The conversation entry point every surface calls: one message in, the bot's replies out.

Console, Slack and Teams only translate their events into `Incoming` (or a button press
into `handle_action`) and render the `Reply` objects that come back, so a conversation
behaves the same everywhere. Each message is handled in one store transaction that
also records its event id, so a duplicate delivery changes nothing and a crash loses
nothing half-done. When the database cannot be reached, the user is asked to try again
(nothing was done or saved) and the log says so, without their text.

Every message goes through one understanding step (handlers/intents.py): a draft is
checked, a question answered, an unclear one gets both in one reply. Whatever it is
routed to, it is also scanned for a person at risk now (crisis lines and the
safeguarding route at once) and for patient identifiers (flagged even in a question).

Servers call `handle_async`: the pure, possibly slow work a message needs (the draft
check, the policy search, the risk and identifier scans of up to 40,000 characters) is
done first on a worker thread, outside any store transaction, and routing then finds it
done. So a long check neither blocks the event loop nor holds the store's lock.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from typing import Awaitable, Callable

from knowledge.checker import MAX_DRAFT_CHARS
from knowledge.checker.detectors import DETECTORS
from knowledge.checker.normalise import normalise

from .ask import MAX_BUTTON_TEXT, AskHandler, help_reply
from .check import BANNERS, LABELS, CheckHandler
from .escalation import idempotency_key
from .intents import (ACTION, ANSWER, BOTH, BUTTON_WORDS, CHECK, CHECK_PROMPT, HELP, REPORT, REPORT_KIND, RISK,
                      Understanding, typed_button, understand, with_risk)
from .replies import Actions, Block, Bullets, Button, Notice, Quote, Reply, Text
from .report_contact import CANCEL_WORDS, ReportContactFlow
from .store import Incident, Store, StoreUnavailable, utcnow
from .triage import Flag, Triage
from .trust import TrustProfile
from .untrusted import scrub_surrogates

log = logging.getLogger("policybot.conversation")
AWAIT_DRAFT_FOR = dt.timedelta(minutes=30)  # "paste your draft" is forgotten after this
HELP_WORDS = {"help", "?", "hi", "hello", "hey", "start", "menu", "what can you do"}
CONTINUE_WORDS = {"continue", "carry on", "resume", "continue report", "go on", "yes continue"}
YES_WORDS = {"yes", "y", "yes, send it", "yes send it", "send it", "ok", "okay", "sure", "yep", "yeah"}
NO_WORDS = {"no", "n", "nope", "don't", "dont", "cancel", "no thanks"}
FOLLOW_UP_WINDOW = 5 * 60  # seconds: outside a thread, the next question this soon may lean on the last one
MAX_CONTEXTS = 2000
# Identifiers flagged in any message (a draft's are the checker's findings already).
IDENTIFIERS = {"nhs_number": "an NHS number", "date_of_birth": "a date of birth", "phone": "a phone number",
               "postcode": "a postcode"}
_FOLLOW_UP = re.compile(r"^\s*(?:and|but|or|also|plus|so)?\s*(?:what about|how about|what if|and if|same for|same with|"
                        r"does (?:that|it|this) (?:apply|go|count)|is (?:that|it) the same|would (?:that|it) be|"
                        r"(?:and|or|also) (?:for|on|with|if))\b", re.I)
_PLATFORMS = re.compile(r"\b(?:facebook|fb|twitter|x|instagram|insta|ig|linkedin|tiktok|whatsapp|snapchat|youtube|"
                        r"threads|bluesky|reddit|messenger|telegram|signal)\b", re.I)


def try_again(exc: StoreUnavailable | None = None) -> Reply:
    """The answer when the incident log is out of reach: say so plainly; nothing was saved."""
    if exc is not None:
        log.warning("store unavailable, asked the user to try again: %s", exc)  # names the database, no user text
    return Reply("try_again", [Text("Sorry, I can't reach the incident log just now, so I haven't done or saved "
                                    "anything. Please try again in a minute.")], private=True)


def _encodable(msg: "Incoming") -> "Incoming":
    """The message with lone surrogates replaced (U+FFFD): they cannot be stored or sent as UTF-8."""
    return replace(msg, **{f.name: scrub_surrogates(getattr(msg, f.name)) for f in fields(msg)})


@dataclass(frozen=True)
class Incoming:
    """A message from a user on some surface. Text is untrusted and never logged.
    `thread`: the thread it belongs to where the platform has threads (a reply there is read as a follow-up)."""
    surface: str
    user: str
    text: str
    event_id: str | None = None
    channel: str | None = None
    thread: str | None = None


@dataclass
class Outcome:
    """What the bot made of one message: the routing decision, the replies, and what scoring needs."""
    kind: str
    replies: list[Reply]
    verdict: str | None = None
    citations: list[str] = field(default_factory=list)
    risk_flags: list[str] = field(default_factory=list)
    identifiers: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        data = {"kind": self.kind, "verdict": self.verdict, "citations": self.citations,
                "risk_flags": self.risk_flags, "identifiers": self.identifiers,
                "replies": [r.kind for r in self.replies]}
        for reply in self.replies:
            if "found" in reply.data and reply.kind != "help":
                data["found"] = reply.data["found"]
            if reply.data.get("findings"):
                data["categories"] = sorted({f["category"] for f in reply.data["findings"]})
        return data


class Conversation:
    def __init__(self, trust: TrustProfile, ask: AskHandler, check: CheckHandler,
                 report: ReportContactFlow | None = None, store: Store | None = None, triage: Triage | None = None,
                 monotonic: Callable[[], float] = time.monotonic, record_unanswered: bool = True):
        self.trust = trust
        # "Not found" questions, identifiers removed, are kept for policy owners (app.yaml feedback.store_unanswered).
        self.record_unanswered = record_unanswered
        self.ask = ask
        self.check = check
        self.report = report
        self.store = store
        self.triage = triage or (report.triage if report else Triage.load(trust))
        self.monotonic = monotonic
        self._awaiting_draft: dict[tuple[str, str], str] = {}   # (surface, user) -> account, when there is no store
        self._buttons: dict[tuple[str, str], list[Button]] = {}  # the buttons of the last turn, to press by typing
        self._confirming: dict[tuple[str, str], Button] = {}     # a typed press waiting for "yes"
        self._reason_for: dict[tuple[str, str], int] = {}        # feedback id waiting for a typed reason
        self._context: OrderedDict[tuple, tuple[float, str]] = OrderedDict()  # last question, per thread
        self._done: dict[tuple, object] = {}  # pure work done ahead of routing (handle_async), by call

    @contextmanager
    def _once(self, surface: str, event_id: str | None):
        """A transaction that claims the event id; yields False if the event was already handled."""
        if not (self.store and event_id):
            yield True
            return
        with self.store.transaction():
            yield self.store.claim_event(f"{surface}:{event_id}")

    # -- entry points ------------------------------------------------------------

    def handle(self, msg: Incoming) -> list[Reply]:
        return self.respond(msg).replies

    async def handle_async(self, msg: Incoming, run: Callable[..., Awaitable]) -> list[Reply]:
        """As handle, with the message's checks and searches done first by `run` (a Worker's: off the
        event loop). Routing itself is quick then; anything it didn't foresee, it works out as usual."""
        done = await run(self.prepare, msg, size=len(msg.text or ""))
        self._done.update(done)  # no await between here and routing: no other message sees these
        try:
            return self.handle(msg)
        finally:
            for key in done:
                self._done.pop(key, None)

    def prepare(self, msg: Incoming) -> dict[tuple, object]:
        """The pure work routing will most likely ask for, done now. Reads, writes nothing; a wrong
        guess only costs the time of the work."""
        msg = _encodable(msg)
        text = (msg.text or "").strip()
        key = (msg.surface, msg.user)
        if not text or self._typed_press(key, text) is not None:
            return {}
        done: dict[tuple, object] = {("risk", text): self._at_risk(text), ("spans", text): self._spans(text)}
        if key in self._awaiting_draft:
            account = self._awaiting_draft.get(key, "unknown")
            done[("check", text, account)] = self.check.check(text, account)
            return done
        u = understand(text)
        kind = with_risk(u, bool(done[("risk", text)]))
        if kind == CHECK:
            done[("check", u.text, u.account)] = self.check.check(u.text, u.account)
        if kind == BOTH:
            done[("check", text, "unknown")] = self.check.check(text, "unknown")
        if kind in (ANSWER, BOTH, RISK):
            question = self._with_context(msg, text)
            done[("spans", question)] = spans = done.get(("spans", question)) or self._spans(question)
            plain = self._redacted(question, spans, mark=False)
            done[("answer", plain)] = self.ask.answer(plain)
        return done

    def _done_or(self, key: tuple, work: Callable, *args):
        found = self._done.get(key)
        return found if found is not None else work(*args)

    def respond(self, msg: Incoming) -> Outcome:
        """Handle one message and say what it was taken for (`policybot chat --jsonl` prints this)."""
        msg = _encodable(msg)
        try:
            with self._once(msg.surface, msg.event_id) as first_time:
                if not first_time:
                    return Outcome("duplicate", [])
                outcome = self._route(msg)
        except StoreUnavailable as exc:
            return Outcome("unavailable", [try_again(exc)])
        self._remember_buttons((msg.surface, msg.user), outcome.replies)
        return outcome

    def handle_action(self, surface: str, user: str, action: str, value: str = "",
                      event_id: str | None = None, source: str | None = None) -> list[Reply]:
        """A button press. Report-flow buttons carry 'step:answer' so a stale button can't answer the wrong step.
        `source` names the message the button was on, so pressing the same button again is recognised."""
        surface, user, action, value, event_id, source = map(
            scrub_surrogates, (surface, user, action, value, event_id, source))
        try:
            with self._once(surface, event_id) as first_time:
                if not first_time:
                    return []
                replies = self._action(surface, user, action, value, source)
        except StoreUnavailable as exc:
            return [try_again(exc)]
        self._remember_buttons((surface, user), replies)
        return replies

    def _action(self, surface: str, user: str, action: str, value: str, source: str | None = None) -> list[Reply]:
        incident = self.report.active(surface, user) if self.report else None
        if action.startswith("report_") and incident is None:
            return [Reply("report_none", [Text("That report is no longer in progress. "
                                               "Type /report-contact to start a new one.")], private=True)]
        step, _, answer = value.partition(":")
        if action == "report_answer":
            return self.report.answer(incident, answer, step=step)
        if action in ("report_back", "report_cancel"):
            return self.report.answer(incident, action.removeprefix("report_"), step=step or None)
        if action == "report_continue":
            self.report.touch(incident)
            return [self.report.prompt(incident, notes=[f"Carrying on with report {incident.ref}."])]
        if action == "why":
            return [self.ask.explain(value)]
        if action == "feedback":
            return [self._feedback(surface, user, value)]
        if action == "feedback_skip":
            self._reason_for.pop((surface, user), None)
            return [Reply("feedback_thanks", [Text("OK. Thanks for the feedback.")], private=True)]
        if action == "ask_comms":
            return [self._ask_comms(surface, user, value, source)]
        return [Reply("unknown_action", [Text("Sorry, that button isn't available here.")], private=True)]

    def _feedback(self, surface: str, user: str, value: str) -> Reply:
        vote, _, citation = value.partition("|")
        vote = "up" if vote == "up" else "down"
        feedback_id = self.store.add_feedback(surface, user, citation, vote) if self.store else 0
        if vote == "up":
            return Reply("feedback_thanks", [Text("Thanks, glad it helped.")], {"feedback_id": feedback_id}, private=True)
        return Reply("feedback_reason", [Text("Thanks for telling me. What was wrong with the answer? (optional)"),
                                         Actions((Button("Skip", "feedback_skip", str(feedback_id)),))],
                     {"feedback_id": feedback_id, "citation": citation}, private=True)

    def feedback_reason(self, feedback_id: int, reason: str) -> Reply:
        if self.store and feedback_id:
            try:
                self.store.set_feedback_reason(feedback_id, " ".join(scrub_surrogates(reason or "").split()))
            except StoreUnavailable as exc:
                return try_again(exc)
        return Reply("feedback_thanks", [Text("Thanks, that helps us improve the answers.")], private=True)

    def _ask_comms(self, surface: str, user: str, value: str, source: str | None = None) -> Reply:
        """Pass a question, (after the user confirmed) a draft, or a risk to the comms team or safeguarding lead."""
        what, _, text = value.partition("|")
        if not (self.report and text.strip()):
            who = self.trust.safeguarding if what == "risk" else self.trust.comms
            return Reply("ask_comms_unavailable", [Text(f"Please contact the {who.line()} directly.")], private=True)
        kind, label = {"draft": ("review", "Draft for review"), "risk": ("safeguarding", "Risk raised in a message")
                       }.get(what, ("comms", "Question"))
        # Once per (escalation, action): pressing the same button again sends nothing more. The key is
        # the message the button was on where the surface says (no trace of the draft is kept).
        key = idempotency_key(surface, user, "ask_comms", kind, *(["on", source] if source else [text]))
        escalations = self.report.escalations
        if escalations.already_raised(key):
            who = "the safeguarding lead" if kind == "safeguarding" else "the comms team"
            return Reply("ask_comms_sent", [Text(f"You've already sent this to {who}. They'll get back to "
                                                 "you, and I'll tell you when they pick it up.")], private=True)
        escalations.raise_(kind, f"{label} from {surface} user {user}:\n{text}", surface=surface, user=user, key=key)
        if kind == "safeguarding":
            return Reply("ask_comms_sent", [Text("I've alerted the safeguarding lead; they'll be in touch. If anyone "
                                                 "is in danger now, call 999.")], private=True)
        return Reply("ask_comms_sent", [Text("Sent to the comms team. They'll get back to you, and I'll tell you "
                                             "when they pick it up.")], private=True)

    # -- "can I post this?", then the draft in the next message -----------------------
    # Kept in the store, not in this process: with several replicas the next message may reach another
    # one. Only the account kind is kept, never any text.

    @staticmethod
    def _state_key(key: tuple[str, str]) -> str:
        return f"awaiting_draft:{key[0]}:{key[1]}"

    def _await_draft(self, key: tuple[str, str], account: str) -> None:
        if self.store is None:
            self._awaiting_draft[key] = account
            return
        self.store.write_state(self._state_key(key), {"account": account, "since": utcnow().isoformat()})

    def _take_awaiting(self, key: tuple[str, str]) -> str | None:
        """The account kind if this user was asked to paste a draft (recently), forgetting it."""
        if self.store is None:
            return self._awaiting_draft.pop(key, None)
        found = self.store.read_state([self._state_key(key)]).get(self._state_key(key))
        if not found:
            return None
        self.store.delete_state([self._state_key(key)])
        value = found[0]
        if utcnow() - dt.datetime.fromisoformat(value.get("since", "1970-01-01T00:00:00+00:00")) > AWAIT_DRAFT_FOR:
            return None
        return str(value.get("account") or "unknown")

    # -- typed button presses ----------------------------------------------------------

    def _remember_buttons(self, key: tuple[str, str], replies: list[Reply]) -> None:
        """The last buttons shown stay pressable until others replace them (a reply without any, such as
        "Why?", leaves them on screen); a finished or cancelled report takes its buttons with it."""
        buttons = [b for r in replies for b in r.buttons]
        if buttons:
            self._buttons[key] = buttons
        elif any(r.kind in ("report_done", "report_cancelled", "report_none") for r in replies):
            self._buttons.pop(key, None)

    def _typed_press(self, key: tuple[str, str], text: str) -> Button | None:
        """A typed number or label that presses one of the buttons the user was just shown."""
        label = typed_button(text)
        buttons = self._buttons.get(key) or []
        if not label or not buttons:
            return None
        if label.isdigit():
            n = int(label)
            button = buttons[n - 1] if 1 <= n <= len(buttons) else None
            if button and button.action == "report_cancel":   # a stray digit must not throw a report away
                return Button(button.label, button.action, button.value, button.style,
                              confirm="Cancel this report? Nothing more will be asked or recorded.")
            return button
        plain = label.rstrip("?!. ")
        return next((b for b in buttons if plain in (b.label.lower().rstrip("?!. "), b.label.lower().split(",")[0])),
                    None)   # "yes" presses "Yes, send it"

    def _press(self, msg: Incoming, button: Button) -> Outcome:
        key = (msg.surface, msg.user)
        if button.action == "confirm":
            pending = self._confirming.pop(key, None)
            if button.value == "yes" and pending:
                return Outcome(ACTION, self._action(msg.surface, msg.user, pending.action, pending.value))
            return Outcome(ACTION, [Reply("confirm_cancelled", [Text("OK, I haven't sent anything.")], private=True)])
        if button.confirm:
            self._confirming[key] = button
            return Outcome(ACTION, [Reply("confirm", [Text(button.confirm), Actions((
                Button("Yes, send it", "confirm", "yes", "danger"), Button("No", "confirm", "no")))], private=True)])
        if button.action.startswith("report_") and self.report:
            incident = self.report.active(msg.surface, msg.user)
            if incident is not None and self.report.paused(incident):
                return Outcome(REPORT_KIND, [self.report.resume_prompt(incident)])
        replies = self._action(msg.surface, msg.user, button.action, button.value)
        if replies and replies[0].kind == "feedback_reason":
            self._reason_for[key] = replies[0].data.get("feedback_id", 0)
        return Outcome(REPORT_KIND if button.action.startswith("report_") else ACTION, replies)

    # -- routing -------------------------------------------------------------------

    def _route(self, msg: Incoming) -> Outcome:
        text = (msg.text or "").strip()
        key = (msg.surface, msg.user)
        pressed = self._typed_press(key, text)
        if pressed is not None:
            return self._press(msg, pressed)
        self._confirming.pop(key, None)
        if text and text.lower().strip(" !.") not in HELP_WORDS:
            account = self._take_awaiting(key)
            if account is not None:
                return self._checked(text, account, self._at_risk(text))  # asked for: it's the draft
        incident = self.report.active(msg.surface, msg.user) if self.report else None
        if incident is not None:
            return self._report_turn(msg, incident, text)
        if key in self._reason_for:
            feedback_id = self._reason_for.pop(key)
            u = understand(text)
            if text and not _clearly_new(u):
                return Outcome(ACTION, [self.feedback_reason(feedback_id, text)])
        if not text or text.lower().strip(" !.") in HELP_WORDS:
            self._take_awaiting(key)
            return Outcome(HELP, [help_reply(self.trust)])
        return self._understood(msg, text)

    def _report_turn(self, msg: Incoming, incident: Incident, text: str) -> Outcome:
        """A message while a report is in progress: an answer, or plainly something else (then the report waits)."""
        if REPORT.match(text):
            return Outcome(REPORT_KIND, self.report.start(msg.surface, msg.user))
        command = " ".join(text.lower().split()).strip(" .!")
        if command in CONTINUE_WORDS:
            self.report.touch(incident)
            return Outcome(REPORT_KIND, [self.report.prompt(incident, notes=[f"Carrying on with report {incident.ref}."])])
        u = understand(text)
        if self._not_an_answer(incident, text, u):
            outcome = self._understood(msg, text, u)
            outcome.replies.append(self.report.waiting(incident))
            return outcome
        if self.report.paused(incident) and command not in CANCEL_WORDS:
            return Outcome(REPORT_KIND, [self.report.resume_prompt(incident)])
        return Outcome(REPORT_KIND, self.report.answer(incident, text))

    def _not_an_answer(self, incident: Incident, text: str, u: Understanding) -> bool:
        """A draft, a question or "can I post this?" sent mid-report is handled as what it is."""
        if u.kind in (CHECK_PROMPT, ACTION) or "check-prefix" in u.reasons:
            return True
        if u.kind not in (CHECK, ANSWER, BOTH):
            return False
        if incident.step in ("description", "line_manager"):   # free text: only the unmistakable
            markers = u.post - (4 if "post:very-long" in u.reasons else 0)   # too long is the step's to say
            return (u.kind == ANSWER and u.question >= 6) or (u.kind == CHECK and markers >= 5)
        if u.kind == ANSWER and ("question:asks-for-guidance" in u.reasons or u.question >= 6):
            return True    # "should I block her on facebook?" names a platform but answers nothing
        if self.report.accepts(incident, text) or len(re.findall(r"[^\W\d_]{2,}", text)) < 3:
            return False   # a few symbols or a mistyped choice get the step's own "I didn't recognise"
        return u.post >= 2 or u.question >= 3

    def _understood(self, msg: Incoming, text: str, u: Understanding | None = None) -> Outcome:
        key = (msg.surface, msg.user)
        u = u or understand(text)
        flags = self._at_risk(text)
        kind = with_risk(u, bool(flags))
        if kind == HELP:
            if "thanks" in u.reasons:
                return Outcome(HELP, [Reply("thanks", [Text("You're welcome. Ask me anything else about the policy, "
                                                            "or paste a draft to check.")])])
            return Outcome(HELP, [help_reply(self.trust)])
        if kind == REPORT_KIND:
            if not self.report:
                return Outcome(REPORT_KIND, [Reply("report_unavailable", [Text(
                    f"Tell your line manager and the {self.trust.comms.line()}.")])])
            return Outcome(REPORT_KIND, self.report.start(msg.surface, msg.user, REPORT.sub("", text, count=1)))
        if kind == ACTION:
            label = u.text if not u.text.isdigit() else f"number {u.text}"
            return Outcome(ACTION, [Reply("no_button", [Text(
                f"There's no '{label}' button to press right now. Ask me a question, paste a draft to check, "
                "or type 'help'.")], private=True)])
        if kind == CHECK_PROMPT:
            self._await_draft(key, u.account)
            return Outcome(CHECK, [Reply("check_prompt", [Text(
                "Paste the text of your draft and I'll check it against the policy.")], private=True)])
        if kind == CHECK:
            return self._checked(u.text, u.account, flags)
        found = self._identifiers(text)
        question = self._with_context(msg, text) if kind in (ANSWER, BOTH) else text
        if kind == RISK:
            return self._risk(msg, text, question, flags, found)
        if kind == BOTH:
            return self._both(msg, question, text, flags, found)
        reply = self._answer(question, msg)
        self._remember_question(msg, question, reply)
        follow_up = [Notice("I read this as a follow-up to your last question.")] if question != text else []
        _lead(reply, self._risk_blocks(flags) + self._identifier_blocks(found) + follow_up)
        if flags:
            reply.private = True
        return Outcome(ANSWER, [reply], citations=_citations(reply), risk_flags=[f.name for f in flags],
                       identifiers=found)

    # -- the four kinds of reply -----------------------------------------------------

    def _checked(self, draft: str, account: str, flags: list[Flag]) -> Outcome:
        result = self._done_or(("check", draft, account), self.check.check, draft, account)
        reply = self.check.render(result)   # the checker reports identifiers in a draft itself
        _lead(reply, self._risk_blocks(flags))
        return Outcome(CHECK, [reply], verdict=result.verdict, risk_flags=[f.name for f in flags],
                       identifiers=self._identifiers(draft))

    def _both(self, msg: Incoming, question: str, text: str, flags: list[Flag], found: list[str]) -> Outcome:
        """Unsure whether it is a question or a post: the answer, then the verdict in case it is a post. One reply."""
        answer = self._answer(question, msg)
        self._remember_question(msg, question, answer)
        result = self._done_or(("check", text, "unknown"), self.check.check, text, "unknown")
        blocks: list[Block] = self._risk_blocks(flags) + self._identifier_blocks(found)
        if answer.data.get("found"):
            best = answer.data["answers"][0]
            blocks += self._best(answer)
        else:
            blocks.append(Text("If this is a question: I couldn't find it in the social media policies, so I won't "
                               f"guess. The {self.trust.comms.line()} can help."))
        banner, level = BANNERS[result.verdict or "ok"]
        blocks.append(Notice(f"If this is a post you want to publish: {banner}", level))
        for f in result.findings[:3]:
            blocks.append(Text(f"{LABELS.get(f.category, f.category)}: \u201c{' '.join(f.quote.split())}\u201d. "
                               f"{f.advice or f.message}"))
        if len(result.findings) > 3:
            blocks.append(Text(f"...and {len(result.findings) - 3} more. Send \"can I post this?\" with the draft "
                               "for the full check."))
        buttons = [b for b in answer.buttons if b.action in ("feedback", "ask_comms")]
        if result.findings:
            buttons.append(Button("Why?", "why", result.findings[0].cites[0]))
        blocks.append(Actions(tuple(buttons)))
        data = {**answer.data, "verdict": result.verdict, "findings": result.as_dict()["findings"]}
        reply = Reply("both", blocks, data, private=True)
        return Outcome(BOTH, [reply], verdict=result.verdict, citations=_citations(answer),
                       risk_flags=[f.name for f in flags], identifiers=found)

    def _risk(self, msg: Incoming, text: str, question: str, flags: list[Flag], found: list[str]) -> Outcome:
        """Someone at risk now, outside a report: crisis lines, the incident procedure, the safeguarding route."""
        blocks = self._risk_blocks(flags, route=False) + self._identifier_blocks(found)
        blocks.append(Text("This isn't something to handle on social media. Follow your trust's incident procedure "
                           "(report it on the incident reporting system), tell the person in charge, and contact the "
                           f"{self.trust.safeguarding.line()}."))
        if _PLATFORMS.search(text) or re.search(r"\b(?:messaged|dm|posted|tagged|online|social media)\b", text, re.I):
            blocks.append(Text("If this came to you on your personal social media, type /report-contact afterwards to "
                               "log it; don't reply to them from your own account."))
        answer = self._answer(question)  # never keep the text of a message about someone at risk
        citations: list[str] = []
        if answer.data.get("found") and _PLATFORMS.search(text):
            best = answer.data["answers"][0]
            blocks += self._best(answer)
            citations = _citations(answer)
        blocks.append(Actions((Button("Alert the safeguarding lead", "ask_comms",
                                      "risk|" + self.redact(text)[:MAX_BUTTON_TEXT], "danger"),)))
        reply = Reply("risk", blocks, {"risk_flags": [f.name for f in flags], "alert": True, "found": bool(citations),
                                       "answers": answer.data.get("answers", []) if citations else []}, private=True)
        return Outcome(RISK, [reply], citations=citations, risk_flags=[f.name for f in flags], identifiers=found)

    def _best(self, answer: Reply) -> list[Block]:
        """The lead and quoted clause of an answer, for replies that carry it beside something else."""
        best = answer.data["answers"][0]
        blocks: list[Block] = [Text(answer.data["lead"]),
                               Quote(best["quote"], self.ask.label_clause(self.ask.kb.clause(best["clause_id"])))]
        partner = self.ask.partner_note(best["source"]) if hasattr(self.ask, "partner_note") else ""
        return blocks + ([Notice(partner)] if partner else [])

    # -- what every message is scanned for -----------------------------------------------

    def _at_risk(self, text: str) -> list[Flag]:
        found = self._done.get(("risk", text))
        return found if found is not None else [f for f in self.triage.scan_message(text[:MAX_DRAFT_CHARS]) if f.urgent]

    def _risk_blocks(self, flags: list[Flag], route: bool = True) -> list[Block]:
        if not flags:
            return []
        flags = sorted(flags, key=lambda f: not f.urgent)
        blocks: list[Block] = []
        for i, flag in enumerate(flags):
            blocks.append(Notice(f"{flag.label}: {flag.message_tell}", "danger"))
            if i == 0 and self.triage.crisis(flags):
                blocks.append(Bullets(self.triage.crisis(flags)))
        if route:
            blocks.append(Text(f"Safeguarding: {self.trust.safeguarding.line()}."))
        return blocks

    def _spans(self, text: str) -> list[tuple[str, int, int]]:
        found = self._done.get(("spans", text))
        if found is not None:
            return found
        norm = normalise((text or "")[:MAX_DRAFT_CHARS])
        out = []
        for name in IDENTIFIERS:
            for a, b in DETECTORS[name](norm, {}):
                out.append((name, norm.offsets[a], norm.offsets[b - 1] + 1))
        return out

    def _identifiers(self, text: str) -> list[str]:
        return sorted({name for name, _, _ in self._spans(text)})

    def redact(self, text: str, mark: bool = True) -> str:
        """The text with identifiers taken out (marked where they were) before it is passed on to anyone."""
        return self._redacted(text, self._spans(text), mark)

    @staticmethod
    def _redacted(text: str, spans, mark: bool) -> str:
        for name, a, b in sorted(spans, key=lambda s: -s[1]):
            text = text[:a] + (f"[{IDENTIFIERS[name].split(' ', 1)[1]} removed]" if mark else " ") + text[b:]
        return text

    def _answer(self, question: str, msg: Incoming | None = None) -> Reply:
        """The policy answer, searched without any identifiers; "Ask a person" passes them on marked as removed.
        A question the policy doesn't cover is kept (identifiers removed) so policy owners see the gaps."""
        plain = self.redact(question, mark=False)
        reply = self._done_or(("answer", plain), self.ask.answer, plain)
        marked = self.redact(question)
        if reply.kind == "not_found" and msg is not None and self.store and self.record_unanswered:
            self.store.add_feedback(msg.surface, msg.user, "", "not_found", " ".join(marked.split())[:1000])
        if marked != question:
            for blk in reply.blocks:
                if isinstance(blk, Actions):
                    i = reply.blocks.index(blk)
                    reply.blocks[i] = Actions(tuple(Button(b.label, b.action, "question|" + marked[:MAX_BUTTON_TEXT], b.style)
                                                    if b.action == "ask_comms" else b for b in blk.buttons))
        return reply

    @staticmethod
    def _identifier_blocks(found: list[str]) -> list[Block]:
        if not found:
            return []
        what = " and ".join(IDENTIFIERS[n] for n in found)
        return [Notice(f"Your message contains what looks like {what}. Don't share patient identifiers in messages "
                       "or posts; I've left it out of anything I pass on.", "warning")]

    # -- follow-ups --------------------------------------------------------------------

    def _context_key(self, msg: Incoming) -> tuple:
        return (msg.surface, msg.user, msg.thread)

    def _remember_question(self, msg: Incoming, question: str, reply: Reply) -> None:
        key = self._context_key(msg)
        self._context[key] = (self.monotonic(), question)
        self._context.move_to_end(key)
        while len(self._context) > MAX_CONTEXTS:
            self._context.popitem(last=False)

    def _with_context(self, msg: Incoming, text: str) -> str:
        """'what about Instagram?' after a Facebook answer: read with the previous question, in its thread
        (Slack) or within a few minutes (surfaces without threads)."""
        if not (_FOLLOW_UP.search(text) or (len(text.split()) <= 3 and _PLATFORMS.search(text))):
            return text
        found = self._context.get(self._context_key(msg))
        if not found:
            return text
        when, previous = found
        if msg.thread is None and self.monotonic() - when > FOLLOW_UP_WINDOW:
            return text
        new_platform = _PLATFORMS.search(text)
        if new_platform and _PLATFORMS.search(previous):
            return _PLATFORMS.sub(new_platform.group(0), previous)
        return f"{previous} {_FOLLOW_UP.sub('', text).strip()}"


def _clearly_new(u: Understanding) -> bool:
    """Whether a message sent where a feedback reason was invited is really something new."""
    return (u.kind in (HELP, REPORT_KIND, ACTION, CHECK_PROMPT) or "check-prefix" in u.reasons
            or (u.kind == ANSWER and u.question >= 6) or (u.kind == CHECK and u.post >= 5))


def _lead(reply: Reply, blocks: list[Block]) -> None:
    """Put risk and identifier notices first in a reply."""
    if blocks:
        reply.blocks[:0] = blocks
        reply.data = {**reply.data, "alert": True} if any(isinstance(b, Bullets) for b in blocks) else reply.data


def _citations(reply: Reply) -> list[str]:
    return [a["citation"] for a in reply.data.get("answers") or []] if reply.data.get("found") else []
