"""Frozen pretrained networks as scikit-learn transformers, and their caches.

* :class:`PretrainedFeatureExtractor` (in ``_extractor``): the estimator;
* the feature cache (``_cache``): keys, memory and disk stores, counters;
* the backbone memo (``_memo``): loaded backbones shared within a process.
"""

from .._utils.hashing import weights_fingerprint
from ._cache import (
    CacheInfo,
    FeatureCacheWarning,
    clear_feature_cache,
    feature_cache_info,
    set_feature_cache_size,
)
from ._extractor import PretrainedFeatureExtractor

__all__ = [
    "CacheInfo",
    "FeatureCacheWarning",
    "PretrainedFeatureExtractor",
    "clear_feature_cache",
    "feature_cache_info",
    "set_feature_cache_size",
    "weights_fingerprint",
]
