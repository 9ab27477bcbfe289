"""Fault injection on the store and the index runs: kills, a full disk, concurrent
writers and readers, damaged manifests, databases and vector files, `mms doctor`, pickled
journals, and the conversion of an index of the previous format.

The 50-kill crash loop is `python benchmarks/crash_loop.py`; a 3-kill loop runs here.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mmsearch_cli.store import db
from mmsearch_cli.store.index import IndexReader
from mmsearch_cli.store.manifest import database_path, sidecar_path
from tests.conftest import MMS, ROOT, SAMPLE, copy_tree, invoke, mms_process

NOTES = ["text/hand_tools.md", "text/fluffy_pancakes.txt", "text/coral_reef_fish.md"]
MORE_NOTES = ["text/owls.txt", "text/frogs.txt", "text/solar_power.md", "text/windmills.md"]


def _images(folder: str, n: int) -> list[str]:
    return sorted(p.relative_to(SAMPLE).as_posix() for p in (SAMPLE / folder).iterdir())[:n]


def _summary(*args: str | os.PathLike[str]) -> dict:
    res = invoke("index", *args, "--json", "-q")
    assert res.code in (0, 6), res.err
    return json.loads(res.out)


def _crash_loop_module():  # benchmarks/ is not a package
    spec = importlib.util.spec_from_file_location("crash_loop", ROOT / "benchmarks/crash_loop.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["crash_loop"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _index_files(index: Path) -> dict[str, bytes]:
    """What an index has committed, for "left intact" comparisons: the manifest and the
    vector files byte for byte, and the database's content (its SQL dump: SQLite may
    leave unused pages in its WAL, which are not content)."""
    files = [sidecar_path(index), *sorted((index / "spaces").iterdir())]
    out = {p.name: p.read_bytes() for p in files}
    con = sqlite3.connect(f"file:{database_path(index)}?mode=ro", uri=True)
    out["database"] = "\n".join(con.iterdump()).encode()
    con.close()
    return out


def _files(index: Path) -> set[str]:
    reader = IndexReader.open(index)
    try:
        return {rec.path for rec in db.iter_files(reader.con)}
    finally:
        reader.close()


def _generation(index: Path) -> int:
    reader = IndexReader.open(index)
    try:
        return reader.generation
    finally:
        reader.close()


def _sql(index: Path, *statements: str) -> None:
    """Edit an index's database by hand, as damage would."""
    con = sqlite3.connect(database_path(index))
    for statement in statements:
        con.execute(statement)
    con.commit()
    con.close()


# -- crash safety ---------------------------------------------------------------------


def test_short_crash_loop_recovers_from_every_kill_and_matches_an_uninterrupted_run(
    tmp_path: Path,
) -> None:
    crash_loop = _crash_loop_module()
    tally, diffs, worst = crash_loop.crash_loop(
        3, tmp_path, seed=7, n_images=3, n_texts=6, log=lambda _: None
    )
    assert tally.kills == 3 and tally.recoveries == 3, tally
    assert tally.lost_beyond_batch == 0 and tally.manual_repairs == 0, tally.problems
    assert not diffs and worst <= 1e-6


def test_a_killed_first_run_resumes_from_its_journal_and_its_stale_lock_is_taken_over(
    tmp_path: Path,
) -> None:
    """The first run has no manifest yet: its journal must replay once the spaces exist
    (it used to fail every later run with KeyError: 'text')."""
    root = copy_tree(_images("images/fishes", 24), tmp_path / "media")
    index = tmp_path / "index"
    proc = subprocess.Popen([*MMS, "index", str(root), "--index", str(index), "-q"])
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if any((index / "journal").glob("batch-*.npz")):
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before its first batch was journaled"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (index / "lock").read_text().strip() == str(proc.pid)  # a dead holder's lock
    assert not sidecar_path(index).exists()
    done = _summary(root, "--index", index)  # no --wait: the stale lock is free at once
    assert done["resumed"] >= 16 and done["resumed"] + done["added"] == 24
    assert invoke("doctor", "--index", index).code == 0


# A long document (~20 chunks): it makes the vector file larger than SQLite's 32 kB
# shared-memory file, so a size limit can fall between the two.
BASE_DOC = "text/pep-0256_docstring_processing_framework.txt"


def _vector_file_size(index: Path) -> int:
    return sum(p.stat().st_size for p in (index / "spaces").glob("text.*.vec"))


def _commit_fails(index: Path) -> int:
    """A file size limit past SQLite's 32 kB shared-memory file and a short note's journal
    batch, but not one byte more than the vector file: a run adding a note journals its
    batch, then cannot append its vectors, so it cannot commit."""
    limit = _vector_file_size(index) + 1
    assert limit > 33_000, "index BASE_DOC first"
    return limit


def _limited(limit: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_full_disk_during_save_leaves_the_previous_index_intact(tmp_path: Path) -> None:
    """RLIMIT_FSIZE makes writes past ``limit`` bytes fail with EFBIG, as a full disk
    would (Python ignores SIGXFSZ). Small limits break the journal write; larger ones the
    append to the vector file, which is then cut back to its committed rows."""
    root = copy_tree([*NOTES, *MORE_NOTES, BASE_DOC], tmp_path / "media")
    index = tmp_path / "index"
    _summary(root, "--index", index)
    before = _index_files(index)
    copy_tree(["text/owls.txt"], tmp_path / "extra")
    shutil.copy(tmp_path / "extra/text/owls.txt", root / "text/owls_again.txt")
    broken_writes = set()
    # 1 kB: not even the database's shared-memory file fits; _commit_fails: the journal
    # batch fits, the vectors appended to the vector file do not.
    for limit in (1_000, _commit_fails(index)):
        proc = subprocess.run(
            [*MMS, "index", str(root), "--index", str(index), "-q"],
            capture_output=True, preexec_fn=_limited(limit), timeout=300,
        )  # fmt: skip
        err = proc.stderr.decode()
        assert proc.returncode == 3, err
        assert err.count("\n") == 1 and "cannot write" in err, err
        assert any(w in err for w in ("File too large", "short write", "disk I/O")), err
        assert "Traceback" not in err and "the previous index is intact" in err
        broken_writes.add("vectors" if ".vec" in err else "journal or database")
        assert _index_files(index) == before  # byte for byte
        res = invoke("query", "owls hunting at night", "-k", "1", "--index", index)
        assert res.code == 0, res.err
    assert broken_writes == {"journal or database", "vectors"}
    assert not list(index.rglob(".*.tmp"))  # temp files were removed
    done = _summary(root, "--index", index)  # space again: the run completes
    assert done["added"] + done["resumed"] == 1


def test_a_sidecar_write_past_the_limit_fails_cleanly(tmp_path: Path) -> None:
    code = (
        "import resource, sys; from pathlib import Path\n"
        "from mmsearch_cli.store.atomic import atomic_write_bytes\n"
        "from mmsearch_cli.errors import IndexWriteError\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))\n"
        "try:\n    atomic_write_bytes(Path(sys.argv[1]), b'x' * 5000)\n"
        "except IndexWriteError as e:\n    print(e.message); sys.exit(3)\n"
    )
    target = tmp_path / "sidecar.json"
    target.write_bytes(b"old")
    proc = subprocess.run([sys.executable, "-c", code, str(target)], capture_output=True)
    assert proc.returncode == 3 and b"File too large" in proc.stdout
    assert target.read_bytes() == b"old" and list(tmp_path.iterdir()) == [target]


# -- concurrency ----------------------------------------------------------------------


def test_one_writer_many_readers(tmp_path: Path) -> None:
    """A second `mms index` gets exit 4 (or waits with --wait); queries during a long
    run answer from the last commit; parallel query processes agree."""
    root = copy_tree(NOTES, tmp_path / "media")
    index = tmp_path / "index"
    _summary(root, "--index", index)
    base = _files(index)
    base_gen = _generation(index)
    copy_tree(_images("images/fishes", 16) + _images("images/tools", 12), root)
    writer = subprocess.Popen([*MMS, "index", str(root), "--index", str(index), "-q"])
    deadline = time.monotonic() + 60
    while (index / "lock").read_text().strip() != str(writer.pid):
        assert time.monotonic() < deadline, "the writer never took the lock"
        time.sleep(0.02)
    busy = invoke("index", root, "--index", index)
    assert busy.code == 4 and "another mms process" in busy.err and str(writer.pid) in busy.err
    waiting = subprocess.Popen(
        [*MMS, "index", str(root), "--index", str(index), "-q", "--wait", "300"],
        stderr=subprocess.PIPE,
    )
    parallel = [
        subprocess.Popen(
            [*MMS, "query", "a fish", "-k", "5", "--format", "jsonl", "--index", str(index)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(3)
    ]
    answered_from_base = 0
    while writer.poll() is None:
        gen_before = _generation(index)
        res = invoke("query", "a fish", "-k", "5", "--format", "jsonl", "--index", index)
        assert res.code == 0, res.err
        paths = {json.loads(line)["path"] for line in res.out.splitlines()}
        if gen_before == base_gen == _generation(index):
            assert paths <= base  # nothing half-indexed is visible
            answered_from_base += 1
    assert writer.wait() == 0 and answered_from_base >= 2
    for proc in parallel:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert all(json.loads(line)["path"] for line in out.splitlines())
    assert waiting.wait(timeout=300) == 0, waiting.stderr.read() if waiting.stderr else ""
    assert _files(index) == {str(p) for p in root.rglob("*") if p.is_file()}
    cmd = [*MMS, "query", "a hammer", "-k", "5", "--format", "jsonl", "--index", str(index)]
    readers = [subprocess.Popen(cmd, stdout=subprocess.PIPE) for _ in range(4)]
    results = {p.communicate(timeout=120)[0] for p in readers}
    assert len(results) == 1 and results.pop().count(b"\n") == 5  # four readers agree


# -- damaged indexes and `mms doctor` -------------------------------------------------


@pytest.fixture
def built(tmp_path: Path) -> tuple[Path, Path]:
    """A small index with two commits (9 files)."""
    root = copy_tree([*NOTES, BASE_DOC, *_images("images/tools", 3)], tmp_path / "media")
    index = tmp_path / "index"
    _summary(root, "--index", index)
    copy_tree(MORE_NOTES[:2], root)
    _summary(root, "--index", index)
    return root, index


def _doctor(index: Path, *args: str) -> tuple[int, dict]:
    res = invoke("doctor", "--index", index, "--json", *args)
    return res.code, json.loads(res.out)


def test_doctor_finds_a_healthy_index_healthy(built: tuple[Path, Path]) -> None:
    _, index = built
    code, report = _doctor(index)
    assert code == 0 and report["healthy"]
    checks = {f["check"] for f in report["findings"]}
    assert checks >= {"manifest", "database", "space text", "records"}
    plain = invoke("doctor", "--index", index)
    assert plain.code == 0 and plain.text.rstrip().endswith("healthy")
    assert invoke("doctor", "--index", index.parent / "nothing").code == 3


def test_a_truncated_manifest_is_rewritten_from_the_database_and_nothing_is_lost(
    built: tuple[Path, Path],
) -> None:
    root, index = built
    side = sidecar_path(index)
    side.write_bytes(side.read_bytes()[: side.stat().st_size // 2])
    res = invoke("query", "pancakes", "--index", index)
    assert res.code == 3 and res.err.count("\n") == 1 and "damaged" in res.err
    assert "mms doctor" in res.err
    assert invoke("index", root, "--index", index).code == 3  # never overwrites blindly
    code, report = _doctor(index)
    assert code == 3 and not report["healthy"]
    assert "from the database" in report["findings"][0]["repair"]
    code, report = _doctor(index, "--repair")
    assert code == 0 and report["healthy"], report
    assert any("rewrote the manifest" in a for a in report["repaired"])
    done = _summary(root, "--index", index)
    assert done["added"] == 0 and done["unchanged"] == 9  # every file kept its vectors
    assert invoke("query", "owls", "-k", "1", "--index", index).code == 0


def test_a_damaged_manifest_and_an_interrupted_runs_journal_are_both_recovered(
    built: tuple[Path, Path],
) -> None:
    root, index = built
    from mmsearch_cli.store.journal import Journal

    pending = Journal(index / "journal")
    # A journaled batch of an interrupted run: its file must survive the repair.
    copy_tree(["text/windmills.md"], root)
    proc = subprocess.run(
        [*MMS, "index", str(root), "--index", str(index), "-q"],
        capture_output=True, preexec_fn=_limited(_commit_fails(index)),
    )  # fmt: skip
    assert proc.returncode == 3 and len(pending) == 1, proc.stderr  # journaled, not committed
    sidecar_path(index).write_bytes(b"\x00garbage")
    code, report = _doctor(index, "--repair")
    assert code == 0 and report["healthy"], report
    actions = " ".join(report["repaired"])
    assert "replayed 1 files" in actions and "rewrote the manifest" in actions
    assert str(root / "text/windmills.md") in _files(index)
    done = _summary(root, "--index", index)
    assert done["added"] == 0 and done["unchanged"] == 10


def test_a_damaged_database_starts_an_empty_index_with_the_same_spaces(
    built: tuple[Path, Path],
) -> None:
    root, index = built
    before = _files(index)
    path = database_path(index)
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the main file
    con.close()
    raw = bytearray(path.read_bytes())
    raw[4096:12288] = b"\xff" * 8192  # pages of the tables, overwritten
    path.write_bytes(bytes(raw))
    res = invoke("query", "pancakes", "--index", index)
    assert res.code == 3 and "Traceback" not in res.err and res.err.count("\n") == 1
    code, report = _doctor(index)
    bad = [f for f in report["findings"] if f["level"] == "damaged"]
    assert code == 3 and bad[0]["check"] == "database", report
    code, report = _doctor(index, "--repair")
    assert code == 0 and report["healthy"], report
    assert (index / "meta.sqlite.damaged").exists()
    reader = IndexReader.open(index)
    assert set(reader.spaces) == {"text", "visual", "audio"} and not _files(index)
    reader.close()
    done = _summary(root, "--index", index)  # the files are still there: embedded again
    assert done["added"] == len(before)


def test_a_manifest_from_a_future_schema_is_refused_and_never_touched(
    built: tuple[Path, Path],
) -> None:
    root, index = built
    data = json.loads(sidecar_path(index).read_bytes())
    data["schema"] = 99
    sidecar_path(index).write_text(json.dumps(data))
    before = sidecar_path(index).read_bytes()
    for args in (("query", "owls"), ("index", root), ("info",)):
        res = invoke(*args, "--index", index)
        assert res.code == 3 and "newer mms" in res.err, (args, res.err)
    code, report = _doctor(index, "--repair")
    assert code == 3 and report["findings"][0]["level"] == "fatal" and not report["repaired"]
    assert sidecar_path(index).read_bytes() == before


@pytest.mark.parametrize("damage", ["truncate", "missing", "ids_out_of_order"])
def test_vector_files_not_matching_the_database(built: tuple[Path, Path], damage: str) -> None:
    root, index = built
    before = _files(index)
    vec = next((index / "spaces").glob("text.*.vec"))
    ids = vec.with_suffix(".ids")
    if damage == "truncate":
        vec.write_bytes(vec.read_bytes()[:-5000])
    elif damage == "missing":
        vec.unlink()
    else:
        arr = np.fromfile(ids, dtype="<i8")
        arr[[0, 1]] = arr[[1, 0]]
        arr.tofile(ids)
    if damage != "ids_out_of_order":  # a reader maps only what it needs: it sees the loss
        res = invoke("query", "pancakes", "--index", index)
        assert res.code == 3 and "mms doctor" in res.err and "Traceback" not in res.err
    code, report = _doctor(index)
    bad = [f for f in report["findings"] if f["level"] == "damaged"]
    assert code == 3 and [f["check"] for f in bad] == ["space text"], report
    code, report = _doctor(index, "--repair")
    assert code == 0 and report["healthy"], report
    # Every file had text vectors (images through ConSE): all are forgotten, re-embedded.
    assert not _files(index)
    done = _summary(root, "--index", index)
    assert done["added"] == len(before)
    assert invoke("query", "pancakes", "-k", "1", "--index", index).code == 0


def test_doctor_notes_and_tidies_a_crashed_runs_leftovers(built: tuple[Path, Path]) -> None:
    root, index = built
    (index / ".sidecar.json.abc.tmp").write_bytes(b"{")
    (index / "spaces/.text.9.hnsw.x.tmp").write_bytes(b"")
    (index / "journal").mkdir(exist_ok=True)
    (index / "journal/.batch-00000000.npz.y.tmp").write_bytes(b"")
    copy_tree(["text/windmills.md"], root)
    failed = subprocess.run(
        [*MMS, "index", str(root), "--index", str(index), "-q"],
        capture_output=True, preexec_fn=_limited(_commit_fails(index)),
    )  # fmt: skip
    assert failed.returncode == 3  # it journaled one batch, then could not commit
    code, report = _doctor(index)
    notes = {f["check"]: f for f in report["findings"] if f["level"] == "note"}
    assert code == 0 and report["healthy"]  # leftovers are harmless
    assert "1 batches (1 files)" in notes["journal"]["detail"]
    assert notes["temp files"]["detail"].startswith("3 left")
    code, report = _doctor(index, "--repair")
    assert code == 0 and not [f for f in report["findings"] if f["level"] == "note"]
    assert not list(index.rglob(".*.tmp")) and not list((index / "journal").iterdir())
    assert str(root / "text/windmills.md") in _files(index)


def test_doctor_repairs_inconsistent_records(built: tuple[Path, Path]) -> None:
    root, index = built
    victim = sorted(_files(index))[0]
    _sql(
        index,
        "DELETE FROM segments WHERE file_id = "
        f"(SELECT id FROM files WHERE path = x'{os.fsencode(victim).hex()}')",
        "INSERT INTO segments(id, file_id, kind, text, why, spaces) "
        "VALUES (20000, 999999, 'chunk', '', '{}', '[]')",
    )
    code, report = _doctor(index)
    bad = [f for f in report["findings"] if f["level"] == "damaged"]
    assert code == 3 and bad[-1]["check"] == "records", report
    assert "1 files without segments, 1 orphan segments" in bad[-1]["detail"]
    code, report = _doctor(index, "--repair")
    assert code == 0 and report["healthy"], report
    assert victim not in _files(index)
    assert _summary(root, "--index", index)["added"] == 1


def test_an_index_of_the_previous_format_is_converted_by_the_next_run(
    built: tuple[Path, Path],
) -> None:
    """Schema 1 kept everything in sidecar.json and one hnswlib file per space. The next
    `mms index` converts it in place (one line on stderr); a query before that says what
    to run; nothing is embedded again."""
    root, index = built
    before = _search(index, "owls hunting at night")
    _downgrade_to_schema_1(index)
    res = invoke("query", "owls", "--index", index)
    assert res.code == 3 and res.err.count("\n") == 1 and "run `mms index`" in res.err
    proc = mms_process("index", root, "--index", index, "-q", "--json")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.decode().count("\n") == 1 and "converted index" in proc.stderr.decode()
    summary = json.loads(proc.stdout)
    assert summary["added"] == 0 and summary["updated"] == 0 and summary["unchanged"] == 9
    assert _search(index, "owls hunting at night") == before
    assert (
        not list((index / "spaces").glob("*.hnsw")) and invoke("doctor", "--index", index).code == 0
    )


def _search(index: Path, text: str) -> list[tuple[str, float]]:
    res = invoke("query", text, "-k", "5", "--format", "jsonl", "--index", index)
    assert res.code == 0, res.err
    return [(r["path"], r["score"]) for r in map(json.loads, res.out.splitlines())]


def _downgrade_to_schema_1(index: Path) -> None:
    """Rewrite an index as the previous mms wrote it (the conversion's input)."""
    from mmsearch_cli.store.state import IndexState
    from mmsearch_cli.store.vectors import VectorIndex

    reader = IndexReader.open(index)
    state = IndexState(profile=reader.profile, spaces={}, schema=1,
                       generation=reader.generation, roots=reader.meta["roots"],
                       next_id=reader.meta["next_id"])  # fmt: skip
    segments = list(db.iter_segments(reader.con))
    state.segments = {s.id: s for s in segments}
    for rec in db.iter_files(reader.con):
        rec.segments = [s.id for s in segments if s.file == rec.path]
        state.files[rec.path] = rec
    for name, info in reader.spaces.items():
        vectors = reader.space(name)
        live = [s.id for s in segments if name in s.spaces]
        graph = VectorIndex.empty(info.dim)
        if live:
            graph.add(np.asarray(live), vectors.get(live))
        rel = f"spaces/{name}.{state.generation}.hnsw"
        graph.save(index / rel)
        info.file, info.count = rel, len(live)
        info.vectors, info.rows, info.graph_rows = None, 0, 0
        state.spaces[name] = info
    reader.close()
    for p in (index / "spaces").glob("*.v*"):
        p.unlink()
    for p in (index / "spaces").glob("*.ids"):
        p.unlink()
    for p in index.glob("meta.sqlite*"):
        p.unlink()
    sidecar_path(index).write_text(json.dumps(state.to_json()))


# -- nothing loads code ---------------------------------------------------------------


class _Trap:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[()]]:
        return (Path(self.marker).touch, ())


def test_a_journal_with_a_pickled_object_array_is_refused_safely(
    built: tuple[Path, Path], tmp_path: Path
) -> None:
    root, index = built
    marker = tmp_path / "code-ran"
    evil = np.array([_Trap(str(marker))], dtype=object)
    armed = tmp_path / "armed.npz"
    np.savez(armed, meta=evil, ids__text=np.array([0]), vec__text=evil)
    with np.load(armed, allow_pickle=True) as npz:  # the trap works when pickle is allowed
        npz["meta"]
    assert marker.exists()
    marker.unlink()
    (index / "journal").mkdir(exist_ok=True)
    shutil.copy(armed, index / "journal/batch-00000000.npz")
    code, _report = _doctor(index)
    assert code == 0 and not marker.exists()
    done = _summary(root, "--index", index)
    assert done["resumed"] == 0 and not marker.exists()
    assert not list((index / "journal").iterdir())  # dropped, not kept around


def test_no_pickle_and_no_remote_code_in_the_package() -> None:
    package = ROOT / "mmsearch_cli"
    for path in package.rglob("*.py"):
        source = path.read_text()
        for banned in ("import pickle", "joblib", "allow_pickle=True",
                       "trust_remote_code=True", "import dill"):  # fmt: skip
            assert banned not in source, f"{banned} in {path}"
        # Checkpoints (Places365, MTCNN) are read with the tensors-only unpickler.
        for call in re.findall(r"torch\.load\(([^)]*)\)", source):
            assert "weights_only=True" in call, f"torch.load without weights_only in {path}"


# -- output for cron ------------------------------------------------------------------


def test_a_cron_run_with_nothing_new_is_silent_and_exits_0(tmp_path: Path) -> None:
    root = copy_tree([*NOTES, "broken/empty.jpg"], tmp_path / "media")
    index = tmp_path / "index"
    first = mms_process("index", root, "--index", index, "-q", "--json")
    assert first.returncode == 6  # partial: one file failed, listed by reason
    summary = json.loads(first.stdout)
    assert summary["failures_by_reason"] and summary["failures"][0]["path"].endswith("empty.jpg")
    again = mms_process("index", root, "--index", index, "-q")
    assert (again.returncode, again.stdout, again.stderr) == (0, b"", b"")
    listing = mms_process("info", "--failed", "--index", index)
    assert listing.stdout.startswith(str(root / "broken/empty.jpg").encode() + b"\t")
