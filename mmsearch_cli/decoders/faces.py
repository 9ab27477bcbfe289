"""How many faces a photo shows: the MTCNN cascade on onnxruntime, without torch.

The three networks come from ``models.mtcnn`` (facenet-pytorch's weights, exported once
to ONNX). The cascade is facenet-pytorch's ``detect_face`` for one image, step for step:
an image pyramid scanned by P-Net, then R-Net on 24 px crops and O-Net on 48 px crops,
each with its box regression, NMS and "rerec" squaring. Three changes bound the work: the
picture is first shrunk to ``MAX_SIDE``, the pyramid starts at the smallest face worth
counting instead of 20 px, and each stage keeps at most a fixed number of candidates.

``count`` counts the faces that matter: those O-Net is sure of (probability >= 0.98) and big
enough to be a subject of the picture (box height >= 4 % of the short side, ~1/25 of the
frame: the faces of a group photo or a street portrait, not a far crowd or an orchestra
seen from the back of the hall). On the corpus photos, real faces scored 0.996-1.0 and
the two face-like patches that passed O-Net (a scale's keypad, a drum's lacing) 0.955-0.958.
Scanning only down to 4 % is also what bounds P-Net's work, the bulk of the time.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from mmsearch_cli.models import mtcnn
from mmsearch_cli.models.sessions import open_session

THRESHOLDS = (0.6, 0.7, 0.7)  # P-, R-, O-Net face probability (facenet-pytorch's defaults)
FACTOR = 0.709  # pyramid step: each level is 0.709 x the last (half the area)
MAX_SIDE = 640  # the cascade's working size; a 20 px face at 640 px is still found
MIN_PROBABILITY = 0.98  # count(): O-Net is sure
MIN_HEIGHT = 0.04  # count(): box height as a fraction of the picture's short side
MAX_PER_SCALE = 2000  # P-Net candidates per pyramid level into NMS (texture can give many)
MAX_RNET = 300  # proposals into R-Net, best P-Net score first (a face leaves ~10-20)
MAX_ONET = 100  # proposals into O-Net (a face leaves ~10 after R-Net NMS 0.7)
_NMS_UNION, _NMS_MIN = "union", "min"


@dataclass(frozen=True)
class Face:
    """One face: its box in the picture's pixels and O-Net's face probability."""

    x0: float
    y0: float
    x1: float
    y1: float
    probability: float

    @property
    def box(self) -> tuple[float, float, float, float]:
        return (self.x0, self.y0, self.x1, self.y1)

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0


class FaceDetector:
    """MTCNN on onnxruntime: ``detect`` lists faces, ``count`` counts the ones that matter."""

    def __init__(self, export_dir: Path, *, threads: int = 1) -> None:
        hint = "delete that directory and run `mms models prepare`"
        self.export_dir = export_dir
        self._sessions: dict[str, Any] = {
            name: open_session(export_dir / f"{name}.onnx", threads=threads, hint=hint)
            for name in mtcnn.NETS
        }

    def detect(self, img: Image.Image, *, min_height: float = MIN_HEIGHT) -> list[Face]:
        """Faces from about ``min_height`` x the short side up, most probable first (the
        pyramid starts there; a few smaller ones may be listed). Boxes are in ``img``'s
        pixels, clipped to it."""
        rgb = img.convert("RGB") if img.mode != "RGB" else img
        width, height = rgb.size
        if min(width, height) < 12:
            return []
        shrink = min(1.0, MAX_SIDE / max(width, height))
        if shrink < 1.0:
            size = (max(1, round(width * shrink)), max(1, round(height * shrink)))
            rgb = rgb.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
        min_face = max(12.0, min_height * min(rgb.size))
        boxes = self._cascade(_integral(rgb), min_face)
        if not len(boxes):
            return []
        coords = boxes[:, :4] / shrink
        coords[:, 0::2] = coords[:, 0::2].clip(0, width)
        coords[:, 1::2] = coords[:, 1::2].clip(0, height)
        faces = [
            Face(float(a), float(b), float(c), float(d), float(p))
            for (a, b, c, d), p in zip(coords, boxes[:, 4], strict=True)
        ]
        return sorted(faces, key=lambda f: -f.probability)

    def count(
        self,
        img: Image.Image,
        *,
        min_probability: float = MIN_PROBABILITY,
        min_height: float = MIN_HEIGHT,
    ) -> int:
        """Faces with probability >= ``min_probability`` and height >= ``min_height`` x the
        picture's short side."""
        least = min_height * min(img.size)
        found = self.detect(img, min_height=min_height)
        return sum(1 for f in found if f.probability >= min_probability and f.height >= least)

    # The three stages, as in facenet-pytorch's detect_face (one image, numpy instead of
    # torch). Box rows are x1, y1, x2, y2, score[, regression...] in working-image pixels.

    def _cascade(self, table: np.ndarray, min_face: float) -> np.ndarray:
        boxes = self._propose(table, min_face)
        if len(boxes):
            boxes = self._refine(table, boxes)
        if len(boxes):
            boxes = self._output(table, boxes)
        return boxes

    def _propose(self, table: np.ndarray, min_face: float) -> np.ndarray:
        """Stage 1: P-Net over the pyramid; per-level NMS 0.5, then NMS 0.7 across levels."""
        height, width = table.shape[0] - 1, table.shape[1] - 1
        m = 12.0 / min_face
        side, scale, picked = min(width, height) * m, m, []
        while side >= 12:
            size = (int(width * scale + 1), int(height * scale + 1))
            level = _area_resize(table, size[1], size[0])
            reg, probs = self._sessions["pnet"].run(None, {"pixels": level[None]})
            found = _grid_boxes(reg[0], probs[0, 1], scale, THRESHOLDS[0])
            if len(found) > MAX_PER_SCALE:
                found = found[np.argsort(-found[:, 4])[:MAX_PER_SCALE]]
            picked.append(found[_nms(found, 0.5, _NMS_UNION)])
            scale *= FACTOR
            side *= FACTOR
        if not picked:
            return np.zeros((0, 5), np.float32)
        boxes = np.concatenate(picked)
        boxes = boxes[_nms(boxes, 0.7, _NMS_UNION)][:MAX_RNET]  # _nms returns best first
        regw, regh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        moved = np.stack(
            [
                boxes[:, 0] + boxes[:, 5] * regw,
                boxes[:, 1] + boxes[:, 6] * regh,
                boxes[:, 2] + boxes[:, 7] * regw,
                boxes[:, 3] + boxes[:, 8] * regh,
                boxes[:, 4],
            ],
            axis=1,
        )
        return _rerec(moved)

    def _refine(self, table: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Stage 2: R-Net on 24 px crops; NMS 0.7, regression, squaring."""
        boxes, crops = _crops(table, boxes, 24)
        if not len(boxes):
            return boxes
        reg, probs = self._sessions["rnet"].run(None, {"pixels": crops})
        keep = probs[:, 1] > THRESHOLDS[1]
        boxes = np.concatenate([boxes[keep, :4], probs[keep, 1:2]], axis=1)
        reg = reg[keep]
        pick = _nms(boxes, 0.7, _NMS_UNION)[:MAX_ONET]
        return _rerec(_bbreg(boxes[pick], reg[pick]))

    def _output(self, table: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Stage 3: O-Net on 48 px crops; regression, then NMS 0.7 on intersection/min area."""
        boxes, crops = _crops(table, boxes, 48)
        if not len(boxes):
            return boxes
        reg, _landmarks, probs = self._sessions["onet"].run(None, {"pixels": crops})
        keep = probs[:, 1] > THRESHOLDS[2]
        boxes = np.concatenate([boxes[keep, :4], probs[keep, 1:2]], axis=1)
        boxes = _bbreg(boxes, reg[keep])
        return boxes[_nms(boxes, 0.7, _NMS_MIN)]


@functools.cache
def shared_detector(model_dir: Path) -> FaceDetector:
    """One detector per process; exports MTCNN to ONNX on first use (imports torch once)."""
    export_dir = mtcnn.mtcnn_dir(model_dir)
    if not mtcnn.is_exported(export_dir):
        mtcnn.export_mtcnn(model_dir)
    return FaceDetector(export_dir)


def _integral(rgb: Image.Image) -> np.ndarray:
    """The summed-area table of the picture, (H + 1) x (W + 1) x 3 int32 (exact; a 640 px
    picture sums to at most 640 * 640 * 255): every pyramid level and every crop is an
    area average read from it with four look-ups per pixel."""
    pixels = np.asarray(rgb, dtype=np.int32)
    table = np.zeros((pixels.shape[0] + 1, pixels.shape[1] + 1, 3), np.int32)
    np.cumsum(pixels, axis=0, out=table[1:, 1:])
    np.cumsum(table[1:, 1:], axis=1, out=table[1:, 1:])
    return table


def _bins(start: np.ndarray, length: np.ndarray, out: int) -> tuple[np.ndarray, np.ndarray]:
    """torch's adaptive-pooling bins of ``length`` cells from ``start`` into ``out``:
    output i averages [floor(i * n / m), ceil((i + 1) * n / m)). Both ... x out."""
    i = np.arange(out)
    n = length[..., None]
    return start[..., None] + i * n // out, start[..., None] - (-(i + 1) * n // out)


def _normalise(sums: np.ndarray, area: np.ndarray) -> np.ndarray:
    """Channel-last pixel sums over ``area`` pixels -> channel-first network input,
    ``(mean - 127.5) * 0.0078125`` as facenet-pytorch feeds MTCNN."""
    x = sums.astype(np.float32) * (0.0078125 / area).astype(np.float32)[..., None]
    x -= np.float32(127.5 * 0.0078125)
    return np.ascontiguousarray(np.moveaxis(x, -1, -3))


def _area_resize(table: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """The whole picture resized as torch's ``interpolate(mode="area")``, normalised:
    3 x out_h x out_w float32."""
    height, width = table.shape[0] - 1, table.shape[1] - 1
    r0, r1 = _bins(np.array(0), np.array(height), out_h)
    c0, c1 = _bins(np.array(0), np.array(width), out_w)
    rows = table[r1] - table[r0]  # whole rows first: contiguous copies
    sums = rows[:, c1] - rows[:, c0]
    return _normalise(sums, (r1 - r0)[:, None] * (c1 - c0)[None, :])


def _grid_boxes(reg: np.ndarray, prob: np.ndarray, scale: float, threshold: float) -> np.ndarray:
    """P-Net's output map -> candidate boxes (generateBoundingBox: stride 2, 12 px cells)."""
    ys, xs = np.nonzero(prob >= threshold)
    cells = np.stack([xs, ys], axis=1).astype(np.float32)
    q1 = np.floor((2 * cells + 1) / scale)
    q2 = np.floor((2 * cells + 12) / scale)
    return np.concatenate(
        [q1, q2, prob[ys, xs][:, None], reg[:, ys, xs].T], axis=1, dtype=np.float32
    )


def _nms(boxes: np.ndarray, threshold: float, mode: str) -> np.ndarray:
    """Greedy NMS, best score first: the kept indices in that order. ``union`` is IoU as in
    torchvision's ``nms``; ``min`` is intersection over the smaller box with facenet's +1
    pixel areas (its ``nms_numpy``)."""
    if not len(boxes):
        return np.zeros(0, np.int64)
    one = 1.0 if mode == _NMS_MIN else 0.0
    x1, y1, x2, y2 = (boxes[:, i].astype(np.float64) for i in range(4))
    area = (x2 - x1 + one) * (y2 - y1 + one)
    order = np.argsort(-boxes[:, 4], kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + one)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + one)
        inter = w * h
        if mode == _NMS_MIN:
            overlap = inter / np.minimum(area[i], area[rest])
        else:
            overlap = inter / (area[i] + area[rest] - inter)
        order = rest[overlap <= threshold]
    return np.asarray(keep, np.int64)


def _rerec(boxes: np.ndarray) -> np.ndarray:
    """Grow each box to a square on its longer side, about the same centre."""
    out = boxes.copy()
    h = boxes[:, 3] - boxes[:, 1]
    w = boxes[:, 2] - boxes[:, 0]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    out[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def _bbreg(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """Apply R-/O-Net's regression, in units of the box's (+1 pixel) width and height."""
    out = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    out[:, 0] = boxes[:, 0] + reg[:, 0] * w
    out[:, 1] = boxes[:, 1] + reg[:, 1] * h
    out[:, 2] = boxes[:, 2] + reg[:, 2] * w
    out[:, 3] = boxes[:, 3] + reg[:, 3] * h
    return out


def _crops(table: np.ndarray, boxes: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Each box's part of the picture area-resized to side x side, as network input
    (n x 3 x side x side), and the boxes that gave a crop. As facenet's ``pad``: the box is
    truncated to whole pixels and clipped to the picture (not padded), so a box across the
    edge is squeezed."""
    height, width = table.shape[0] - 1, table.shape[1] - 1
    corners = np.trunc(boxes[:, :4]).astype(np.int64)
    x = np.maximum(corners[:, 0], 1)
    y = np.maximum(corners[:, 1], 1)
    ex = np.minimum(corners[:, 2], width)
    ey = np.minimum(corners[:, 3], height)
    ok = (ey > y - 1) & (ex > x - 1)  # facenet skips empty crops too
    x, y, ex, ey = x[ok], y[ok], ex[ok], ey[ok]
    r0, r1 = _bins(y - 1, ey - y + 1, side)  # n x side each
    c0, c1 = _bins(x - 1, ex - x + 1, side)
    r0, r1 = r0[:, :, None] * (width + 1), r1[:, :, None] * (width + 1)
    c0, c1 = c0[:, None, :], c1[:, None, :]
    flat = table.reshape(-1, 3)  # one flat look-up per corner is 3x faster than 2-D indexing
    sums = flat[r1 + c1] - flat[r0 + c1] - flat[r1 + c0] + flat[r0 + c0]
    area = (r1 - r0) // (width + 1) * (c1 - c0)
    return boxes[ok], _normalise(sums, area)
