"""Probe: after `policybot incidents purge`, can the purged text be read back from the SQLite files?

Fills a database with N records of every kind a purge should remove (incidents with their
answers and their escalations, drafts sent for comms review that were never delivered,
questions passed to a person, feedback reasons, questions the bot could not answer), each
holding its own canary string, plus a few recent records that must stay. Everything to go is
aged past every retention period. Then, while this process keeps a connection open (as the
server does), `policybot incidents purge --older-than 1y --yes` runs in its own process, as the comms team would
run it beside the server, and `strings` reads the database and its write-ahead log.

Counts: rows in each table before and after, canaries planted, canaries `strings` still finds
in the .db and the -wal file (recoverable), and kept canaries still there (they must be).

Run:   .venv/bin/python benchmarks/probe_retention.py [--records 50]
Older code (the purge and the store of another checkout, e.g. before retention was built):
       .venv/bin/python benchmarks/probe_retention.py --code /path/to/other/checkout
Not a test: it measures, it asserts nothing. tests/test_retention.py is the test.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
KINDS = ("description", "risk", "review", "question", "reason", "unanswered")
TABLES = ("incidents", "answers", "escalations", "feedback")

# `strings` where binutils is installed; the same rule (runs of 4+ printable ASCII characters) if not.
STRINGS = r"""
import re, sys
for path in sys.argv[1:]:
    try:
        data = open(path, "rb").read()
    except FileNotFoundError:
        continue
    for run in re.findall(rb"[\t\x20-\x7e]{4,}", data):
        sys.stdout.buffer.write(run + b"\n")
"""


def canary(kind: str, i: int) -> str:
    return f"Canary{kind.capitalize()}{i:04d}Zq"


def fill(store, n: int) -> None:
    """n records of each kind to go (aged later), and one of each to keep."""
    for i in range(n):
        for keep in (False, True) if i == 0 else (False,):
            tag = "Kept" if keep else ""
            inc = store.create_incident("console", f"nurse{i}", "description")
            text = canary(tag + "description", i)
            store.add_answer(inc, "description", text)
            inc.fields["description"] = text
            store.save_incident(inc)
            store.add_escalation("safeguarding", "Risk: " + canary(tag + "risk", i), incident_ref=inc.ref,
                                 requester_surface="console", requester_user=f"nurse{i}")
            store.add_escalation("review", "Draft for review: " + canary(tag + "review", i),
                                 requester_surface="console", requester_user=f"nurse{i}")
            store.add_escalation("comms", "Question: " + canary(tag + "question", i),
                                 requester_surface="console", requester_user=f"nurse{i}")
            store.add_feedback("console", f"nurse{i}", "bsmhft 3.1", "down", canary(tag + "reason", i))
            store.add_feedback("console", f"nurse{i}", "", "not_found", canary(tag + "unanswered", i))
            if not keep:
                age(store, f"nurse{i}")


def age(store, user: str, days: int = 800) -> None:
    """Every timestamp of this user's records moved back past every retention period, straight in the
    database (as time passing would)."""
    when = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days)).replace(microsecond=0).isoformat()
    for table, who in (("incidents", "user_id"), ("escalations", "requester_user"), ("feedback", "user_id")):
        stamps = [r[1] for r in store.db.execute(f"PRAGMA table_info({table})").fetchall() if r[1].endswith("_at")]
        sets = ", ".join(f"{c} = CASE WHEN {c} IS NULL THEN NULL ELSE ? END" for c in stamps)
        store.db.execute(f"UPDATE {table} SET {sets} WHERE {who} = ?", [when] * len(stamps) + [user])


def counts(store) -> dict[str, int]:
    return {t: store.db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


def read_strings(db: Path) -> dict[str, bytes]:
    """What `strings` prints for each file, in a child process: opening and closing the database file
    in this process would drop the open connection's POSIX locks."""
    out = {}
    for path in (db, Path(f"{db}-wal")):
        if not path.exists():
            out[path.name] = b""
        elif shutil.which("strings"):
            out[path.name] = subprocess.run(["strings", "-a", "-n", "4", str(path)], capture_output=True,
                                            check=True).stdout
        else:
            out[path.name] = subprocess.run([sys.executable, "-c", STRINGS, str(path)], capture_output=True,
                                            check=True).stdout
    return out


def found(dump: dict[str, bytes], texts: list[str]) -> dict[str, int]:
    return {name: sum(t.encode() in data for t in texts) for name, data in dump.items()}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--records", type=int, default=50, help="records of each kind to purge")
    p.add_argument("--code", default=str(HERE), help="the checkout whose store and `incidents purge` to probe")
    args = p.parse_args()
    code = Path(args.code).resolve()
    sys.path.insert(0, str(code))
    from bot.storage import SQLiteStore
    print(f"code under test: {code}   strings: {shutil.which('strings') or 'python (no binutils)'}")
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "policybot.db"
        store = SQLiteStore(db)  # the server's connection: open before, during and after the purge
        fill(store, args.records)
        gone = [canary(k, i) for k in KINDS for i in range(args.records)]
        kept = [canary("Kept" + k, 0) for k in KINDS]
        before = counts(store)
        dump = read_strings(db)
        on_disk = found(dump, gone)
        readable = len({t for t in gone if any(t.encode() in data for data in dump.values())})
        env = {**os.environ, "POLICYBOT_DATABASE": str(db), "PYTHONPATH": str(code)}
        env.pop("POLICYBOT_DATABASE_URL", None)
        proc = subprocess.run([sys.executable, "-m", "bot.cli", "incidents", "purge", "--older-than", "1y", "--yes"], cwd=code, env=env,
                              capture_output=True, text=True, timeout=300)
        after = counts(store)  # the open connection still works
        dump = read_strings(db)
        left, still = found(dump, gone), found(dump, kept)
        store.close()
    print(f"purge exit {proc.returncode}; it said:")
    for line in (proc.stdout + proc.stderr).strip().splitlines():
        print("  | " + line)
    purged = sum(before.values()) - sum(after.values())
    print("rows           " + "  ".join(f"{t} {before[t]}->{after[t]}" for t in TABLES) + f"   purged {purged}")
    print(f"canaries       {len(gone)} to go ({args.records} of each of {len(KINDS)} kinds), {len(kept)} to keep")
    print("before purge   readable with strings: " + ", ".join(f"{k} {v}" for k, v in on_disk.items())
          + f"   (distinct {readable} of {len(gone)})")
    recoverable = len({t for t in gone if any(t.encode() in data for data in dump.values())})
    print("after purge    recoverable: " + ", ".join(f"{k} {v}" for k, v in left.items())
          + f"   (distinct {recoverable} of {len(gone)})")
    print("kept           still there: " + ", ".join(f"{k} {v}" for k, v in still.items()) + f" of {len(kept)}")


if __name__ == "__main__":
    main()
