"""`policybot feedback list`: where the policy or the knowledge base falls short, for policy owners.

Counts per clause of helpful / not helpful votes (with the reasons people gave), and the questions the
bot could not answer (their text is kept only when app.yaml's feedback.store_unanswered is on, with
identifiers removed by the checker's detectors). Nothing here names who asked.
"""
from __future__ import annotations

import csv
import datetime as dt
import re
from collections import Counter, defaultdict
from typing import TextIO

from .incidents_cli import UsageError, parse_since

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def safe_terminal(text: str) -> str:
    """Stored text echoed to a terminal: no escape sequences or control characters."""
    return _CONTROL.sub(" ", str(text))


def add_parsers(sub) -> None:
    f = sub.add_parser("feedback", help="answers marked unhelpful and questions the policy doesn't cover")
    fsub = f.add_subparsers(dest="feedback_command", required=True)
    lst = fsub.add_parser("list", help="counts per clause, reasons, and unanswered questions")
    lst.add_argument("--since", help="only feedback from this date (YYYY-MM-DD)")
    lst.add_argument("--unanswered", action="store_true", help="only the questions the bot could not answer")
    lst.add_argument("--csv", action="store_true", help="one CSV row per feedback item")
    f.set_defaults(func=cmd_feedback)


def _when(value) -> dt.datetime:
    when = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


def cmd_feedback(args, stdin: TextIO, stdout: TextIO) -> int:
    from .app import build_core
    import sys
    try:
        since = parse_since(args.since)
    except UsageError as exc:
        print(f"policybot: {exc}", file=sys.stderr)
        return 2
    core = build_core(args.config, storage=True)
    rows = [r for r in core.store.feedback() if since is None or _when(r["created_at"]) >= since]
    if args.unanswered:
        rows = [r for r in rows if r["vote"] == "not_found"]
    if args.csv:
        w = csv.writer(stdout)
        w.writerow(["date", "surface", "kind", "citation", "text"])
        for r in rows:
            kind = {"up": "helpful", "down": "not helpful"}.get(r["vote"], "not found")
            w.writerow([str(r["created_at"])[:10], r["surface"], kind, r["citation"], r["reason"]])
        return 0
    votes: dict[str, Counter] = defaultdict(Counter)
    reasons: dict[str, list[str]] = defaultdict(list)
    unanswered = []
    for r in rows:
        if r["vote"] == "not_found":
            unanswered.append(r)
            continue
        votes[r["citation"]][r["vote"]] += 1
        if r["reason"]:
            reasons[r["citation"]].append(r["reason"])
    out = []
    if not args.unanswered:
        out.append(f"Answers by clause ({sum(sum(c.values()) for c in votes.values())} votes):")
        for cite, c in sorted(votes.items(), key=lambda kv: (-kv[1]["down"], kv[0])):
            out.append(f"  {cite:<34} not helpful {c['down']:>3}   helpful {c['up']:>3}")
            for reason in reasons[cite][:5]:
                out.append(f"      - {safe_terminal(reason)[:200]}")
        if not votes:
            out.append("  (none yet)")
    out.append(f"Questions the policy didn't answer ({len(unanswered)}):")
    for r in unanswered:
        text = safe_terminal(r["reason"]) if r["reason"] else "(text not kept: feedback.store_unanswered is off)"
        out.append(f"  {str(r['created_at'])[:10]}  {r['surface']:<7} {text[:200]}")
    if not unanswered:
        out.append("  (none)")
    stdout.write("\n".join(out) + "\n")
    return 0
