"""
Model selection and inference on a dask cluster
===============================================

sktransfer's estimators are plain scikit-learn estimators, so dask runs them as
it runs scikit-learn: joblib's ``dask`` backend spreads the fits of a grid search
over the workers, and ``map_blocks`` spreads ``predict``
over the chunks of a dask array. Here a :class:`~distributed.LocalCluster`
of two worker processes on this machine; on a cluster only the ``Client`` line
changes. See :doc:`/distributed`.
"""

import time

import dask
import joblib
import torch
from distributed import Client, LocalCluster

torch.set_num_threads(1)
# One dask thread and one torch thread per worker process.
dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None})
cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                       dashboard_address=None)
client = Client(cluster)
client.run(torch.set_num_threads, 1)
print(f"{len(client.scheduler_info()['workers'])} workers")

# %%
# A grid search, its fits on the workers
# --------------------------------------
# Each worker keeps its own in-memory feature cache (``cache=True``), so it runs
# the CNN at most once per image.
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from sktransfer import PretrainedFeatureExtractor
from sktransfer.datasets import load_photo_patches

X, y = load_photo_patches(split="train", n_per_class=6, patch_size=32)
X_test, y_test = load_photo_patches(split="test", n_per_class=6, patch_size=32)
pipe = make_pipeline(PretrainedFeatureExtractor(model="efficientnet_lite0", image_size=64,
                                                cache=True),
                     LogisticRegression(max_iter=2000))
grid = GridSearchCV(pipe, {"logisticregression__C": [0.1, 10]}, cv=2, n_jobs=-1)

start = time.perf_counter()
with joblib.parallel_backend("dask"):
    grid.fit(X, y)
print(f"grid search on the cluster: {time.perf_counter() - start:.1f} s, "
      f"best {grid.best_params_}, score {grid.best_score_:.3f}")

# %%
# Inference on a dask array
# -------------------------
# A 4-D dask array of images, chunked along the samples: ``map_blocks`` runs the
# fitted pipeline's ``predict`` on each chunk, each one a task on a worker, and
# the result is a lazy 1-D array of labels.
import dask.array as da

images = da.from_array(X_test, chunks=(20, 32, 32, 3))
best = grid.best_estimator_
predicted = images.map_blocks(best.predict, drop_axis=[1, 2, 3], dtype=y.dtype)
print(predicted)
labels = predicted.compute()
print(f"accuracy on {len(labels)} test images: {(labels == y_test).mean():.3f}")

# %%
# Shutting down. (The nanny logs a warning for each worker it stops; quiet it.)
import logging

logging.getLogger("distributed").setLevel(logging.ERROR)
client.close()
cluster.close()
