"""
The command line: a folder of photos in, features, a model and predictions out
==============================================================================

``sktransfer`` (also ``python -m sktransfer``) runs the main job from the shell:
``extract`` writes the features of every image of a folder, ``fit`` trains on a
folder of class subfolders (torchvision's ``ImageFolder`` layout) and saves the
model in the safe format, ``predict`` writes predictions, and ``info`` reads a
model file's header without building the model. See :doc:`/cli`.

Here the photos are crops of scikit-image's photographs, written as JPEG files
into ``photos/<class>/``; each command runs as it would in a shell.
"""

import os
import subprocess
import sys
import tempfile

import pandas as pd
from PIL import Image

from sktransfer.datasets import load_photo_patches

folder = tempfile.mkdtemp()
X, y = load_photo_patches(split="train", n_per_class=8, patch_size=64,
                          classes=("astronaut", "coffee", "rocket"))
for i, (image, label) in enumerate(zip(X, y)):
    os.makedirs(os.path.join(folder, "photos", label), exist_ok=True)
    Image.fromarray(image).save(os.path.join(folder, "photos", label, f"{i}.jpg"))


def sktransfer(*args):
    """Run ``sktransfer ARGS`` in the folder and show what it prints."""
    print("$ sktransfer " + " ".join(args))
    result = subprocess.run([sys.executable, "-m", "sktransfer", *args], cwd=folder,
                            capture_output=True, text=True,
                            env=dict(os.environ, OMP_NUM_THREADS="1"))
    print(result.stdout + result.stderr)


# %%
# Features of every image, with their paths and labels
# ----------------------------------------------------
sktransfer("extract", "photos", "-o", "features.parquet", "--image-size", "64",
           "--cache", "cache", "--device", "cpu")
print(pd.read_parquet(os.path.join(folder, "features.parquet")).iloc[:3, :6])

# %%
# The same command again takes every feature from the cache:
sktransfer("extract", "photos", "-o", "features.parquet", "--image-size", "64",
           "--cache", "cache", "--device", "cpu")

# %%
# A model: EfficientNet-Lite0 features and a logistic regression
# --------------------------------------------------------------
sktransfer("fit", "photos", "-o", "model.sktransfer", "--estimator", "features",
           "--image-size", "64", "--device", "cpu")
sktransfer("info", "model.sktransfer")

# %%
# Predictions
# -----------
sktransfer("predict", "model.sktransfer", "photos", "-o", "predictions.csv")
print(pd.read_csv(os.path.join(folder, "predictions.csv")).head())

# %%
# A bad input is one line and exit code 2:
sktransfer("fit", "no_such_folder", "-o", "model.sktransfer")
