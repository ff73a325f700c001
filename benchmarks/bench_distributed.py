#!/usr/bin/env python
"""Wall time of sktransfer on a dask ``LocalCluster`` against one process.

Two workloads, each run both ways on the same data, with the same estimator and
the same parameters:

* model selection: ``GridSearchCV`` over a ``Pipeline`` [``PretrainedFeatureExtractor``
  -> ``LogisticRegression``], ``C`` over ``--Cs`` with ``--cv`` folds (every fit
  extracts the features of its training fold, every score those of its test
  fold, as a pipeline does without ``cache=``), then the refit on everything.
  One process: ``GridSearchCV(...).fit`` as it is (one fit after another). Dask:
  the same call inside ``joblib.parallel_backend("dask")``; the refit runs in the
  calling process on both sides;
* batch inference: ``PretrainedFeatureExtractor.transform`` of all the images in
  this process, against ``dask_ml.wrappers.ParallelPostFit(extractor).transform``
  of a dask array of the same images chunked along the samples
  (``--chunk-size``), computed on the cluster. ``ParallelPostFit`` maps
  ``transform`` over 2-D blocks, so both sides get the images as flat float32
  rows in [0, 1] with ``input_shape`` (see ``docs/distributed.md``).

The data are ``sktransfer.datasets.load_photo_patches`` crops of real photographs.
The cluster is ``distributed.LocalCluster(n_workers=--workers,
threads_per_worker=1, processes=True)`` on 127.0.0.1, torch set to
``--worker-threads`` intra-op threads in each worker; this process runs with
``--local-threads`` torch threads (default 1: on the 2-core machine where this
was written, one process ran the grid search 3x faster with 1 thread than with
2; pass ``--local-threads 2`` to give it every core), and BLAS/OpenMP limited
to as many (the workers' are 1 thread each). The workers start without distributed's
``MALLOC_TRIM_THRESHOLD_=65536`` (``--keep-malloc-trim`` keeps it), as
``docs/distributed.md`` advises for torch. The cluster is started once,
before the timings (its start-up is printed on its own line). After one
untimed warm-up of each side (which also loads the backbone in every worker),
the sides are timed alternately (local, dask, then dask, local, ...) for
``--repeats`` rounds; the figures are medians, and the ratios are
local time / dask time (above 1: dask is faster). The script checks that both
sides agree (same ``best_params_``, ``mean_test_score`` within 1e-6, features
within 1e-4 relative to the largest; chunks batch the images differently, which
changes the float rounding slightly) and exits with status 1 if they do not.
"""

import os
import platform
import statistics
import sys
import time

import numpy as np
import torch

import _common as common

# distributed's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536, which turns
# off glibc's dynamic mmap threshold: every large tensor is then a fresh mmap, and
# torch's CPU forward passes run about 2x slower. Unset unless --keep-malloc-trim.
TRIM_KEY = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"


def parse_args(argv=None):
    parser = common.argument_parser(__doc__)
    parser.add_argument("--model", default="efficientnet_lite0",
                        help="backbone; 'simple_cnn' (random weights) for a quick run")
    common.add_photo_patch_arguments(parser, n_per_class=20)
    parser.add_argument("--image-size", type=common.positive_int, default=64,
                        help="the extractor's image_size (crops are resized to it)")
    common.add_batch_size_argument(parser)
    parser.add_argument("--Cs", type=common.positive_float, nargs="+",
                        default=[0.01, 0.1, 1.0],
                        help="LogisticRegression C values searched")
    parser.add_argument("--cv", type=common.positive_int, default=3)
    parser.add_argument("--chunk-size", type=common.positive_int, default=32,
                        help="images per chunk of the dask array")
    parser.add_argument("--workers", type=common.positive_int, default=2,
                        help="worker processes")
    parser.add_argument("--worker-threads", type=common.positive_int, default=1,
                        help="torch threads in each worker")
    parser.add_argument("--local-threads", type=common.positive_int, default=1,
                        help="torch (and BLAS) threads of the one-process side")
    parser.add_argument("--keep-malloc-trim", action="store_true",
                        help="start the workers with distributed's default "
                             "MALLOC_TRIM_THRESHOLD_=65536 (torch runs about 2x "
                             "slower under it) instead of unsetting it")
    common.add_rounds_arguments(parser, repeats=2)
    parser.add_argument("--workloads", nargs="+", default=["grid", "transform"],
                        choices=["grid", "transform"])
    return parser.parse_args(argv)


def timings(label, sides, *, repeats, warmup):
    """:func:`common.interleaved` of ``sides``, every run logged to stderr."""

    def log_run(name, seconds, result, warm_up):
        common.log(f"{label} {name}: {seconds:.2f} s" + (" (warm-up)" if warm_up else ""))

    return common.interleaved(sides, repeats=repeats, warmup=warmup, after_run=log_run)


def malloc_trim_threshold():
    return os.environ.get("MALLOC_TRIM_THRESHOLD_")


def main(argv=None):
    args = parse_args(argv)
    # The workers' BLAS and OpenMP run 1 thread each (the nanny's OMP_NUM_THREADS=1);
    # here they get as many as torch, not one per core of the machine.
    common.set_threads(args.local_threads, limit="all")

    import dask
    import dask.array as da
    import distributed
    import joblib
    from dask_ml.wrappers import ParallelPostFit
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline

    from sktransfer import PretrainedFeatureExtractor
    from sktransfer.datasets import load_photo_patches

    X, y = load_photo_patches(n_per_class=args.n_per_class, patch_size=args.patch_size)
    weights = None if args.model == "simple_cnn" else "DEFAULT"

    def extractor(**params):
        return PretrainedFeatureExtractor(
            model=args.model, weights=weights, image_size=args.image_size,
            batch_size=args.batch_size, device="cpu", random_state=0, **params,
        )

    pipe = make_pipeline(extractor(), LogisticRegression(max_iter=2000))
    grid_params = {"logisticregression__C": list(args.Cs)}

    def grid_local():
        return GridSearchCV(pipe, grid_params, cv=args.cv).fit(X, y)

    def grid_dask():
        with joblib.parallel_backend("dask"):
            return GridSearchCV(pipe, grid_params, cv=args.cv).fit(X, y)

    side = args.patch_size
    rows = X.reshape(len(X), -1).astype(np.float32) / np.float32(255)
    flat = extractor(input_shape=(side, side, 3)).fit(rows[:2])
    wrapped = ParallelPostFit(flat)
    rows_dask = da.from_array(rows, chunks=(args.chunk_size, -1))

    def transform_local():
        return flat.transform(rows)

    def transform_dask():
        return wrapped.transform(rows_dask).compute()

    if not args.keep_malloc_trim:
        dask.config.set({TRIM_KEY: None})
    start = time.perf_counter()
    cluster = distributed.LocalCluster(
        n_workers=args.workers, threads_per_worker=1, processes=True,
        host="127.0.0.1", dashboard_address=None,
    )
    client = distributed.Client(cluster)
    client.run(torch.set_num_threads, args.worker_threads)
    trim = set(client.run(malloc_trim_threshold).values())
    started = time.perf_counter() - start
    common.log(f"cluster started in {started:.1f} s")

    figures, agree = {}, {}
    try:
        if "grid" in args.workloads:
            times, results = timings("grid", {"local": grid_local, "dask": grid_dask},
                                     repeats=args.repeats, warmup=args.warmup)
            local, remote = results["local"], results["dask"]
            diff = float(np.abs(local.cv_results_["mean_test_score"]
                                - remote.cv_results_["mean_test_score"]).max())
            agree["grid"] = (local.best_params_ == remote.best_params_ and diff <= 1e-6,
                             f"best_params_ {local.best_params_}, max diff of "
                             f"mean_test_score {diff:.2g}, best score "
                             f"{local.best_score_:.3f}")
            figures["grid"] = times
        if "transform" in args.workloads:
            sides = {"local": transform_local, "dask": transform_dask}
            times, results = timings("transform", sides, repeats=args.repeats,
                                     warmup=args.warmup)
            local, remote = results["local"], results["dask"]
            diff = float(np.abs(local - remote).max())
            scale = float(np.abs(local).max())
            agree["transform"] = (
                local.shape == remote.shape
                and np.allclose(remote, local, rtol=1e-4, atol=1e-4 * scale),
                f"shape {remote.shape}, max abs diff {diff:.2g}, max |feature| "
                f"{scale:.3g}",
            )
            figures["transform"] = times
    finally:
        client.close()
        cluster.close()

    n_fits = len(args.Cs) * args.cv
    print("sktransfer on a dask LocalCluster vs one process")
    print(f"machine         : {platform.machine()}, {os.cpu_count()} cores, load "
          f"average {os.getloadavg()[0]:.1f} at the end")
    print(f"versions        : torch {torch.__version__}, dask {dask.__version__}, "
          f"distributed {distributed.__version__}, python {platform.python_version()}")
    print(f"model           : {args.model}, weights={weights!r}, image_size="
          f"{args.image_size}, batch size {args.batch_size}, {flat.n_features_out_} "
          "features")
    print(f"data            : {len(X)} photo crops "
          f"{args.patch_size}x{args.patch_size}, {len(np.unique(y))} classes")
    print(f"cluster         : {args.workers} worker processes x 1 dask thread, torch "
          f"threads {args.worker_threads} each; started in {started:.1f} s (not timed)")
    print(f"worker malloc   : MALLOC_TRIM_THRESHOLD_={', '.join(map(str, trim))}"
          + ("  (distributed's default)" if args.keep_malloc_trim else ""))
    print(f"one process     : torch threads {args.local_threads}")
    print(f"repeats         : {args.repeats} interleaved, after {args.warmup} warm-up "
          "each; medians")
    ok = True
    for name, times in figures.items():
        local = statistics.median(times["local"])
        remote = statistics.median(times["dask"])
        what = (f"GridSearchCV {len(args.Cs)} C x {args.cv} folds = {n_fits} fits "
                "+ refit"
                if name == "grid" else
                f"transform of {len(X)} images, chunks of {args.chunk_size}")
        print(f"{name:<9} work    : {what}")
        print(f"{name:<9} local s : {local:.2f}  ({common.spread(times['local'])})")
        print(f"{name:<9} dask s  : {remote:.2f}  ({common.spread(times['dask'])})")
        pairs = common.paired_ratios(times["local"], times["dask"])
        print(f"{name:<9} speedup : {local / remote:.2f}  (local/dask; per-round "
              f"{common.value_range(pairs, 2)})")
        same, detail = agree[name]
        print(f"{name:<9} agree   : {same}  ({detail})")
        ok = ok and same
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
