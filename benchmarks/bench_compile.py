#!/usr/bin/env python
"""Seconds of ``compile=True`` (torch.compile) against eager forward passes, for
``PretrainedFeatureExtractor.transform`` and for a fine-tuning epoch of
``FineTuneClassifier``, measured in the same run.

The two sides of each figure differ in ``compile=`` alone:

* the network: ``--model`` (``simple_cnn``, or ``resnet18``) with random weights
  (``weights=None``, seeded), float32 (``precision="32"``) unless ``--precision``
  says otherwise;
* the data: ``--n-images`` random uint8 images (N, H, W, 3) in memory,
  ``--image-size`` px square, at that size (``image_size=(size, size)``: no
  resize); random labels of 10 classes for fine-tuning;
* transform: one fitted extractor per side, ``transform`` of all images in
  batches of ``--batch-size``;
* fine-tuning: a fresh ``FineTuneClassifier`` per fit, one epoch, everything
  trains (``freeze="none"``, ``backbone_lr_ratio=1.0``), AdamW, no scheduler, no
  augmentation, no validation. The figure is the epoch's own duration
  (``history_[0]["duration"]``), which leaves out building the network.

The compiled side's first call pays for compiling: it is timed on its own
("first call") and left out of the medians, as are ``--warmup`` untimed rounds
of both sides. Then ``--repeats`` rounds alternate the two sides (the order
rotated each round), so that drift of a shared machine falls on both alike; the
figures are medians and the per-round ratios compiled/eager show the noise. The
script checks that compiled outputs agree with eager ones (a tolerance of 1e-3
relative to the largest feature) and says so when torch could not compile and
fell back to eager. On a CPU a compiled CNN often gains little or loses; the
figure that matters is on a GPU (``--device cuda``). Run ``--help`` for the
options and see ``benchmarks/README.md``.
"""

import platform
import statistics
import sys
import time
import warnings

import numpy as np
import torch

import _common as common

N_CLASSES = 10


def parse_args(argv=None):
    parser = common.argument_parser(__doc__)
    parser.add_argument("--model", default="simple_cnn", choices=("simple_cnn", "resnet18"))
    common.add_device_argument(parser)
    parser.add_argument("--n-images", type=common.positive_int, default=256)
    parser.add_argument("--image-size", type=common.positive_int, default=64,
                        help="side of the square uint8 images (and of the network input)")
    common.add_batch_size_argument(parser)
    parser.add_argument("--mode", default=None,
                        choices=("default", "reduce-overhead", "max-autotune"),
                        help="torch.compile's mode (None: compile=True)")
    common.add_precision_argument(parser, default="32")
    common.add_rounds_arguments(parser, repeats=3,
                                repeats_help="timed rounds of each side (interleaved)",
                                warmup_help="untimed rounds of each side first")
    common.add_threads_argument(parser)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--parts", nargs="+", default=["transform", "finetune"],
                        choices=("transform", "finetune"))
    return parser.parse_args(argv)


def compile_value(args):
    return True if args.mode is None else {"mode": args.mode}


def make_extractor(args, device, compile):
    from sktransfer import PretrainedFeatureExtractor

    return PretrainedFeatureExtractor(
        model=args.model, weights=None, random_state=args.seed, device=device,
        batch_size=args.batch_size, precision=args.precision,
        image_size=(args.image_size, args.image_size), compile=compile)


def fit_one_epoch(images, labels, args, device, compile):
    """The duration of a one-epoch fit's epoch."""
    from sktransfer import FineTuneClassifier

    clf = FineTuneClassifier(
        model=args.model, weights=None, freeze="none", epochs=1,
        batch_size=args.batch_size, lr=1e-3, backbone_lr_ratio=1.0, optimizer="adamw",
        scheduler=None, augment=None, early_stopping=False, device=device,
        precision=args.precision, image_size=(args.image_size, args.image_size),
        random_state=args.seed, compile=compile)
    clf.fit(images, labels)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return clf.history_[0]["duration"]


class FallbackWatch:
    """Records the RuntimeWarnings of sktransfer's eager fallback."""

    def __init__(self):
        self.messages = []

    def __enter__(self):
        self._catcher = warnings.catch_warnings(record=True)
        self._records = self._catcher.__enter__()
        warnings.simplefilter("always", RuntimeWarning)
        return self

    def __exit__(self, *exc):
        self.messages += [str(r.message) for r in self._records
                          if "cannot compile" in str(r.message)]
        return self._catcher.__exit__(*exc)


def measure_transform(images, args, device, watch):
    sides = {}
    for name, compile in (("eager", False), ("compiled", compile_value(args))):
        sides[name] = make_extractor(args, device, compile).fit(images[:1])
    with watch:
        first, compiled_features = common.timed(lambda: sides["compiled"].transform(images))
        eager_features = sides["eager"].transform(images)
        times, _ = common.interleaved(
            {name: (lambda e=extractor: e.transform(images)) for name, extractor in sides.items()},
            repeats=args.repeats, warmup=args.warmup)
    scale = float(np.abs(eager_features).max()) or 1.0
    difference = float(np.abs(compiled_features - eager_features).max())
    return times, first, difference / scale


def measure_finetune(images, labels, args, device, watch):
    durations = {"eager": [], "compiled": []}

    def fit(name, compile):
        return lambda: fit_one_epoch(images, labels, args, device, compile)

    def record(name, seconds, duration, warm_up):
        if not warm_up:
            durations[name].append(duration)

    with watch:
        start = time.perf_counter()
        fit_one_epoch(images, labels, args, device, compile_value(args))
        first = time.perf_counter() - start
        common.interleaved({"eager": fit("eager", False),
                            "compiled": fit("compiled", compile_value(args))},
                           repeats=args.repeats, warmup=args.warmup, after_run=record)
    return durations, first


def report(label, times, first):
    eager, compiled = statistics.median(times["eager"]), statistics.median(times["compiled"])
    rounds = common.paired_ratios(times["compiled"], times["eager"])
    print(f"{label:24s} {eager:9.3f} {compiled:11.3f} {compiled / eager:15.3f} "
          f"{first:13.1f}")
    print(f"{'':24s} per-round ratios compiled/eager: {common.ratio_spread(rounds)}")


def main(argv=None):
    start = time.perf_counter()
    args = parse_args(argv)
    common.set_threads(args.threads)
    device = common.resolve_device(args.device)
    rng = np.random.default_rng(args.seed)
    images = rng.integers(0, 256, (args.n_images, args.image_size, args.image_size, 3),
                          dtype=np.uint8)
    labels = rng.integers(0, N_CLASSES, args.n_images)
    labels[:N_CLASSES] = np.arange(N_CLASSES)
    watch = FallbackWatch()
    results = {}
    if "transform" in args.parts:
        common.log("transform ...")
        results["transform"] = measure_transform(images, args, device, watch)
    if "finetune" in args.parts:
        common.log("fine-tuning ...")
        results["finetune"] = measure_finetune(images, labels, args, device, watch)

    n_batches = -(-args.n_images // args.batch_size)
    print("torch.compile vs eager: PretrainedFeatureExtractor.transform and a "
          "FineTuneClassifier epoch")
    print(f"device       : {common.describe_device(device)}")
    print(f"versions     : torch {torch.__version__}, python {platform.python_version()}")
    print(f"model        : {args.model}, weights=None, precision={args.precision!r}, "
          f"compile={compile_value(args)!r}")
    print(f"data         : {args.n_images} uint8 images {args.image_size}x"
          f"{args.image_size}, batch size {args.batch_size} ({n_batches} batches)")
    print(f"timing       : {args.repeats} interleaved rounds per side after "
          f"{args.warmup} warm-up round(s); medians. First call: the compiled "
          "side's first, compiling")
    print()
    print(f"{'':24s} {'eager s':>9s} {'compiled s':>11s} {'compiled/eager':>15s} "
          f"{'first call s':>13s}")
    if "transform" in results:
        times, first, difference = results["transform"]
        report(f"transform ({args.n_images} images)", times, first)
        print(f"{'':24s} max |compiled - eager| / max |eager| = {difference:.2e}")
    if "finetune" in results:
        durations, first = results["finetune"]
        report("fine-tuning epoch", durations, first)
    status = 0
    if watch.messages:
        print(f"\nFELL BACK TO EAGER: {watch.messages[0]}")
    if "transform" in results and results["transform"][2] > 1e-3:
        print("\nCOMPILED FEATURES DIFFER FROM EAGER ONES")
        status = 1
    common.print_total_time(start)
    return status


if __name__ == "__main__":
    sys.exit(main())
