"""Input adapters: what ``X`` may be, how it is checked, batched and preprocessed,
and the per-image training transforms (:class:`~sktransfer.training.PerSample`) run
where it is decoded. Two modalities share one contract: images
(:class:`ImageSource`, :class:`PreprocessConfig`, batches of tensors) and texts
(:class:`TextSource`, :class:`TextPreprocess`, batches of :class:`TextBatch`);
the backbone's ``modality`` decides which one reads ``X``."""

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
from ._text import TextBatch, TextPreprocess, TextSource, concat_inputs, validate_texts
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
    "TextBatch",
    "TextPreprocess",
    "TextSource",
    "apply_geometry",
    "as_per_sample",
    "check_images",
    "check_input_shape",
    "concat_inputs",
    "is_tabular",
    "match_channels",
    "validate_texts",
]

from ._validation import validate_images  # noqa: E402  (uses the names above)

__all__ += ["validate_images"]
