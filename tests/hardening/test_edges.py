"""Every input edge of issue 20 (defects 10-13): each bad option value, closed or full
standard streams, untrusted piped rows, and unusable query media get one line and a
documented exit code, never a traceback. Through the real entry point a shell runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SAMPLE, copy_tree
from tests.hardening.bounded import mms

SCRIPT = Path(sys.executable).with_name("mms")

# (arguments, env, words in the message): exit 2 each, nothing on stdout.
BAD_VALUES = {
    "-k 0": (["query", "x", "-k", "0"], {}, "--top"),
    "-k abc": (["query", "x", "-k", "abc"], {}, "--top"),
    "MMS_TOP=0": (["query", "x"], {"MMS_TOP": "0"}, "MMS_TOP"),
    "--candidates 0": (["query", "x", "--candidates", "0"], {}, "--candidates"),
    "--format bogus": (["query", "x", "-f", "bogus"], {}, "unknown format"),
    "--type bogus": (["query", "x", "--type", "bogus"], {}, "unknown type"),
    "--after not-a-date": (["query", "x", "--after", "soon"], {}, "--after"),
    "--min-size 5Q": (["query", "x", "--min-size", "5Q"], {}, "--min-size"),
    "--index is a file": (["query", "x", "--index", "/etc/hostname"], {}, "--index"),
    "--alpha 2": (["rerank", "x", "--alpha", "2"], {}, "--alpha"),
    "--alpha nan": (["rerank", "x", "--alpha", "nan"], {}, "--alpha"),
    "--min-ndcg nan": (["eval", "q.jsonl", "--min-ndcg", "nan"], {}, "--min-ndcg"),
    "--min-mrr 1.5": (["eval", "q.jsonl", "--min-mrr", "1.5"], {}, "--min-mrr"),
    "--max-delete 150": (["index", ".", "--max-delete", "150"], {}, "--max-delete"),
    "--idle-exit soon": (["serve", "--idle-exit", "soon"], {}, "--idle-exit"),
    "--debounce 0": (["serve", "--debounce", "0"], {}, "--debounce"),
    "--min-size infk": (["query", "x", "--min-size", "infk"], {}, "--min-size"),
    "--after year 1 east of UTC": (
        ["query", "x", "--after", "0001-01-01"],
        {"TZ": "Asia/Tokyo"},
        "--after",
    ),
    "--wait nan": (["index", ".", "--wait", "nan"], {}, "--wait"),
    "--wait -5": (["forget", ".", "--wait", "-5"], {}, "--wait"),
    "--audio given a picture": (["query", "--audio", "pic.jpg"], {}, "which is image"),
    "unknown option": (["index", "--bogus"], {}, "--bogus"),
    "missing argument": (["forget"], {}, "Missing argument"),
}


@pytest.mark.parametrize("case", sorted(BAD_VALUES))
def test_every_bad_option_value_is_a_usage_error(case: str, tmp_path: Path) -> None:
    args, env, words = BAD_VALUES[case]
    (tmp_path / "pic.jpg").write_bytes((SAMPLE / "images/tools/hammer5.jpg").read_bytes())
    res = mms(*args, env=env, cwd=tmp_path, stdin=subprocess.DEVNULL)
    err = res.stderr.decode()
    assert res.returncode == 2, err
    assert res.stdout == b"" and len(err.splitlines()) == 1 and words in err
    assert "Traceback" not in err and "internal error" not in err


def test_closed_and_full_standard_streams(sample_index: tuple[Path, Path]) -> None:
    _, index = sample_index
    query = ["query", "a hammer", "--index", str(index)]
    closed = mms(*query, stdout=None, stderr=subprocess.PIPE, capture_output=False,
                 preexec_fn=lambda: os.close(1))  # fmt: skip
    assert closed.returncode == 10
    assert closed.stderr.decode().strip() == (
        "mms: error: standard output is closed: the results cannot be written"
    )
    with open("/dev/full", "wb") as full:
        res = mms(*query, "-f", "jsonl", stdout=full, stderr=subprocess.PIPE, capture_output=False)
    assert res.returncode == 10 and b"No space left on device" in res.stderr
    assert res.stderr.count(b"\n") == 1
    quiet = mms(*query, stdout=subprocess.PIPE, stderr=None, capture_output=False,
                preexec_fn=lambda: os.close(2))  # fmt: skip
    assert quiet.returncode == 0 and b"hammer" in quiet.stdout
    info = mms("info", "--index", str(index), stdout=None, capture_output=False,
               stderr=subprocess.PIPE, preexec_fn=lambda: os.close(1))  # fmt: skip
    assert info.returncode == 10 and b"Traceback" not in info.stderr


ROWS = {
    "path a number": ({"path": 5, "score": 1}, "path is not a non-empty string"),
    "path null": ({"path": None, "score": 1}, "path is not a non-empty string"),
    "score NaN": ({"path": "/a", "score": float("nan")}, "score is not a finite number"),
    "score infinite": ({"path": "/a", "score": float("inf")}, "score is not a finite number"),
    "t not a number": ({"path": "/a", "score": 1, "t": "abc"}, "t is not a number"),
    "modality a number": ({"path": "/a", "score": 1, "modality": 3}, "modality is not a string"),
    "spaces a list": ({"path": "/a", "score": 1, "spaces": [1]}, "spaces is not an object"),
}


@pytest.mark.parametrize("case", sorted(ROWS))
@pytest.mark.parametrize("fmt", ["table", "tsv", "paths"])
def test_rerank_validates_every_piped_field(case: str, fmt: str) -> None:
    row, words = ROWS[case]
    good = {"path": "/x/ok.txt", "score": 0.5, "modality": "text"}
    stdin = (json.dumps(good) + "\n" + json.dumps(row) + "\n").encode()
    res = mms("rerank", "x", "-f", fmt, input=stdin)
    err = res.stderr.decode()
    assert res.returncode == 2 and f"stdin line 2: {words}" in err, err
    assert res.stdout == b"" and "Traceback" not in err


def test_a_row_without_modality_renders_in_every_format(tmp_path: Path) -> None:
    stdin = json.dumps({"path": "/x/a.txt", "score": 0.5}).encode() + b"\n"
    for fmt in ("table", "tsv", "paths", "json"):
        res = mms("rerank", "x", "-f", fmt, "--reranker", str(tmp_path / "none"), input=stdin)
        assert res.returncode in (0, 7), res.stderr  # 7: that reranker folder does not exist
        assert b"Traceback" not in res.stderr and b"KeyError" not in res.stderr


@pytest.mark.parametrize("media", ["bad\u0000name.jpg", "x" * 5000 + ".jpg", "loop.jpg"])
def test_unusable_query_media_in_eval_is_a_usage_error(media: str, tmp_path: Path) -> None:
    (tmp_path / "loop.jpg").symlink_to(tmp_path / "loop.jpg")
    queries = tmp_path / "q.jsonl"
    queries.write_text(json.dumps({"id": "q1", "image": media, "relevant": {"a.jpg": 2}}) + "\n")
    res = mms("eval", str(queries), "--index", str(tmp_path / "idx"))
    err = res.stderr.decode()
    assert res.returncode == 2 and "q.jsonl:1" in err and len(err.splitlines()) == 1, err
    assert "Traceback" not in err


def test_forget_of_a_path_the_index_does_not_hold_is_a_usage_error(tmp_path: Path) -> None:
    lib = copy_tree(["text/owls.txt"], tmp_path / "lib")
    index = tmp_path / "index"
    assert mms("index", str(lib), "--index", str(index), "-q").returncode == 0
    res = mms("forget", str(tmp_path / "elsewhere"), "--index", str(index))
    err = res.stderr.decode()
    assert res.returncode == 2 and "is not in the index" in err and str(lib) in err


def test_file_names_cannot_drive_the_terminal(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "evil\x1b[31mred\x07.txt").write_text("A note about owls at night.\n")
    (lib / "[red]markup.txt").write_text("Another note about owls.\n")
    index = tmp_path / "index"
    assert mms("index", str(lib), "--index", str(index), "-q").returncode == 0
    table = mms("query", "owls", "--index", str(index), "--explain")
    assert table.returncode == 0
    assert b"\x1b" not in table.stdout and b"\x07" not in table.stdout
    assert b"evil\\x1b[31mred\\x07.txt" in table.stdout
    assert b"[red]markup.txt" in table.stdout  # shown as named, not as markup


def test_quiet_is_quiet_for_a_wav_of_nan_samples(tmp_path: Path) -> None:
    import numpy as np
    import soundfile

    lib = tmp_path / "lib"
    lib.mkdir()
    samples = np.full(16000, np.nan, dtype=np.float32)
    samples[::7] = np.inf
    soundfile.write(lib / "broken.wav", samples, 16000, subtype="FLOAT")
    res = mms("index", str(lib), "--index", str(tmp_path / "index"), "-q")
    assert res.returncode in (0, 6) and res.stderr == b"", res.stderr


def test_doctor_during_a_first_index_run_is_not_an_alarm(tmp_path: Path) -> None:
    index = tmp_path / "index"
    (index / "journal").mkdir(parents=True)  # a first run: no manifest committed yet
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from mmsearch_cli.store.lock import "
        f"index_lock\nwith index_lock(Path({str(index)!r})):\n    print('held', flush=True)\n"
        "    time.sleep(60)")], stdout=subprocess.PIPE)  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        res = mms("doctor", "--index", str(index))
        assert res.returncode == 0, res.stdout
        assert b"first `mms index` is in progress" in res.stdout
    finally:
        holder.kill()
        holder.wait()


CONFIGS = {
    "limits not a table": ('limits = "x"\n', {}, "[limits] must be a table"),
    "index a number": ("index = 5\n", {}, "must be a folder path"),
    "threads a list": ("threads = [1]\n", {}, "threads must be a number"),
    "an infinite limit": ("[limits]\nmax_file_seconds = 1.5e400\n", {}, "finite number"),
    "model dir is a file": (
        "",
        {"MMS_MODEL_DIR": "/etc/hostname"},
        "MMS_MODEL_DIR must be a folder",
    ),
    "threads overflow": ("", {"MMS_THREADS": "9" * 400}, "MMS_THREADS"),
    "seconds NaN": ("", {"MMS_MAX_FILE_SECONDS": "nan"}, "MMS_MAX_FILE_SECONDS"),
    "text bytes -1": ("", {"MMS_MAX_TEXT_BYTES": "-1"}, "MMS_MAX_TEXT_BYTES"),
}


@pytest.mark.parametrize("case", sorted(CONFIGS))
def test_every_bad_setting_is_one_line_naming_its_source(case: str, tmp_path: Path) -> None:
    text, env, words = CONFIGS[case]
    config = tmp_path / "config.toml"
    config.write_text(text)
    res = mms("info", env={"MMS_CONFIG": str(config), **env})  # the config's index, if any
    err = res.stderr.decode()
    assert res.returncode == 2, err
    assert len(err.splitlines()) == 1 and words in err and "Traceback" not in err


def test_the_config_files_profile_is_used(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('profile = "no-such-profile"\n')
    lib = copy_tree(["text/owls.txt"], tmp_path / "lib")
    res = mms("index", str(lib), "--index", str(tmp_path / "index"),
              env={"MMS_CONFIG": str(config)})  # fmt: skip
    assert res.returncode == 2 and b"no-such-profile" in res.stderr  # read, and refused


def test_an_audio_only_mp4_is_indexed_as_sound(tmp_path: Path) -> None:
    """Issue 20, defect 19: it was skipped with "no video stream"."""
    import av
    import numpy as np

    lib = tmp_path / "lib"
    lib.mkdir()
    out = av.open(str(lib / "tone.mp4"), "w")
    stream = out.add_stream("aac", rate=16000)
    stream.layout = "mono"
    wave = (0.3 * np.sin(2 * np.pi * 440 * np.arange(48000) / 16000)).astype(np.float32)
    for i in range(0, len(wave), 1024):
        frame = av.AudioFrame.from_ndarray(wave[None, i : i + 1024], format="flt", layout="mono")
        frame.sample_rate = 16000
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)
    out.close()
    res = mms("index", str(lib), "--index", str(tmp_path / "index"), "--json")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["added"] == 1 and summary["failed"] == 0


def test_failure_reasons_aggregate_across_files(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    for name in ("one.mp4", "two.mp4", "one.mp3", "two.mp3"):
        (lib / name).write_bytes(b"not media at all " * 64)
    res = mms("index", str(lib), "--index", str(tmp_path / "index"), "--json")
    assert res.returncode == 6
    reasons = json.loads(res.stdout)["failures_by_reason"]
    assert sorted(reasons.values()) == [2, 2], reasons  # names are not part of a reason


def test_sigterm_ends_a_run_like_ctrl_c_and_the_next_run_resumes(tmp_path: Path) -> None:
    """Issue 20, defect 20: SIGTERM ended without a word; a first run stopped before its
    first commit was then called DAMAGED by doctor."""
    import signal
    import time

    notes = [f"text/{p.name}" for p in sorted((SAMPLE / "text").iterdir())]
    lib, index = copy_tree(notes, tmp_path / "lib"), tmp_path / "index"
    cmd = [str(SCRIPT), "index", str(lib), "--index", str(index), "-q"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, env={**os.environ, "MMS_NO_SERVER": "1"})
    deadline = time.monotonic() + 120
    while not (index / "journal").is_dir() or not any((index / "journal").iterdir()):
        assert proc.poll() is None and time.monotonic() < deadline, "no batch journaled"
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err.decode().strip() == "mms: interrupted"
    doctor = mms("doctor", "--index", str(index))
    assert doctor.returncode == 0, doctor.stdout
    again = mms("index", str(lib), "--index", str(index), "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["failed"] == 0


def test_a_root_reached_through_a_symlink_is_not_indexed_twice(tmp_path: Path) -> None:
    lib = copy_tree(["text/owls.txt"], tmp_path / "lib")
    (tmp_path / "alias").symlink_to(lib)
    index = tmp_path / "index"
    assert mms("index", str(lib), "--index", str(index), "-q").returncode == 0
    res = mms("index", str(tmp_path / "alias" / "text"), "--index", str(index))
    err = res.stderr.decode()
    assert res.returncode == 2 and f"is {lib / 'text'} under another name" in err, err
    assert mms("index", str(lib), "--index", str(index), "-q").returncode == 0  # as known
