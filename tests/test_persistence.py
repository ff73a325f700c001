"""Persistence: version stamps on pickles, the safe format, and loading elsewhere."""

import contextlib
import doctest
import hashlib
import io
import json
import os
import pathlib
import pickle
import shutil
import subprocess
import sys
import textwrap
import warnings
from unittest import mock

import joblib
import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from torch import nn

import sktransfer
from sktransfer import (
    FineTuneClassifier,
    InconsistentVersionWarning,
    PretrainedFeatureExtractor,
)


# -- tiny estimators, fitted once per module --------------------------------------
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


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """name -> (fitted estimator, X it runs on); read-only for the tests."""
    from sktransfer.backbones import SimpleCNN

    X_img, y_img = images()
    X_flat, y_flat = flat()
    torch.manual_seed(3)
    checkpoint = tmp_path_factory.mktemp("weights") / "cnn.pth"
    torch.save(SimpleCNN().state_dict(), checkpoint)
    y_target = np.where(np.arange(len(y_flat)) % 3 == 0, -1, y_flat)
    estimators = {
        "cnn": (cnn().fit(X_img, y_img), X_img),
        "cnn_from_checkpoint": (cnn(weights=str(checkpoint)).fit(X_img, y_img), X_img),
        "mlp": (mlp().fit(X_flat, y_flat), X_flat),
        "domain_adapt": (domain_adapt().fit(X_flat, y_target), X_flat),
        "extractor": (extractor().fit(X_img), X_img),
        "extractor_unseeded": (extractor(random_state=None).fit(X_img), X_img),
        "extractor_checkpoint": (extractor(weights=str(checkpoint)).fit(X_img), X_img),
    }
    checkpoint.unlink()  # a saved estimator must not need it
    return estimators


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


# -- the safe format: round trips ----------------------------------------------------
def test_docstring_examples_run():
    result = doctest.testmod(sktransfer.persistence._format, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("name", ESTIMATORS)
def test_safe_round_trip_is_identical(fitted, name, tmp_path):
    estimator, X = fitted[name]
    path = tmp_path / "model.safetensors"
    sktransfer.save(estimator, path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", InconsistentVersionWarning)
        loaded = sktransfer.load(path)
    assert type(loaded) is type(estimator)
    assert loaded.get_params() == estimator.get_params()
    assert_same_fitted_attributes(loaded, estimator)
    assert_same_outputs(loaded, estimator, X)


def test_named_weights_are_not_stored_but_checked_on_use(fitted, tmp_path):
    estimator, X = fitted["extractor"]  # weights=None, random_state=0: rebuildable
    sktransfer.save(estimator, tmp_path / "a.safetensors")
    sktransfer.save(fitted["extractor_unseeded"][0], tmp_path / "b.safetensors")
    assert (tmp_path / "a.safetensors").stat().st_size < 10_000
    assert (tmp_path / "b.safetensors").stat().st_size > 50_000
    loaded = sktransfer.load(tmp_path / "a.safetensors")
    loaded._seed_ = 1  # as if other weights were installed under the same name
    with pytest.raises(RuntimeError, match="differ from those this extractor was fitted"):
        loaded.transform(X)


@pytest.mark.parametrize("estimator", [cnn(), mlp(), domain_adapt(), extractor()],
                         ids=lambda e: type(e).__name__)
def test_unfitted_estimator_round_trips_its_parameters(estimator):
    loaded = safe_round_trip(estimator)
    assert type(loaded) is type(estimator)
    assert loaded.get_params() == estimator.get_params()
    assert vars(loaded) == vars(estimator)


@pytest.mark.parametrize("labels", [
    np.array(["no", "yes"]),
    np.array(["no", "yes"], dtype=object),
    np.array([3, 11]),
    np.array([True, False]),
    np.array([1.0, 2.0]),
], ids=["str", "object", "int", "bool", "float"])
def test_label_types_are_preserved(labels):
    X, y = flat()
    y = labels[(y > 0).astype(int)]
    clf = mlp().fit(X, y)
    loaded = safe_round_trip(clf)
    assert loaded.classes_.dtype == clf.classes_.dtype
    assert [type(c) for c in loaded.classes_] == [type(c) for c in clf.classes_]
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))


def test_parameters_of_every_kind_round_trip():
    from torchvision.models import ResNet18_Weights

    random_state = np.random.RandomState(3)
    clf = FineTuneClassifier(
        model="resnet18", weights=ResNet18_Weights.IMAGENET1K_V1, class_weight={0: 2.0, 1: 1},
        hidden_layer_sizes=[8, 4], image_size=(24, 20), input_shape=(8, 8, 1),
        device=torch.device("cpu"), lr=np.float64(3e-3), grad_clip=float("inf"),
        random_state=random_state, freeze=2,
    )
    params = safe_round_trip(clf).get_params()
    expected = clf.get_params()
    assert params["weights"] is ResNet18_Weights.IMAGENET1K_V1
    loaded_state = params.pop("random_state").get_state()
    for a, b in zip(loaded_state, expected.pop("random_state").get_state()):
        np.testing.assert_array_equal(a, b)
    assert params == expected
    assert type(params["lr"]) is np.float64
    path_clf = FineTuneClassifier(model="simple_cnn", weights=pathlib.Path("nets") / "a.pth")
    assert safe_round_trip(path_clf).weights == pathlib.Path("nets") / "a.pth"


def test_set_output_config_is_kept(fitted):
    pd = pytest.importorskip("pandas")
    estimator, X = fitted["extractor"]
    pandas_extractor = extractor().fit(X).set_output(transform="pandas")
    frame = safe_round_trip(pandas_extractor).transform(X)
    assert isinstance(frame, pd.DataFrame)
    np.testing.assert_array_equal(frame.to_numpy(), estimator.transform(X))


# -- the safe format: what it refuses at save --------------------------------------------
class _Loss(nn.Module):
    def forward(self, source, target):
        return (source.mean() - target.mean()) ** 2


@pytest.mark.parametrize("estimator, parameter", [
    (cnn(model=nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1))), "model"),
    (cnn(optimizer=torch.optim.SGD), "optimizer"),
    (cnn(augment=lambda batch: batch.flip(-1)), "augment"),
    (domain_adapt(method=_Loss()), "method"),
    (extractor(model=nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1))), "model"),
], ids=["module", "optimizer-class", "callable-augment", "loss-object", "extractor-module"])
def test_code_in_parameters_is_refused_at_save(estimator, parameter, tmp_path):
    path = tmp_path / "model.safetensors"
    with pytest.raises(ValueError, match=rf"parameter {parameter} .*joblib\.dump"):
        sktransfer.save(estimator, path)
    assert not path.exists()


def test_other_estimators_are_refused_at_save(tmp_path):
    class MyClassifier(FineTuneClassifier):
        pass

    for estimator in (LogisticRegression(), MyClassifier()):
        with pytest.raises(TypeError, match="joblib.dump"):
            sktransfer.save(estimator, tmp_path / "model.safetensors")


# -- the safe format: what it refuses at load ---------------------------------------------
class _WritesAFile:
    """A pickle that creates ``path`` when it is unpickled."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.path),))


def test_load_never_unpickles(tmp_path):
    proof = tmp_path / "proof"
    pickle.loads(pickle.dumps(_WritesAFile(proof)))
    assert proof.exists()  # the payload works when unpickled

    marker = tmp_path / "marker"
    for name, write in [
        ("exploit.pkl", lambda p: p.write_bytes(pickle.dumps(_WritesAFile(marker)))),
        ("exploit.safetensors", lambda p: p.write_bytes(pickle.dumps(_WritesAFile(marker)))),
        ("exploit.joblib", lambda p: joblib.dump(_WritesAFile(marker), p)),
        ("exploit.pt", lambda p: torch.save({"x": _WritesAFile(marker)}, p)),
    ]:
        path = tmp_path / name
        write(path)
        with pytest.raises(ValueError, match="is not an sktransfer safe file"):
            sktransfer.load(path)
        assert not marker.exists(), name


def test_joblib_file_of_an_estimator_is_refused_with_a_pointer(fitted, tmp_path):
    path = tmp_path / "clf.joblib"
    joblib.dump(fitted["mlp"][0], path)
    with pytest.raises(ValueError, match="never unpickles.*joblib.load"):
        sktransfer.load(path)


def test_other_safetensors_file_is_refused(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "weights.safetensors"
    save_file({"w": torch.zeros(3)}, path)
    with pytest.raises(ValueError, match="is not an sktransfer safe file.*no sktransfer"):
        sktransfer.load(path)
    save_file({"w": torch.zeros(3)}, path, metadata={"sktransfer": '{"format": "other"}'})
    with pytest.raises(ValueError, match="do not name the format 'sktransfer-safe'"):
        sktransfer.load(path)


@pytest.fixture
def saved_mlp(fitted, tmp_path):
    path = tmp_path / "mlp.safetensors"
    sktransfer.save(fitted["mlp"][0], path)
    return path


@pytest.mark.parametrize("keep", [0, 5, 40, 0.5, -1], ids=str)
def test_truncated_file_is_refused(saved_mlp, keep):
    data = saved_mlp.read_bytes()
    keep = int(len(data) * keep) if isinstance(keep, float) else keep % len(data)
    saved_mlp.write_bytes(data[:keep])
    with pytest.raises(ValueError, match="not an sktransfer safe file|damaged"):
        sktransfer.load(saved_mlp)


def test_corrupted_weights_are_refused(saved_mlp):
    data = bytearray(saved_mlp.read_bytes())
    data[-3] ^= 0xFF  # inside the tensors
    saved_mlp.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="damaged.*checksum"):
        sktransfer.load(saved_mlp)


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


def test_newer_format_version_is_refused(saved_mlp):
    newer = sktransfer.persistence.FORMAT_VERSION + 1
    rewrite(saved_mlp, lambda d: d.update(format_version=newer, sktransfer_version="9.0"))
    with pytest.raises(ValueError,
                       match=f"version {newer} of the sktransfer safe format.*Upgrade"):
        sktransfer.load(saved_mlp)


@pytest.mark.parametrize("change, match", [
    (lambda d: d.update(estimator="Exploit"), "'Exploit', which is not an estimator"),
    (lambda d: d["params"].update(exec="x"), "has no parameter 'exec'"),
    (lambda d: d["fitted"].update(predict=1), "'predict' is not a fitted attribute"),
    (lambda d: d["fitted"].update(__class__="x"), "'__class__' is not a fitted attribute"),
    (lambda d: d["fitted"].update(n_iter_={"$pickle": "gASV"}), r"unknown value tag '\$pickle'"),
    (lambda d: d["fitted"].update(classes_={"$ndarray": {"dtype": "|V8", "shape": [1],
                                                         "data": [1]}}), r"dtype '\|V8'"),
    (lambda d: d.update(weights="_backbone"), "weights belong to '_backbone'"),
], ids=["estimator", "parameter", "method-name", "dunder", "tag", "dtype", "weights"])
def test_unexpected_content_is_refused(saved_mlp, change, match):
    rewrite(saved_mlp, change)
    with pytest.raises(ValueError, match=match):
        sktransfer.load(saved_mlp)


def test_safe_file_from_another_version_warns(saved_mlp, fitted):
    rewrite(saved_mlp, lambda d: d.update(sktransfer_version="0.0.1"))
    with pytest.warns(InconsistentVersionWarning, match="saved by sktransfer 0.0.1"):
        loaded = sktransfer.load(saved_mlp)
    assert_same_outputs(loaded, *fitted["mlp"])


# -- the safe format: hostile files (sizes, nesting, checksums, parameters) --------------
def _bomb_classes(d):
    d["fitted"]["classes_"] = {"$ndarray": {"dtype": "<U500000000", "shape": [3],
                                            "data": ["a", "b", "c"]}}


@contextlib.contextmanager
def _traced_peak():
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
def _counted_restores():
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


def _load_bounded(path, megabytes=64):
    """Load ``path`` expecting ValueError before any estimator is rebuilt, within
    ``megabytes`` of traced allocations."""
    with _counted_restores() as restored, _traced_peak() as peak:
        with pytest.raises(ValueError) as info:
            sktransfer.load(path)
    assert restored == []
    assert peak[0] < megabytes * 2**20, f"{peak[0] / 2**20:.0f} MiB"
    return info


@pytest.mark.parametrize("change, match", [
    (_bomb_classes, r"dtype '<U500000000' is not one"),
    (lambda d: d["fitted"].update(classes_={"$ndarray": {
        "dtype": "<U4096", "shape": [20_000], "data": ["a"] * 20_000}}),
     "more than the file's size justifies"),
    (lambda d: d["fitted"].update(classes_={"$ndarray": {
        "dtype": "<f16", "shape": [1], "data": [1.0]}}), r"dtype '<f16'"),
    (lambda d: d["fitted"].update(classes_={"$ndarray": {
        "dtype": "<i8", "shape": [2**32, 2**32], "data": []}}), "do not fill its shape"),
    (lambda d: d["fitted"].update(classes_={"$ndarray": {
        "dtype": "<i8", "shape": [1], "data": [10**30]}}), "not an int of dtype"),
    (lambda d: d["fitted"].update(classes_={"$ndarray": {
        "dtype": "|u1", "shape": [1], "data": [300]}}), "not an int of dtype"),
    (lambda d: d["fitted"].update(classes_={"$ndarray": {
        "dtype": "<i8", "shape": [1], "data": ["7"]}}), "not an int of dtype"),
    (lambda d: d["fitted"].update(classes_={"$ndarray": {
        "dtype": "<f8", "shape": [1], "data": [10**400]}}), "too large for a float"),
    (lambda d: d["params"].update(random_state={"$random_state": {"$tuple": [
        "MT19937", {"$ndarray": {"dtype": "<u4", "shape": [624], "data": [1] * 624}},
        10**30, 0, 0.0]}}), "not the state of a RandomState"),
    (lambda d: d["params"].update(random_state={"$random_state": 5}),
     "not a 5-tuple"),
    (lambda d: d["params"].update(lr=json.loads("[" * 200 + "]" * 200)),
     "nest more than"),
], ids=["str-bomb", "budget", "float128", "shape-overflow", "int-overflow", "u1-range",
        "str-as-int", "float-overflow", "random-state-position", "random-state-type",
        "deep-value"])
def test_declared_sizes_and_depths_are_bounded(saved_mlp, change, match):
    rewrite(saved_mlp, change)
    info = _load_bounded(saved_mlp)
    assert info.match(match)


def test_json_nested_beyond_the_recursion_limit_is_refused(saved_mlp):
    text = '{"format": "sktransfer-safe", "format_version": 1, "params": ' + \
        "[" * 100_000 + "]" * 100_000 + "}"
    rewrite(saved_mlp, lambda d: None, text=text)
    info = _load_bounded(saved_mlp)
    assert info.match("not an sktransfer safe file.*RecursionError")


def test_the_former_9kb_bomb_is_refused_at_once(saved_mlp):
    """dtype "<U500000000", shape [3]: 5.7 GB and 13 s before the dtype allowlist,
    with the checksum recomputed (so the allowlist, not the checksum, refuses it)."""
    rewrite(saved_mlp, _bomb_classes)
    assert saved_mlp.stat().st_size < 10_000
    _load_bounded(saved_mlp, megabytes=16)
    rewrite(saved_mlp, lambda d: None, rehash=False)  # and without a valid checksum
    _load_bounded(saved_mlp, megabytes=16)


@pytest.mark.parametrize("change", [
    lambda d: d["params"].update(lr=2.03),
    lambda d: d["params"].update(freeze="ngne"),
    lambda d: d["params"].update(num_workers=4),
    lambda d: d["fitted"]["classes_"]["$ndarray"]["data"].reverse(),
    lambda d: d.update(sktransfer_version="0.0.1"),
    lambda d: d.update(weights_sha256="0" * 64),
], ids=["lr", "freeze", "num_workers", "reversed-classes", "version", "weights-sum"])
def test_a_changed_document_fails_its_checksum(saved_mlp, change):
    rewrite(saved_mlp, change, rehash=False)
    with pytest.raises(ValueError, match="damaged.*does not match the checksum"):
        sktransfer.load(saved_mlp)


def test_document_checksum_is_stored(saved_mlp):
    from safetensors import safe_open

    with safe_open(saved_mlp, framework="pt") as file:
        document = json.loads(file.metadata()["sktransfer"])
    assert document["format_version"] == sktransfer.persistence.FORMAT_VERSION == 2
    assert document["document_sha256"] == document_checksum(document)


def _as_version_1(d):
    """The layout the previous sktransfer wrote: format_version 1, no checksum."""
    del d["document_sha256"]
    d["format_version"] = 1


def test_version_1_files_still_load(fitted, tmp_path):
    for name in ("mlp", "extractor", "extractor_unseeded"):
        estimator, X = fitted[name]
        path = tmp_path / f"{name}.safetensors"
        sktransfer.save(estimator, path)
        rewrite(path, _as_version_1)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            loaded = sktransfer.load(path)
        assert loaded.get_params() == estimator.get_params()
        assert_same_outputs(loaded, estimator, X)


@pytest.mark.parametrize("change, match", [
    (lambda d: d.update(format_version=1), "version 1 document has no document_sha256"),
    (lambda d: d.pop("document_sha256"), "has no checksum"),
], ids=["downgraded", "no-checksum"])
def test_checksum_cannot_be_dropped(saved_mlp, change, match):
    rewrite(saved_mlp, change, rehash=False)
    with pytest.raises(ValueError, match=match):
        sktransfer.load(saved_mlp)


@pytest.mark.parametrize("change, match", [
    (lambda d: d["params"].update(lr=-1.0), "'lr' parameter"),
    (lambda d: d["params"].update(freeze="ngne"), "'freeze' parameter"),
    (lambda d: d["params"].update(batch_size=0), "'batch_size' parameter"),
    (lambda d: d["params"].update(callbacks=["checkpoint"]), "callbacks=.*set_params"),
], ids=["lr", "freeze", "batch_size", "callbacks"])
def test_parameters_are_validated_at_load(saved_mlp, change, match):
    rewrite(saved_mlp, change)  # checksum recomputed: only validation stops it
    with pytest.raises(ValueError, match=match):
        sktransfer.load(saved_mlp)


@pytest.mark.parametrize("encode", [str, lambda p: {"$path": str(p)}], ids=["str", "path"])
def test_a_cache_folder_in_a_safe_file_is_not_used(fitted, tmp_path, encode):
    estimator, X = fitted["extractor"]
    folder = tmp_path / "planted"
    path = tmp_path / "extractor.safetensors"
    sktransfer.save(estimator, path)
    rewrite(path, lambda d: d["params"].update(cache=encode(folder)))
    with pytest.warns(UserWarning, match=r"cache=.*set_params\(cache=") as record:
        loaded = sktransfer.load(path)
    assert record[0].filename == __file__
    assert loaded.cache is None
    np.testing.assert_array_equal(loaded.transform(X), estimator.transform(X))
    assert not folder.exists()
    # an in-memory cache writes nothing to disk: kept
    sktransfer.save(extractor(cache=True).fit(X), path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert sktransfer.load(path).cache is True


def test_a_fitted_extractor_without_its_checkpoint_weights_is_refused(fitted, tmp_path):
    """Its first transform would read the checkpoint path that the file names."""
    estimator, _ = fitted["extractor"]  # rebuildable: the file holds no tensors
    path = tmp_path / "extractor.safetensors"
    sktransfer.save(estimator, path)
    rewrite(path, lambda d: d["params"].update(weights={"$path": str(tmp_path / "x.pth")}))
    with pytest.raises(ValueError, match="holds no weights"):
        sktransfer.load(path)


# -- the safe format: random damage (property tests) ---------------------------------------
@pytest.fixture(scope="module")
def damage_cases():
    """name -> (file bytes, estimator, X, {region: (start, end)}): the regions
    are the sktransfer document, the whole header (with its 8-byte size) and
    the whole file."""
    X, y = flat(n=24)
    X_img, _ = images(n_per_class=2)
    cases = {}
    for name, estimator, data in [
        ("mlp", FineTuneClassifier(model=None, epochs=1, hidden_layer_sizes=(4,),
                                   device="cpu", random_state=0).fit(X, y), X),
        ("extractor", extractor().fit(X_img), X_img),
    ]:
        buffer = io.BytesIO()
        sktransfer.save(estimator, buffer)
        blob = buffer.getvalue()
        header_end = 8 + int.from_bytes(blob[:8], "little")
        start = blob.index(b'{\\"format\\"')  # the document, escaped in the header
        document = (start, blob.index(b'"}', start) + 1)
        cases[name] = (blob, estimator, data, {
            "document": document, "header": (0, header_end), "file": (0, len(blob))})
    return cases


def _load_damaged(blob, megabytes=64):
    """``sktransfer.load`` of ``blob``: the estimator, or None after a ValueError;
    any other exception fails the test, as do traced allocations beyond
    ``megabytes`` (the file is a few kB)."""
    with _traced_peak() as peak:
        try:
            loaded = sktransfer.load(io.BytesIO(blob))
        except ValueError:
            loaded = None
    assert peak[0] < megabytes * 2**20, f"{peak[0] / 2**20:.0f} MiB"
    return loaded


from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

_PROPERTY = settings(max_examples=60, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.mark.parametrize("name", ["mlp", "extractor"])
@_PROPERTY
@given(fraction=st.floats(0, 1, exclude_max=True))
def test_a_truncated_file_raises_value_error_only(damage_cases, name, fraction):
    blob = damage_cases[name][0]
    assert _load_damaged(blob[:int(len(blob) * fraction)]) is None


@pytest.mark.parametrize("name", ["mlp", "extractor"])
@_PROPERTY
@given(data=st.data())
def test_a_flipped_bit_raises_value_error_or_changes_nothing(damage_cases, name, data):
    blob, estimator, X, regions = damage_cases[name]
    start, end = regions[data.draw(st.sampled_from(sorted(regions)))]
    position = data.draw(st.integers(start, end - 1))
    bit = data.draw(st.integers(0, 7))
    damaged = bytearray(blob)
    damaged[position] ^= 1 << bit
    loaded = _load_damaged(bytes(damaged))
    if loaded is not None:  # only a flip that means the same: e.g. 1e-05 -> 1E-05
        assert loaded.get_params() == estimator.get_params()
        assert_same_fitted_attributes(loaded, estimator)
        assert_same_outputs(loaded, estimator, X)


# -- the safe format: what a file may ask of the machine that loads it ----------------------
# The probe's crafted files: their checksum recomputed, as a malicious author would.
def _save_changed(estimator, path, change):
    sktransfer.save(estimator, path)
    rewrite(path, change)
    return path


@contextlib.contextmanager
def _built_on_meta_only(*names):
    """Fail the test when the classifiers build one of ``names`` (parts of their
    network) anywhere but on torch's meta device, where nothing is allocated."""
    from sktransfer.classifiers import _base

    with contextlib.ExitStack() as stack:
        for name in names:
            def guarded(*args, _real=getattr(_base, name), _name=name, **kwargs):
                assert torch.get_default_device().type == "meta", f"{_name} was built"
                return _real(*args, **kwargs)

            stack.enter_context(mock.patch.object(_base, name, guarded))
        yield


@contextlib.contextmanager
def _images_at_most(side):
    """Fail the test when an image is resized or cropped to more than ``side``
    pixels a side (what a crafted preprocessing would make predict allocate)."""
    from torchvision.transforms.v2 import functional as TF

    def guard(real):
        def guarded(images, size, *args, **kwargs):
            assert max(size) <= side, f"an image of {size} pixels"
            return real(images, size, *args, **kwargs)
        return guarded

    with mock.patch.object(TF, "resize", guard(TF.resize)), \
            mock.patch.object(TF, "center_crop", guard(TF.center_crop)):
        yield


def _widths(*widths):
    return lambda d: d["params"].update(hidden_layer_sizes={"$tuple": list(widths)})


@pytest.mark.parametrize("name, change", [
    ("mlp", _widths(25000, 25000)),
    ("mlp", lambda d: d["fitted"].update(n_features_in_=10**9)),
    ("mlp", lambda d: d["fitted"].update(classes_={"$ndarray": {
        "dtype": "<i8", "shape": [50_000], "data": list(range(50_000))}})),
    ("cnn", lambda d: d["fitted"].update(classes_={"$ndarray": {
        "dtype": "<i8", "shape": [50_000], "data": list(range(50_000))}})),
], ids=["hidden-widths", "input-width", "mlp-classes", "cnn-classes"])
def test_a_layer_width_bomb_is_refused_before_the_network_is_built(fitted, tmp_path,
                                                                    name, change):
    path = _save_changed(fitted[name][0], tmp_path / "bomb.safetensors", change)
    with _built_on_meta_only("mlp_backbone", "ClassifierNet"):
        with pytest.raises(ValueError, match="weights do not fit the network"):
            sktransfer.load(path)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(widths=st.lists(st.integers(1, 10**6), min_size=1, max_size=3))
def test_declared_widths_load_only_when_the_tensors_hold_them(fitted, tmp_path, widths):
    estimator, X = fitted["mlp"]  # hidden_layer_sizes=(8,)
    path = _save_changed(estimator, tmp_path / "widths.safetensors", _widths(*widths))
    if widths == [8]:
        assert_same_outputs(sktransfer.load(path), estimator, X)
        return
    with _built_on_meta_only("mlp_backbone", "ClassifierNet"):
        with pytest.raises(ValueError, match="weights do not fit the network"):
            sktransfer.load(path)


def _preprocess(**values):
    return lambda d: d["fitted"]["preprocess_"]["$preprocess"].update(values)


@pytest.mark.parametrize("name", ["cnn", "extractor"])
@pytest.mark.parametrize("change, match", [
    (_preprocess(crop_size={"$tuple": [12000, 12000]}), r"preprocess_.crop_size=\(12000"),
    (_preprocess(resize_size=12000), "preprocess_.resize_size=12000"),
    (_preprocess(resize_size={"$tuple": [16, 60000]}), r"preprocess_.resize_size=\(16, 60000"),
    (lambda d: d["params"].update(image_size=12000), "image_size=12000"),
], ids=["crop", "resize", "resize-pair", "image_size"])
def test_an_image_size_bomb_is_refused_before_predict(fitted, tmp_path, name, change,
                                                     match):
    estimator, X = fitted[name]
    path = _save_changed(estimator, tmp_path / "bomb.safetensors", change)
    with _images_at_most(2048), pytest.raises(ValueError, match=match + ".*2048 pixels"):
        outputs(sktransfer.load(path), X)  # predict or transform, as a caller would


@pytest.mark.parametrize("change, match", [
    (lambda d: d["params"].update(batch_size=2**40), "batch_size=1099511627776"),
    (_preprocess(in_chans=10**9), "in_chans=1000000000"),
    (lambda d: d["fitted"].update(n_features_out_=10**12), "n_features_out_=10{12}"),
], ids=["batch_size", "in_chans", "n_features_out"])
def test_other_declared_sizes_are_bounded(fitted, tmp_path, change, match):
    estimator, X = fitted["extractor"]
    path = _save_changed(estimator, tmp_path / "bomb.safetensors", change)
    with _counted_restores() as restored, pytest.raises(ValueError, match=match):
        sktransfer.load(path)
    assert restored == []


def _write_pngs(folder, images):
    from PIL import Image

    folder.mkdir()
    paths = [str(folder / f"{i}.png") for i in range(len(images))]
    for path, pixels in zip(paths, images):
        Image.fromarray(pixels).save(path)
    return paths


def test_a_loaded_model_forks_no_worker_process(fitted, tmp_path):
    """A file does not choose the caller's resources: num_workers is 0 once loaded."""
    estimator, X = fitted["cnn"]
    path = _save_changed(estimator, tmp_path / "m.safetensors",
                         lambda d: d["params"].update(num_workers=8))
    loaded = sktransfer.load(path)
    assert loaded.num_workers == 0
    paths = _write_pngs(tmp_path / "images", X[:4])
    workers = []
    real = torch.utils.data.DataLoader.__init__

    def recording(self, *args, **kwargs):
        workers.append(kwargs.get("num_workers", 0))
        real(self, *args, **kwargs)

    with mock.patch.object(torch.utils.data.DataLoader, "__init__", recording):
        predicted = loaded.predict(paths)
    assert workers and set(workers) == {0}
    np.testing.assert_array_equal(predicted, estimator.predict(paths))


@contextlib.contextmanager
def _no_io_outside(folder):
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


def _outside_models(folder):
    return {"hf-hub": "timm:hf-hub:evil/repo", "local-dir": f"timm:local-dir:{folder}",
            "repo-path": "timm:evil/repo"}


@pytest.mark.parametrize("name", ["cnn", "extractor"])
@pytest.mark.parametrize("source", ["hf-hub", "local-dir", "repo-path"])
def test_a_backbone_from_outside_the_file_is_refused_without_io(fitted, tmp_path, name,
                                                               source):
    """Neither load nor a predict after it reaches the Hub or a folder (an
    extractor with named weights builds its backbone at its first transform)."""
    folder = tmp_path / "evil"
    folder.mkdir()
    (folder / "config.json").write_text('{"architecture": "resnet18"}')
    estimator, X = fitted[name]
    model = _outside_models(folder)[source]
    path = _save_changed(estimator, tmp_path / "m.safetensors",
                         lambda d: d["params"].update(model=model))
    with _no_io_outside(folder), pytest.raises(ValueError, match="outside the safe file"):
        outputs(sktransfer.load(path), X)


@pytest.mark.parametrize("estimator, match", [
    (extractor(model="timm:hf-hub:evil/repo"), "outside the safe file"),
    (extractor(model="timm:local-dir:/models/vit"), "outside the safe file"),
    (mlp(image_size=4096), "image_size=4096 is larger than the 2048 pixels"),
], ids=["hf-hub", "local-dir", "image_size"])
def test_save_refuses_what_load_would_refuse(estimator, match):
    with pytest.raises(ValueError, match=f"cannot save.*{match}.*joblib.dump"):
        sktransfer.save(estimator, io.BytesIO())


@pytest.mark.parametrize("model", ["simple_cnn", "efficientnet_lite0", "resnet18",
                                   "timm:resnet18", "timm:vit_small_patch14_dinov2.lvd142m"])
def test_backbones_the_package_builds_are_kept(model):
    assert safe_round_trip(extractor(model=model)).model == model


# -- describe: what a file holds, from its header ---------------------------------------------
def test_describe_reads_the_header_and_builds_nothing(fitted, tmp_path):
    from safetensors import safe_open

    from sktransfer.persistence import describe, read_header

    estimator, _ = fitted["cnn"]
    path = tmp_path / "cnn.safetensors"
    sktransfer.save(estimator, path)
    with _counted_restores() as restored, \
            mock.patch.object(safe_open, "get_tensor", side_effect=AssertionError):
        description = describe(path)
    assert restored == []
    assert description.estimator.estimator == "FineTuneClassifier"
    assert description.estimator.library == "sktransfer" and description.fitted is True
    assert description.estimator.params == estimator.get_params()
    np.testing.assert_array_equal(description.classes, estimator.classes_)
    assert description.estimator.attributes["preprocess_"] == estimator.preprocess_
    assert description.tensors == read_header(path)[1]
    state = estimator.module_.state_dict()
    assert description.n_weights == sum(t.numel() for t in state.values())
    assert description.tensor_bytes == sum(t.numel() * t.element_size()
                                           for t in state.values())
    assert description.size_bytes == path.stat().st_size
    assert description.versions["sktransfer"] == sktransfer.__version__
    assert description.format_version == sktransfer.persistence.FORMAT_VERSION
    assert description.problems == () and description.other == {}


def test_describe_lists_a_pipelines_steps(fitted_pipelines, tmp_path):
    from sktransfer.persistence import describe

    pipeline = fitted_pipelines[0]["extractor-logreg"]
    path = tmp_path / "pipe.safetensors"
    sktransfer.save(pipeline, path)
    description = describe(path)
    assert description.estimator.estimator == "Pipeline"
    steps = dict(description.estimator.steps)
    assert list(steps) == [name for name, _ in pipeline.steps]
    extractor_step = steps["pretrainedfeatureextractor"]
    assert extractor_step.library == "sktransfer" and extractor_step.fitted is True
    logistic = steps["logisticregression"]
    assert logistic.library == "scikit-learn" and logistic.fitted is None
    assert logistic.estimator == "sklearn.linear_model._logistic.LogisticRegression"
    assert set(logistic.tensors) == {"skops"}
    assert description.fitted is True


def test_describe_says_what_load_would_refuse(fitted, tmp_path):
    from sktransfer.persistence import describe
    from sktransfer.persistence._describe import Unreadable

    estimator, _ = fitted["cnn"]
    path = _save_changed(estimator, tmp_path / "m.safetensors", lambda d: (
        d["params"].update(model="timm:hf-hub:evil/repo", lr={"$scalar": 5}),
        _preprocess(crop_size={"$tuple": [12000, 12000]})(d)))
    with _no_io_outside(tmp_path / "nothing"):
        description = describe(path)
    assert description.estimator.params["model"] == "timm:hf-hub:evil/repo"
    assert isinstance(description.estimator.params["lr"], Unreadable)
    assert len(description.problems) == 2
    assert "outside the safe file" in description.problems[0]
    assert "crop_size=(12000, 12000)" in description.problems[1]


# -- pickles: the version stamp -------------------------------------------------------------
@pytest.mark.parametrize("name", ["cnn", "mlp", "domain_adapt", "extractor"])
def test_pickle_from_another_version_warns(fitted, name, monkeypatch):
    estimator, X = fitted[name]
    monkeypatch.setattr(sktransfer._version, "__version__", "0.0.1")
    blob = pickle.dumps(estimator)
    monkeypatch.undo()
    with pytest.warns(InconsistentVersionWarning) as record:
        loaded = pickle.loads(blob)
    warning = record[0].message
    assert (warning.estimator_name, warning.original_version,
            warning.current_version) == (type(estimator).__name__, "0.0.1",
                                         sktransfer.__version__)
    assert "saved by sktransfer 0.0.1" in str(warning)
    assert str(pickle.loads(pickle.dumps(warning))) == str(warning)  # crosses processes
    assert record[0].filename == __file__  # points at the line that unpickled
    assert_same_outputs(loaded, estimator, X)


@pytest.mark.parametrize("estimator", [mlp(), extractor()], ids=lambda e: type(e).__name__)
def test_pickle_from_the_same_version_does_not_warn(estimator):
    blob = pickle.dumps(estimator)
    assert b"_sktransfer_version" in blob
    with warnings.catch_warnings():
        warnings.simplefilter("error", InconsistentVersionWarning)
        loaded = pickle.loads(blob)
    assert "_sktransfer_version" not in vars(loaded)


@pytest.mark.parametrize("name", ["mlp", "extractor"])
def test_pickle_without_a_stamp_loads_with_a_warning(fitted, name):
    estimator, X = fitted[name]
    state = estimator.__getstate__()
    del state["_sktransfer_version"]  # as written before the stamp existed
    loaded = type(estimator).__new__(type(estimator))
    with pytest.warns(InconsistentVersionWarning, match="version unknown"):
        loaded.__setstate__(state)
    assert_same_outputs(loaded, estimator, X)


# -- loading in a fresh process -------------------------------------------------------------
_LOADER = textwrap.dedent("""
    import sys, warnings
    import joblib, numpy as np, torch
    import sktransfer
    warnings.simplefilter("error", sktransfer.InconsistentVersionWarning)
    torch.set_num_threads(1)
    folder, names = sys.argv[1], sys.argv[2].split(",")
    results = {}
    for name in names:
        X = np.load(f"{folder}/{name}.npy", allow_pickle=False)
        for how, estimator in [("joblib", joblib.load(f"{folder}/{name}.joblib")),
                               ("safe", sktransfer.load(f"{folder}/{name}.safetensors"))]:
            if hasattr(estimator, "predict_proba"):
                results[f"{name}-{how}-predict"] = estimator.predict(X)
                results[f"{name}-{how}-predict_proba"] = estimator.predict_proba(X)
            results[f"{name}-{how}-transform"] = estimator.transform(X)
    np.savez(f"{folder}/results.npz", **results)
""")


def _load_in_fresh_process(folder, names, env=None):
    subprocess.run([sys.executable, "-c", _LOADER, str(folder), ",".join(names)],
                   check=True, cwd=folder, env=env, timeout=300)
    with np.load(folder / "results.npz", allow_pickle=False) as results:
        return dict(results)


def test_files_load_in_a_fresh_process(fitted, tmp_path):
    """joblib and safe files need nothing of the session that wrote them."""
    for name in ESTIMATORS:
        estimator, X = fitted[name]
        joblib.dump(estimator, tmp_path / f"{name}.joblib")
        sktransfer.save(estimator, tmp_path / f"{name}.safetensors")
        np.save(tmp_path / f"{name}.npy", X)
    results = _load_in_fresh_process(tmp_path, ESTIMATORS)
    for name in ESTIMATORS:
        estimator, X = fitted[name]
        for how in ("joblib", "safe"):
            for method in ("predict", "predict_proba", "transform"):
                if method == "transform" or hasattr(estimator, method):
                    np.testing.assert_array_equal(results[f"{name}-{how}-{method}"],
                                                  getattr(estimator, method)(X),
                                                  err_msg=f"{name} {how} {method}")


@pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="needs a CUDA GPU: fits on the GPU, then loads the joblib and safe files "
           "in a process that sees no GPU (CUDA_VISIBLE_DEVICES='')",
)
def test_fitted_on_cuda_loads_on_a_cpu_only_machine(tmp_path):
    X_img, y_img = images()
    X_flat, y_flat = flat()
    # device="auto": CUDA here, the CPU where there is none; precision="32" so the
    # two devices compute the same thing up to float32 rounding.
    common = dict(device="auto", precision="32")
    estimators = {
        "cnn": (cnn(**common).fit(X_img, y_img), X_img),
        "mlp": (mlp(**common).fit(X_flat, y_flat), X_flat),
        "extractor_unseeded": (extractor(random_state=None, **common).fit(X_img), X_img),
    }
    for name, (estimator, X) in estimators.items():
        network = vars(estimator).get("module_", vars(estimator).get("_backbone_"))
        assert next(network.parameters()).is_cuda
        joblib.dump(estimator, tmp_path / f"{name}.joblib")
        sktransfer.save(estimator, tmp_path / f"{name}.safetensors")
        np.save(tmp_path / f"{name}.npy", X)
    results = _load_in_fresh_process(tmp_path, list(estimators),
                                     env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    for name, (estimator, X) in estimators.items():
        for how in ("joblib", "safe"):
            np.testing.assert_allclose(results[f"{name}-{how}-transform"],
                                       estimator.transform(X), rtol=1e-4, atol=1e-5)
            if hasattr(estimator, "predict"):
                np.testing.assert_allclose(results[f"{name}-{how}-predict_proba"],
                                           estimator.predict_proba(X), atol=1e-5)
                np.testing.assert_array_equal(results[f"{name}-{how}-predict"],
                                              estimator.predict(X))


# -- the safe format: Pipelines ---------------------------------------------------------------
from sklearn.base import BaseEstimator, TransformerMixin  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import Pipeline, make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

_BUILT = []  # one item per _Shift that skops built from a file


class _Shift(TransformerMixin, BaseEstimator):
    """A scikit-learn-compatible step of the test's own: code, not data."""

    def __init__(self, by=1.0):
        self.by = by

    def fit(self, X, y=None):
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def transform(self, X):
        return np.asarray(X) + self.by

    def __setstate__(self, state):
        _BUILT.append(state)
        super().__setstate__(state)


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


PIPELINES = list(readme_pipelines())


@pytest.fixture(scope="module")
def fitted_pipelines():
    X, y = images()
    return {name: pipe.fit(X, y) for name, pipe in readme_pipelines().items()}, X


def assert_same_pipeline(loaded, pipeline, X):
    assert type(loaded) is Pipeline
    assert [name for name, _ in loaded.steps] == [name for name, _ in pipeline.steps]
    for (_, a), (_, b) in zip(loaded.steps, pipeline.steps):
        assert type(a) is type(b)
    for method in ("predict", "predict_proba"):
        expected = getattr(pipeline, method)(X)
        value = getattr(loaded, method)(X)
        assert value.dtype == expected.dtype, method
        np.testing.assert_array_equal(value, expected, err_msg=method)


@pytest.mark.parametrize("name", PIPELINES)
def test_pipeline_round_trip_is_identical(fitted_pipelines, name, tmp_path):
    pipelines, X = fitted_pipelines
    pipeline = pipelines[name]
    path = tmp_path / "pipe.safetensors"
    sktransfer.save(pipeline, path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = sktransfer.load(path)
    assert_same_pipeline(loaded, pipeline, X)
    assert repr(loaded.get_params()) == repr(pipeline.get_params())
    for (_, a), (_, b) in zip(loaded.steps, pipeline.steps):
        if isinstance(b, (FineTuneClassifier, PretrainedFeatureExtractor)):
            assert_same_fitted_attributes(a, b)


def test_readme_pipeline_file_is_small(fitted_pipelines, tmp_path):
    """Rebuildable extractor weights are not stored; LogisticRegression is a few kB."""
    path = tmp_path / "pipe.safetensors"
    sktransfer.save(fitted_pipelines[0]["extractor-logreg"], path)
    assert path.stat().st_size < 30_000


def test_pipeline_document_lists_its_steps(fitted_pipelines, tmp_path):
    from safetensors import safe_open

    path = tmp_path / "pipe.safetensors"
    sktransfer.save(fitted_pipelines[0]["extractor-scaler-logreg"], path)
    with safe_open(path, framework="pt") as file:
        document = json.loads(file.metadata()["sktransfer"])
        keys = set(file.keys())
    assert document["estimator"] == "Pipeline"
    assert document["format_version"] == sktransfer.persistence.FORMAT_VERSION
    assert document["params"] == {"memory": None, "transform_input": None, "verbose": False}
    assert [name for name, _ in document["steps"]] == [
        "pretrainedfeatureextractor", "standardscaler", "logisticregression"]
    assert document["steps"][0][1]["estimator"] == "PretrainedFeatureExtractor"
    assert document["steps"][1][1] == {
        "estimator": "skops", "class": "sklearn.preprocessing._data.StandardScaler"}
    assert keys == {"standardscaler.skops", "logisticregression.skops"}
    assert document["document_sha256"] == document_checksum(document)


def test_pipeline_weights_are_stored_under_the_step_name(fitted_pipelines, tmp_path):
    from safetensors import safe_open

    path = tmp_path / "pipe.safetensors"
    sktransfer.save(fitted_pipelines[0]["extractor-finetune"], path)
    with safe_open(path, framework="pt") as file:
        keys = set(file.keys())
    assert keys and all(k.startswith("finetuneclassifier.module_.") for k in keys)


def test_passthrough_steps_and_unfitted_pipelines_round_trip(fitted_pipelines):
    X, y = flat()
    pipeline = Pipeline([("scale", StandardScaler()), ("skip", "passthrough"),
                         ("none", None), ("clf", mlp())], verbose=False)
    unfitted = safe_round_trip(pipeline)
    assert repr(unfitted.get_params()) == repr(pipeline.get_params())
    pipeline.fit(X, y)
    assert_same_pipeline(safe_round_trip(pipeline), pipeline, X)


def test_grid_search_best_estimator_is_saved(tmp_path):
    X, y = images()
    search = GridSearchCV(make_pipeline(extractor(), LogisticRegression(max_iter=200)),
                          {"logisticregression__C": [0.1, 10.0]}, cv=2).fit(X, y)
    path = tmp_path / "best.safetensors"
    sktransfer.save(search.best_estimator_, path)
    loaded = sktransfer.load(path)
    assert loaded.named_steps["logisticregression"].C == search.best_params_[
        "logisticregression__C"]
    assert_same_pipeline(loaded, search.best_estimator_, X)


def test_pipeline_loads_in_a_fresh_process(fitted_pipelines, tmp_path):
    pipelines, X = fitted_pipelines
    for name in PIPELINES:
        sktransfer.save(pipelines[name], tmp_path / f"{name}.safetensors")
    np.save(tmp_path / "X.npy", X)
    script = textwrap.dedent("""
        import sys, warnings
        import numpy as np, torch
        import sktransfer
        warnings.simplefilter("error")
        torch.set_num_threads(1)
        X = np.load("X.npy", allow_pickle=False)
        for name in sys.argv[1].split(","):
            pipe = sktransfer.load(f"{name}.safetensors")
            np.save(f"{name}-proba.npy", pipe.predict_proba(X))
            np.save(f"{name}-predict.npy", pipe.predict(X))
    """)
    subprocess.run([sys.executable, "-c", script, ",".join(PIPELINES)], check=True,
                   cwd=tmp_path, timeout=300)
    for name in PIPELINES:
        np.testing.assert_array_equal(np.load(tmp_path / f"{name}-proba.npy"),
                                      pipelines[name].predict_proba(X), err_msg=name)
        np.testing.assert_array_equal(np.load(tmp_path / f"{name}-predict.npy"),
                                      pipelines[name].predict(X), err_msg=name)


def _skops_span(path, key):
    """(start, end): where the tensor ``key`` lies in the file."""
    data = path.read_bytes()
    size = int.from_bytes(data[:8], "little")
    start, end = json.loads(data[8:8 + size])[key]["data_offsets"]
    return 8 + size + start, 8 + size + end


@pytest.mark.parametrize("where", [0, 0.5, -1], ids=["first", "middle", "last"])
def test_checksum_covers_the_skops_bytes(fitted_pipelines, tmp_path, where):
    path = tmp_path / "pipe.safetensors"
    sktransfer.save(fitted_pipelines[0]["extractor-logreg"], path)
    start, end = _skops_span(path, "logisticregression.skops")
    data = bytearray(path.read_bytes())
    position = start + int((end - start) * where) if where >= 0 else end - 1
    data[position] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="damaged.*checksum"):
        sktransfer.load(path)


def test_a_changed_pipeline_document_fails_its_checksum(fitted_pipelines, tmp_path):
    path = tmp_path / "pipe.safetensors"
    sktransfer.save(fitted_pipelines[0]["extractor-logreg"], path)
    rewrite(path, lambda d: d["steps"].reverse(), rehash=False)
    with pytest.raises(ValueError, match="does not match the checksum"):
        sktransfer.load(path)


def test_untrusted_step_type_is_refused_at_save(tmp_path):
    X, y = flat()
    path = tmp_path / "pipe.safetensors"
    for step, type_name in [
        (_Shift(), f"{__name__}._Shift"),
        (__import__("sklearn.tree", fromlist=["x"]).DecisionTreeClassifier(),
         "sklearn.tree._tree.Tree"),
    ]:
        pipeline = make_pipeline(StandardScaler(), step).fit(X, y)
        with pytest.raises(ValueError, match=f"holds {type_name}, a type that "
                                             "sktransfer.load does not trust.*joblib.dump"):
            sktransfer.save(pipeline, path)
        assert not path.exists()


def test_untrusted_step_type_is_refused_at_load_before_it_is_built(tmp_path, monkeypatch):
    """A file whose skops bytes hold a type of the test's own (written as if the
    allowlist had it) is refused, naming the type, and nothing of it is built."""
    import skops.io

    X, y = flat()
    pipeline = make_pipeline(_Shift(by=2.0), mlp()).fit(X, y)
    name = f"{__name__}._Shift"
    path = tmp_path / "pipe.safetensors"
    monkeypatch.setattr(sktransfer.persistence._pipeline, "TRUSTED_TYPES", (name,))
    sktransfer.save(pipeline, path)
    monkeypatch.undo()
    _BUILT.clear()
    with pytest.raises(ValueError, match=f"holds {name}, a type that sktransfer.load "
                                         "does not trust"):
        sktransfer.load(path)
    assert _BUILT == []
    # The payload does build a _Shift when it is trusted: the check above mattered.
    blob = skops.io.dumps(pipeline.steps[0][1])
    skops.io.loads(blob, trusted=[name])
    assert len(_BUILT) == 1


def test_nested_pipeline_is_refused_at_save(tmp_path):
    X, y = flat()
    inner = make_pipeline(StandardScaler(), mlp())
    for pipeline in (make_pipeline(StandardScaler(), inner),
                     make_pipeline(make_pipeline(StandardScaler()), mlp())):
        with pytest.raises(ValueError, match="is itself a Pipeline.*Flatten"):
            sktransfer.save(pipeline, tmp_path / "pipe.safetensors")


def test_other_pipeline_steps_are_refused_at_save(tmp_path):
    class MyClassifier(FineTuneClassifier):
        pass

    with pytest.raises(TypeError, match="step 'myclassifier'.*joblib.dump"):
        sktransfer.save(make_pipeline(StandardScaler(), MyClassifier()),
                        tmp_path / "pipe.safetensors")
    with pytest.raises(ValueError, match="step name 'a.b'"):
        sktransfer.save(Pipeline([("a.b", mlp())]), tmp_path / "pipe.safetensors")
    with pytest.raises(ValueError, match="parameter augment"):
        sktransfer.save(make_pipeline(cnn(augment=lambda b: b)),
                        tmp_path / "pipe.safetensors")


def test_pipeline_memory_is_not_used_after_load(tmp_path):
    X, y = flat()
    folder = tmp_path / "cache"
    pipeline = make_pipeline(StandardScaler(), mlp(), memory=str(folder)).fit(X, y)
    path = tmp_path / "pipe.safetensors"
    sktransfer.save(pipeline, path)
    shutil.rmtree(folder)  # fitting wrote it
    with pytest.warns(UserWarning, match="memory=.*cache.*memory=None") as record:
        loaded = sktransfer.load(path)
    assert record[0].filename == __file__
    assert loaded.memory is None
    loaded.fit(X, y)
    assert not folder.exists()
    with pytest.raises(ValueError, match="parameter memory.*joblib.dump"):
        sktransfer.save(make_pipeline(StandardScaler(), mlp(),
                                      memory=joblib.Memory(str(folder), verbose=0)),
                        path)


@pytest.mark.parametrize("change, match", [
    (lambda d: d["steps"][1][1].update({"class": "sklearn.svm._classes.SVC"}),
     "hold a sklearn.linear_model._logistic.LogisticRegression, not the"),
    (lambda d: d["steps"][1].__setitem__(0, "other"), "belongs to no step"),
    (lambda d: d["steps"].append(d["steps"][0]), "step names repeat"),
    (lambda d: d["steps"][1][1].update({"estimator": "Exploit"}), "'Exploit'.*neither"),
    (lambda d: d["steps"][0][1].update({"estimator": "FineTuneClassifier"}),
     "FineTuneClassifier"),
    (lambda d: d["params"].update({"exploit": 1}), "no parameter 'exploit'"),
    (lambda d: d.update(steps=[]), "not a non-empty list"),
    (lambda d: d.update(fitted={"predict": 1}), "not an attribute name"),
], ids=["class", "tensor-owner", "repeated", "estimator", "wrong-record", "param",
        "no-steps", "method"])
def test_unexpected_pipeline_content_is_refused(fitted_pipelines, tmp_path, change, match):
    path = tmp_path / "pipe.safetensors"
    sktransfer.save(fitted_pipelines[0]["extractor-logreg"], path)
    rewrite(path, change)
    with pytest.raises(ValueError, match=match):
        sktransfer.load(path)


def test_compressed_skops_bytes_are_refused(fitted_pipelines, tmp_path):
    """A zip that inflates is refused before skops reads it (a rehashed file)."""
    import zipfile

    from safetensors import safe_open
    from safetensors.torch import save_file

    path = tmp_path / "pipe.safetensors"
    sktransfer.save(fitted_pipelines[0]["extractor-logreg"], path)
    with safe_open(path, framework="pt") as file:
        metadata = file.metadata()
        tensors = {key: file.get_tensor(key) for key in file.keys()}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("schema.json", b"{" + b" " * 10_000_000 + b"}")
    tensors["logisticregression.skops"] = torch.frombuffer(
        bytearray(buffer.getvalue()), dtype=torch.uint8)
    document = json.loads(metadata["sktransfer"])
    from sktransfer._utils.hashing import tensors_checksum
    document["weights_sha256"] = tensors_checksum(tensors)
    document["document_sha256"] = document_checksum(document)
    save_file(tensors, path, metadata={"sktransfer": json.dumps(document)})
    with pytest.raises(ValueError, match="compressed"):
        sktransfer.load(path)


def test_skops_is_needed_only_for_scikit_learn_steps(fitted_pipelines, tmp_path,
                                                      monkeypatch):
    pipelines, X = fitted_pipelines
    with_sklearn = tmp_path / "logreg.safetensors"
    sktransfer.save(pipelines["extractor-logreg"], with_sklearn)
    for module in ("skops", "skops.io"):
        monkeypatch.setitem(sys.modules, module, None)  # as if not installed
    # sktransfer's own steps need no skops
    only_ours = tmp_path / "finetune.safetensors"
    sktransfer.save(pipelines["extractor-finetune"], only_ours)
    assert_same_pipeline(sktransfer.load(only_ours), pipelines["extractor-finetune"], X)
    install = r'pip install "sktransfer\[pipeline\]" \(or pip install skops\)'
    with pytest.raises(ImportError, match=install):
        sktransfer.save(pipelines["extractor-logreg"], tmp_path / "other.safetensors")
    with pytest.raises(ImportError, match=install):
        sktransfer.load(with_sklearn)


def test_read_header_reads_the_document_and_tensor_list_only(saved_mlp, fitted):
    from sktransfer.persistence import read_header

    document, tensors = read_header(saved_mlp)
    assert document["estimator"] == "FineTuneClassifier"
    assert document["format_version"] == sktransfer.persistence.FORMAT_VERSION
    state = fitted["mlp"][0].module_.state_dict()
    assert tensors == {f"module_.{k}": (str(v.dtype).replace("torch.float32", "F32"),
                                        tuple(v.shape)) for k, v in state.items()}
    rewrite(saved_mlp, lambda d: d["params"].update(lr=2.0), rehash=False)
    with pytest.raises(ValueError, match="checksum"):
        read_header(saved_mlp)
    saved_mlp.write_bytes(b"\x00" * 4)
    with pytest.raises(ValueError, match="too short"):
        read_header(saved_mlp)


def test_a_step_name_with_a_double_underscore_is_refused_at_save(tmp_path):
    from sklearn.pipeline import Pipeline

    pipe = Pipeline([("features__x", extractor()), ("clf", LogisticRegression())])
    with pytest.raises(ValueError, match="'__'"):
        sktransfer.save(pipe, tmp_path / "p.safetensors")
