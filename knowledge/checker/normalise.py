"""A normalised view of a draft that tricks cannot dodge, mapped back to the user's own words.

Rules match against `Normalised.text` (case-folded, homoglyphs folded, zero-width and
control characters gone, spaced-out letters joined, whitespace collapsed) or its `leet`
twin (digits and symbols inside words read as letters: "p5ych0" -> "psycho"). Every
character keeps the offset of the original character it came from, so findings
report the exact words the user wrote.
"""
from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass
from functools import cached_property
from itertools import accumulate

# Look-alike punctuation folded to ASCII (quotes, dashes); look-alike letters come from Unicode's
# confusables data (confusable-homoglyphs), so Armenian "օ" or Cherokee "Ꭺ" cannot dodge a rule.
_PUNCTUATION = {
    "‘": "'", "’": "'", "‚": "'", "‛": "'", "′": "'", "`": "'", "´": "'",
    "“": '"', "”": '"', "„": '"', "‟": '"', "″": '"', "«": '"', "»": '"',
    "–": "-", "—": "-", "‐": "-", "‑": "-", "−": "-",
}


def _confusable_letters() -> dict[str, str]:
    """Every non-ASCII character Unicode lists as confusable with an ASCII letter, mapped to that letter."""
    import json
    from importlib.resources import files

    data = json.loads(files("confusable_homoglyphs").joinpath("confusables.json").read_text(encoding="utf-8"))
    out: dict[str, str] = {}
    for key, looks in data.items():
        if len(key) == 1 and key.isascii() and key.isalpha():
            for item in looks:
                c = item.get("c", "")
                if len(c) == 1 and not c.isascii():
                    out.setdefault(c, key.lower())
        elif len(key) == 1 and not key.isascii():
            ascii_letters = [i["c"] for i in looks if len(i.get("c", "")) == 1 and i["c"].isascii() and i["c"].isalpha()]
            if ascii_letters:
                out.setdefault(key, ascii_letters[0].lower())
    return out


_HOMOGLYPHS = str.maketrans({**_confusable_letters(), **_PUNCTUATION, "ı": "i", "ł": "l"})
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"})
_LEET_TOKEN = re.compile(r"[a-z0-9@$!]+")  # a word-ish run; only runs with a letter are read as leet
_SPACED = re.compile(r"(?<![a-z0-9])(?:[a-z][ .\-_*]){2,}[a-z](?![a-z0-9])")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+|(?<=[\U0001F300-\U0001FAFF])\s+(?=[A-Z])")


def _drop(ch: str) -> bool:
    """Invisible formatting (zero-width, bidi overrides, soft hyphen) and control characters."""
    if ch in "\n\t":
        return False
    cat = unicodedata.category(ch)
    return cat in ("Cf", "Cc", "Cs", "Co", "Cn") and ch not in "\u200d"  # keep ZWJ inside emoji


@dataclass
class Normalised:
    original: str
    text: str
    offsets: list[int]  # offsets[i] = index in `original` of text[i]
    cased: str = ""     # `text` before case folding, same length (for rules where case matters)

    @cached_property
    def leet(self) -> str:
        """`text` with leetspeak read as letters inside words that contain a letter."""
        def fix(m: re.Match) -> str:
            tok = m.group(0)
            if tok.isalpha() or not any("a" <= c <= "z" for c in tok):
                return tok
            return tok.translate(_LEET)
        return _LEET_TOKEN.sub(fix, self.text)

    @cached_property
    def sentences(self) -> list[tuple[int, int]]:
        """(start, end) spans of sentences in `text`."""
        spans, start = [], 0
        for m in _SENTENCE_END.finditer(self.text):
            if m.start() > start:
                spans.append((start, m.start()))
            start = m.end()
        if start < len(self.text):
            spans.append((start, len(self.text)))
        return spans or [(0, len(self.text))]

    @cached_property
    def _sentence_starts(self) -> list[int]:
        return [a for a, _ in self.sentences]

    def sentence_at(self, pos: int) -> tuple[int, int]:
        """The sentence holding `pos` (a position just past a sentence's end belongs to it)."""
        spans = self.sentences
        i = bisect_right(self._sentence_starts, pos) - 1
        if i >= 0 and pos <= spans[i][1]:
            if i > 0 and pos == spans[i][0] and pos == spans[i - 1][1]:
                return spans[i - 1]
            return spans[i]
        if i > 0 and pos == spans[i - 1][1]:
            return spans[i - 1]
        return 0, len(self.text)

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Map a [start, end) span of `text` back to the original string."""
        if not self.offsets:
            return 0, 0
        start = min(max(start, 0), len(self.offsets) - 1)
        end = min(max(end, start + 1), len(self.offsets))
        return self.offsets[start], self.offsets[end - 1] + 1

    @cached_property
    def quoted(self) -> list[tuple[int, int]]:
        """Spans inside quotation marks: quoting a word is discussing it, not using it."""
        spans = [m.span(1) for m in re.finditer(r'"([^"\n]{1,120})"', self.text)]
        spans += [m.span(1) for m in re.finditer(r"(?<![a-z0-9])'([^'\n]{1,80}?)'(?![a-z0-9])", self.text)]
        return spans

    @cached_property
    def _quoted_index(self) -> tuple[list[int], list[int]]:
        spans = sorted(self.quoted)
        return [a for a, _ in spans], list(accumulate((b for _, b in spans), max))

    def in_quotes(self, start: int, end: int) -> bool:
        starts, max_end = self._quoted_index
        i = bisect_right(starts, start) - 1   # quoted spans that start at or before `start`
        return i >= 0 and max_end[i] >= end


def normalise(original: str) -> Normalised:
    out: list[str] = []
    cased: list[str] = []
    offs: list[int] = []
    prev_space = True
    for i, ch in enumerate(original):
        if _drop(ch):
            continue
        nfkc = unicodedata.normalize("NFKC", ch)
        folded = nfkc.translate(_HOMOGLYPHS).casefold().translate(_HOMOGLYPHS)
        upper = nfkc.translate(_HOMOGLYPHS)
        if len(upper) != len(folded):
            upper = folded
        for c, u in zip(folded, upper):
            if unicodedata.combining(c):
                continue
            if c.isspace():
                if prev_space:
                    continue
                c = u = "\n" if c == "\n" else " "
                prev_space = True
            else:
                prev_space = False
            out.append(c)
            cased.append(u)
            offs.append(i)
    # Strip accents that NFKC kept composed (é -> e), one character at a time to keep offsets.
    text, upper = "".join(out), "".join(cased)
    if not text.isascii():
        text, upper = _strip_accents(text), _strip_accents(upper)
    while text.endswith((" ", "\n")):
        text, upper, offs = text[:-1], upper[:-1], offs[:-1]
    return _join_spaced(Normalised(original, text, offs, upper))


def _strip_accents(text: str) -> str:
    """é -> e, one character for one, so offsets stay aligned."""
    out = []
    for c in text:
        base = unicodedata.normalize("NFKD", c)[:1]
        out.append(base if base.isascii() and base.isalpha() else c)
    return "".join(out)


def _join_spaced(n: Normalised) -> Normalised:
    """'s c h i z o' and 's.c.h.i.z.o' become 'schizo' (single letters separated by one mark)."""
    if not _SPACED.search(n.text):
        return n
    text, cased, offs, last = [], [], [], 0
    for m in _SPACED.finditer(n.text):
        text.append(n.text[last:m.start()])
        cased.append(n.cased[last:m.start()])
        offs.extend(n.offsets[last:m.start()])
        for j in range(m.start(), m.end(), 2):
            text.append(n.text[j])
            cased.append(n.cased[j])
            offs.append(n.offsets[j])
        last = m.end()
    text.append(n.text[last:])
    cased.append(n.cased[last:])
    offs.extend(n.offsets[last:])
    return Normalised(n.original, "".join(text), offs, "".join(cased))
