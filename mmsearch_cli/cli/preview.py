"""Thumbnails inline in the result table (``mms query --preview``).

Drawn by ``textual-image`` (rich renderables for kitty's graphics protocol and Sixel,
which iTerm2 3.5+, WezTerm, foot, Konsole and xterm speak), not by escape codes of ours.
The library asks the terminal what it supports when it is first imported; we import it
only when both stdout and stdin are a terminal (it reads the terminal's answer on stdin)
and TERM names one. Anything else, or a terminal that can show no image, is the plain
table, silently: ``--preview`` never changes what a pipe or a file receives. The
pictures are ``api.thumbnail``'s (cached on disk, as the HTML sheet's): photos, a video's
frame at the hit's time, a PDF's page.
"""

from __future__ import annotations

import io
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from PIL.Image import Image

    from mmsearch_cli.search.rows import Row

PROTOCOLS = ("kitty", "sixel")
WIDTH, HEIGHT = 8, 4  # terminal cells: about square, with cells twice as tall as wide


def detect(
    stdout: TextIO | None = None, stdin: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
) -> str:  # fmt: skip
    """The graphics protocol of the terminal: "kitty", "sixel", or "none" (not a
    terminal, TERM unset or dumb, the library missing, or no image support)."""
    stdout = sys.stdout if stdout is None else stdout
    stdin = sys.stdin if stdin is None else stdin
    environ = os.environ if environ is None else environ
    if environ.get("TERM", "dumb") in ("", "dumb"):
        return "none"
    if not (_isatty(stdout) and _isatty(stdin)):
        return "none"
    # Its notes ("assuming VT340 sizes") are for --debug, not for the user's terminal.
    logging.getLogger("textual_image").addHandler(logging.NullHandler())
    try:  # the import asks the terminal (a few 0.1 s timeouts at worst)
        from textual_image.renderable import Image, SixelImage, TGPImage
    except Exception:  # not installed, or a terminal that answers nonsense
        return "none"
    return {TGPImage: "kitty", SixelImage: "sixel"}.get(Image, "none")


def _isatty(stream: TextIO | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (ValueError, OSError):  # closed
        return False


@dataclass
class Preview:
    """What ``console.print_table`` asks for a thumbnail column: its width and a cell."""

    protocol: str
    load: Callable[[Row], Image | None]
    width: int = WIDTH
    height: int = HEIGHT

    def cell(self, row: Row) -> Any:
        """A rich renderable of the row's thumbnail, or None (text, audio, unreadable)."""
        picture = self.load(row)
        if picture is None:
            return None
        if self.protocol == "kitty":
            from textual_image.renderable import TGPImage as Drawn
        else:
            from textual_image.renderable import SixelImage as Drawn  # type: ignore[assignment]
        wide = picture.width >= picture.height  # fit the box: wide ones by width
        return Drawn(
            picture, width=self.width if wide else "auto", height="auto" if wide else self.height
        )


def preview_for(rows: Sequence[Row], protocol: str | None = None) -> Preview | None:
    """A preview for this terminal, or None: the plain table (also when no row has a
    picture to show)."""
    protocol = detect() if protocol is None else protocol
    if protocol not in PROTOCOLS or not any(_drawable(row) for row in rows):
        return None
    return Preview(protocol, load=thumbnail)


def _drawable(row: Row) -> bool:
    return row.get("modality") in ("image", "video") or row.get("page") is not None


def thumbnail(row: Row) -> Image | None:
    """The row's thumbnail: the picture, a video's frame at ``t``, a PDF's page; made and
    cached on disk by ``api.thumbnail`` (the same entries as the HTML sheet's). None for
    other files, or one that cannot be drawn."""
    if not _drawable(row):
        return None
    try:
        from PIL import Image

        from mmsearch_cli import api

        data = api.thumbnail(row["path"], row.get("t"), page=row.get("page"))
        if not data:
            return None
        picture = Image.open(io.BytesIO(data))
        picture.load()
        return picture
    except Exception:  # the table matters more than its pictures
        return None
