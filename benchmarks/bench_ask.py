"""Benchmark `policybot ask`: questions/s, median and p95 per question after load, cold start, peak memory.

Run: .venv/bin/python benchmarks/bench_ask.py [--rounds 20]
Uses ../shared/eval/questions.jsonl when present, else the held-out test questions.
Not a test: it measures, it asserts nothing.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def questions() -> list[str]:
    for path in (ROOT.parent / "shared" / "eval" / "questions.jsonl", ROOT / "tests" / "data" / "questions_heldout.jsonl"):
        if path.exists():
            return [json.loads(l)["question"] for l in path.read_text().splitlines() if l.strip()]
    raise SystemExit("no question set found")


def cold_start(runs: int) -> list[float]:
    exe = Path(sys.executable).parent / "policybot"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "bot.cli"]
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd + ["ask", "an ex-patient added me on facebook"], check=True, capture_output=True, cwd=ROOT)
        times.append(time.perf_counter() - t)
    return times


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--cold-runs", type=int, default=5)
    args = ap.parse_args()
    from bot.app import build_core

    t0 = time.perf_counter()
    core = build_core()
    load = time.perf_counter() - t0
    qs = questions()
    for q in qs:  # warm the per-term cache the way a running bot would be
        core.ask.answer(q)
    per = []
    t1 = time.perf_counter()
    for _ in range(args.rounds):
        for q in qs:
            s = time.perf_counter()
            core.ask.answer(q)
            per.append(time.perf_counter() - s)
    total = time.perf_counter() - t1
    # A cold cache: a fresh index, each question once.
    core2 = build_core()
    cold = []
    for q in qs:
        s = time.perf_counter()
        core2.ask.answer(q)
        cold.append(time.perf_counter() - s)
    per.sort()
    cold.sort()
    starts = cold_start(args.cold_runs)
    child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    self_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({
        "questions": len(qs), "rounds": args.rounds,
        "load_s": round(load, 4),
        "questions_per_s": round(len(per) / total, 1),
        "median_ms": round(statistics.median(per) * 1000, 3),
        "p95_ms": round(per[int(0.95 * (len(per) - 1))] * 1000, 3),
        "first_seen_median_ms": round(statistics.median(cold) * 1000, 3),
        "first_seen_p95_ms": round(cold[int(0.95 * (len(cold) - 1))] * 1000, 3),
        "cold_start_s_median": round(statistics.median(starts), 3),
        "cold_start_s_max": round(max(starts), 3),
        "peak_rss_mb_cli": round(child_peak, 1),
        "peak_rss_mb_this_process": round(self_peak, 1),
    }, indent=2))


if __name__ == "__main__":
    main()
