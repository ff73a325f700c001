"""One of sktransfer's estimators in a safe file: its record in the document
(parameters, fitted attributes, the name of its network) and its tensors, and
the estimator rebuilt from them. Used by :mod:`._format` for a file of one
estimator and by :mod:`._pipeline` for each sktransfer step of a Pipeline."""

import os
import re

import torch

from .._utils.caller import warn
from .. import _version
from .._utils.versioning import warn_if_other_version
from ..classifiers import (
    DomainAdaptClassifier,
    DomainAdaptRegressor,
    FineTuneClassifier,
    FineTuneRegressor,
)
from ..feature_extraction import PretrainedFeatureExtractor
from ..feature_extraction._extractor import _RENAMED_ATTRIBUTES
from ._codec import Unsafe, decode, encode
from ._limits import limit_resources, problems

NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: The fitted attribute names a file may hold without scikit-learn's trailing
#: underscore: set_output's setting, and those of extractors saved before their
#: attributes had it (the extractor renames them when it restores).
_NAMES_WITHOUT_UNDERSCORE = frozenset({"_sklearn_output_config", *_RENAMED_ATTRIBUTES})

#: The only classes a safe file may name. Each exposes the persistence protocol:
#: ``__sktransfer_network__`` (the attribute of its network),
#: ``__sktransfer_state__()`` -> ``(fitted, tensors)`` (what to store) and
#: ``__sktransfer_restore__(fitted, tensors)`` (how to rebuild).
SAFE_CLASSES = {cls.__name__: cls for cls in (
    DomainAdaptClassifier, DomainAdaptRegressor, FineTuneClassifier, FineTuneRegressor,
    PretrainedFeatureExtractor)}


def refusal(estimator, what, value):
    if isinstance(value, torch.nn.Module):
        shown, why = f"a {type(value).__name__} module", "its architecture is Python code"
    elif isinstance(value, type):
        shown, why = f"the class {value.__module__}.{value.__qualname__}", "a class is code"
    elif callable(value):
        name = getattr(value, "__qualname__", type(value).__qualname__)
        shown, why = f"the callable {name}", "a function is code"
    else:
        shown, why = f"{type(value).__name__} {str(value)[:60]!r}", "not a plain value"
    return ValueError(
        f"cannot save {type(estimator).__name__} in the safe format: {what} is {shown} "
        f"({why}), and a safe file holds data only: numbers, strings, arrays, lists, "
        "tuples, dicts, paths, devices, torchvision weights names and tensors. Save "
        "this estimator with joblib.dump instead, and load that file only from a "
        "source you trust."
    )


# -- save / load -----------------------------------------------------------------
def record(estimator):
    """``(record, tensors)``: what a document holds of one of sktransfer's
    estimators (``estimator``, ``params``, ``fitted``, ``weights``) and its
    network's tensors under ``"<network attribute>."``."""
    classes = SAFE_CLASSES
    name = type(estimator).__name__
    if classes.get(name) is not type(estimator):
        raise TypeError(
            f"sktransfer.save writes sktransfer's own estimators "
            f"({', '.join(sorted(classes))}) and scikit-learn Pipelines of them; "
            f"{type(estimator).__module__}.{type(estimator).__qualname__} is not one "
            "of them. Save it with joblib.dump instead."
        )
    params = estimator.get_params(deep=False)
    encoded_params = {}
    for key, value in params.items():
        try:
            encoded_params[key] = encode(value)
        except Unsafe:
            raise refusal(estimator, f"parameter {key}", value) from None

    attribute = estimator.__sktransfer_network__
    state, network = estimator.__sktransfer_state__()
    refused = problems(params, state)
    if refused:  # load would refuse the file: say so now
        raise ValueError(
            f"cannot save {name} in the safe format: {refused[0]}. Save it with "
            "joblib.dump instead, and load that file only from a source you trust.")
    fitted = {}
    for key, value in state.items():
        try:
            fitted[key] = encode(value)
        except Unsafe:
            raise refusal(estimator, f"fitted attribute {key}", value) from None

    tensors = {f"{attribute}.{k}": v.detach().to("cpu", copy=True).contiguous()
               for k, v in network.items()}
    record = {
        "estimator": name,
        "params": encoded_params,
        "fitted": fitted or None,
        "weights": attribute if tensors else None,
    }
    return record, tensors


def read_value(value, what, source, budget):
    try:
        return decode(value, budget)
    except (ValueError, TypeError, KeyError, AttributeError, RuntimeError, IndexError,
            OverflowError) as exc:
        raise ValueError(f"{source}: the {what} cannot be read ({type(exc).__name__}: "
                         f"{exc}); the file is damaged or from a newer sktransfer.") from None


def build(document, tensors, source, budget, depth=0):
    """The estimator that ``document`` (or one step record of a Pipeline's,
    ``depth=1``) and its ``tensors`` describe."""
    name = document["estimator"]
    cls = SAFE_CLASSES.get(name)
    if cls is None:
        raise ValueError(f"{source} holds a {name!r}, which is not an estimator of "
                         f"this version of sktransfer ({_version.__version__}).")
    known = set(cls().get_params(deep=False))
    params = {}
    for key, value in document["params"].items():
        if key not in known:
            raise ValueError(f"{source}: {name} of this version of sktransfer has no "
                             f"parameter {key!r}.")
        params[key] = read_value(value, f"parameter {key}", source, budget)
    check_side_effects(cls, params, source)
    limit_resources(params)
    if depth == 0:  # a Pipeline warns for its steps once all of them are read
        # Warn once the file is known to be readable, as unpickling does.
        warn_if_other_version(cls, document.get("sktransfer_version"))
    estimator = cls(**params)

    network = cls.__sktransfer_network__
    fitted = {}
    for key, value in (document["fitted"] or {}).items():
        # scikit-learn's convention, which every fitted attribute here follows;
        # set_output's setting, and the extractor's names of earlier files
        if (not NAME_PATTERN.match(key) or key.startswith("__")
                or not (key.endswith("_") or key in _NAMES_WITHOUT_UNDERSCORE)
                or key in known or key == network or hasattr(cls, key)):
            raise ValueError(f"{source}: {key!r} is not a fitted attribute name.")
        fitted[key] = read_value(value, f"fitted attribute {key}", source, budget)
    refused = problems(params, fitted)
    if refused:  # before anything is built
        raise ValueError(f"{source}: {refused[0]}.")
    attribute = document["weights"]
    if attribute is None and tensors:
        raise ValueError(f"{source}: it holds tensors but names no network.")
    if attribute is not None and attribute != network:
        raise ValueError(f"{source}: its weights belong to {attribute!r}, which a "
                         f"{name} does not have.")
    prefix = f"{attribute}."
    if not all(k.startswith(prefix) for k in tensors):
        raise ValueError(f"{source}: tensors outside {attribute!r}.")
    try:
        return estimator.__sktransfer_restore__(
            fitted, {k[len(prefix):]: v for k, v in tensors.items()})
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from exc


def warn_files_not_used(source, setting, what, parameter):
    """Say that a file's ``setting`` (a cache on disk) was set to None in ``what``."""
    warn(
        f"{source} sets {setting}, a cache on disk. A safe file does not make the "
        f"estimator it loads write or read files of its own: the {what} has "
        f"{parameter}=None. Call set_params({parameter}=...) after loading to use "
        "that cache.", UserWarning)


def check_side_effects(cls, params, source):
    """Refuse or neutralise parameters that would make the loaded estimator act
    on its own beyond computing: write or read files, call objects."""
    callbacks = params.get("callbacks")
    if callbacks is not None and not _only_dropped_defaults(callbacks):
        # Callback objects are code: save refuses them, so no honest file has
        # any; (name, None) pairs, which drop a default callback, are data.
        raise ValueError(f"{source}: callbacks={callbacks!r:.80} in a safe file; "
                         "callbacks are objects, which the safe format does not hold "
                         "(set them with set_params after loading).")
    cache = params.get("cache")
    if isinstance(cache, (str, os.PathLike)):
        params["cache"] = None
        warn_files_not_used(source, f"cache={cache!r:.200}", f"loaded {cls.__name__}",
                            "cache")


def _only_dropped_defaults(callbacks):
    """Whether ``callbacks`` holds only ``(name, None)`` pairs (or nothing)."""
    return isinstance(callbacks, (list, tuple)) and all(
        isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str)
        and item[1] is None for item in callbacks)
