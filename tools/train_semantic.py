#!/usr/bin/env python3
"""Train the checker's semantic tier from knowledge/training/corpus (build time; needs the `train` extra).

    python tools/train_semantic.py            # 5-fold figures, then fit on the whole corpus and write the weights
    python tools/train_semantic.py --cv-only  # figures only

One logistic regression per category, one that tells unsafe suicide content from a post that only lacks
signposting, and a gate (does the post have any problem at all?) over [the shared embedding model's
vector of the draft, cues, word and word-pair TF-IDF (knowledge/checker/words.py; vocabulary and idf
learnt from the drafts each model is fitted on)]. Thresholds come from out-of-fold probabilities: per category head the one
that maximises F-beta (beta 1 by default; --beta-stop for stop-level ones), and the gate's the one that
maximises out-of-fold verdict accuracy. Writes knowledge/checker/semantic.npz and semantic.json (heads,
thresholds, cues, and provenance: corpus hash and size, parameters, k-fold figures, the npz's sha256,
checked at load). The evaluation sets (../shared/eval) are never read here.

    python tools/train_semantic.py --cv-only --train-parts part1 part2 part3 part4   # cross-writer figures:
        # fit on those files, report on the others (each file is one writer's)

Fine-tuning the encoder end to end was tried (4 epochs, top 3 layers, on two loaded CPU cores, ~1 h):
on 15% held out it reached 0.62 verdict accuracy and 0.39 false alarms, worse than this, so the
shipped tier keeps the encoder frozen and shares it with search.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from knowledge.checker.normalise import normalise  # noqa: E402
from knowledge.checker.rules import load_categories  # noqa: E402
from knowledge.checker.semantic import CHECKER_DIR, CUE_NAMES, GATE, SPEC_FILE, SUICIDE, SUICIDE_STOP, WEIGHTS_FILE, cues  # noqa: E402
from knowledge.checker.words import MIN_DF, Vocabulary  # noqa: E402
from knowledge.embedding import Embedder  # noqa: E402
from knowledge.training import CORPUS_DIR, load_corpus  # noqa: E402

SEED = 20261201
C_REG = 4.0
SENTENCE_WEIGHT = 0.0   # fixed: a sentence's probability, scaled, never beat reading the whole draft (it
                        # still picks the sentence a finding quotes)
BETA_STOP = 1.0
GATE_TOLERANCE = 0.0    # accuracy given up, at most, for a lower gate (more findings)
WORDS_WEIGHT = 2.0      # TF-IDF columns are scaled by this before fitting (i.e. regularised less)


class Features:
    """Per draft: [embedding, cues] (computed once) and its normalised text; the word features depend on
    a vocabulary, learnt from whichever drafts a model is fitted on (so k-fold figures see no test words)."""

    def __init__(self, items, embedder):
        whole = embedder.embed([it["text"][:4000] for it in items], batch=64)
        cue = np.stack([cues(it["text"][:4000], it["account"]) for it in items])
        self.dense = np.hstack([whole, cue]).astype(np.float32)
        self.folded = [normalise(it["text"]).text for it in items]

    def vocabulary(self, rows) -> Vocabulary:
        return Vocabulary.learn([self.folded[i] for i in np.flatnonzero(rows)], MIN_DF)

    def matrix(self, rows, vocab: Vocabulary):
        """[dense, TF-IDF scaled by WORDS_WEIGHT] for the selected drafts, sparse."""
        import scipy.sparse as sp

        idx = np.flatnonzero(rows)
        r, c, v = [], [], []
        for k, i in enumerate(idx):
            cols, vals = vocab.sparse_row(self.folded[i])
            r.extend([k] * len(cols))
            c.extend(cols.tolist())
            v.extend((vals * WORDS_WEIGHT).tolist())
        words = sp.csr_matrix((v, (r, c)), shape=(len(idx), len(vocab)), dtype=np.float32)
        return sp.hstack([sp.csr_matrix(self.dense[idx]), words]).tocsr()


def heads(categories):
    return list(categories) + [SUICIDE_STOP, GATE]


def labels(items, names, levels):
    Y = np.zeros((len(items), len(names)), dtype=int)
    use = np.ones((len(items), len(names)), dtype=bool)
    for i, it in enumerate(items):
        for j, c in enumerate(names):
            if c == SUICIDE_STOP:
                # Trained on posts about suicide only: unsafe content (stop) versus only missing signposting.
                if SUICIDE not in it["categories"]:
                    use[i, j] = False
                    continue
                other_stop = [k for k in it["categories"] if k != SUICIDE and levels[k] == "stop"]
                if other_stop:
                    use[i, j] = False
                    continue
                Y[i, j] = it["verdict"] == "stop"
            elif c == GATE:
                Y[i, j] = bool(it["categories"])
            else:
                Y[i, j] = c in it["categories"]
    return Y, use


def fit(X, Y, use):
    from sklearn.linear_model import LogisticRegression

    W = np.zeros((Y.shape[1], X.shape[1]), dtype=np.float32)
    b = np.zeros(Y.shape[1], dtype=np.float32)
    for j in range(Y.shape[1]):
        rows = use[:, j]
        y = Y[rows, j]
        if y.min() == y.max():
            b[j] = -10.0 if y.max() == 0 else 10.0
            continue
        m = LogisticRegression(C=C_REG, class_weight="balanced", max_iter=2000)
        m.fit(X[rows], y)
        W[j], b[j] = m.coef_[0], m.intercept_[0]
    return W, b


def predict(W, b, X):
    return 1 / (1 + np.exp(-np.clip(X @ W.T + b, -30, 30)))


def choose_thresholds(P, Y, use, names, levels):
    out = np.full(len(names), 0.5, dtype=np.float32)
    for j, c in enumerate(names):
        rows = use[:, j]
        y, p = Y[rows, j], P[rows, j]
        if y.sum() == 0:
            out[j] = 0.99
            continue
        if c == GATE:
            continue  # chosen afterwards, for verdict accuracy
        beta = BETA_STOP if levels.get(c, "stop") == "stop" and c != SUICIDE_STOP else 1.0
        best, best_t = -1, 0.5
        for t in np.arange(0.05, 0.96, 0.01):
            pred = p >= t
            tp = (pred & (y == 1)).sum()
            fp = (pred & (y == 0)).sum()
            fn = (~pred & (y == 1)).sum()
            f = (1 + beta**2) * tp / max((1 + beta**2) * tp + beta**2 * fn + fp, 1)
            if f > best:
                best, best_t = f, t
        out[j] = best_t
    return out


def choose_gate(items, P, thresholds, names, levels, tolerance=None):
    """The lowest gate threshold whose out-of-fold verdict accuracy is within `tolerance` of the best
    (recall first: a lower gate lets more findings through)."""
    tolerance = GATE_TOLERANCE if tolerance is None else tolerance
    g = names.index(GATE)
    accs = []
    for t in np.arange(0.05, 0.95, 0.01):
        trial = thresholds.copy()
        trial[g] = t
        accs.append((t, figures(items, P, trial, names, levels)["verdict_accuracy"]))
    best = max(a for _, a in accs)
    out = thresholds.copy()
    out[g] = next(t for t, a in accs if a >= best - tolerance - 1e-9)
    return out


def kfold(feats: Features, Y, use, k=5):
    """Out-of-fold probabilities; each fold learns its own vocabulary from its training drafts."""
    rng = np.random.default_rng(SEED)
    fold = rng.permutation(len(Y)) % k
    P = np.zeros(Y.shape, dtype=np.float32)
    for f in range(k):
        tr, te = fold != f, fold == f
        vocab = feats.vocabulary(tr)
        W, b = fit(feats.matrix(tr, vocab), Y[tr], use[tr])
        P[te] = predict(W, b, feats.matrix(te, vocab))
    return P


def figures(items, P, thresholds, names, levels):
    """Verdict and category figures of the semantic tier alone, out of fold."""
    idx = {c: j for j, c in enumerate(names)}
    tp, fp, fn = Counter(), Counter(), Counter()
    right = stop_n = stop_hit = ok_n = ok_fa = 0
    confusion = Counter()
    for i, it in enumerate(items):
        got = {c for c in names if c not in (SUICIDE_STOP, GATE) and P[i, idx[c]] >= thresholds[idx[c]]}
        if GATE in idx and P[i, idx[GATE]] < thresholds[idx[GATE]]:
            got = set()
        stop_lvl = any(levels[c] == "stop" for c in got if c != SUICIDE) or (
            SUICIDE in got and P[i, idx[SUICIDE_STOP]] >= thresholds[idx[SUICIDE_STOP]])
        verdict = "stop" if stop_lvl else "revise" if got else "ok"
        right += verdict == it["verdict"]
        confusion[f"{it['verdict']}->{verdict}"] += 1
        if it["verdict"] == "stop":
            stop_n += 1
            stop_hit += verdict == "stop"
        if it["verdict"] == "ok":
            ok_n += 1
            ok_fa += verdict != "ok"
        want = set(it["categories"])
        for c in got & want:
            tp[c] += 1
        for c in got - want:
            fp[c] += 1
        for c in want - got:
            fn[c] += 1
    per = {}
    for c in sorted(set(tp) | set(fn)):
        p = tp[c] / (tp[c] + fp[c]) if tp[c] + fp[c] else 0.0
        r = tp[c] / (tp[c] + fn[c]) if tp[c] + fn[c] else 0.0
        per[c] = round(2 * p * r / (p + r), 3) if p + r else 0.0
    return {"n": len(items), "verdict_accuracy": round(right / len(items), 3),
            "stop_recall": round(stop_hit / max(stop_n, 1), 3), "false_alarm_rate": round(ok_fa / max(ok_n, 1), 3),
            "category_macro_f1": round(sum(per.values()) / max(len(per), 1), 3),
            "confusion": dict(sorted(confusion.items())), "per_category_f1": per}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cv-only", action="store_true")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--out", default=str(CHECKER_DIR / WEIGHTS_FILE))
    ap.add_argument("--C", type=float, default=C_REG, help="inverse regularisation strength")
    ap.add_argument("--words-weight", type=float, default=WORDS_WEIGHT, help="0 drops the word features")
    ap.add_argument("--beta-stop", type=float, default=BETA_STOP)
    ap.add_argument("--no-gate", action="store_true", help="let every category head fire on its own")
    ap.add_argument("--gate-tolerance", type=float, default=GATE_TOLERANCE,
                    help="take the lowest gate within this much of the best out-of-fold accuracy")
    ap.add_argument("--train-parts", nargs="*", default=[],
                    help="cross-writer figures: fit on these corpus files (e.g. part1), report on the rest")
    args = ap.parse_args()
    globals().update(C_REG=args.C, WORDS_WEIGHT=args.words_weight, BETA_STOP=args.beta_stop,
                     GATE_TOLERANCE=args.gate_tolerance)
    items = load_corpus()
    levels = {n: c["level"] for n, c in load_categories().items()}
    names = heads(levels)
    writers = {writer(it) for it in items}
    unknown = sorted(set(args.train_parts) - writers)
    if unknown:
        ap.error(f"--train-parts: no corpus file {', '.join(unknown)} (there are {', '.join(sorted(writers))})")
    feats = Features(items, Embedder(threads=2, cache_size=100_000))
    Y, use = labels(items, names, levels)
    if args.no_gate:
        Y[:, names.index(GATE)] = 1
    if args.train_parts:
        cross_writer(items, feats, Y, use, names, levels, args)
        return
    P = kfold(feats, Y, use, args.folds)
    thresholds = choose_thresholds(P, Y, use, names, levels)
    thresholds = thresholds if args.no_gate else choose_gate(items, P, thresholds, names, levels)
    if args.no_gate:
        thresholds[names.index(GATE)] = 0.0
    cv = figures(items, P, thresholds, names, levels)
    print(json.dumps({"k_fold": args.folds, **cv}, indent=1))
    if args.cv_only:
        return
    everything = np.ones(len(items), dtype=bool)
    vocab = feats.vocabulary(everything)
    W, b = fit(feats.matrix(everything, vocab), Y, use)
    dense = feats.dense.shape[1]
    buf = io.BytesIO()
    np.savez_compressed(buf, W=W[:, :dense], b=b, heads=np.array(names), vocab=np.array(vocab.vocab),
                        idf=vocab.idf, W_words=(W[:, dense:] * WORDS_WEIGHT).astype(np.float32))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(buf.getvalue())
    corpus_hash = hashlib.sha256()
    for path in sorted(CORPUS_DIR.glob("*.jsonl")):
        corpus_hash.update(path.read_bytes())
    import sklearn
    spec = {
        "heads": names,
        "thresholds": [round(float(t), 3) for t in thresholds],
        "cue_names": CUE_NAMES,
        "sentence_weight": SENTENCE_WEIGHT,
        "provenance": {
            "file": out.name, "sha256": hashlib.sha256(buf.getvalue()).hexdigest(),
            "made_by": "tools/train_semantic.py", "sklearn": sklearn.__version__,
            "embedding": "knowledge/embedding/minilm-l6-v2-int8.onnx (see knowledge/embedding/provenance.json)",
            "corpus": {"files": sorted(p.name for p in CORPUS_DIR.glob("*.jsonl")), "items": len(items),
                       "sha256": corpus_hash.hexdigest(),
                       "by_verdict": dict(Counter(it["verdict"] for it in items))},
            "params": {"C": C_REG, "class_weight": "balanced", "words_weight": WORDS_WEIGHT, "min_df": MIN_DF,
                       "vocabulary": len(vocab), "beta_stop": BETA_STOP, "gate": not args.no_gate,
                       "gate_tolerance": GATE_TOLERANCE, "seed": SEED},
            "k_fold": {"folds": args.folds, **cv},
        },
    }
    out.with_name(SPEC_FILE).write_text(json.dumps(spec, indent=1) + "\n")
    print(f"wrote {out} ({len(buf.getvalue())} bytes) and {SPEC_FILE}")


def writer(item) -> str:
    """Each corpus file is one writer's; ids carry the file's prefix (p1-0001 is part1's)."""
    return "part" + item["id"].split("-")[0].lstrip("p")


def cross_writer(items, feats: Features, Y, use, names, levels, args):
    """Fit (thresholds from k-fold inside the training files) on some writers, report on the others:
    a truer test of drafts written apart than random folds, which mix every writer's wording."""
    tr = np.array([writer(it) in args.train_parts for it in items])
    te = ~tr
    train_items = [it for it, t in zip(items, tr) if t]
    sub = Features.__new__(Features)
    sub.dense, sub.folded = feats.dense[tr], [t for t, keep in zip(feats.folded, tr) if keep]
    P = kfold(sub, Y[tr], use[tr], args.folds)
    thresholds = choose_thresholds(P, Y[tr], use[tr], names, levels)
    if args.no_gate:
        thresholds[names.index(GATE)] = 0.0
    else:
        thresholds = choose_gate(train_items, P, thresholds, names, levels)
    vocab = feats.vocabulary(tr)
    W, b = fit(feats.matrix(tr, vocab), Y[tr], use[tr])
    test_items = [it for it, t in zip(items, te) if t]
    got = figures(test_items, predict(W, b, feats.matrix(te, vocab)), thresholds, names, levels)
    print(json.dumps({"train": args.train_parts, "train_items": int(tr.sum()), "test_items": int(te.sum()),
                      **got}, indent=1))


if __name__ == "__main__":
    main()
