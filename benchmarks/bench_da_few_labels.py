#!/usr/bin/env python
"""A few labeled target images (semi-supervised domain adaptation) on MNIST ->
MNIST-M: the gain of 1 and 5 labeled MNIST-M images per class.

``load_mnist_shift``'s training set (4,000 labeled grey digits, 4,000 unlabeled
MNIST-M digits), with ``k`` target images per class given their label
(``--per-class``; 0 is plain unsupervised adaptation). The labeled target rows
keep ``sample_domain=-1``: they are target samples that are trained on and
adapted to, the route ``DomainAdaptClassifier`` documents. For each ``k``:
``--methods`` at their defaults (``model=LeNetFeatures(), weights=None,
random_state=seed`` only), mean [min-max] target test accuracy over
``--seeds`` (the labeled images are drawn with the seed too).
"""

import sys
import time

import numpy as np

import _common as common
from _lenet import build_features


def parse_args(argv=None):
    parser = common.argument_parser(__doc__)
    parser.add_argument("--per-class", nargs="+", type=common.non_negative_int,
                        default=[0, 1, 5])
    parser.add_argument("--methods", nargs="+", default=["source_only", "self_training"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--data-seed", type=int, default=0)
    common.add_device_argument(parser)
    common.add_threads_argument(parser)
    return parser.parse_args(argv)


def labeled_target(data, per_class, seed):
    """``(y, sample_domain)`` with ``per_class`` target rows of each class labeled."""
    y, domain = data.y_train.copy(), data.sample_domain.copy()
    target_rows = np.flatnonzero(domain < 0)
    rng = np.random.default_rng(seed)
    for label in np.unique(data.y_target):
        rows = target_rows[data.y_target == label]
        y[rng.choice(rows, size=per_class, replace=False)] = label
    return y, domain


def main(argv=None):
    args = parse_args(argv)
    common.set_threads(args.threads, limit="blas")
    from sktransfer import DomainAdaptClassifier
    from sktransfer.datasets import load_mnist_shift

    data = load_mnist_shift(random_state=args.data_seed)
    print("A few labeled target images, MNIST -> MNIST-M "
          f"(load_mnist_shift(random_state={args.data_seed}))")
    print(f"device       : {common.describe_host(args.device)}", flush=True)
    start = time.perf_counter()
    table = {}
    for per_class in args.per_class:
        for method in args.methods:
            for seed in args.seeds:
                y, domain = labeled_target(data, per_class, seed)
                clf = DomainAdaptClassifier(method=method, model=build_features(seed),
                                            weights=None, random_state=seed,
                                            device=args.device)
                seconds, _ = common.timed(
                    lambda: clf.fit(data.X_train, y, sample_domain=domain))
                accuracy = clf.score(data.X_test, data.y_test)
                table.setdefault((per_class, method), []).append(accuracy)
                print(f"  {per_class} labeled per class  {method:12s} seed {seed}: target "
                      f"acc {accuracy:.3f}  fit {seconds:.0f}s", flush=True)
    print()
    print(f"{'labeled target per class':26s} " + " ".join(
        f"{method:>22s}" for method in args.methods))
    for per_class in args.per_class:
        print(f"{per_class:<26d} " + " ".join(
            f"{common.mean_range(table[(per_class, m)]):>22s}" for m in args.methods))
    common.print_total_time(start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
