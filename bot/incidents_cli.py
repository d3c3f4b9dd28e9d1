"""`policybot incidents` and `policybot escalations`: the incident log for the comms team and audit."""
from __future__ import annotations

import asyncio
import csv
import datetime as dt
import json
import sys
from collections import Counter
from typing import TextIO

from handlers.retention import Purge, describe, parse_period
from handlers.store import Incident, utcnow
from handlers.untrusted import terminal_safe

FIELDS = ("platform", "contact_kind", "from_whom", "occurred_at", "description", "screenshot", "line_manager",
          "notify_manager", "redirect", "privacy")


class UsageError(ValueError):
    pass


def parse_duration(text: str) -> dt.timedelta:
    try:
        return parse_period(text)
    except ValueError as exc:
        raise UsageError(f"--older-than: {exc}") from None


def parse_since(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--since: use a date like 2026-01-31 (got {text!r})") from None
    return dt.datetime.combine(day, dt.time(0), dt.timezone.utc)


def record(store, inc: Incident) -> dict:
    """Every stored field of an incident, with its answers and escalations."""
    return {"ref": inc.ref, "status": inc.status, "surface": inc.surface, "user_id": inc.user_id,
            "step": inc.step, "created_at": inc.created_at, "updated_at": inc.updated_at,
            "completed_at": inc.completed_at, **{f: inc.fields.get(f) for f in FIELDS},
            "risk_flags": inc.risk_flags,
            "answers": [vars(a) for a in inc.answers],
            "escalations": [{k: v for k, v in vars(e).items() if k != "summary"}
                            for e in store.escalations(incident_ref=inc.ref)]}


def cmd_list(core, args, out: TextIO) -> int:
    rows = core.store.list_incidents(since=parse_since(args.since), status=args.status, limit=args.limit,
                                     answers=False)
    if not rows:
        out.write("No incidents.\n")
        return 0
    out.write(f"{'REF':<15}{'STATUS':<13}{'CREATED':<22}{'PLATFORM':<11}{'CONTACT':<10}{'FROM':<22}RISK\n")
    for inc in rows:
        f = inc.fields
        out.write(f"{inc.ref:<15}{inc.status:<13}{inc.created_at[:19]:<22}{f.get('platform', '-'):<11}"
                  f"{f.get('contact_kind', '-'):<10}{f.get('from_whom', '-'):<22}{','.join(inc.risk_flags) or '-'}\n")
    return 0


def cmd_show(core, args, out: TextIO) -> int:
    inc = core.store.get_incident(args.ref)
    if inc is None:
        print(f"policybot: no incident {args.ref!r}", file=sys.stderr)
        return 1
    out.write(core.report.summary(inc) + "\n\n")
    out.write(f"Reporter: {inc.surface} user {inc.user_id}; created {inc.created_at}; updated {inc.updated_at}"
              + (f"; completed {inc.completed_at}" if inc.completed_at else "") + "\n")
    out.write("Answers:\n")
    for a in inc.answers:
        out.write(f"  {a.answered_at}  {a.step}: {a.value}\n")
    escs = core.store.escalations(incident_ref=inc.ref)
    if escs:
        out.write("Escalations:\n")
        for e in escs:
            out.write(f"  #{e.id} {e.kind} {e.status} (attempts {e.attempts})"
                      + (f", acknowledged by {e.acknowledged_by}" if e.acknowledged_by else "")
                      + (f", resolved by {e.resolved_by}" if e.resolved_by else "")
                      + (f", last error: {e.last_error}" if e.last_error else "") + "\n")
    return 0


def cmd_export(core, args, out: TextIO) -> int:
    rows = [record(core.store, i) for i in reversed(core.store.list_incidents(since=parse_since(args.since)))]
    if args.format == "json":
        out.write(json.dumps(rows, ensure_ascii=False, indent=2) + "\n")
        return 0
    writer = csv.writer(out)
    head = ["ref", "status", "surface", "user_id", "step", "created_at", "updated_at", "completed_at", *FIELDS,
            "risk_flags", "answers", "escalations"]
    writer.writerow(head)
    for r in rows:
        writer.writerow([_csv_safe(r[h]) if not isinstance(r[h], list) else
                         (";".join(r[h]) if h == "risk_flags" else json.dumps(r[h], ensure_ascii=False)) for h in head])
    return 0


def _csv_safe(value):
    """Stop spreadsheet formula injection from free text (=, +, -, @ at the start of a cell)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def cmd_stats(core, args, out: TextIO) -> int:
    rows = core.store.list_incidents(since=parse_since(args.since), answers=False)
    tables = {
        "By month": Counter(i.created_at[:7] for i in rows),
        "By status": Counter(i.status for i in rows),
        "By platform": Counter(i.fields.get("platform", "(not given)") for i in rows),
        "By contact kind": Counter(i.fields.get("contact_kind", "(not given)") for i in rows),
        "By who it was from": Counter(i.fields.get("from_whom", "(not given)") for i in rows),
        "By risk": Counter(f for i in rows for f in i.risk_flags) or Counter({"(none)": 0}),
    }
    if args.json:
        out.write(json.dumps({"Incidents": len(rows), **{k: dict(sorted(v.items())) for k, v in tables.items()}}) + "\n")
        return 0
    out.write(f"Incidents: {len(rows)}\n")
    for title, counts in tables.items():
        out.write(f"\n{title}:\n")
        for key, n in sorted(counts.items()):
            out.write(f"  {key:<24}{n}\n")
    return 0


def _losses(purge: Purge, cutoffs, refs_shown: int = 10) -> list[str]:
    """What each table loses, one line per kind of record."""
    refs = ", ".join(purge.incidents[:refs_shown]) + (f", ... ({len(purge.incidents) - refs_shown} more)"
                                                    if len(purge.incidents) > refs_shown else "")
    day = lambda t: f"{t:%Y-%m-%d %H:%M} UTC"
    return [
        f"  incidents    {len(purge.incidents):>5}  created before {day(cutoffs.incidents)}" + (f": {refs}" if refs else ""),
        f"  answers      {purge.answers:>5}  (every answer of those incidents)",
        f"  escalations  {purge.incident_escalations:>5}  of those incidents (or of incidents already deleted)",
        f"               {purge.drafts:>5}  drafts sent for comms review, last touched before {day(cutoffs.drafts)}",
        f"               {purge.questions:>5}  questions for a person, last touched before {day(cutoffs.questions)}",
        f"  feedback     {purge.feedback:>5}  votes and reasons given before {day(cutoffs.feedback)}, "
        f"and unanswered questions asked before {day(cutoffs.questions)}",
    ]


def cmd_purge(core, args, out: TextIO, stdin: TextIO) -> int:
    """Delete everything past its retention period (app.yaml `retention:`; --older-than for incidents)."""
    retention = core.config.retention
    incidents = parse_duration(args.older_than) if args.older_than else None
    cutoffs = retention.cutoffs(utcnow(), incidents=incidents)
    plan = core.store.expired(cutoffs)
    out.write(f"Retention: {retention.line()}"
              + (f" (incidents {describe(incidents)} from --older-than)" if incidents else "") + ".\n")
    if not plan.rows:
        out.write("Nothing to delete: nothing is past its retention period.\n")
        return 0
    out.write(f"This will permanently delete {plan.rows} record(s):\n" + "\n".join(_losses(plan, cutoffs)) + "\n")
    if not args.yes:
        out.write("Type 'yes' to delete them: ")
        out.flush()
        if stdin.readline().strip().lower() != "yes":
            out.write("\nNothing deleted.\n")
            return 1
    done = core.store.purge_expired(cutoffs)
    out.write(f"Deleted {len(done.incidents)} incident(s), {done.answers} answer(s), {done.escalations} "
              f"escalation(s) and {done.feedback} feedback record(s).\n")
    if done.note:
        out.write(done.note + "\n")
    return 0 if done.scrubbed else 1


def cmd_escalations(core, args, out: TextIO) -> int:
    from handlers.escalation import Actor
    from handlers.store import FAILED, UNDELIVERABLE

    from .console import ConsoleNotifier
    if args.action == "list":
        rows = core.store.escalations(status=args.status)
        if args.failed:  # out of retries first: those need someone to act
            rows = core.store.escalations(status=UNDELIVERABLE) + core.store.escalations(status=FAILED)
            if not rows:
                out.write("No failed escalations.\n")
        for e in rows:
            out.write(f"#{e.id:<5}{e.kind:<14}{e.status:<15}{e.destination or '-':<9}{e.incident_ref or '-':<15}"
                      f"{e.created_at[:19]}  attempts {e.attempts}{'  error: ' + e.last_error if e.last_error else ''}\n")
        return 0
    # The operator on this machine acts as themselves (the audit trail keeps their login), named --by.
    core.escalations.add_notifier("cli", ConsoleNotifier(out))
    actor = Actor("cli", _login(), name=args.by)
    move = core.escalations.acknowledge if args.action == "ack" else core.escalations.resolve
    moved = asyncio.run(move(args.id, actor))
    esc = moved.escalation
    if esc is None:
        print(f"policybot: no escalation #{args.id}", file=sys.stderr)
        return 1
    out.write(f"Escalation #{esc.id} is {esc.status}.\n")
    if moved.changed and esc.requester_user and esc.requester_surface not in ("console", "cli"):
        out.write(f"This command can't reach {esc.requester_surface}: tell the person who raised it "
                  f"({esc.requester_surface} user {esc.requester_user}) yourself.\n")
    return 0


def _login() -> str:
    import getpass
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"


def add_parsers(sub) -> None:
    inc = sub.add_parser("incidents", help="the incident log: list, show, export, stats, purge")
    isub = inc.add_subparsers(dest="action", required=True)
    p = isub.add_parser("list", help="incidents, newest first")
    p.add_argument("--since", help="only incidents created on or after this date (YYYY-MM-DD)")
    p.add_argument("--status", choices=("in_progress", "completed", "cancelled"))
    p.add_argument("--limit", type=int, default=50)
    p = isub.add_parser("show", help="one incident, every answer and escalation")
    p.add_argument("ref")
    p = isub.add_parser("export", help="every field of every incident, as CSV or JSON")
    fmt = p.add_mutually_exclusive_group(required=True)
    fmt.add_argument("--csv", dest="format", action="store_const", const="csv")
    fmt.add_argument("--json", dest="format", action="store_const", const="json")
    p.add_argument("--since", help="only incidents created on or after this date (YYYY-MM-DD)")
    p = isub.add_parser("stats", help="counts by month, status, platform, contact kind, sender and risk")
    p.add_argument("--since")
    p.add_argument("--json", action="store_true")
    p = isub.add_parser("purge", help="delete everything past its retention period (app.yaml retention:)")
    p.add_argument("--older-than", metavar="DURATION",
                   help="incidents created longer ago than this (default: retention.incidents), e.g. 90d, 12w, 6m, 1y")
    p.add_argument("--yes", action="store_true", help="don't ask for confirmation")

    esc = sub.add_parser("escalations", help="escalations: list, ack, resolve")
    esub = esc.add_subparsers(dest="action", required=True)
    p = esub.add_parser("list")
    p.add_argument("--status", choices=("pending", "sending", "sent", "failed", "undeliverable", "acknowledged",
                                        "resolved"))
    p.add_argument("--failed", action="store_true",
                   help="those that ran out of retries (undeliverable), then those failing and still retried")
    for name in ("ack", "resolve"):
        p = esub.add_parser(name)
        p.add_argument("id", type=int)
        p.add_argument("--by", required=True, help="who is acknowledging or resolving it")


class TerminalOut:
    """Output for people: stored text (names, errors from platforms) can't drive the terminal."""

    def __init__(self, out: TextIO):
        self.out = out

    def write(self, text: str) -> int:
        return self.out.write(terminal_safe(text))

    def flush(self) -> None:
        self.out.flush()


def run(core, args, stdin: TextIO, out: TextIO) -> int:
    if not (args.command == "incidents" and args.action == "export") and not getattr(args, "json", False):
        out = TerminalOut(out)
    if args.command == "escalations":
        return cmd_escalations(core, args, out)
    handlers = {"list": cmd_list, "show": cmd_show, "export": cmd_export, "stats": cmd_stats}
    if args.action == "purge":
        return cmd_purge(core, args, out, stdin)
    return handlers[args.action](core, args, out)
