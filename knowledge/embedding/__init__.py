"""Sentence embeddings for the checker's semantic tier and dense policy search.

One model file (all-MiniLM-L6-v2, int8 ONNX, made by tools/export_embedding.py) is loaded once per
process and shared by the checker and search. It runs on onnxruntime + tokenizers + numpy: no torch at
run time. Every shipped file's sha256 is checked at load against provenance.json, so a missing or
corrupt file stops start-up with one line naming the file and how to restore it.
"""
from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

EMBEDDING_DIR = Path(__file__).resolve().parent
MODEL_FILE = "minilm-l6-v2-int8.onnx"
TOKENIZER_FILE = "tokenizer.json"
MAX_TOKENS = 256          # the model was trained on 256 word pieces; longer input is truncated
DIM = 384
_SURROGATE = re.compile("[\ud800-\udfff]")
RESTORE = "restore it with `git checkout -- knowledge/embedding` or rebuild it with tools/export_embedding.py"


class ModelError(RuntimeError):
    """A model file that is missing or not the one provenance.json pins; the message says which and how to fix it."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify(directory: Path, files: dict[str, str]) -> None:
    """Stop with one line if a pinned file is missing or its sha256 differs."""
    for name, want in files.items():
        path = directory / name
        if not path.is_file():
            raise ModelError(f"model file {path} is missing: {RESTORE}")
        if _sha256(path) != want:
            raise ModelError(f"model file {path} is corrupt (sha256 differs from provenance.json): {RESTORE}")


class Embedder:
    """Text -> unit-length 384-d vectors. Thread-safe; caches recent texts (questions and drafts repeat)."""

    def __init__(self, directory: Path = EMBEDDING_DIR, threads: int = 1, cache_size: int = 4096):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        try:
            prov = json.loads((directory / "provenance.json").read_text())["model"]["files"]
        except (OSError, ValueError, KeyError):
            raise ModelError(f"{directory / 'provenance.json'} is missing or unreadable: {RESTORE}") from None
        verify(directory, prov)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(directory / MODEL_FILE), opts,
                                                 providers=["CPUExecutionProvider"])
            self._tokenizer = Tokenizer.from_file(str(directory / TOKENIZER_FILE))
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(f"model in {directory} could not be loaded ({type(exc).__name__}): {RESTORE}") from None
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.no_padding()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def embed(self, texts: list[str], batch: int = 32) -> np.ndarray:
        """One row per text. Empty or symbol-only text gives a zero row (never NaN)."""
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        todo: list[int] = []
        with self._lock:
            for i, t in enumerate(texts):
                hit = self._cache.get(t)
                if hit is not None:
                    out[i] = hit
                    self._cache.move_to_end(t)
                elif t.strip():
                    todo.append(i)
        # Sort by length so each batch pads little.
        # The tokenizer takes only text that encodes as UTF-8: a lone surrogate (from JSON) becomes U+FFFD.
        encodings = self._tokenizer.encode_batch([_SURROGATE.sub("\ufffd", texts[i]) for i in todo]) if todo else []
        order = sorted(range(len(todo)), key=lambda k: len(encodings[k].ids))
        for s in range(0, len(order), batch):
            chunk = order[s:s + batch]
            width = max(len(encodings[k].ids) for k in chunk)
            ids = np.zeros((len(chunk), width), dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.int64)
            for r, k in enumerate(chunk):
                e = encodings[k].ids
                ids[r, :len(e)] = e
                mask[r, :len(e)] = 1
            vecs = self._session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
            vecs = np.nan_to_num(vecs.astype(np.float32))
            for r, k in enumerate(chunk):
                out[todo[k]] = vecs[r]
        with self._lock:
            for i in todo:
                self._cache[texts[i]] = out[i]
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return out

    def clear_cache(self) -> None:
        """Forget every cached vector (benchmarks time fresh texts this way)."""
        with self._lock:
            self._cache.clear()

    def embed_one(self, text: str) -> np.ndarray:
        return self.embed([text])[0]


_shared: Embedder | None = None
_shared_lock = threading.Lock()


def shared_embedder() -> Embedder:
    """The process's one embedder (loaded on first use), so checker and search share the model."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Embedder()
        return _shared


__all__ = ["DIM", "Embedder", "ModelError", "shared_embedder", "verify"]
