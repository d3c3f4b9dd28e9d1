"""Detectors in code, for what a pattern cannot check: checksums, phone numbering plans, real dates.

Each takes the normalised draft and returns (start, end) spans in `Normalised.text`.
Rules choose a detector by name and add context with `near` / `unless`.
"""
from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from pathlib import Path

from .normalise import Normalised

_NHS = re.compile(r"(?<![\d-])(\d{3})[ -]?(\d{3})[ -]?(\d{4})(?![\d-])")
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)+(?![\w-])")
_POSTCODE = re.compile(r"(?<![a-z0-9])(?:[a-z]{1,2}\d[a-z\d]?\s*\d[abd-hjlnp-uw-z]{2})(?![a-z0-9])")
_DOB = re.compile(
    r"(?<![a-z])(?:dob|d\.o\.b\.?|date of birth|born(?: on)?|birthday)\s*(?:is|:|-|was)?\s*"
    r"(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{2,4})(?!\d)")


def nhs_number(n: Normalised, params: dict) -> list[tuple[int, int]]:
    """10-digit NHS numbers that pass the modulus-11 check (a phone number almost never does)."""
    if sum(c.isdigit() for c in n.text) < 10:
        return []
    import nhs_number as nhs  # small, and only needed when there are ten digits

    spans = []
    for m in _NHS.finditer(n.text):
        digits = "".join(m.groups())
        if not digits.startswith("0") and nhs.is_valid(digits):
            spans.append(m.span())
    return spans


# Digit runs shaped like a UK number; each is then confirmed by `phonenumbers` (slow per call, so only these).
_PHONE_SHAPE = re.compile(r"(?<![\d+(])\(?(?:\+\s?44|0044|0)[\s\-().]*\d(?:[\s\-().]*\d){8,11}(?![\d])")
MAX_PHONE_CANDIDATES = 50


def phone(n: Normalised, params: dict) -> list[tuple[int, int]]:
    """UK phone numbers (10+ digits, so helplines like 116 123 and 999 are not caught)."""
    if sum(c.isdigit() for c in n.text) < 10:
        return []
    import phonenumbers

    spans = []
    for k, m in enumerate(_PHONE_SHAPE.finditer(n.text)):
        if k >= MAX_PHONE_CANDIDATES:
            break
        try:
            number = phonenumbers.parse(m.group(0), "GB")
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_possible_number(number):
            spans.append(m.span())
    return spans


def email(n: Normalised, params: dict) -> list[tuple[int, int]]:
    return [m.span() for m in _EMAIL.finditer(n.text)] if "@" in n.text else []


def postcode(n: Normalised, params: dict) -> list[tuple[int, int]]:
    return [m.span() for m in _POSTCODE.finditer(n.text)]


def date_of_birth(n: Normalised, params: dict) -> list[tuple[int, int]]:
    """A date of birth: a real past date after a DOB cue ("DOB 03/04/1987", "born on 3.4.87")."""
    spans = []
    for m in _DOB.finditer(n.text):
        d, mth, y = (int(g) for g in m.groups())
        if y < 100:
            y += 1900 if y > dt.date.today().year % 100 else 2000
        try:
            when = dt.date(y, mth, d)
        except ValueError:
            continue
        if when < dt.date.today():
            spans.append(m.span())
    return spans


NAMES_FILE = Path(__file__).resolve().parent / "first_names.txt"
_CAPITALISED = re.compile(r"(?<![\w'])[A-Z][a-z]{2,}(?![\w])")


@lru_cache(maxsize=1)
def _first_names() -> frozenset[str]:
    lines = NAMES_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(w.strip() for w in lines if w.strip() and not w.startswith("#"))


def first_name(n: Normalised, params: dict) -> list[tuple[int, int]]:
    """Capitalised first names ("Tyler", "Ruby, Kai and Esme"), from the gazetteer plus the trust's own
    `terms: first_names`. Runs on the cased view, so "grace" in a sentence is a word, "Grace" a name."""
    extra = params.get("_extra_names") or ()
    names = _first_names() | {str(x).casefold() for x in extra}
    return [m.span() for m in _CAPITALISED.finditer(n.cased) if m.group(0).casefold() in names]


DETECTORS = {
    "nhs_number": nhs_number,
    "phone": phone,
    "email": email,
    "postcode": postcode,
    "date_of_birth": date_of_birth,
    "first_name": first_name,
}
