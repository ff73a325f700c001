#!/usr/bin/env python
"""Target accuracy and fit time of DomainAdaptClassifier on text: movie snippets
(labeled source) -> Amazon snippets (unlabeled target), binary sentiment, MiniLM.

Data: ``sktransfer.datasets.load_sentiment_domains`` (Hutto & Gilbert's
snippets; binary labels by |rating| >= 0.5). ``--n-source`` movie snippets are
the labeled source; the Amazon snippets are shuffled once (``--data-seed``) and
cut into ``--n-target`` unlabeled target training texts and a disjoint test set
of ``--n-test`` texts, on which accuracy is measured. The data are the same for
every seed; ``--seeds`` change the initial head, dropout and the batch order.

Every ``--methods`` entry is ``DomainAdaptClassifier(model="all-MiniLM-L6-v2",
method=m, random_state=seed)`` with ``epochs`` from ``--epochs`` (one fit per
value; ``default`` keeps the estimator's default) and ``max_length`` from
``--max-length`` (``default`` keeps it); nothing else is set but ``device``.
Two upper bounds that see the target labels:

* ``target_only``: ``FineTuneClassifier(model="all-MiniLM-L6-v2")`` on the
  ``--n-target`` target training texts with their labels (the same epochs and
  max_length);
* ``source_and_target``: ``DomainAdaptClassifier(method="source_only")`` on
  source and labeled target together (``sample_domain`` marks the target rows).

``fit s`` is the wall time of ``fit``; ``s/epoch`` divides it by the epochs run.

``--refresh-every`` (the fine-tuning route) gives ``self_training`` as
``EpochSelfTrainingLoss(refresh_every=...)``: ``1`` is one pseudo-label pass per
epoch, the default before ``"auto"``.

``--route frozen`` adapts on frozen features instead: the texts are encoded once
by ``PretrainedFeatureExtractor(model="all-MiniLM-L6-v2")`` (seconds not
counted in the fits), and every method is ``DomainAdaptClassifier(model=None,
method=m, random_state=seed)`` on those features (an MLP; ``--epochs`` as
above); ``target_only`` is ``LogisticRegression`` on the labeled target
features, and ``source_lr`` (source only, the scikit-learn way) the same on the
source features.
"""

import sys
import time
import warnings

import numpy as np

import _common as common

MODEL = "all-MiniLM-L6-v2"
DA_METHODS = ("source_only", "self_training", "adamatch", "mcc", "dann", "cdan",
              "coral", "mmd")
BOUNDS = ("target_only", "source_and_target", "source_lr")


def parse_args(argv):
    parser = common.argument_parser(__doc__)
    parser.add_argument("--methods", nargs="+", default=list(DA_METHODS + BOUNDS[:1]),
                        choices=DA_METHODS + BOUNDS)
    parser.add_argument("--route", choices=("finetune", "frozen"), default="finetune",
                        help="fine-tune MiniLM, or adapt an MLP on its frozen features")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--epochs", nargs="+", default=["1"],
                        help="epochs of each fit, one fit per value ('default': the "
                             "estimator's default)")
    parser.add_argument("--max-length", default="default",
                        help="max_length in tokens ('default': the estimator's)")
    parser.add_argument("--refresh-every", default="default",
                        help="self_training only: EpochSelfTrainingLoss(refresh_every=...), "
                             "'auto' or an int of epochs ('default': the method's name, "
                             "whose loss has refresh_every='auto')")
    parser.add_argument("--n-source", type=common.positive_int, default=2000)
    parser.add_argument("--n-target", type=common.positive_int, default=1000)
    parser.add_argument("--n-test", type=common.positive_int, default=1000)
    parser.add_argument("--data-seed", type=int, default=0)
    common.add_device_argument(parser)
    common.add_threads_argument(parser)
    args = parser.parse_args(argv)
    for value in args.epochs:
        if value != "default" and not (value.isdigit() and int(value) >= 1):
            parser.error(f"--epochs: each value must be 'default' or an int >= 1; got {value!r}")
    if args.refresh_every not in ("default", "auto") and not (
            args.refresh_every.isdigit() and int(args.refresh_every) >= 1):
        parser.error(f"--refresh-every must be 'default', 'auto' or an int >= 1; got "
                     f"{args.refresh_every!r}")
    if args.max_length != "default" and not args.max_length.isdigit():
        parser.error(f"--max-length must be 'default' or an int; got {args.max_length!r}")
    return args


def load_data(args):
    from sktransfer.datasets import load_sentiment_domains

    movies = load_sentiment_domains("movies")
    amazon = load_sentiment_domains("amazon")
    if args.n_target + args.n_test > len(amazon.data):
        sys.exit(f"--n-target + --n-test exceed the {len(amazon.data)} Amazon snippets")
    if args.n_source > len(movies.data):
        sys.exit(f"--n-source exceeds the {len(movies.data)} movie snippets")
    rng = np.random.RandomState(args.data_seed)
    source = rng.permutation(len(movies.data))[:args.n_source]
    order = rng.permutation(len(amazon.data))
    target = order[:args.n_target]
    test = order[args.n_target:args.n_target + args.n_test]
    return {
        "X_source": [movies.data[i] for i in source], "y_source": movies.target[source],
        "X_target": [amazon.data[i] for i in target], "y_target": amazon.target[target],
        "X_test": [amazon.data[i] for i in test], "y_test": amazon.target[test],
    }


def options(args, epochs):
    chosen = {"device": args.device}
    if epochs != "default":
        chosen["epochs"] = int(epochs)
    if args.max_length != "default":
        chosen["max_length"] = int(args.max_length)
    return chosen


def frozen_features(data):
    """The MiniLM features of every text set, encoded once."""
    from sktransfer import PretrainedFeatureExtractor

    extractor = PretrainedFeatureExtractor(model=MODEL)
    return {**data, **{key: extractor.fit_transform(data[key])
                       for key in ("X_source", "X_target", "X_test")}}


def fit_frozen(method, epochs, seed, args, data):
    from sklearn.linear_model import LogisticRegression

    from sktransfer import DomainAdaptClassifier

    n_target = len(data["X_target"])
    if method in ("target_only", "source_lr"):
        clf = LogisticRegression(max_iter=2000)
        key = "target" if method == "target_only" else "source"
        fit = lambda: clf.fit(data[f"X_{key}"], data[f"y_{key}"])  # noqa: E731
    else:
        clf = DomainAdaptClassifier(model=None, method=method, random_state=seed,
                                    **options(args, epochs))
        X = np.vstack([data["X_source"], data["X_target"]])
        y = np.concatenate([data["y_source"], -np.ones(n_target, int)])
        fit = lambda: clf.fit(X, y)  # noqa: E731
    seconds, _ = common.timed(fit)
    epochs_run = clf.n_iter_ if isinstance(clf, DomainAdaptClassifier) else 0
    return {"method": method, "epochs": str(epochs), "seed": seed,
            "accuracy": clf.score(data["X_test"], data["y_test"]), "fit_s": seconds,
            "epoch_s": seconds / max(epochs_run, 1), "n_iter": epochs_run}


def resolve(method, args):
    """``method``, or for self_training with ``--refresh-every`` its loss object."""
    if method != "self_training" or args.refresh_every == "default":
        return method
    from sktransfer.adaptation import EpochSelfTrainingLoss

    every = args.refresh_every
    return EpochSelfTrainingLoss(refresh_every=every if every == "auto" else int(every))


def fit_one(method, epochs, seed, args, data):
    from sktransfer import DomainAdaptClassifier, FineTuneClassifier

    if args.route == "frozen":
        return fit_frozen(method, epochs, seed, args, data)

    n_source, n_target = len(data["X_source"]), len(data["X_target"])
    kwargs = dict(model=MODEL, random_state=seed, **options(args, epochs))
    if method == "target_only":
        clf = FineTuneClassifier(**kwargs)
        fit = lambda: clf.fit(data["X_target"], data["y_target"])  # noqa: E731
    elif method == "source_and_target":
        clf = DomainAdaptClassifier(method="source_only", **kwargs)
        X = data["X_source"] + data["X_target"]
        y = np.concatenate([data["y_source"], data["y_target"]])
        domain = np.concatenate([np.ones(n_source, int), -np.ones(n_target, int)])
        fit = lambda: clf.fit(X, y, sample_domain=domain)  # noqa: E731
    else:
        clf = DomainAdaptClassifier(method=resolve(method, args), **kwargs)
        X = data["X_source"] + data["X_target"]
        y = np.concatenate([data["y_source"], -np.ones(n_target, int)])
        fit = lambda: clf.fit(X, y)  # noqa: E731
    seconds, _ = common.timed(fit)
    accuracy = clf.score(data["X_test"], data["y_test"])
    # "epochs" is the request ("default" or a number), "n_iter" the epochs run
    # (the adapting estimators' epochs="auto" resolves at fit).
    return {"method": method, "epochs": str(epochs), "seed": seed, "accuracy": accuracy,
            "fit_s": seconds, "epoch_s": seconds / max(clf.n_iter_, 1),
            "n_iter": clf.n_iter_}


def print_summary(results):
    print("\nmethod               epochs  run  seeds  target acc mean [min-max]   fit s (median)  s/epoch")
    keys = []
    for row in results:
        if (row["method"], row["epochs"]) not in keys:
            keys.append((row["method"], row["epochs"]))
    for method, epochs in keys:
        rows = [r for r in results if r["method"] == method and r["epochs"] == epochs]
        fits = sorted(r["fit_s"] for r in rows)
        per_epoch = sorted(r["epoch_s"] for r in rows)
        runs = "/".join(sorted({str(r["n_iter"]) for r in rows}))
        print(f"{method:20s} {epochs:>7s} {runs:>4s} {len(rows):6d}  "
              f"{common.mean_range([r['accuracy'] for r in rows])}"
              f"   {fits[len(fits) // 2]:14.0f} {per_epoch[len(per_epoch) // 2]:8.0f}")


def main(argv=None):
    args = parse_args(argv)
    common.set_threads(args.threads, limit="blas")
    warnings.filterwarnings("ignore", message=".*truncat", category=UserWarning)
    start = time.perf_counter()
    data = load_data(args)
    if args.route == "frozen":
        if args.max_length != "default":
            sys.exit("--max-length applies to --route finetune")
        if args.refresh_every != "default":
            sys.exit("--refresh-every applies to --route finetune")
        encode_s, data = common.timed(lambda: frozen_features(data))
        print(f"frozen route: MiniLM features of every set encoded once in {encode_s:.0f} s")
    print(f"source: {len(data['X_source'])} movie snippets (labeled); target: "
          f"{len(data['X_target'])} Amazon snippets (unlabeled); test: {len(data['X_test'])} "
          f"other Amazon snippets ({np.mean(data['y_test']):.3f} positive)")
    print(f"model={MODEL}, epochs {args.epochs}, max_length={args.max_length}; "
          f"{common.describe_host(args.device)}")
    print("\nseed  method               epochs  run  target acc   fit s  s/epoch", flush=True)
    results = []
    for seed in args.seeds:
        for epochs in args.epochs:
            for method in args.methods:
                row = fit_one(method, epochs, seed, args, data)
                results.append(row)
                print(f"{seed:4d}  {method:20s} {row['epochs']:>7s} {row['n_iter']:4d}  "
                      f"{row['accuracy']:10.3f}"
                      f"  {row['fit_s']:6.0f}  {row['epoch_s']:7.0f}", flush=True)
    print_summary(results)
    common.print_total_time(start)


if __name__ == "__main__":
    main()
