#!/usr/bin/env python
"""One fine-tuning fit over several processes (``devices=k``, PyTorch's
DistributedDataParallel) against one process, and where the time goes.

On a CPU (``--device cpu``, the default): ``FineTuneClassifier`` fine-tunes
``--model`` (efficientnet_lite0 with its offline ImageNet weights) on
``--n-per-class`` real photograph crops per class (``load_photo_patches``, 10
classes, ``--patch-size`` px), ``--epochs`` epochs, batch ``--batch-size``, no
augmentation, float32, four sides fitted in turn, ``--repeats`` rounds:

* ``2 processes x 1 thread``: ``devices=2``, each worker with one torch thread
  (each takes half of every global batch; gloo all-reduces the gradients);
* ``1 process x 2 threads``: ``devices=1``, torch on two threads;
* ``1 process x 1 thread``: the same fit on one thread;
* ``1 process x 1 thread, half the data``: what one rank computes (half of
  every batch), with no communication: the epoch time of ``2 x 1`` minus this is
  the engine's cost (gradient all-reduce, waiting for the slower rank).

The epoch time of a side is its last epoch's ``history_[-1]["duration"]`` (the
first pays warm-ups); the start-up (spawning the workers, importing torch in
each, sending the estimator and data, loading rank 0's result back) is the
fit's wall time minus the sum of its epochs. Figures are medians over rounds.
On a CPU this measures the engine's overhead, not the scaling of GPUs: the two
workers share the machine's cores with each other and with everything else.

On GPUs (``--device cuda --devices 1 2 4``): the same fit at each device count,
``--model`` among ``resnet50`` and ``vit_b_16`` with seeded random weights at
224 px on random images (no download on a lent machine), and the efficiency
``t(1) / (k * t(k))`` of each count (goal: at least 0.85 at 2 and 4 GPUs).
``bench_gpu.py --parts scaling`` runs this section.
"""

import statistics
import sys
import time

import numpy as np
import torch

import _common as common
from sktransfer import FineTuneClassifier
from sktransfer.datasets import load_photo_patches


def parse_args(argv=None):
    parser = common.argument_parser(__doc__)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--devices", type=common.int_at_least(1), nargs="+", default=[2],
                        help="process counts to compare with one process (GPUs: 1 2 4)")
    parser.add_argument("--model", default=None,
                        help="default: efficientnet_lite0 on a CPU, resnet50 on GPUs")
    parser.add_argument("--n-per-class", type=common.int_at_least(2), default=32)
    parser.add_argument("--patch-size", type=common.int_at_least(8), default=64)
    parser.add_argument("--n-images", type=common.int_at_least(8), default=4096,
                        help="GPUs: random 224 px images per fit")
    parser.add_argument("--batch-size", type=common.int_at_least(2), default=32)
    parser.add_argument("--epochs", type=common.int_at_least(2), default=2)
    parser.add_argument("--repeats", type=common.int_at_least(1), default=2)
    return parser.parse_args(argv)


def fit_once(X, y, *, model, weights, device, devices, threads, batch_size, epochs,
             image_size):
    torch.set_num_threads(threads)
    clf = FineTuneClassifier(model=model, weights=weights, device=device, devices=devices,
                             epochs=epochs, batch_size=batch_size, augment=None,
                             precision="32" if device == "cpu" else "auto",
                             image_size=image_size, random_state=0,
                             callbacks=[("long_fit_warning", None)])
    start = time.perf_counter()
    clf.fit(X, y)
    wall = time.perf_counter() - start
    epochs_time = [record["duration"] for record in clf.history_]
    return {"epoch": epochs_time[-1], "startup": wall - sum(epochs_time), "wall": wall,
            "accuracy": None}


def cpu_sides(args):
    X, y = load_photo_patches(n_per_class=args.n_per_class, patch_size=args.patch_size)
    X, y = np.asarray(X), np.asarray(y)
    model = args.model or "efficientnet_lite0"
    common_kw = dict(model=model, weights="DEFAULT", device="cpu",
                     batch_size=args.batch_size, epochs=args.epochs,
                     image_size=args.patch_size)
    half_kw = {**common_kw, "batch_size": -(-args.batch_size // 2)}
    sides = {}
    for k in args.devices:
        sides[f"{k} processes x 1 thread"] = lambda k=k: fit_once(
            X, y, devices=k, threads=k, **common_kw)  # each worker gets threads // k = 1
    sides.update({
        "1 process x 2 threads": lambda: fit_once(X, y, devices=1, threads=2, **common_kw),
        "1 process x 1 thread": lambda: fit_once(X, y, devices=1, threads=1, **common_kw),
        "1 process x 1 thread, half the data": lambda: fit_once(
            X[::2], y[::2], devices=1, threads=1, **half_kw),
    })
    return sides, len(X)


def gpu_sides(args):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(args.n_images, 224, 224, 3), dtype=np.uint8)
    y = rng.integers(0, 10, size=args.n_images)
    model = args.model or "resnet50"
    sides = {f"{k} GPU(s)": (lambda k=k: fit_once(
        X, y, model=model, weights=None, device="cuda", devices=k, threads=1,
        batch_size=args.batch_size * k, epochs=args.epochs, image_size=224))
        for k in sorted(set([1, *args.devices]))}
    return sides, len(X)


def main(argv=None):
    args = parse_args(argv)
    if args.device == "cuda" and torch.cuda.device_count() < max(args.devices):
        sys.exit(f"--devices {max(args.devices)} needs as many GPUs; this machine has "
                 f"{torch.cuda.device_count()}.")
    sides, n = cpu_sides(args) if args.device == "cpu" else gpu_sides(args)
    results = {name: [] for name in sides}
    for round_ in range(args.repeats):  # interleaved: every side once per round
        for name, run in sides.items():
            results[name].append(run())
            print(f"round {round_ + 1} {name}: {results[name][-1]}", flush=True)
    print(f"\n{n} images, batch {args.batch_size}, {args.epochs} epochs, device "
          f"{args.device}, torch {torch.__version__}")
    print("| side | epoch s (last) | start-up s | fit wall s |")
    print("| --- | --- | --- | --- |")
    medians = {}
    for name, runs in results.items():
        medians[name] = {key: statistics.median(r[key] for r in runs)
                         for key in ("epoch", "startup", "wall")}
        m = medians[name]
        print(f"| {name} | {m['epoch']:.2f} | {m['startup']:.2f} | {m['wall']:.2f} |")
    if args.device == "cpu":
        one2 = medians["1 process x 2 threads"]["epoch"]
        half = medians["1 process x 1 thread, half the data"]["epoch"]
        for k in args.devices:
            epoch = medians[f"{k} processes x 1 thread"]["epoch"]
            print(f"{k} x 1 thread against 1 x 2 threads, epoch: {one2 / epoch:.2f}x "
                  f"faster; engine's cost per epoch (vs one rank's compute alone): "
                  f"{epoch - half:.2f} s")
    else:
        base = medians["1 GPU(s)"]["epoch"]
        for k in sorted(set(args.devices) - {1}):
            t = medians[f"{k} GPU(s)"]["epoch"]
            print(f"{k} GPUs: epoch {t:.2f} s, efficiency {base / (k * t):.2f} (goal >= 0.85)")


if __name__ == "__main__":
    main()
