#!/usr/bin/env python3
"""Score the routing (what each message is taken for) against labelled messages.

Usage (from the project's root, with the project installed):
  python tests/score_routing.py [FILE ...] [--cmd "policybot chat --jsonl"] [--json] [--show-misses]

Each FILE is JSON Lines in one of three shapes:
  routing set (tests/data/routing*.jsonl):  {"id", "text", "accept": [kinds that are right]}
  drafts (../shared/eval/drafts*.jsonl):    {"id", "text", ...}      right: check or both
  questions (../shared/eval/questions*):    {"id", "question", ...}  right: answer or both
With no FILE, scores tests/data/routing.jsonl and the three held-out routing sets.

The command gets {"id", "text"} per message (each its own conversation) and must answer with
{"id", "kind", "verdict", ...}. Besides the share routed right, it counts the questions given a
verdict: "as a verdict" (routed check: a question told "OK to post" or the like, always wrong)
and "conditionally" (routed both: the answer, then "if this is a post: ..."). --show-misses
prints the texts of misrouted messages; don't use it on data you mean to keep unseen.
"""
import argparse
import json
import shlex
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = [ROOT / "tests/data" / f"routing{part}.jsonl" for part in ("", "_heldout", "_heldout2", "_heldout3")]
ANSWERED = {"answer", "both", "risk"}


def load(path: Path) -> list[dict]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        if "accept" not in row:
            row["accept"] = ["check", "both"] if "text" in row else ["answer", "both"]
            row["text"] = row.get("text", row.get("question"))
        rows.append(row)
    return rows


def route(rows: list[dict], cmd: str) -> dict[str, dict]:
    feed = "".join(json.dumps({"id": r["id"], "text": r["text"]}, ensure_ascii=False) + "\n" for r in rows)
    proc = subprocess.run(shlex.split(cmd), input=feed, capture_output=True, text=True, cwd=ROOT, check=False)
    if proc.returncode:
        sys.exit(f"{cmd!r} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    out = {}
    for line in proc.stdout.splitlines():
        if line.strip():
            item = json.loads(line)
            out[item["id"]] = item
    return out


def score(path: Path, cmd: str) -> dict:
    rows = load(path)
    got = route(rows, cmd)
    kinds, misses = Counter(), []
    questions = verdict = conditional = 0
    for r in rows:
        out = got.get(r["id"], {})
        kind = out.get("kind", "missing")
        kinds[kind] += 1
        if kind not in r["accept"]:
            misses.append({"id": r["id"], "want": r["accept"], "got": kind, "text": r["text"]})
        if not set(r["accept"]) - ANSWERED:       # a question (or an incident): never a verdict
            questions += 1
            verdict += kind == "check"
            conditional += kind == "both"
    right = len(rows) - len(misses)
    return {"file": str(path), "n": len(rows), "right": right, "accuracy": round(right / len(rows), 4) if rows else 0,
            "kinds": dict(kinds), "questions": questions, "questions_given_a_verdict": verdict,
            "questions_given_both": conditional, "misses": misses}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--cmd", default=f"{shlex.quote(sys.executable)} -m bot.cli chat --jsonl")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--show-misses", action="store_true")
    args = ap.parse_args(argv)
    results = [score(p, args.cmd) for p in (args.files or DEFAULT)]
    if args.json:
        print(json.dumps([{k: v for k, v in r.items() if k != "misses" or args.show_misses} for r in results], indent=1))
        return 0
    for r in results:
        print(f"{r['file']}: {r['right']}/{r['n']} routed right ({r['accuracy']:.1%}); kinds {r['kinds']}")
        if r["questions"]:
            print(f"  questions: {r['questions']}, given a verdict: {r['questions_given_a_verdict']}, "
                  f"given both (answer + conditional verdict): {r['questions_given_both']}")
        for m in r["misses"]:
            print(f"  miss {m['id']}: want {'/'.join(m['want'])}, got {m['got']}"
                  + (f": {m['text'][:120]!r}" if args.show_misses else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
