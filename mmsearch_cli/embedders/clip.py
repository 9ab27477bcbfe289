"""CLIP-style image+text models (CLIP, SigLIP, multilingual CLIP) via sentence-transformers.

Any model sentence-transformers loads with a text and an image modality works: the old
``sentence-transformers/clip-*`` checkpoints, plain ``transformers`` CLIP/SigLIP folders
(it detects ``get_text_features``/``get_image_features`` itself) or a local folder.
Text-only towers trained into a CLIP space (``clip-ViT-B-32-multilingual-v1``) accept
text only and share the space of the image model they were aligned to.

Queries avoid torch when an ONNX export of the text tower exists (``export_query_onnx``):
importing sentence-transformers costs about 6 s, onnxruntime + tokenizers about 0.2 s.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mmsearch_cli.embedders.base import Embedder, l2_normalise
from mmsearch_cli.errors import ModelUnavailableError, UsageError, first_line
from mmsearch_cli.items import Embedded, InputModality, MediaItem
from mmsearch_cli.models import hub
from mmsearch_cli.models.export import atomic_export, export_module, min_cosine
from mmsearch_cli.models.sessions import open_session

log = logging.getLogger(__name__)

# Text-only towers distilled into another model's space: their space is that model's.
ALIGNED_TO = {"sentence-transformers/clip-ViT-B-32-multilingual-v1": "clip-ViT-B-32"}
ONNX_FORMAT = 1
MIN_EXPORT_COSINE = 0.9999  # ONNX vs torch, for every check text
_TORCH_FALLBACK = "queries will keep using torch"  # the hint on every export failure
# Export check: case, punctuation, non-ASCII, a single token, and more than 77 tokens.
_CHECK_TEXTS = [
    "a photo of a cat",
    "Two DOGS playing with a red ball in the park!",
    "la tour Eiffel à Paris, été 2019",
    "x",
    " ".join(["a very long caption about solar panels and wind turbines"] * 12),
]
_PREP_KEYS = (
    "size", "crop_size", "image_mean", "image_std", "resample", "do_resize",
    "do_center_crop", "do_rescale", "rescale_factor", "do_normalize",
)  # fmt: skip


class SentenceTransformersImageTextEmbedder(Embedder):
    """A CLIP-like model from the hub (id) or a local folder, text and/or image input."""

    name: ClassVar[str] = "st-clip"
    batch_size = 16

    def __init__(
        self,
        model: str,
        *,
        model_dir: Path,
        threads: int = 1,
        allow_download: bool = False,
        trust_remote_code: bool = False,
    ) -> None:
        super().__init__()
        self.model = model
        self.model_dir = model_dir
        self.threads = threads
        self.allow_download = allow_download
        self.trust_remote_code = trust_remote_code
        self.space = f"clip:{short_id(model)}"
        self._folder: Path | None = None
        self._version: str | None = None
        self._st: Any = None
        self._onnx: OnnxTextTower | None = None
        self._dim: int | None = None
        self._accepts: frozenset[InputModality] | None = None

    # -- what the model is, read from its files without loading torch ----------------

    @property
    def folder(self) -> Path:
        if self._folder is None:
            self._folder = hub.resolve_model(
                self.model,
                cache_dir=hub_cache_dir(self.model_dir),
                allow_download=self.allow_download,
            )
        return self._folder

    @property
    def version(self) -> str:
        """The hub commit, or a content hash of a local folder (memoised per file)."""
        if self._version is None:
            self._version = hub.snapshot_revision(self.folder) or hub.folder_digest(
                self.folder, memo=self.model_dir / "content-hashes.json"
            )
        return self._version

    # The base class declares plain attributes; here they are read lazily from files.
    @property
    def dim(self) -> int:  # type: ignore[override]
        if self._dim is None:
            meta = self._export_meta()
            if meta is not None:
                self._dim = int(meta["dim"])
            else:
                self.ensure_loaded()
        assert self._dim is not None
        return self._dim

    @property
    def accepts(self) -> frozenset[InputModality]:  # type: ignore[override]
        if self._accepts is None:
            self._accepts = peek_modalities(self.folder)
        return self._accepts

    def fingerprint(self) -> dict[str, Any]:
        folder = self.folder
        repo = hub.snapshot_repo_id(folder)  # a hub id and its snapshot path match
        return {
            "embedder": self.name,
            "space": self.space,
            "model": repo or str(folder),
            "revision" if repo else "content_sha256": self.version,
            "dim": self.dim,
            "accepts": sorted(self.accepts),
            "image_prep": image_preprocessing(folder),
        }

    # -- torch path (indexing) ----------------------------------------------------------

    def _load(self) -> None:
        import torch

        torch.set_num_threads(self.threads)
        with _quiet_transformers():
            from sentence_transformers import SentenceTransformer

            try:
                st = SentenceTransformer(
                    str(self.folder),
                    device="cpu",
                    local_files_only=True,
                    trust_remote_code=self.trust_remote_code,
                )
            except Exception as exc:  # torn/odd checkpoints raise anything; report one line
                raise ModelUnavailableError(
                    f"cannot load model '{self.model}' from {self.folder}: {first_line(exc)}",
                    hint="pass --trust-remote-code if it needs its own code"
                    if "trust_remote_code" in str(exc)
                    else None,
                ) from exc
        dim = st.get_embedding_dimension()
        if dim is None:
            raise ModelUnavailableError(f"model '{self.model}' has no fixed embedding size")
        self._st = st.eval()
        self._dim = int(dim)
        self._accepts = frozenset(m for m in ("text", "image") if st.supports(m))

    def embed(self, items: Sequence[MediaItem]) -> list[Embedded]:
        self.ensure_loaded()
        out: list[Embedded | None] = [None] * len(items)
        for modality in ("text", "image"):
            idx = [i for i, it in enumerate(items) if it.modality == modality]
            if not idx:
                continue
            self._check_accepts(modality)
            vectors = self._st.encode(
                [items[i].payload for i in idx],
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            for i, vec in zip(idx, l2_normalise(vectors), strict=True):
                out[i] = Embedded(vector=vec)
        if any(e is None for e in out):
            bad = sorted({it.modality for it in items} - {"text", "image"})
            raise UsageError(f"{self.name} ({self.model}) cannot embed {', '.join(bad)} input")
        return [e for e in out if e is not None]

    def _check_accepts(self, modality: str) -> None:
        if modality not in self.accepts:
            raise UsageError(f"model '{self.model}' does not accept {modality} input")

    # -- ONNX path (queries) ----------------------------------------------------------

    def onnx_dir(self) -> Path:
        name = short_id(self.model, aligned=False)
        return self.model_dir / "onnx" / f"st-clip-{name}-{self.version[:16]}"

    def _export_meta(self) -> dict[str, Any] | None:
        try:
            meta: dict[str, Any] = json.loads((self.onnx_dir() / "meta.json").read_text())
        except (OSError, ValueError):
            return None
        return meta if meta.get("format") == ONNX_FORMAT else None

    def prepare_query(self) -> None:
        """Export the text tower once, so text queries never import torch."""
        if "text" in self.accepts and self._export_meta() is None:
            try:
                self.export_query_onnx()
            except Exception as exc:  # queries still work through torch
                log.warning("could not export the text tower to ONNX (%s); queries use torch", exc)

    def export_query_onnx(self) -> Path:
        """Export the text tower next to the model cache; later queries skip torch."""
        self._check_accepts("text")
        return export_text_tower_onnx(
            self.folder, self.onnx_dir(), trust_remote_code=self.trust_remote_code
        )

    def embed_query_text(self, text: str) -> np.ndarray:
        self._check_accepts("text")
        if self._onnx is None and self._st is None and self._export_meta() is not None:
            try:
                self._onnx = OnnxTextTower(self.onnx_dir(), threads=self.threads)
            except Exception as exc:  # a damaged export must not break search
                log.warning("ignoring ONNX export %s (%s); using torch", self.onnx_dir(), exc)
        if self._onnx is not None:
            return self._onnx.encode(text)
        return super().embed_query_text(text)


def hub_cache_dir(model_dir: Path) -> Path:
    """Where hub downloads go: an HF-layout cache under our model dir, copyable as-is."""
    return model_dir / "hub"


def short_id(model: str, *, aligned: bool = True) -> str:
    """``clip-ViT-B-32`` for a hub id or an HF-cache snapshot, else the folder name.
    With ``aligned``, a text-only tower maps to the image model whose space it shares."""
    rid: str | None
    if hub.is_local(model):
        folder = Path(model).expanduser().resolve()
        rid = hub.snapshot_repo_id(folder)
        if rid is None:
            return folder.name
    else:
        rid = hub.repo_id(model)
    name = rid.split("/")[-1]
    return ALIGNED_TO.get(rid, name) if aligned else name


def _module_dirs(folder: Path) -> list[Path]:
    """The folder and, for sentence-transformers checkpoints, its module subfolders."""
    dirs = [folder]
    try:
        modules = json.loads((folder / "modules.json").read_text())
    except (OSError, ValueError):
        return dirs
    return dirs + [folder / m["path"] for m in modules if m.get("path")]


def peek_modalities(folder: Path) -> frozenset[InputModality]:
    """Image input needs a vision tower: a ``vision_config`` in a (module's) config.json."""
    for d in _module_dirs(folder):
        try:
            config = json.loads((d / "config.json").read_text())
        except (OSError, ValueError):
            continue
        if "vision_config" in config:
            return frozenset({"text", "image"})
    return frozenset({"text"})


def image_preprocessing(folder: Path) -> dict[str, Any]:
    """Image size, mean/std etc. from the (module's) processor config; {} if text-only."""
    for d in _module_dirs(folder):
        for name in ("preprocessor_config.json", "processor_config.json"):
            try:
                config = json.loads((d / name).read_text())
            except (OSError, ValueError):
                continue
            config = config.get("image_processor", config)
            if "image_mean" in config:
                return {k: config[k] for k in _PREP_KEYS if k in config}
    return {}


# -- ONNX export of the text tower and its runtime -------------------------------------


def export_text_tower_onnx(
    model_folder: Path, dest: Path, *, trust_remote_code: bool = False, threads: int = 1
) -> Path:
    """Export text -> unit vector to ``dest/text.onnx`` with the tokenizer beside it.

    The graph wraps sentence-transformers' own forward pass (so pooling and Dense layers
    come along) plus L2 normalisation. Before ``meta.json`` is written, ONNX vectors for
    a few awkward texts, tokenised the way queries will be, must match torch's.
    """
    import torch

    st = _load_for_export(model_folder, trust_remote_code=trust_remote_code, threads=threads)
    tokenizer = _query_tokenizer(st)
    sample = st.preprocess(_CHECK_TEXTS[:2])
    names = [k for k, v in sample.items() if isinstance(v, torch.Tensor)]

    def build(staging: Path) -> dict[str, Any]:
        _export_graph(st, names, sample, staging / "text.onnx")
        tokenizer.save(str(staging / "tokenizer.json"))
        reference = st.encode(_CHECK_TEXTS, normalize_embeddings=True, convert_to_numpy=True)
        tower = OnnxTextTower(staging, threads=threads, input_names=names)
        cosine = min_cosine(np.stack([tower.encode(t) for t in _CHECK_TEXTS]), reference)
        if cosine < MIN_EXPORT_COSINE:
            raise ModelUnavailableError(
                f"ONNX export of {model_folder} does not match torch (cosine {cosine:.6f})",
                hint=_TORCH_FALLBACK,
            )
        return {"format": ONNX_FORMAT, "source": str(model_folder),
                "dim": int(reference.shape[1]), "inputs": names, "min_cosine": cosine}  # fmt: skip

    return atomic_export(dest, build, hint=_TORCH_FALLBACK)


def _load_for_export(model_folder: Path, *, trust_remote_code: bool, threads: int) -> Any:
    """The sentence-transformers model, once the exporter's own dependency is known to be
    there (better than failing after a model load of seconds)."""
    import torch

    try:
        import onnxscript  # noqa: F401  (the dynamo exporter needs it)
    except ImportError as exc:
        raise ModelUnavailableError(
            "exporting to ONNX needs the onnx and onnxscript packages",
            hint="pip install 'mmsearch-cli[export]'",
        ) from exc
    torch.set_num_threads(threads)
    with _quiet_transformers():
        from sentence_transformers import SentenceTransformer

        st = SentenceTransformer(
            str(model_folder),
            device="cpu",
            local_files_only=True,
            trust_remote_code=trust_remote_code,
        ).eval()
    if not st.supports("text") or st.tokenizer is None:
        raise UsageError(f"model at {model_folder} has no text tower to export")
    return st


def _export_graph(st: Any, names: list[str], sample: dict[str, Any], path: Path) -> None:
    """sentence-transformers' own forward pass (pooling and Dense layers come along) plus
    L2 normalisation, exported with one dynamic batch and sequence axis per input."""
    import torch

    class TextTower(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.st = st

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            features: dict[str, Any] = dict(zip(names, inputs, strict=True))
            features["modality"] = "text"
            out = self.st(features)["sentence_embedding"]
            return torch.nn.functional.normalize(out, p=2.0, dim=-1)

    batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq")
    try:
        export_module(
            TextTower().eval(), tuple(sample[n] for n in names), path, input_names=names,
            output_names=["query_vector"],  # "embedding" clashes with a node name
            dynamic_shapes=(tuple({0: batch, 1: seq} for _ in names),),  # one *inputs arg
            external_data=True,  # weights beside the graph: no 2 GB protobuf limit
        )  # fmt: skip
    except Exception as exc:  # the exporter raises many types, with pages of detail
        raise ModelUnavailableError(
            f"could not export the text tower to ONNX: {first_line(exc)}",
            hint=_TORCH_FALLBACK,
        ) from exc


def _query_tokenizer(st: Any) -> Any:
    """The model's fast tokenizer, set up to reproduce sentence-transformers' inputs for
    one text: same truncation, no padding unless the model pads to a fixed length."""
    from tokenizers import Tokenizer

    hf_tok = st.tokenizer
    if getattr(hf_tok, "backend_tokenizer", None) is None:
        raise ModelUnavailableError(
            "the model has no fast (tokenizers) tokenizer to run queries without torch",
            hint=_TORCH_FALLBACK,
        )
    tok = Tokenizer.from_str(hf_tok.backend_tokenizer.to_str())
    tok.no_padding()
    max_len = st.max_seq_length or hf_tok.model_max_length
    tok.enable_truncation(max_length=int(max_len))
    padded = st.preprocess(["x"])["input_ids"].shape[1]
    natural = len(tok.encode("x").ids)
    if padded > natural:  # e.g. SigLIP, trained with padding="max_length"
        tok.enable_padding(length=int(padded), pad_id=int(hf_tok.pad_token_id or 0))
    return tok


class OnnxTextTower:
    """Text -> unit vector with onnxruntime and ``tokenizers`` only (no torch import)."""

    def __init__(self, folder: Path, *, threads: int = 1, input_names: list[str] | None = None):
        from tokenizers import Tokenizer

        if input_names is None:
            input_names = json.loads((folder / "meta.json").read_text())["inputs"]
        self.input_names = input_names
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.session = open_session(folder / "text.onnx", threads=threads)

    def encode(self, text: str) -> np.ndarray:
        enc = self.tokenizer.encode(text)
        fields = {
            "input_ids": enc.ids,
            "attention_mask": enc.attention_mask,
            "token_type_ids": enc.type_ids,
        }
        feeds = {n: np.asarray([fields[n]], dtype=np.int64) for n in self.input_names}
        vector = self.session.run(None, feeds)[0][0]
        return l2_normalise(vector)


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Hide load-time chatter (weight-loading bars, the torchvision fallback notice)."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    st_logger = logging.getLogger("sentence_transformers")
    st_level = st_logger.level
    st_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
        st_logger.setLevel(st_level)
