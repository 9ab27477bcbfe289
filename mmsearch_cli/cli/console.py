"""stderr console, progress and table rendering (rich lives only in the CLI layer).

rich is imported on first use: a command answered by ``mms serve`` in JSON never needs it
(30 ms of a client's ~100 ms)."""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from mmsearch_cli.cli.preview import Preview
    from mmsearch_cli.search.rows import Row

    err: Console


@functools.cache
def _stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def __getattr__(name: str) -> Any:
    if name == "err":  # ``console.err``: the stderr console, made when first used
        return _stderr()
    raise AttributeError(name)


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """Control characters as visible escapes: a crafted file name must not recolour the
    terminal or move its cursor (JSON escapes them already)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def info(message: str, *, quiet: bool = False) -> None:
    """A note on stderr; ``--quiet`` silences it."""
    if not quiet:
        _stderr().print(printable(message), markup=False, highlight=False)


def warn(message: str) -> None:
    _stderr().print(f"mms: warning: {printable(message)}", markup=False, style="yellow")


@contextmanager
def progress(label: str, *, quiet: bool = False) -> Iterator[Callable[[int, int, str], None]]:
    """A progress bar on stderr, only when stderr is a terminal and not --quiet."""
    if quiet or not sys.stderr.isatty():
        yield lambda done, total, path: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        TextColumn("[dim]{task.fields[name]}"), console=_stderr(), transient=True,
    ) as bar:  # fmt: skip
        task = bar.add_task(label, total=None, name="")

        def update(done: int, total: int, path: str) -> None:
            bar.update(task, completed=done, total=total, name=os.path.basename(path)[:40])

        yield update


# A word and a colour per family: the word is what `-t` takes, and reads without colour.
FAMILY_STYLE = {"text": "cyan", "image": "green", "audio": "magenta", "video": "yellow"}
_GAP = 2  # columns between two cells (one cell of padding on each side)
_WHY_MIN = 20  # the why column keeps at least this much while paths are shortened
_ELLIPSIS = "…"
_FRAGMENT = re.compile(r"(t|page)=[0-9.]+")


def shown_path(row: Row, home: str | None = None, roots: Sequence[str] = ()) -> str:
    """The path as a person reads it: from the indexed folder it is in (``Pictures/x.jpg``
    for a root ``/mnt/nas/Pictures``) or under ``~``, whichever is shorter, with its
    ``#t=``/``#page=`` fragment, non-UTF-8 bytes as ``\\xNN`` and control characters
    escaped. Machine formats keep the absolute path (``search.rows``)."""
    from mmsearch_cli.search.rows import ref

    full = ref(row)
    choices = [full]
    home = os.path.expanduser("~") if home is None else home
    if home not in ("", os.sep) and full.startswith(home + os.sep):
        choices.append("~" + full[len(home) :])
    for root in roots:
        root = root.rstrip(os.sep)
        if root and full.startswith(root + os.sep):
            choices.append(os.path.basename(root) + full[len(root) :])
    text = min(choices, key=len)
    return printable(text.encode("utf-8", "backslashreplace").decode())


def fit_path(text: str, width: int) -> str:
    """``text`` in at most ``width`` terminal cells, shortened in the middle: whole folder
    names give way to one ``…``, kept from the inside (the file's own folder) and the
    outside (``~`` or the top folder) in turn, and the file name stays whole unless it is
    too long alone; then the middle of the name goes, keeping its start and extension."""
    from rich.cells import cell_len

    if cell_len(text) <= width:
        return text
    head, sep, name = text.rpartition("/")
    if not sep:
        return _cut_middle(text, width)
    first, *inner = head.split("/")  # first: "~", or "" for an absolute path
    left, right = [first], list[str]()
    inside = True  # which end to keep next; the other is tried when it does not fit
    tried_other = False
    while inner:
        if inside:
            new_left, new_right, rest = left, [inner[-1], *right], inner[:-1]
        else:
            new_left, new_right, rest = [*left, inner[0]], right, inner[1:]
        trial = "/".join([*new_left, *([_ELLIPSIS] if rest else []), *new_right, name])
        if cell_len(trial) <= width:
            left, right, inner, inside, tried_other = new_left, new_right, rest, not inside, False
        elif tried_other:
            break
        else:
            inside, tried_other = not inside, True
    for shortened in ("/".join([*left, _ELLIPSIS, *right, name]), f"{_ELLIPSIS}/{name}"):
        if cell_len(shortened) <= width:
            return shortened
    return _cut_middle(name, width)


def _cut_middle(name: str, width: int) -> str:
    """A too-long name as its start, ``…`` and its end: the extension and the ``#t=`` or
    ``#page=`` fragment when they leave room for a start, else its last characters."""
    from rich.cells import cell_len

    if width <= 1:
        return _ELLIPSIS[:width]
    base, hash_, fragment = name.rpartition("#")
    if not (hash_ and _FRAGMENT.fullmatch(fragment)):
        base, fragment = name, ""
    stem, dot, ext = base.rpartition(".")
    end = (dot + ext if stem else "") + (f"#{fragment}" if fragment else "")
    if not end or cell_len(end) + 2 > width:
        end = name[len(name) - (width - 1) // 2 :] if width > 2 else ""
    start = name
    while start and cell_len(start) + 1 + cell_len(end) > width:
        start = start[:-1]
    return start + _ELLIPSIS + end


def explain_line(row: Row) -> str:
    """Each space's rank and score for a row (``--explain``), with the words matched."""
    parts = []
    for space, v in row["spaces"].items():
        part = f"{space} #{v['rank']} ({v['score']:.3f})"
        if v.get("matched"):
            part += f": {' '.join(str(v['matched']).split())}"
        parts.append(part)
    return printable("; ".join(parts))


def print_table(
    rows: Sequence[Row],
    *,
    explain: bool = False,
    preview: Preview | None = None,
    out: Console | None = None,
    roots: Sequence[str] = (),
) -> None:
    """Results as a table for people: one line of path per row, shortened in the middle
    to fit (never wrapped), the why column wrapped at words, each family marked by its
    word and colour, and ``--explain`` details under their own row. ``preview`` (from
    ``cli.preview``) adds a thumbnail column; ``roots`` are the index's folders (paths are
    shown from them); ``out`` is for tests."""
    from rich.cells import cell_len
    from rich.padding import Padding
    from rich.table import Table
    from rich.text import Text

    if out is None:
        # Piped into less or a file there is no width to fit: 160 columns, unless COLUMNS
        # says otherwise.
        fixed = sys.stdout.isatty() or os.environ.get("COLUMNS", "").isdigit()
        # kitty's placeholders carry the image's id in a 24-bit colour: never degraded,
        # not even under NO_COLOR (our own colours are left out then, below).
        kitty = preview is not None and preview.protocol == "kitty"
        out = _stdout_console(width=None if fixed else 160, truecolor=kitty)
    colour = not os.environ.get("NO_COLOR")
    home = os.path.expanduser("~")
    paths = [shown_path(row, home, roots) for row in rows]
    whys = [printable(row["why"] + _segments_note(row)) for row in rows]
    ranks = [str(row["rank"]) for row in rows]
    kinds = [printable(str(row.get("modality") or "?")) for row in rows]
    thumb_w = preview.width if preview is not None else 0
    fixed_w = {
        "#": max(map(cell_len, ["#", *ranks])),
        "score": 5,
        "type": max(map(cell_len, ["type", *kinds])),
    }
    columns = 5 + (1 if preview is not None else 0)
    room = out.width - sum(fixed_w.values()) - thumb_w - _GAP * (columns - 1)
    longest_path = max(map(cell_len, ["path", *paths]))
    longest_why = max(map(cell_len, ["why", *whys]))
    path_w = min(longest_path, max(room - min(longest_why, max(_WHY_MIN, room * 2 // 5)), 12))
    # Room for whole file names comes before the why column's share beyond its minimum.
    names = max(cell_len(_ELLIPSIS + "/" + p.rsplit("/", 1)[-1]) for p in paths)
    path_w = max(path_w, min(names, longest_path, room - _WHY_MIN))
    fitted = [fit_path(p, path_w) for p in paths]
    path_w = max(map(cell_len, ["path", *fitted]))  # what shortening saved goes to why
    why_w = max(room - path_w, 8)

    def table(header: bool) -> Table:
        t = Table(show_header=header, show_edge=False, pad_edge=False, box=None,
                  header_style="bold", collapse_padding=False)  # fmt: skip
        t.add_column("#", justify="right", width=fixed_w["#"], no_wrap=True)
        if preview is not None:
            t.add_column("", width=thumb_w, no_wrap=True)
        t.add_column("score", justify="right", width=fixed_w["score"], no_wrap=True)
        t.add_column("type", width=fixed_w["type"], no_wrap=True)
        t.add_column("path", width=path_w, no_wrap=True, overflow="ellipsis")
        t.add_column("why", width=why_w, overflow="fold")
        return t

    out.print(table(header=True))
    indent = fixed_w["#"] + _GAP + (thumb_w + _GAP if preview is not None else 0)
    for i, row in enumerate(rows):
        t = table(header=False)
        cells: list[Any] = [Text(ranks[i])]  # Text: no markup in names
        if preview is not None:
            cells.append(preview.cell(row) or "")
        cells += [
            Text(f"{row['score']:.3f}"),
            Text(kinds[i], style=FAMILY_STYLE.get(kinds[i], "") if colour else ""),
            Text(fitted[i]),
            Text(whys[i]),
        ]
        t.add_row(*cells)
        out.print(t)
        if explain:
            out.print(Padding(Text(explain_line(row), style="dim"), (0, 0, 0, indent)))


def _segments_note(row: Row) -> str:
    n = row.get("segments_matched", 1)
    return f" ({n} segments)" if n > 1 else ""


def _stdout_console(width: int | None, *, truecolor: bool = False) -> Console:
    from rich.console import Console

    if truecolor:
        return Console(highlight=False, soft_wrap=False, width=width, color_system="truecolor",
                       no_color=False)  # fmt: skip
    return Console(highlight=False, soft_wrap=False, width=width)
