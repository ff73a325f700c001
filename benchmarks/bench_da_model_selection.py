#!/usr/bin/env python
"""Model selection without target labels: how far each scorer of
``sktransfer.metrics`` lands from the best target accuracy.

``--task mnist`` (the default), MNIST -> MNIST-M:
``GridSearchCV(DomainAdaptClassifier(model=LeNetFeatures(), weights=None,
random_state=--seed), {"method": --methods, "trade_off": --trade-offs},
scoring={every scorer, and "oracle"}, cv=--folds, refit=False)`` on the mixed
training set of ``load_mnist_shift`` (labeled grey source, unlabeled MNIST-M
target; scikit-learn's ``y == -1`` convention: each fold holds out source and
target rows alike). The unsupervised scorers see only the held-out fold's
labeled source rows and unlabeled target rows. ``oracle`` is the accuracy of the
same fitted model on the 1,000 MNIST-M test digits, which no scorer reads: it is
what each pick is judged by. Every other parameter is at its default; the grid
is one GridSearchCV, so every scorer judges the very same fitted models.

``--task photo-frozen``, the photo shifts on frozen features: for each
``--shifts`` task of ``load_photo_shift(shift, random_state=seed)`` and each
``--seeds`` seed, the efficientnet_lite0 features of ``bench_da_frozen.py``
(read from its ``--cache-dir``, extracted there when missing); one
``GridSearchCV(make_pipeline(StandardScaler(), DomainAdaptClassifier(model=None,
random_state=seed)), {"method": --methods, "trade_off": --trade-offs, "lr":
--lrs}, ...)`` as above over the 400 source rows (labeled) and the 400 target
rows (``y == -1``), judged by the accuracy on the 200 target test crops. Per
task, each scorer's pick; then, over the tasks, each scorer's mean gap and how
many picks land within ``--tolerance`` of the best, beside two fixed choices
that need no selection (the estimator's defaults, and ``method="mmd"`` with the
other defaults, the guide's advice for image features) and a random pick.

For each scorer: the candidate it ranks first (mean over folds), that
candidate's oracle accuracy, and its gap to the best oracle accuracy of the
grid (0 is a perfect pick). ``--domain-classifiers`` scores the density-ratio
scorers (importance weighted, DEV) once per domain classifier listed, on the
same fits; their names then carry it in brackets (``importance_weighted[C=1]``),
and each scorer's mean time per score is printed beside its picks. Run
``--help`` for the options.
"""

import sys
import time
import warnings

import numpy as np

import _common as common

SCORERS = ["entropy", "snd", "importance_weighted", "deep_embedded_validation"]
# The density-ratio scorers, scored once per --domain-classifiers entry.
DENSITY_SCORERS = ["importance_weighted", "deep_embedded_validation"]
# --domain-classifiers: "default" is the package's own (domain_classifier=None).
DOMAIN_CLASSIFIERS = ["default", "C=1", "C=0.01", "C=0.001", "logregcv"]
# The grid of each task where --methods, --trade-offs or --lrs is not given
# (``lr`` None: not searched, the estimator's default).
DEFAULT_GRID = {
    "mnist": {"methods": ["self_training", "dann"],
              "trade_offs": [0.1, 0.3, 1.0, 3.0], "lrs": None},
    "photo-frozen": {"methods": ["self_training", "mmd", "coral", "mcc"],
                     "trade_offs": [0.3, 1.0, 3.0], "lrs": [3e-4, 1e-3, 3e-3]},
}
# A Pipeline's step name of the classifier: the grid's parameters carry it.
STEP = "domainadaptclassifier__"


def parse_args(argv=None):
    parser = common.argument_parser(__doc__)
    parser.add_argument("--task", choices=sorted(DEFAULT_GRID), default="mnist")
    parser.add_argument("--methods", nargs="+", default=None,
                        help="grid of method (default: self_training dann for mnist, "
                             "self_training mmd coral mcc for photo-frozen)")
    parser.add_argument("--trade-offs", nargs="+", type=common.non_negative_float,
                        default=None,
                        help="grid of trade_off (default: 0.1 0.3 1 3 for mnist, "
                             "0.3 1 3 for photo-frozen)")
    parser.add_argument("--lrs", nargs="+", type=common.positive_float, default=None,
                        help="grid of lr (default: not searched for mnist, "
                             "3e-4 1e-3 3e-3 for photo-frozen)")
    parser.add_argument("--folds", type=common.int_at_least(2), default=2,
                        help="KFold splits of the mixed training set (each candidate "
                             "is fit this many times)")
    parser.add_argument("--epochs", type=common.positive_int, default=None,
                        help="epochs of every fit (default: DomainAdaptClassifier's)")
    parser.add_argument("--seed", type=int, default=0, help="mnist: the model's seed")
    parser.add_argument("--data-seed", type=int, default=0,
                        help="mnist: load_mnist_shift's random_state")
    parser.add_argument("--shifts", nargs="+",
                        default=["posterize", "night", "lowres", "grey"],
                        help="photo-frozen: load_photo_shift's shifts")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2],
                        help="photo-frozen: seeds of the data, the model and the folds")
    parser.add_argument("--cache-dir", default="/tmp/sktransfer_bench_da_frozen",
                        help="photo-frozen: bench_da_frozen.py's feature cache")
    parser.add_argument("--domain-classifiers", nargs="+", choices=DOMAIN_CLASSIFIERS,
                        default=["default"],
                        help="domain classifiers of the density-ratio scorers, each "
                             "scored on the same fits: default (the package's, "
                             "domain_classifier=None), C=1, C=0.01 or C=0.001 (StandardScaler "
                             "then LogisticRegression(C=...)), logregcv (StandardScaler "
                             "then LogisticRegressionCV choosing C by neg_log_loss in "
                             "nested folds)")
    parser.add_argument("--tolerance", type=common.non_negative_float, default=0.03,
                        help="photo-frozen: a pick within this much of the best counts")
    common.add_device_argument(parser)
    common.add_threads_argument(parser)
    args = parser.parse_args(argv)
    for name, default in DEFAULT_GRID[args.task].items():
        if getattr(args, name) is None:
            setattr(args, name, default)
    return args


def describe(candidate):
    """``method trade_off=... [lr=...]`` of one candidate (a Pipeline's step name
    left out)."""
    values = {key.removeprefix(STEP): value for key, value in candidate.items()}
    text = f"{values['method']} trade_off={values['trade_off']:g}"
    if "lr" in values:
        text += f" lr={values['lr']:g}"
    return text


def domain_classifier(name):
    """The ``domain_classifier=`` of a ``--domain-classifiers`` entry."""
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if name == "default":
        return None
    if name == "logregcv":
        return make_pipeline(StandardScaler(), LogisticRegressionCV(
            Cs=[1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0], scoring="neg_log_loss",
            max_iter=1000, l1_ratios=(0.0,), use_legacy_attributes=False))
    return make_pipeline(StandardScaler(), LogisticRegression(
        C=float(name.removeprefix("C=")), max_iter=1000))


def scorer_names(domain_classifiers=("default",)):
    """The scorers' names: a density-ratio scorer's carries its domain classifier
    in brackets, but for the package's default."""
    names = []
    for name in SCORERS:
        if name in DENSITY_SCORERS:
            names += [name if dc == "default" else f"{name}[{dc}]"
                      for dc in domain_classifiers]
        else:
            names.append(name)
    return names


def scorer_objects(domain_classifiers=("default",)):
    """Name -> every unsupervised scorer of ``sktransfer.metrics``, the density-ratio
    ones once per domain classifier (names of ``scorer_names``)."""
    from sktransfer.metrics import (
        DeepEmbeddedValidation,
        ImportanceWeightedScorer,
        PredictionEntropyScorer,
        SoftNeighborhoodDensityScorer,
    )

    density = {"importance_weighted": ImportanceWeightedScorer,
               "deep_embedded_validation": DeepEmbeddedValidation}
    scorers = {"entropy": PredictionEntropyScorer(),
               "snd": SoftNeighborhoodDensityScorer()}
    for name, cls in density.items():
        for dc in domain_classifiers:
            key = name if dc == "default" else f"{name}[{dc}]"
            scorers[key] = cls(domain_classifier=domain_classifier(dc))
    return {name: scorers[name] for name in scorer_names(domain_classifiers)}


class TimedScorer:
    """A scorer that adds up its seconds and counts its "barely overlap" warnings
    (silenced), so that variants scored in one search can be told apart."""

    def __init__(self, scorer):
        self.scorer = scorer
        self.seconds = 0.0
        self.calls = 0
        self.overlap = 0

    def __call__(self, estimator, X, y):
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            score = self.scorer(estimator, X, y)
        self.seconds += time.perf_counter() - start
        self.calls += 1
        self.overlap += sum("barely overlap" in str(w.message) for w in caught)
        return score


def picks(results, names=None):
    """Name -> index of the candidate each scorer ranks first."""
    return {name: int(np.argmax(results["mean_test_" + name]))
            for name in (SCORERS if names is None else names)}


def print_results(results, scorers):
    """Every candidate's oracle accuracy and mean scores (``cv_results_``), then
    the candidate each scorer ranks first and its gap to the best oracle accuracy."""
    oracle_scores = results["mean_test_oracle"]
    best = float(np.max(oracle_scores))
    width = max(28, max(len(describe(c)) for c in results["params"]))
    names = [name for name in scorers if name != "oracle"]
    print()
    print("columns: " + ", ".join(f"{i + 1} {name}" for i, name in enumerate(names)))
    print(f"{'candidate':{width}s} {'oracle':>7s} " + " ".join(
        f"{str(i + 1):>9s}" for i in range(len(names))))
    for i, candidate in enumerate(results["params"]):
        print(f"{describe(candidate):{width}s} {oracle_scores[i]:7.3f} " + " ".join(
            f"{results['mean_test_' + name][i]:9.4f}" for name in names))
    print()
    print(f"best oracle accuracy of the grid: {best:.3f}")
    for name, pick in picks(results, names).items():
        print(f"  {name:36s} picks {describe(results['params'][pick])}: oracle "
              f"{oracle_scores[pick]:.3f}, gap {best - oracle_scores[pick]:.3f}")


def run_mnist(args):
    from sklearn.model_selection import GridSearchCV, KFold

    from _lenet import build_features
    from sktransfer import DomainAdaptClassifier
    from sktransfer.datasets import load_mnist_shift

    data = load_mnist_shift(random_state=args.data_seed)

    def oracle(estimator, X, y):
        return float(np.mean(estimator.predict(data.X_test) == data.y_test))

    timed_scorers = {name: TimedScorer(scorer) for name, scorer
                     in scorer_objects(args.domain_classifiers).items()}
    scorers = {**timed_scorers, "oracle": oracle}
    params = {} if args.epochs is None else {"epochs": args.epochs}
    clf = DomainAdaptClassifier(model=build_features(args.seed), weights=None,
                                random_state=args.seed, device=args.device, **params)
    grid_params = {"method": args.methods, "trade_off": args.trade_offs}
    if args.lrs is not None:
        grid_params["lr"] = args.lrs
    grid = GridSearchCV(clf, grid_params, scoring=scorers, refit=False,
                        cv=KFold(args.folds, shuffle=True, random_state=args.seed))
    print("Model selection without target labels, MNIST -> MNIST-M "
          f"(load_mnist_shift(random_state={args.data_seed}))")
    print(f"grid         : method {args.methods} x trade_off {args.trade_offs}"
          + ("" if args.lrs is None else f" x lr {args.lrs}")
          + f", {args.folds}-fold KFold of the {len(data.y_train)} mixed training rows")
    print(f"estimator    : {clf!r}".replace("\n", " "))
    print(f"device       : {common.describe_host(args.device)}", flush=True)
    grid.fit(data.X_train, data.y_train)
    print_results(grid.cv_results_, scorers)
    print(f"\n{'scorer':36s} {'ms/score':>8s} {'overlap warnings':>16s}")
    for name, scorer in timed_scorers.items():
        print(f"{name:36s} {1000 * scorer.seconds / max(scorer.calls, 1):8.0f} "
              f"{scorer.overlap:>9d} of {scorer.calls}")


def photo_search(args, F, seed):
    """One task's ``GridSearchCV``: ``cv_results_``, and the scorers (``TimedScorer``:
    seconds and overlap warnings of each)."""
    from sklearn.model_selection import GridSearchCV, KFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from sktransfer import DomainAdaptClassifier

    def oracle(estimator, X, y):
        return float(np.mean(estimator.predict(F["test"]) == F["y_test"]))

    timed_scorers = {name: TimedScorer(scorer) for name, scorer
                     in scorer_objects(args.domain_classifiers).items()}
    scorers = {**timed_scorers, "oracle": oracle}
    params = {} if args.epochs is None else {"epochs": args.epochs}
    pipe = make_pipeline(StandardScaler(), DomainAdaptClassifier(
        model=None, random_state=seed, device=args.device, **params))
    grid = GridSearchCV(pipe, {STEP + "method": args.methods,
                               STEP + "trade_off": args.trade_offs,
                               STEP + "lr": args.lrs},
                        scoring=scorers, refit=False, error_score="raise",
                        cv=KFold(args.folds, shuffle=True, random_state=seed))
    X = np.vstack([F["source"], F["target"]])
    y = np.concatenate([F["y_source"], -np.ones(len(F["target"]), dtype=int)])
    grid.fit(X, y)
    return grid.cv_results_, timed_scorers


def fixed_choice(results, **values):
    """Index of the candidate with these values (the others' defaults), or None."""
    for i, candidate in enumerate(results["params"]):
        if all(candidate[STEP + key] == value for key, value in values.items()):
            return i
    return None


def run_photo_frozen(args):
    from bench_da_frozen import features
    from sktransfer import DomainAdaptClassifier

    defaults = DomainAdaptClassifier().get_params()
    default = {key: defaults[key] for key in ("method", "trade_off", "lr")}
    guide = {**default, "method": "mmd"}
    n_candidates = len(args.methods) * len(args.trade_offs) * len(args.lrs)
    print("Model selection without target labels, photo shifts on frozen features "
          "(efficientnet_lite0, image_size=64; bench_da_frozen.py's features)")
    print(f"grid         : method {args.methods} x trade_off {args.trade_offs} x lr "
          f"{args.lrs} ({n_candidates} candidates), {args.folds}-fold KFold of the "
          "mixed source + target rows, seed = the task's seed")
    epochs = "" if args.epochs is None else f", epochs={args.epochs}"
    print("estimator    : make_pipeline(StandardScaler(), DomainAdaptClassifier("
          f"model=None, random_state=seed{epochs}))")
    print(f"references   : default {describe(default)}; guide {describe(guide)}")
    print(f"device       : {common.describe_host(args.device)}", flush=True)
    names = scorer_names(args.domain_classifiers)
    rows = names + ["default", "guide (mmd)", "random pick"]
    seconds_of = {name: 0.0 for name in names}
    calls_of = {name: 0 for name in names}
    accuracy = {name: [] for name in rows + ["best"]}
    gaps = {name: [] for name in rows}
    within = {name: [] for name in rows}
    for shift in args.shifts:
        for seed in args.seeds:
            F = features(shift, seed, args.cache_dir)
            seconds, (results, timed_scorers) = common.timed(
                lambda: photo_search(args, F, seed))
            common.log(f"{shift} seed {seed}: grid in {seconds:.0f}s")
            for name, scorer in timed_scorers.items():
                seconds_of[name] += scorer.seconds
                calls_of[name] += scorer.calls
            print(f"\n=== {shift}, seed {seed} ({seconds:.0f} s; overlap warnings of "
                  f"{n_candidates * args.folds} scores: " + ", ".join(
                      f"{name} {scorer.overlap}" for name, scorer in timed_scorers.items()
                      if scorer.overlap) + ")")
            print_results(results, {**dict.fromkeys(names), "oracle": None})
            oracle_scores = np.asarray(results["mean_test_oracle"])
            best = float(oracle_scores.max())
            accuracy["best"].append(best)
            chosen = picks(results, names)
            chosen["default"] = fixed_choice(results, **default)
            chosen["guide (mmd)"] = fixed_choice(results, **guide)
            for name, pick in chosen.items():
                if pick is None:
                    continue
                accuracy[name].append(float(oracle_scores[pick]))
                gaps[name].append(best - float(oracle_scores[pick]))
                within[name].append(best - float(oracle_scores[pick]) <= args.tolerance)
            # A candidate drawn at random: the grid's mean, and its share within.
            accuracy["random pick"].append(float(oracle_scores.mean()))
            gaps["random pick"].append(best - float(oracle_scores.mean()))
            within["random pick"].append(float(np.mean(best - oracle_scores
                                                       <= args.tolerance)))
            for name in ("default", "guide (mmd)"):
                if chosen[name] is not None:
                    print(f"  {name:36s} is {describe(results['params'][chosen[name]])}: "
                          f"oracle {oracle_scores[chosen[name]]:.3f}, gap "
                          f"{best - oracle_scores[chosen[name]]:.3f}")
            sys.stdout.flush()
    n_tasks = len(args.shifts) * len(args.seeds)
    print(f"\nsummary over {n_tasks} tasks (gap: best oracle accuracy of the grid minus "
          f"the pick's; within: gap <= {args.tolerance:g}; mean best "
          f"{np.mean(accuracy['best']):.3f})")
    print(f"{'choice':36s} {'accuracy':>8s} {'mean gap':>8s} {'max gap':>8s} "
          f"{'within':>8s} {'ms/score':>8s}")
    for name in rows:
        if not gaps[name]:
            print(f"{name:36s} not in the grid")
            continue
        count = (f"{sum(within[name]):.1f}" if name == "random pick"
                 else f"{sum(within[name])}")
        cost = (f"{1000 * seconds_of[name] / calls_of[name]:8.0f}" if calls_of.get(name)
                else "")
        print(f"{name:36s} {np.mean(accuracy[name]):8.3f} {np.mean(gaps[name]):8.3f} "
              f"{np.max(gaps[name]):8.3f} {count + '/' + str(len(gaps[name])):>8s} {cost}")


def main(argv=None):
    args = parse_args(argv)
    common.set_threads(args.threads, limit="blas")
    start = time.perf_counter()
    if args.task == "mnist":
        run_mnist(args)
    else:
        run_photo_frozen(args)
    common.print_total_time(start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
