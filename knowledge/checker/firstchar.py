"""The characters a regular expression's match can start with, as a character class.

Every rule pattern starts with a look-behind (`(?<![\\w])`), and Python's regex engine then tries the whole
alternation at every position of the draft: on 40,000 characters of punctuation or emoji that is ~12 ms a
pattern, ~300 ms a draft. A leading look-ahead for the possible first characters (`(?=[psn])`) lets the
engine skip positions where no match can start; it changes no match, because every match starts with one
of those characters. Patterns whose first character we cannot bound (`.`, a back-reference, an empty
match, scoped flags such as `(?i:...)`) are left as they are.
"""
from __future__ import annotations

import re

try:  # Python 3.11+
    from re import _constants as _c, _parser as _sre
except ImportError:  # pragma: no cover - Python 3.10
    import sre_constants as _c  # type: ignore[no-redef]
    import sre_parse as _sre  # type: ignore[no-redef]

_CATEGORY = {_c.CATEGORY_DIGIT: r"\d", _c.CATEGORY_NOT_DIGIT: r"\D", _c.CATEGORY_SPACE: r"\s",
             _c.CATEGORY_NOT_SPACE: r"\S", _c.CATEGORY_WORD: r"\w", _c.CATEGORY_NOT_WORD: r"\W"}
_ZERO_WIDTH = {_c.AT, _c.ASSERT, _c.ASSERT_NOT}
_ATOMIC = getattr(_c, "ATOMIC_GROUP", None)
_REPEATS = {_c.MAX_REPEAT, _c.MIN_REPEAT} | ({_c.POSSESSIVE_REPEAT} if hasattr(_c, "POSSESSIVE_REPEAT") else set())


class _Unbounded(Exception):
    """A match could start with any character."""


def _class_items(items) -> list[str]:
    out = []
    for op, av in items:
        if op is _c.LITERAL:
            out.append(re.escape(chr(av)))
        elif op is _c.RANGE:
            out.append(f"{re.escape(chr(av[0]))}-{re.escape(chr(av[1]))}")
        elif op is _c.CATEGORY and av in _CATEGORY:
            out.append(_CATEGORY[av])
        else:  # NEGATE and anything exotic
            raise _Unbounded
    return out


def _first(seq) -> tuple[list[str], bool]:
    """(class fragments a match of `seq` can start with, whether `seq` can match the empty string)."""
    found: list[str] = []
    for op, av in seq:
        if op in _ZERO_WIDTH:
            continue
        if op is _c.LITERAL:
            return found + [re.escape(chr(av))], False
        if op is _c.IN:
            return found + _class_items(av), False
        if op is _c.SUBPATTERN:
            if av[1] or av[2]:   # scoped flags, e.g. (?i:abc): the class would be read without them
                raise _Unbounded
            part, empty = _first(av[-1])
        elif op is _c.BRANCH:
            part, empty = [], False
            for alt in av[1]:
                p, e = _first(alt)
                part += p
                empty = empty or e
        elif op in _REPEATS:
            part, empty = _first(av[2])
            empty = empty or av[0] == 0
        elif _ATOMIC is not None and op is _ATOMIC:
            part, empty = _first(av)
        else:  # ANY, NOT_LITERAL, GROUPREF, ...
            raise _Unbounded
        found += part
        if not empty:
            return found, False
    return found, True


def first_class(pattern: str, flags: int = 0) -> str | None:
    """A character class (without brackets) every match of `pattern` starts with, or None."""
    try:
        fragments, empty = _first(_sre.parse(pattern, flags))
    except (_Unbounded, re.error, TypeError, ValueError):
        return None
    if empty or not fragments:
        return None
    return "".join(dict.fromkeys(fragments))


def with_first_char_hint(body: str, wrapped: str, flags: int = 0) -> str:
    """`wrapped` (a pattern around `body`) led by a look-ahead for body's first characters, if known."""
    cls = first_class(body, flags)
    return wrapped if cls is None else f"(?=[{cls}])" + wrapped
