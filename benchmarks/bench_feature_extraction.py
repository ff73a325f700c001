#!/usr/bin/env python
"""Throughput of ``PretrainedFeatureExtractor.transform`` against a plain torch loop.

Both sides do exactly the same work on the same images:

* the same network: the ``efficientnet_lite0`` backbone with its offline ImageNet
  weights (``weights="DEFAULT"``), built by ``sktransfer.backbones.load_backbone``
  (the extractor builds its own copy with the same builder; the output check
  below confirms that both compute the same function);
* the same batch size, device and precision;
* the same preprocessing of uint8 (N, H, W, C) numpy images: to torch, permute to
  NCHW, float / 255, resize the shorter side to 256 (bicubic, antialias), centre
  crop 224, normalise with mean 0.5 and std 0.5;
* under ``torch.inference_mode``, ending in one float32 numpy array
  (n_images, 1280).

The plain loop is written by hand with torch ops only (no sktransfer helper) and
uses what the fairest hand-written loop would use on each device:

* CPU: nothing more: slices of the numpy array through ``torch.from_numpy`` (no
  copy), the ops above, the model, outputs gathered and concatenated once;
* CUDA: pinned host batches copied with ``non_blocking=True``, preprocessing on
  the GPU, the model and its input in ``channels_last``, ``torch.autocast`` to
  bfloat16 when ``--precision auto`` resolves to it (a GPU that supports bf16),
  outputs kept on the GPU and copied back once at the end.

Repetitions are interleaved (plain, ours, then ours, plain, ...) after a warm-up
of each, so that drift of the machine (other processes, clocks, caches) falls on
both sides alike; the figures are medians. Run ``--help`` for the options, and see
``benchmarks/README.md``.
"""

import contextlib
import platform
import statistics
import sys

import numpy as np
import torch
import torch.nn.functional as F

import _common as common

MODEL = "efficientnet_lite0"
WEIGHTS = "DEFAULT"
# efficientnet_lite0's preprocessing (timm's tf_efficientnet_lite0 config), by hand.
RESIZE_SHORT_SIDE = 256
CROP = 224
MEAN = 0.5
STD = 0.5
TARGET_RATIO = 0.95


def parse_args(argv=None):
    parser = common.argument_parser(__doc__)
    common.add_device_argument(parser, default="auto")
    parser.add_argument("--n-images", type=common.positive_int, default=128,
                        help="images transformed per repetition")
    common.add_batch_size_argument(parser)
    parser.add_argument("--image-size", type=common.positive_int, default=96,
                        help="side of the random square input images; anything but "
                             "256 exercises the resize")
    common.add_rounds_arguments(
        parser, repeats=5,
        repeats_help="timed repetitions of each side, after one warm-up each",
        warmup_help="untimed runs of each side before timing")
    parser.add_argument("--precision", default="auto", choices=("auto", "32", "bf16", "fp16"),
                        help="'auto' is bf16 on a CUDA device that supports it, "
                             "float32 elsewhere")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random images")
    return parser.parse_args(argv)


def plain_geometry(height, width):
    """Resized size and crop box, as torchvision's Resize(256) + CenterCrop(224)."""
    if height <= width:
        resized = (RESIZE_SHORT_SIDE, int(RESIZE_SHORT_SIDE * width / height))
    else:
        resized = (int(RESIZE_SHORT_SIDE * height / width), RESIZE_SHORT_SIDE)
    top = int(round((resized[0] - CROP) / 2.0))
    left = int(round((resized[1] - CROP) / 2.0))
    return resized, top, left


def plain_transform(model, images, *, batch_size, device, autocast_dtype):
    """The reference: a hand-written inference loop (see the module docstring)."""
    on_cuda = device.type == "cuda"
    n_images, height, width, _ = images.shape
    resized, top, left = plain_geometry(height, width)
    autocast = (
        torch.autocast(device_type=device.type, dtype=autocast_dtype)
        if autocast_dtype is not None else contextlib.nullcontext()
    )
    outputs = []
    with torch.inference_mode(), autocast:
        for start in range(0, n_images, batch_size):
            batch = torch.from_numpy(images[start:start + batch_size])  # NHWC uint8
            if on_cuda:
                batch = batch.pin_memory().to(device, non_blocking=True)
            batch = batch.permute(0, 3, 1, 2).float().div_(255.0)  # NCHW in [0, 1]
            if resized != (height, width):
                batch = F.interpolate(batch, size=resized, mode="bicubic",
                                      align_corners=False, antialias=True)
            batch = batch[:, :, top:top + CROP, left:left + CROP]
            batch = (batch - MEAN) / STD
            if on_cuda:
                batch = batch.contiguous(memory_format=torch.channels_last)
            outputs.append(model(batch).float())
    return torch.cat(outputs).cpu().numpy()  # one copy back (synchronises on CUDA)


def main(argv=None):
    args = parse_args(argv)
    device = common.resolve_device(args.device)
    autocast_dtype = common.resolve_autocast_dtype(args.precision, device)

    from sktransfer import PretrainedFeatureExtractor
    from sktransfer.backbones import load_backbone

    rng = np.random.default_rng(args.seed)
    images = rng.integers(0, 256, (args.n_images, args.image_size, args.image_size, 3),
                          dtype=np.uint8)

    # The reference's copy of the network, prepared as a plain loop would.
    model = load_backbone(MODEL, WEIGHTS)
    model.requires_grad_(False)
    model = model.eval().to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)

    extractor = PretrainedFeatureExtractor(
        model=MODEL, weights=WEIGHTS, batch_size=args.batch_size, device=device,
        precision=args.precision,
    ).fit(images)

    def ours():
        return extractor.transform(images)

    def plain():
        return plain_transform(model, images, batch_size=args.batch_size,
                               device=device, autocast_dtype=autocast_dtype)

    times, last = common.interleaved({"plain": plain, "ours": ours},
                                     repeats=args.repeats, warmup=args.warmup)
    reference, result = last["plain"], last["ours"]

    rates = {side: [args.n_images / s for s in seconds] for side, seconds in times.items()}
    median = {side: statistics.median(values) for side, values in rates.items()}
    ratio = median["ours"] / median["plain"]
    # Each repetition's ours/plain, from neighbouring runs (drift mostly cancels).
    pair_ratios = common.paired_ratios(rates["ours"], rates["plain"])

    low_precision = autocast_dtype is not None
    tolerance = 3e-2 if low_precision else 1e-4
    scale = float(np.abs(reference).max())
    max_abs_diff = float(np.abs(result - reference).max())
    agree = (
        result.shape == reference.shape
        and result.dtype == reference.dtype == np.float32
        and np.allclose(result, reference, rtol=tolerance, atol=tolerance * scale)
    )

    precision = "float32" if autocast_dtype is None else str(autocast_dtype).replace("torch.", "")

    print("PretrainedFeatureExtractor.transform vs a plain torch loop")
    print(f"device          : {common.describe_device(device)}")
    print(f"torch           : {torch.__version__} (python {platform.python_version()})")
    print(f"model           : {MODEL}, weights={WEIGHTS!r}, {result.shape[1]} features")
    print(f"precision       : {args.precision} -> {precision}")
    print(f"batch size      : {args.batch_size}")
    print(f"n images        : {args.n_images} (uint8, NHWC numpy)")
    print(f"image size      : {args.image_size}x{args.image_size} -> resize "
          f"{RESIZE_SHORT_SIDE} bicubic -> crop {CROP}")
    print(f"repeats         : {args.repeats} interleaved, after {args.warmup} warm-up "
          "each; medians")
    print(f"plain images/s  : {median['plain']:.1f}  ({common.spread(rates['plain'], 1)})")
    print(f"ours images/s   : {median['ours']:.1f}  ({common.spread(rates['ours'], 1)})")
    print(f"ratio ours/plain: {ratio:.3f}  (target >= {TARGET_RATIO})"
          + ("" if ratio >= TARGET_RATIO else "  BELOW TARGET"))
    print(f"per-repeat pairs: {common.ratio_spread(pair_ratios)}")
    print(f"outputs agree   : {agree}  (max abs diff {max_abs_diff:.3g}, "
          f"max |feature| {scale:.3g}, rtol=atol/scale={tolerance:g})")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
