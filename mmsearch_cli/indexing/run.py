"""Incremental indexing, end to end: lock, scan, diff against the index, embed, commit.

The steps live beside this module: ``scan`` finds files, ``diff`` decides what changed,
``embed`` decodes and embeds it in journaled batches. ``forget`` drops folders.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmsearch_cli.config import Settings
from mmsearch_cli.embedders.needs import FetchProgress, Supply
from mmsearch_cli.embedders.spaces import LiveSpace, SpaceSpec, bind, spaces_for
from mmsearch_cli.errors import MismatchError, UsageError
from mmsearch_cli.indexing.diff import diff_files
from mmsearch_cli.indexing.embed import ProgressFn, embed_all
from mmsearch_cli.indexing.guard import MAX_DELETE, root_device
from mmsearch_cli.indexing.scan import scan, under_roots
from mmsearch_cli.indexing.sniff import (
    NO_EXTENSION,
    count_by_type,
    looks_like_text,
    resolve,
    type_label,
)
from mmsearch_cli.items import modality_of
from mmsearch_cli.search import calibrate as calibration
from mmsearch_cli.store.index import IndexWriter
from mmsearch_cli.store.lock import index_lock
from mmsearch_cli.store.manifest import database_path, read_manifest, sidecar_path


@dataclass
class IndexSummary:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    moved: int = 0
    failed: int = 0  # the files' fault: tried again once they change
    deferred: int = 0  # for want of a model, codec or library: tried again by every run
    failed_earlier: int = 0  # failed before and untouched by this run (`mms info --failed`)
    vanished: int = 0  # deleted between the scan and their turn: not indexed, not failed
    changed: int = 0  # changed while being read: left for the next run, not failed
    resumed: int = 0  # files recovered from the journal of an interrupted run
    segments: int = 0  # segments embedded in this run
    seconds: float = 0.0
    by_modality: Counter[str] = field(default_factory=Counter)
    failures: list[tuple[str, str]] = field(default_factory=list)
    deferrals: list[tuple[str, str, str]] = field(default_factory=list)  # path, modality, why
    fetched: list[str] = field(default_factory=list)  # model files downloaded by this run
    problems: dict[str, str] = field(default_factory=dict)
    held_back: dict[str, str] = field(default_factory=dict)  # root -> why nothing was pruned
    unsupported: Counter[str] = field(default_factory=Counter)  # type label -> files

    def to_dict(self) -> dict[str, Any]:
        reasons = Counter(reason for _, reason in self.failures)
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "moved": self.moved,
            "failed": self.failed,
            "deferred": self.deferred,
            "failed_earlier": self.failed_earlier,
            "vanished": self.vanished,
            "changed_while_reading": self.changed,
            "resumed": self.resumed,
            "segments_embedded": self.segments,
            "embedded_by_modality": dict(self.by_modality),
            "seconds": round(self.seconds, 3),
            "failures": [{"path": p, "reason": r} for p, r in self.failures],
            "failures_by_reason": dict(reasons),
            "deferred_files": [{"path": p, "reason": r} for p, _, r in self.deferrals],
            "deferred_by_reason": dict(Counter(r for _, _, r in self.deferrals)),
            "fetched_models": self.fetched,
            "scan_problems": [{"path": p, "reason": r} for p, r in self.problems.items()],
            "held_back": [{"root": p, "reason": r} for p, r in self.held_back.items()],
            "unsupported_by_type": dict(self.unsupported),
        }


@dataclass
class IndexOptions:
    profile: str | None = None  # None: the index's own (or "builtin" for a new index)
    model: str | None = None
    wait: float = 0.0
    follow_symlinks: bool = False
    include_hidden: bool = False
    exclude: tuple[str, ...] = ()
    retry_failed: bool = False
    rebuild: bool = False
    prune: bool = True  # drop files under the roots that vanished
    # False: the paths are inside the index's roots (the watcher's batches); they are not
    # added as roots, and one that no longer exists is simply dropped.
    add_roots: bool = True
    force_prune: bool = False  # prune even a root that looks unmounted, empty or gutted
    max_delete: float = MAX_DELETE  # share of a root's files one run may drop
    # Download missing model files on first use (None: settings.auto_fetch, default on).
    fetch: bool | None = None


def run_index(
    roots: list[Path],
    settings: Settings,
    options: IndexOptions | None = None,
    progress: ProgressFn | None = None,
    fetch_progress: FetchProgress | None = None,
) -> IndexSummary:
    opts = options or IndexOptions()
    started = time.monotonic()
    index_dir = settings.index_dir
    with index_lock(index_dir, wait=opts.wait):
        if opts.rebuild:
            _clear(index_dir)
        writer = IndexWriter.open(index_dir, opts.profile or "builtin")
        try:
            summary = _update(writer, roots, settings, opts, progress, fetch_progress)
        finally:
            writer.close()
    summary.seconds = time.monotonic() - started
    return summary


def _update(
    writer: IndexWriter, roots: list[Path], settings: Settings, opts: IndexOptions,
    progress: ProgressFn | None, fetch_progress: FetchProgress | None = None,
) -> IndexSummary:  # fmt: skip
    index_dir = settings.index_dir
    live = [bind(spec, settings) for spec in _choose_specs(writer, opts)]
    # Model files are fetched on first use; kinds of file whose models cannot be had wait.
    fetch = settings.auto_fetch if opts.fetch is None else opts.fetch
    supply = Supply.create(settings.model_dir, fetch=fetch, progress=fetch_progress)
    full_reembed = _reconcile_spaces(writer, live, supply)
    # Replay after the spaces exist: a killed first run journaled vectors for them.
    summary = IndexSummary(resumed=writer.replay())
    root_strs = [os.path.abspath(os.fsdecode(r)) for r in roots]
    if opts.add_roots:
        _check_named_files(root_strs)
        _check_aliases(root_strs, writer.roots)
        writer.set_roots(writer.roots + [r for r in root_strs if r not in writer.roots])
    else:
        roots = [r for r in roots if os.path.lexists(r)]
    found = scan(
        roots,
        follow_symlinks=opts.follow_symlinks,
        include_hidden=opts.include_hidden,
        exclude=opts.exclude,
        skip_dirs=(index_dir,),
    )
    summary.problems = found.problems
    remembered = writer.sniffed_binaries
    texts, binaries = resolve(found.extensionless, writer.files, remembered)
    found.files.update(texts)
    # Only the scanned roots were looked at: what other roots taught us stays.
    elsewhere = {p: sig for p, sig in remembered.items() if not under_roots(p, root_strs)}
    writer.set_sniffed_binaries({**elsewhere, **binaries})
    summary.unsupported = count_by_type([*found.unsupported, *binaries])
    if opts.add_roots:
        writer.set_unsupported(dict(summary.unsupported))
    todo = diff_files(writer, found.files, root_strs, opts, summary, full_reembed)
    for root in root_strs:  # remember where each root lives, once it holds files
        device = root_device(root)
        usable = root in writer.roots and root not in summary.held_back and device is not None
        if usable and any(under_roots(p, [root]) for p in found.files):
            writer.set_root_device(root, device or 0)
    supply.provide(live, {found.modality for found, _ in todo})
    summary.fetched = supply.fetched
    embed_all(writer, todo, live, settings, summary, progress, supply.waiting)
    changed = writer.dirty or writer.new
    if changed:
        writer.commit()
    calibration.refresh(writer, live, changed)  # what a chance score is here (search.calibrate)
    for space in live:
        for embedder in {id(e): e for e in space.encoders.values()}.values():
            embedder.prepare_query()
    return summary


def _check_named_files(roots: list[str]) -> None:
    """A file named on the command line that mms cannot read is a usage error (exit 2),
    not a silent no-op."""
    for root in roots:
        if not os.path.isfile(root) or modality_of(root) is not None:
            continue
        label = type_label(root)
        if label != NO_EXTENSION or not looks_like_text(root):
            what = "files without an extension that are not text" if label == NO_EXTENSION else (
                f"{label} files")  # fmt: skip
            raise UsageError(f"{root}: {what} are not supported",
                             hint="the README lists the supported types")  # fmt: skip


def _check_aliases(new: list[str], known: list[str]) -> None:
    """A root that is an indexed root (or inside one) under another path, through a
    symlink, would index the same files twice under two names: refused, naming the way
    the index already knows them."""
    real_known = {os.path.realpath(r): r for r in known}
    for root in new:
        if root in known:
            continue
        real = os.path.realpath(root)
        for real_root, name in real_known.items():
            if real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep):
                if root == name or root.startswith(name.rstrip(os.sep) + os.sep):
                    continue  # the same path spelled the same way
                same = os.path.join(name, os.path.relpath(real, real_root)).rstrip(os.sep + ".")
                raise UsageError(f"{root} is {same} under another name (a symlink)",
                                 hint=f"index {name} instead")  # fmt: skip


def _clear(index_dir: Path) -> None:
    # The manifest goes first: a kill midway leaves no index (the next run builds one),
    # never a manifest that names deleted files.
    sidecar_path(index_dir).unlink(missing_ok=True)
    database = database_path(index_dir)
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        path.unlink(missing_ok=True)
    for sub in ("spaces", "journal"):
        for p in (index_dir / sub).glob("*"):
            p.unlink()


def _choose_specs(writer: IndexWriter, opts: IndexOptions) -> tuple[SpaceSpec, ...]:
    if opts.profile is None and opts.model is None and writer.spaces:
        return tuple(
            SpaceSpec(s.name, dict(s.encoders), dict(s.options), dict(s.weight))
            for s in writer.spaces.values()
        )
    return spaces_for(opts.profile or "builtin", opts.model)


def _reconcile_spaces(writer: IndexWriter, live: list[LiveSpace], supply: Supply) -> bool:
    """Check recorded spaces against the live ones; add new spaces. True if any was added."""
    added = False
    had_files = bool(writer.files)
    for space in live:
        recorded = writer.spaces.get(space.name)
        if recorded is None:
            writer.add_space(supply.space_info(space))
            added = added or had_files
        else:
            recorded.fingerprints.update(supply.check_compatible(recorded, space))
    live_names = {s.name for s in live}
    extra = [name for name in writer.spaces if name not in live_names]
    if extra:
        raise MismatchError(
            f"index also has space(s) {', '.join(extra)} that this profile does not produce",
            hint="index without --profile/--model to keep the index's own setup, or --rebuild",
        )
    return added


def forget(paths: list[Path], settings: Settings, *, wait: float = 0.0) -> int:
    """Drop every file under ``paths`` (and those roots) from the index; return the count.

    For a folder that should no longer be searched: a plain re-index never drops files
    outside the roots it was given.
    """
    index_dir = settings.index_dir
    with index_lock(index_dir, wait=wait):
        read_manifest(index_dir)  # no index: say so, do not create one
        writer = IndexWriter.open(index_dir)
        try:
            targets = [os.path.abspath(os.fsdecode(p)) for p in paths]
            gone = [p for p in writer.files if under_roots(p, targets)]
            known = [t for t in targets if under_roots(t, writer.roots) or t in writer.roots
                     or any(under_roots(r, [t]) for r in writer.roots)]  # fmt: skip
            if not gone and len(known) < len(targets):
                missing = next(t for t in targets if t not in known)
                roots = sorted(writer.roots, key=lambda r: -len(os.path.commonpath([r, missing])))
                raise UsageError(f"{missing} is not in the index",
                                 hint=f"its roots: {', '.join(roots[:3]) or 'none'}")  # fmt: skip
            for path in gone:
                writer.drop_file(path)
            writer.set_roots([r for r in writer.roots if not under_roots(r, targets)])
            if writer.dirty:
                writer.commit()
        finally:
            writer.close()
    return len(gone)
