"""Input adapters: what ``X`` may be, how it is checked, batched and preprocessed,
and the per-image training transforms (:class:`~sktransfer.training.PerSample`) run
where it is decoded."""

from ._preprocess import (
    BatchPreprocessor,
    PreprocessConfig,
    apply_geometry,
    match_channels,
)
from ._sources import (
    ArraySource,
    ImageSource,
    PathSource,
    PILSource,
    check_images,
    check_input_shape,
    is_tabular,
)
from ._transforms import POLICIES, PerSample, as_per_sample

__all__ = [
    "ArraySource",
    "BatchPreprocessor",
    "ImageSource",
    "PILSource",
    "POLICIES",
    "PathSource",
    "PerSample",
    "PreprocessConfig",
    "apply_geometry",
    "as_per_sample",
    "check_images",
    "check_input_shape",
    "is_tabular",
    "match_channels",
]

from ._validation import validate_images  # noqa: E402  (uses the names above)

__all__ += ["validate_images"]
