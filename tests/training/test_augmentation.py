"""Per-image transforms (torchvision v2, policies by name), MixUp / CutMix, and
the weak and strong views of self-training (training/_augment.py)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from torchvision.transforms import v2

from sktransfer import DomainAdaptClassifier, FineTuneClassifier
from sktransfer.inputs import BatchPreprocessor, PerSample, PreprocessConfig
from sktransfer.training import StrongAugment, SupervisedStep, WeakAugment
from sktransfer.training._augment import DefaultAugment, resolve_augment
from sktransfer.training._mixing import BatchMixing, check_mixup
from sktransfer.training._steps import weighted_cross_entropy

SIZE = 16


class Record(v2.Transform):
    """Draws one random value per call and records it with what it was given."""

    def __init__(self, log):
        super().__init__()
        self.log = log

    def make_params(self, flat_inputs):
        return {"value": float(torch.rand(()))}

    def transform(self, inpt, params):
        self.log.append((params["value"], inpt.dtype, tuple(inpt.shape)))
        return inpt


def images(n=16, size=SIZE, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8), np.arange(n) % 2


def cnn(**params):
    defaults = dict(model="simple_cnn", weights=None, epochs=1, batch_size=8,
                    image_size=SIZE, device="cpu", random_state=0)
    return FineTuneClassifier(**(defaults | params))


@pytest.fixture
def files(tmp_path):
    X, y = images(n=8, size=20)  # resized to 16: the transform sees float32
    paths = []
    for i, image in enumerate(X):
        path = tmp_path / f"{i}.png"
        Image.fromarray(image).save(path)
        paths.append(str(path))
    return paths, y


# -- per-sample transforms ------------------------------------------------------
def test_resolve_augment_kinds():
    assert isinstance(resolve_augment("default"), DefaultAugment)
    assert resolve_augment(None) is None
    for name, policy in [("randaugment", v2.RandAugment),
                         ("trivialaugment", v2.TrivialAugmentWide)]:
        resolved = resolve_augment(name)
        assert isinstance(resolved, PerSample) and isinstance(resolved.transform, policy)
    flip = v2.RandomHorizontalFlip()
    assert resolve_augment(flip).transform is flip
    wrapped = PerSample(lambda image: image)
    assert resolve_augment(wrapped) is wrapped

    def batched(batch):
        return batch

    assert resolve_augment(batched) is batched  # a plain callable stays batched


def test_per_sample_transform_draws_per_image_and_only_in_training():
    X, y = images()
    log = []
    clf = cnn(augment=Record(log), epochs=2).fit(X, y)
    assert len(log) == 2 * len(X)  # each image, each epoch, one call
    values = [value for value, _, _ in log]
    assert len(set(values)) == len(values)  # each image its own draw
    # 8-bit images at the model's size: uint8 (C, H, W), before batching.
    assert {(dtype, shape) for _, dtype, shape in log} == {(torch.uint8, (3, SIZE, SIZE))}
    clf.predict(X), clf.predict_proba(X), clf.transform(X)
    assert len(log) == 2 * len(X)  # never at inference


def test_per_sample_transform_not_on_validation_rows():
    X, y = images()
    log = []
    clf = cnn(augment=Record(log), epochs=2, early_stopping=True,
              validation_fraction=0.25).fit(X, y)
    assert len(log) == 2 * 12 and clf.history_[-1]["valid_loss"] is not None


def test_per_sample_transform_is_reproducible():
    X, y = images()
    augment = v2.Compose([v2.RandomResizedCrop(SIZE, scale=(0.3, 1.0)), v2.ColorJitter(0.4, 0.4)])
    first = cnn(augment=augment, epochs=2).fit(X, y).predict_proba(X)
    again = cnn(augment=augment, epochs=2).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(first, again)
    logs = {}
    for seed in (0, 0, 1):
        logs.setdefault(seed, []).append([])
        cnn(augment=Record(logs[seed][-1]), random_state=seed).fit(X, y)
    assert logs[0][0] == logs[0][1] and logs[0][0] != logs[1][0]


def test_per_sample_transform_never_writes_into_x():
    X, y = images()
    before = X.copy()
    cnn(augment=PerSample(lambda image: image.zero_())).fit(X, y)
    np.testing.assert_array_equal(X, before)


def test_per_sample_transform_on_pil_and_files(files):
    paths, y = files
    for X in (paths, [Image.open(path) for path in paths]):
        log = []
        cnn(augment=Record(log)).fit(X, y)
        # Resized from 20 to 16 pixels: float32 in [0, 1], at the model's size.
        assert len(log) == len(paths) and len({value for value, _, _ in log}) == len(paths)
        assert {(dtype, shape) for _, dtype, shape in log} == {(torch.float32, (3, SIZE, SIZE))}


def spy_on_training_batches(monkeypatch):
    """The batches every SupervisedStep yields, as ``(inputs, targets)`` on the CPU."""
    seen = []
    real_batches = SupervisedStep.batches

    def batches(step, epoch):
        for batch in real_batches(step, epoch):
            seen.append((batch[0].detach().cpu().clone(), batch[1].detach().cpu().clone()))
            yield batch

    monkeypatch.setattr(SupervisedStep, "batches", batches)
    return seen


def network_inputs(clf, X):
    """What the fitted network is given by ``predict``, batch by batch."""
    seen = []
    handle = clf.module_.register_forward_pre_hook(
        lambda module, args: seen.append(args[0].detach().cpu().clone()))
    try:
        clf.predict(X)
    finally:
        handle.remove()
    return torch.cat(seen)


@pytest.mark.parametrize("name", ["randaugment", "trivialaugment"])
def test_policies_by_name_on_arrays_and_files(name, files, monkeypatch):
    X, y = images()
    seen = spy_on_training_batches(monkeypatch)
    plain = cnn(augment=None).fit(X, y)
    plain_batches, seen[:] = list(seen), []
    clf = cnn(augment=name).fit(X, y)
    assert np.isfinite(clf.history_[-1]["train_loss"])
    # The same rows in the same order (one seed), but the policy changed images.
    assert len(seen) == len(plain_batches) == 2
    for (augmented, targets), (original, plain_targets) in zip(seen, plain_batches):
        assert torch.equal(targets, plain_targets)
        changed = [not torch.equal(a, b) for a, b in zip(augmented, original)]
        assert any(changed)
    # predict gets the images untouched.
    torch.testing.assert_close(network_inputs(clf, X), network_inputs(plain, X),
                               rtol=0, atol=0)
    paths, y_files = files
    clf = cnn(augment=name).fit(paths, y_files)
    assert clf.predict(paths).shape == (len(paths),)


def test_per_sample_transform_in_dataloader_workers(files):
    paths, y = files
    clf = cnn(augment="randaugment", num_workers=1).fit(paths, y)
    assert np.isfinite(clf.history_[-1]["train_loss"])


def test_per_sample_transform_changes_each_image_on_its_own():
    batch = torch.arange(4 * 1 * 2 * 3, dtype=torch.uint8).reshape(4, 1, 2, 3)
    torch.manual_seed(0)
    flipped = PerSample(v2.RandomHorizontalFlip())(batch)
    kinds = {bool(torch.equal(out, image.flip(-1))) for out, image in zip(flipped, batch)}
    assert kinds == {True, False}  # some images flipped, some not, in one batch


def test_per_sample_transform_must_return_a_tensor():
    X, y = images()
    with pytest.raises(TypeError, match=r"\(C, H, W\) tensor"):
        cnn(augment=PerSample(v2.ToPILImage())).fit(X, y)


def test_domain_adapt_per_sample_transform_on_source_and_target():
    X, y = images()
    y = y.copy()
    y[8:] = -1
    log = []
    DomainAdaptClassifier(model="simple_cnn", weights=None, method="coral", epochs=1,
                          batch_size=4, image_size=SIZE, device="cpu", random_state=0,
                          augment=Record(log)).fit(X, y)
    # 8 source images where decoded (uint8), 8 target images on the device (float).
    assert sum(dtype == torch.uint8 for _, dtype, _ in log) == 8
    assert sum(dtype == torch.float32 for _, dtype, _ in log) == 8


# -- MixUp / CutMix ---------------------------------------------------------------
def test_mixup_soft_targets_weights_and_images():
    torch.manual_seed(0)
    inputs = torch.rand(6, 3, 8, 8)
    targets = torch.tensor([0, 1, 2, 0, 1, 2])
    weights = torch.tensor([1.0, 2.0, 1.0, 0.5, 1.0, 3.0])
    mixed, soft, mixed_weights = BatchMixing(3, mixup_alpha=0.4)(inputs, targets, weights)
    assert soft.shape == (6, 3)
    torch.testing.assert_close(soft.sum(1), torch.ones(6))
    torch.testing.assert_close(mixed_weights.sum(), weights.sum())
    lam = float(mixed_weights[0] - weights[5]) / float(weights[0] - weights[5])
    torch.testing.assert_close(mixed, lam * inputs + (1 - lam) * inputs.roll(1, 0))
    torch.testing.assert_close(mixed_weights, lam * weights + (1 - lam) * weights.roll(1, 0))


def test_cutmix_pastes_a_box_and_targets_follow_its_area():
    torch.manual_seed(3)
    inputs = torch.stack([torch.full((3, 10, 10), float(i)) for i in range(4)])
    targets = torch.tensor([0, 1, 2, 3])
    mixed, soft, weights = BatchMixing(4, cutmix_alpha=1.0)(inputs, targets, torch.ones(4))
    torch.testing.assert_close(soft.sum(1), torch.ones(4))
    for i in range(4):
        kept = float((mixed[i] == i).float().mean())
        pasted = float((mixed[i] == (i - 1) % 4).float().mean())
        assert kept + pasted == pytest.approx(1.0)
        assert soft[i, i] == pytest.approx(kept) and soft[i, (i - 1) % 4] == pytest.approx(pasted)
    torch.testing.assert_close(weights, torch.ones(4))


def test_soft_cross_entropy_matches_hard_for_one_hot():
    torch.manual_seed(0)
    logits = torch.randn(5, 4)
    targets = torch.tensor([0, 3, 1, 1, 2])
    weights = torch.tensor([1.0, 0.5, 2.0, 0.0, 1.0])
    for smoothing in (0.0, 0.1):
        hard = weighted_cross_entropy(logits, targets, weights, label_smoothing=smoothing)
        soft = weighted_cross_entropy(logits, F.one_hot(targets, 4).float(), weights,
                                      label_smoothing=smoothing)
        torch.testing.assert_close(soft, hard)


def test_mixed_loss_is_the_weighted_mix_of_both_label_losses():
    torch.manual_seed(1)
    logits = torch.randn(4, 3)
    targets = torch.tensor([0, 1, 2, 1])
    weights = torch.tensor([1.0, 3.0, 0.5, 2.0])
    _, soft, mixed_weights = BatchMixing(3, mixup_alpha=1.0)(torch.rand(4, 5), targets, weights)
    lam = float(mixed_weights[0] - weights[3]) / float(weights[0] - weights[3])
    # Sample i is mixed with sample i - 1: its logits against both labels.
    own = F.cross_entropy(logits, targets, reduction="none")
    partner = F.cross_entropy(logits, targets.roll(1), reduction="none")
    expected = (lam * weights * own
                + (1 - lam) * weights.roll(1) * partner).sum() / weights.sum()
    torch.testing.assert_close(weighted_cross_entropy(logits, soft, mixed_weights), expected)


@pytest.mark.parametrize("mixup", ["mixup", "cutmix", "mixup_cutmix",
                                   {"mixup_alpha": 0.4, "cutmix_alpha": 0.0}])
def test_fit_with_mixup(mixup, monkeypatch):
    X, y = images()
    seen = spy_on_training_batches(monkeypatch)
    params = dict(epochs=2, label_smoothing=0.1, augment=None)
    plain = cnn(**params).fit(X, y)
    plain_batches, seen[:] = list(seen), []
    clf = cnn(mixup=mixup, **params).fit(X, y, sample_weight=np.ones(len(y)))
    assert all(np.isfinite(record["train_loss"]) for record in clf.history_)
    # Each batch trained on mixed images and the mixed class probabilities.
    assert len(seen) == len(plain_batches) == 4
    for (mixed, soft), (original, labels) in zip(seen, plain_batches):
        assert soft.shape == (len(labels), 2) and soft.is_floating_point()
        torch.testing.assert_close(soft.sum(1), torch.ones(len(labels)))
        assert not torch.equal(mixed, original)
    one_hot = F.one_hot(torch.cat([labels for _, labels in plain_batches]), 2).float()
    soft = torch.cat([soft for _, soft in seen])
    assert not torch.equal(soft, one_hot)  # some labels are a mix of two classes
    assert not np.array_equal(clf.predict_proba(X), plain.predict_proba(X))
    again = cnn(mixup=mixup, **params).fit(X, y)
    np.testing.assert_array_equal(clf.predict_proba(X), again.predict_proba(X))


def test_mixup_on_flat_input_and_cutmix_refused():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 5)), np.arange(40) % 2
    FineTuneClassifier(model=None, mixup="mixup", epochs=2, device="cpu",
                       random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="CutMix pastes image patches"):
        FineTuneClassifier(model=None, mixup="cutmix", device="cpu").fit(X, y)


def test_domain_adapt_mixes_the_source_batch():
    X, y = images()
    y = y.copy()
    y[8:] = -1
    for method in ("dann", "source_only"):
        clf = DomainAdaptClassifier(model="simple_cnn", weights=None, method=method,
                                    epochs=1, batch_size=4, image_size=SIZE, device="cpu",
                                    random_state=0, mixup="mixup_cutmix").fit(X, y)
        assert np.isfinite(clf.history_[-1]["train_loss"])


# -- parameters -------------------------------------------------------------------
def test_clone_and_get_params():
    augment = v2.Compose([v2.RandomResizedCrop(SIZE), v2.ColorJitter(0.2)])
    for cls in (FineTuneClassifier, DomainAdaptClassifier):
        clf = cls(augment=augment, mixup={"mixup_alpha": 0.4})
        assert cls().mixup is None
        cloned = clone(clf)
        assert cloned.mixup == {"mixup_alpha": 0.4} and cloned.mixup is not clf.mixup
        assert repr(cloned.augment) == repr(augment)
        params = clf.get_params(deep=True)
        assert params["mixup"] == {"mixup_alpha": 0.4}
        wrapped = cls(augment=PerSample(v2.RandomResizedCrop(SIZE)), mixup="cutmix")
        wrapped.get_params(deep=True)
        wrapped.set_params(mixup="mixup", augment="trivialaugment")
        assert clone(wrapped).get_params()["mixup"] == "mixup"


@pytest.mark.parametrize("augment", [v2.RandomResizedCrop(SIZE, scale=(0.5, 1.0)),
                                     v2.ColorJitter(0.3, 0.3)])
def test_a_lone_transform_with_a_static_get_params_clones_and_grid_searches(augment):
    # RandomResizedCrop.get_params is torchvision's static draw of a crop, not
    # scikit-learn's: the transform is a plain parameter value, never recursed into.
    for cls in (FineTuneClassifier, DomainAdaptClassifier):
        clf = cls(augment=augment)
        params = clf.get_params(deep=True)
        assert params["augment"] is augment
        assert not any(key.startswith("augment__") for key in params)
        cloned = clone(clf)
        assert cloned.augment is not augment and repr(cloned.augment) == repr(augment)
    X, y = images()
    search = GridSearchCV(cnn(augment=augment), {"lr": [1e-3, 1e-2]}, cv=2).fit(X, y)
    assert search.best_estimator_.augment is not augment
    assert repr(search.best_estimator_.augment) == repr(augment)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


@pytest.mark.parametrize("params, match", [
    (dict(mixup="mix"), "mixup"),
    (dict(mixup=0.2), "mixup"),
    (dict(mixup={"alpha": 1.0}), "unknown keys 'alpha'"),
    (dict(mixup={"mixup_alpha": -1.0}), "mixup_alpha must be a number >= 0"),
    (dict(mixup={"cutmix_alpha": "big"}), "cutmix_alpha must be a number"),
    (dict(mixup={"mixup_alpha": 0}), "mixes nothing"),
    (dict(augment="randaug"), "augment"),
    (dict(augment=3), "augment"),
])
def test_bad_values_are_refused_at_fit(params, match):
    X, y = images(n=4)
    clf = cnn(**params)  # __init__ only stores
    with pytest.raises(ValueError, match=match):
        clf.fit(X, y)


def test_check_mixup_presets():
    assert check_mixup(None) is None
    assert check_mixup("mixup") == {"mixup_alpha": 0.2, "cutmix_alpha": 0.0}
    assert check_mixup("cutmix") == {"mixup_alpha": 0.0, "cutmix_alpha": 1.0}
    assert check_mixup({"cutmix_alpha": 0.5, "mixup_alpha": 1}) == {
        "mixup_alpha": 1.0, "cutmix_alpha": 0.5}


# -- the weak and strong views ------------------------------------------------
def _digit_like(n=8, size=16, seed=0):
    """A white bar on black, (n, 3, size, size) in [0, 1]: not mirror-symmetric."""
    images = torch.zeros(n, 3, size, size)
    images[:, :, 2:size - 2, 3:6] = 1.0   # a vertical bar on the left
    images[:, :, 2:5, 3:size - 3] = 1.0   # and a top bar: like a "7" mirrored
    return images


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
