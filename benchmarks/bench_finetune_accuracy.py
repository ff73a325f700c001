#!/usr/bin/env python
"""Test accuracy of fine-tuning against frozen features and raw pixels, few shots.

The task is ``sktransfer.datasets.load_photo_patches``: 48x48 crops of ten real
photographs that scikit-image ships, one class per photograph; training crops come
from the left half of each photograph and test crops from the right half, so no
pixel is shared. With 5 and 20 training crops per class (and 20 test crops per
class), for each seed, it fits and scores:

* ``pixels + LR``: ``LogisticRegression`` on the flattened pixels / 255;
* ``extractor + LR``: ``PretrainedFeatureExtractor(model="efficientnet_lite0")``
  followed by ``LogisticRegression`` in a ``Pipeline`` (frozen ImageNet features);
* ``finetune head``: ``FineTuneClassifier(freeze="backbone")``, a linear probe
  trained by gradient descent, with the default on-device augmentation;
* ``finetune full``: ``FineTuneClassifier(freeze="none", unfreeze_after=k)``:
  ``k`` epochs of the head alone, then the whole network (backbone at
  ``lr * backbone_lr_ratio``), one-cycle schedule, default augmentation.

All three pretrained variants use the same ``efficientnet_lite0`` ImageNet weights
(offline) at the same input size, ``--image-size`` (default 96: the 48px crops are
upsampled to 96x96 instead of the weights' own 256 -> 224, which keeps a CPU run
short; fine-tuning a 224px network on a CPU takes ~5x longer per epoch).

Torch is limited to ``--threads`` threads (default 1) and BLAS to one thread: on a
small shared machine, spinning OpenMP/BLAS threads make timings very noisy (and
``LogisticRegression`` up to 50x slower). Fit times are wall-clock seconds of
``fit`` on the training crops (for the pipeline: loading the backbone, extracting
the features and fitting the regression). Run ``--help`` for the options and see
``benchmarks/README.md``.
"""

import statistics
import sys
import time
import warnings

import numpy as np
import torch

import _common as common

METHODS = ("pixels", "extractor", "head", "full")
LABELS = {
    "pixels": "pixels + LR",
    "extractor": "extractor + LR",
    "head": "finetune head",
    "full": "finetune full",
}


def parse_args(argv=None):
    parser = common.argument_parser(__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="seeds of the crops and of the training runs; results "
                             "are averaged over them")
    parser.add_argument("--n-per-class", type=common.positive_int, nargs="+",
                        default=[5, 20],
                        help="training crops per class (one experiment each)")
    parser.add_argument("--n-test-per-class", type=common.positive_int, default=20)
    parser.add_argument("--patch-size", type=common.positive_int, default=48)
    parser.add_argument("--image-size", type=common.positive_int, default=96,
                        help="input size of the network, for the extractor and both "
                             "fine-tunings alike")
    parser.add_argument("--epochs", type=common.positive_int, default=8,
                        help="epochs of both FineTuneClassifier runs")
    parser.add_argument("--unfreeze-after", type=common.non_negative_int, default=1,
                        help="head-only epochs before full fine-tuning")
    parser.add_argument("--lr", type=common.positive_float, default=3e-3,
                        help="head learning rate of full fine-tuning (the backbone "
                             "gets lr * --backbone-lr-ratio)")
    parser.add_argument("--backbone-lr-ratio", type=common.non_negative_float, default=0.3)
    parser.add_argument("--head-lr", type=common.positive_float, default=1e-2,
                        help="learning rate of the linear probe (freeze='backbone')")
    common.add_batch_size_argument(parser)
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    common.add_device_argument(parser)
    common.add_threads_argument(parser)
    parser.add_argument("--verbose", type=int, default=0,
                        help="verbose= of FineTuneClassifier")
    args = parser.parse_args(argv)
    if args.unfreeze_after >= args.epochs:
        parser.error("--unfreeze-after must be in [0, --epochs)")
    return args


def make_estimator(method, args, seed):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from sktransfer import FineTuneClassifier, PretrainedFeatureExtractor

    if method == "pixels":
        return LogisticRegression(max_iter=1000)
    if method == "extractor":
        return make_pipeline(
            PretrainedFeatureExtractor(model="efficientnet_lite0", image_size=args.image_size,
                                       device=args.device),
            LogisticRegression(max_iter=1000),
        )
    common = dict(model="efficientnet_lite0", image_size=args.image_size,
                  epochs=args.epochs, batch_size=args.batch_size, device=args.device,
                  random_state=seed, verbose=args.verbose)
    if method == "head":
        return FineTuneClassifier(freeze="backbone", lr=args.head_lr, **common)
    return FineTuneClassifier(freeze="none", unfreeze_after=args.unfreeze_after,
                              lr=args.lr, backbone_lr_ratio=args.backbone_lr_ratio,
                              **common)


def as_input(method, X):
    if method == "pixels":
        return X.reshape(len(X), -1).astype(np.float64) / 255.0
    return X


def run_one(method, args, seed, X_train, y_train, X_test, y_test):
    from sklearn.exceptions import ConvergenceWarning

    estimator = make_estimator(method, args, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fit_seconds, _ = common.timed(
            lambda: estimator.fit(as_input(method, X_train), y_train))
    predict_seconds, accuracy = common.timed(
        lambda: float(np.mean(estimator.predict(as_input(method, X_test)) == y_test)))
    return accuracy, fit_seconds, predict_seconds


def main(argv=None):
    args = parse_args(argv)
    from sktransfer.datasets import load_photo_patches

    blas_limit = common.set_threads(args.threads, limit="blas")

    print("Few-shot accuracy: fine-tuning vs frozen features vs raw pixels")
    print(f"device      : {common.describe_host(args.device)}; torch {torch.__version__}")
    print(f"data        : load_photo_patches, {args.patch_size}x{args.patch_size} crops, "
          f"10 classes, {args.n_test_per_class} test crops per class")
    print(f"network     : efficientnet_lite0 (ImageNet), image_size={args.image_size} "
          "for the extractor and both fine-tunings")
    print(f"fine-tuning : epochs={args.epochs}, batch_size={args.batch_size}, "
          "scheduler='onecycle', augment='default', float32")
    print(f"  head      : freeze='backbone', lr={args.head_lr:g}")
    print(f"  full      : freeze='none', unfreeze_after={args.unfreeze_after}, "
          f"lr={args.lr:g}, backbone_lr_ratio={args.backbone_lr_ratio:g}")
    print(f"seeds       : {args.seeds}")
    print(flush=True)

    total_start = time.perf_counter()
    results = {}  # (n_per_class, method) -> list of (accuracy, fit s, predict s)
    for n_per_class in args.n_per_class:
        for seed in args.seeds:
            X_train, y_train = load_photo_patches(
                split="train", n_per_class=n_per_class, patch_size=args.patch_size,
                random_state=seed)
            X_test, y_test = load_photo_patches(
                split="test", n_per_class=args.n_test_per_class,
                patch_size=args.patch_size, random_state=10_000 + seed)
            for method in args.methods:
                outcome = run_one(method, args, seed, X_train, y_train, X_test, y_test)
                results.setdefault((n_per_class, method), []).append(outcome)
                print(f"  n/class {n_per_class:3d}  seed {seed}  {LABELS[method]:15s} "
                      f"acc {outcome[0]:.3f}  fit {outcome[1]:6.1f}s  "
                      f"predict {outcome[2]:5.1f}s", flush=True)
    blas_limit.restore_original_limits()  # the measurements are done

    print()
    print(f"mean over {len(args.seeds)} seed(s)  (accuracy: mean [min-max]; times: mean)")
    print(f"{'n/class':>7s}  {'method':15s} {'test accuracy':>22s} {'fit s':>8s} "
          f"{'predict s':>10s}")
    for n_per_class in args.n_per_class:
        for method in args.methods:
            runs = results[(n_per_class, method)]
            accs = [r[0] for r in runs]
            print(f"{n_per_class:7d}  {LABELS[method]:15s} {common.mean_range(accs, 8)} "
                  f"{statistics.mean(r[1] for r in runs):8.1f} "
                  f"{statistics.mean(r[2] for r in runs):10.1f}")
    if "extractor" in args.methods and "full" in args.methods:
        print()
        for n_per_class in args.n_per_class:
            full = statistics.mean(r[0] for r in results[(n_per_class, "full")])
            frozen = statistics.mean(r[0] for r in results[(n_per_class, "extractor")])
            verdict = "ok" if full >= frozen else "BELOW the frozen features"
            print(f"n/class {n_per_class}: finetune full {full:.3f} vs extractor + LR "
                  f"{frozen:.3f}: {verdict}")
    common.print_total_time(total_start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
