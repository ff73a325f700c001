"""What a safe file holds, from its header alone (``persistence/_describe.py``)."""

from unittest import mock

import numpy as np

import sktransfer

from safe_files import changed_preprocess, counted_restores, no_io_outside, save_changed


def test_describe_reads_the_header_and_builds_nothing(fitted, tmp_path):
    from safetensors import safe_open

    from sktransfer.persistence import describe, read_header

    estimator, _ = fitted["cnn"]
    path = tmp_path / "cnn.safetensors"
    sktransfer.save(estimator, path)
    with counted_restores() as restored, \
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
    path = save_changed(estimator, tmp_path / "m.safetensors", lambda d: (
        d["params"].update(model="timm:hf-hub:evil/repo", lr={"$scalar": 5}),
        changed_preprocess(crop_size={"$tuple": [12000, 12000]})(d)))
    with no_io_outside(tmp_path / "nothing"):
        description = describe(path)
    assert description.estimator.params["model"] == "timm:hf-hub:evil/repo"
    assert isinstance(description.estimator.params["lr"], Unreadable)
    assert len(description.problems) == 2
    assert "outside the safe file" in description.problems[0]
    assert "crop_size=(12000, 12000)" in description.problems[1]


def test_describe_says_a_truncated_file_is_truncated(fitted, tmp_path):
    import pytest

    from sktransfer.persistence import describe

    estimator, _ = fitted["cnn"]
    path = tmp_path / "m.safetensors"
    sktransfer.save(estimator, path)
    whole = path.read_bytes()
    description = describe(path)
    assert description.header_bytes + description.tensor_bytes == len(whole)
    assert description.problems == ()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(whole[:description.header_bytes + 10])
    problems = describe(cut).problems
    assert len(problems) == 1 and problems[0].startswith("the file is truncated")
    assert f"holds {description.header_bytes + 10:,}" in problems[0]
    with pytest.raises(ValueError):
        sktransfer.load(cut)  # what the problem announces
