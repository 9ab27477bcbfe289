"""`mms query` as people see it: the table at 80 and 160 columns, and `--preview` in a
terminal, with a pseudo-terminal standing in for kitty, a Sixel terminal, one that
answers nothing, and TERM=dumb."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import MMS, copy_tree, invoke, mms_process

FILES = ["images/farm_animals/dog.webp", "images/farm_animals/cow.jpg",
         "audio/animals/dog.mp3", "text/farm_animals_and_their_sounds.md"]  # fmt: skip
DEEP = "a folder with a rather long name/and another one inside it/and a third"


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("table")
    copy_tree(FILES, root / DEEP)
    res = invoke("index", root, "--index", root / "index", "-q")
    assert res.code == 0, res.err
    yield root


def query(library: Path, *args: str, env: dict[str, str] | None = None) -> bytes:
    proc = mms_process("query", "a dog", "--index", library / "index", "--no-server", *args,
                       env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize("columns", [80, 160])
def test_paths_are_never_wrapped_and_explain_lines_follow_their_rows(
    library: Path, columns: int
) -> None:
    lines = query(library, "--explain", env={"COLUMNS": str(columns)}).decode().splitlines()
    assert all(len(line) <= columns for line in lines)
    rows = [n for n, line in enumerate(lines) if re.match(r"\d+ ", line)]
    assert len(rows) >= 2  # the table may leave out the weakest ("no good match")
    for n, start in enumerate(rows):
        end = rows[n + 1] if n + 1 < len(rows) else len(lines)
        first, block = lines[start], lines[start:end]
        name = re.search(r"(dog\.webp|cow\.jpg|dog\.mp3#t=[0-9.]+|sounds\.md)", first)
        assert name, first  # the file name, whole, on the row's first line
        assert not any(name.group(1) in line for line in block[1:])
        details = [line for line in block if re.search(r"\w+ #\d+ \(", line)]
        assert details and block.index(details[0]) > 0  # under the row, before the next
    if columns == 160:  # the folders nearest the file are kept, the middle gives way
        assert "…/and a third/images/farm_animals/dog.webp" in "\n".join(lines)


def test_machine_formats_keep_absolute_paths(library: Path) -> None:
    paths = query(library, "--format", "paths", env={"COLUMNS": "80"}).decode().splitlines()
    assert all(p.startswith(str(library)) for p in paths)


def test_preview_into_a_pipe_is_the_plain_table(library: Path) -> None:
    env = {"COLUMNS": "100", "TERM": "xterm-kitty"}
    assert query(library, "--preview", env=env) == query(library, env=env)


def in_terminal(library: Path, answers: dict[bytes, bytes], term: str) -> tuple[bytes, bytes]:
    """``mms query --preview`` on a pseudo-terminal whose other end answers the queries in
    ``answers`` (a terminal's replies to the library's probes): (output, what was asked)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 1200, 800))
    env = {**os.environ, "TERM": term, "COLUMNS": "120", "XDG_CACHE_HOME": str(library)}
    proc = subprocess.Popen(
        [*MMS, "query", "a dog", "--index", str(library / "index"), "--no-server", "-q",
         "--preview"], stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True,
    )  # fmt: skip
    os.close(slave)
    out, answered, deadline = b"", set(), time.monotonic() + 300
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.05)
        if not ready:
            if proc.poll() is not None:
                break
            continue
        try:
            chunk = os.read(master, 1 << 16)
        except OSError:  # EIO: the child's side is closed
            break
        out += chunk
        for asked, reply in answers.items():
            if asked in out and asked not in answered:
                os.write(master, reply)
                answered.add(asked)
    os.close(master)
    assert proc.wait(timeout=60) == 0, out
    asked = b"".join(q for q in (b"\x1b[c", b"a=q") if q in out)
    return out, asked


SIXEL_DA = b"\x1b[?62;4;22c"  # device attributes with 4: Sixel graphics
PLAIN_DA = b"\x1b[?62;22c"


def test_a_sixel_terminal_gets_sixel_thumbnails(library: Path) -> None:
    out, _ = in_terminal(library, {b"\x1b[c": SIXEL_DA}, "xterm-256color")
    pictures = (b"dog.webp" in out) + (b"cow.jpg" in out)
    assert pictures and out.count(b"\x1bP") == pictures, out  # the sound and text have none
    assert b"dog.mp3" in out and b"Traceback" not in out


def test_kitty_gets_images_over_its_graphics_protocol(library: Path) -> None:
    answers = {b"\x1b[c": PLAIN_DA, b"a=q": b"\x1b_Gi=1;OK\x1b\\"}
    out, _ = in_terminal(library, answers, "xterm-kitty")
    assert b"\x1b_G" in out and b"f=100" in out and "\U0010eeee".encode() in out
    assert b"\x1bP" not in out


def test_a_terminal_without_images_gets_the_plain_table_silently(library: Path) -> None:
    out, asked = in_terminal(library, {b"\x1b[c": PLAIN_DA}, "xterm-256color")
    assert asked  # it was asked, it said no
    assert b"f=100" not in out and "\U0010eeee".encode() not in out and b"\x1bP" not in out
    assert b"dog.webp" in out and b"warning" not in out.lower()


def test_a_dumb_terminal_is_not_even_asked(library: Path) -> None:
    out, asked = in_terminal(library, {}, "dumb")
    assert asked == b"" and b"\x1bP" not in out and b"dog.webp" in out
