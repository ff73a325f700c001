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


def fit_head(head, features, targets, sample_weight, criterion, *, C=1.0, max_iter=100):
    """Fit the linear ``head`` in place to ``features`` by L-BFGS.

    Minimises ``criterion(head(features), targets, sample_weight) +
    ||head.weight||^2 / (2 C sum(sample_weight))``: the weighted mean loss of
    the criterion plus scikit-learn's L2 penalty of inverse strength ``C``,
    divided like the loss by the total weight. The bias is not penalised. The
    problem is convex for the criteria of the estimators, so the head starts
    from zero and the solution does not depend on its initial weights.

    Parameters
    ----------
    head : torch.nn.Linear
    features : ndarray of shape (n_samples, n_features)
    targets : ndarray
        As the criterion takes them (class indices, indicators, real values).
    sample_weight : ndarray of shape (n_samples,) or (n_samples, n_outputs)
    criterion : Criterion
    C : float, default=1.0
    max_iter : int, default=100

    Returns
    -------
    head : torch.nn.Linear
    """
    device = head.weight.device
    X = torch.as_tensor(np.asarray(features), dtype=torch.float32, device=device)
    y = torch.as_tensor(np.asarray(targets), device=device).to(criterion.target_dtype)
    w = torch.as_tensor(np.asarray(sample_weight), dtype=torch.float32, device=device)
    total = float(w.sum()) if w.ndim == 1 else float(w.sum()) / max(w.shape[1], 1)
    penalty = 1.0 / (2.0 * C * max(total, 1e-12))
    weight = torch.zeros_like(head.weight, dtype=torch.float32, requires_grad=True)
    parameters = [weight]
    bias = None
    if head.bias is not None:
        bias = torch.zeros_like(head.bias, dtype=torch.float32, requires_grad=True)
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
        head.weight.copy_(weight.to(head.weight.dtype))
        if bias is not None:
            head.bias.copy_(bias.to(head.bias.dtype))
    return head


def linear_probe(net, loader, rows, targets, sample_weight, criterion, *, batch_size,
                 autocast_dtype=None, C=PROBE_C):
    """Fit ``net.head`` on the frozen ``net.backbone``'s features of ``rows``.

    The features come from one pass in evaluation mode (no dropout, BatchNorm's
    running statistics, no augmentation: what prediction sees); the network's
    training mode is restored afterwards. See :func:`fit_head`.
    """
    was_training = net.training
    net.eval()
    try:
        features = run_batches(net.backbone, loader, autocast_dtype=autocast_dtype,
                               batch_size=batch_size, indices=np.asarray(rows))
    finally:
        net.train(was_training)
    rows = np.asarray(rows)
    return fit_head(net.head, features, targets[rows], sample_weight[rows], criterion, C=C)
