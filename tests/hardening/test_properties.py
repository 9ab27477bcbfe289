"""Property-based checks (issue 20): whatever a pipe, a query file or the environment
holds, the readers answer with a row, a query or settings, or a ``UsageError`` (exit 2),
never another exception (exit 1)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmsearch_cli.config import load_settings
from mmsearch_cli.errors import UsageError
from mmsearch_cli.evaluation.run import iter_queries
from mmsearch_cli.search.rows import from_json

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)  # fmt: skip
ROW_KEYS = ["path", "score", "rank", "modality", "kind", "chunk", "t", "end", "why", "text",
            "spaces", "size", "mtime", "segments_matched", "path_b64", "rank_before",
            "first_stage_score", "rerank_score"]  # fmt: skip
ROWS = st.dictionaries(st.sampled_from(ROW_KEYS), JSON, max_size=10) | JSON


@settings(max_examples=1000, deadline=None)
@given(ROWS)
def test_any_piped_row_is_a_row_or_a_usage_error(obj: object) -> None:
    try:
        row = from_json(obj, "stdin line 1", rank=1)
    except ValueError as exc:  # the CLI turns it into a UsageError naming the line
        assert str(exc).startswith("stdin line 1: ")
        return
    assert isinstance(row["path"], str) and row["path"]
    json.dumps(row, allow_nan=False)  # every output format can write it


QUERY_KEYS = ["id", "text", "image", "audio", "video", "relevant"]
LINES = st.dictionaries(st.sampled_from(QUERY_KEYS), JSON, max_size=5).map(json.dumps) | st.text(
    max_size=40
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(LINES, min_size=1, max_size=5))
def test_any_query_file_gives_queries_or_a_usage_error(lines: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "q.jsonl"
        path.write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")
        try:
            queries = list(iter_queries(path))
        except UsageError:
            return
        assert queries and all(q.id and q.relevant is not None for q in queries)


SETTING_VALUES = st.text(max_size=12) | st.sampled_from(
    ["nan", "inf", "-1", "0", "1e400", "9" * 40, "1.5", "/etc/hostname", " ", "2"]
)
ENV_KEYS = ["MMS_THREADS", "MMS_MAX_FILE_SECONDS", "MMS_MAX_TEXT_BYTES", "MMS_MAX_TEXT_CHUNKS",
            "MMS_MAX_IMAGE_PIXELS", "MMS_VIDEO_MAX_KEYFRAMES", "MMS_INDEX", "MMS_MODEL_DIR",
            "MMS_PROFILE"]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(ENV_KEYS), SETTING_VALUES, max_size=4))
def test_any_environment_gives_settings_or_a_usage_error(env: dict[str, str]) -> None:
    env = {k: v.replace("\x00", "") for k, v in env.items()}
    with mock.patch.dict(os.environ, {"MMS_CONFIG": "/nonexistent/config.toml", **env}):
        try:
            conf = load_settings()
        except UsageError as exc:
            assert "\n" not in str(exc)
            return
    assert conf.threads >= 1 and conf.limits.max_text_bytes > 0
