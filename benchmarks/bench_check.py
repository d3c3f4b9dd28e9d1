"""Benchmark `policybot check`: drafts/s on one core, median and p95 per draft, cold start, peak memory.

Run: .venv/bin/python benchmarks/bench_check.py [--rounds 20]
Uses ../shared/eval/drafts.jsonl when present, plus the held-out drafts in tests/data, and the adversarial
drafts of benchmarks/adversarial.py at 10,000 and 40,000 characters (repeated triggers, digit and
punctuation runs, homoglyphs, zero-width splits).
`median_ms`/`p95_ms` repeat drafts (the embedding cache answers); `fresh_*` clear the cache before each
draft, as a new post is; `corpus_short_*` time 300 fresh corpus posts of <= 280 characters (about half
of them safe, nearer real traffic than the evaluation drafts, 60% of which are problems). Not a test: it measures, it asserts nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def drafts() -> list[tuple[str, str]]:
    paths = [ROOT.parent / "shared" / "eval" / "drafts.jsonl", *sorted((ROOT / "tests" / "data").glob("drafts_*.jsonl"))]
    out = []
    for path in paths:
        if path.exists():
            out += [(d["text"], d.get("account", "unknown")) for d in map(json.loads, path.read_text().splitlines()) if d]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--cold-runs", type=int, default=5)
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    from bot.app import build_core

    t0 = time.perf_counter()
    checker = build_core().check.checker
    load = time.perf_counter() - t0
    items = drafts()
    for text, account in items:
        checker.check(text, account)
    fresh, fresh_short, corpus_short = [], [], []   # each draft new to the embedding cache, as a real post is
    if checker.semantic is not None:
        from knowledge.training import load_corpus

        def timed_fresh(text: str, account: str) -> float:
            checker.semantic.embedder.clear_cache()
            s = time.perf_counter()
            checker.check(text, account)
            return time.perf_counter() - s

        for _ in range(max(1, args.rounds // 4)):
            for text, account in items:
                fresh.append(timed_fresh(text, account))
                if len(text) <= 280:
                    fresh_short.append(fresh[-1])
        # short corpus posts, about half of them safe: closer to real traffic than the evaluation drafts
        corpus_short = [timed_fresh(it["text"], it["account"])
                        for it in [it for it in load_corpus() if len(it["text"]) <= 280][:300]]
        for timings in (fresh, fresh_short, corpus_short):
            timings.sort()
    per = []
    t1 = time.perf_counter()
    for _ in range(args.rounds):
        for text, account in items:
            s = time.perf_counter()
            checker.check(text, account)
            per.append(time.perf_counter() - s)
    total = time.perf_counter() - t1
    per.sort()
    exe = Path(sys.executable).parent / "policybot"
    starts = []
    for _ in range(args.cold_runs):
        s = time.perf_counter()
        subprocess.run([str(exe), "check", "--account", "personal", "the lad in bay 3 thinks he's the king"],
                       check=True, capture_output=True, cwd=ROOT)
        starts.append(time.perf_counter() - s)
    from benchmarks.adversarial import adversarial
    worst = {}
    for size in (10_000, 40_000):
        for name, text in adversarial(size).items():
            s = time.perf_counter()
            checker.check(text, "personal")
            worst[f"{name}@{size // 1000}k"] = round((time.perf_counter() - s) * 1000, 1)
    print(json.dumps({
        "semantic_tier": checker.semantic is not None,
        "adversarial_ms": worst,
        "adversarial_max_ms": max(worst.values()),
        "drafts": len(items), "rounds": args.rounds, "load_s": round(load, 3),
        "drafts_per_s_one_core": round(len(per) / total, 1),
        "median_ms": round(statistics.median(per) * 1000, 3),
        "p95_ms": round(per[int(0.95 * (len(per) - 1))] * 1000, 3),
        "max_ms": round(per[-1] * 1000, 3),
        "fresh_median_ms": round(statistics.median(fresh) * 1000, 3) if fresh else None,
        "fresh_p95_ms": round(fresh[int(0.95 * (len(fresh) - 1))] * 1000, 3) if fresh else None,
        "fresh_short_posts": len(fresh_short),   # <= 280 characters
        "fresh_short_median_ms": round(statistics.median(fresh_short) * 1000, 3) if fresh_short else None,
        "fresh_short_p95_ms": round(fresh_short[int(0.95 * (len(fresh_short) - 1))] * 1000, 3) if fresh_short else None,
        "corpus_short_posts": len(corpus_short),
        "corpus_short_median_ms": round(statistics.median(corpus_short) * 1000, 3) if corpus_short else None,
        "corpus_short_p95_ms": round(corpus_short[int(0.95 * (len(corpus_short) - 1))] * 1000, 3) if corpus_short else None,
        "cold_start_s_median": round(statistics.median(starts), 3),
        "cold_start_s_max": round(max(starts), 3),
        "peak_rss_mb_cli": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        "peak_rss_mb_this_process": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }, indent=2))


if __name__ == "__main__":
    main()
