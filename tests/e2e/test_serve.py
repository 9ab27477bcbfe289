"""`mms serve`: a real server process on a real index, answered by real clients.

The served answer must be the in-process answer, byte for byte; a missing, stale, hung,
foreign-version or busy server must never cost a user their results.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mmsearch_cli.serve.protocol import PROTOCOL, encode, socket_path
from tests.conftest import CORPUS, MMS, SAMPLE, copy_tree, invoke, mms_process


class Served:
    """A running ``mms serve`` process and where it logs."""

    def __init__(self, index: Path, log: Path, *extra: str, env: dict[str, str] | None = None):
        self.index, self.log = index, log
        self.proc = subprocess.Popen(
            [*MMS, "serve", "--index", str(index), "--log", str(log), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **(env or {})},
        )  # fmt: skip
        self.socket = socket_path(index)
        deadline = time.monotonic() + 120
        while invoke("serve", "status", "--index", index).code != 0:
            assert self.proc.poll() is None, self.proc.stderr.read().decode()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "server did not come up"
            time.sleep(0.2)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)

    def lines(self) -> list[str]:
        return self.log.read_text().splitlines()

    def logged(self, needle: str, times: int = 1, timeout: float = 10) -> bool:
        """The log has ``needle`` on ``times`` lines (it is written after each reply)."""
        deadline = time.monotonic() + timeout
        while sum(needle in ln for ln in self.lines()) < times:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True


@pytest.fixture
def served(sample_index: tuple[Path, Path], tmp_path: Path) -> Iterator[Served]:
    _, index = sample_index
    server = Served(index, tmp_path / "serve.log")
    yield server
    server.stop()


def _queries() -> list[list[str]]:
    """Every sample query (text, image, audio, video), and the options that change rows."""
    out: list[list[str]] = []
    for line in (SAMPLE / "queries.jsonl").read_text().splitlines():
        q = json.loads(line)
        for kind in ("image", "audio", "video"):
            if kind in q:
                out.append([f"--{kind}", str(SAMPLE / q[kind])])
        if "text" in q:
            out.append([q["text"]])
    out += [["a hammer", "--explain"], ["a hammer", "--segments"], ["music", "--type", "audio"],
            ["tools", "--path", "*tools*", "--min-size", "1k"], ["hammer", "--space", "lexical"],
            ["tape measure", "--rerank", "--candidates", "20"]]  # fmt: skip
    return out


def test_served_results_are_the_in_process_results_byte_for_byte(served: Served) -> None:
    for query in _queries():
        args = ["query", *query, "--index", str(served.index), "--format", "json", "-k", "20"]
        via_server = invoke(*args)
        alone = invoke(*args, "--no-server")
        assert via_server.code == alone.code == 0, (query, via_server.err, alone.err)
        assert via_server.out == alone.out, query
    assert served.logged(" query ", len(_queries()))  # the server answered, not a fallback


def test_rerank_and_eval_are_served_with_the_same_answers(served: Served, tmp_path: Path) -> None:
    first = invoke("query", "a hammer", "--index", served.index, "-f", "jsonl", "-k", "30",
                   "--no-server")  # fmt: skip
    args = ["rerank", "a hammer", "-k", "10"]
    env = {"MMS_INDEX": str(served.index)}
    with_server = subprocess.run([*MMS, *args], input=first.out, capture_output=True,
                                 env={**os.environ, **env}, check=False)  # fmt: skip
    alone = subprocess.run([*MMS, *args, "--no-server"], input=first.out, capture_output=True,
                           env={**os.environ, **env}, check=False)  # fmt: skip
    assert with_server.returncode == alone.returncode == 0, with_server.stderr
    assert with_server.stdout == alone.stdout
    assert served.logged(" rerank ")

    text_queries = [ln for ln in (SAMPLE / "queries.jsonl").read_text().splitlines()
                    if '"text"' in ln][:6]  # fmt: skip
    queries = tmp_path / "queries.jsonl"
    queries.write_text("\n".join(text_queries) + "\n")
    ev = ["eval", queries, "--root", SAMPLE, "--index", served.index, "-f", "json",
          "--per-query", "--compare"]  # fmt: skip
    a, b = invoke(*ev), invoke(*ev, "--no-server")
    assert a.code == b.code == 0, a.err

    def figures(out: bytes) -> dict[str, object]:
        data = json.loads(out)
        for system in data["systems"].values():  # latency is the one thing that differs
            for group in system["groups"].values():
                group.pop("p50_ms"), group.pop("p95_ms")
        return data

    assert figures(a.out) == figures(b.out)
    assert served.logged(" eval ")


def test_the_socket_is_private_and_status_and_stop_work(served: Served) -> None:
    mode = os.stat(served.socket).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
    res = invoke("serve", "status", "--index", served.index, "--json")
    assert res.code == 0
    status = json.loads(res.out)
    assert status["pid"] == served.proc.pid and status["protocol"] == PROTOCOL
    assert invoke("serve", "stop", "--index", served.index).code == 0
    assert served.proc.wait(timeout=60) == 0
    assert not served.socket.exists()
    assert invoke("serve", "status", "--index", served.index).code == 3


def test_a_second_server_for_the_index_exits_4(served: Served) -> None:
    second = mms_process("serve", "--index", served.index, timeout=120)
    assert second.returncode == 4
    assert b"already running" in second.stderr and b"Traceback" not in second.stderr
    assert invoke("serve", "status", "--index", served.index).code == 0  # first one unharmed


def test_malformed_requests_get_an_error_reply_and_the_server_keeps_serving(
    served: Served,
) -> None:
    def ask(raw: bytes) -> list[dict[str, object]]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(30)
            sock.connect(str(served.socket))
            sock.sendall(raw)
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        return [json.loads(line) for line in data.splitlines()]

    assert ask(b"this is not json\n")[-1]["ok"] is False
    assert ask(encode({"v": PROTOCOL, "op": "query", "args": {"nonsense": 1}}))[-1] == {
        "ok": False,
        "error": {"status": 2, "message": "unknown query field(s): nonsense", "hint": None},
    }
    assert (
        ask(encode({"v": PROTOCOL, "op": "query", "args": {"text": "x", "k": "many"}}))[-1]["ok"]
        is False
    )
    assert ask(encode({"v": PROTOCOL, "op": "explode"}))[-1]["ok"] is False
    assert ask(encode({"v": PROTOCOL + 1, "op": "status"})) == [
        {"v": PROTOCOL, "accepted": False, "error": "protocol"}
    ]
    ok = invoke("query", "a hammer", "--index", served.index, "-f", "paths")
    assert ok.code == 0 and b"hammer" in ok.out
    assert served.proc.poll() is None


def test_a_killed_servers_socket_is_no_obstacle(sample_index: tuple[Path, Path], tmp_path: Path):
    _, index = sample_index
    server = Served(index, tmp_path / "a.log")
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(timeout=30)
    assert server.socket.exists()  # stale: nobody answers on it
    started = time.monotonic()
    res = invoke("query", "a hammer", "--index", index, "-f", "paths")
    assert res.code == 0 and b"hammer" in res.out  # answered in-process
    assert time.monotonic() - started < 30
    again = Served(index, tmp_path / "b.log")  # replaces the stale socket
    try:
        assert invoke("query", "a hammer", "--index", index, "-f", "paths").out == res.out
        assert again.logged(" query ")
    finally:
        assert again.stop() == 0


def test_a_server_of_another_version_or_a_hung_one_is_skipped(
    sample_index: tuple[Path, Path], tmp_path: Path
) -> None:
    """A stand-in server (tests only) that answers as a future mms would, then one that
    accepts connections and never answers: the client must answer in-process."""
    _, index = sample_index
    index_copy = tmp_path / "index"
    shutil.copytree(index, index_copy, ignore=shutil.ignore_patterns("serve.sock*"))
    path = socket_path(index_copy)
    path.parent.mkdir(parents=True, exist_ok=True)
    expected = invoke("query", "a hammer", "--index", index_copy, "-f", "json", "--no-server")
    for behaviour in ("future", "hung"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
            listener.bind(str(path))
            listener.listen(4)
            if behaviour == "future":
                import threading

                def answer() -> None:
                    conn, _ = listener.accept()
                    conn.recv(65536)
                    conn.sendall(encode({"v": PROTOCOL + 1, "accepted": True}))
                    conn.close()

                threading.Thread(target=answer, daemon=True).start()
            started = time.monotonic()
            res = invoke("query", "a hammer", "--index", index_copy, "-f", "json")
            assert res.code == 0 and res.out == expected.out, behaviour
            assert time.monotonic() - started < 20
        path.unlink()


def test_the_client_path_imports_nothing_heavy(served: Served) -> None:
    code = (
        "import sys; from mmsearch_cli.cli.app import run; "
        f"status = run(['query', 'a hammer', '--index', {str(served.index)!r}, '-f', 'json']); "
        "heavy = [m for m in ('numpy', 'onnxruntime', 'hnswlib', 'torch', 'rich') "
        "if m in sys.modules]; print(status, heavy, file=sys.stderr)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.decode().strip().splitlines()[-1] == "0 []"
    assert json.loads(proc.stdout)[0]["path"].endswith(".webp")


def test_the_server_follows_new_commits(sample_index: tuple[Path, Path], tmp_path: Path):
    lib = copy_tree(["text/hand_tools.md"], tmp_path / "lib")
    index = tmp_path / "index"
    assert invoke("index", lib, "--index", index, "-q").code == 0
    server = Served(index, tmp_path / "serve.log")
    try:
        before = invoke("query", "fluffy pancakes with buttermilk", "--index", index, "-f", "paths")
        copy_tree(["text/fluffy_pancakes.txt"], lib)
        assert invoke("index", lib, "--index", index, "-q").code == 0
        after = invoke("query", "fluffy pancakes with buttermilk", "--index", index, "-f", "paths",
                       "-k", "1")  # fmt: skip
        assert b"fluffy_pancakes.txt" not in before.out
        assert after.out.strip().endswith(b"fluffy_pancakes.txt")
        assert server.logged("now at generation")
    finally:
        server.stop()


def test_idle_exit(sample_index: tuple[Path, Path], tmp_path: Path) -> None:
    _, index = sample_index
    server = Served(index, tmp_path / "serve.log", "--idle-exit", "3s")
    assert server.proc.wait(timeout=60) == 0
    assert server.logged("idle for")


@pytest.mark.slow
@pytest.mark.skipif(not CORPUS.is_dir(), reason="needs ../shared/corpus")
def test_served_results_match_on_the_shared_corpus(tmp_path: Path) -> None:
    index = tmp_path / "index"
    assert invoke("index", CORPUS, "--index", index, "-q").code in (0, 6)
    server = Served(index, tmp_path / "serve.log")
    try:
        for line in (CORPUS / "queries.jsonl").read_text().splitlines():
            q = json.loads(line)
            kind = next(k for k in ("text", "image", "audio", "video") if k in q)
            query = [q[kind]] if kind == "text" else [f"--{kind}", str(CORPUS / q[kind])]
            args = ["query", *query, "--index", str(index), "-f", "json", "-k", "20"]
            assert invoke(*args).out == invoke(*args, "--no-server").out, q["id"]
    finally:
        server.stop()


def test_a_socket_folder_others_can_write_is_refused(
    sample_index: tuple[Path, Path], tmp_path: Path
) -> None:
    _, index = sample_index
    shared = tmp_path / "run" / "mms"
    shared.mkdir(parents=True)
    shared.chmod(0o777)
    res = mms_process("serve", "--index", index, env={"XDG_RUNTIME_DIR": str(shared.parent)},
                      timeout=120)  # fmt: skip
    assert res.returncode == 2, res.stderr
    assert b"not private to this user" in res.stderr and b"Traceback" not in res.stderr
    assert not list(shared.iterdir())
