#!/usr/bin/env python
"""Multi-label on real pixels: which photographs a 2x2 mosaic of crops shows, by
a multi-label ``FineTuneClassifier`` (EfficientNet-Lite0 fine-tuned) and by frozen
EfficientNet-Lite0 features + one-vs-rest ``LogisticRegression``.

The data: the ten photographs of ``sktransfer.datasets.load_photo_patches``
(astronaut, brick, camera, chelsea, coffee, coins, grass, gravel, moon, rocket:
real photographs that scikit-image ships; six of them grey). Each mosaic is four
``--cell``-pixel crops (32 by default, so a 64x64 image) in a 2x2 grid; each cell
shows a photograph drawn uniformly at random, so a mosaic shows one to four of
them. The labels are the photographs present: a 0/1 indicator matrix with ten
columns. Training mosaics are made of crops from the left half of each
photograph, test mosaics of crops from the right half
(``load_photo_patches(split=...)``), so no pixel is shared between them; no crop
is used twice.

Sides:

* ``finetune``: ``FineTuneClassifier(model="efficientnet_lite0")`` with its
  ImageNet weights, ``y`` the indicator matrix (one sigmoid per label, binary
  cross-entropy, ``threshold=0.5``), ``image_size=--image-size``, everything
  training at one rate (``--backbone-lr-ratio 1.0``: small mosaics of four
  photographs are far from ImageNet's pictures, and the backbone learned too
  slowly at the estimator's default tenth of the rate), the default augmentation
  (flips, mild zoom crops, brightness and contrast: none of them changes which
  photographs a mosaic shows);
* ``frozen``: ``PretrainedFeatureExtractor(model="efficientnet_lite0",
  image_size=--image-size)`` features into
  ``OneVsRestClassifier(LogisticRegression)``, ``C`` chosen among
  ``--frozen-c`` by a 3-fold grid search on the training mosaics
  (samples-averaged F1), features standardised.

Reported: the samples-averaged F1 (``f1_score(average="samples")``) on the test
mosaics (goal for fine-tuning: >= 0.90 and above the frozen route), the subset
accuracy (every label right), the micro-averaged F1, and the fit seconds. Torch
runs on ``--threads`` threads (1 by default). Run ``--help`` for the options.
"""

import platform
import sys
import time

import numpy as np
import torch

import _common as common

GOAL_F1 = 0.90
SIDES = ("finetune", "frozen")


def parse_args(argv=None):
    parser = common.argument_parser(__doc__)
    parser.add_argument("--sides", nargs="+", choices=SIDES, default=list(SIDES))
    parser.add_argument("--n-train", type=common.positive_int, default=800,
                        help="training mosaics")
    parser.add_argument("--n-test", type=common.positive_int, default=400,
                        help="test mosaics")
    parser.add_argument("--cell", type=common.positive_int, default=32,
                        help="side of each of the four crops (the mosaic is twice it)")
    parser.add_argument("--image-size", type=common.positive_int, default=96,
                        help="image_size of EfficientNet-Lite0 (both sides)")
    parser.add_argument("--epochs", type=common.positive_int, default=15)
    parser.add_argument("--lr", type=common.positive_float, default=1e-3)
    parser.add_argument("--backbone-lr-ratio", default=1.0,
                        type=lambda text: text if text == "auto" else float(text),
                        help="FineTuneClassifier's backbone_lr_ratio ('auto': 0.1 for "
                             "pretrained weights)")
    common.add_batch_size_argument(parser)
    parser.add_argument("--frozen-c", type=common.positive_float, nargs="+",
                        default=[0.01, 0.1, 1.0, 10.0, 100.0],
                        help="values of LogisticRegression's C the frozen route's "
                             "grid search tries")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the mosaics and of the fine-tuning")
    common.add_threads_argument(parser)
    return parser.parse_args(argv)


# -- data ------------------------------------------------------------------------
def mosaics(split, n, cell, seed):
    """(images uint8 (n, 2 cell, 2 cell, 3), indicator int64 (n, n_photos),
    photo names): 2x2 mosaics of crops of the photographs of ``split``."""
    from sktransfer.datasets import PHOTO_CLASSES, load_photo_patches

    rng = np.random.default_rng([seed, 0 if split == "train" else 1])
    which = rng.integers(0, len(PHOTO_CLASSES), size=(n, 4))
    n_per_class = int(np.bincount(which.ravel(), minlength=len(PHOTO_CLASSES)).max())
    crops, names = load_photo_patches(split=split, n_per_class=n_per_class,
                                      patch_size=cell, random_state=seed)
    first = {name: int(np.flatnonzero(names == name)[0]) for name in PHOTO_CLASSES}
    used = np.zeros(len(PHOTO_CLASSES), dtype=np.int64)
    images = np.empty((n, 2 * cell, 2 * cell, 3), dtype=np.uint8)
    for i, cells in enumerate(which):
        for position, photo in enumerate(cells):
            crop = crops[first[PHOTO_CLASSES[photo]] + used[photo]]
            used[photo] += 1
            row, col = divmod(position, 2)
            images[i, row * cell:(row + 1) * cell, col * cell:(col + 1) * cell] = crop
    indicator = np.zeros((n, len(PHOTO_CLASSES)), dtype=np.int64)
    np.put_along_axis(indicator, which, 1, axis=1)
    return images, indicator, PHOTO_CLASSES


def scores(Y_true, Y_pred):
    from sklearn.metrics import accuracy_score, f1_score

    return {"f1_samples": float(f1_score(Y_true, Y_pred, average="samples", zero_division=1.0)),
            "f1_micro": float(f1_score(Y_true, Y_pred, average="micro")),
            "subset": float(accuracy_score(Y_true, Y_pred))}


# -- the sides -------------------------------------------------------------------
def fit_finetune(data, args):
    from sktransfer import FineTuneClassifier

    clf = FineTuneClassifier(
        model="efficientnet_lite0", weights="DEFAULT", freeze=None, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, backbone_lr_ratio=args.backbone_lr_ratio,
        image_size=args.image_size,
        early_stopping=False, device="cpu", precision="32", random_state=args.seed)
    seconds, _ = common.timed(lambda: clf.fit(data.X_train, data.Y_train))
    return dict(fit=seconds, **scores(data.Y_test, clf.predict(data.X_test)))


def fit_frozen(data, args):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, KFold
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from sktransfer import PretrainedFeatureExtractor

    extractor = PretrainedFeatureExtractor(model="efficientnet_lite0", weights="DEFAULT",
                                           image_size=args.image_size, device="cpu")
    start = time.perf_counter()
    features = extractor.fit_transform(data.X_train)
    search = GridSearchCV(
        make_pipeline(StandardScaler(),
                      OneVsRestClassifier(LogisticRegression(max_iter=5000))),
        {"onevsrestclassifier__estimator__C": args.frozen_c},
        scoring="f1_samples", cv=KFold(3, shuffle=True, random_state=args.seed))
    search.fit(features, data.Y_train)
    seconds = time.perf_counter() - start
    predicted = search.predict(extractor.transform(data.X_test))
    return dict(fit=seconds, C=search.best_params_["onevsrestclassifier__estimator__C"],
                **scores(data.Y_test, predicted))


# -- report ----------------------------------------------------------------------
def main(argv=None):
    args = parse_args(argv)
    start = time.perf_counter()
    common.set_threads(args.threads)

    from sklearn.utils import Bunch

    X_train, Y_train, names = mosaics("train", args.n_train, args.cell, args.seed)
    X_test, Y_test, _ = mosaics("test", args.n_test, args.cell, args.seed)
    data = Bunch(X_train=X_train, Y_train=Y_train, X_test=X_test, Y_test=Y_test)
    results = {}
    for side in dict.fromkeys(args.sides):
        common.log(f"{side} ...")
        results[side] = (fit_finetune if side == "finetune" else fit_frozen)(data, args)

    side = 2 * args.cell
    print("Multi-label: which photographs a 2x2 mosaic of crops shows")
    print(f"device       : {common.describe_host('cpu')}")
    print(f"versions     : torch {torch.__version__}, python {platform.python_version()}")
    print(f"data         : {len(names)} photographs ({', '.join(names)}); mosaics "
          f"{side}x{side} of four {args.cell} px crops; {args.n_train} train (left "
          f"halves) / {args.n_test} test (right halves), seed {args.seed}; labels per "
          f"mosaic: mean {Y_test.sum(1).mean():.2f} (test)")
    print(f"network      : efficientnet_lite0 ImageNet weights, image_size={args.image_size}")
    if "finetune" in results:
        print(f"finetune     : FineTuneClassifier, indicator y, threshold 0.5, "
              f"{args.epochs} epochs, batch {args.batch_size}, lr={args.lr:g}, "
              f"backbone_lr_ratio={args.backbone_lr_ratio}, "
              "default augmentation, everything trains")
    if "frozen" in results:
        print(f"frozen       : features + StandardScaler + one-vs-rest LogisticRegression, "
              f"C={results['frozen']['C']:g} (3-fold grid over {args.frozen_c})")
    print()
    labels = {"finetune": "FineTuneClassifier (multi-label)",
              "frozen": "frozen features + OvR LogisticRegression"}
    print(f"{'side':42s} {'F1 samples':>10s} {'F1 micro':>9s} {'subset acc':>10s} "
          f"{'fit s':>7s}")
    for name, result in results.items():
        flag = ""
        if name == "finetune" and result["f1_samples"] < GOAL_F1:
            flag = f"  (goal >= {GOAL_F1})"
        print(f"{labels[name]:42s} {result['f1_samples']:10.4f} {result['f1_micro']:9.4f} "
              f"{result['subset']:10.4f} {result['fit']:7.1f}{flag}")
    if len(results) == 2:
        gap = results["finetune"]["f1_samples"] - results["frozen"]["f1_samples"]
        print(f"\nfine-tuning - frozen, samples F1: {gap:+.4f} (goal > 0)")
    common.print_total_time(start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
