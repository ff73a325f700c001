#!/usr/bin/env python
"""Throughput of ``PretrainedFeatureExtractor.transform`` against a plain torch loop.

Both sides do exactly the same work on the same images:

* the same network, built by ``sktransfer.backbones.load_backbone`` (the
  extractor builds its own copy with the same builder; the output check below
  confirms that both compute the same function): by default the
  ``efficientnet_lite0`` backbone with its offline ImageNet weights
  (``weights="DEFAULT"``); with ``--model timm:<name>`` a timm architecture, by
  default with seeded random weights (``--weights none``: no network needed),
  built for ``--model-image-size`` when given (a vision transformer's position
  embeddings are resampled to it, as the extractor's ``image_size=`` does);
* the same batch size, device and precision;
* the same preprocessing of uint8 (N, H, W, C) numpy images: to torch, permute to
  NCHW, float / 255, resize the shorter side (antialias), centre crop, normalise.
  For efficientnet_lite0: resize 256 bicubic, crop 224, mean 0.5 and std 0.5. For
  a timm model the plain loop reads them from the model's own
  ``pretrained_cfg`` (``input_size``, ``crop_pct``, ``interpolation``, ``mean``,
  ``std``), as timm's eval transforms do: resize ``floor(size / crop_pct)``, crop
  ``size``; ``--model-image-size S`` makes it resize to S and crop S (what the
  extractor's ``image_size=S`` documents);
* under ``torch.inference_mode``, ending in one float32 numpy array
  (n_images, n_features).

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

import argparse
import contextlib
import math
import platform
import statistics
import sys
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

import _common as common

MODEL = "efficientnet_lite0"
WEIGHTS = "DEFAULT"
TARGET_RATIO = 0.95


@dataclass(frozen=True)
class Preprocessing:
    """The plain loop's preprocessing: resize (an int: the shorter side; a
    ``(height, width)`` pair: exactly), centre crop ``(height, width)``, then
    ``(x - mean) / std`` per channel."""

    resize: object
    crop: tuple
    interpolation: str
    mean: tuple
    std: tuple

    def with_image_size(self, size):
        """Resize the shorter side to ``size`` and crop ``size`` (``None``: as is)."""
        if size is None:
            return self
        return Preprocessing(size, (size, size), self.interpolation, self.mean, self.std)

    def describe(self):
        def side(value):
            if isinstance(value, int):
                return str(value)
            return str(value[0]) if value[0] == value[1] else f"{value[0]}x{value[1]}"

        return f"resize {side(self.resize)} {self.interpolation} -> crop {side(self.crop)}"


# efficientnet_lite0's preprocessing (timm's tf_efficientnet_lite0 config), by hand.
LITE0_PREPROCESSING = Preprocessing(256, (224, 224), "bicubic", (0.5,) * 3, (0.5,) * 3)


def timm_preprocessing(timm_model):
    """The preprocessing of timm's eval transforms, read from the model's own
    ``pretrained_cfg`` (centre crop mode only)."""
    import timm

    cfg = timm_model.pretrained_cfg
    if cfg.get("crop_mode", "center") != "center":
        sys.exit(f"--model: crop_mode={cfg['crop_mode']!r}; the plain loop does centre crops")
    if cfg.get("interpolation") not in ("bilinear", "bicubic", "nearest"):
        sys.exit(f"--model: interpolation={cfg.get('interpolation')!r} is not one the "
                 "plain loop does (bilinear, bicubic, nearest)")
    _, height, width = cfg["input_size"]
    crop_pct = cfg.get("crop_pct") or timm.data.DEFAULT_CROP_PCT
    if height == width:  # timm: scale_size = floor(img_size / crop_pct)
        resize = math.floor(height / crop_pct)
    else:
        resize = (math.floor(height / crop_pct), math.floor(width / crop_pct))
    return Preprocessing(resize, (height, width), cfg["interpolation"],
                         tuple(cfg["mean"]), tuple(cfg["std"]))


def model_name(text):
    """``--model``: efficientnet_lite0 or ``timm:<name>``."""
    if text == MODEL or (text.startswith("timm:") and len(text) > len("timm:")):
        return text
    raise argparse.ArgumentTypeError(
        f"must be {MODEL!r} or 'timm:<name>' (e.g. timm:vit_small_patch16_224); got {text!r}")


def resolve_weights(args):
    """``--weights`` as ``load_backbone`` takes it; None is random (seeded)."""
    weights = args.weights if args.weights is not None else (
        WEIGHTS if args.model == MODEL else "none")
    return None if weights.lower() == "none" else weights


def parse_args(argv=None):
    parser = common.argument_parser(__doc__)
    parser.add_argument("--model", type=model_name, default=MODEL,
                        help="efficientnet_lite0 or timm:<name> "
                             "(e.g. timm:vit_small_patch14_dinov2)")
    parser.add_argument("--weights", default=None,
                        help="'DEFAULT', a pretrained tag, a checkpoint path or 'none' "
                             "(random, seeded by --seed); default: 'DEFAULT' for "
                             "efficientnet_lite0, 'none' for a timm model")
    parser.add_argument("--model-image-size", type=common.positive_int, default=None,
                        help="the extractor's image_size= (and the plain loop's): "
                             "resize the shorter side to it and crop it; a vision "
                             "transformer is built for it. Default: the model's own "
                             "preprocessing")
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
    common.add_precision_argument(parser, default="auto",
                                  help="'auto' is bf16 on a CUDA device that supports "
                                       "it, float32 elsewhere")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the random images (and of random weights)")
    common.add_threads_argument(parser, default=0)
    return parser.parse_args(argv)


def plain_geometry(height, width, preprocessing=LITE0_PREPROCESSING):
    """Resized size and crop box, as torchvision's Resize(256) + CenterCrop(224)
    (or the sizes of ``preprocessing``)."""
    short = preprocessing.resize
    if not isinstance(short, int):
        resized = tuple(short)
    elif height <= width:
        resized = (short, int(short * width / height))
    else:
        resized = (int(short * height / width), short)
    crop_height, crop_width = preprocessing.crop
    top = int(round((resized[0] - crop_height) / 2.0))
    left = int(round((resized[1] - crop_width) / 2.0))
    return resized, top, left


def plain_transform(model, images, *, batch_size, device, autocast_dtype,
                    preprocessing=LITE0_PREPROCESSING):
    """The reference: a hand-written inference loop (see the module docstring)."""
    on_cuda = device.type == "cuda"
    n_images, height, width, _ = images.shape
    resized, top, left = plain_geometry(height, width, preprocessing)
    crop_height, crop_width = preprocessing.crop
    mean = torch.tensor(preprocessing.mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(preprocessing.std, device=device).view(1, -1, 1, 1)
    mode = preprocessing.interpolation
    nearest = mode == "nearest"  # F.interpolate antialiases (bi)linear and cubic only
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
                batch = F.interpolate(batch, size=resized, mode=mode,
                                      align_corners=None if nearest else False,
                                      antialias=not nearest)
            batch = batch[:, :, top:top + crop_height, left:left + crop_width]
            batch = (batch - mean) / std
            if on_cuda:
                batch = batch.contiguous(memory_format=torch.channels_last)
            outputs.append(model(batch).float())
    return torch.cat(outputs).cpu().numpy()  # one copy back (synchronises on CUDA)


def main(argv=None):
    args = parse_args(argv)
    common.set_threads(args.threads)
    device = common.resolve_device(args.device)
    autocast_dtype = common.resolve_autocast_dtype(args.precision, device)
    weights = resolve_weights(args)
    # Random weights are seeded, so that both copies are the same network.
    seed = args.seed if weights is None else None

    from sktransfer import PretrainedFeatureExtractor
    from sktransfer.backbones import load_backbone

    rng = np.random.default_rng(args.seed)
    images = rng.integers(0, 256, (args.n_images, args.image_size, args.image_size, 3),
                          dtype=np.uint8)

    # The reference's copy of the network, prepared as a plain loop would.
    model = load_backbone(args.model, weights, image_size=args.model_image_size,
                          random_state=seed)
    model.requires_grad_(False)
    model = model.eval().to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    if args.model == MODEL:
        preprocessing = LITE0_PREPROCESSING
    else:  # a timm backbone's body is the timm model, which holds its pretrained_cfg
        preprocessing = timm_preprocessing(model.body)
    native = preprocessing
    preprocessing = preprocessing.with_image_size(args.model_image_size)

    extractor = PretrainedFeatureExtractor(
        model=args.model, weights=weights, batch_size=args.batch_size, device=device,
        precision=args.precision, image_size=args.model_image_size, random_state=seed,
    ).fit(images)

    def ours():
        return extractor.transform(images)

    def plain():
        return plain_transform(model, images, batch_size=args.batch_size,
                               device=device, autocast_dtype=autocast_dtype,
                               preprocessing=preprocessing)

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
    random_note = f" (random, seed {seed})" if weights is None else ""
    print(f"model           : {args.model}, weights={weights!r}{random_note}, "
          f"{result.shape[1]} features")
    print(f"precision       : {args.precision} -> {precision}")
    print(f"batch size      : {args.batch_size}")
    print(f"n images        : {args.n_images} (uint8, NHWC numpy)")
    print(f"image size      : {args.image_size}x{args.image_size} -> "
          f"{preprocessing.describe()}")
    if args.model != MODEL:
        size = ("" if args.model_image_size is None else
                f"; image_size={args.model_image_size} replaces its {native.describe()}")
        print(f"preprocessing   : the model's timm pretrained_cfg: mean "
              f"{tuple(round(m, 4) for m in preprocessing.mean)}, std "
              f"{tuple(round(s, 4) for s in preprocessing.std)}{size}")
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
