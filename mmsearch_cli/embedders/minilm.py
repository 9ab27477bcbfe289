"""all-MiniLM-L6-v2 text embeddings on onnxruntime + ``tokenizers``, without torch.

A query in a fresh process (imports, session load, encode) costs ~0.45 s this way against
~5.9 s through sentence-transformers (measured by benchmarks/bench_embedders.py);
a warm short query ~2.5 ms. The ONNX graph (exported once by ``models.export.export_minilm``)
does the mean pooling and L2 normalisation itself.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmsearch_cli.embedders.base import Embedder, l2_normalise
from mmsearch_cli.items import Embedded, InputModality, MediaItem
from mmsearch_cli.models import export
from mmsearch_cli.models.files import cached_array
from mmsearch_cli.models.sessions import open_session


class MiniLMEmbedder(Embedder):
    """Text (chunks, transcripts, queries) into the 384-d "text" space."""

    name = "minilm"
    space = "text"
    dim = 384
    accepts: frozenset[InputModality] = frozenset({"text"})
    batch_size = 32
    # Attention memory grows with rows x tokens^2: 32 chunks of 256 tokens peaked at 778 MiB
    # RSS, 8 of them at 346 MiB and no slower (640 chunks, one thread). Long chunks go in
    # smaller batches; short ones (queries, labels) keep 32.
    attention_budget = 8 * 256 * 256

    def __init__(self, *, model_dir: Path, threads: int = 1) -> None:
        super().__init__()
        self.model_dir = model_dir
        self.threads = threads
        self._session: Any = None
        self._tokenizer: Any = None
        self._meta: dict[str, Any] = {}

    @property
    def export_dir(self) -> Path:
        return export.minilm_dir(self.model_dir)

    def _load(self) -> None:
        from tokenizers import Tokenizer

        meta = self._export_meta()
        tokenizer = Tokenizer.from_file(str(self.export_dir / "tokenizer.json"))
        # The packaged tokenizer pads every input to 128 tokens: 21 ms instead of 2 ms for a
        # short query. Batches are padded to their own longest row in ``_run``.
        tokenizer.no_padding()
        tokenizer.enable_truncation(int(meta["max_tokens"]))
        self._session = open_session(
            self.export_dir / "model.onnx",
            threads=self.threads,
            hint="delete that directory and run `mms models prepare`",
        )
        self._tokenizer = tokenizer

    def _export_meta(self) -> dict[str, Any]:
        """The export's meta.json (exporting first if needed); cheap, no session."""
        if not self._meta:
            if not export.is_exported(self.export_dir):
                export.export_minilm(self.export_dir)
            self._meta = export.read_meta(self.export_dir)
        return self._meta

    def embed(self, items: Sequence[MediaItem]) -> list[Embedded]:
        texts = [item.text or str(item.payload) for item in items]
        return [Embedded(vector=v) for v in self.embed_texts(texts)]

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Unit rows, float32, shape (len(texts), 384)."""
        self.ensure_loaded()
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encodings = self._tokenizer.encode_batch(list(texts))
        # Batching similar lengths together keeps padding (wasted compute) small.
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        start = 0
        while start < len(order):
            stop = min(start + self.batch_size, len(order))
            # sorted by length: the batch's last row is its widest
            while stop - start > 1 and (
                (stop - start) * len(encodings[order[stop - 1]].ids) ** 2 > self.attention_budget
            ):
                stop -= 1
            rows = order[start:stop]
            out[rows] = self._run([encodings[i] for i in rows])
            start = stop
        return out

    def embed_query_text(self, text: str) -> np.ndarray:
        self.ensure_loaded()
        return self._run([self._tokenizer.encode(text)])[0]

    def _run(self, encodings: Sequence[Any]) -> np.ndarray:
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)  # [PAD] is id 0
        mask = np.zeros_like(ids)
        for row, enc in enumerate(encodings):
            ids[row, : len(enc.ids)] = enc.ids
            mask[row, : len(enc.ids)] = 1
        (vectors,) = self._session.run(None, {"input_ids": ids, "attention_mask": mask})
        return l2_normalise(vectors)  # already unit in the graph; guards float drift

    def fingerprint(self) -> dict[str, Any]:
        meta = self._export_meta()
        return {
            "embedder": self.name,
            "model": meta["model"],
            "weights": str(meta["weights_sha256"])[:12],
            "dim": self.dim,
            "max_tokens": meta["max_tokens"],
            "pooling": "mean, normalised",
        }


def cached_embeddings(embedder: MiniLMEmbedder, texts: list[str], path_prefix: Path) -> np.ndarray:
    """(n, 384) embeddings of fixed ``texts``, cached as ``{path_prefix}-{digest}.npy`` under a
    key of the texts and the model's fingerprint, written atomically (computed once)."""
    return cached_array(
        path_prefix, [texts, embedder.fingerprint()], lambda: embedder.embed_texts(texts)
    )


@functools.cache
def shared_minilm(model_dir: Path, threads: int = 1) -> MiniLMEmbedder:
    """One MiniLM session per process for the embedders that embed words (ConSE, sound tags)."""
    return MiniLMEmbedder(model_dir=model_dir, threads=threads)
