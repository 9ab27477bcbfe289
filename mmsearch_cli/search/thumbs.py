"""Thumbnails for the HTML contact sheet: a picture, a video frame at ``t``, a PDF page.

JPEG bytes at most ``size`` px on the long side, cached on disk under
``$XDG_CACHE_HOME/mms/thumbs`` so a second page of the same results decodes nothing.

The cache key is a hash of the file's size, mtime (ns) and its first and last 64 KiB,
with ``t``, the page and the thumbnail size: hashing whole files would cost more than the
thumbnail (a 2 GB video is seconds of SHA-256; these 128 KiB are microseconds). An
edited file gets a new mtime, so a stale thumbnail is never shown; a copy without its
mtime costs one new thumbnail. A file that cannot be drawn is cached as an empty entry
(the page shows a placeholder) until it changes.

Entries are written to a temporary name and renamed, without fsync: a cache entry torn
by a power cut fails the JPEG check on read and is made again.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmsearch_cli.config import APP, Limits
from mmsearch_cli.items import modality_of

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)

SIZE = 256  # px, long side: sharp in a 128-160 CSS px cell on a 2x screen
QUALITY = 80
_EDGE = 64 * 1024  # bytes of each end of the file that go into the key
_VERSION = b"mms-thumb-1"  # bump when the drawing changes, so old entries are not used
_MAX_FRAMES = 600  # decoded after a seek before giving up on reaching t exactly


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/mms/thumbs`` (``~/.cache/mms/thumbs``; the platform's elsewhere)."""
    from platformdirs import user_cache_dir

    return Path(user_cache_dir(APP)) / "thumbs"


def can_thumbnail(path: str, page: int | None = None) -> bool:
    """Whether ``thumbnail`` would try this file (pictures, videos, PDF pages)."""
    return modality_of(path) in ("image", "video") or (
        page is not None and path.lower().endswith(".pdf")
    )


def cache_key(path: str | os.PathLike[str], t: float | None, size: int, page: int | None) -> str:
    """Hex key of a thumbnail (module docstring); OSError if the file cannot be read."""
    digest = hashlib.sha256(_VERSION)
    with open(path, "rb") as fh:
        st = os.fstat(fh.fileno())
        digest.update(f"{st.st_size}:{st.st_mtime_ns}:{t!r}:{page!r}:{size}\0".encode())
        digest.update(fh.read(_EDGE))
        if st.st_size > 2 * _EDGE:
            fh.seek(-_EDGE, os.SEEK_END)
            digest.update(fh.read(_EDGE))
    return digest.hexdigest()


def thumbnail(
    path: str | os.PathLike[str], t: float | None = None, size: int = SIZE, *,
    page: int | None = None, cache: Path | None = None, limits: Limits | None = None,
) -> bytes | None:  # fmt: skip
    """JPEG bytes of a picture, of a video's frame at ``t`` seconds (the first without
    ``t``), or of a PDF's ``page`` (1-based); None for anything else or on failure. Never
    raises for a bad file: the sheet shows a placeholder instead."""
    name = os.fspath(path)
    if not can_thumbnail(name, page):
        return None
    if modality_of(name) == "video":  # t to the precision of a #t= link; 0: the start
        t, page = round(max(0.0, t or 0.0), 1), None
    else:
        t = None  # one thumbnail per picture or page, whatever t a row carries
    try:
        key = cache_key(name, t, size, page)
    except OSError:
        return None  # gone or unreadable: nothing to draw, nothing to cache
    folder = cache or cache_dir()
    entry = folder / key[:2] / f"{key}.jpg"
    try:
        data = entry.read_bytes()
        if not data or _whole_jpeg(data):
            return data or None
    except OSError:
        pass
    data = _make(name, t, size, page, limits or Limits()) or b""
    _store(entry, data)
    return data or None


def _whole_jpeg(data: bytes) -> bool:
    return data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"


def _store(entry: Path, data: bytes) -> None:
    """Write a cache entry by rename; a cache that cannot be written is only slower."""
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=entry.parent, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, entry)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        log.debug("thumbnail cache not written (%s): %s", entry, exc)


def _make(path: str, t: float | None, size: int, page: int | None, limits: Limits) -> bytes:
    """The thumbnail's JPEG bytes, or b"" when the file cannot be drawn."""
    try:
        kind = modality_of(path)
        img: Image.Image | None
        if kind == "image":
            img = _picture(Path(path), size, limits)
        elif kind == "video":
            img = _frame(path, t or 0.0, size)
        else:
            img = _pdf_page(path, page or 1, size, limits)
        if img is None:
            return b""
        img.thumbnail((size, size))
        out = io.BytesIO()
        img.convert("RGB").save(out, "JPEG", quality=QUALITY, optimize=True)
        return out.getvalue()
    except Exception as exc:  # any decoder's failure on any file: a placeholder, not a crash
        log.debug("no thumbnail for %s: %s", path, exc)
        return b""


def _picture(path: Path, size: int, limits: Limits) -> Image.Image:
    from mmsearch_cli.decoders.image import load_image

    # The decoder's limits and fixes apply: bomb check, HEIC/RAW/SVG, EXIF rotation.
    return load_image(path, max_pixels=limits.max_image_pixels, work_size=size)


def _frame(path: str, t: float, size: int) -> Image.Image | None:
    """The frame shown at ``t`` (seconds from the stream's start, as the index has it)."""
    import av

    with av.open(path, metadata_errors="ignore") as container:
        streams = [
            s for s in container.streams.video
            if not s.disposition & av.stream.Disposition.attached_pic
        ]  # fmt: skip
        if not streams:
            return None
        stream = streams[0]
        start, base = stream.start_time or 0, stream.time_base
        frame = None
        if t > 0 and base is not None:
            try:
                container.seek(start + int(t / base), stream=stream, backward=True)
            except av.error.FFmpegError:
                pass  # decode from the start instead
        for n, decoded in enumerate(container.decode(stream)):
            at = None if decoded.pts is None or base is None else (decoded.pts - start) * base
            if frame is not None and at is not None and at > t + 1.0:
                break  # a seek that overshot (MPEG-TS): the last frame before is closer
            frame = decoded
            if at is None or at >= t - 0.02 or n >= _MAX_FRAMES:
                break
        return None if frame is None else _upright(frame, size)


def _upright(frame: Any, size: int) -> Image.Image:
    from PIL import Image

    scale = min(1.0, size / max(frame.width, frame.height))
    width, height = max(2, round(frame.width * scale)), max(2, round(frame.height * scale))
    img: Image.Image = frame.reformat(width=width, height=height, format="rgb24").to_image()
    turns = {90: Image.Transpose.ROTATE_90, 180: Image.Transpose.ROTATE_180,
             270: Image.Transpose.ROTATE_270}  # fmt: skip
    turn = turns.get(int(getattr(frame, "rotation", 0) or 0) % 360)  # display matrix, CCW
    return img.transpose(turn) if turn is not None else img


def _pdf_page(path: str, page: int, size: int, limits: Limits) -> Image.Image | None:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(path)
    try:
        if not 1 <= page <= len(pdf):
            return None
        sheet = pdf[page - 1]
        width, height = sheet.get_size()  # points
        scale = size / max(width, height, 1.0)
        if width * height * scale * scale > limits.max_image_pixels:
            return None
        img: Image.Image = sheet.render(scale=scale, may_draw_forms=False).to_pil()
        return img
    finally:
        pdf.close()
