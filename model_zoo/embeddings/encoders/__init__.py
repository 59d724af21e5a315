"""Real content encoders (titles -> text vectors, cover images -> image vectors) with a verified, resumable cache.

Every encoder has one interface, ``encode(items) -> np.ndarray`` of shape (len(items), ``dim``), float32, batched,
plus ``fingerprint()`` (what identifies its vectors):

* :mod:`~model_zoo.embeddings.encoders.text`: :class:`MiniLMTextEncoder` (all-MiniLM-L6-v2, 384-d).
* :mod:`~model_zoo.embeddings.encoders.image`: :class:`EfficientNetLite0ImageEncoder` (1280-d, ImageNet weights)
  on the :class:`EfficientNetLite0` network written here; :class:`OpenCLIPEncoder` (optional, local weights only).
* :mod:`~model_zoo.embeddings.encoders.cache`: :class:`CachedEncoder` wraps any of them with a sharded on-disk
  cache that resumes after an interruption and re-encodes a shard whose sha256 no longer matches its manifest.

The command line lives in :mod:`model_zoo.apps.encode` (``python -m model_zoo.apps.encode --help``).
"""
from __future__ import annotations

from model_zoo.embeddings.encoders.cache import CachedEncoder, CacheStats, Encoder, EncodingStopped
from model_zoo.embeddings.encoders.image import (EfficientNetLite0, EfficientNetLite0ImageEncoder, OpenCLIPEncoder,
                                                 default_efficientnet_lite0_path, preprocess_image)
from model_zoo.embeddings.encoders.text import MiniLMTextEncoder, default_minilm_path

__all__ = ["Encoder", "MiniLMTextEncoder", "EfficientNetLite0", "EfficientNetLite0ImageEncoder", "OpenCLIPEncoder",
           "CachedEncoder", "CacheStats", "EncodingStopped", "preprocess_image", "default_minilm_path",
           "default_efficientnet_lite0_path"]
