"""The column of texts a text estimator was fitted on: ``feature_names_in_`` set
from a one-column DataFrame at fit, checked at predict and transform, removed by a
fit on texts without a column name, kept by ``sktransfer.save`` and ``load``."""

import numpy as np
import pandas as pd
import pytest

import sktransfer
from sktransfer import FineTuneClassifier, PretrainedFeatureExtractor
from sktransfer.backbones import _registry, register_backbone
from sktransfer.backbones._text import build_hf

from text_models import sentiment_texts, write_tiny_bert


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    return write_tiny_bert(tmp_path_factory.mktemp("tiny_bert_names"))


@pytest.fixture(scope="module")
def texts():
    return sentiment_texts(12)


def extractor(folder):
    return PretrainedFeatureExtractor(model=f"hf:{folder}", device="cpu")


def classifier(model):
    return FineTuneClassifier(model=model, epochs=1, batch_size=6, device="cpu",
                              random_state=0, verbose=0)


def _fitted(kind, folder, X, y):
    if kind == "extractor":
        return extractor(folder).fit(X)
    return classifier(f"hf:{folder}").fit(X, y)


def _outputs(estimator, X):
    if isinstance(estimator, PretrainedFeatureExtractor):
        return estimator.transform(X)
    return estimator.predict_proba(X)


KINDS = ["extractor", "classifier"]


@pytest.mark.parametrize("kind", KINDS)
def test_the_column_of_a_one_column_frame_is_remembered_and_a_list_forgets_it(
        kind, tiny_bert, texts):
    X, y = texts
    estimator = _fitted(kind, tiny_bert, pd.DataFrame({"review": X}), y)
    assert isinstance(estimator.feature_names_in_, np.ndarray)
    assert estimator.feature_names_in_.dtype == object
    assert estimator.feature_names_in_.tolist() == ["review"]
    assert estimator.n_features_in_ == 1

    estimator.fit(X, y) if kind == "classifier" else estimator.fit(X)
    assert not hasattr(estimator, "feature_names_in_")
    assert not hasattr(estimator, "n_features_in_")


@pytest.mark.parametrize("X_fit", [
    "list", "series", "array", "unnamed frame"])
def test_texts_without_a_str_column_name_set_no_names(X_fit, tiny_bert, texts):
    X, _ = texts
    given = {"list": X, "series": pd.Series(X, name="review"),
             "array": np.array(X, dtype=object),
             "unnamed frame": pd.DataFrame(X)}[X_fit]  # column 0: not a str name
    fitted = extractor(tiny_bert).fit(given)
    assert not hasattr(fitted, "feature_names_in_")
    assert not hasattr(fitted, "n_features_in_")


@pytest.mark.parametrize("kind", KINDS)
def test_another_column_name_is_refused_naming_both(kind, tiny_bert, texts,
                                                    monkeypatch):
    X, y = texts
    estimator = _fitted(kind, tiny_bert, pd.DataFrame({"review": X}), y)
    # Refused before any model work: no batch is ever made.
    from sktransfer._utils import runtime

    def no_batches(*args, **kwargs):
        raise AssertionError("the texts reached the model")

    monkeypatch.setattr(runtime.BatchLoader, "__init__", no_batches)
    with pytest.raises(ValueError, match=r"X's text column is 'body', but .* was "
                                         r"fitted on the column 'review'"):
        _outputs(estimator, pd.DataFrame({"body": X}))
    with pytest.raises(ValueError, match=r"DataFrame of 2 columns; .* fitted on the "
                                         r"text column 'review': pass X\[\['review'\]\]"):
        _outputs(estimator, pd.DataFrame({"review": X, "id": range(len(X))}))


@pytest.mark.parametrize("kind", KINDS)
def test_the_texts_themselves_are_taken_whatever_the_fit_saw(kind, tiny_bert, texts):
    X, y = texts
    named = _fitted(kind, tiny_bert, pd.DataFrame({"review": X}), y)
    expected = _outputs(named, X[:4])
    for same in (pd.Series(X[:4], name="body"), np.array(X[:4], dtype=object),
                 pd.DataFrame({"review": X[:4]}), pd.DataFrame(X[:4])):
        np.testing.assert_allclose(_outputs(named, same), expected, atol=1e-6)

    unnamed = _fitted(kind, tiny_bert, X, y)
    np.testing.assert_allclose(_outputs(unnamed, pd.DataFrame({"body": X[:4]})),
                               _outputs(unnamed, X[:4]), atol=1e-6)


def test_feature_names_out_of_a_text_extractor(tiny_bert, texts):
    X, _ = texts
    unnamed = extractor(tiny_bert).fit(X)
    names = unnamed.get_feature_names_out()
    assert names[0] == "pretrainedfeatureextractor0" and len(names) == 32
    assert list(unnamed.get_feature_names_out(["anything"])) == list(names)

    named = extractor(tiny_bert).fit(pd.DataFrame({"review": X}))
    assert list(named.get_feature_names_out()) == list(names)
    assert list(named.get_feature_names_out(["review"])) == list(names)
    with pytest.raises(ValueError, match="input_features is not equal to "
                                         "feature_names_in_"):
        named.get_feature_names_out(["body"])


@pytest.fixture
def registered_tiny_bert(tiny_bert, monkeypatch):
    """The tiny BERT under a registered name, for this test only: the safe file
    names only backbones the package builds."""
    monkeypatch.setattr(_registry, "_REGISTRY", dict(_registry._REGISTRY))
    name = "test-feature-names-tiny-bert"
    register_backbone(name, lambda **arguments: build_hf(str(tiny_bert), **arguments),
                      modality="text")
    return name


@pytest.mark.parametrize("kind", KINDS)
def test_save_and_load_keep_the_column(kind, registered_tiny_bert, texts, tmp_path):
    X, y = texts
    frame = pd.DataFrame({"review": X})
    if kind == "extractor":
        estimator = PretrainedFeatureExtractor(model=registered_tiny_bert,
                                               device="cpu").fit(frame)
    else:
        estimator = classifier(registered_tiny_bert).fit(frame, y)
    sktransfer.save(estimator, tmp_path / "m.sktransfer")
    loaded = sktransfer.load(tmp_path / "m.sktransfer")
    assert loaded.feature_names_in_.tolist() == ["review"]
    assert loaded.feature_names_in_.dtype == object and loaded.n_features_in_ == 1
    np.testing.assert_allclose(_outputs(loaded, X[:4]), _outputs(estimator, X[:4]),
                               atol=1e-6)
    with pytest.raises(ValueError, match="fitted on the column 'review'"):
        _outputs(loaded, pd.DataFrame({"body": X[:4]}))
