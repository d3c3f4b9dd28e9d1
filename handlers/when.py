"""Parse 'when did it happen?': "now", "yesterday 9pm", "2 hours ago", "21/11/2026 18:30".

UK day-first dates, the trust's local time zone. A time in the future, an impossible
date or text we cannot read raises WhenError with a message to show the user.
"""
from __future__ import annotations

import datetime as dt
import re

FUTURE_SLACK = dt.timedelta(minutes=5)  # clocks differ a little; "in 2 minutes" is still now
_NUM_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "ten": 10,
              "couple of": 2, "a couple of": 2, "few": 3, "a few": 3}
_UNITS = {"min": "minutes", "mins": "minutes", "minute": "minutes", "minutes": "minutes", "hour": "hours",
          "hours": "hours", "hr": "hours", "hrs": "hours", "day": "days", "days": "days", "week": "weeks", "weeks": "weeks"}
_PARTS = {"this morning": (0, 9, 0), "this afternoon": (0, 15, 0), "this evening": (0, 19, 0), "tonight": (0, 20, 0),
          "last night": (-1, 21, 0), "yesterday morning": (-1, 9, 0), "yesterday afternoon": (-1, 15, 0),
          "yesterday evening": (-1, 19, 0)}
_TIME = re.compile(r"(?:at\s+)?(\d{1,2})(?:[:.](\d{2}))?\s*(am|pm)?$")
_DATE = re.compile(r"(\d{1,2})[/.\-](\d{1,2})(?:[/.\-](\d{2,4}))?$")
_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[ t](\d{1,2}):(\d{2}))?$")
_AGO = re.compile(r"(\d+|a few|a couple of|couple of|few|a|an|one|two|three|four|five|six|ten)\s+([a-z]+)\s+ago$")
HELP = 'Try "now", "yesterday 9pm", "2 hours ago" or a date and time like "21/11/2026 18:30".'


class WhenError(ValueError):
    pass


def _time(text: str) -> tuple[int, int] | None:
    m = _TIME.fullmatch(text.strip())
    if not m:
        return None
    hour, minute, ampm = int(m.group(1)), int(m.group(2) or 0), m.group(3)
    if ampm:
        if not 1 <= hour <= 12:
            raise WhenError(f"{text!r} isn't a time. {HELP}")
        hour = hour % 12 + (12 if ampm == "pm" else 0)
    elif m.group(2) is None and hour <= 12:
        raise WhenError(f"Is {hour} in the morning or the evening? Say {hour}am or {hour}pm.")
    if hour > 23 or minute > 59:
        raise WhenError(f"{text!r} isn't a time. {HELP}")
    return hour, minute


def parse_when(text: str, now: dt.datetime) -> dt.datetime:
    """A timezone-aware datetime in `now`'s zone, not in the future."""
    raw = " ".join((text or "").lower().replace(",", " ").split())
    if not raw:
        raise WhenError(f"Please tell me when it happened. {HELP}")
    if len(raw) > 60:
        raise WhenError(f"That's longer than I can read as a time. {HELP}")
    when = _parse(raw, now)
    if when > now + FUTURE_SLACK:
        raise WhenError(f"That's in the future ({when:%d/%m/%Y %H:%M}). When did it happen? {HELP}")
    return when


def _parse(raw: str, now: dt.datetime) -> dt.datetime:
    if raw.startswith(("tomorrow", "next ", "in ")):
        raise WhenError(f"That's in the future. When did it happen? {HELP}")
    if raw in ("now", "just now", "right now", "a moment ago", "moments ago", "today"):
        return now.replace(second=0, microsecond=0)
    if raw in _PARTS:
        days, hour, minute = _PARTS[raw]
        return (now + dt.timedelta(days=days)).replace(hour=hour, minute=minute, second=0, microsecond=0)
    m = _AGO.fullmatch(raw)
    if m:
        n = int(m.group(1)) if m.group(1).isdigit() else _NUM_WORDS[m.group(1)]
        unit = _UNITS.get(m.group(2))
        if not unit:
            raise WhenError(f"I can't read {raw!r} as a time. {HELP}")
        return (now - dt.timedelta(**{unit: n})).replace(second=0, microsecond=0)
    day, rest = None, raw
    for word, offset in (("yesterday", -1), ("today", 0), ("tonight", 0)):
        if raw.startswith(word):
            day, rest = (now + dt.timedelta(days=offset)).date(), raw[len(word):].strip()
            break
    if day is None:
        m = _ISO.match(raw) or None
        if m:
            try:
                d = dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
            except ValueError:
                raise WhenError(f"{raw!r} isn't a real date. {HELP}") from None
            hm = (int(m.group(4)), int(m.group(5))) if m.group(4) else (12, 0)
            if hm[0] > 23 or hm[1] > 59:
                raise WhenError(f"{raw!r} isn't a real time. {HELP}")
            return dt.datetime.combine(d, dt.time(*hm), now.tzinfo)
        first, _, rest = raw.partition(" ")
        m = _DATE.fullmatch(first)
        if not m:
            t = _time(raw)
            if t:
                when = now.replace(hour=t[0], minute=t[1], second=0, microsecond=0)
                return when if when <= now + FUTURE_SLACK else when - dt.timedelta(days=1)
            raise WhenError(f"I can't read {raw!r} as a date or time. {HELP}")
        d_, mth, y = int(m.group(1)), int(m.group(2)), m.group(3)
        year = now.year if y is None else int(y) + (2000 if len(y) == 2 else 0)
        try:
            day = dt.date(year, mth, d_)
        except ValueError:
            raise WhenError(f"{first!r} isn't a real date (day/month/year). {HELP}") from None
    rest = rest.strip()
    if rest in _PARTS or rest in ("morning", "afternoon", "evening", "night"):
        hour = {"morning": 9, "afternoon": 15, "evening": 19, "night": 21}.get(rest, _PARTS.get(rest, (0, 12, 0))[1])
        return dt.datetime.combine(day, dt.time(hour, 0), now.tzinfo)
    t = _time(rest) if rest else (12, 0)
    if t is None:
        raise WhenError(f"I can't read {rest!r} as a time. {HELP}")
    return dt.datetime.combine(day, dt.time(*t), now.tzinfo)
