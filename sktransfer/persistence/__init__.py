"""Saving estimators safely: :func:`save` / :func:`load`, above every estimator.

``_codec`` turns parameters and fitted attributes into JSON data and back;
``_format`` writes and reads the safetensors file. The estimators take part
through a small protocol (``__sktransfer_network__``, ``__sktransfer_state__``,
``__sktransfer_restore__``), which their unpickling shares, so no module here
reads an estimator's private attributes.
"""

from .._versioning import InconsistentVersionWarning
from ._format import FORMAT_NAME, FORMAT_VERSION, SAFE_CLASSES, load, save

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "InconsistentVersionWarning", "SAFE_CLASSES",
           "load", "save"]
