"""Camera RAW files (.cr2 .cr3 .nef .nrw .arw .dng .raf .orf .rw2 .pef .srw) via LibRaw.

Nearly every camera stores a full-size or large JPEG preview inside the RAW: decoding it
is a JPEG decode (DCT-scaled, ~10-50 ms), where demosaicing the sensor data costs a
second. So the preview is used when it is large enough for the models, and a half-size
demosaic (no interpolation: 2x2 blocks to one pixel) otherwise; if that fails, a small
preview is still better than no picture. Both are bounded by the
sensor size LibRaw reads from the header, before any pixel is decoded.

The preview keeps its EXIF block in ``img.info["exif"]`` (Pillow's JPEG reader puts it
there): ``decoders/photo.py`` reads the date and camera from it when the RAW container
itself is not something Pillow parses (CR3, RAF).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from PIL import Image

from mmsearch_cli.errors import MediaError

MIN_PREVIEW = 320  # a preview smaller than this (a 160x120 thumbnail) is too coarse: demosaic
# LibRaw's flip code to the transpose that puts the picture upright.
_FLIPS = {3: Image.Transpose.ROTATE_180, 5: Image.Transpose.ROTATE_90,
          6: Image.Transpose.ROTATE_270}  # fmt: skip


log = logging.getLogger(__name__)
_STDERR = threading.Lock()


@contextlib.contextmanager
def _quiet_libraw() -> Iterator[None]:
    """LibRaw prints data errors ("data corrupted at 1378") straight to C's stderr, in the
    middle of our output. Send fd 2 to a file while it works and log what it said. Another
    thread's stderr writes in that window (a progress redraw) land there too: harmless."""
    with _STDERR, tempfile.TemporaryFile() as sink:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError):  # no fd 2 (embedded use): nothing to guard
            yield
            return
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            said = sink.read(2000).decode("utf-8", "replace").strip()
            if said:
                log.debug("LibRaw: %s", " ".join(said.split()))


def _reason(exc: BaseException) -> str:
    # LibRaw's errors carry its message as bytes: b'Input/output error' reads badly.
    args = [a.decode("utf-8", "replace") if isinstance(a, bytes) else str(a) for a in exc.args]
    text = " ".join(" ".join(args).split()) or "unknown error"
    return text[:200]


def load_raw(path: Path, *, max_pixels: int, work_size: int) -> Image.Image:
    """A RAW file to RGB at most ``work_size`` on its long side: its preview, or a demosaic."""
    with _quiet_libraw():
        return _load(path, max_pixels=max_pixels, work_size=work_size)


def _load(path: Path, *, max_pixels: int, work_size: int) -> Image.Image:
    import rawpy

    from mmsearch_cli.decoders.image import finish

    try:
        raw = rawpy.imread(str(path))
    except rawpy.LibRawFileUnsupportedError:
        raise MediaError("not a readable RAW file (unknown or damaged format)") from None
    except (rawpy.LibRawError, OSError, ValueError, MemoryError) as exc:
        raise MediaError(f"cannot read RAW file: {_reason(exc)}") from None
    with raw:
        try:
            sizes = raw.sizes
            width, height = int(sizes.width), int(sizes.height)
            flip = int(sizes.flip)
        except (rawpy.LibRawError, ValueError, AttributeError) as exc:
            raise MediaError(f"cannot read RAW file: {_reason(exc)}") from None
        if width * height > max_pixels:
            raise MediaError(
                f"RAW image is {width}x{height} pixels, over the limit of {max_pixels}"
            )
        preview = _preview(raw, max_pixels=max_pixels, work_size=work_size, flip=flip)
        if preview is not None and max(preview.size) >= min(MIN_PREVIEW, work_size):
            return preview
        try:
            if width <= 0 or height <= 0:
                raise MediaError("RAW file has no image data")
            try:
                rgb = raw.postprocess(half_size=True, use_camera_wb=True, output_bps=8)
            except (rawpy.LibRawError, ValueError, MemoryError, RuntimeError) as exc:
                raise MediaError(f"cannot decode RAW file: {_reason(exc)}") from None
        except MediaError:
            if preview is not None:  # coarse, but the camera's own picture of the scene
                return preview
            raise
    try:
        img = Image.fromarray(rgb)  # postprocess already turned it upright
    except (TypeError, ValueError) as exc:
        raise MediaError(f"cannot decode RAW file: {_reason(exc)}") from None
    return finish(img, work_size)


def _preview(raw: Any, *, max_pixels: int, work_size: int, flip: int) -> Image.Image | None:
    """The embedded preview, upright, or None (none, or unreadable)."""
    import rawpy

    from mmsearch_cli.decoders.image import decode_image, finish

    try:
        thumb = raw.extract_thumb()
    except (rawpy.LibRawError, ValueError, MemoryError, RuntimeError):
        return None  # no preview, or an odd one: the sensor data may still decode
    upright = False  # the preview says its own orientation (finish() applies it)
    try:
        if thumb.format == rawpy.ThumbFormat.JPEG:
            data = bytes(thumb.data)
            upright = _orientation(data) not in (None, 1)
            img = decode_image(io.BytesIO(data), max_pixels=max_pixels, work_size=work_size)
        elif thumb.format == rawpy.ThumbFormat.BITMAP:
            height, width = thumb.data.shape[:2]
            if width * height > max_pixels:
                return None
            img = finish(Image.fromarray(thumb.data), work_size)
        else:
            return None
    except (MediaError, TypeError, ValueError):
        return None
    if not upright and flip in _FLIPS:
        img = img.transpose(_FLIPS[flip])  # the preview is stored as the sensor saw it
    return img


def _orientation(jpeg: bytes) -> int | None:
    """The EXIF orientation a JPEG declares (a header read), or None."""
    try:
        with Image.open(io.BytesIO(jpeg)) as img:
            value = img.getexif().get(0x0112)
    except Exception:  # a damaged block: the preview is still worth trying
        return None
    return value if isinstance(value, int) else None
