"""Seeded synthetic stand-in for MicroLens_1M_x1 (WWW 2025 MMCTR challenge, Task 2).

The real challenge files are no longer downloadable, so this module writes a *schema-identical* world under its own
dataset id: ``train/valid/test.parquet``, ``item_info.parquet``, ``item_feature.parquet`` and ``item_emb.parquet``
with exactly the challenge's columns, order, arrow types and padding conventions, plus the truth that the real data
never had: ``ground_truth.csv`` (``ID,label``), ``oracle_valid.parquet`` / ``oracle_test.parquet`` (the true click
probability of every row) and ``manifest.json`` (config, hashes, statistics). Numbers measured on it are never
MicroLens numbers.

Generative model (every coefficient is a :class:`SynthConfig` field)
--------------------------------------------------------------------
Items. ``T = num_topics`` topic centroids ``c_t ~ N(0, I)`` live in a latent space split into a *shared* block
(``shared_dim``, seen by both modalities), a *text-only* block (``text_only_dim``) and an *image-only* block
(``image_only_dim``). Topic sizes follow ``Dirichlet(topic_concentration)``; item ``i`` of topic ``t`` has latent
``z_i = c_t + topic_spread * N(0, I)``. Log-popularity is ``log_pop_i ~ N(0, pop_sigma^2)`` (lognormal
popularity, heavy tailed). ``likes_level`` / ``views_level`` are 1..9 equal-frequency buckets of
``z(log_pop) + N(0, likes_noise^2)`` and ``z(log_pop) + N(0, views_noise^2)`` (independent noise each; vocab 11
as in the challenge). Each item has 1..5 tags (``tag_count_probs``): with probability ``tag_topic_prob`` a tag
comes from its topic's contiguous block of tag ids (skewed towards the block's first ids by ``tag_skew``),
otherwise from all tags; tags are sorted, de-duplicated and left-padded with 0 to length 5; ids lie in
``1..num_tags-2`` (the last id is the loader's OOV slot).

Modalities. Text (768-d, "BERT-like") ``= o_txt + text_signal * W_txt [z_shared; z_text] + text_noise * eps`` and
image (1024-d, "CLIP-like") ``= o_img + image_signal * W_img [z_shared; z_image] + image_noise * eps``, with fixed
Gaussian maps ``W`` (entries ``N(0, 1/d_in)``), a common offset vector per modality (entries ``N(0, offset^2)``,
which puts raw cosines between items in a narrow positive band like real encoders) and isotropic noise. The image
modality has the larger variance by default, so a joint PCA of the concatenation is dominated by it (the V3-vs-V4
question). Titles are English-like strings: ``title_min_words..title_max_words`` words from the item's topic word
list (20 built-in topics, topic ``t`` uses list ``t % 20``; share ``title_topic_prob``), another topic's words
(``title_offtopic_prob``) or generic fillers, followed by 1..3 ``#hashtags`` from the topic's list. Item embeddings
in the files are PCA projections (:mod:`model_zoo.embeddings.pca`): ``item_emb_d128`` = ``_v3`` = PCA128(text ‖
image), ``_v1`` = PCA128(text), ``_v2`` = PCA128(image), ``_e4`` = PCA64(text) ‖ PCA64(image).

Users. User ``u`` follows 1..3 topics (``user_topic_probs``; chosen without replacement, proportional to topic
size) with ``Dirichlet(1)`` weights; its interest vector is the weighted mix of its topic centroids plus
``user_noise * N(0, I)``. Activity is ``lognormal(0, activity_sigma)``; every row picks its user with probability
proportional to activity, so rows per user vary.

Rows. Train, valid and test rows are drawn the same way from independent random streams (valid/test act as
later interactions of the same users). History length ``L = min_hist_len + floor(exp(hist_len_mu +
hist_len_sigma * N(0, 1)))`` clipped to ``seq_len`` (min 3, median ~6, mean ~8, max 100 like the real
``item_seq.parquet``). Each history item comes, with probability ``hist_explore``, from global exposure and
otherwise from one of the user's topics (by the user's weights); within a topic or globally an item is drawn with
probability proportional to ``popularity ** exposure_alpha`` (cumulative weights + ``searchsorted``, never a
user × item matrix). The target comes from the user's topics with probability ``target_topic_prob`` and from global
exposure otherwise. ``item_seq`` holds the history left-padded with 0, most recent last.

Clicks. ``logit = b0 + a_pop * s(log_pop[target]) + a_int * s(interest_u . z_target) + a_sim * s(mean cosine of
z_target with the latents of the last sim_k history items) + logit_noise * N(0, 1)`` where ``s`` standardises a
term with its train mean and std. ``b0`` is set by bisection so the mean click probability on train equals
``click_rate`` (0.25 as in the challenge); ``label ~ Bernoulli(sigmoid(logit))``. Popularity carries the most
weight (alone it reaches AUC ~0.82), content similarity to the recent history a clear but smaller share
(dropping the similarity term costs ~0.03 AUC); the oracle AUC (true probability vs. label) is ~0.87-0.88 with
the defaults.

Determinism: one :class:`numpy.random.SeedSequence` per seed, spawned into named independent streams; fixed parquet
writer options and no timestamps inside data files, so the same config and seed give byte-identical files (the
manifest's sha256 values match across runs). The world is written into ``<out>.tmp-<pid>`` and renamed into place
only when complete.

CLI: ``python -m model_zoo.datasets.synthetic --preset small --out data/MicroLens_synth_small [--seed N] [--force]``.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import shutil
import sys
import time
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from model_zoo.embeddings.pca import pca_variants
from model_zoo.errors import ConfigError, DataError, ZooError, did_you_mean
from model_zoo.fileio import sha256_file
from model_zoo.schema import (DATA_FILES, E4_SPLIT, IMG_EMB_DIM, ITEM_EMB_DIM, ITEM_EMB_SCHEMA, ITEM_FEATURE_SCHEMA,
                               ITEM_INFO_SCHEMA, ITEM_TAGS_LENGTH, LEVEL_VOCAB, NUM_LEVELS, SPLIT_SCHEMA, SPLITS,
                               TXT_EMB_DIM)

__all__ = [
    "GENERATOR_VERSION", "SynthConfig", "PRESETS", "generate", "ensure_synthetic", "make_config", "config_hash",
    "vocab_sizes", "DATA_FILES", "TRUTH_FILES", "ROW_SCHEMA", "ITEM_INFO_SCHEMA", "ITEM_FEATURE_SCHEMA",
    "ITEM_EMB_SCHEMA", "main",
]

GENERATOR_VERSION = "microlens-synth-1.1"

# Schema constants come from model_zoo.schema (the loaders and YAML depend on them); aliases keep this module short.
TEXT_DIM, IMAGE_DIM, EMB_DIM, TAG_SLOTS = TXT_EMB_DIM, IMG_EMB_DIM, ITEM_EMB_DIM, ITEM_TAGS_LENGTH
ROW_SCHEMA = SPLIT_SCHEMA
ROW_CHUNK = 200_000     # rows per drawing / scoring / writing chunk (part of the generator's determinism)

_I64 = pa.int64()
_ORACLE_SCHEMA = pa.schema([("ID", _I64), ("p_click", pa.float64())])

TRUTH_FILES = ("ground_truth.csv", "oracle_valid.parquet", "oracle_test.parquet")
MANIFEST = "manifest.json"

# Fixed writer options: same data -> same bytes. Random float columns skip dictionary encoding (it never pays).
_WRITER_OPTS: Dict[str, Any] = dict(version="2.6", data_page_version="1.0", compression="zstd",
                                    compression_level=1, write_statistics=True, store_schema=True)

# ~20 topics x 12 words; topic t of the world uses list t % 20.
TOPIC_WORDS: Tuple[Tuple[str, ...], ...] = (
    ("food", "recipe", "cooking", "kitchen", "delicious", "noodles", "dumplings", "spicy", "dessert", "chef",
     "breakfast", "sauce"),
    ("pets", "puppy", "kitten", "cat", "dog", "cute", "fluffy", "paws", "adorable", "meow", "bark", "playful"),
    ("travel", "beach", "mountain", "sunset", "journey", "island", "hiking", "city", "adventure", "explore",
     "vacation", "landscape"),
    ("fitness", "workout", "gym", "training", "muscle", "running", "yoga", "cardio", "squat", "strength", "stretch",
     "sweat"),
    ("gaming", "game", "gamer", "level", "boss", "console", "esports", "stream", "quest", "victory", "controller",
     "pixel"),
    ("music", "song", "guitar", "piano", "singing", "concert", "melody", "drums", "cover", "beat", "lyrics", "band"),
    ("beauty", "makeup", "lipstick", "skincare", "eyeliner", "foundation", "tutorial", "glow", "nails", "hairstyle",
     "blush", "serum"),
    ("fashion", "outfit", "style", "dress", "sneakers", "jacket", "streetwear", "vintage", "denim", "wardrobe",
     "lookbook", "trendy"),
    ("comedy", "funny", "prank", "laugh", "joke", "hilarious", "meme", "parody", "reaction", "silly", "skit",
     "bloopers"),
    ("dance", "choreography", "dancing", "moves", "hiphop", "ballet", "rhythm", "challenge", "groove", "spin",
     "freestyle", "kpop"),
    ("tech", "phone", "gadget", "unboxing", "review", "laptop", "camera", "smartphone", "battery", "setup",
     "keyboard", "headphones"),
    ("cars", "car", "drift", "engine", "racing", "supercar", "motorcycle", "garage", "speed", "tuning", "wheels",
     "turbo"),
    ("sports", "football", "basketball", "goal", "soccer", "match", "dunk", "tennis", "score", "player", "team",
     "stadium"),
    ("art", "painting", "drawing", "artist", "canvas", "watercolor", "portrait", "illustration", "sculpture",
     "brush", "doodle", "mural"),
    ("education", "learn", "science", "history", "lesson", "math", "study", "facts", "explained", "teacher",
     "experiment", "physics"),
    ("nature", "flowers", "garden", "forest", "rain", "waterfall", "birds", "wildlife", "plants", "ocean",
     "butterfly", "river"),
    ("family", "baby", "kids", "mom", "dad", "toddler", "birthday", "grandma", "siblings", "parenting", "wedding",
     "hug"),
    ("diy", "crafts", "handmade", "woodworking", "repair", "build", "tools", "homemade", "crochet", "knitting",
     "upcycle", "project"),
    ("film", "movie", "trailer", "scene", "actor", "cinema", "series", "episode", "anime", "cartoon", "character",
     "soundtrack"),
    ("vlog", "daily", "morning", "coffee", "apartment", "cleaning", "shopping", "weekend", "commute", "relax",
     "evening", "diary"),
)
FILLER_WORDS: Tuple[str, ...] = (
    "the", "my", "this", "a", "new", "best", "so", "with", "for", "today", "our", "first", "little", "amazing",
    "time", "day", "watch", "try", "how", "to", "when", "you", "your", "is", "and", "in", "at", "of", "part", "2",
)


@dataclass(frozen=True)
class SynthConfig:
    """Every size and coefficient of the synthetic world (see the module docstring for the model)."""

    name: str = "custom"                 # dataset id suffix: MicroLens_synth_<name>
    seed: int = 2025
    # sizes
    num_items: int = 400
    num_users: int = 300
    num_train: int = 4000
    num_valid: int = 1000
    num_test: int = 1000
    num_tags: int = 200                  # tag vocab incl. padding 0 and OOV num_tags-1
    num_topics: int = 5
    seq_len: int = 100
    # item latent content
    shared_dim: int = 16
    text_only_dim: int = 8
    image_only_dim: int = 8
    topic_spread: float = 0.7            # std of an item latent around its topic centroid
    topic_concentration: float = 3.0     # Dirichlet concentration of topic sizes
    # popularity and levels
    pop_sigma: float = 1.5               # std of log-popularity
    likes_noise: float = 0.5             # noise std (in log-pop std units) before bucketing likes_level
    views_noise: float = 0.8
    exposure_alpha: float = 1.0          # items are exposed with probability ~ popularity ** alpha
    # tags
    tag_count_probs: Tuple[float, ...] = (0.2, 0.25, 0.25, 0.2, 0.1)   # P(1..5 tags)
    tag_topic_prob: float = 0.85
    tag_skew: float = 2.0                # >1 favours the first tag ids of a topic block
    # titles
    title_min_words: int = 3
    title_max_words: int = 8
    title_topic_prob: float = 0.6        # share of topic words; the rest is filler or off-topic
    title_offtopic_prob: float = 0.08
    # modalities
    # Scales put the PCA scores of item_emb_d128 at magnitudes of about 1 to 3, like the challenge's file.
    text_signal: float = 0.035
    text_offset: float = 0.1
    text_noise: float = 0.03
    image_signal: float = 0.1
    image_offset: float = 0.15
    image_noise: float = 0.09
    # users
    user_topic_probs: Tuple[float, ...] = (0.5, 0.35, 0.15)           # P(1, 2, 3 topics)
    user_noise: float = 0.5
    activity_sigma: float = 1.0
    # rows
    min_hist_len: int = 3
    hist_len_mu: float = 1.25
    hist_len_sigma: float = 0.95
    hist_explore: float = 0.15
    target_topic_prob: float = 0.6
    # clicks
    click_rate: float = 0.25
    a_pop: float = 1.8
    a_int: float = 0.3
    a_sim: float = 0.8
    sim_k: int = 10
    logit_noise: float = 0.0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            kind = str(f.type)
            if kind == "int":
                if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
                    raise ConfigError(f"SynthConfig.{f.name} must be an integer, got {value!r}")
                object.__setattr__(self, f.name, int(value))
            elif kind == "float":
                if not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(value, bool) \
                        or not math.isfinite(float(value)):
                    raise ConfigError(f"SynthConfig.{f.name} must be a finite number, got {value!r}")
                object.__setattr__(self, f.name, float(value))
            elif kind == "str":
                if not isinstance(value, str) or not value:
                    raise ConfigError(f"SynthConfig.{f.name} must be a non-empty string, got {value!r}")
            else:  # tuples of probabilities
                try:
                    probs = tuple(float(v) for v in value)
                except (TypeError, ValueError):
                    raise ConfigError(f"SynthConfig.{f.name} must be a sequence of numbers, got {value!r}") from None
                if not probs or min(probs) < 0 or abs(sum(probs) - 1.0) > 1e-6:
                    raise ConfigError(f"SynthConfig.{f.name} must be non-negative probabilities summing to 1, "
                                      f"got {value!r}")
                object.__setattr__(self, f.name, probs)
        self._check_ranges()

    def _check_ranges(self) -> None:
        """Raise ConfigError for values the generator cannot honour."""
        positive = ("num_items", "num_users", "num_train", "num_valid", "num_test", "num_topics", "shared_dim",
                    "sim_k", "title_min_words")
        for key in positive:
            if getattr(self, key) < 1:
                raise ConfigError(f"SynthConfig.{key} must be >= 1, got {getattr(self, key)}")
        non_negative = ("text_only_dim", "image_only_dim", "topic_spread", "pop_sigma", "likes_noise",
                        "views_noise", "exposure_alpha", "text_offset", "text_noise", "image_offset", "image_noise",
                        "user_noise", "activity_sigma", "hist_len_sigma", "logit_noise", "text_signal",
                        "image_signal")
        for key in non_negative:
            if getattr(self, key) < 0:
                raise ConfigError(f"SynthConfig.{key} must be >= 0, got {getattr(self, key)}")
        for key in ("tag_topic_prob", "hist_explore", "target_topic_prob", "title_topic_prob",
                    "title_offtopic_prob"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ConfigError(f"SynthConfig.{key} must lie in [0, 1], got {getattr(self, key)}")
        if self.title_topic_prob + self.title_offtopic_prob > 1.0:
            raise ConfigError("SynthConfig.title_topic_prob + title_offtopic_prob must be <= 1")
        if not 0.0 < self.click_rate < 1.0:
            raise ConfigError(f"SynthConfig.click_rate must lie in (0, 1), got {self.click_rate}")
        if self.topic_concentration <= 0 or self.tag_skew <= 0:
            raise ConfigError("SynthConfig.topic_concentration and tag_skew must be > 0")
        if self.num_topics > self.num_items:
            raise ConfigError(f"SynthConfig.num_topics ({self.num_topics}) must not exceed num_items "
                              f"({self.num_items})")
        if self.num_tags < self.num_topics + 2:
            raise ConfigError(f"SynthConfig.num_tags must be >= num_topics + 2 = {self.num_topics + 2}, "
                              f"got {self.num_tags}")
        if not 3 <= self.min_hist_len <= self.seq_len:
            raise ConfigError(f"SynthConfig.min_hist_len must lie in [3, seq_len={self.seq_len}], "
                              f"got {self.min_hist_len}")
        if self.title_max_words < self.title_min_words:
            raise ConfigError("SynthConfig.title_max_words must be >= title_min_words")
        if len(self.tag_count_probs) != TAG_SLOTS:
            raise ConfigError(f"SynthConfig.tag_count_probs needs {TAG_SLOTS} entries (P(1..5 tags)), "
                              f"got {len(self.tag_count_probs)}")
        if len(self.user_topic_probs) > self.num_topics:
            raise ConfigError(f"SynthConfig.user_topic_probs allows {len(self.user_topic_probs)} topics per user "
                              f"but num_topics is {self.num_topics}")
        if self.num_items < EMB_DIM:
            raise ConfigError(f"SynthConfig.num_items must be >= {EMB_DIM} for a {EMB_DIM}-d PCA, "
                              f"got {self.num_items}")

    @property
    def latent_dim(self) -> int:
        """Width of the item latent vector (shared + text-only + image-only)."""
        return self.shared_dim + self.text_only_dim + self.image_only_dim

    def to_dict(self) -> Dict[str, Any]:
        """JSON-friendly dict of every field (tuples become lists)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}


PRESETS: Mapping[str, SynthConfig] = types.MappingProxyType({
    "tiny": SynthConfig(name="tiny", num_items=400, num_users=300, num_train=4000, num_valid=1000, num_test=1000,
                        num_tags=200, num_topics=5),
    "small": SynthConfig(name="small", num_items=8000, num_users=30000, num_train=200_000, num_valid=10_000,
                         num_test=10_000, num_tags=1500, num_topics=20),
    "full": SynthConfig(name="full", num_items=91_717, num_users=1_000_000, num_train=3_600_000,
                        num_valid=10_000, num_test=379_142, num_tags=11_740, num_topics=20),
})


def config_hash(config: SynthConfig) -> str:
    """sha256 of the canonical JSON of the config plus the generator version (the cache key)."""
    payload = json.dumps({"generator": GENERATOR_VERSION, "config": config.to_dict()}, sort_keys=True,
                         separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def vocab_sizes(config: SynthConfig) -> Dict[str, int]:
    """Vocabulary sizes for the FuxiCTR YAML (every size >= max id + 1)."""
    return {"item_id": config.num_items + 1, "item_tags": config.num_tags, "likes_level": LEVEL_VOCAB,
            "views_level": LEVEL_VOCAB, "user_id": config.num_users + 1}


def make_config(preset: str = "tiny", seed: Optional[int] = None, **overrides: Any) -> SynthConfig:
    """A preset with an optional seed and field overrides; unknown names raise ConfigError."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown synthetic preset '{preset}'{did_you_mean(str(preset), PRESETS)}; "
                          f"allowed presets: {', '.join(PRESETS)}")
    names = [f.name for f in dataclasses.fields(SynthConfig)]
    for key in overrides:
        if key not in names:
            raise ConfigError(f"unknown SynthConfig override '{key}'{did_you_mean(key, names)}; "
                              f"allowed keys: {', '.join(names)}")
    if seed is not None:
        overrides["seed"] = seed
    return dataclasses.replace(PRESETS[preset], **overrides)


# ----------------------------------------------------------------------------------------------------------------
# Internal state
# ----------------------------------------------------------------------------------------------------------------

@dataclass
class _Items:
    """Item-side arrays; index 0 is the padding item wherever an array has num_items + 1 rows."""

    topic: np.ndarray            # (I,) topic of item id i+1
    latent: np.ndarray           # (I+1, D) float32, row 0 zeros
    unit: np.ndarray             # (I+1, D) float32, L2-normalised latent
    log_pop: np.ndarray          # (I+1,) float64
    likes: np.ndarray            # (I+1,) int64 levels 1..9 (0 at row 0)
    views: np.ndarray            # (I+1,) int64
    tags: np.ndarray             # (I, 5) int64, left-padded
    order: np.ndarray            # (I,) 0-based item indices sorted by topic
    cum: np.ndarray              # (I,) cumulative exposure weight along `order`
    seg_start: np.ndarray        # (T,) first position of each topic in `order`
    seg_end: np.ndarray          # (T,) one past the last position
    seg_lo: np.ndarray           # (T,) cumulative weight before the topic segment
    seg_hi: np.ndarray           # (T,) cumulative weight at the end of the segment
    centroids: np.ndarray        # (T, D) float32
    topic_share: np.ndarray      # (T,) share of items per topic


@dataclass
class _Users:
    """User-side arrays indexed by user_id - 1."""

    topics: np.ndarray           # (U, 3) topic ids (unused slots repeat the first topic)
    cum_w: np.ndarray            # (U, 3) float32 cumulative topic weights (last = 1)
    interest: np.ndarray         # (U, D) float32
    cdf: np.ndarray              # (U,) float64 cumulative activity share


@dataclass
class _Rows:
    """One split's rows: users (0-based), history flat (1-based item ids), targets (1-based)."""

    users: np.ndarray
    lengths: np.ndarray
    offsets: np.ndarray
    hist: np.ndarray
    targets: np.ndarray


class _Streams:
    """Named independent random generators spawned from one SeedSequence."""

    NAMES = ("topics", "items", "tags", "titles", "text", "image", "users", "train", "valid", "test",
             "label_train", "label_valid", "label_test")

    def __init__(self, seed: int) -> None:
        children = np.random.SeedSequence(seed).spawn(len(self.NAMES))
        self._rngs = {name: np.random.default_rng(ss) for name, ss in zip(self.NAMES, children)}

    def __getitem__(self, name: str) -> np.random.Generator:
        return self._rngs[name]


def _chunks(n: int, size: int = ROW_CHUNK) -> Iterator[Tuple[int, int]]:
    """Half-open [start, stop) ranges covering 0..n."""
    for start in range(0, n, size):
        yield start, min(n, start + size)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function."""
    out = np.empty_like(x, dtype=np.float64)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    ex = np.exp(x[~pos])
    out[~pos] = ex / (1.0 + ex)
    return out


def _levels(values: np.ndarray) -> np.ndarray:
    """1..NUM_LEVELS equal-frequency buckets of ``values``."""
    edges = np.quantile(values, np.arange(1, NUM_LEVELS) / NUM_LEVELS)
    return (np.searchsorted(edges, values, side="right") + 1).astype(np.int64)


# ----------------------------------------------------------------------------------------------------------------
# Items, modalities, users
# ----------------------------------------------------------------------------------------------------------------

def _make_items(cfg: SynthConfig, streams: _Streams) -> _Items:
    """Topics, latents, popularity, levels and tags of every item."""
    n_items, n_topics, dim = cfg.num_items, cfg.num_topics, cfg.latent_dim
    rng = streams["topics"]
    centroids = rng.standard_normal((n_topics, dim)).astype(np.float32)
    share = rng.dirichlet(np.full(n_topics, cfg.topic_concentration))
    rng = streams["items"]
    topic = rng.choice(n_topics, size=n_items, p=share)
    topic[rng.permutation(n_items)[:n_topics]] = np.arange(n_topics)   # no empty topic
    latent = np.zeros((n_items + 1, dim), dtype=np.float32)
    latent[1:] = centroids[topic] + cfg.topic_spread * rng.standard_normal((n_items, dim), dtype=np.float32)
    norms = np.linalg.norm(latent, axis=1, keepdims=True)
    unit = np.divide(latent, norms, out=np.zeros_like(latent), where=norms > 0)
    log_pop = np.zeros(n_items + 1)
    log_pop[1:] = cfg.pop_sigma * rng.standard_normal(n_items)
    z = (log_pop[1:] - log_pop[1:].mean()) / max(log_pop[1:].std(), 1e-12)
    likes = np.zeros(n_items + 1, dtype=np.int64)
    views = np.zeros(n_items + 1, dtype=np.int64)
    likes[1:] = _levels(z + cfg.likes_noise * rng.standard_normal(n_items))
    views[1:] = _levels(z + cfg.views_noise * rng.standard_normal(n_items))

    # Exposure sampler: items sorted by topic, one cumulative weight array, a segment per topic.
    order = np.argsort(topic, kind="stable")
    weight = np.exp(cfg.exposure_alpha * (log_pop[1:] - log_pop[1:].max()))
    cum = np.cumsum(weight[order])
    counts = np.bincount(topic, minlength=n_topics)
    seg_end = np.cumsum(counts)
    seg_start = seg_end - counts
    seg_hi = cum[seg_end - 1]
    seg_lo = np.where(seg_start > 0, cum[np.maximum(seg_start - 1, 0)], 0.0)
    tags = _make_tags(cfg, topic, streams["tags"])
    return _Items(topic=topic, latent=latent, unit=unit, log_pop=log_pop, likes=likes, views=views, tags=tags,
                  order=order, cum=cum, seg_start=seg_start, seg_end=seg_end, seg_lo=seg_lo, seg_hi=seg_hi,
                  centroids=centroids, topic_share=counts / n_items)


def _make_tags(cfg: SynthConfig, topic: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(I, 5) sorted, de-duplicated tag ids, left-padded with 0; ids in 1..num_tags-2."""
    n_items = topic.shape[0]
    usable = cfg.num_tags - 2                       # ids 1..num_tags-2; num_tags-1 is the OOV slot
    bounds = np.linspace(0, usable, cfg.num_topics + 1).astype(np.int64)
    block_lo, block_size = bounds[:-1], np.maximum(bounds[1:] - bounds[:-1], 1)
    n_tags = rng.choice(np.arange(1, TAG_SLOTS + 1), size=n_items, p=cfg.tag_count_probs)
    u = rng.random((n_items, TAG_SLOTS))
    own = rng.random((n_items, TAG_SLOTS)) < cfg.tag_topic_prob
    in_block = block_lo[topic][:, None] + np.floor(block_size[topic][:, None] * u ** cfg.tag_skew).astype(np.int64)
    anywhere = np.floor(rng.random((n_items, TAG_SLOTS)) * usable).astype(np.int64)
    tags = np.minimum(np.where(own, in_block, anywhere), usable - 1) + 1
    tags[np.arange(TAG_SLOTS)[None, :] < (TAG_SLOTS - n_tags)[:, None]] = 0
    tags.sort(axis=1)
    dup = np.zeros_like(tags, dtype=bool)
    dup[:, 1:] = (tags[:, 1:] == tags[:, :-1]) & (tags[:, 1:] > 0)
    tags[dup] = 0
    tags.sort(axis=1)                               # zeros move to the left again
    return tags


def _make_titles(cfg: SynthConfig, topic: np.ndarray, rng: np.random.Generator) -> List[str]:
    """English-like titles with topic words, fillers and 1..3 hashtags."""
    n_items = topic.shape[0]
    n_lists, per_list = len(TOPIC_WORDS), len(TOPIC_WORDS[0])
    vocab = np.array([w for words in TOPIC_WORDS for w in words] + list(FILLER_WORDS), dtype=object)
    word_list = topic % n_lists
    width = cfg.title_max_words
    n_words = rng.integers(cfg.title_min_words, cfg.title_max_words + 1, size=n_items)
    kind = rng.random((n_items, width))
    own = word_list[:, None] * per_list + rng.integers(0, per_list, size=(n_items, width))
    other = rng.integers(0, n_lists * per_list, size=(n_items, width))
    filler = n_lists * per_list + rng.integers(0, len(FILLER_WORDS), size=(n_items, width))
    idx = np.where(kind < cfg.title_topic_prob, own,
                   np.where(kind < cfg.title_topic_prob + cfg.title_offtopic_prob, other, filler))
    n_hash = rng.integers(1, 4, size=n_items)
    hash_idx = word_list[:, None] * per_list + rng.integers(0, per_list, size=(n_items, 3))
    words = vocab[idx].tolist()
    hashes = vocab[hash_idx].tolist()
    return [" ".join(w[:k]) + " " + " ".join("#" + h for h in dict.fromkeys(hs[:m]))
            for w, k, hs, m in zip(words, n_words.tolist(), hashes, n_hash.tolist())]


def _modality(latent_part: np.ndarray, out_dim: int, signal: float, offset: float, noise: float,
              rng: np.random.Generator) -> np.ndarray:
    """offset + signal * W latent + noise, float32 (n_items × out_dim)."""
    d_in = latent_part.shape[1]
    w = rng.standard_normal((d_in, out_dim), dtype=np.float32) / np.float32(math.sqrt(d_in))
    bias = (offset * rng.standard_normal(out_dim)).astype(np.float32)
    out = rng.standard_normal((latent_part.shape[0], out_dim), dtype=np.float32)
    out *= np.float32(noise)
    out += latent_part @ (w * np.float32(signal))
    out += bias
    return out


def _make_modalities(cfg: SynthConfig, items: _Items, streams: _Streams) -> Tuple[np.ndarray, np.ndarray]:
    """Text (I × 768) and image (I × 1024) float32 embeddings."""
    s, t = cfg.shared_dim, cfg.text_only_dim
    lat = items.latent[1:]
    text = _modality(lat[:, : s + t], TEXT_DIM, cfg.text_signal, cfg.text_offset, cfg.text_noise, streams["text"])
    image_part = np.concatenate([lat[:, :s], lat[:, s + t:]], axis=1)
    image = _modality(image_part, IMAGE_DIM, cfg.image_signal, cfg.image_offset, cfg.image_noise, streams["image"])
    return text, image


def _make_users(cfg: SynthConfig, items: _Items, rng: np.random.Generator) -> _Users:
    """Topic mixtures, interest vectors and activity of every user."""
    n_users, n_topics = cfg.num_users, cfg.num_topics
    slots = len(cfg.user_topic_probs)
    k = rng.choice(np.arange(1, slots + 1), size=n_users, p=cfg.user_topic_probs)
    # Topics without replacement, proportional to topic size (Gumbel top-k), in user chunks to bound memory.
    topics = np.empty((n_users, slots), dtype=np.int64)
    log_share = np.log(np.maximum(items.topic_share, 1e-12)).astype(np.float32)
    for a, b in _chunks(n_users, 250_000):
        keys = log_share[None, :] + rng.gumbel(size=(b - a, n_topics)).astype(np.float32)
        topics[a:b] = np.argsort(-keys, axis=1, kind="stable")[:, :slots]
    weights = rng.exponential(size=(n_users, slots))
    weights[np.arange(slots)[None, :] >= k[:, None]] = 0.0
    weights /= weights.sum(axis=1, keepdims=True)
    topics = np.where(weights > 0, topics, topics[:, :1])
    cum_w = np.cumsum(weights, axis=1).astype(np.float32)
    cum_w[:, -1] = 1.0
    interest = rng.standard_normal((n_users, cfg.latent_dim), dtype=np.float32)
    interest *= np.float32(cfg.user_noise)
    for j in range(slots):
        interest += weights[:, j: j + 1].astype(np.float32) * items.centroids[topics[:, j]]
    activity = np.exp(cfg.activity_sigma * rng.standard_normal(n_users))
    cdf = np.cumsum(activity)
    cdf /= cdf[-1]
    return _Users(topics=topics, cum_w=cum_w, interest=interest, cdf=cdf)


# ----------------------------------------------------------------------------------------------------------------
# Rows and clicks
# ----------------------------------------------------------------------------------------------------------------

def _draw_items(items: _Items, topic: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Exposure-weighted item ids (1-based): within ``topic`` where topic >= 0, globally where topic == -1."""
    glob = topic < 0
    t = np.where(glob, 0, topic)
    lo = np.where(glob, 0.0, items.seg_lo[t])
    hi = np.where(glob, items.cum[-1], items.seg_hi[t])
    pos = np.searchsorted(items.cum, lo + r * (hi - lo), side="right")
    first = np.where(glob, 0, items.seg_start[t])
    last = np.where(glob, items.cum.shape[0], items.seg_end[t]) - 1
    return (items.order[np.clip(pos, first, last)] + 1).astype(np.int32)


def _user_topic(users: _Users, user_idx: np.ndarray, explore_prob: float, rng: np.random.Generator) -> np.ndarray:
    """One topic per draw from the user's mixture, or -1 (global exposure) with probability ``explore_prob``."""
    u = rng.random(user_idx.shape[0], dtype=np.float32)
    cw = users.cum_w[user_idx]
    slot = (u[:, None] >= cw[:, :-1]).sum(axis=1)
    topic = users.topics[user_idx, slot]
    explore = rng.random(user_idx.shape[0]) < explore_prob
    return np.where(explore, -1, topic)


def _draw_rows(cfg: SynthConfig, items: _Items, users: _Users, n: int, rng: np.random.Generator) -> _Rows:
    """Users, history lengths, histories (flat, oldest first) and targets of ``n`` rows."""
    user_idx = np.searchsorted(users.cdf, rng.random(n), side="right").clip(0, cfg.num_users - 1)
    extra = np.floor(np.exp(cfg.hist_len_mu + cfg.hist_len_sigma * rng.standard_normal(n)))
    lengths = np.clip(cfg.min_hist_len + np.minimum(extra, cfg.seq_len), cfg.min_hist_len, cfg.seq_len)
    lengths = lengths.astype(np.int64)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    target_topic = _user_topic(users, user_idx, 1.0 - cfg.target_topic_prob, rng)
    targets = _draw_items(items, target_topic, rng.random(n))
    hist = np.empty(int(offsets[-1]), dtype=np.int32)
    for a, b in _chunks(n):
        lo, hi = offsets[a], offsets[b]
        rep_user = np.repeat(user_idx[a:b], lengths[a:b])
        topic = _user_topic(users, rep_user, cfg.hist_explore, rng)
        hist[lo:hi] = _draw_items(items, topic, rng.random(hi - lo))
    return _Rows(users=user_idx, lengths=lengths, offsets=offsets, hist=hist, targets=targets)


def _raw_terms(cfg: SynthConfig, items: _Items, users: _Users, rows: _Rows) -> np.ndarray:
    """(n, 3) unstandardised click terms: log-popularity, interest . latent, mean recent-history cosine."""
    n = rows.targets.shape[0]
    terms = np.empty((n, 3), dtype=np.float64)
    terms[:, 0] = items.log_pop[rows.targets]
    for a, b in _chunks(n):
        tgt = rows.targets[a:b]
        terms[a:b, 1] = np.einsum("ij,ij->i", users.interest[rows.users[a:b]], items.latent[tgt])
        # flat positions of the last min(L, k) history items of each row
        m = np.minimum(rows.lengths[a:b], cfg.sim_k)
        starts = rows.offsets[a + 1: b + 1] - m
        row_rep = np.repeat(np.arange(b - a), m)
        within = np.arange(row_rep.shape[0]) - np.repeat(np.cumsum(m) - m, m)
        recent = rows.hist[np.repeat(starts, m) + within]
        cos = np.einsum("ij,ij->i", items.unit[recent], items.unit[tgt[row_rep]])
        terms[a:b, 2] = np.bincount(row_rep, weights=cos, minlength=b - a) / m
    return terms


def _calibrate_bias(score: np.ndarray, rate: float) -> float:
    """b0 such that mean(sigmoid(b0 + score)) == rate, by bisection."""
    lo, hi = -30.0, 30.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if _sigmoid(mid + score).mean() < rate:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-10:
            break
    return 0.5 * (lo + hi)


# ----------------------------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------------------------

def _list_array(values: np.ndarray, width: int, arrow_type: pa.DataType) -> pa.ListArray:
    """A list column of fixed ``width`` from a row-major (n × width) block, without Python loops."""
    values = np.ascontiguousarray(values).reshape(-1)
    n = values.shape[0] // width
    offsets = pa.array(np.arange(0, n * width + 1, width, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(values, type=arrow_type))


def _padded_seq(rows: _Rows, a: int, b: int, seq_len: int) -> np.ndarray:
    """(b-a) × seq_len int64 histories, left-padded with 0, most recent last."""
    lengths = rows.lengths[a:b]
    flat = np.zeros((b - a) * seq_len, dtype=np.int64)
    local = rows.offsets[a:b] - rows.offsets[a]
    within = np.arange(int(lengths.sum())) - np.repeat(local, lengths)
    dest = np.repeat(np.arange(b - a, dtype=np.int64) * seq_len + seq_len - lengths, lengths) + within
    flat[dest] = rows.hist[rows.offsets[a]: rows.offsets[b]]
    return flat


def _writer(path: Path, schema: pa.Schema, dictionary: bool | List[str]) -> pq.ParquetWriter:
    """ParquetWriter with the fixed, deterministic options."""
    return pq.ParquetWriter(str(path), schema, use_dictionary=dictionary, **_WRITER_OPTS)


def _write_rows(path: Path, cfg: SynthConfig, items: _Items, rows: _Rows, labels: np.ndarray, bar: Any) -> None:
    """Write one split in ROW_CHUNK row groups."""
    with _writer(path, ROW_SCHEMA, True) as writer:
        for a, b in _chunks(rows.targets.shape[0]):
            tgt = rows.targets[a:b].astype(np.int64)
            table = pa.Table.from_arrays([
                pa.array(rows.users[a:b].astype(np.int64) + 1),
                _list_array(_padded_seq(rows, a, b, cfg.seq_len), cfg.seq_len, _I64),
                pa.array(tgt), pa.array(items.likes[tgt]), pa.array(items.views[tgt]),
                pa.array(labels[a:b].astype(np.int64)),
            ], schema=ROW_SCHEMA)
            writer.write_table(table, row_group_size=ROW_CHUNK)
            bar.update(1)


def _write_table(path: Path, table: pa.Table, dictionary: bool | List[str], group: int = 16_384) -> None:
    """Write a whole (item-side) table with the fixed options."""
    with _writer(path, table.schema, dictionary) as writer:
        writer.write_table(table, row_group_size=group)


def _write_item_files(out: Path, cfg: SynthConfig, items: _Items, titles: List[str], text: np.ndarray,
                      image: np.ndarray, emb: Dict[str, np.ndarray], bar: Any) -> None:
    """item_info.parquet (with padding row 0), item_feature.parquet and item_emb.parquet."""
    n = cfg.num_items
    ids = np.arange(1, n + 1, dtype=np.int64)
    int_cols = ["item_id", "item_tags.list.element", "likes_level", "views_level"]
    padded_tags = np.vstack([np.zeros((1, TAG_SLOTS), dtype=np.int64), items.tags])
    padded_emb = np.vstack([np.zeros((1, EMB_DIM), dtype=np.float32), emb["v3"]])
    _write_table(out / "item_info.parquet", pa.Table.from_arrays([
        pa.array(np.arange(n + 1, dtype=np.int64)), _list_array(padded_tags, TAG_SLOTS, _I64),
        _list_array(padded_emb, EMB_DIM, pa.float32())], schema=ITEM_INFO_SCHEMA), int_cols)
    bar.update(1)
    _write_table(out / "item_feature.parquet", pa.Table.from_arrays([
        pa.array(ids), pa.array(titles, type=pa.string()), _list_array(items.tags, TAG_SLOTS, _I64),
        pa.array(items.likes[1:]), pa.array(items.views[1:]),
        _list_array(text, TEXT_DIM, pa.float32()), _list_array(image, IMAGE_DIM, pa.float32())],
        schema=ITEM_FEATURE_SCHEMA), int_cols, group=8192)
    bar.update(1)
    _write_table(out / "item_emb.parquet", pa.Table.from_arrays(
        [pa.array(ids)] + [_list_array(emb[v], EMB_DIM, pa.float32()) for v in ("v1", "v2", "v3", "e4")],
        schema=ITEM_EMB_SCHEMA), ["item_id"])
    bar.update(1)


def _write_oracle(path: Path, p: np.ndarray) -> None:
    """ID (row order) and true click probability."""
    _write_table(path, pa.Table.from_arrays([pa.array(np.arange(p.shape[0], dtype=np.int64)), pa.array(p)],
                                            schema=_ORACLE_SCHEMA), False, group=1 << 20)


def _write_ground_truth(path: Path, labels: np.ndarray) -> None:
    """ground_truth.csv with header ID,label in test row order."""
    body = np.char.add(np.char.add(np.arange(labels.shape[0]).astype(str), ","), labels.astype(np.int64).astype(str))
    with open(path, "w", encoding="ascii", newline="\n") as fh:
        fh.write("ID,label\n")
        if body.size:
            fh.write("\n".join(body.tolist()))
            fh.write("\n")




def _auc(labels: np.ndarray, p: np.ndarray) -> Optional[float]:
    """sklearn ROC AUC, or None when only one class is present."""
    from sklearn.metrics import roc_auc_score
    if labels.min() == labels.max():
        return None
    return float(roc_auc_score(labels, p))


def _len_stats(lengths: np.ndarray) -> Dict[str, float]:
    """min / median / mean / max of non-zero history lengths."""
    return {"min": int(lengths.min()), "median": float(np.median(lengths)), "mean": round(float(lengths.mean()), 4),
            "max": int(lengths.max())}


# ----------------------------------------------------------------------------------------------------------------
# Public entry points
# ----------------------------------------------------------------------------------------------------------------

class _NullBar:
    """Stand-in for tqdm when progress is off."""

    def update(self, n: int = 1) -> None:
        """Ignore."""

    def set_postfix_str(self, s: str) -> None:
        """Ignore."""

    def close(self) -> None:
        """Ignore."""


def _make_bar(cfg: SynthConfig, progress: bool) -> Any:
    """One tqdm bar over every stage and row chunk (or a silent stand-in)."""
    if not progress:
        return _NullBar()
    from tqdm.auto import tqdm
    per_split = sum(math.ceil(n / ROW_CHUNK) for n in (cfg.num_train, cfg.num_valid, cfg.num_test))
    # items, modalities, titles, users, pca, 3 item files, per split: draw + label (2) + chunks, hashing
    total = 8 + 2 * len(SPLITS) + per_split + 1
    return tqdm(total=total, desc=f"synth[{cfg.name}]", unit="step", file=sys.stderr, leave=False)


def _check_target(out: Path) -> None:
    """Refuse to replace anything that is not a previous synthetic world (or an empty directory)."""
    if not out.exists():
        return
    if not out.is_dir():
        raise DataError("exists and is not a directory; refusing to overwrite", path=str(out))
    if not any(out.iterdir()):
        return
    try:
        manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = None
    if not isinstance(manifest, dict) or "generator_version" not in manifest:
        raise DataError("is a non-empty directory without a synthetic manifest.json; refusing to overwrite it",
                        path=str(out))


def generate(config: SynthConfig, out_dir: str | Path, *, progress: bool = True) -> Dict[str, Any]:
    """Write the whole synthetic world for ``config`` into ``out_dir`` atomically and return its manifest."""
    if not isinstance(config, SynthConfig):
        raise ConfigError(f"generate() needs a SynthConfig, got {type(config).__name__}")
    started = time.perf_counter()
    out = Path(out_dir).absolute()
    _check_target(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f"{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    bar = _make_bar(config, progress)
    try:
        manifest = _generate_into(config, tmp, bar)
        manifest["seconds"] = round(time.perf_counter() - started, 3)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n", encoding="utf-8")
        if out.exists():
            old = out.parent / f"{out.name}.tmp-{os.getpid()}-old"
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        bar.close()
    return manifest


class _Stages:
    """Progress-bar labels plus wall-clock seconds per stage (recorded in the manifest)."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar
        self.seconds: Dict[str, float] = {}
        self._name = ""
        self._t0 = time.perf_counter()

    def start(self, name: str) -> None:
        """Close the running stage and open ``name``."""
        self._close()
        self._name = name
        self.bar.set_postfix_str(name)

    def _close(self) -> None:
        now = time.perf_counter()
        if self._name:
            self.seconds[self._name] = round(self.seconds.get(self._name, 0.0) + now - self._t0, 3)
        self._t0 = now

    def finish(self) -> Dict[str, float]:
        """Close the last stage and return the timings."""
        self._close()
        self._name = ""
        return self.seconds


def _generate_into(cfg: SynthConfig, out: Path, bar: Any) -> Dict[str, Any]:
    """Generate every file into ``out`` (a fresh directory) and return the manifest (without total time)."""
    streams = _Streams(cfg.seed)
    stage = _Stages(bar)
    stage.start("items")
    items = _make_items(cfg, streams)
    bar.update(1)
    stage.start("modalities")
    text, image = _make_modalities(cfg, items, streams)
    bar.update(1)
    titles = _make_titles(cfg, items.topic, streams["titles"])
    bar.update(1)
    stage.start("pca")
    emb = pca_variants(text, image, dim=EMB_DIM, v4_split=E4_SPLIT, seed=cfg.seed)
    bar.update(1)
    stage.start("item_files")
    _write_item_files(out, cfg, items, titles, text, image, emb, bar)
    half = E4_SPLIT[0]
    evr = {"v1": emb["v1_evr"].sum(), "v2": emb["v2_evr"].sum(), "v3": emb["v3_evr"].sum(),
           "e4_text": emb["e4_evr"][:half].sum(), "e4_image": emb["e4_evr"][half:].sum()}
    evr = {k: round(float(v), 6) for k, v in evr.items()}
    del text, image, emb, titles
    stage.start("users")
    users = _make_users(cfg, items, streams["users"])
    bar.update(1)

    sizes = {"train": cfg.num_train, "valid": cfg.num_valid, "test": cfg.num_test}
    stats: Dict[str, Any] = {"rows": {}, "positive_rate": {}, "oracle_auc": {}, "mean_p_click": {}, "hist_len": {}}
    coef = np.array([cfg.a_pop, cfg.a_int, cfg.a_sim])
    mean = std = np.zeros(3)
    b0 = 0.0
    for split in SPLITS:
        stage.start(f"{split}_rows")
        rows = _draw_rows(cfg, items, users, sizes[split], streams[split])
        terms = _raw_terms(cfg, items, users, rows)
        bar.update(1)
        stage.start(f"{split}_labels")
        if split == "train":   # train's term moments and bias define the click model for every split
            mean, std = terms.mean(axis=0), terms.std(axis=0)
            std[std < 1e-12] = 1.0
        rng = streams[f"label_{split}"]
        score = ((terms - mean) / std) @ coef
        if cfg.logit_noise > 0:
            score += cfg.logit_noise * rng.standard_normal(score.shape[0])
        if split == "train":
            b0 = _calibrate_bias(score, cfg.click_rate)
        p = _sigmoid(b0 + score)
        labels = (rng.random(p.shape[0]) < p).astype(np.int64)
        del terms, score
        bar.update(1)
        stage.start(f"{split}_write")
        _write_rows(out / f"{split}.parquet", cfg, items, rows, labels, bar)
        if split != "train":
            _write_oracle(out / f"oracle_{split}.parquet", p)
            stats["oracle_auc"][split] = _auc(labels, p)
        if split == "test":
            _write_ground_truth(out / "ground_truth.csv", labels)
        stats["rows"][split] = int(labels.shape[0])
        stats["positive_rate"][split] = round(float(labels.mean()), 6)
        stats["mean_p_click"][split] = round(float(p.mean()), 6)
        stats["hist_len"][split] = _len_stats(rows.lengths)
        del rows, p, labels

    stage.start("sha256")
    files = {}
    for name in DATA_FILES + TRUTH_FILES:
        path = out / name
        files[name] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    bar.update(1)
    return {
        "dataset_id": f"MicroLens_synth_{cfg.name}",
        "generator_version": GENERATOR_VERSION,
        "config_hash": config_hash(cfg),
        "seed": cfg.seed,
        "config": cfg.to_dict(),
        "num_items": cfg.num_items,
        "num_users": cfg.num_users,
        "vocab_sizes": vocab_sizes(cfg),
        **stats,
        "click_model": {"b0": b0, "terms": ["log_pop", "interest", "recent_sim"], "coef": coef.tolist(),
                        "term_mean": [float(v) for v in mean], "term_std": [float(v) for v in std]},
        "pca_explained_variance": evr,
        "files": files,
        "stage_seconds": stage.finish(),
    }


def _cached_manifest(out: Path, config: SynthConfig) -> Optional[Dict[str, Any]]:
    """The manifest in ``out`` if it was made from ``config`` and every listed file is present with its size."""
    try:
        manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("config_hash") != config_hash(config):
        return None
    files = manifest.get("files") or {}
    for name in DATA_FILES + TRUTH_FILES:
        entry = files.get(name)
        path = out / name
        if not entry or not path.is_file() or path.stat().st_size != entry.get("bytes"):
            return None
    return manifest


def ensure_synthetic(out_dir: str | Path, preset: str = "tiny", seed: Optional[int] = None, *,
                     progress: bool = True, **overrides: Any) -> Dict[str, Any]:
    """Return the manifest of the world in ``out_dir``, generating it first unless a matching one is already there.

    A cache hit (same config hash, every file present with its recorded size) touches nothing. An unknown
    ``preset`` or override key raises ConfigError naming the allowed values.
    """
    config = make_config(preset, seed=seed, **overrides)
    cached = _cached_manifest(Path(out_dir), config)
    if cached is not None:
        return cached
    return generate(config, out_dir, progress=progress)


# ----------------------------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------------------------

def _summary(manifest: Dict[str, Any], out: Path, cached: bool) -> str:
    """Human-readable multi-line summary of a manifest."""
    lines = [f"{manifest['dataset_id']} -> {out}" + ("  (cached, nothing written)" if cached else "")]
    for split in SPLITS:
        auc = manifest["oracle_auc"].get(split)
        auc_txt = f"  oracle AUC {auc:.4f}" if auc is not None else ""
        lines.append(f"  {split:<5} rows {manifest['rows'][split]:>9,}  positive rate "
                     f"{manifest['positive_rate'][split]:.4f}{auc_txt}")
    h = manifest["hist_len"]["train"]
    lines.append(f"  items {manifest['num_items']:,}  users {manifest['num_users']:,}  history length "
                 f"min {h['min']} median {h['median']:g} mean {h['mean']:.2f} max {h['max']}")
    lines.append(f"  generated in {manifest['seconds']:.1f} s (generator {manifest['generator_version']}, "
                 f"config {manifest['config_hash'][:12]})")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point; returns the process exit code (2 on a ZooError)."""
    parser = argparse.ArgumentParser(prog="python -m model_zoo.datasets.synthetic",
                                     description="Generate a seeded synthetic MicroLens_1M_x1-schema world.")
    parser.add_argument("--preset", default="tiny", help=f"one of: {', '.join(PRESETS)} (default tiny)")
    parser.add_argument("--out", required=True, help="output directory, e.g. data/MicroLens_synth_small")
    parser.add_argument("--seed", type=int, default=None, help="override the preset's seed")
    parser.add_argument("--force", action="store_true", help="regenerate even when a matching world exists")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        out = Path(args.out)
        if args.force:
            manifest = generate(make_config(args.preset, seed=args.seed), out, progress=not args.quiet)
            cached = False
        else:
            config = make_config(args.preset, seed=args.seed)
            cached_manifest = _cached_manifest(out, config)
            cached = cached_manifest is not None
            manifest = cached_manifest or generate(config, out, progress=not args.quiet)
    except ZooError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(_summary(manifest, out, cached))
    return 0


if __name__ == "__main__":
    sys.exit(main())
