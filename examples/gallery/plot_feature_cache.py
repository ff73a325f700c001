"""
A grid search that runs the CNN once per image
==============================================

In a :class:`~sklearn.model_selection.GridSearchCV`, every fold and every
candidate clones the pipeline and runs the CNN over its images again. With
``cache=True``, :class:`~sktransfer.PretrainedFeatureExtractor` keeps each
image's features the first time they are computed, and every later fold,
candidate and the refit read them back.

(The crops are resized to 64 px, ``image_size=64``, to keep this example short;
the weights' own preprocessing resizes to 224 px.)
"""

import time

import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from sktransfer import PretrainedFeatureExtractor
from sktransfer.datasets import load_photo_patches
from sktransfer.feature_extraction import clear_feature_cache, feature_cache_info

torch.set_num_threads(1)

X, y = load_photo_patches(split="train", n_per_class=4, patch_size=32)
param_grid = {"logisticregression__C": [0.1, 1, 10]}


def search(cache):
    pipe = make_pipeline(
        PretrainedFeatureExtractor(model="efficientnet_lite0", image_size=64,
                                   cache=cache),
        LogisticRegression(max_iter=2000),
    )
    start = time.perf_counter()
    grid = GridSearchCV(pipe, param_grid, cv=2).fit(X, y)
    return grid, time.perf_counter() - start


# %%
# Without a cache: 2 folds x 3 values of ``C``, and the refit, each run the CNN
# over their training and test images.
grid, seconds = search(cache=None)
print(f"no cache:   {seconds:5.1f} s, best {grid.best_params_}, "
      f"score {grid.best_score_:.3f}")

# %%
# With ``cache=True`` (this process's memory): the first fit of each image
# computes its features, every later one reads them.
clear_feature_cache()
grid_cached, seconds_cached = search(cache=True)
print(f"cache=True: {seconds_cached:5.1f} s, best {grid_cached.best_params_}, "
      f"score {grid_cached.best_score_:.3f}")
info = feature_cache_info()
print(info)
print(f"{info.misses} images through the network, {info.hits} served from the cache")

# %%
# The results are the same; only the time differs. ``cache="some/folder"`` keeps
# the features on disk instead, shared by worker processes (``n_jobs``) and by
# later runs. See :doc:`/caching`.
assert grid.best_params_ == grid_cached.best_params_
