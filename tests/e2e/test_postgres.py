"""The PostgreSQL + pgvector backend against a real server (the pgserver wheel's): the same
results as the local store, several hosts in one database, the per-root lock, credentials
never shown, a server lost mid-publish, migration without models, refusals.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mmsearch_cli import api
from mmsearch_cli.config import load_settings
from tests.conftest import SAMPLE, copy_tree, invoke, mms_process

NOTES = ["text/hand_tools.md", "text/fluffy_pancakes.txt", "text/coral_reef_fish.md",
         "text/owls.txt", "text/frogs.txt", "text/solar_power.md", "text/windmills.md"]  # fmt: skip
QUERIES = SAMPLE / "queries.jsonl"


def _queries() -> list[dict[str, Any]]:
    return [json.loads(line) for line in QUERIES.read_text().splitlines() if line.strip()]


def _ranked(q: dict[str, Any], **where: Any) -> list[str]:
    media = next((SAMPLE / q[k] for k in ("image", "audio", "video") if k in q), None)
    hits = api.query(q.get("text"), media=media, k=10, **where)
    return [h.path for h in hits]


def _content(url: str) -> list[tuple[Any, ...]]:
    """What the database holds, without its surrogate ids: a clean run's equals it."""
    import psycopg

    with psycopg.connect(url) as con:
        rows = con.execute(
            "SELECT src.host, src.root, f.path, f.size, f.mtime_ns, f.status, f.hash, "
            "s.local_id, s.kind, s.text, s.body, s.tsv::text, s.dl, "
            "md5(coalesce(s.v_1::text, '') || coalesce(s.v_2::text, '')) "
            "FROM mms_files f JOIN mms_sources src ON src.id = f.source_id "
            "LEFT JOIN mms_segments s ON s.file_id = f.id ORDER BY 1, 2, 3, 8"
        ).fetchall()
        stats = con.execute("SELECT host, root, stats FROM mms_sources ORDER BY 1, 2").fetchall()
        postings = con.execute(
            "SELECT src.host, src.root, f.path, s.local_id, p.lex, p.f, p.dl "
            "FROM mms_postings p JOIN mms_segments s ON s.id = p.seg "
            "JOIN mms_files f ON f.id = s.file_id JOIN mms_sources src ON src.id = f.source_id "
            "ORDER BY 1, 2, 3, 4, 5"
        ).fetchall()
        orphans = con.execute(
            "SELECT count(*) FROM mms_postings p WHERE NOT EXISTS "
            "(SELECT 1 FROM mms_segments s WHERE s.id = p.seg)"
        ).fetchone()
    assert orphans == (0,)
    return [*rows, *stats, *postings]


@pytest.fixture(scope="module")
def published(pg_server: Any, sample_index: tuple[Path, Path], tmp_path_factory: Any) -> str:
    """The session's sample_data index published with --from-local, models out of reach:
    migration reads vectors and records, it embeds nothing."""
    _, index_dir = sample_index
    url = pg_server.new_database("sample")
    empty = tmp_path_factory.mktemp("no-models")
    res = invoke("index", "--backend", url, "--from-local", index_dir, "--json", "-q",
                 env={"MMS_MODEL_DIR": str(empty)})  # fmt: skip
    assert res.code == 0, res.err
    data = json.loads(res.out)
    assert data["backend"]["files"] > 200 and data["backend"]["segments"] > 300
    assert pg_server.password not in res.text + res.err
    return url


def test_queries_match_the_local_store(published: str, sample_index: tuple[Path, Path]) -> None:
    _, index_dir = sample_index
    local = load_settings(index_dir=index_dir)
    backend = load_settings(index_dir=index_dir, backend=published)
    overlaps = []
    for q in _queries():
        mine = _ranked(q, settings=local)
        theirs = _ranked(q, settings=backend)
        overlap = len(set(mine) & set(theirs)) / max(len(mine), 1)
        assert overlap >= 0.9, (q["id"], mine, theirs)
        overlaps.append(overlap)
    assert sum(overlaps) / len(overlaps) >= 0.95


def test_filters_run_in_sql_with_the_same_results(
    published: str, sample_index: tuple[Path, Path]
) -> None:
    _, index_dir = sample_index
    local = load_settings(index_dir=index_dir)
    backend = load_settings(index_dir=index_dir, backend=published)
    for where in ({"types": frozenset({"image"}), "path_glob": "*tools*"},
                  {"types": frozenset({"text", "audio"})}, {"min_size": 100_000},
                  {"path_glob": "*/images/[!t]*"}):  # fmt: skip
        for text in ("a hammer", "birds singing", "solar panels on a roof"):
            q = {"text": text}
            assert _ranked(q, settings=backend, **where) == _ranked(q, settings=local, **where)


def test_eval_quality_is_the_local_stores(published: str, sample_index: tuple[Path, Path]) -> None:
    _, index_dir = sample_index
    local = api.evaluate(QUERIES, settings=load_settings(index_dir=index_dir))
    remote = api.evaluate(QUERIES, settings=load_settings(index_dir=index_dir, backend=published))

    def ndcg(report: Any) -> float:
        return float(next(iter(report.summaries.values()))["groups"]["all"]["nDCG@10"])

    assert abs(ndcg(local) - ndcg(remote)) <= 0.01


def test_info_and_doctor_read_the_database_and_never_show_the_password(
    published: str, pg_server: Any
) -> None:
    res = invoke("info", "--backend", published, "--json")
    assert res.code == 0, res.err
    data = json.loads(res.out)
    assert data["files"] > 200 and data["segments"] > 300
    assert data["index"].startswith("postgresql://mms:***@")
    assert {s["name"] for s in data["spaces"]} >= {"text", "visual", "audio"}
    table = invoke("info", "--backend", published)
    doctor = invoke("doctor", "--backend", published)
    assert doctor.code == 0, doctor.out
    for out in (res, table, doctor):
        assert pg_server.password not in out.text + out.err


def test_postings_rank_as_the_tsvectors_do(published: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """BM25 from the postings (word queries) equals BM25 from the tsvectors (the phrase
    path), in order and score, with plus and minus words and filters."""
    from mmsearch_cli.store.db import FileFilter
    from mmsearch_cli.store.postgres import lexical
    from mmsearch_cli.store.postgres.reader import PgReader

    reader = PgReader(published)
    only_text = reader.allowed_segments(FileFilter(types=frozenset({"text"})))
    cases: list[tuple[str, dict[str, Any]]] = [
        ("owls hunting at night", {}), ("solar power panels", {}), ("running runs run", {}),
        ("frog", {"minus": ["tree"]}), ("fish", {"plus": ["coral reef"]}),
        ("water", {"allowed": only_text}),
    ]  # fmt: skip
    try:
        fast = [reader.lexical(text, 20, **more) for text, more in cases]
        monkeypatch.setattr(lexical.LexicalQuery, "words_only", property(lambda self: False))
        slow = [reader.lexical(text, 20, **more) for text, more in cases]
    finally:
        reader.close()
    for (text, _), mine, theirs in zip(cases, fast, slow, strict=True):
        assert mine, text
        assert [i for i, _ in mine] == [i for i, _ in theirs], text
        assert all(abs(a - b) < 1e-9 for (_, a), (_, b) in zip(mine, theirs, strict=True)), text


def test_a_schema_1_database_is_migrated_with_its_postings(
    pg_server: Any, sample_index: tuple[Path, Path]
) -> None:
    import psycopg

    url = pg_server.new_database("schema1")
    assert invoke("index", "--backend", url, "--from-local", sample_index[1], "-q").code == 0
    postings = ("SELECT lex, s.local_id, p.f, p.dl FROM mms_postings p "
                "JOIN mms_segments s ON s.id = p.seg ORDER BY 1, 2")  # fmt: skip
    with psycopg.connect(url, autocommit=True) as con:
        made = con.execute(postings).fetchall()
        assert len(made) > 1000
        # back to schema 1 as it shipped: no postings
        con.execute("DROP TABLE mms_postings; DROP FUNCTION mms_drop_postings() CASCADE; "
                    "UPDATE mms_meta SET value = '1' WHERE key = 'schema'")  # fmt: skip
    res = invoke("query", "a hammer", "--backend", url)
    assert res.code == 3 and "older schema" in res.err
    res = invoke("index", "--backend", url, "--from-local", sample_index[1], "--json", "-q")
    assert res.code == 0, res.err
    assert set(json.loads(res.out)["backend"]["roots"].values()) == {"unchanged"}
    with psycopg.connect(url, autocommit=True) as con:
        assert con.execute(postings).fetchall() == made
        assert con.execute("SELECT value FROM mms_meta WHERE key = 'schema'").fetchone() == (2,)
    assert invoke("query", "a hammer", "--backend", url).code == 0


def test_wrong_password_is_one_line_exit_3_without_the_password(published: str) -> None:
    wrong = published.replace("mms:", "mms:Hunter2Secret", 1)
    for cmd in (["query", "a hammer"], ["info"], ["index", str(SAMPLE / "text")]):
        proc = mms_process(*cmd, "--backend", wrong)
        err = proc.stderr.decode()
        assert proc.returncode == 3, err
        assert len(err.strip().splitlines()) == 1, err
        assert "password authentication failed" in err
        assert "Hunter2Secret" not in err + proc.stdout.decode()


def test_a_server_that_is_not_there_is_exit_3() -> None:
    proc = mms_process("query", "a hammer", "--backend", "postgresql://u:pw@127.0.0.1:9/x")
    assert proc.returncode == 3
    assert len(proc.stderr.decode().strip().splitlines()) == 1


def test_a_newer_schema_is_refused(pg_server: Any, sample_index: tuple[Path, Path]) -> None:
    url = pg_server.new_database("newer")
    assert invoke("index", "--backend", url, "--from-local", sample_index[1], "-q").code == 0
    import psycopg

    with psycopg.connect(url, autocommit=True) as con:
        con.execute("UPDATE mms_meta SET value = '99' WHERE key = 'schema'")
    for cmd in (["query", "a hammer"], ["index", "--from-local", str(sample_index[1])]):
        res = invoke(*cmd, "--backend", url)
        assert res.code == 3
        assert "newer mms" in res.err


def test_other_models_in_a_space_are_refused_with_exit_8(
    pg_server: Any, sample_index: tuple[Path, Path]
) -> None:
    url = pg_server.new_database("models")
    assert invoke("index", "--backend", url, "--from-local", sample_index[1], "-q").code == 0
    import psycopg

    with psycopg.connect(url, autocommit=True) as con:  # as if another machine's models
        con.execute("UPDATE mms_spaces SET info = jsonb_set(info, '{encoders,text}', "
                    "'\"another-model\"') WHERE name = 'text'")  # fmt: skip
    res = invoke("index", "--backend", url, "--from-local", sample_index[1])
    assert res.code == 8, res.err
    assert "other models" in res.err


def _index(root: Path, index_dir: Path, url: str, host: str, *more: str) -> dict[str, Any]:
    res = invoke("index", root, "--index", index_dir, "--backend", url, "--json", "-q", *more,
                 env={"MMS_HOST": host})  # fmt: skip
    assert res.code == 0, res.err
    return dict(json.loads(res.out)["backend"])


def test_index_publishes_changes_and_a_no_op_run_publishes_nothing(
    pg_server: Any, tmp_path: Path
) -> None:
    url = pg_server.new_database("incr")
    root = copy_tree(NOTES, tmp_path / "notes")
    work = tmp_path / "work"
    first = _index(root, work, url, "nas")
    assert first["files"] == len(NOTES) and first["roots"] == {str(root): "published"}
    again = _index(root, work, url, "nas")
    assert again["files"] == 0 and again["roots"] == {str(root): "unchanged"}
    (root / "text/owls.txt").write_text("Barn owls hunt voles at night over meadows.\n")
    (root / "text/frogs.txt").unlink()
    third = _index(root, work, url, "nas")
    assert (third["files"], third["removed"]) == (1, 1)
    hits = api.query("barn owls hunting voles", settings=load_settings(backend=url), k=3)
    assert hits[0].path == str(root / "text/owls.txt")
    assert _content(url) == _content(_clean_copy(pg_server, work, "nas"))


def _clean_copy(pg_server: Any, work: Path, host: str) -> str:
    """The working copy published into a fresh database: what a clean run leaves."""
    url = pg_server.new_database("clean")
    res = invoke("index", "--backend", url, "--from-local", work, "-q", env={"MMS_HOST": host})
    assert res.code == 0, res.err
    return url


def test_two_hosts_share_one_database_and_forget_drops_a_root(
    pg_server: Any, tmp_path: Path
) -> None:
    url = pg_server.new_database("hosts")
    a = copy_tree(NOTES[:4], tmp_path / "a")
    b = copy_tree(NOTES[4:], tmp_path / "b")
    _index(a, tmp_path / "work-a", url, "nas")
    _index(b, tmp_path / "work-b", url, "laptop")
    info = api.info(settings=load_settings(backend=url))
    assert sorted(info["roots"]) == sorted([f"nas:{a}", f"laptop:{b}"])
    both = {h.path for h in api.query("animals", settings=load_settings(backend=url), k=10)}
    assert any(p.startswith(str(a)) for p in both) and any(p.startswith(str(b)) for p in both)
    # From the laptop, with no working copy of it: the NAS's root goes, whole.
    res = invoke("forget", a, "--backend", url, "--index", tmp_path / "none",
                 env={"MMS_HOST": "laptop"})  # fmt: skip
    assert res.code == 0, res.err
    info = api.info(settings=load_settings(backend=url))
    assert info["roots"] == [f"laptop:{b}"]
    # On its own host, forget drops files from the working copy and the database.
    res = invoke("forget", b / "text/frogs.txt", "--backend", url, "--index", tmp_path / "work-b",
                 env={"MMS_HOST": "laptop"})  # fmt: skip
    assert res.code == 0, res.err
    assert api.info(settings=load_settings(backend=url))["files"] == len(NOTES[4:]) - 1


def test_a_second_indexer_of_the_same_root_gets_exit_4(pg_server: Any, tmp_path: Path) -> None:
    from mmsearch_cli.store.postgres.publish import Publisher

    url = pg_server.new_database("lock")
    root = copy_tree(NOTES[:2], tmp_path / "notes")
    other = copy_tree(NOTES[2:4], tmp_path / "other")
    with Publisher(url, "nas") as first:  # an indexer of `root` on host "nas", mid-run
        first.lock([str(root)])
        env = {"MMS_HOST": "nas"}
        busy = mms_process("index", root, "--index", tmp_path / "w2", "--backend", url, env=env)
        assert busy.returncode == 4, busy.stderr.decode()
        assert "another mms process" in busy.stderr.decode()
        # Another root, or the same path on another host, is not blocked.
        assert _index(other, tmp_path / "w3", url, "nas")["files"] == 2
        assert _index(root, tmp_path / "w4", url, "laptop")["files"] == 2


def test_a_server_lost_mid_publish_is_exit_3_and_the_next_run_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mmsearch_cli.errors import ExitStatus, MmsError
    from mmsearch_cli.store.postgres import connect, publish
    from mmsearch_cli.store.postgres.url import host_name
    from tests.support.pg import pg_bin, pg_server

    if pg_bin() is None:
        pytest.skip("the pgserver wheel is not installed")
    root = copy_tree(NOTES, tmp_path / "notes")
    work = tmp_path / "work"
    assert invoke("index", root, "--index", work, "-q").code == 0  # embedded once, locally
    monkeypatch.setattr(publish, "BATCH_FILES", 2)  # several transactions
    monkeypatch.setattr(connect, "BACKOFF", 0.05)
    with pg_server() as server:  # its own server: this test stops it
        url = server.new_database("fault")
        calls: list[str] = []

        def stop_once(done: int, total: int, what: str) -> None:
            if what == "publishing" and not calls:
                calls.append(what)
                server.stop("immediate")

        settings = load_settings(index_dir=work, backend=url)
        with pytest.raises(MmsError) as err:
            api.index([root], settings=settings, progress=stop_once)
        assert err.value.status == ExitStatus.INDEX_MISSING
        assert server.password not in str(err.value)
        server.start()
        summary = api.index([root], settings=settings)
        assert summary.to_dict()["backend"]["roots"] == {str(root): "published"}
        assert 0 < summary.to_dict()["backend"]["files"] < len(NOTES)  # the rest was in
        assert _content(url) == _content(_clean_copy(server, work, host_name()))


def test_the_local_path_never_imports_psycopg(sample_index: tuple[Path, Path]) -> None:
    _, index_dir = sample_index
    code = (
        "import sys; import mmsearch_cli; from mmsearch_cli.cli.app import run; "
        f"c = run(['query', 'a hammer', '--index', {str(index_dir)!r}, '--no-server', '-q', "
        "'--format', 'jsonl']); "
        "assert c == 0, c; assert 'psycopg' not in sys.modules, 'psycopg imported'"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=300,
                          env={**os.environ, "MMS_BACKEND": ""})  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
