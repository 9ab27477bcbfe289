"""``mms doctor``: check an index for damage, and repair what can be repaired.

Checks: the sidecar parses and is of a schema this mms reads; every space's vector file
loads, has the sidecar's dimension and holds every live id; the records agree with each
other (each segment has its file, each ok file its segments); the journal of an
interrupted run; temp files left by killed runs.

Repairs (under the writer lock, then one normal commit):

* damaged or missing sidecar: restore the previous commit (``sidecar.prev.json``, whose
  vector files are kept one commit longer) if it loads cleanly, else start a fresh index
  with the spaces' setup salvaged from the damaged file; then apply every readable
  journal batch on top. What is still missing is embedded by the next ``mms index``.
* a sidecar from a newer schema: refused, never touched.
* a vector file that does not match the sidecar: that space's vectors are dropped and
  the files that had vectors in it forgotten, so the next ``mms index`` re-embeds them.
* inconsistent records: the files concerned are forgotten (re-embedded next run).
* journal and temp files: replayed (or dropped when stale) and deleted.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mmsearch_cli.errors import IndexCorruptError, IndexMissingError
from mmsearch_cli.store.index import (
    PREVIOUS,
    IndexWriter,
    live_ids,
    load_space,
    read_state,
    sidecar_path,
    stale_tmp_files,
)
from mmsearch_cli.store.journal import Journal
from mmsearch_cli.store.lock import index_lock, lock_holder
from mmsearch_cli.store.state import SCHEMA_VERSION, IndexState, SpaceInfo
from mmsearch_cli.store.vectors import VectorIndex

OK, NOTE, DAMAGED, FATAL = "ok", "note", "damaged", "fatal"


@dataclass
class Finding:
    check: str
    level: str  # ok | note (harmless, --repair tidies it) | damaged | fatal (no repair)
    detail: str
    repair: str = ""  # what --repair does about it


@dataclass
class Report:
    index: str
    findings: list[Finding] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return all(f.level in (OK, NOTE) for f in self.findings)

    @property
    def repairable(self) -> bool:
        return any(f.repair for f in self.findings) and not any(
            f.level == FATAL for f in self.findings
        )

    def add(self, check: str, level: str, detail: str, repair: str = "") -> None:
        self.findings.append(Finding(check, level, detail, repair))

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "healthy": self.healthy,
            "findings": [asdict(f) for f in self.findings],
            "repaired": self.repaired,
        }


# -- checks ---------------------------------------------------------------------------


def check(index_dir: Path) -> Report:
    """Inspect without changing anything. Raises IndexMissingError if there is no index."""
    report = Report(str(index_dir))
    if not index_dir.is_dir() or not _has_index_files(index_dir):
        raise IndexMissingError(f"no index at {index_dir}", hint="run `mms index DIR` first")
    busy = lock_holder(index_dir)
    if busy:
        report.add("lock", NOTE, f"an `mms index` is running ({busy}); journal not checked")
    state = _check_sidecar(index_dir, report)
    if state is not None:
        _check_spaces(index_dir, state, report)
        _check_records(state, report)
    if not busy:
        _check_journal(index_dir, state, report)
        tmp = stale_tmp_files(index_dir)
        if tmp:
            report.add("temp files", NOTE, f"{len(tmp)} left by killed runs", "delete them")
    return report


def _has_index_files(index_dir: Path) -> bool:
    names = ("sidecar.json", PREVIOUS, "spaces", "journal")
    return any((index_dir / n).exists() for n in names)


def _check_sidecar(index_dir: Path, report: Report) -> IndexState | None:
    path = sidecar_path(index_dir)
    if not path.exists():
        report.add("sidecar", DAMAGED, "sidecar.json is missing", _restore_plan(index_dir))
        return None
    schema = _schema_of(path)
    if schema is not None and schema > SCHEMA_VERSION:
        report.add(
            "sidecar",
            FATAL,
            f"written by a newer mms (schema {schema}; this one reads {SCHEMA_VERSION}): "
            "upgrade mms; nothing was changed",
        )
        return None
    try:
        state = read_state(index_dir)
    except IndexCorruptError as exc:
        report.add("sidecar", DAMAGED, exc.message, _restore_plan(index_dir))
        return None
    report.add(
        "sidecar",
        OK,
        f"schema {state.schema}, generation {state.generation}: {len(state.files)} files, "
        f"{len(state.segments)} segments",
    )
    return state


def _schema_of(path: Path) -> int | None:
    try:
        data = json.loads(path.read_bytes())
        return int(data["schema"])
    except (OSError, ValueError, KeyError, TypeError):
        head = path.read_bytes()[:200] if path.exists() else b""
        match = re.search(rb'"schema"\s*:\s*(\d+)', head)
        return int(match.group(1)) if match else None


def _restore_plan(index_dir: Path) -> str:
    prev = _previous_state(index_dir)
    plan = (
        f"restore the previous commit (generation {prev.generation}, {len(prev.files)} files)"
        if prev
        else "start a fresh index, keeping the spaces' setup if it can be read"
    )
    pending = sum(len(b) for b in Journal(index_dir / "journal").batches())
    if pending:
        plan += f", then recover {pending} files from the journal"
    return plan + "; the next `mms index` embeds the rest"


def _check_spaces(index_dir: Path, state: IndexState, report: Report) -> None:
    for name, info in state.spaces.items():
        try:
            index = load_space(index_dir, info, live_ids(state, name))
        except IndexCorruptError as exc:
            files = _files_in_space(state, name)
            report.add(
                f"space {name}",
                DAMAGED,
                exc.message,
                f"drop its vectors and forget {len(files)} files so that `mms index` "
                "re-embeds them",
            )
            continue
        report.add(f"space {name}", OK, f"{len(index)} vectors, {info.dim}-d")


def _files_in_space(state: IndexState, space: str) -> set[str]:
    return {seg.file for seg in state.segments.values() if space in seg.spaces}


def inconsistent_files(state: IndexState) -> tuple[set[str], set[int]]:
    """Files whose records disagree, and segments that belong to no file."""
    bad: set[str] = set()
    orphans: set[int] = set()
    for sid, seg in state.segments.items():
        rec = state.files.get(seg.file)
        if rec is None or sid not in rec.segments:
            orphans.add(sid)
        elif any(s not in state.spaces for s in seg.spaces) or not seg.spaces:
            bad.add(seg.file)
    for path, rec in state.files.items():
        # ok files have segments, failed ones none, and every listed segment exists
        if (rec.status == "ok") != bool(rec.segments) or any(
            sid not in state.segments for sid in rec.segments
        ):
            bad.add(path)
    return bad, orphans


def _check_records(state: IndexState, report: Report) -> None:
    bad, orphans = inconsistent_files(state)
    top = max(state.segments, default=-1)
    if bad or orphans or state.next_id <= top:
        parts = [f"{len(bad)} files with inconsistent records"] if bad else []
        parts += [f"{len(orphans)} segments without their file"] if orphans else []
        parts += [f"next id {state.next_id} <= used id {top}"] if state.next_id <= top else []
        report.add(
            "records", DAMAGED, "; ".join(parts), "forget those files and segments (re-embedded)"
        )
    else:
        failed = sum(1 for f in state.files.values() if f.status != "ok")
        report.add("records", OK, f"consistent ({failed} files marked failed)")


def _check_journal(index_dir: Path, state: IndexState | None, report: Report) -> None:
    journal = Journal(index_dir / "journal")
    total = len(journal)
    if not total:
        return
    usable = [b for b in journal.batches() if state and b.base_generation == state.generation]
    files = sum(len(b) for b in usable)
    if usable:
        report.add(
            "journal",
            NOTE,
            f"{len(usable)} batches ({files} files) from an interrupted run; the next "
            "`mms index` replays them",
            "replay them now",
        )
    if total > len(usable) and state is not None:
        report.add("journal", NOTE, f"{total - len(usable)} stale batch files", "delete them")


# -- repairs --------------------------------------------------------------------------


def repair(index_dir: Path) -> Report:
    """Check and repair under the writer lock; return the report of a check afterwards."""
    with index_lock(index_dir, wait=0):
        before = check(index_dir)
        if any(f.level == FATAL for f in before.findings):
            return before
        done: list[str] = []
        state_ok = all(f.level != DAMAGED for f in before.findings if f.check == "sidecar")
        if state_ok:
            _repair_in_place(index_dir, done)
        else:
            _rebuild_state(index_dir, done)
        for tmp in stale_tmp_files(index_dir):
            with contextlib.suppress(OSError):
                tmp.unlink()
                done.append(f"deleted {tmp.name}")
    if not _has_index_files(index_dir):  # started over: nothing left to check
        after = Report(str(index_dir))
        after.add("index", NOTE, "empty: run `mms index DIR` to build it again")
    else:
        after = check(index_dir)
    after.repaired = done
    return after


def _repair_in_place(index_dir: Path, done: list[str]) -> None:
    state = read_state(index_dir)
    vectors: dict[str, VectorIndex] = {}
    broken: list[str] = []
    for name, info in state.spaces.items():
        try:
            vectors[name] = load_space(index_dir, info, live_ids(state, name))
        except IndexCorruptError:
            vectors[name] = VectorIndex.empty(info.dim)
            broken.append(name)
    writer = IndexWriter(index_dir, state, vectors)
    for name in broken:
        files = _files_in_space(state, name)
        for path in files:
            writer.drop_file(path)
        state.spaces[name].count = 0
        writer.dirty = True
        done.append(f"dropped space {name}'s vectors; {len(files)} files will be re-embedded")
    replayed = writer.replay()
    if replayed:
        done.append(f"replayed the journal ({replayed} files)")
    _drop_inconsistent(writer, done)
    if writer.dirty:
        writer.commit()
        done.append(f"committed generation {state.generation}")


def _drop_inconsistent(writer: IndexWriter, done: list[str]) -> None:
    state = writer.state
    bad, orphans = inconsistent_files(state)
    for path in bad:
        rec = state.files.pop(path)
        ids = [s for s in rec.segments if s in state.segments and state.segments[s].file == path]
        for sid in ids:
            state.segments.pop(sid, None)
        writer.remove_vectors(ids)
    for sid in orphans:
        state.segments.pop(sid, None)
    writer.remove_vectors(sorted(orphans))
    top = max(state.segments, default=-1)
    if bad or orphans or state.next_id <= top:
        state.next_id = max(state.next_id, top + 1)
        writer.dirty = True
        done.append(f"forgot {len(bad)} inconsistent files and {len(orphans)} orphan segments")


def _rebuild_state(index_dir: Path, done: list[str]) -> None:
    """The sidecar is damaged or gone: previous commit, else a fresh state; plus journal."""
    side = sidecar_path(index_dir)
    state = _previous_state(index_dir)
    if state is not None:
        vectors = {
            name: load_space(index_dir, info, live_ids(state, name))
            for name, info in state.spaces.items()
        }
        done.append(f"restored the previous commit (generation {state.generation})")
    else:
        state = _fresh_state(side)
        if state is None:
            _start_over(index_dir, done)
            return
        vectors = {name: VectorIndex.empty(info.dim) for name, info in state.spaces.items()}
        done.append("started a fresh index with the recorded spaces")
    if side.exists():  # kept for inspection; never becomes "previous"
        os.replace(side, index_dir / "sidecar.json.damaged")
        done.append("moved the damaged sidecar to sidecar.json.damaged")
    writer = IndexWriter(index_dir, state, vectors)
    recovered = 0
    for batch in writer.journal.batches():
        # Ids are never reused, so a batch whose ids belong to other files is not ours.
        paths = {f.path for f in batch.files}
        clash = any(
            s.id in state.segments and state.segments[s.id].file not in paths
            for s in batch.segments
        )
        if clash or not writer.fits(batch):
            break
        writer.apply(batch)
        recovered += len(batch)
    if recovered:
        done.append(f"recovered {recovered} files from the journal")
    _drop_inconsistent(writer, done)
    writer.commit()
    done.append(f"committed generation {state.generation}; run `mms index` for the rest")


def _load_state_file(path: Path) -> IndexState | None:
    try:
        data = json.loads(path.read_bytes())
        if int(data["schema"]) > SCHEMA_VERSION:
            return None
        return IndexState.from_json(data)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _previous_state(index_dir: Path) -> IndexState | None:
    """The previous commit's state, only if all its vector files load and match."""
    state = _load_state_file(index_dir / PREVIOUS)
    if state is None:
        return None
    try:
        for name, info in state.spaces.items():
            load_space(index_dir, info, live_ids(state, name))
    except IndexCorruptError:
        return None
    return state


def _fresh_state(damaged: Path) -> IndexState | None:
    """An empty state with the profile, roots and spaces read from a damaged sidecar."""
    try:
        text = damaged.read_bytes().decode("utf-8", "replace")
    except OSError:
        return None
    header: dict[str, Any] = {}
    decoder = json.JSONDecoder()
    for key in ("profile", "roots", "spaces"):
        match = re.search(rf'"{key}"\s*:\s*', text)
        if match:
            with contextlib.suppress(ValueError):
                header[key] = decoder.raw_decode(text, match.end())[0]
    try:
        spaces = {
            name: SpaceInfo(**{**raw, "file": None, "count": 0})
            for name, raw in header["spaces"].items()
        }
        state = IndexState(profile=str(header.get("profile", "builtin")), spaces=spaces)
        state.roots = [str(r) for r in header.get("roots", [])]
    except (KeyError, TypeError, AttributeError):
        return None
    return state if spaces else None


def _start_over(index_dir: Path, done: list[str]) -> None:
    """Nothing to rebuild from: remove the index data so `mms index` starts clean."""
    for sub in ("spaces", "journal"):
        shutil.rmtree(index_dir / sub, ignore_errors=True)
    for name in ("sidecar.json", PREVIOUS):
        with contextlib.suppress(FileNotFoundError):
            os.replace(index_dir / name, index_dir / f"{name}.damaged")
    done.append("nothing could be recovered: removed the index data; run `mms index DIR`")


def doctor(index_dir: Path, *, fix: bool = False) -> Report:
    """Entry point for the CLI: check, and repair when asked and needed."""
    report = check(index_dir)
    if fix and (not report.healthy or report.repairable):
        if any(f.level == FATAL for f in report.findings):
            return report
        return repair(index_dir)
    return report
