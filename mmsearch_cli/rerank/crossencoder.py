"""Cross-encoder models: read (query, passage) pairs and score each.

The first stage (vector search) is cheap but compares two separately made vectors; a
cross-encoder attends over query and passage together and orders the top candidates
better. The packaged default is ``cross-encoder/ms-marco-MiniLM-L-12-v2`` as int8 ONNX,
fetched by ``mms models fetch``; any sentence-transformers CrossEncoder can replace it.
Models load lazily on first ``score``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmsearch_cli.errors import ModelUnavailableError, first_line
from mmsearch_cli.models.hub import offline
from mmsearch_cli.models.sessions import open_session
from mmsearch_cli.models.wheels import require

DEFAULT_ASSET = "reranker-ms-marco-minilm-l12-int8"
DEFAULT_NAME = "ms-marco-minilm-l12-int8"
# Beyond 512 tokens the text is truncated anyway; cutting characters first keeps the
# tokenizer from walking a huge chunk it will mostly throw away (~4 chars per token).
_MAX_PASSAGE_CHARS = 8 * 512
_BERT_INPUTS = {"input_ids", "attention_mask", "token_type_ids"}


class Reranker(ABC):
    """Scores passages against a query; higher is more relevant."""

    name: str

    def __init__(self) -> None:
        self._loaded = False

    def ensure_loaded(self) -> None:
        if not self._loaded:
            self._load()
            self._loaded = True

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        """Raw relevance logits, float32, one per passage, in input order."""
        if len(passages) == 0:
            return np.zeros(0, dtype=np.float32)
        self.ensure_loaded()
        clipped = [p[:_MAX_PASSAGE_CHARS] for p in passages]
        return np.asarray(self._score(query, clipped), dtype=np.float32).reshape(-1)

    @abstractmethod
    def _load(self) -> None:
        """Load the model. Raise ``ModelUnavailableError`` with a hint if it cannot be had."""

    @abstractmethod
    def _score(self, query: str, passages: list[str]) -> np.ndarray: ...


class OnnxCrossEncoder(Reranker):
    """The packaged MiniLM-L12 ms-marco cross-encoder, int8 ONNX, run by onnxruntime."""

    name = DEFAULT_NAME

    def __init__(self, model_dir: Path, *, threads: int = 1, max_length: int = 512) -> None:
        super().__init__()
        self.model_dir = model_dir
        self.threads = threads
        self.max_length = max_length  # lower it (e.g. 256) to halve the cost of long chunks
        self._session: Any = None
        self._tokenizer: Any = None
        self._input_names: set[str] = set()

    def _load(self) -> None:
        from tokenizers import Tokenizer

        folder = require(self.model_dir, DEFAULT_ASSET)
        try:
            tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
            session = open_session(folder / "model.onnx", threads=self.threads)
        except Exception as exc:  # corrupt or partial files: any loader error means the same
            raise ModelUnavailableError(
                f"cannot load the reranker from {folder}: {exc}",
                hint="delete that folder and run `mms models fetch` again",
            ) from exc
        tokenizer.enable_truncation(max_length=self.max_length, strategy="longest_first")
        # The packaged tokenizer.json pads every pair to 512 tokens. Pairs run one at a
        # time, unpadded: with int8 dynamic quantisation, padding shifts the activation
        # ranges and so a pair's score (by ~0.3 logit), and on 1 thread batching was not
        # faster anyway (measured: 100 vs 80 pairs/s at ~56 tokens, 30 vs 18 at ~190).
        tokenizer.no_padding()
        self._tokenizer = tokenizer
        self._session = session
        self._input_names = {i.name for i in session.get_inputs()}
        if unknown := self._input_names - _BERT_INPUTS:
            raise ModelUnavailableError(f"reranker model wants unknown inputs {sorted(unknown)}")

    def _score(self, query: str, passages: list[str]) -> np.ndarray:
        out = np.empty(len(passages), dtype=np.float32)
        for i, enc in enumerate(self._tokenizer.encode_batch([(query, p) for p in passages])):
            feeds = {
                "input_ids": np.array([enc.ids], dtype=np.int64),
                "attention_mask": np.array([enc.attention_mask], dtype=np.int64),
                "token_type_ids": np.array([enc.type_ids], dtype=np.int64),
            }
            (logits,) = self._session.run(None, {k: feeds[k] for k in self._input_names})
            out[i] = float(np.asarray(logits).reshape(-1)[0])
        return out


class SentenceTransformersCrossEncoder(Reranker):
    """Any sentence-transformers CrossEncoder: a local folder or an already cached hub id.

    ``allow_download=False`` (the default) never touches the network, so a model that is
    neither a folder nor in the Hugging Face cache fails fast with one line.
    """

    def __init__(
        self, model: str, allow_download: bool = False, *, threads: int = 1, batch_size: int = 16
    ) -> None:
        super().__init__()
        self.name = model
        self.allow_download = allow_download
        self.threads = threads
        self.batch_size = batch_size
        self._model: Any = None

    def _unavailable(self, reason: str) -> ModelUnavailableError:
        return ModelUnavailableError(
            f"cannot load cross-encoder '{self.name}': {reason}",
            hint="give a local CrossEncoder folder, or use the packaged default reranker",
        )

    def _check_available(self) -> None:
        """Fail before the ~6 s sentence-transformers import when the files cannot exist."""
        if _looks_like_path(self.name):
            if not Path(self.name).expanduser().is_dir():
                raise self._unavailable("no such folder")
            return
        if self.allow_download and not offline():
            return
        from huggingface_hub import try_to_load_from_cache

        try:
            cached = try_to_load_from_cache(self.name, "config.json")
        except Exception:  # an id that is not a valid repo name is simply not cached
            cached = None
        if not isinstance(cached, str):
            raise self._unavailable("not in the local Hugging Face cache and downloads are off")

    def _load(self) -> None:
        self._check_available()
        import torch
        from sentence_transformers import CrossEncoder

        torch.set_num_threads(self.threads)
        local_only = not self.allow_download or offline()
        model = str(Path(self.name).expanduser()) if _looks_like_path(self.name) else self.name
        try:
            self._model = CrossEncoder(model, device="cpu", local_files_only=local_only)
        except (OSError, ValueError, KeyError) as exc:
            raise self._unavailable(first_line(exc)) from exc

    def _score(self, query: str, passages: list[str]) -> np.ndarray:
        import torch

        scores = self._model.predict(
            [(query, p) for p in passages],
            batch_size=self.batch_size,
            activation_fn=torch.nn.Identity(),  # raw logits, like the ONNX path
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        return np.asarray(scores, dtype=np.float32).reshape(len(passages), -1)[:, 0]


def _looks_like_path(spec: str) -> bool:
    # Hub ids also contain "/", so a relative path counts only when it exists.
    return spec.startswith((".", "/", "~")) or Path(spec).is_dir()


def get_reranker(spec: str | None, model_dir: Path, threads: int = 1) -> Reranker:
    """``None``/"default"/the packaged name -> the ONNX default; else a folder or hub id."""
    if spec is None or spec.strip() in ("", "default", DEFAULT_NAME):
        return OnnxCrossEncoder(model_dir, threads=threads)
    return SentenceTransformersCrossEncoder(spec.strip(), threads=threads)
