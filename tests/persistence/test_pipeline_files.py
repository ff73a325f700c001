"""A scikit-learn Pipeline in a safe file (``persistence/_pipeline.py``)."""

import io
import json
import shutil
import subprocess
import sys
import textwrap
import warnings

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

import sktransfer
from sktransfer import FineTuneClassifier, PretrainedFeatureExtractor

from safe_files import (
    assert_same_fitted_attributes,
    cnn,
    document_checksum,
    extractor,
    flat,
    images,
    mlp,
    readme_pipelines,
    rewrite,
    safe_round_trip,
)


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


PIPELINES = list(readme_pipelines())


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


def test_an_sktransfer_estimator_nested_in_a_column_transformer_is_refused_saying_so(
        tmp_path):
    """Its error called sktransfer's own extractor a type that load does not
    trust; it says the safe format keeps sktransfer's estimators as steps of
    the Pipeline itself."""
    import pandas as pd
    from sklearn.compose import make_column_transformer

    rng = np.random.default_rng(0)
    columns = [f"pixel{i}" for i in range(16)]
    X = pd.DataFrame(rng.random((8, 16)).astype(np.float32), columns=columns)
    nested = make_column_transformer(
        (PretrainedFeatureExtractor(model="simple_cnn", weights=None, input_shape=(1, -1),
                                    device="cpu", random_state=0), columns))
    pipeline = make_pipeline(nested, LogisticRegression()).fit(X, [0, 1] * 4)
    path = tmp_path / "pipe.safetensors"
    with pytest.raises(ValueError, match="holds sktransfer's PreprocessConfig, "
                                         "PretrainedFeatureExtractor inside a scikit-learn "
                                         "step.*ColumnTransformer.*joblib.dump"):
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


def test_a_step_name_with_a_double_underscore_is_refused_at_save(tmp_path):
    from sklearn.pipeline import Pipeline

    pipe = Pipeline([("features__x", extractor()), ("clf", LogisticRegression())])
    with pytest.raises(ValueError, match="'__'"):
        sktransfer.save(pipe, tmp_path / "p.safetensors")
