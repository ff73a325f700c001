"""Input adapters: what ``X`` may be, how it is checked, batched and preprocessed."""

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

__all__ = [
    "ArraySource",
    "BatchPreprocessor",
    "ImageSource",
    "PILSource",
    "PathSource",
    "PreprocessConfig",
    "apply_geometry",
    "check_images",
    "check_input_shape",
    "is_tabular",
    "match_channels",
]

from ._validation import validate_images  # noqa: E402  (uses the names above)

__all__ += ["validate_images"]
