"""Type aliases of the public API (a leaf; PEP 561 marker: ``py.typed``)."""

import os
from typing import Any, Sequence, Union

import numpy as np
import torch

#: What ``X`` may be: an array or tensor of images or flat rows, a sequence of PIL
#: images or of paths, a pandas Series or DataFrame (see ``docs/feature_extraction.md``).
ImagesLike = Union[np.ndarray, torch.Tensor, Sequence[Any], Any]
#: Labels: an array-like of shape (n_samples,).
LabelsLike = Union[np.ndarray, Sequence[Any], Any]
#: A file system path.
PathLike = Union[str, "os.PathLike[str]"]
