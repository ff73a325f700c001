"""A scikit-learn :class:`~sklearn.pipeline.Pipeline` in the safe file format.

The document of a Pipeline names ``"estimator": "Pipeline"`` and lists its
steps in order::

    "params": {"memory": null, "verbose": false, "transform_input": null},
    "steps": [["pretrainedfeatureextractor", {"estimator": "PretrainedFeatureExtractor",
                                              "params": ..., "fitted": ..., "weights": ...}],
              ["standardscaler", {"estimator": "skops",
                                  "class": "sklearn.preprocessing._data.StandardScaler"}],
              ["drop_me", "passthrough"]],
    "skops_version": "0.16.0"

* a step that is one of sktransfer's estimators has the record a file of that
  estimator alone has (without the version fields), and its tensors are
  ``"<step name>.<network attribute>.<key>"``;
* any other step is written with :func:`skops.io.dumps` (a zip of JSON and
  ``.npy`` files, never a pickle); those bytes are the uint8 tensor
  ``"<step name>.skops"``, so ``weights_sha256`` covers them as it covers
  the weights. :func:`load` reads them back with :func:`skops.io.loads` after
  :func:`skops.io.get_untrusted_types` has found no type outside skops's
  defaults and :data:`TRUSTED_TYPES`;
* ``"passthrough"`` and ``null`` steps stay what they are.

A step name holds no ``"."``, so the tensors of each step are those whose
name starts with ``"<step name>."``.
"""

import io
import re
import zipfile

import torch
from sklearn.pipeline import Pipeline

from .._sklearn_compat import get_param_names
from . import _records
from .._utils.versioning import warn_if_other_version
from ._codec import Unsafe, encode

#: The types a scikit-learn step may hold beyond those skops trusts by default
#: (scikit-learn's public estimators, its loss and link functions, numpy and
#: scipy ufuncs and dtypes, numpy bit generators, builtin values and
#: containers). Each is a plain Python class whose state is numbers and arrays.
#: Not here, on purpose: ``sklearn.tree._tree.Tree`` (decision trees, random
#: forests, gradient boosting), hist gradient boosting's ``TreePredictor`` and
#: the neighbours' ``KDTree`` / ``BallTree`` / distance metrics. They are
#: compiled code that follows node indices from the file without bounds checks,
#: so a crafted file could crash the process at ``predict``; skops distrusts
#: the first two for that reason. Save such pipelines with joblib.
TRUSTED_TYPES = (
    # MLPClassifier / MLPRegressor: the solver's state, used by partial_fit.
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    # CalibratedClassifierCV: one calibrated classifier per fold.
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
)

_INSTALL = ('pip install "sktransfer[pipeline]" (or pip install skops)')
_STEP_NAME = re.compile(r"^[^.]+$")
_SKOPS_KEY = "skops"


def _skops():
    """:mod:`skops.io`, or an ImportError that says how to install it."""
    try:
        import skops
        import skops.io
    except ImportError as exc:
        raise ImportError(
            "a Pipeline with scikit-learn steps is saved and loaded in the safe format "
            f"with skops, which is not installed: {_INSTALL}."
        ) from exc
    return skops, skops.io


def _untrusted(sio, data):
    """The types named in skops ``data`` that are not trusted, sorted (read from
    the data's schema; nothing is built)."""
    return sorted(set(sio.get_untrusted_types(data=data)) - set(TRUSTED_TYPES))


def _types(names):
    return f"{', '.join(names)}, {'a type' if len(names) == 1 else 'types'}"


def _type_name(cls):
    return f"{cls.__module__}.{cls.__qualname__}"


def _is_sktransfer(step):
    """Whether ``step`` is sktransfer's (or a subclass of one of its estimators,
    which :func:`_records.record` refuses, as :func:`save` does)."""
    return (isinstance(step, tuple(_records.SAFE_CLASSES.values()))
            or type(step).__module__.split(".")[0] == "sktransfer")


# -- save -------------------------------------------------------------------------
def pipeline_record(pipeline):
    """``(record, tensors)`` of a Pipeline (see the module's docstring)."""
    params = pipeline.get_params(deep=False)
    encoded_params = {}
    for key, value in params.items():
        if key == "steps":
            continue
        try:
            encoded_params[key] = encode(value)
        except Unsafe:
            raise _records.refusal(pipeline, f"parameter {key}", value) from None
    extra = {key: value for key, value in vars(pipeline).items() if key not in params}
    fitted = {}
    for key, value in extra.items():
        try:
            fitted[key] = encode(value)
        except Unsafe:
            raise _records.refusal(pipeline, f"attribute {key}", value) from None

    steps, tensors, skops_version = [], {}, None
    for name, step in pipeline.steps:
        if type(name) is not str or not _STEP_NAME.match(name) or "__" in name:
            raise ValueError(f"cannot save this Pipeline in the safe format: its step "
                             f"name {name!r} is not a non-empty str without '.' or "
                             "'__' (the file names a step's tensors '<step "
                             "name>.<tensor>', and scikit-learn reads '__' as a "
                             "nested parameter).")
        if step is None or (type(step) is str and step == "passthrough"):
            steps.append([name, step])
            continue
        if isinstance(step, Pipeline):
            raise ValueError(
                f"cannot save this Pipeline in the safe format: its step {name!r} is "
                "itself a Pipeline, and the safe format holds one level of steps. "
                "Flatten it (make_pipeline(*outer[:-1], *inner.steps ...)) or save it "
                "with joblib.dump, and load that file only from a source you trust.")
        if _is_sktransfer(step):
            try:
                record, step_tensors = _records.record(step)
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"step {name!r} of the Pipeline: {exc}") from None
        else:
            record, data, skops_version = _skops_record(name, step)
            payload = torch.frombuffer(bytearray(data), dtype=torch.uint8)
            step_tensors = {_SKOPS_KEY: payload}
        steps.append([name, record])
        tensors.update({f"{name}.{key}": value for key, value in step_tensors.items()})
    record = {
        "estimator": "Pipeline",
        "params": encoded_params,
        "steps": steps,
        "fitted": fitted or None,
        "weights": None,
        "skops_version": skops_version,
    }
    return record, tensors


def _skops_record(name, step):
    skops, sio = _skops()
    what = f"step {name!r} of the Pipeline ({_type_name(type(step))})"
    try:
        data = sio.dumps(step)
        refused = _untrusted(sio, data)
    except Exception as exc:  # skops refuses what it cannot write as data
        raise ValueError(f"cannot save {what} in the safe format: skops cannot write "
                         f"it ({type(exc).__name__}: {exc}). Save the Pipeline with "
                         "joblib.dump instead, and load that file only from a source "
                         "you trust.") from None
    nested = [name for name in refused if name.split(".")[0] == "sktransfer"]
    if nested:
        raise ValueError(
            f"cannot save {what} in the safe format: it holds sktransfer's "
            f"{', '.join(sorted({name.rsplit('.', 1)[-1] for name in nested}))} inside "
            "a scikit-learn step. The safe format stores "
            "sktransfer's estimators as steps of the Pipeline itself, not nested in "
            "another step (a ColumnTransformer, a FeatureUnion). Save the Pipeline "
            "with joblib.dump instead, and load that file only from a source you "
            "trust.")
    if refused:
        raise ValueError(
            f"cannot save {what} in the safe format: it holds {_types(refused)} that "
            "sktransfer.load does not trust (skops's default trusted types and "
            "sktransfer.persistence.TRUSTED_TYPES: scikit-learn's estimators and plain "
            "data). Save the Pipeline with joblib.dump instead, and load that file "
            "only from a source you trust.")
    record = {"estimator": "skops", "class": _type_name(type(step))}
    return record, data, skops.__version__


# -- load -------------------------------------------------------------------------
def build_pipeline(document, tensors, source, budget):
    """The Pipeline of ``document``; ValueError (or KeyError, TypeError... which
    :func:`load` turns into one) for what it does not expect."""
    known = set(get_param_names(Pipeline)) - {"steps"}
    params = {}
    for key, value in document["params"].items():
        if key not in known:
            raise ValueError(f"{source}: Pipeline of this version of scikit-learn has "
                             f"no parameter {key!r}.")
        params[key] = _records.read_value(value, f"Pipeline parameter {key}", source,
                                          budget)
    memory = params.get("memory")
    if memory is not None:
        params["memory"] = None
        _records.warn_files_not_used(source, f"the Pipeline's memory={memory!r:.200}",
                                     "loaded Pipeline", "memory")
    if document.get("weights") is not None:
        raise ValueError(f"{source}: a Pipeline has no network of its own.")

    records = document["steps"]
    if type(records) is not list or not records:
        raise ValueError(f"{source}: a Pipeline's steps are not a non-empty list.")
    names = []
    for item in records:
        if (type(item) is not list or len(item) != 2 or type(item[0]) is not str
                or not _STEP_NAME.match(item[0]) or "__" in item[0]):
            raise ValueError(f"{source}: {item!r:.80} is not a [step name, step] pair.")
        names.append(item[0])
    if len(set(names)) != len(names):
        raise ValueError(f"{source}: the Pipeline's step names repeat.")
    grouped = {name: {} for name in names}
    for key, value in tensors.items():
        step_name, _, rest = key.partition(".")
        if step_name not in grouped or not rest:
            raise ValueError(f"{source}: the tensor {key!r:.80} belongs to no step.")
        grouped[step_name][rest] = value

    steps, sktransfer_classes = [], []
    for name, record in records:
        step_source = f"{source} (step {name!r})"
        step_tensors = grouped[name]
        if record is None or (type(record) is str and record == "passthrough"):
            if step_tensors:
                raise ValueError(f"{step_source}: tensors for a passthrough step.")
            steps.append((name, record))
            continue
        if type(record) is not dict:
            raise ValueError(f"{step_source}: {record!r:.80} is not a step.")
        if record.get("estimator") == "skops":
            steps.append((name, _load_skops(record, step_tensors, step_source)))
            continue
        cls = _records.SAFE_CLASSES.get(record.get("estimator"))
        if cls is None:
            raise ValueError(f"{step_source}: {record.get('estimator')!r:.80} is neither "
                             "one of sktransfer's estimators nor a skops step.")
        steps.append((name, _records.build(record, step_tensors, step_source, budget,
                                           depth=1)))
        sktransfer_classes.append(cls)

    pipeline = Pipeline(steps, **params)
    param_names = set(get_param_names(Pipeline))
    for key, value in (document.get("fitted") or {}).items():
        if (not _records.NAME_PATTERN.match(key) or key.startswith("__")
                or key in param_names or hasattr(Pipeline, key)):
            raise ValueError(f"{source}: {key!r} is not an attribute name of a Pipeline.")
        setattr(pipeline, key, _records.read_value(value, f"Pipeline attribute {key}",
                                                   source, budget))
    # Warn once the file is known to be readable, as unpickling does.
    for cls in dict.fromkeys(sktransfer_classes):
        warn_if_other_version(cls, document.get("sktransfer_version"))
    return pipeline


def _load_skops(record, tensors, source):
    """A scikit-learn step from its skops bytes, its types checked first."""
    if set(record) != {"estimator", "class"} or type(record["class"]) is not str:
        raise ValueError(f"{source}: unexpected skops step fields {sorted(record)!r:.80}.")
    data = tensors.get(_SKOPS_KEY)
    if (set(tensors) != {_SKOPS_KEY} or data.dtype != torch.uint8 or data.dim() != 1):
        raise ValueError(f"{source}: a skops step is one 1-d uint8 tensor "
                         f"'<step name>.{_SKOPS_KEY}'.")
    data = data.numpy().tobytes()
    _check_zip(data, source)
    _, sio = _skops()
    try:
        refused = _untrusted(sio, data)
    except Exception as exc:  # whatever skops raises on bytes it cannot parse
        raise ValueError(f"{source}: its skops data cannot be read "
                         f"({type(exc).__name__}: {exc}).") from None
    if refused:
        raise ValueError(
            f"{source} holds {_types(refused)} that sktransfer.load does not "
            "trust (skops's default trusted types and "
            "sktransfer.persistence.TRUSTED_TYPES); nothing of the step was built. If "
            "you trust the file's author, read its payload yourself with "
            "skops.io.loads(..., trusted=[...]).")
    try:
        step = sio.loads(data, trusted=list(TRUSTED_TYPES))
    except Exception as exc:
        raise ValueError(f"{source}: its skops data cannot be loaded "
                         f"({type(exc).__name__}: {exc}).") from None
    if _type_name(type(step)) != record["class"]:
        raise ValueError(f"{source}: its skops data hold a {_type_name(type(step))}, "
                         f"not the {record['class']!r:.80} the document names.")
    if isinstance(step, Pipeline) or not hasattr(step, "get_params"):
        raise ValueError(f"{source}: a {_type_name(type(step))} is not a step the safe "
                         "format holds (a scikit-learn estimator, not a Pipeline).")
    _neutralise_memory(step, source)
    return step


def _check_zip(data, source):
    """skops.io.dumps writes its zip uncompressed: refuse compressed members (a
    small file that would inflate to gigabytes) and sizes the bytes do not hold."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise ValueError(f"{source}: its skops data are not a zip file "
                         f"({type(exc).__name__}: {exc}).") from None
    if any(m.compress_type != zipfile.ZIP_STORED for m in members) or \
            sum(m.file_size for m in members) > len(data):
        raise ValueError(f"{source}: its skops data are compressed or declare more "
                         "than they hold; sktransfer.save writes them uncompressed.")


def _neutralise_memory(step, source):
    """A scikit-learn step (a FeatureAgglomeration, a Pipeline inside a
    ColumnTransformer) may cache to a folder: set every ``memory`` to None."""
    try:
        params = step.get_params(deep=True)
    except Exception as exc:
        raise ValueError(f"{source}: its parameters cannot be read "
                         f"({type(exc).__name__}: {exc}).") from None
    cached = {key: value for key, value in params.items()
              if (key == "memory" or key.endswith("__memory")) and value is not None}
    if cached:
        step.set_params(**{key: None for key in cached})
        shown = ", ".join(f"{key}={value!r:.100}" for key, value in cached.items())
        _records.warn_files_not_used(source, shown, "loaded step", "memory")
