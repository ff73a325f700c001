#!/usr/bin/env python
"""Seconds per training epoch of ``FineTuneClassifier`` against a plain torch loop
and skorch's ``NeuralNetClassifier``, all three doing the same work.

The same for all three:

* the network: the backbone built by ``sktransfer.backbones.load_backbone``
  (``efficientnet_lite0`` with its offline ImageNet weights, or ``--model
  simple_cnn`` with random weights for a quick run) followed by one
  ``nn.Linear(num_features, n_classes)``; everything trains (``freeze="none"``);
* the data: ``--n-images`` random uint8 images (N, H, W, 3) in memory (a numpy
  array), ``--image-size`` px square, random labels of 10 classes, reshuffled
  every epoch;
* the per-batch preprocessing, in torch ops: uint8 NHWC batch -> NCHW view ->
  float / 255 -> resize to ``--resize`` (bicubic for efficientnet_lite0, bilinear
  for simple_cnn, antialias) -> ``(x - mean) / std`` with the backbone's own mean
  and std. sktransfer does this in its input pipeline; the plain loop and skorch
  do it in a small ``nn.Module`` wrapped around the network (``Preprocessed``),
  whose input needs no gradient, so it adds no backward work;
* the batch size, AdamW with the same learning rate for every parameter
  (sktransfer: ``backbone_lr_ratio=1.0``) and ``weight_decay=1e-4``, no
  scheduler (``scheduler=None``), no augmentation (``augment=None``), no
  validation (sktransfer: ``early_stopping=False``, skorch: ``train_split=None``),
  cross-entropy loss, float32 (sktransfer: ``precision="32"``);
* on CUDA only: the network and its input in channels_last, as sktransfer does.

Timed, per repetition, is one whole ``fit`` of ``--epochs`` epochs of each side,
including building the network (each side calls ``load_backbone``; skorch builds
its module in ``fit``). Two figures are reported for each side:

* ``epoch s``: the median duration of an epoch, as each side records it
  (plain: a timer around the epoch's batches; skorch: ``history[:, "dur"]``;
  sktransfer: ``history_[i]["duration"]``);
* ``fit s/epoch``: the wall time of the whole ``fit`` divided by the epochs,
  median over repetitions; this also counts what happens outside the epochs
  (network building, input checks, per-epoch bookkeeping).

The ratios ours/plain and ours/skorch are printed for both figures, with the
spread of the per-round ratios (ours over the other side's fit in the same
round), which shows how much of a difference is noise of the machine.

Repetitions are interleaved (plain, skorch, ours; then rotated) after one
untimed warm-up fit of each, so that drift of a shared machine falls on all
three alike. Torch runs on ``--threads`` threads (default 1): on a small shared
machine, OpenMP threads spinning against other processes make timings 10-100x
noisier. Run ``--help`` for the options and see ``benchmarks/README.md``.
"""

import platform
import statistics
import sys
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import _common as common

N_CLASSES = 10
WEIGHT_DECAY = 1e-4
TARGET_PLAIN = 1.05
TARGET_SKORCH = 1.0


def parse_args(argv=None):
    parser = common.argument_parser(__doc__)
    parser.add_argument("--model", default="efficientnet_lite0",
                        choices=("efficientnet_lite0", "simple_cnn"))
    common.add_device_argument(parser)
    parser.add_argument("--epochs", type=common.positive_int, default=2,
                        help="epochs per timed fit")
    common.add_rounds_arguments(
        parser, repeats=5, repeats_help="timed fits of each side (interleaved)",
        warmup_help="untimed 1-epoch fits of each side before timing")
    parser.add_argument("--n-images", type=common.positive_int, default=256)
    parser.add_argument("--image-size", type=common.positive_int, default=64,
                        help="side of the stored square uint8 images")
    parser.add_argument("--resize", type=common.positive_int, default=96,
                        help="side the images are resized to, per batch, on the "
                             "device (sktransfer: image_size=)")
    common.add_batch_size_argument(parser)
    parser.add_argument("--lr", type=common.positive_float, default=1e-3)
    common.add_threads_argument(parser)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sides", nargs="+", default=["plain", "skorch", "ours"],
                        choices=("plain", "skorch", "ours"))
    return parser.parse_args(argv)


def weights_of(model):
    return "DEFAULT" if model == "efficientnet_lite0" else None


# -- the network of the plain loop and of skorch ---------------------------------
class Net(nn.Module):
    """The backbone and a linear head (what FineTuneClassifier builds)."""

    def __init__(self, backbone, n_classes):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(backbone.num_features, n_classes)

    def forward(self, x):
        return self.head(self.backbone(x))


class Preprocessed(nn.Module):
    """uint8 (N, H, W, C) batch -> float, resized, normalised -> ``net``.

    The same torch ops as sktransfer's input pipeline for in-memory arrays.
    """

    def __init__(self, net, *, size, interpolation, mean, std, channels_last=False):
        super().__init__()
        self.net = net
        self.size = size
        self.interpolation = interpolation
        self.channels_last = channels_last
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x):
        x = x.permute(0, 3, 1, 2).float().div_(255.0)  # NCHW view of NHWC memory
        if tuple(x.shape[-2:]) != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode=self.interpolation,
                              align_corners=False, antialias=True)
        x = (x - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net(x)


def build_wrapped(model, size, device, seed):
    """The plain loop's and skorch's module: load_backbone + head + preprocessing."""
    from sktransfer.backbones import load_backbone

    torch.manual_seed(seed)
    backbone = load_backbone(model, weights_of(model), random_state=seed)
    config = backbone.preprocess
    mean = list(config.mean) * (3 if len(config.mean) == 1 else 1)
    std = list(config.std) * (3 if len(config.std) == 1 else 1)
    module = Preprocessed(Net(backbone, N_CLASSES), size=size,
                          interpolation=config.interpolation, mean=mean, std=std,
                          channels_last=device.type == "cuda")
    module = module.to(device)
    if device.type == "cuda":
        module = module.to(memory_format=torch.channels_last)
    return module


class SkorchModule(nn.Module):
    """``build_wrapped`` as a class, so that skorch builds it inside ``fit``."""

    def __init__(self, model="efficientnet_lite0", size=96, device="cpu", seed=0):
        super().__init__()
        self.inner = build_wrapped(model, size, torch.device(device), seed)

    def forward(self, x):
        return self.inner(x)


# -- the three sides -------------------------------------------------------------
def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def fit_plain(images, labels, args, device, epochs):
    """A hand-written loop; returns the per-epoch durations."""
    module = build_wrapped(args.model, args.resize, device, args.seed)
    optimizer = torch.optim.AdamW(module.parameters(), lr=args.lr,
                                  weight_decay=WEIGHT_DECAY)
    X = torch.from_numpy(images)  # (N, H, W, C) uint8, no copy
    y = torch.from_numpy(labels)
    generator = torch.Generator().manual_seed(args.seed)
    on_cuda = device.type == "cuda"
    durations = []
    for _ in range(epochs):
        start = time.perf_counter()
        module.train()
        order = torch.randperm(len(X), generator=generator)
        total = None
        for begin in range(0, len(X), args.batch_size):
            index = order[begin:begin + args.batch_size]
            xb, yb = X[index], y[index]
            if on_cuda:
                xb = xb.pin_memory()
            xb = xb.to(device, non_blocking=True)
            yb = yb.to(device, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(module(xb), yb)
            loss.backward()
            optimizer.step()
            total = loss.detach() if total is None else total + loss.detach()
        float(total)  # one host sync per epoch, as sktransfer does
        synchronize(device)
        durations.append(time.perf_counter() - start)
    return durations


def fit_skorch(images, labels, args, device, epochs):
    from skorch import NeuralNetClassifier

    net = NeuralNetClassifier(
        SkorchModule,
        module__model=args.model,
        module__size=args.resize,
        module__device=str(device),
        module__seed=args.seed,
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.AdamW,
        optimizer__weight_decay=WEIGHT_DECAY,
        lr=args.lr,
        batch_size=args.batch_size,
        max_epochs=epochs,
        train_split=None,
        iterator_train__shuffle=True,
        iterator_train__pin_memory=device.type == "cuda",
        device=str(device),
        verbose=0,
    )
    torch.manual_seed(args.seed)  # the DataLoader's shuffling
    net.fit(images, labels)
    synchronize(device)
    return list(net.history[:, "dur"])


def fit_ours(images, labels, args, device, epochs):
    from sktransfer import FineTuneClassifier

    clf = FineTuneClassifier(
        model=args.model, weights=weights_of(args.model), freeze="none",
        unfreeze_after=None, epochs=epochs, batch_size=args.batch_size, lr=args.lr,
        backbone_lr_ratio=1.0, optimizer="adamw", weight_decay=WEIGHT_DECAY,
        scheduler=None, augment=None, early_stopping=False, device=device,
        precision="32", image_size=args.resize, random_state=args.seed,
    )
    clf.fit(images, labels)
    synchronize(device)
    return [record["duration"] for record in clf.history_]


SIDES = {"plain": fit_plain, "skorch": fit_skorch, "ours": fit_ours}
NAMES = {"plain": "plain torch loop", "skorch": "skorch NeuralNetClassifier",
         "ours": "sktransfer FineTuneClassifier"}


def main(argv=None):
    args = parse_args(argv)
    common.set_threads(args.threads)
    device = common.resolve_device(args.device)
    warnings.filterwarnings("ignore", category=UserWarning, module="skorch")

    rng = np.random.default_rng(args.seed)
    images = rng.integers(0, 256, (args.n_images, args.image_size, args.image_size, 3),
                          dtype=np.uint8)
    labels = rng.integers(0, N_CLASSES, args.n_images).astype(np.int64)
    labels[:N_CLASSES] = np.arange(N_CLASSES)  # every class present

    sides = list(dict.fromkeys(args.sides))

    def fit(side, epochs):
        return lambda: SIDES[side](images, labels, args, device, epochs)

    epoch_times = {side: [] for side in sides}

    def record(side, seconds, durations, warm_up):
        if not warm_up:
            epoch_times[side].extend(durations)

    times, _ = common.interleaved({side: fit(side, args.epochs) for side in sides},
                                  repeats=args.repeats, warmup=args.warmup,
                                  warmup_sides={side: fit(side, 1) for side in sides},
                                  after_run=record)
    fit_times = {side: [s / args.epochs for s in seconds]
                 for side, seconds in times.items()}

    try:
        import skorch
        skorch_version = skorch.__version__
    except ImportError:
        skorch_version = "not installed"
    n_batches = -(-args.n_images // args.batch_size)
    print("Training speed: FineTuneClassifier vs a plain torch loop vs skorch")
    print(f"device       : {common.describe_device(device)}")
    print(f"versions     : torch {torch.__version__}, skorch {skorch_version}, "
          f"python {platform.python_version()}")
    print(f"model        : {args.model} + linear head ({N_CLASSES} classes), "
          f"weights={weights_of(args.model)!r}, all parameters train, float32")
    print(f"data         : {args.n_images} uint8 images {args.image_size}x{args.image_size}"
          f" -> resized to {args.resize}x{args.resize} per batch; batch size "
          f"{args.batch_size} ({n_batches} batches/epoch)")
    print(f"optimizer    : AdamW lr={args.lr:g} weight_decay={WEIGHT_DECAY:g}, no "
          "scheduler, no augmentation, no validation")
    print(f"timing       : {args.repeats} interleaved fits x {args.epochs} epochs per "
          f"side, after {args.warmup} warm-up fit(s) of 1 epoch; medians")
    print()
    print(f"{'side':32s} {'epoch s':>9s} {'(min-max)':>15s} {'fit s/epoch':>12s}")
    median_epoch, median_fit = {}, {}
    for side in sides:
        median_epoch[side] = statistics.median(epoch_times[side])
        median_fit[side] = statistics.median(fit_times[side])
        print(f"{NAMES[side]:32s} {median_epoch[side]:9.3f} "
              f"({min(epoch_times[side]):6.3f}-{max(epoch_times[side]):6.3f}) "
              f"{median_fit[side]:12.3f}")
    print()
    for other, target in (("plain", TARGET_PLAIN), ("skorch", TARGET_SKORCH)):
        if "ours" in median_epoch and other in median_epoch:
            by_epoch = median_epoch["ours"] / median_epoch[other]
            by_fit = median_fit["ours"] / median_fit[other]
            flag = "" if by_epoch <= target else "  ABOVE TARGET"
            rounds = common.paired_ratios(fit_times["ours"], fit_times[other])
            print(f"ours/{other:7s}: {by_epoch:.3f} per epoch, {by_fit:.3f} per whole fit"
                  f"  (target <= {target}){flag}")
            print(f"{'':13s}per-round fit ratios: {common.ratio_spread(rounds)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
