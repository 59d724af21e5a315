"""Seeded synthetic worlds with the MicroLens_1M_x1 schema (WWW 2025 MMCTR challenge, Task 2).

The real challenge files are no longer downloadable, so the zoo ships schema-identical worlds under their own dataset
ids (results on them are never MicroLens results):

* ``microlens_synth`` (``MicroLens_synth_*``, :mod:`.world`): Bernoulli clicks on target popularity, user interest
  and target/history content similarity; oracle AUC about 0.88.
* ``seqneg`` (``MicroLens_seqneg_*``, :mod:`.seqneg`): positive-only sequences; each user's latest interaction is the
  positive and three popularity-tempered samples sharing its history are the negatives, as the challenge's labels
  were most likely made; exact posterior oracle, about 0.96 AUC.

Layout: :mod:`.config` (configs, presets, cache key, vocab sizes), :mod:`.world` and :mod:`.seqneg` (the generative
models), :mod:`.writers` (files, shared by both), :mod:`.cache` (:func:`ensure_synthetic`: generate atomically, reuse
only while every file matches its manifest sha256). CLI: ``python -m model_zoo.apps.generate``.
"""
from model_zoo.schema import DATA_FILES, ITEM_EMB_SCHEMA, ITEM_FEATURE_SCHEMA, ITEM_INFO_SCHEMA
from model_zoo.schema import SPLIT_SCHEMA as ROW_SCHEMA

from .cache import cached_manifest, ensure_synthetic, ensure_world, generate, verify_files
from .config import (DEFAULT_WORLD, GENERATOR_VERSION, PRESETS, SEQNEG_GENERATOR_VERSION, SEQNEG_PRESETS, WORLDS,
                     SeqNegConfig, SynthConfig, WorldConfig, config_hash, make_config, vocab_sizes)
from .writers import MANIFEST, TRUTH_FILES

__all__ = [
    "ensure_synthetic", "ensure_world", "generate", "cached_manifest", "verify_files",
    "make_config", "config_hash", "vocab_sizes", "SynthConfig", "SeqNegConfig", "WorldConfig", "PRESETS",
    "SEQNEG_PRESETS", "WORLDS", "DEFAULT_WORLD", "GENERATOR_VERSION", "SEQNEG_GENERATOR_VERSION",
    "DATA_FILES", "TRUTH_FILES", "MANIFEST", "ROW_SCHEMA", "ITEM_INFO_SCHEMA", "ITEM_FEATURE_SCHEMA", "ITEM_EMB_SCHEMA",
]
