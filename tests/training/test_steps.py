"""sktransfer.training's steps (training/_steps.py): the TrainingStep base, the
weighted cross-entropy, AdaBN (adapt_batchnorm) and the logits under the
batch's own statistics."""

import numpy as np
import pytest
import torch
from torch import nn

from sktransfer import DomainAdaptClassifier
from sktransfer.training._steps import (
    adapt_batchnorm,
    batch_statistics_logits,
    weighted_cross_entropy,
)

from list_loader import ListLoader


def test_step_base_defaults_and_required_methods():
    from sktransfer.training import TrainingStep

    class Half(TrainingStep):
        pass

    step = Half.__new__(Half)
    assert step.extra_modules() == {} and step.epoch_metrics() == {}
    assert step.finish() is None
    with pytest.raises(NotImplementedError, match="batches"):
        step.batches(0)
    with pytest.raises(NotImplementedError, match="loss"):
        step.loss(None)


def test_weighted_cross_entropy_ignores_zero_weights():
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [5.0, -5.0]])
    targets = torch.tensor([0, 1, 1])
    full = weighted_cross_entropy(logits[:2], targets[:2], torch.ones(2))
    masked = weighted_cross_entropy(logits, targets, torch.tensor([1.0, 1.0, 0.0]))
    torch.testing.assert_close(full, masked)


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


def test_adapt_batchnorm_gets_the_variance_right_on_class_sorted_rows():
    # Two classes far apart, sorted: batches of one class each would see only
    # the within-class variance; shuffled batches see the population's.
    torch.manual_seed(0)
    data = torch.cat([torch.randn(200, 2) - 5, torch.randn(200, 2) + 5])
    net = nn.Sequential(nn.BatchNorm1d(2))
    adapt_batchnorm(net, ListLoader(data), np.arange(400), batch_size=20)
    population = data.var(dim=0)
    assert torch.allclose(net[0].running_mean, data.mean(dim=0), atol=1e-4)
    assert torch.allclose(net[0].running_var, population, rtol=0.1), (
        net[0].running_var, population)


@pytest.mark.parametrize("n_rows", [33, 65, 2])
def test_a_last_batch_of_one_row_joins_the_batch_before_it(n_rows):
    """33 target rows at batch 32 left one row alone, which a BatchNorm that
    sees one value per channel cannot normalise: AdaBN raised at the end of
    a default domain-adaptation fit, after every epoch had run."""
    torch.manual_seed(0)
    data = torch.randn(n_rows, 3) * 2 + 1
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    adapt_batchnorm(net, ListLoader(data), np.arange(n_rows), batch_size=32)
    with torch.no_grad():
        hidden = net[0](data)
    assert torch.allclose(net[1].running_mean, hidden.mean(0), atol=1e-5)
    logits = batch_statistics_logits(net, ListLoader(data), np.arange(n_rows),
                                     batch_size=32)
    assert logits.shape == (n_rows, 2)


def test_batch_statistics_logits_changes_no_state_and_keeps_row_order():
    torch.manual_seed(0)
    data = torch.randn(30, 3)
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Dropout(0.5), nn.Linear(4, 2))
    net.train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    rows = np.arange(5, 30)
    logits = batch_statistics_logits(net, ListLoader(data), rows, batch_size=25)
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
