"""Dask as the distributed engine: joblib's dask backend and dask-ml's wrappers.

Everything here runs on a real ``distributed.LocalCluster`` of two worker
processes (one thread each, loopback only), started once for the module, and is
checked against the same work done in this process.
"""

import os
import pickle

import joblib
import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sktransfer import (
    DomainAdaptClassifier,
    FineTuneClassifier,
    PretrainedFeatureExtractor,
)

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
db = pytest.importorskip("dask.bag")
distributed = pytest.importorskip("distributed")
wrappers = pytest.importorskip("dask_ml.wrappers")
pytestmark = pytest.mark.slow  # a LocalCluster of two worker processes

SIDE = 16
TRIM_KEY = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"
N_FEATURES = 64  # simple_cnn's feature size


def tiny(**params):
    """A tiny CNN with seeded random weights (rebuilt from the parameters, not
    pickled)."""
    defaults = dict(model="simple_cnn", weights=None, random_state=0, device="cpu")
    defaults.update(params)
    return PretrainedFeatureExtractor(**defaults)


def two_tone(n=24, seed=0, labels=("dark", "light"), shift=0):
    """Noise images in two brightness classes (learnable, but not perfectly),
    all brightened by ``shift`` (another domain)."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 256, size=(n, SIDE, SIDE, 3)) + shift
    X[n // 2:] += 40
    return np.clip(X, 0, 255).astype(np.uint8), np.repeat(np.asarray(labels), n // 2)


@pytest.fixture(scope="module")
def client():
    """Two worker processes with one thread each, on 127.0.0.1 only, set up as
    docs/distributed.md advises for torch on CPU workers.

    The nanny starts workers with OMP_NUM_THREADS=1 (distributed's
    ``nanny.pre-spawn-environ``); torch's intra-op threads are set to 1 explicitly
    as well, so that two workers never run 2 x n_cores threads on a small machine.
    The nanny's MALLOC_TRIM_THRESHOLD_ is left out: it turns off glibc's dynamic
    mmap threshold, and torch's CPU forward passes then run about 2x slower.
    The nanny writes its variables into this process's environment too (to spawn
    the workers with them); they are put back afterwards.
    """
    environ = dict(os.environ)
    try:
        with dask.config.set({TRIM_KEY: None}), distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address=None,
        ) as cluster, distributed.Client(cluster) as client:
            client.run(torch.set_num_threads, 1)
            yield client
    finally:
        os.environ.clear()
        os.environ.update(environ)


def workers_used(task_stream):
    return {task["worker"] for task in task_stream.data}


def chunk_workers(task_stream, lazy):
    """The worker that computed each chunk of the dask array ``lazy``."""
    return [task["worker"] for task in task_stream.data
            if isinstance(task["key"], tuple) and task["key"][0] == lazy.name]


def assert_same_search(local, remote):
    assert remote.best_params_ == local.best_params_
    np.testing.assert_allclose(remote.cv_results_["mean_test_score"],
                               local.cv_results_["mean_test_score"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(remote.cv_results_["std_test_score"],
                               local.cv_results_["std_test_score"], rtol=0, atol=1e-6)


def _malloc_trim_threshold():
    return os.environ.get("MALLOC_TRIM_THRESHOLD_")


def test_workers_are_processes_with_one_torch_thread(client):
    pids = client.run(os.getpid)
    assert len(pids) == 2 and os.getpid() not in pids.values()
    assert all(address.startswith("tcp://127.0.0.1:") for address in pids)
    assert set(client.run(torch.get_num_threads).values()) == {1}
    # Not the nanny's 65536: the workers have this process's value (usually none).
    trim = _malloc_trim_threshold()
    assert set(client.run(_malloc_trim_threshold).values()) == {trim}


def test_estimators_pickle_without_weights():
    X, _ = two_tone(4)
    for unfitted in (tiny(), PretrainedFeatureExtractor(),
                     make_pipeline(PretrainedFeatureExtractor(), LogisticRegression()),
                     FineTuneClassifier()):
        assert len(pickle.dumps(unfitted)) < 4_000, unfitted
    # Fitted with seeded random weights, or with named pretrained weights: the
    # tensors are rebuilt on the worker, not shipped.
    assert len(pickle.dumps(tiny().fit(X))) < 4_000
    named = PretrainedFeatureExtractor(model="efficientnet_lite0", weights="DEFAULT",
                                       device="cpu").fit(X)
    assert sum(p.numel() for p in named._backbone_.parameters()) > 3_000_000
    assert len(pickle.dumps(named)) < 4_000


def test_named_weights_extractor_ships_to_a_worker(client):
    X, _ = two_tone(4)
    extractor = PretrainedFeatureExtractor(model="efficientnet_lite0",
                                           weights="DEFAULT", image_size=32,
                                           device="cpu").fit(X)
    remote = client.submit(extractor.transform, X, pure=False).result()
    np.testing.assert_allclose(remote, extractor.transform(X), rtol=1e-5, atol=1e-6)


def search_here_and_on_dask(client, estimator, params, X, y, cv):
    """The same GridSearchCV in this process and on the cluster: (local, remote,
    the workers that ran tasks of the remote one)."""
    local = GridSearchCV(estimator, params, cv=cv).fit(X, y)
    with distributed.get_task_stream(client) as tasks, joblib.parallel_backend("dask"):
        remote = GridSearchCV(estimator, params, cv=cv).fit(X, y)
    return local, remote, workers_used(tasks)


def test_gridsearch_over_extractor_pipeline_on_dask(client):
    X, y = two_tone()
    pipe = make_pipeline(tiny(), LogisticRegression(max_iter=500))
    params = {"logisticregression__C": [1e-3, 1e-2, 1.0]}
    local, remote, used = search_here_and_on_dask(client, pipe, params, X, y, cv=3)
    assert used <= set(client.scheduler_info()["workers"])
    assert len(used) >= 1
    assert len(set(local.cv_results_["mean_test_score"])) > 1  # a real choice
    assert_same_search(local, remote)
    np.testing.assert_array_equal(remote.predict(X), local.predict(X))


@pytest.mark.parametrize("cache", ["memory", "directory"])
def test_gridsearch_with_a_feature_cache_on_dask(client, cache, tmp_path):
    """With ``cache=``, each worker (memory) or all of them (a directory) compute
    each image's features once; the search finds what one uncached process finds."""
    X, y = two_tone()
    params = {"logisticregression__C": [1e-3, 1e-2, 1.0]}
    plain = make_pipeline(tiny(), LogisticRegression(max_iter=500))
    local = GridSearchCV(plain, params, cv=3).fit(X, y)
    cached = make_pipeline(tiny(cache=True if cache == "memory" else str(tmp_path)),
                           LogisticRegression(max_iter=500))
    with joblib.parallel_backend("dask"):
        remote = GridSearchCV(cached, params, cv=3).fit(X, y)
    assert_same_search(local, remote)
    if cache == "memory":
        from sktransfer.feature_extraction import feature_cache_info

        hits = [info.hits for info in client.run(feature_cache_info).values()]
        assert sum(hits) > 0  # later folds and candidates read the workers' cache
    else:
        assert any(tmp_path.rglob("*.*")), "the workers wrote no feature to the cache"


def test_gridsearch_over_finetune_classifier_on_dask(client):
    X, y = two_tone()
    clf = FineTuneClassifier(model="simple_cnn", weights=None, epochs=2, batch_size=8,
                             augment=None, device="cpu", random_state=0)
    params = {"lr": [1e-4, 3e-2]}
    local, remote, used = search_here_and_on_dask(client, clf, params, X, y, cv=2)
    assert len(used) >= 1
    assert len(set(local.cv_results_["mean_test_score"])) > 1
    assert_same_search(local, remote)


def test_gridsearch_over_domain_adaptation_on_dask(client):
    """The semi-supervised convention (y == -1: unlabeled target samples) goes
    through the dask backend like any other y."""
    X_source, y_source = two_tone(24, labels=(0, 1))
    X_target, _ = two_tone(24, seed=1, shift=30)
    X = np.concatenate([X_source, X_target])
    y = np.concatenate([y_source, np.full(len(X_target), -1)])
    pipe = make_pipeline(
        tiny(), StandardScaler(),
        DomainAdaptClassifier(model=None, method="coral", hidden_layer_sizes=(32,),
                              epochs=5, batch_size=8, device="cpu", random_state=0),
    )
    params = {"domainadaptclassifier__lr": [1e-3, 3e-2]}
    local, remote, used = search_here_and_on_dask(client, pipe, params, X, y, cv=3)
    assert len(used) >= 1
    assert len(set(local.cv_results_["mean_test_score"])) > 1
    assert_same_search(local, remote)


def test_parallel_postfit_transforms_image_rows_chunk_by_chunk(client):
    """``ParallelPostFit`` maps ``transform`` over 2-D blocks, so the images go in
    as flat float rows in [0, 1] with ``input_shape``; the reshape and scaling of
    a 4-D uint8 dask array are lazy and per chunk."""
    X, _ = two_tone(32)
    images = da.from_array(X, chunks=(8, SIDE, SIDE, 3))
    rows = images.reshape(len(X), -1).astype(np.float32) / np.float32(255)
    assert rows.numblocks == (4, 1)
    wrapped = wrappers.ParallelPostFit(tiny(input_shape=(SIDE, SIDE, 3)))
    wrapped.fit(rows[:8].compute())
    lazy = wrapped.transform(rows)
    with distributed.get_task_stream(client) as tasks:
        features = lazy.compute()
    workers = chunk_workers(tasks, lazy)
    assert len(workers) == 4 and len(set(workers)) == 2
    assert features.shape == (len(X), N_FEATURES) and features.dtype == np.float32
    # Same chunks in this process: identical; one whole-array transform: allclose.
    np.testing.assert_array_equal(features, lazy.compute(scheduler="sync"))
    np.testing.assert_allclose(features, tiny().fit(X).transform(X), rtol=1e-5,
                               atol=1e-6)


def test_parallel_postfit_predicts_with_a_pipeline(client):
    X, y = two_tone(32)
    rows = X.reshape(len(X), -1).astype(np.float32) / 255
    pipe = make_pipeline(tiny(input_shape=(SIDE, SIDE, 3)),
                         LogisticRegression(max_iter=500))
    wrapped = wrappers.ParallelPostFit(pipe).fit(rows, y)
    predicted = wrapped.predict(da.from_array(rows, chunks=(8, -1)))
    assert predicted.shape == (len(X),)  # predict's lazy shape is right
    np.testing.assert_array_equal(predicted.compute(), pipe.predict(rows))


def test_map_blocks_over_a_4d_image_array(client):
    """The direct route for (N, H, W, C) images: ``map_blocks`` with the output
    chunks spelled out, so the lazy result has the right shape too."""
    X, _ = two_tone(32)
    images = da.from_array(X, chunks=(8, SIDE, SIDE, 3))
    extractor = tiny().fit(X[:8])
    lazy = images.map_blocks(extractor.transform, dtype=np.float32, drop_axis=[2, 3],
                             chunks=(images.chunks[0], (extractor.n_features_out_,)))
    assert lazy.shape == (len(X), N_FEATURES)
    features = lazy.compute()
    np.testing.assert_array_equal(features, lazy.compute(scheduler="sync"))
    np.testing.assert_allclose(features, extractor.transform(X), rtol=1e-5, atol=1e-6)


@pytest.fixture
def png_paths(tmp_path):
    X, _ = two_tone(20, seed=1)
    paths = []
    for i, image in enumerate(X):
        path = tmp_path / f"{i:03d}.png"
        Image.fromarray(image).save(path)
        paths.append(str(path))
    return paths


def test_dask_array_of_paths(client, png_paths):
    extractor = tiny().fit(png_paths[:2])
    expected = extractor.transform(png_paths)
    paths = da.from_array(np.array(png_paths, dtype=object), chunks=6)
    lazy = paths.map_blocks(extractor.transform, dtype=np.float32, new_axis=1,
                            chunks=(paths.chunks[0], (extractor.n_features_out_,)))
    assert lazy.shape == (len(png_paths), N_FEATURES)
    np.testing.assert_array_equal(lazy.compute(), expected)


def test_dask_bag_of_paths(client, png_paths):
    extractor = tiny().fit(png_paths[:2])
    bag = db.from_sequence(png_paths, npartitions=4).map_partitions(extractor.transform)
    np.testing.assert_array_equal(np.stack(bag.compute()),
                                  extractor.transform(png_paths))


def _start_counting_backbone_loads():
    """On a worker: count the backbones the extractor builds from now on."""
    import sktransfer.feature_extraction._extractor as module

    original = getattr(module.load_backbone, "original", module.load_backbone)
    calls = []

    def counting(*args, **kwargs):
        calls.append(args[:2])
        return original(*args, **kwargs)

    counting.original, counting.calls = original, calls
    module.load_backbone = counting


def _stop_counting_backbone_loads():
    import sktransfer.feature_extraction._extractor as module

    calls = getattr(module.load_backbone, "calls", [])
    module.load_backbone = getattr(module.load_backbone, "original",
                                   module.load_backbone)
    return len(calls)


def test_each_worker_loads_the_backbone_once(client):
    """Every task unpickles its own copy of the extractor; the process-level memo
    of backbones lets each worker build the network once for all of them
    (without it, each task rebuilds it)."""
    X, _ = two_tone(48)
    rows = X.reshape(len(X), -1).astype(np.float32) / 255
    # A seed no other test uses: the workers have not built this backbone yet.
    extractor = tiny(random_state=12345, input_shape=(SIDE, SIDE, 3))
    wrapped = wrappers.ParallelPostFit(extractor)
    wrapped.fit(rows[:4])
    client.run(_start_counting_backbone_loads)
    try:
        lazy = wrapped.transform(da.from_array(rows, chunks=(4, -1)))
        with distributed.get_task_stream(client) as tasks:
            features = lazy.compute()
    finally:
        loads = client.run(_stop_counting_backbone_loads)
    np.testing.assert_allclose(features, extractor.transform(rows), rtol=1e-5,
                               atol=1e-6)
    transforms = chunk_workers(tasks, lazy)
    assert len(transforms) == 12
    for worker, n_loads in loads.items():
        n_tasks = transforms.count(worker)
        assert n_loads == (1 if n_tasks else 0), (worker, n_tasks, n_loads)
    assert max(transforms.count(worker) for worker in loads) > 1


def test_a_dask_dataframe_or_series_is_computed_as_scikit_learn_does(tmp_path):
    """Given whole (not by map_partitions), a dask DataFrame of flat rows, a dask
    Series of image paths, and one of texts give the features of their pandas
    form."""
    import pandas as pd

    dd = pytest.importorskip("dask.dataframe")
    from text_models import sentiment_texts, write_tiny_bert

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 16, 16, 3), dtype=np.uint8)
    rows = pd.DataFrame(images.reshape(6, -1) / 255.0).add_prefix("p")
    flat = tiny(input_shape=(16, 16, 3)).fit(rows)
    np.testing.assert_array_equal(flat.transform(dd.from_pandas(rows, npartitions=2)),
                                  flat.transform(rows))
    paths = []
    for i, image in enumerate(images):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(image).save(paths[-1])
    extractor = tiny().fit(paths)
    np.testing.assert_array_equal(
        extractor.transform(dd.from_pandas(pd.Series(paths), npartitions=2)),
        extractor.transform(paths))
    texts, _ = sentiment_texts(6)
    model = f"hf:{write_tiny_bert(tmp_path / 'bert')}"
    reader = PretrainedFeatureExtractor(model=model, device="cpu").fit(texts)
    frame = pd.DataFrame({"text": texts})
    np.testing.assert_allclose(
        reader.transform(dd.from_pandas(frame, npartitions=2)), reader.transform(texts),
        atol=1e-6)


def test_domain_adaptation_scores_and_scorers_read_a_dask_dataframe():
    """score and the target-label-free scorers index the labeled or target rows
    of a dask DataFrame given whole, as of its pandas form."""
    import pandas as pd

    dd = pytest.importorskip("dask.dataframe")
    from sktransfer import DomainAdaptRegressor
    from sktransfer.metrics import (DeepEmbeddedValidation, ImportanceWeightedScorer,
                                    PredictionEntropyScorer, SoftNeighborhoodDensityScorer)

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(40, 4))).add_prefix("f")
    y = np.where(X["f0"] > 0, 1, 0)
    y[20:] = -1
    lazy = dd.from_pandas(X, npartitions=3)
    clf = DomainAdaptClassifier(model=None, epochs=2, device="cpu", random_state=0).fit(X, y)
    y_true = np.where(X["f0"] > 0, 1, 0)
    assert clf.score(lazy, y_true) == clf.score(X, y_true)
    for scorer in (PredictionEntropyScorer(), SoftNeighborhoodDensityScorer(),
                   ImportanceWeightedScorer(), DeepEmbeddedValidation()):
        assert scorer(clf, lazy, y) == scorer(clf, X, y)
    targets = X["f1"].to_numpy() * 2.0
    targets[20:] = np.nan
    reg = DomainAdaptRegressor(model=None, epochs=2, device="cpu", random_state=0)
    reg.fit(X, targets)
    assert reg.score(lazy, X["f1"] * 2.0) == reg.score(X, X["f1"] * 2.0)
