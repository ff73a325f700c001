"""What the benchmark scripts share: arguments, set-up, timing and reporting.

A script run as ``python benchmarks/bench_x.py`` has this folder on ``sys.path``,
so it imports this module as ``_common``. Every helper here is measurement
plumbing; what a benchmark measures stays in its own script. sktransfer is
imported only inside the helpers that use it, so that ``--help`` stays quick and
a script sets its thread limits before sktransfer loads its libraries.
"""

import argparse
import ast
import os
import platform
import statistics
import sys
import time

import torch


# -- arguments -------------------------------------------------------------------
def argument_parser(doc):
    """An ``ArgumentParser`` described by the first paragraph of ``doc`` (a
    script's ``__doc__``), showing every option's default in ``--help``."""
    return argparse.ArgumentParser(
        description=doc.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )


def _checked(convert, accept, requirement):
    """An argparse ``type=``: ``convert(text)``, refused unless ``accept(value)``."""

    def parse(text):
        value = convert(text)  # a ValueError reads "invalid int value: ..."
        if not accept(value):
            raise argparse.ArgumentTypeError(f"must be {requirement}; got {text!r}")
        return value

    parse.__name__ = convert.__name__
    return parse


def int_at_least(minimum):
    """An argparse ``type=`` for an int of at least ``minimum``."""
    return _checked(int, lambda value: value >= minimum, f"at least {minimum}")


#: argparse ``type=`` for an int >= 1 (sizes, counts, repeats).
positive_int = int_at_least(1)
#: argparse ``type=`` for an int >= 0 (warm-up runs; threads, where 0 keeps the default).
non_negative_int = int_at_least(0)
#: argparse ``type=`` for a float > 0 (learning rates, ``C``).
positive_float = _checked(float, lambda value: value > 0, "positive")
#: argparse ``type=`` for a float >= 0 (weights of a loss, ratios).
non_negative_float = _checked(float, lambda value: value >= 0, "at least 0")


DEVICE_HELP = "'auto' (CUDA when available, else CPU), 'cpu', 'cuda' or 'cuda:<index>'"


def add_device_argument(parser, default="cpu", help=DEVICE_HELP):
    """The ``--device`` option (a string: :func:`resolve_device` or sktransfer's
    ``device=`` reads it)."""
    parser.add_argument("--device", default=default, help=help)


def add_batch_size_argument(parser, help=None):
    """The ``--batch-size`` option, 32 images by default."""
    parser.add_argument("--batch-size", type=positive_int, default=32, help=help)


def add_photo_patch_arguments(parser, *, n_per_class):
    """``--n-per-class`` and ``--patch-size`` (default 48): the crops that
    ``sktransfer.datasets.load_photo_patches`` cuts from its ten photographs."""
    parser.add_argument("--n-per-class", type=positive_int, default=n_per_class,
                        help="crops per photograph (ten photographs, one class each)")
    parser.add_argument("--patch-size", type=positive_int, default=48,
                        help="side of the crops")


def add_rounds_arguments(parser, *, repeats, repeats_help=None, warmup_help=None):
    """``--repeats`` (timed rounds, at least 1) and ``--warmup`` (untimed rounds
    first, default 1), the arguments of :func:`interleaved`."""
    parser.add_argument("--repeats", type=positive_int, default=repeats, help=repeats_help)
    parser.add_argument("--warmup", type=non_negative_int, default=1, help=warmup_help)


def add_threads_argument(parser, default=1,
                         help="torch.set_num_threads (0: leave torch's default)"):
    """The ``--threads`` option that :func:`set_threads` takes: 1 by default, so
    that timings on a shared machine are steady; 0 leaves torch's default."""
    parser.add_argument("--threads", type=non_negative_int, default=default, help=help)


#: sktransfer's ``precision=`` values (kept here so that ``--help`` loads no sktransfer).
PRECISIONS = ("auto", "32", "bf16", "fp16")


def add_precision_argument(parser, default, help=None):
    """The ``--precision`` option: sktransfer's ``precision=`` values, which
    :func:`resolve_autocast_dtype` reads."""
    parser.add_argument("--precision", default=default, choices=PRECISIONS, help=help)


# -- set-up ----------------------------------------------------------------------
def set_threads(threads, *, limit=None):
    """Run torch on ``threads`` intra-op threads (0: leave torch's default).

    ``limit="blas"`` also limits BLAS to as many threads (0: no limit) and
    ``limit="all"`` BLAS and OpenMP, with threadpoolctl, in the libraries loaded
    so far; the limiter is returned (``restore_original_limits()`` undoes it).
    On a small shared machine, spinning OpenMP/BLAS threads make timings noisy.
    """
    if threads:
        torch.set_num_threads(threads)
    if limit is None:
        return None
    from threadpoolctl import threadpool_limits

    return threadpool_limits(threads or None, user_api=None if limit == "all" else limit)


def resolve_device(name):
    """``--device`` as sktransfer resolves it, its refusal as the exit message."""
    from sktransfer._utils.device import resolve_device as resolve  # sktransfer loads late

    try:
        return resolve(name)
    except ValueError as exc:
        sys.exit(f"--device: {exc}")


def resolve_autocast_dtype(precision, device):
    """``--precision`` as sktransfer resolves it: None (float32) or the dtype to
    autocast to; its refusal (fp16 on a CPU) as the exit message."""
    from sktransfer._utils.device import resolve_autocast_dtype as resolve

    try:
        return resolve(precision, device)
    except ValueError as exc:
        sys.exit(f"--precision: {exc}")


# -- timing ----------------------------------------------------------------------
def timed(function):
    """``(seconds, result)`` of one call of ``function()``, wall time."""
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def interleaved(sides, *, repeats, warmup=0, warmup_sides=None, after_run=None):
    """Time ``sides`` (name -> function of no argument) in rounds, alternately.

    First ``warmup`` untimed rounds, each side in the given order (``warmup_sides``,
    with the same names, runs in their place when given). Then ``repeats`` timed
    rounds, the order rotated by one side each round (two sides: A B, then B A,
    ...), so that drift of a shared machine falls on every side alike.
    ``after_run(name, seconds, result, warm_up)`` is called after every run.

    Returns ``(times, last)``: each side's seconds in every timed round, and the
    result of its last run.
    """
    last = {}

    def run(name, function, warm_up):
        seconds, last[name] = timed(function)
        if after_run is not None:
            after_run(name, seconds, last[name], warm_up)
        return seconds

    for _ in range(warmup):
        for name, function in (sides if warmup_sides is None else warmup_sides).items():
            run(name, function, True)
    names = list(sides)
    times = {name: [] for name in names}
    for repeat in range(repeats):
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(run(name, sides[name], False))
    return times, last


def paired_ratios(numerators, denominators):
    """``a / b`` for each round's pair, sorted: how much of a ratio is noise."""
    return sorted(a / b for a, b in zip(numerators, denominators))


# -- reporting -------------------------------------------------------------------
def log(message):
    """A progress line on stderr (stdout holds the figures)."""
    print(message, file=sys.stderr, flush=True)


def describe_host(name):
    """``name`` and the CPU: processor, cores and torch's threads."""
    return (f"{name} ({platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} cores, torch threads {torch.get_num_threads()})")


def describe_device(device):
    """A torch device: the GPU's name on CUDA, :func:`describe_host` otherwise."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return describe_host(device)


def spread(values, digits=2):
    """``min X, max Y`` of ``values``."""
    return f"min {min(values):.{digits}f}, max {max(values):.{digits}f}"


def value_range(values, digits=3):
    """``X-Y``: the smallest and the largest of ``values``."""
    return f"{min(values):.{digits}f}-{max(values):.{digits}f}"


def mean_range(values, width=6, digits=3):
    """``mean [min-max]`` of ``values``, the mean right-aligned in ``width``."""
    return f"{statistics.mean(values):{width}.{digits}f} [{value_range(values, digits)}]"


def ratio_spread(ratios, digits=3):
    """``median X, min Y, max Z`` of per-round ratios."""
    return f"median {statistics.median(ratios):.{digits}f}, {spread(ratios, digits)}"


def print_total_time(start):
    """The closing ``total time`` line, from a ``time.perf_counter()`` value."""
    print(f"\ntotal time: {time.perf_counter() - start:.0f}s")


def literal_value(text):
    """An argparse ``type=``: a Python literal (``none`` is None; other bare
    words stay strings)."""
    if text.lower() == "none":
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def finetune_config(text):
    """An argparse ``type=`` for ``--finetune``: ``defaults`` or
    ``name=value,...`` (each value as :func:`literal_value` reads it)."""
    if text == "defaults":
        return {}
    config = {}
    for item in filter(None, text.split(",")):
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"{item!r} is not name=value")
        config[name.strip()] = literal_value(value.strip())
    return config


def shift_table(shifts, seeds, sides, prepare, evaluate, *, width):
    """Fit every side on every (shift, seed) task and print the table of a
    domain-shift benchmark: target accuracy, mean [min-max] over the seeds, per
    shift, and the mean fit seconds per side.

    ``prepare(shift, seed)`` gives the task's data; ``sides`` maps a name to
    ``fit(data, seed) -> predict``; ``evaluate(predict, data)`` is the accuracy.
    Returns ``{(shift, name): ([accuracy per seed], [seconds per seed])}``.
    """
    import statistics

    table = {}
    for shift in shifts:
        for seed in seeds:
            data = prepare(shift, seed)
            for name, fit in sides.items():
                seconds, predict = timed(lambda: fit(data, seed))
                accuracy = evaluate(predict, data)
                accuracies, times = table.setdefault((shift, name), ([], []))
                accuracies.append(accuracy)
                times.append(seconds)
                log(f"  {shift:10s} seed {seed} {name:{width}s} {accuracy:.3f}  "
                    f"{seconds:.1f}s")
    print()
    print(f"{'':{width}s} " + " ".join(f"{shift:>22s}" for shift in shifts) + "   fit s")
    for name in sides:
        cells = [mean_range(table[(shift, name)][0]) for shift in shifts]
        seconds = statistics.mean(t for shift in shifts for t in table[(shift, name)][1])
        print(f"{name:{width}s} " + " ".join(f"{cell:>22s}" for cell in cells)
              + f"   {seconds:5.1f}")
    return table
