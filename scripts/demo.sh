#!/usr/bin/env bash
# Set up, index sample_data/ and run a few example queries.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
export MMS_MODEL_DIR=${MMS_MODEL_DIR:-$PWD/.cache/models}
export MMS_INDEX=${MMS_INDEX:-$PWD/.mms-demo/index}
export HF_HUB_OFFLINE=1
set -x
# sample_data/broken/ holds damaged files on purpose: they are skipped with a reason and
# the run exits 6 ("partial"), which is the expected outcome here.
mms index sample_data || [ $? -eq 6 ]
mms info
mms query "a hammer" -k 5
mms query "fish swimming in a coral reef" -k 5 --type image
mms query --image sample_data/images/fishes/fish1.webp -k 5
mms query "how do I measure voltage" -k 3 --type text
mms query "a dog barking" -k 3 --type audio
mms query "the earth at night from space" -k 3
mms query "quantum computing error correction" || echo "exit $?: no good match"
mms query "wind turbines" -k 10 --format jsonl | head -3
