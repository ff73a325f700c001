"""Which sample is what: scikit-learn's semi-supervised ``y == -1`` and skada's
``sample_domain``, turned into boolean masks.

Used by :class:`~sktransfer.DomainAdaptClassifier` (what to train on and what to
adapt to) and by the scorers of :mod:`sktransfer.metrics` (what to score on).
"""

import numbers

import numpy as np
import pandas as pd
from sklearn.utils import column_or_1d


def unlabeled_mask(y):
    """Which entries of ``y`` mark unlabeled samples: ``-1``, scikit-learn's
    semi-supervised convention (the string ``"-1"`` in an array of strings,
    numpy's or an object array's such as a pandas column: what numpy makes of
    ``-1`` concatenated with string labels)."""
    y = np.asarray(y)
    if y.dtype.kind in "US":
        return y == "-1"
    if y.dtype.kind == "b":
        return np.zeros(len(y), dtype=bool)
    if y.dtype.kind == "O":
        if all(isinstance(v, str) for v in y):
            # strings in an object array (a pandas column of labels, a
            # Categorical, a "string" dtype): as in a numpy string array
            return np.array([v == "-1" for v in y], dtype=bool)
        # numbers only: a missing label (None, pandas' NA) is no -1, and is
        # refused as missing where the labels are checked
        return np.array([isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))
                         and v == -1 for v in y], dtype=bool)
    return y == -1


def check_no_missing_labels(y):
    """Refuse None and NaN labels, naming the first row that holds one (sorting
    the classes would fail with a TypeError that names no row)."""
    if y.dtype.kind not in "Of":
        return
    missing = pd.isna(y)  # None, NaN, and pandas' NA of a "string" column
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise ValueError(
            f"y has {int(missing.sum())} missing label(s) (None, NaN or NA), the first at "
            f"row {row}: drop those rows, or mark unlabeled samples of "
            "DomainAdaptClassifier with -1."
        )


def target_mask(unlabeled, sample_domain, *, marker):
    """Which samples are target samples.

    Without ``sample_domain`` the unlabeled ones; with it, the samples of a
    negative domain id (positive ids are source domains, as in skada), checked
    against ``unlabeled``: an unlabeled sample must be a target sample.
    ``marker`` says how ``y`` marks an unlabeled sample (``"y == -1"``), for
    the error.
    """
    n_samples = len(unlabeled)
    if sample_domain is None:
        return unlabeled
    domains = column_or_1d(sample_domain)
    if len(domains) != n_samples:
        raise ValueError(f"sample_domain has {len(domains)} entries but X has "
                         f"{n_samples} samples: they must have the same length.")
    if domains.dtype.kind not in "iu":
        raise ValueError(f"sample_domain must hold integer domain ids (positive: "
                         f"source, negative: target); got dtype {domains.dtype}.")
    if (domains == 0).any():
        i = int(np.flatnonzero(domains == 0)[0])
        raise ValueError(f"sample_domain[{i}] is 0: domain ids are positive for "
                         "source and negative for target samples.")
    target = domains < 0
    unlabeled_source = unlabeled & ~target
    if unlabeled_source.any():
        i = int(np.flatnonzero(unlabeled_source)[0])
        raise ValueError(
            f"sample {i} is unlabeled ({marker}) but sample_domain[{i}] = "
            f"{domains[i]} says it is a source sample; unlabeled samples must be "
            "target samples (a negative domain id)."
        )
    return target
