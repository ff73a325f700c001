"""sktransfer.adaptation's VADA (adaptation/_vada.py): the virtual adversarial
loss and the DIRT-T refinement at the end of a fit."""

import pytest
import torch
from torch import nn

from sktransfer.adaptation import VADALoss
from sktransfer.adaptation._vada import vat_loss


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


def test_dirt_t_refinement_epochs_record_their_loss():
    """The refinement epochs train on target rows alone: their train_loss fell
    a hundredfold with no supervised or adaptation part recorded, which read
    as convergence; they record refinement_loss."""
    import numpy as np

    from sktransfer import DomainAdaptClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 4)).astype(np.float32)
    y = np.r_[rng.integers(0, 2, 32), -np.ones(32, dtype=int)]
    clf = DomainAdaptClassifier(model=None, method="dirt-t", epochs=4, device="cpu",
                                random_state=0).fit(X, y)
    first, last = clf.history_[0], clf.history_[-1]
    assert "supervised_loss" in first and "refinement_loss" not in first
    assert last["refinement_loss"] == last["train_loss"] and "supervised_loss" not in last
