"""The MTCNN face detector's three networks (P-Net, R-Net, O-Net), exported once to ONNX.

The weights are facenet-pytorch's (MIT), taken from its pinned wheel by ``models.wheels``
(asset ``mtcnn-facenet``); its code is never installed or imported. The modules here are
our own copies of its definitions, with the same parameter names so that its state dicts
load strictly. The export directory holds ``pnet.onnx``, ``rnet.onnx``, ``onet.onnx`` and
``meta.json``; the cascade around them runs in ``decoders.faces`` on onnxruntime alone.

All three nets take float32 N x 3 x H x W, RGB, ``(x - 127.5) * 0.0078125``, as
facenet-pytorch feeds them. P-Net is fully convolutional (any H, W >= 12); R-Net takes
24 x 24 crops and O-Net 48 x 48. Outputs: box regression (N x 4 [x H' x W'] for P-Net)
and face probability (softmax, N x 2 ...); O-Net also gives 10 landmark coordinates.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from mmsearch_cli.models import wheels
from mmsearch_cli.models.export import (
    _import_torch,
    atomic_export,
    check_cosine,
    export_module,
)
from mmsearch_cli.models.files import sha256_file
from mmsearch_cli.models.sessions import open_session

log = logging.getLogger(__name__)

ASSET = "mtcnn-facenet"
MTCNN_DIR = "mtcnn-onnx"
NETS = ("pnet", "rnet", "onet")
# Outputs in the order each net returns them (facenet-pytorch's order).
OUTPUTS = {
    "pnet": ["regression", "probs"],
    "rnet": ["regression", "probs"],
    "onet": ["regression", "landmarks", "probs"],
}
DENORMAL = 1e-30  # weights this small only slow onnxruntime down (denormal arithmetic)


def mtcnn_dir(model_dir: Path) -> Path:
    return model_dir / MTCNN_DIR


def is_exported(export_dir: Path) -> bool:
    return (
        all((export_dir / f"{n}.onnx").is_file() for n in NETS)
        and (export_dir / "meta.json").is_file()
    )


def build_nets(weights_dir: Path) -> dict[str, Any]:
    """The three torch modules in eval mode with facenet-pytorch's weights loaded strictly,
    denormal weights flushed to zero."""
    torch = _import_torch()
    nets = _modules()
    for name, net in nets.items():
        state = torch.load(weights_dir / f"{name}.pt", map_location="cpu", weights_only=True)
        net.load_state_dict(state, strict=True)
        net.eval()
        with torch.no_grad():
            for p in net.parameters():
                p[p.abs() < DENORMAL] = 0.0
    return nets


def export_mtcnn(model_dir: Path) -> Path:
    """Export P-, R- and O-Net to ``<model_dir>/mtcnn-onnx`` and return that directory.

    Each export is checked against torch on random inputs of several shapes (the cosine of
    every output); the weights come from ``wheels.require(model_dir, "mtcnn-facenet")``.
    """
    weights_dir = wheels.require(model_dir, ASSET)
    dest_dir = mtcnn_dir(model_dir)
    log.warning("exporting MTCNN to ONNX in %s (once; imports torch)", dest_dir)

    def build(tmp: Path) -> dict[str, Any]:
        torch = _import_torch()
        nets = build_nets(weights_dir)
        gen = torch.Generator().manual_seed(0)
        batch = torch.export.Dim("batch")
        cosines: dict[str, float] = {}
        for name, net in nets.items():
            if name == "pnet":
                # Sizes whose pooling rounds differently (ceil_mode): odd and even.
                sample = torch.rand(2, 3, 37, 50, generator=gen) * 2 - 1
                dim_h, dim_w = torch.export.Dim("h", min=12), torch.export.Dim("w", min=12)
                shapes = ({0: batch, 2: dim_h, 3: dim_w},)
                axes = {"pixels": {0: "batch", 2: "height", 3: "width"}}
                checks = [sample, torch.rand(1, 3, 12, 12, generator=gen) * 2 - 1,
                          torch.rand(1, 3, 101, 64, generator=gen) * 2 - 1]  # fmt: skip
            else:
                side = 24 if name == "rnet" else 48
                sample = torch.rand(3, 3, side, side, generator=gen) * 2 - 1
                shapes = ({0: batch},)
                axes = {"pixels": {0: "batch"}}
                checks = [sample, torch.rand(7, 3, side, side, generator=gen) * 2 - 1]
            path = tmp / f"{name}.onnx"
            export_module(
                net, (sample,), path, input_names=["pixels"], output_names=OUTPUTS[name],
                dynamic_shapes=shapes, dynamic_axes=axes,
            )  # fmt: skip
            session = open_session(path)
            worst = 1.0
            for x in checks:
                with torch.no_grad():
                    want = [t.numpy() for t in net(x)]
                got = session.run(None, {"pixels": x.numpy()})
                for g, w, out in zip(got, want, OUTPUTS[name], strict=True):
                    worst = min(worst, check_cosine(f"MTCNN {name} {out}", np.asarray(g), w))
            cosines[name] = round(worst, 7)
        return {
            "model": "MTCNN (P-Net, R-Net, O-Net)",
            "source_package": f"facenet-pytorch=={wheels.ASSETS[ASSET].version}",
            "weights_sha256": {n: sha256_file(weights_dir / f"{n}.pt") for n in NETS},
            "input": "RGB, N x 3 x H x W, (x - 127.5) * 0.0078125",
            "outputs": OUTPUTS,
            "min_cosine": cosines,
        }

    return atomic_export(dest_dir, build, hint="delete that directory and try again")


def _modules() -> dict[str, Any]:
    """facenet-pytorch's PNet, RNet and ONet (``models/mtcnn.py``), layer for layer."""
    import torch
    from torch import nn

    class PNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
            self.prelu1 = nn.PReLU(10)
            self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
            self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
            self.prelu2 = nn.PReLU(16)
            self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
            self.prelu3 = nn.PReLU(32)
            self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)
            self.softmax4_1 = nn.Softmax(dim=1)
            self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            x = self.prelu1(self.conv1(x))
            x = self.pool1(x)
            x = self.prelu2(self.conv2(x))
            x = self.prelu3(self.conv3(x))
            return self.conv4_2(x), self.softmax4_1(self.conv4_1(x))

    class RNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 28, kernel_size=3)
            self.prelu1 = nn.PReLU(28)
            self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
            self.conv2 = nn.Conv2d(28, 48, kernel_size=3)
            self.prelu2 = nn.PReLU(48)
            self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
            self.conv3 = nn.Conv2d(48, 64, kernel_size=2)
            self.prelu3 = nn.PReLU(64)
            self.dense4 = nn.Linear(576, 128)
            self.prelu4 = nn.PReLU(128)
            self.dense5_1 = nn.Linear(128, 2)
            self.softmax5_1 = nn.Softmax(dim=1)
            self.dense5_2 = nn.Linear(128, 4)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            x = self.pool1(self.prelu1(self.conv1(x)))
            x = self.pool2(self.prelu2(self.conv2(x)))
            x = self.prelu3(self.conv3(x))
            # The weights came from a TF/Caffe model that flattened W before H.
            x = x.permute(0, 3, 2, 1).contiguous()
            x = self.prelu4(self.dense4(x.view(x.shape[0], -1)))
            return self.dense5_2(x), self.softmax5_1(self.dense5_1(x))

    class ONet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 32, kernel_size=3)
            self.prelu1 = nn.PReLU(32)
            self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
            self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
            self.prelu2 = nn.PReLU(64)
            self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
            self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
            self.prelu3 = nn.PReLU(64)
            self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
            self.conv4 = nn.Conv2d(64, 128, kernel_size=2)
            self.prelu4 = nn.PReLU(128)
            self.dense5 = nn.Linear(1152, 256)
            self.prelu5 = nn.PReLU(256)
            self.dense6_1 = nn.Linear(256, 2)
            self.softmax6_1 = nn.Softmax(dim=1)
            self.dense6_2 = nn.Linear(256, 4)
            self.dense6_3 = nn.Linear(256, 10)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            x = self.pool1(self.prelu1(self.conv1(x)))
            x = self.pool2(self.prelu2(self.conv2(x)))
            x = self.pool3(self.prelu3(self.conv3(x)))
            x = self.prelu4(self.conv4(x))
            x = x.permute(0, 3, 2, 1).contiguous()  # W before H, as in RNet
            x = self.prelu5(self.dense5(x.view(x.shape[0], -1)))
            return self.dense6_2(x), self.dense6_3(x), self.softmax6_1(self.dense6_1(x))

    return {"pnet": PNet(), "rnet": RNet(), "onet": ONet()}
