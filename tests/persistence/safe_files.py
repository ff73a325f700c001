"""What the persistence tests share: tiny estimators, a way to compare a loaded
estimator with the one saved, and ways to rewrite a safe file and watch a load."""

import contextlib
import hashlib
import io
import json
import os
from unittest import mock

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import sktransfer
from sktransfer import FineTuneClassifier, PretrainedFeatureExtractor


def images(n_per_class=8, size=16, seed=0):
    rng = np.random.default_rng(seed)
    dark = rng.integers(0, 100, size=(n_per_class, size, size, 3), dtype=np.uint8)
    light = rng.integers(120, 256, size=(n_per_class, size, size, 3), dtype=np.uint8)
    labels = np.array(["cat"] * n_per_class + ["dog"] * n_per_class)
    return np.concatenate([dark, light]), labels


def flat(n=48, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    return X, (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1)


def cnn(**params):
    defaults = dict(model="simple_cnn", weights=None, epochs=1, batch_size=8, lr=1e-2,
                    device="cpu", random_state=0)
    return FineTuneClassifier(**{**defaults, **params})


def mlp(**params):
    defaults = dict(model=None, epochs=2, lr=3e-2, hidden_layer_sizes=(8,),
                    device="cpu", random_state=0)
    return FineTuneClassifier(**{**defaults, **params})


def extractor(**params):
    defaults = dict(model="simple_cnn", weights=None, random_state=0, device="cpu")
    return PretrainedFeatureExtractor(**{**defaults, **params})


def domain_adapt(**params):
    defaults = dict(model=None, method="coral", epochs=2, lr=3e-2, hidden_layer_sizes=(8,),
                    device="cpu", random_state=0)
    return sktransfer.DomainAdaptClassifier(**{**defaults, **params})


ESTIMATORS = ["cnn", "cnn_from_checkpoint", "mlp", "domain_adapt", "extractor",
              "extractor_unseeded", "extractor_checkpoint"]


def outputs(estimator, X):
    """Everything an estimator computes from X."""
    if isinstance(estimator, PretrainedFeatureExtractor):
        return {"transform": estimator.transform(X)}
    return {name: getattr(estimator, name)(X)
            for name in ("predict", "predict_proba", "decision_function", "transform")}


def assert_same_outputs(loaded, estimator, X):
    expected = outputs(estimator, X)
    for name, value in outputs(loaded, X).items():
        assert value.dtype == expected[name].dtype, name
        np.testing.assert_array_equal(value, expected[name], err_msg=name)


def assert_same_value(a, b, name):
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype, name
        np.testing.assert_array_equal(a, b, err_msg=name)
    else:
        assert type(a) is type(b) and a == b, name


def assert_same_fitted_attributes(loaded, estimator):
    """Every attribute but the network itself, with its type and dtype."""
    skip = {"module_", "_backbone_"}
    names = set(vars(estimator)) - skip
    assert names == set(vars(loaded)) - skip
    for name in names:
        assert_same_value(vars(loaded)[name], vars(estimator)[name], name)


def safe_round_trip(estimator):
    buffer = io.BytesIO()
    sktransfer.save(estimator, buffer)
    return sktransfer.load(io.BytesIO(buffer.getvalue()))


def document_checksum(document):
    """The checksum of a version-2 document, as docs/persistence.md defines it."""
    body = {k: v for k, v in document.items() if k != "document_sha256"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def rewrite(path, change, rehash=True, text=None):
    """Rewrite the JSON document of a safe file with ``change(document)``; with
    ``rehash``, its checksum is recomputed (as a malicious author would), so the
    content checks behind the checksum are what the file meets. ``text`` writes
    that metadata text instead (a document JSON cannot write)."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(path, framework="pt") as file:
        document = json.loads(file.metadata()["sktransfer"])
        tensors = {key: file.get_tensor(key) for key in file.keys()}
    change(document)
    if rehash and "document_sha256" in document:
        document["document_sha256"] = document_checksum(document)
    metadata = json.dumps(document) if text is None else text
    save_file(tensors, path, metadata={"sktransfer": metadata})


@contextlib.contextmanager
def traced_peak():
    """``[peak]``, filled with the peak bytes of traced allocations (numpy's
    arrays and Python's objects are traced) of the block when it ends."""
    import tracemalloc

    result = []
    tracemalloc.start()
    try:
        yield result
    finally:
        result.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()


@contextlib.contextmanager
def counted_restores():
    """The list of the estimators rebuilt (``__sktransfer_restore__``, where a
    network is built) while the block runs."""
    calls = []
    with contextlib.ExitStack() as stack:
        for cls in sktransfer.persistence.SAFE_CLASSES.values():
            def counted(self, *args, _real=cls.__sktransfer_restore__, **kwargs):
                calls.append(type(self).__name__)
                return _real(self, *args, **kwargs)

            stack.enter_context(mock.patch.object(cls, "__sktransfer_restore__", counted))
        yield calls


def load_bounded(path, megabytes=64):
    """Load ``path`` expecting ValueError before any estimator is rebuilt, within
    ``megabytes`` of traced allocations."""
    with counted_restores() as restored, traced_peak() as peak:
        with pytest.raises(ValueError) as info:
            sktransfer.load(path)
    assert restored == []
    assert peak[0] < megabytes * 2**20, f"{peak[0] / 2**20:.0f} MiB"
    return info


# The probe's crafted files: their checksum recomputed, as a malicious author would.
def save_changed(estimator, path, change):
    sktransfer.save(estimator, path)
    rewrite(path, change)
    return path


def changed_preprocess(**values):
    return lambda d: d["fitted"]["preprocess_"]["$preprocess"].update(values)


@contextlib.contextmanager
def no_io_outside(folder):
    """Fail the test when timm builds a model, a socket connects, or a path
    under ``folder`` is looked at, while the block runs."""
    import socket

    import timm

    touched = []
    real_stat = os.stat

    def stat(path, *args, **kwargs):
        if isinstance(path, (str, os.PathLike)) and str(folder) in os.fspath(path):
            touched.append(path)
        return real_stat(path, *args, **kwargs)

    with mock.patch.object(timm, "create_model",
                           side_effect=AssertionError("timm built a model")) as create, \
            mock.patch.object(socket.socket, "connect",
                              side_effect=AssertionError("a socket connected")), \
            mock.patch.object(os, "stat", stat):
        yield
    assert not create.called and touched == []


def readme_pipelines():
    """The README's pipelines (unfitted): name -> Pipeline."""
    return {
        "extractor-logreg": make_pipeline(extractor(), LogisticRegression(max_iter=200)),
        "extractor-finetune": make_pipeline(
            extractor(), FineTuneClassifier(model=None, epochs=2, device="cpu",
                                            random_state=0)),
        "extractor-scaler-logreg": make_pipeline(extractor(), StandardScaler(),
                                                 LogisticRegression(max_iter=200)),
    }
