"""Find indexable files under the roots, by extension, costing one ``stat`` per file;
files without a known extension are reported too (``indexing.sniff`` decides on them)."""

from __future__ import annotations

import fnmatch
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from mmsearch_cli.items import FileModality, modality_of

SIDECARS = (".xmp",)  # metadata files that belong to a photo beside them


@dataclass
class FoundFile:
    path: str  # absolute; os.fsdecode form (surrogate escapes for non-UTF-8 bytes)
    size: int
    mtime_ns: int
    modality: FileModality


@dataclass
class ScanResult:
    files: dict[str, FoundFile] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)  # path -> reason (unreadable dir…)
    # Files no extension names: extensionless ones may be text (``indexing.sniff``); the
    # others are counted as unsupported, so nothing is skipped silently.
    extensionless: dict[str, FoundFile] = field(default_factory=dict)
    unsupported: list[str] = field(default_factory=list)


def scan(
    roots: list[Path],
    *,
    follow_symlinks: bool = False,
    include_hidden: bool = False,
    exclude: tuple[str, ...] = (),
    skip_dirs: tuple[Path, ...] = (),
    modalities: frozenset[str] | None = None,
) -> ScanResult:
    """Walk the roots. Directory symlinks are followed only when asked, with loop detection."""
    walker = _Walker(follow_symlinks, include_hidden, exclude, skip_dirs, modalities)
    for root in roots:
        walker.add_root(os.path.abspath(os.fsdecode(root)))
    while walker.stack:
        walker.visit(walker.stack.pop())
    return walker.result


class _Walker:
    """One scan's state: the folders still to visit, the folders seen (by device and
    inode, so a symlink loop is walked once) and what was found."""

    def __init__(
        self, follow_symlinks: bool, include_hidden: bool, exclude: tuple[str, ...],
        skip_dirs: tuple[Path, ...], modalities: frozenset[str] | None,
    ) -> None:  # fmt: skip
        self.follow_symlinks = follow_symlinks
        self.include_hidden = include_hidden
        self.exclude = exclude
        self.skip = {os.path.realpath(p) for p in skip_dirs}
        self.modalities = modalities
        self.seen: set[tuple[int, int]] = set()
        self.stack: list[str] = []
        self.result = ScanResult()

    def add_root(self, root: str) -> None:
        try:
            st = os.stat(root)
        except OSError as exc:
            self.result.problems[root] = f"cannot access: {exc.strerror}"
            return
        if stat.S_ISDIR(st.st_mode):
            self.stack.append(root)
        elif stat.S_ISREG(st.st_mode):
            self.consider(root, st)

    def visit(self, directory: str) -> None:
        """List one folder: files are considered, subfolders pushed to visit."""
        entries = self._entries(directory)
        sidecars = {e.name: e for e in entries if e.name.lower().endswith(SIDECARS)}
        for entry in entries:
            if not self.include_hidden and entry.name.startswith("."):
                continue
            path = os.path.join(directory, entry.name)
            st = self._classify(path, entry)
            if st is not None and stat.S_ISREG(st.st_mode):
                self.consider(path, st, _sidecar_mtime(entry.name, sidecars))
            elif st is not None and not stat.S_ISDIR(st.st_mode):
                kind = ("FIFO" if stat.S_ISFIFO(st.st_mode) else "socket"
                        if stat.S_ISSOCK(st.st_mode) else "device")  # fmt: skip
                self.result.problems[path] = f"not a regular file (a {kind}): skipped"

    def _entries(self, directory: str) -> list[os.DirEntry[str]]:
        """The folder's entries, or [] if it was seen, is skipped or cannot be read."""
        if not self._first_visit(directory):
            return []
        try:
            return list(os.scandir(directory))
        except OSError as exc:
            self.result.problems[directory] = f"cannot list directory: {exc.strerror}"
            return []

    def _first_visit(self, directory: str) -> bool:
        """Mark the folder seen; False if it was seen (keyed by device and inode, as a
        symlink loop reaches it under another path), is skipped or cannot be read."""
        try:
            dst = os.stat(directory)
        except OSError as exc:
            self.result.problems[directory] = f"cannot access: {exc.strerror}"
            return False
        key = (dst.st_dev, dst.st_ino)
        if key in self.seen or os.path.realpath(directory) in self.skip:
            return False
        self.seen.add(key)
        return True

    def _classify(self, path: str, entry: os.DirEntry[str]) -> os.stat_result | None:
        """A folder goes on the stack (None); anything else gets its one ``stat``, or None
        with the reason noted when it cannot be read."""
        try:
            is_link = entry.is_symlink()
            if entry.is_dir(follow_symlinks=self.follow_symlinks):
                if not _excluded(path, self.exclude):
                    self.stack.append(path)
                return None
            if is_link and not self.follow_symlinks and os.path.isdir(path):
                return None  # a folder symlink, not followed
            return entry.stat(follow_symlinks=True)
        except FileNotFoundError:
            if entry.is_symlink():
                self.result.problems[path] = "broken symbolic link"
            return None  # vanished while we looked
        except OSError as exc:
            self.result.problems[path] = f"cannot stat: {exc.strerror}"
            return None

    def consider(self, path: str, st: os.stat_result, sidecar_mtime: int = 0) -> None:
        if _excluded(path, self.exclude):
            return
        modality = modality_of(path)
        if modality is None:
            if path.lower().endswith(SIDECARS):
                return  # read with its photo (decoders/photo.py), not a file of its own
            if self.modalities is not None and "text" not in self.modalities:
                return
            if not os.path.splitext(os.path.basename(path))[1]:
                self.result.extensionless[path] = FoundFile(
                    path, st.st_size, st.st_mtime_ns, "text"
                )
            else:
                self.result.unsupported.append(path)
            return
        if self.modalities is not None and modality not in self.modalities:
            return
        # A photo's sidecar is part of it: its newer mtime makes the photo "changed".
        mtime = max(st.st_mtime_ns, sidecar_mtime) if modality == "image" else st.st_mtime_ns
        self.result.files[path] = FoundFile(path, st.st_size, mtime, modality)


def _sidecar_mtime(name: str, sidecars: dict[str, os.DirEntry[str]]) -> int:
    """The mtime of ``name``'s XMP sidecar in the same folder (``IMG_1.xmp``, ``.XMP`` or
    ``IMG_1.jpg.xmp``, as ``decoders.photo.xmp_sidecar`` looks), else 0. One ``stat`` for
    the sidecar, as for any file."""
    if not sidecars:
        return 0
    stem = os.path.splitext(name)[0]
    for candidate in (stem + ".xmp", stem + ".XMP", name + ".xmp"):
        entry = sidecars.get(candidate)
        if entry is not None and candidate != name:
            try:
                return entry.stat(follow_symlinks=True).st_mtime_ns
            except OSError:
                return 0
    return 0


def _excluded(path: str, patterns: tuple[str, ...]) -> bool:
    name = os.path.basename(path)
    return any(fnmatch.fnmatch(path, p) or fnmatch.fnmatch(name, p) for p in patterns)


def under_roots(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)
