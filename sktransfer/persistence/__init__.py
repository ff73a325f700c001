"""Saving estimators safely: :func:`save` / :func:`load`, above every estimator.

``_codec`` turns parameters and fitted attributes into JSON data and back;
``_records`` holds one estimator's record in a file and rebuilds it; ``_format``
writes and reads the safetensors file; ``_describe`` says what a file holds from
its header alone; ``_limits`` bounds what a file may ask of the machine that
loads it. The estimators take part
through a small protocol (``__sktransfer_network__``, ``__sktransfer_state__``,
``__sktransfer_restore__``), which their unpickling shares, so no module here
reads an estimator's private attributes. ``_pipeline`` adds a scikit-learn
``Pipeline`` of them (its scikit-learn steps through ``skops.io``).
"""

from .._utils.versioning import InconsistentVersionWarning
from ._describe import EstimatorDescription, FileDescription, describe
from ._format import FORMAT_NAME, FORMAT_VERSION, load, read_header, save
from ._pipeline import TRUSTED_TYPES
from ._records import SAFE_CLASSES

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "EstimatorDescription", "FileDescription",
           "InconsistentVersionWarning", "SAFE_CLASSES", "TRUSTED_TYPES", "describe",
           "load", "read_header", "save"]
