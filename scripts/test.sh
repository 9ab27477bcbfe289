#!/usr/bin/env bash
# Set up, then lint, type-check, test, and guard retrieval quality on sample_data/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
export MMS_MODEL_DIR=${MMS_MODEL_DIR:-$PWD/.cache/models}
export HF_HUB_OFFLINE=1
ruff check mmsearch_cli tests benchmarks scripts training
ruff format --check mmsearch_cli tests benchmarks scripts training
mypy
python scripts/gen_completions.py --check
python -m pytest -q -p no:cacheprovider -m "not slow" "$@"
