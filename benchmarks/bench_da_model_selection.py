#!/usr/bin/env python
"""Model selection without target labels on MNIST -> MNIST-M: how far each
scorer of ``sktransfer.metrics`` lands from the best target accuracy.

``GridSearchCV(DomainAdaptClassifier(model=LeNetFeatures(), weights=None,
random_state=--seed), {"method": --methods, "trade_off": --trade-offs},
scoring={every scorer, and "oracle"}, cv=--folds, refit=False)`` on the mixed
training set of ``load_mnist_shift`` (labeled grey source, unlabeled MNIST-M
target; scikit-learn's ``y == -1`` convention: each fold holds out source and
target rows alike). The unsupervised scorers see only the held-out fold's
labeled source rows and unlabeled target rows. ``oracle`` is the accuracy of the
same fitted model on the 1,000 MNIST-M test digits, which no scorer reads: it is
what each pick is judged by. Every other parameter is at its default; the grid
is one GridSearchCV, so every scorer judges the very same fitted models.

For each scorer: the candidate it ranks first (mean over folds), that
candidate's oracle accuracy, and its gap to the best oracle accuracy of the
grid (0 is a perfect pick). Run ``--help`` for the options.
"""

import sys
import time

import numpy as np

import _common as common
from _lenet import build_features


def parse_args(argv=None):
    parser = common.argument_parser(__doc__)
    parser.add_argument("--methods", nargs="+", default=["self_training", "dann"])
    parser.add_argument("--trade-offs", nargs="+", type=common.non_negative_float,
                        default=[0.1, 0.3, 1.0, 3.0])
    parser.add_argument("--folds", type=common.int_at_least(2), default=2,
                        help="KFold splits of the mixed training set (each candidate "
                             "is fit this many times)")
    parser.add_argument("--epochs", type=common.positive_int, default=None,
                        help="epochs of every fit (default: DomainAdaptClassifier's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-seed", type=int, default=0)
    common.add_device_argument(parser)
    common.add_threads_argument(parser)
    return parser.parse_args(argv)


def print_results(results, scorers):
    """Every candidate's oracle accuracy and mean scores (``cv_results_``), then
    the candidate each scorer ranks first and its gap to the best oracle accuracy."""
    oracle_scores = results["mean_test_oracle"]
    best = float(np.max(oracle_scores))
    print()
    print(f"{'candidate':28s} {'oracle':>7s} " + " ".join(
        f"{name[:12]:>12s}" for name in scorers if name != "oracle"))
    for i, candidate in enumerate(results["params"]):
        text = f"{candidate['method']} trade_off={candidate['trade_off']:g}"
        print(f"{text:28s} {oracle_scores[i]:7.3f} " + " ".join(
            f"{results['mean_test_' + name][i]:12.4f}" for name in scorers
            if name != "oracle"))
    print()
    print(f"best oracle accuracy of the grid: {best:.3f}")
    for name in scorers:
        if name == "oracle":
            continue
        pick = int(np.argmax(results["mean_test_" + name]))
        candidate = results["params"][pick]
        print(f"  {name:26s} picks {candidate['method']} trade_off="
              f"{candidate['trade_off']:g}: oracle {oracle_scores[pick]:.3f}, gap "
              f"{best - oracle_scores[pick]:.3f}")


def main(argv=None):
    args = parse_args(argv)
    common.set_threads(args.threads, limit="blas")
    from sklearn.model_selection import GridSearchCV, KFold

    from sktransfer import DomainAdaptClassifier
    from sktransfer.datasets import load_mnist_shift
    from sktransfer.metrics import (
        DeepEmbeddedValidation,
        ImportanceWeightedScorer,
        PredictionEntropyScorer,
        SoftNeighborhoodDensityScorer,
    )

    data = load_mnist_shift(random_state=args.data_seed)

    def oracle(estimator, X, y):
        return float(np.mean(estimator.predict(data.X_test) == data.y_test))

    scorers = {"entropy": PredictionEntropyScorer(),
               "snd": SoftNeighborhoodDensityScorer(),
               "importance_weighted": ImportanceWeightedScorer(),
               "deep_embedded_validation": DeepEmbeddedValidation(),
               "oracle": oracle}
    params = {} if args.epochs is None else {"epochs": args.epochs}
    clf = DomainAdaptClassifier(model=build_features(args.seed), weights=None,
                                random_state=args.seed, device=args.device, **params)
    grid = GridSearchCV(clf, {"method": args.methods, "trade_off": args.trade_offs},
                        scoring=scorers, refit=False,
                        cv=KFold(args.folds, shuffle=True, random_state=args.seed))
    print("Model selection without target labels, MNIST -> MNIST-M "
          f"(load_mnist_shift(random_state={args.data_seed}))")
    print(f"grid         : method {args.methods} x trade_off {args.trade_offs}, "
          f"{args.folds}-fold KFold of the {len(data.y_train)} mixed training rows")
    print(f"estimator    : {clf!r}".replace("\n", " "))
    print(f"device       : {common.describe_host(args.device)}", flush=True)
    start = time.perf_counter()
    grid.fit(data.X_train, data.y_train)
    print_results(grid.cv_results_, scorers)
    common.print_total_time(start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
