"""Domain-adaptation losses as pure tensor functions (no parameters, no state).

Each takes the features (or logits) of a source batch and of a target batch and
returns a scalar. The modules of :mod:`sktransfer.adaptation._losses` hold their
hyper-parameters and any trainable part (a domain discriminator).
"""

import math

import torch
import torch.nn.functional as F


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, coefficient):
        ctx.coefficient = coefficient
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad.neg() * ctx.coefficient, None


def reverse_gradient(x, coefficient=1.0):
    """Identity forward; multiplies the gradient by ``-coefficient`` backward
    (Ganin et al.'s gradient-reversal layer)."""
    return _ReverseGradient.apply(x, float(coefficient))


def dann_coefficient(progress, gamma=10.0):
    """The DANN paper's schedule of the reversal coefficient, 0 -> 1 as
    ``2 / (1 + exp(-gamma * p)) - 1`` over training progress ``p`` in [0, 1]."""
    return 2.0 / (1.0 + math.exp(-gamma * float(progress))) - 1.0


def entropy(probabilities, eps=1e-8):
    """Shannon entropy of each row of ``probabilities``."""
    return -(probabilities * torch.log(probabilities + eps)).sum(dim=1)


def _covariance(x):
    centred = x - x.mean(dim=0, keepdim=True)
    return centred.T @ centred / max(len(x) - 1, 1)


def coral_loss(features_source, features_target):
    """Deep CORAL (Sun & Saenko, 2016): squared Frobenius distance between the
    feature covariances of the two domains, divided by ``4 d**2``."""
    d = features_source.shape[1]
    difference = _covariance(features_source) - _covariance(features_target)
    return (difference * difference).sum() / (4.0 * d * d)


def mmd_loss(features_source, features_target, *, kernel_mul=2.0, kernel_num=5):
    """Multi-kernel maximum mean discrepancy (DAN; Long et al., ICML 2015).

    A sum of ``kernel_num`` Gaussian kernels whose bandwidths are the mean pairwise
    squared distance of the batch times powers of ``kernel_mul`` (centred on it);
    the biased estimate, which accepts batches of different sizes.
    """
    n = len(features_source)
    total = torch.cat([features_source, features_target])
    # Squared distances by expansion: cdist's square root has no gradient at
    # zero distance (identical ReLU features are common), which gave NaNs.
    norms = (total * total).sum(dim=1)
    distances = (norms[:, None] + norms[None, :] - 2.0 * total @ total.T).clamp_min(0.0)
    m = len(total)
    bandwidth = distances.detach().sum() / max(m * m - m, 1)
    bandwidth = bandwidth.clamp_min(1e-8) / (kernel_mul ** (kernel_num // 2))
    kernel = sum(torch.exp(-distances / (bandwidth * kernel_mul ** i))
                 for i in range(kernel_num))
    return (kernel[:n, :n].mean() + kernel[n:, n:].mean()
            - 2.0 * kernel[:n, n:].mean())


def mcc_loss(logits_target, *, temperature=2.5):
    """Minimum class confusion (Jin et al., ECCV 2020) on a target batch.

    Temperature-scaled predictions, weighted by ``1 + exp(-entropy)`` (confident
    samples count more), give a class-correlation matrix; the loss is its
    off-diagonal mass after normalising each class's row, divided by the number
    of classes.
    """
    n, n_classes = logits_target.shape
    probabilities = F.softmax(logits_target / temperature, dim=1)
    weights = 1.0 + torch.exp(-entropy(probabilities).detach())
    weights = n * weights / weights.sum()
    confusion = (probabilities * weights.unsqueeze(1)).T @ probabilities
    confusion = confusion / confusion.sum(dim=1, keepdim=True).clamp_min(1e-12)
    return (confusion.sum() - torch.trace(confusion)) / n_classes
