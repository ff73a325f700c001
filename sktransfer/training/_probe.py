"""A linear probe before fine-tuning (LP-FT; Kumar et al., ICLR 2022).

A new head starts at random, so the first steps of a fine-tuning send the
pretrained backbone the gradients of a head that predicts nothing yet, and with
a few labeled samples there are few steps after them to recover. A linear
probe fits the head first, to convergence, on the features of the frozen
backbone, with the estimator's own criterion (cross-entropy, binary
cross-entropy per label, a regression loss) and an L2 penalty on its weights,
of the form scikit-learn's ``LogisticRegression`` uses; fine-tuning then starts
from a head that already separates the classes.
"""

import numpy as np
import torch

from .._utils.runtime import run_batches

__all__ = ["PROBE_C", "fit_head", "linear_probe"]

#: Inverse strength of the probe's L2 penalty. Stronger than scikit-learn's
#: default (``C=1``): a head that is not driven to its largest margins leaves
#: the fine-tuning gradients room (figures in ``benchmarks/RESULTS.md``,
#: "Few-shot text accuracy").
PROBE_C = 0.1


def _informative_outputs(targets, sample_weight, n_outputs):
    """``(kept outputs, targets, sample_weight)`` of rows that all weigh, with
    only the outputs the data can fit: the classes that occur (class indices,
    renumbered among them), or the columns whose values vary (indicators, real
    values). A class absent from the rows, or a label that is always 0 (or
    always 1), would drive its bias to minus (or plus) infinity, since the
    bias is not penalised; it keeps its initial weights instead, as
    ``LogisticRegression`` fits only the classes it sees."""
    if not targets.is_floating_point():  # class indices
        counts = torch.bincount(targets, minlength=n_outputs)
        kept = torch.nonzero(counts > 0).flatten()
        position = torch.full((n_outputs,), -1, dtype=torch.long, device=targets.device)
        position[kept] = torch.arange(len(kept), device=targets.device)
        return kept, position[targets], sample_weight
    columns = sample_weight > 0 if sample_weight.ndim == 2 else None
    varies = []
    for column in range(targets.shape[1]):
        values = targets[:, column] if columns is None else targets[columns[:, column], column]
        varies.append(len(values) > 0 and bool(values.max() > values.min()))
    kept = torch.nonzero(torch.as_tensor(varies, dtype=torch.bool)).flatten().to(
        targets.device)
    if sample_weight.ndim == 2:
        sample_weight = sample_weight[:, kept]
    return kept, targets[:, kept], sample_weight


def fit_head(head, features, targets, sample_weight, criterion, *, C=PROBE_C, max_iter=100):
    """Fit the linear ``head`` in place to ``features`` by L-BFGS.

    Minimises the weighted mean loss of ``criterion`` plus an L2 penalty on
    the weights of inverse strength ``C``, scaled as scikit-learn scales it:
    ``||W||^2 / (2 C S)`` for class indices (``S``: the rows' total weight; the
    multinomial ``LogisticRegression``), and ``||W||^2 / (2 C S L)`` for ``L``
    outputs that the criterion averages (labels, regression targets), so each
    label is the binary ``LogisticRegression`` at ``C`` and each regression
    target ``Ridge(alpha=1 / (2 C))``. The bias is not penalised. Outputs the
    rows cannot fit (a class with no row of positive weight, a label or
    target that never varies) keep their initial weights. The problem is
    convex for the criteria of the estimators, so the fitted part of the head
    starts from zero.

    Parameters
    ----------
    head : torch.nn.Linear
    features : ndarray of shape (n_samples, n_features)
    targets : ndarray
        As the criterion takes them: class indices (n_samples,), indicators or
        real values (n_samples, n_outputs).
    sample_weight : ndarray of shape (n_samples,) or (n_samples, n_outputs)
    criterion : Criterion
    C : float, default=PROBE_C
    max_iter : int, default=100

    Returns
    -------
    head : torch.nn.Linear
    """
    device = head.weight.device
    X = torch.as_tensor(np.asarray(features), dtype=torch.float32, device=device)
    y = torch.as_tensor(np.asarray(targets), device=device).to(criterion.target_dtype)
    w = torch.as_tensor(np.asarray(sample_weight), dtype=torch.float32, device=device)
    weighs = w > 0 if w.ndim == 1 else (w > 0).any(dim=1)
    X, y, w = X[weighs], y[weighs], w[weighs]
    kept, y, w = _informative_outputs(y, w, head.out_features)
    if len(kept) == 0 or len(X) == 0:
        return head
    total = float(w.sum())
    if y.is_floating_point() and w.ndim == 1:  # the criterion averages over outputs too
        total *= len(kept)
    penalty = 1.0 / (2.0 * C * max(total, 1e-12))
    weight = torch.zeros((len(kept), head.in_features), dtype=torch.float32, device=device,
                         requires_grad=True)
    parameters = [weight]
    bias = None
    if head.bias is not None:
        bias = torch.zeros(len(kept), dtype=torch.float32, device=device, requires_grad=True)
        parameters.append(bias)
    optimizer = torch.optim.LBFGS(parameters, lr=1.0, max_iter=max_iter,
                                  history_size=20, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        outputs = torch.nn.functional.linear(X, weight, bias)
        loss = criterion(outputs, y, w) + penalty * (weight * weight).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    with torch.no_grad():
        head.weight[kept] = weight.to(head.weight.dtype)
        if bias is not None:
            head.bias[kept] = bias.to(head.bias.dtype)
    return head


def linear_probe(net, loader, rows, targets, sample_weight, criterion, *, batch_size,
                 autocast_dtype=None, C=PROBE_C):
    """Fit ``net.head`` on the frozen ``net.backbone``'s features of ``rows``.

    The features come from one pass in evaluation mode (no dropout, BatchNorm's
    running statistics, no augmentation: what prediction sees); the network's
    training mode is restored afterwards. See :func:`fit_head`.
    """
    rows = np.asarray(rows)
    was_training = net.training
    net.eval()
    try:
        features = run_batches(net.backbone, loader, autocast_dtype=autocast_dtype,
                               batch_size=batch_size, indices=rows)
    finally:
        net.train(was_training)
    return fit_head(net.head, features, targets[rows], sample_weight[rows], criterion, C=C)
