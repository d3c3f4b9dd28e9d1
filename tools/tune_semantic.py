#!/usr/bin/env python3
"""Figures for the rules plus the semantic tier on a labelled drafts file, across threshold shifts.

    python tools/tune_semantic.py ../shared/eval/drafts.jsonl            # the development set
    python tools/tune_semantic.py FILE --shift 0.05 --write              # apply a shift to semantic.json

Each head's threshold moves by the same shift (negative: more findings). Tune on the development set
only; score any other set once with ../shared/eval/score.py, before reading its misses.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.app import build_checker  # noqa: E402
from bot.config import load_config  # noqa: E402
from knowledge.checker.semantic import SPEC_FILE, CHECKER_DIR  # noqa: E402

VERDICTS = ("ok", "revise", "stop")


def evaluate(checker, items):
    """Per draft: its rule findings' inputs and the semantic tier's per-head probabilities, read once."""
    from knowledge.checker.engine import MAX_DRAFT_CHARS
    from knowledge.checker.normalise import normalise

    rows = []
    for it in items:
        text = it["text"][:MAX_DRAFT_CHARS]
        account = it.get("account", "unknown")
        account = account if account in ("personal", "official") else "unknown"
        best, where = checker.semantic.read(text, normalise(text), account, checker.semantic.thresholds - 0.3)
        rows.append((it, text, account, best, where))
    return rows


def figures(checker, rows, shift):
    tier = checker.semantic
    cut = tier.thresholds + shift
    tp, fp, fn = Counter(), Counter(), Counter()
    conf = Counter()
    for it, text, account, best, where in rows:
        keep = checker.combine(text, account, tier.hits(best, where, cut))
        levels = {f.severity for f in keep}
        verdict = "stop" if "stop" in levels else "revise" if "revise" in levels else "ok"
        conf[(it["verdict"], verdict)] += 1
        got, want = {f.category for f in keep}, set(it["categories"])
        for c in got & want:
            tp[c] += 1
        for c in got - want:
            fp[c] += 1
        for c in want - got:
            fn[c] += 1
    n = len(rows)
    by = Counter(it["verdict"] for it, *_ in rows)
    f1s = []
    for c in set(tp) | set(fn):
        p = tp[c] / (tp[c] + fp[c]) if tp[c] + fp[c] else 0.0
        r = tp[c] / (tp[c] + fn[c]) if tp[c] + fn[c] else 0.0
        f1s.append(2 * p * r / (p + r) if p + r else 0.0)
    return {"shift": round(shift, 3), "accuracy": round(sum(conf[(v, v)] for v in VERDICTS) / n, 3),
            "stop_recall": round(conf[("stop", "stop")] / max(by["stop"], 1), 3),
            "false_alarms": round((by["ok"] - conf[("ok", "ok")]) / max(by["ok"], 1), 3),
            "macro_f1": round(sum(f1s) / max(len(f1s), 1), 3)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data")
    ap.add_argument("--shift", type=float)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    items = [json.loads(line) for line in open(args.data, encoding="utf-8") if line.strip()]
    config = load_config(None)
    config.raw.setdefault("checker", {})["semantic"] = True
    checker = build_checker(config)
    rows = evaluate(checker, items)
    shifts = [args.shift] if args.shift is not None else np.arange(-0.2, 0.31, 0.05)
    for s in shifts:
        print(json.dumps(figures(checker, rows, float(s))))
    if args.write and args.shift is not None:
        path = CHECKER_DIR / SPEC_FILE
        spec = json.loads(path.read_text())
        spec["thresholds"] = [round(min(0.99, max(0.01, t + args.shift)), 3) for t in spec["thresholds"]]
        spec["provenance"]["threshold_shift"] = {"shift": args.shift, "tuned_on": Path(args.data).name}
        path.write_text(json.dumps(spec, indent=1) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
