"""sktransfer.adaptation's self-training (adaptation/_self_training.py): the
relative threshold, pseudo-labels, distribution alignment, SelfTrainingLoss
(AdaMatch, FixMatch) and EpochSelfTrainingLoss, and both methods on an image
shift."""

import functools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sktransfer import DomainAdaptClassifier
from sktransfer.adaptation import EpochSelfTrainingLoss, SelfTrainingLoss
from sktransfer.adaptation._self_training import (
    align_distribution,
    EpochSelfTrainingStep,
    pseudo_labels,
    relative_threshold,
)

from bar_shift import oriented_bars, SmallCNN


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


@functools.lru_cache(maxsize=None)
def _bar_shift_fit(method):
    """``(target test accuracy, fitted classifier)`` of ``method`` on the bar
    shift (each method fit once per test session)."""
    X_source, y_source = oriented_bars(300, 0, target=False)
    X_target, _ = oriented_bars(300, 1, target=True)
    X_test, y_test = oriented_bars(300, 2, target=True)
    X = np.concatenate([X_source, X_target])
    y = np.concatenate([y_source, -np.ones(300, dtype=int)])
    torch.manual_seed(0)
    clf = DomainAdaptClassifier(model=SmallCNN(), weights=None, method=method,
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


def test_epoch_self_training_refreshes_every_n_epochs(monkeypatch):
    calls = []
    original = EpochSelfTrainingStep.refresh

    def counting(self):
        calls.append(1)
        original(self)

    monkeypatch.setattr(EpochSelfTrainingStep, "refresh", counting)
    X_source, y_source = oriented_bars(40, 0, target=False)
    X_target, _ = oriented_bars(40, 1, target=True)
    X = np.concatenate([X_source, X_target])
    y = np.concatenate([y_source, -np.ones(40, dtype=int)])
    counts = {}
    for every in (1, 2, 3):
        calls.clear()
        DomainAdaptClassifier(model=SmallCNN(), weights=None, epochs=5, batch_size=16,
                              method=EpochSelfTrainingLoss(refresh_every=every),
                              random_state=0, device="cpu").fit(X, y)
        counts[every] = len(calls)
    assert counts == {1: 5, 2: 3, 3: 2}   # epochs 0-4; 0, 2, 4; 0, 3


def _bars_fit_data(n_source, n_target=40):
    X_source, y_source = oriented_bars(n_source, 0, target=False)
    X_target, _ = oriented_bars(n_target, 1, target=True)
    return (np.concatenate([X_source, X_target]),
            np.concatenate([y_source, -np.ones(n_target, dtype=int)]))


@pytest.mark.parametrize("epochs, n_source, expected", [
    (5, 40, [0, 3, 6, 9, 12]),  # 3 batches an epoch, 15 steps: each epoch's start
    (1, 40, [0, 1, 2]),         # 3 steps: period 1
    (1, 128, [0, 2, 4, 6]),     # 8 steps: period 2
    (2, 96, [0, 3, 6, 9]),      # 6 batches an epoch, 12 steps: period 3, counted over the fit
    (3, 80, [0, 4, 8, 12]),     # 5 batches an epoch, 15 steps: period 4, not at epoch starts
])
def test_epoch_self_training_auto_refreshes_a_short_fit_within_its_epochs(
        monkeypatch, epochs, n_source, expected):
    steps, at = [0], []
    refresh, loss = EpochSelfTrainingStep.refresh, EpochSelfTrainingStep.loss

    def counting_refresh(self):
        at.append(steps[0])  # optimizer steps taken so far in the fit
        refresh(self)

    def counting_loss(self, batch):
        steps[0] += 1
        return loss(self, batch)

    monkeypatch.setattr(EpochSelfTrainingStep, "refresh", counting_refresh)
    monkeypatch.setattr(EpochSelfTrainingStep, "loss", counting_loss)
    X, y = _bars_fit_data(n_source)
    clf = DomainAdaptClassifier(model=SmallCNN(), weights=None, epochs=epochs, batch_size=16,
                                method=EpochSelfTrainingLoss(), random_state=0,
                                device="cpu").fit(X, y)
    assert clf.n_iter_ == epochs
    assert at == expected


def test_epoch_self_training_auto_is_one_pass_per_epoch_from_four_epochs():
    # refresh_every="auto" on a fit of 4 epochs is the former default, refresh_every=1,
    # to the bit: same passes, same random draws
    X, y = _bars_fit_data(40)

    def fit(epochs, every):
        torch.manual_seed(0)  # the same initial weights of the user module
        return DomainAdaptClassifier(
            model=SmallCNN(), weights=None, epochs=epochs, batch_size=16,
            method=EpochSelfTrainingLoss(refresh_every=every), random_state=0,
            device="cpu").fit(X, y).predict_proba(X)

    np.testing.assert_array_equal(fit(4, "auto"), fit(4, 1))
    assert not np.array_equal(fit(1, "auto"), fit(1, 1))   # a shorter fit is not
