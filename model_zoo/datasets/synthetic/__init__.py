"""Seeded synthetic worlds with the MicroLens_1M_x1 schema (WWW 2025 MMCTR challenge, Task 2).

The real challenge files are no longer downloadable, so the zoo ships schema-identical worlds under their own dataset
ids (results on them are never MicroLens results):

* ``microlens_synth`` (``MicroLens_synth_*``, :mod:`.world`): Bernoulli clicks on target popularity, user interest
  and target/history content similarity; oracle AUC about 0.88.

Layout: :mod:`.config` (configs, presets, cache key, vocab sizes), :mod:`.world` (the generative
model), :mod:`.writers` (files), :mod:`.cache` (:func:`ensure_synthetic`: generate atomically, reuse
only while every file matches its manifest sha256). CLI: ``python -m model_zoo.apps.generate``.
"""
from model_zoo.schema import DATA_FILES, ITEM_EMB_SCHEMA, ITEM_FEATURE_SCHEMA, ITEM_INFO_SCHEMA
from model_zoo.schema import SPLIT_SCHEMA as ROW_SCHEMA

from .cache import cached_manifest, ensure_synthetic, ensure_world, generate, verify_files
from .config import (DEFAULT_WORLD, GENERATOR_VERSION, PRESETS, WORLDS, SynthConfig, WorldConfig, config_hash,
                     make_config, vocab_sizes)
from .writers import MANIFEST, TRUTH_FILES

__all__ = [
    "ensure_synthetic", "ensure_world", "generate", "cached_manifest", "verify_files",
    "make_config", "config_hash", "vocab_sizes", "SynthConfig", "WorldConfig", "PRESETS", "WORLDS", "DEFAULT_WORLD",
    "GENERATOR_VERSION",
    "DATA_FILES", "TRUTH_FILES", "MANIFEST", "ROW_SCHEMA", "ITEM_INFO_SCHEMA", "ITEM_FEATURE_SCHEMA", "ITEM_EMB_SCHEMA",
]
