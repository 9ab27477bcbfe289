"""Find indexable files under the roots, by extension, costing one ``stat`` per file."""

from __future__ import annotations

import fnmatch
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from mmsearch_cli.items import FileModality, modality_of


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
    result = ScanResult()
    skip = {os.path.realpath(p) for p in skip_dirs}
    seen_dirs: set[tuple[int, int]] = set()

    def consider(path: str, st: os.stat_result) -> None:
        modality = modality_of(path)
        if modality is None or (modalities is not None and modality not in modalities):
            return
        if _excluded(path, exclude):
            return
        result.files[path] = FoundFile(path, st.st_size, st.st_mtime_ns, modality)

    stack: list[str] = []
    for root in roots:
        root_s = os.path.abspath(os.fsdecode(root))
        try:
            st = os.stat(root_s)
        except OSError as exc:
            result.problems[root_s] = f"cannot access: {exc.strerror}"
            continue
        if stat.S_ISDIR(st.st_mode):
            stack.append(root_s)
        elif stat.S_ISREG(st.st_mode):
            consider(root_s, st)
    while stack:
        directory = stack.pop()
        try:
            dst = os.stat(directory)
        except OSError as exc:
            result.problems[directory] = f"cannot access: {exc.strerror}"
            continue
        key = (dst.st_dev, dst.st_ino)
        if key in seen_dirs or os.path.realpath(directory) in skip:
            continue
        seen_dirs.add(key)
        try:
            entries = list(os.scandir(directory))
        except OSError as exc:
            result.problems[directory] = f"cannot list directory: {exc.strerror}"
            continue
        for entry in entries:
            name = entry.name
            if not include_hidden and name.startswith("."):
                continue
            path = os.path.join(directory, name)
            try:
                is_link = entry.is_symlink()
                if entry.is_dir(follow_symlinks=follow_symlinks):
                    if not _excluded(path, exclude):
                        stack.append(path)
                    continue
                if is_link and not follow_symlinks and os.path.isdir(path):
                    continue
                st = entry.stat(follow_symlinks=True)
            except FileNotFoundError:
                if entry.is_symlink():
                    result.problems[path] = "broken symbolic link"
                continue  # vanished while we looked
            except OSError as exc:
                result.problems[path] = f"cannot stat: {exc.strerror}"
                continue
            if stat.S_ISREG(st.st_mode):
                consider(path, st)
    return result


def _excluded(path: str, patterns: tuple[str, ...]) -> bool:
    name = os.path.basename(path)
    return any(fnmatch.fnmatch(path, p) or fnmatch.fnmatch(name, p) for p in patterns)


def under_roots(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)
