"""What a message is asking for: help, a policy question, a draft to check, or a command.

Staff paste drafts and ask questions in the same DM, so this decides which. Explicit
phrases win ("can I post this? ...", "check: ..."); otherwise a short message phrased
as a question is a question and anything else (hashtags, links, several sentences of
post-like text) is treated as a draft. If unsure, checking is the safer mistake.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_CHECK_PREFIX = re.compile(
    r"^\s*(?:(?:hi|hey|hello)[,!. ]+)?(?:can i (?:post|share|tweet|put up|send) (?:this|that|the following)|"
    r"is (?:this|it) (?:ok|okay|alright|fine|safe) to (?:post|share|tweet|send)(?: this)?|"
    r"(?:please )?check (?:this|my (?:draft|post|tweet))|check|draft|review this|"
    r"could you check(?: this)?)\s*(?:[?:!.\-]+|\s)\s*", re.IGNORECASE)
_ACCOUNT = [
    ("official", re.compile(r"\b(?:official|trust(?:'s)? account|corporate|team account|for the trust)\b", re.I)),
    ("personal", re.compile(r"\b(?:personal|my own account|my account|my (?:twitter|facebook|instagram|linkedin|tiktok))\b", re.I)),
]
_QUESTION_START = re.compile(
    r"^\s*(?:what|what's|whats|how|who|whom|where|when|why|which|can|could|am|is|are|do|does|did|should|may|"
    r"must|would|will|if|i'm not sure|any ?one know|help)\b", re.IGNORECASE)
_QUESTION_PHRASE = re.compile(
    r"\b(?:what (?:do|should|can) (?:i|we)|am i allowed|are we allowed|can i|can we|is it ok|is it okay|"
    r"should i|should we|how do i|who do i|what happens if|do i need|what's the rule|what is the rule|"
    r"what does the policy)\b", re.IGNORECASE)
# "An ex-patient added me on Facebook": someone describing what happened to them wants advice.
_HAPPENED_TO_ME = re.compile(
    r"\b(?:added|messaged|dm'?d|dmed|followed|friended|contacted|tagged|sent|texted|emailed|rang|called|asked|"
    r"commented on|replied to|mentioned|blocked|reported|threatened|harass(?:ed|ing)|abus(?:ed|ing)|trolled)\s+me\b",
    re.IGNORECASE)
_POSTLIKE = re.compile(r"(?:#\w|https?://|www\.|@\w|\[photo|\[image|\[video)", re.IGNORECASE)
REPORT = re.compile(r"^\s*/?report[- _]?contact\b|^\s*report (?:a |an )?(?:contact|incident)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Intent:
    kind: str            # help | ask | check | check_prompt | report
    text: str = ""
    account: str = "unknown"


def account_hint(text: str) -> str:
    for account, pattern in _ACCOUNT:
        if pattern.search(text):
            return account
    return "unknown"


def classify(message: str) -> Intent:
    text = (message or "").strip()
    if not text:
        return Intent("help")
    if REPORT.match(text):
        return Intent("report", text)
    m = _CHECK_PREFIX.match(text)
    if m:
        head, body = text[:m.end()], text[m.end():].strip()
        # "check this for my personal account: <draft>" - the account hint is before the draft
        intro, sep, rest = body.partition(":")
        account = account_hint(head)
        if sep and len(intro) < 60 and account_hint(intro) != "unknown":
            account, body = account_hint(intro), rest.strip()
        return Intent("check", body, account) if body else Intent("check_prompt", "", account)
    if looks_like_question(text):
        return Intent("ask", text)
    return Intent("check", text, "unknown")


def looks_like_question(text: str) -> bool:
    if len(text) > 300 or _POSTLIKE.search(text):
        return False
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]
    if len(sentences) > 2:
        return False
    return (text.rstrip().endswith("?") or bool(_QUESTION_START.match(text)) or bool(_QUESTION_PHRASE.search(text))
            or bool(_HAPPENED_TO_ME.search(text)))
