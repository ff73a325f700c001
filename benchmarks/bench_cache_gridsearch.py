#!/usr/bin/env python
"""GridSearchCV over a classifier on frozen CNN features, with and without a cache.

The search is the one the feature cache is for::

    GridSearchCV(
        Pipeline([("features", PretrainedFeatureExtractor("efficientnet_lite0",
                                                           cache=...)),
                  ("clf", LogisticRegression())]),
        {"clf__C": [...]}, cv=5,
    )

It runs on real photographs (``sktransfer.datasets.load_photo_patches``:
``--n-per-class`` 48x48 crops of each of ten photographs), with the offline
ImageNet weights of ``efficientnet_lite0`` at ``--image-size`` (96 by default, to
keep a CPU run to a few minutes), ``--cv`` folds and ``--candidates`` values of
``C`` spaced evenly in log10 from 1e-3 to 1e2. It runs the same search once per
side:

* ``none``: ``cache=None``, every fold and candidate extracts its features again
  (``cv * candidates`` fits of the pipeline, plus the refit on everything);
* ``memory``: ``cache=True``, features kept in this process's memory;
* ``disk``: ``cache=<a fresh temporary directory>``, features in files.

Each side starts cold: the in-memory store and the process's loaded backbones are
emptied first, and the disk side gets a new empty directory. A forward hook on
every backbone counts the images that go through the network, and a wrapper
counts the backbone loads. The script prints, per side, the wall time of
``GridSearchCV.fit``, the images forwarded (in all and per distinct image), the
backbone loads and the cache's hits and misses; then the speedup of each cached
side over ``none``, and whether the searches agree: the same ``best_params_`` and
``cv_results_`` test scores. Exit status 1 when they do not.

Torch is limited to ``--threads`` threads (default 1) and BLAS to one thread: on a
small shared machine, spinning OpenMP/BLAS threads make timings noisy and
``LogisticRegression`` much slower. Run ``--help`` for the options and see
``benchmarks/README.md``.
"""

import platform
import shutil
import sys
import tempfile
import warnings

import numpy as np
import torch

import _common as common

SIDES = ("none", "memory", "disk")
MODEL = "efficientnet_lite0"


def parse_args(argv=None):
    parser = common.argument_parser(__doc__)
    common.add_photo_patch_arguments(parser, n_per_class=30)
    parser.add_argument("--image-size", type=common.positive_int, default=96,
                        help="the extractor's image_size (network input side)")
    parser.add_argument("--cv", type=common.int_at_least(2), default=5, help="folds")
    parser.add_argument("--candidates", type=common.positive_int, default=6,
                        help="values of LogisticRegression's C in the grid")
    common.add_batch_size_argument(parser)
    parser.add_argument("--sides", nargs="+", choices=SIDES, default=list(SIDES))
    common.add_device_argument(parser)
    common.add_threads_argument(parser, help="torch.set_num_threads and the BLAS limit "
                                             "(0: defaults)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the crops")
    return parser.parse_args(argv)


class ForwardCounter:
    """Counts the images that every ``Backbone`` forwards (a global forward hook)."""

    def __init__(self):
        from sktransfer.backbones import Backbone

        self.images = 0
        self._backbone = Backbone
        self._handle = torch.nn.modules.module.register_module_forward_hook(self._hook)

    def _hook(self, module, args, output):
        if isinstance(module, self._backbone):
            self.images += args[0].shape[0]

    def remove(self):
        self._handle.remove()


class LoadCounter:
    """Counts the calls of ``load_backbone`` made by the feature extractor."""

    def __init__(self):
        from sktransfer import PretrainedFeatureExtractor

        # The module whose ``load_backbone`` the extractor calls.
        module = sys.modules[PretrainedFeatureExtractor.__module__]
        self.calls = 0
        self._module = module
        self._original = module.load_backbone

        def counted(*args, **kwargs):
            self.calls += 1
            return self._original(*args, **kwargs)

        module.load_backbone = counted

    def remove(self):
        self._module.load_backbone = self._original


def run_side(side, X, y, args, grid):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline

    from sktransfer import PretrainedFeatureExtractor
    from sktransfer.feature_extraction import clear_feature_cache, feature_cache_info

    clear_feature_cache()  # a cold start: no features, no loaded backbone
    folder = tempfile.mkdtemp(prefix="sktransfer-bench-cache-") if side == "disk" else None
    cache = {"none": None, "memory": True, "disk": folder}[side]
    pipe = Pipeline([
        ("features", PretrainedFeatureExtractor(
            model=MODEL, image_size=args.image_size, batch_size=args.batch_size,
            device=args.device, cache=cache)),
        ("clf", LogisticRegression(max_iter=2000)),
    ])
    search = GridSearchCV(pipe, {"clf__C": grid}, cv=args.cv)
    forwards, loads = ForwardCounter(), LoadCounter()
    try:
        seconds, _ = common.timed(lambda: search.fit(X, y))
    finally:
        forwards.remove()
        loads.remove()
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
    info = feature_cache_info()
    return dict(seconds=seconds, images=forwards.images, loads=loads.calls,
                hits=info.hits, misses=info.misses, search=search)


def main(argv=None):
    args = parse_args(argv)
    from sktransfer.datasets import load_photo_patches

    blas_limit = common.set_threads(args.threads, limit="blas")
    X, y = load_photo_patches(n_per_class=args.n_per_class, patch_size=args.patch_size,
                              random_state=args.seed)
    n_images = len(X)
    grid = [float(c) for c in np.logspace(-3, 2, args.candidates)]
    n_fits = args.cv * args.candidates

    print("GridSearchCV(Pipeline(PretrainedFeatureExtractor, LogisticRegression)), "
          "with and without cache=")
    print(f"device     : {common.describe_host(args.device)}")
    print(f"torch      : {torch.__version__} (python {platform.python_version()})")
    print(f"data       : load_photo_patches, {n_images} images ({args.n_per_class} x 10 "
          f"classes), {args.patch_size}x{args.patch_size} uint8")
    print(f"network    : {MODEL} (ImageNet, offline), image_size={args.image_size}, "
          f"batch_size={args.batch_size}, float32")
    print(f"search     : cv={args.cv} x {args.candidates} values of C "
          f"({grid[0]:g} .. {grid[-1]:g}) = {n_fits} fits + 1 refit")

    results = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)  # convergence chatter
        for side in args.sides:
            results[side] = run_side(side, X, y, args, grid)
            r = results[side]
            print(f"{side:<11}: {r['seconds']:7.1f} s, {r['images']:6d} images forwarded "
                  f"({r['images'] / n_images:.2f} per image), backbone loads "
                  f"{r['loads']}, cache hits {r['hits']}, misses {r['misses']}")
    blas_limit.restore_original_limits()

    ok = True
    if "none" in results:
        reference = results["none"]
        for side in ("memory", "disk"):
            if side not in results:
                continue
            r = results[side]
            same_params = r["search"].best_params_ == reference["search"].best_params_
            scores = r["search"].cv_results_["mean_test_score"]
            ref_scores = reference["search"].cv_results_["mean_test_score"]
            split_scores = np.array([r["search"].cv_results_[f"split{k}_test_score"]
                                     for k in range(args.cv)])
            ref_split = np.array([reference["search"].cv_results_[f"split{k}_test_score"]
                                  for k in range(args.cv)])
            same_scores = np.array_equal(split_scores, ref_split)
            ok &= same_params and same_scores
            print(f"{side + '/none':<11}: speedup {reference['seconds'] / r['seconds']:.1f}x "
                  f"wall time, {reference['images'] / max(r['images'], 1):.1f}x fewer "
                  "images forwarded")
            print(f"{'  agree':<11}: best_params_ {same_params} "
                  f"({r['search'].best_params_}), every split's test score "
                  f"{same_scores} (max |mean diff| "
                  f"{float(np.abs(scores - ref_scores).max()):.3g})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
