"""Vision transformers: any input size, freezing by block, timm hub names, DINOv2
and CLIP image towers. Random weights only (no model hub)."""

import os
import pickle
import shutil

import numpy as np
import pytest
import torch
from torch import nn

import sktransfer.backbones._registry as registry_module
from sktransfer import FineTuneClassifier, PretrainedFeatureExtractor
from sktransfer.backbones import load_backbone, register_backbone
from sktransfer.training import stages
from sktransfer.training._freeze import set_trainable

timm = pytest.importorskip("timm")
from torchvision.models import VisionTransformer  # noqa: E402
from torchvision.models.vision_transformer import interpolate_embeddings  # noqa: E402

TINY = "timm:vit_tiny_patch16_224"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def small_torchvision_vit(image_size=32, seed=0):
    torch.manual_seed(seed)
    return VisionTransformer(image_size=image_size, patch_size=8, num_layers=3,
                             num_heads=2, hidden_dim=16, mlp_dim=32, num_classes=4)


def features(backbone, x):
    with torch.inference_mode():
        return backbone.eval()(x)


def images(n=8, size=40, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)


# --------------------------------------------------------------------------- #
# 1. image_size
# --------------------------------------------------------------------------- #

@pytest.mark.parametrize("image_size", [64, (32, 64)])
def test_timm_vit_at_another_size_equals_timms_dynamic_size(image_size):
    backbone = load_backbone(TINY, None, image_size=image_size, random_state=0)
    height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
    assert backbone.body.pos_embed.shape == (1, 1 + height // 16 * width // 16, 192)
    assert backbone.preprocess.output_size == (height, width)
    assert backbone.preprocess.mean == (0.5, 0.5, 0.5)

    # timm's own route to another size: the same weights, resampled per forward.
    torch.manual_seed(0)
    native = timm.create_model("vit_tiny_patch16_224")
    dynamic = timm.create_model("vit_tiny_patch16_224", dynamic_img_size=True,
                                num_classes=0)
    dynamic.load_state_dict({k: v for k, v in native.state_dict().items()
                             if not k.startswith("head")})
    x = torch.rand(2, 3, height, width)
    torch.testing.assert_close(features(backbone, x), features(dynamic, x),
                               rtol=0, atol=0)


def test_torchvision_vit_at_another_size_equals_a_rebuilt_model():
    model = small_torchvision_vit(image_size=32)
    state = model.state_dict()
    backbone = load_backbone(model, image_size=64)
    assert backbone.body.encoder.pos_embedding.shape == (1, 1 + 8 * 8, 16)

    rebuilt = VisionTransformer(image_size=64, patch_size=8, num_layers=3, num_heads=2,
                                hidden_dim=16, mlp_dim=32, num_classes=4)
    rebuilt.load_state_dict(interpolate_embeddings(64, 8, dict(state)))
    x = torch.rand(2, 3, 64, 64)
    torch.testing.assert_close(features(backbone, x), features(rebuilt, x))


def test_named_torchvision_vit_at_another_size():
    backbone = load_backbone("vit_b_16", None, image_size=32, random_state=0)
    assert backbone.num_features == 768
    assert backbone.body.encoder.pos_embedding.shape == (1, 5, 768)
    assert backbone.preprocess.output_size == (32, 32)
    assert features(backbone, torch.rand(1, 3, 32, 32)).shape == (1, 768)


@pytest.mark.parametrize("model, size, patch", [
    (TINY, 100, 16), (TINY, (64, 72), 16), ("timm:vit_small_patch14_dinov2", 64, 14),
])
def test_size_not_a_multiple_of_the_patch_names_the_patch_size(model, size, patch):
    with pytest.raises(ValueError, match=f"patch size is {patch}"):
        load_backbone(model, None, image_size=size)


def test_torchvision_vit_size_errors():
    with pytest.raises(ValueError, match="patch size is 8.*e.g. 32 or 40"):
        load_backbone(small_torchvision_vit(), image_size=36)
    with pytest.raises(ValueError, match="square"):
        load_backbone(small_torchvision_vit(), image_size=(32, 64))


def test_a_non_square_size_gets_a_suggestion_per_side():
    with pytest.raises(ValueError, match=r"e\.g\. height 224 or 240, width 96 or 112\)"):
        load_backbone(TINY, None, image_size=(225, 100))
    with pytest.raises(ValueError, match=r"e\.g\. width 96 or 112\)"):
        load_backbone(TINY, None, image_size=(224, 100))


def _register_vit(monkeypatch, name, *, builds_for_size):
    """Register a builder of a small torchvision ViT for one test: one that
    leaves image_size to load_backbone, or one that builds for it."""
    monkeypatch.setattr(registry_module, "_REGISTRY", dict(registry_module._REGISTRY))

    def build(*, weights, layer, pooling, image_size, **options):
        return load_backbone(small_torchvision_vit(), layer=layer, pooling=pooling,
                             image_size=image_size if builds_for_size else None)

    register_backbone(name, build)
    return name


@pytest.fixture(params=[False, True], ids=["ignores-image_size", "builds-for-image_size"])
def registered_vit(monkeypatch, request):
    return _register_vit(monkeypatch, "test_tiny_vit", builds_for_size=request.param)


def test_a_registered_vit_is_built_for_image_size(registered_vit):
    backbone = load_backbone(registered_vit, None, image_size=64)
    assert backbone.body.encoder.pos_embedding.shape == (1, 1 + 8 * 8, 16)
    assert backbone.preprocess.output_size == (64, 64)
    assert features(backbone, torch.rand(2, 3, 64, 64)).shape == (2, backbone.num_features)
    with pytest.raises(ValueError, match="patch size is 8"):
        load_backbone(registered_vit, None, image_size=36)


def test_a_user_backbone_of_a_timm_vit_layer_is_resized():
    model = timm.create_model("vit_tiny_patch16_224", num_classes=0)
    backbone = load_backbone(load_backbone(model, layer="blocks.5"), image_size=32)
    assert backbone.body.model.pos_embed.shape == (1, 1 + 2 * 2, 192)
    out = features(backbone, torch.rand(2, 3, 32, 32))
    assert out.shape == (2, backbone.num_features)


def test_a_traced_vit_that_cannot_be_resized_is_refused(monkeypatch):
    traced = load_backbone(small_torchvision_vit(), layer="encoder.ln")
    with pytest.raises(ValueError, match="cannot be resized.*image_size=64"):
        load_backbone(traced, image_size=64)
    ignores = _register_vit(monkeypatch, "test_tiny_vit", builds_for_size=False)
    with pytest.raises(ValueError, match="cannot be resized"):
        load_backbone(ignores, None, layer="encoder.ln", image_size=64)
    # A builder that uses image_size resizes before tracing: nothing to refuse.
    builds = _register_vit(monkeypatch, "test_tiny_vit_sized", builds_for_size=True)
    sized = load_backbone(builds, None, layer="encoder.ln", image_size=64)
    assert features(sized, torch.rand(1, 3, 64, 64)).shape == (1, sized.num_features)
    # At its own size it is used as it is.
    assert features(load_backbone(traced, image_size=32),
                    torch.rand(1, 3, 32, 32)).shape == (1, traced.num_features)


@pytest.mark.parametrize("size, error", [(0, ValueError), ("big", TypeError),
                                         ((32, 32, 3), TypeError)])
def test_bad_image_size_types(size, error):
    with pytest.raises(error, match="image_size"):
        load_backbone("simple_cnn", None, image_size=size)


@pytest.mark.parametrize("model", ["resnet18", "simple_cnn", "timm:resnet18"])
def test_cnns_are_unchanged_by_image_size(model):
    plain = load_backbone(model, None, random_state=0)
    sized = load_backbone(model, None, image_size=48, random_state=0)
    for (name, a), b in zip(plain.state_dict().items(), sized.state_dict().values()):
        assert torch.equal(a, b), name
    assert sized.preprocess == plain.preprocess.with_image_size(48)


def test_extractor_with_a_vit_at_another_size():
    X = images()
    extractor = PretrainedFeatureExtractor(model=TINY, weights=None, image_size=32,
                                           random_state=0, device="cpu")
    Z = extractor.fit_transform(X)
    assert Z.shape == (8, 192) and np.isfinite(Z).all()
    assert extractor.preprocess_.output_size == (32, 32)
    again = pickle.loads(pickle.dumps(extractor))  # rebuilt from its parameters
    np.testing.assert_array_equal(again.transform(X), Z)
    with pytest.raises(ValueError, match="patch size is 16"):
        extractor.set_params(image_size=40).fit(X)


# --------------------------------------------------------------------------- #
# 2. freeze=k counts transformer blocks
# --------------------------------------------------------------------------- #

def _trainable(backbone):
    return {name for name, p in backbone.body.named_parameters() if p.requires_grad}


def _parts(names):
    """``blocks.<i>`` or the top-level module each parameter name belongs to."""
    parts = set()
    for name in names:
        pieces = name.split(".")
        parts.add(".".join(pieces[:2]) if pieces[0] == "blocks" else pieces[0])
    return parts


def test_timm_vit_stages_are_its_blocks():
    backbone = load_backbone(TINY, None, random_state=0)
    found = stages(backbone.body)
    assert len(found) == 1 + 12  # embeddings, then one stage per block
    assert found[1] is backbone.body.blocks[0]

    set_trainable(backbone, 1)
    assert _parts(_trainable(backbone)) == {"blocks.11", "norm"}
    set_trainable(backbone, 12)
    frozen = {n for n, p in backbone.body.named_parameters() if not p.requires_grad}
    assert frozen == {"cls_token", "pos_embed", "patch_embed.proj.weight",
                      "patch_embed.proj.bias"}
    set_trainable(backbone, 13)
    assert all(p.requires_grad for p in backbone.parameters())


def test_torchvision_vit_stages_are_its_encoder_layers():
    backbone = load_backbone(small_torchvision_vit(), image_size=32)
    assert len(stages(backbone.body)) == 1 + 3
    set_trainable(backbone, 2)
    assert {n.rsplit(".", 2)[0] if n.startswith("encoder.layers") else n.rsplit(".", 1)[0]
            for n in _trainable(backbone)} >= {"encoder.layers.encoder_layer_1",
                                               "encoder.layers.encoder_layer_2",
                                               "encoder.ln"}
    assert not any(n.startswith(("encoder.layers.encoder_layer_0", "conv_proj",
                                 "class_token", "encoder.pos_embedding"))
                   for n in _trainable(backbone))


@pytest.mark.parametrize("model, count", [
    ("simple_cnn", 6),
    ("efficientnet_lite0", 11),        # conv_stem, bn1, blocks.0-6, conv_head, bn2
    ("resnet18", 6),                   # conv1, bn1, layer1-4
    ("efficientnet_b0", 9),            # features.0-8
    ("convnext_tiny", 9),              # features.0-7, the classifier's norm
    ("timm:resnet18", 6),
    ("timm:efficientnet_b0", 11),
    ("timm:convnext_atto", 6),         # stem, stages.0-3, head (its norm)
    ("timm:vit_small_patch14_dinov2", 13),
])
def test_stage_counts_of_each_family(model, count):
    assert len(stages(load_backbone(model, None, random_state=0).body)) == count


def test_finetune_a_vit_at_another_size_with_freeze():
    X = images(n=12, size=36)
    y = np.array([0, 1] * 6)
    clf = FineTuneClassifier(model=TINY, weights=None, image_size=32, freeze=2,
                             epochs=1, batch_size=6, device="cpu", random_state=0,
                             augment=None)
    clf.fit(X, y)
    before = clf._build_network(weights=None, seed=clf._seed()).backbone.body
    changed = {name for (name, after), start in zip(
        clf.module_.backbone.body.state_dict().items(), before.state_dict().values())
        if not torch.equal(after, start)}
    assert _parts(changed) == {"blocks.10", "blocks.11", "norm"}
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(pickle.loads(pickle.dumps(clf)).predict_proba(X), proba,
                               rtol=1e-6)


# --------------------------------------------------------------------------- #
# 3. timm hub names
# --------------------------------------------------------------------------- #

@pytest.fixture(scope="module")
def saved_tiny_vit(tmp_path_factory):
    """A small timm ViT (2 blocks, 32x32) saved as timm's save_for_hf writes it."""
    from timm.models import save_for_hf

    torch.manual_seed(3)
    model = timm.create_model("vit_tiny_patch16_224", depth=2, img_size=32).eval()
    folder = tmp_path_factory.mktemp("tiny_vit")
    save_for_hf(model, folder, safe_serialization=True)
    bin_folder = tmp_path_factory.mktemp("tiny_vit_bin")
    save_for_hf(model, bin_folder, safe_serialization=False)
    return model, folder, bin_folder


def _reference_features(model, x):
    with torch.inference_mode():
        return model.forward_head(model.forward_features(x), pre_logits=True)


@pytest.mark.parametrize("layout", ["safetensors", "bin"])
def test_local_dir_loads_without_network(saved_tiny_vit, layout, hub_offline):
    model, folder, bin_folder = saved_tiny_vit
    folder = folder if layout == "safetensors" else bin_folder
    assert sorted(os.listdir(folder)) == sorted(
        ["config.json", "model.safetensors" if layout == "safetensors"
         else "pytorch_model.bin"])
    backbone = load_backbone(f"timm:local-dir:{folder}")
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(features(backbone, x), _reference_features(model, x),
                               rtol=0, atol=0)
    assert backbone.preprocess.crop_size == (32, 32)  # its own config.json
    assert backbone.preprocess.mean == (0.5, 0.5, 0.5)


def test_local_dir_through_the_extractor(saved_tiny_vit, hub_offline):
    model, folder, _ = saved_tiny_vit
    X = images(n=4, size=32)
    # image_size=32: the images are already the model's size (no resize, no crop).
    extractor = PretrainedFeatureExtractor(model=f"timm:local-dir:{folder}",
                                           image_size=32, device="cpu").fit(X)
    x = (torch.from_numpy(X).permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.5
    np.testing.assert_allclose(extractor.transform(X), _reference_features(model, x),
                               rtol=1e-5, atol=1e-5)


def test_a_local_dir_saved_again_gives_its_new_features(tmp_path, hub_offline):
    """As for hf: folders: an extractor with a cache shares the module loaded
    from a folder only while the folder's files are the ones it was loaded from."""
    from timm.models import save_for_hf

    model = timm.create_model("vit_tiny_patch16_224", depth=1, img_size=32).eval()
    folder = tmp_path / "vit"
    save_for_hf(model, folder, safe_serialization=True)
    X = images(n=2, size=32)
    settings = dict(model=f"timm:local-dir:{folder}", image_size=32, device="cpu",
                    cache=True)
    before = PretrainedFeatureExtractor(**settings).fit_transform(X)
    with torch.no_grad():
        model.norm.weight.mul_(3.0)
    save_for_hf(model, folder, safe_serialization=True)
    after = PretrainedFeatureExtractor(**settings).fit_transform(X)
    x = (torch.from_numpy(X).permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.5
    np.testing.assert_allclose(after, _reference_features(model, x), rtol=1e-5, atol=1e-5)
    assert not np.allclose(before, after, atol=1e-3)


@pytest.fixture
def hub_offline(tmp_path, monkeypatch):
    """An empty Hugging Face cache of our own, in offline mode."""
    import huggingface_hub.constants as hf_constants

    cache = tmp_path / "hf" / "hub"
    cache.mkdir(parents=True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(cache))
    return cache


def _put_in_hub_cache(cache, repo, folder):
    """The files of ``folder`` as the hub cache holds a download of ``repo``."""
    revision = "0" * 40
    root = cache / f"models--{repo.replace('/', '--')}"
    snapshot = root / "snapshots" / revision
    snapshot.mkdir(parents=True)
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text(revision)
    for name in os.listdir(folder):
        shutil.copy(os.path.join(folder, name), snapshot / name)


def test_hf_hub_name_from_the_offline_cache(saved_tiny_vit, hub_offline):
    model, folder, _ = saved_tiny_vit
    _put_in_hub_cache(hub_offline, "someone/tiny-vit", folder)
    backbone = load_backbone("timm:hf-hub:someone/tiny-vit")
    assert backbone.name == "timm:hf-hub:someone/tiny-vit"
    x = torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(features(backbone, x), _reference_features(model, x),
                               rtol=0, atol=0)
    with pytest.raises(OSError, match="local-dir"):
        load_backbone("timm:hf-hub:someone/not-cached")


def test_hub_name_errors(tmp_path, saved_tiny_vit):
    _, folder, _ = saved_tiny_vit
    with pytest.raises(ValueError, match="its own weights"):
        load_backbone(f"timm:local-dir:{folder}", "in1k")
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_backbone(f"timm:local-dir:{tmp_path}", None)
    with pytest.raises(FileNotFoundError, match="not a folder"):
        load_backbone(f"timm:local-dir:{tmp_path / 'missing'}", None)
    with pytest.raises(ValueError, match="Unknown model source 'nope'"):
        load_backbone("timm:nope:thing", None)
    with pytest.raises(ValueError, match="hf-hub"):
        load_backbone("timm:someone/tiny-vit", None)


def test_pretrained_tag_in_the_name():
    backbone = load_backbone("timm:vit_small_patch14_dinov2.lvd142m", None,
                             image_size=28, random_state=0)
    assert backbone.body.pretrained_cfg["tag"] == "lvd142m"
    with pytest.raises(ValueError, match="in one place"):
        load_backbone("timm:vit_tiny_patch16_224.augreg_in21k", "in1k")
    with pytest.raises(ValueError, match="timm has no model named 'no_such_vit.tag'"):
        load_backbone("timm:no_such_vit.tag", None)


# --------------------------------------------------------------------------- #
# 4. DINOv2 and CLIP image towers
# --------------------------------------------------------------------------- #

def test_dinov2_extractor_has_its_own_preprocessing():
    X = images(n=4, size=30)
    extractor = PretrainedFeatureExtractor(
        model="timm:vit_small_patch14_dinov2.lvd142m", weights=None, random_state=0,
        image_size=28, device="cpu")
    Z = extractor.fit_transform(X)
    assert Z.shape == (4, 384) and np.isfinite(Z).all()
    config = extractor.preprocess_
    assert config.mean == IMAGENET_MEAN and config.std == (0.229, 0.224, 0.225)
    assert config.interpolation == "bicubic" and config.output_size == (28, 28)
    native = load_backbone("timm:vit_small_patch14_dinov2.lvd142m", None).preprocess
    assert native.crop_size == (518, 518) and native.resize_size == 518


@pytest.mark.parametrize("model, crop, resize", [
    ("timm:vit_xsmall_patch16_clip_224", (224, 224), 248),
    ("timm:vit_base_patch16_clip_224.openai", (224, 224), 248),
])
def test_clip_image_tower_has_clip_preprocessing(model, crop, resize):
    backbone = load_backbone(model, None, image_size=None, random_state=0)
    cfg = timm.data.resolve_data_config({}, model=backbone.body)
    config = backbone.preprocess
    assert config.mean == CLIP_MEAN == tuple(cfg["mean"])
    assert config.std == CLIP_STD
    assert config.crop_size == crop and config.resize_size == resize
    assert isinstance(backbone.body.get_classifier(), nn.Identity)


def test_clip_extractor_at_a_small_size():
    extractor = PretrainedFeatureExtractor(model="timm:vit_xsmall_patch16_clip_224",
                                           weights=None, image_size=32, random_state=0,
                                           device="cpu")
    Z = extractor.fit_transform(images(n=3, size=32))
    assert Z.shape == (3, 256) and np.isfinite(Z).all()
    assert extractor.preprocess_.mean == CLIP_MEAN
