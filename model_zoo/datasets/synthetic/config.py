"""Configurations of the synthetic worlds: every size and coefficient, the presets, the cache key and the vocab sizes.

Two worlds share the MicroLens_1M_x1 schema (``model_zoo.schema``) and differ in how rows and labels come about:

* ``microlens_synth`` (:class:`SynthConfig`, :mod:`.world`): Bernoulli clicks on a score of target popularity,
  user interest and target/history content similarity.
* ``seqneg`` (:class:`SeqNegConfig`, :mod:`.seqneg`): positive-only sequences; each user's latest interaction is the
  positive and sampled items sharing its history are the negatives.

A config is a frozen dataclass: every field is type-checked and range-checked on construction (ConfigError naming
the field, the value and what is allowed). :func:`config_hash` (canonical JSON of the config plus the generator
version) is the cache key of a generated world; :func:`vocab_sizes` gives the FuxiCTR YAML vocab sizes.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import types
from dataclasses import dataclass
from typing import Any, Dict, Mapping, NamedTuple, Optional, Tuple, Type, Union

import numpy as np

from model_zoo.errors import ConfigError, did_you_mean
from model_zoo.schema import ITEM_EMB_DIM, ITEM_TAGS_LENGTH, LEVEL_VOCAB

__all__ = ["GENERATOR_VERSION", "SEQNEG_GENERATOR_VERSION", "SynthConfig", "SeqNegConfig", "WorldConfig", "PRESETS",
           "SEQNEG_PRESETS", "WORLDS", "DEFAULT_WORLD", "World", "make_config", "config_hash", "vocab_sizes",
           "world_of"]

GENERATOR_VERSION = "microlens-synth-1.1"          # world "microlens_synth"; part of its cache key
SEQNEG_GENERATOR_VERSION = "microlens-seqneg-1.0"  # world "seqneg"
DEFAULT_WORLD = "microlens_synth"


def _coerce_fields(cfg: Any) -> None:
    """Type-check every field of a frozen config dataclass (ints, finite floats, non-empty strings, probabilities).

    Annotations are strings (``from __future__ import annotations``): ``int``, ``float`` and ``str`` are checked as
    such; every other field is a tuple of probabilities that must be non-negative and sum to 1.
    """
    cls = type(cfg).__name__
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        kind = str(f.type)
        if kind == "int":
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
                raise ConfigError(f"{cls}.{f.name} must be an integer, got {value!r}")
            object.__setattr__(cfg, f.name, int(value))
        elif kind == "float":
            if not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(value, bool) \
                    or not math.isfinite(float(value)):
                raise ConfigError(f"{cls}.{f.name} must be a finite number, got {value!r}")
            object.__setattr__(cfg, f.name, float(value))
        elif kind == "str":
            if not isinstance(value, str) or not value:
                raise ConfigError(f"{cls}.{f.name} must be a non-empty string, got {value!r}")
        else:  # tuples of probabilities
            try:
                probs = tuple(float(v) for v in value)
            except (TypeError, ValueError):
                raise ConfigError(f"{cls}.{f.name} must be a sequence of numbers, got {value!r}") from None
            if not probs or min(probs) < 0 or abs(sum(probs) - 1.0) > 1e-6:
                raise ConfigError(f"{cls}.{f.name} must be non-negative probabilities summing to 1, "
                                  f"got {value!r}")
            object.__setattr__(cfg, f.name, probs)


def _require(cfg: Any, keys: Tuple[str, ...], test: Any, expected: str) -> None:
    """Raise ConfigError for the first field in ``keys`` whose value fails ``test``."""
    for key in keys:
        value = getattr(cfg, key)
        if not test(value):
            raise ConfigError(f"{type(cfg).__name__}.{key} must be {expected}, got {value}")


def _check_item_side(cfg: Any) -> None:
    """Ranges of the item-side fields both worlds share (items, tags, titles, modalities)."""
    cls = type(cfg).__name__
    _require(cfg, ("num_items", "num_topics", "shared_dim", "title_min_words", "seq_len"), lambda v: v >= 1, ">= 1")
    _require(cfg, ("text_only_dim", "image_only_dim", "topic_spread", "pop_sigma", "likes_noise", "views_noise",
                   "text_offset", "text_noise", "image_offset", "image_noise", "text_signal", "image_signal"),
             lambda v: v >= 0, ">= 0")
    _require(cfg, ("tag_topic_prob", "title_topic_prob", "title_offtopic_prob"), lambda v: 0.0 <= v <= 1.0,
             "in [0, 1]")
    if cfg.title_topic_prob + cfg.title_offtopic_prob > 1.0:
        raise ConfigError(f"{cls}.title_topic_prob + title_offtopic_prob must be <= 1")
    if cfg.topic_concentration <= 0 or cfg.tag_skew <= 0:
        raise ConfigError(f"{cls}.topic_concentration and tag_skew must be > 0")
    if cfg.num_topics > cfg.num_items:
        raise ConfigError(f"{cls}.num_topics ({cfg.num_topics}) must not exceed num_items ({cfg.num_items})")
    if cfg.num_tags < cfg.num_topics + 2:
        raise ConfigError(f"{cls}.num_tags must be >= num_topics + 2 = {cfg.num_topics + 2}, got {cfg.num_tags}")
    if not 3 <= cfg.min_hist_len <= cfg.seq_len:
        raise ConfigError(f"{cls}.min_hist_len must lie in [3, seq_len={cfg.seq_len}], got {cfg.min_hist_len}")
    if cfg.title_max_words < cfg.title_min_words:
        raise ConfigError(f"{cls}.title_max_words must be >= title_min_words")
    if len(cfg.tag_count_probs) != ITEM_TAGS_LENGTH:
        raise ConfigError(f"{cls}.tag_count_probs needs {ITEM_TAGS_LENGTH} entries (P(1..5 tags)), "
                          f"got {len(cfg.tag_count_probs)}")
    if len(cfg.user_topic_probs) > cfg.num_topics:
        raise ConfigError(f"{cls}.user_topic_probs allows {len(cfg.user_topic_probs)} topics per user "
                          f"but num_topics is {cfg.num_topics}")
    if cfg.num_items < ITEM_EMB_DIM:
        raise ConfigError(f"{cls}.num_items must be >= {ITEM_EMB_DIM} for a {ITEM_EMB_DIM}-d PCA, got {cfg.num_items}")


@dataclass(frozen=True)
class SynthConfig:
    """Every size and coefficient of the ``microlens_synth`` world (see :mod:`.world` for the model)."""

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
        _coerce_fields(self)
        _check_item_side(self)
        _require(self, ("num_users", "num_train", "num_valid", "num_test", "sim_k"), lambda v: v >= 1, ">= 1")
        _require(self, ("exposure_alpha", "user_noise", "activity_sigma", "hist_len_sigma", "logit_noise"),
                 lambda v: v >= 0, ">= 0")
        _require(self, ("hist_explore", "target_topic_prob"), lambda v: 0.0 <= v <= 1.0, "in [0, 1]")
        if not 0.0 < self.click_rate < 1.0:
            raise ConfigError(f"SynthConfig.click_rate must lie in (0, 1), got {self.click_rate}")

    @property
    def latent_dim(self) -> int:
        """Width of the item latent vector (shared + text-only + image-only)."""
        return self.shared_dim + self.text_only_dim + self.image_only_dim

    def to_dict(self) -> Dict[str, Any]:
        """JSON-friendly dict of every field (tuples become lists)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}


@dataclass(frozen=True)
class SeqNegConfig:
    """Every size and coefficient of the ``seqneg`` (sampled-negatives) world; the process is in :mod:`.seqneg`.

    Row counts are given per split; users = groups of ``num_negatives + 1`` rows (the last group of a split may be
    shorter), so ``num_users`` is derived.
    """

    name: str = "custom"                 # dataset id suffix: MicroLens_seqneg_<name>
    seed: int = 2025
    # sizes
    num_items: int = 400
    num_train: int = 4000                # rows (1 positive + num_negatives negatives per user)
    num_valid: int = 1000
    num_test: int = 1000
    num_tags: int = 200
    num_topics: int = 5
    seq_len: int = 100
    # item latent content, popularity, tags, titles (as SynthConfig)
    shared_dim: int = 16
    text_only_dim: int = 8
    image_only_dim: int = 8
    topic_spread: float = 0.7
    topic_concentration: float = 3.0
    pop_sigma: float = 1.5               # std of log-popularity (lognormal popularity)
    likes_noise: float = 0.5
    views_noise: float = 0.8
    tag_count_probs: Tuple[float, ...] = (0.2, 0.25, 0.25, 0.2, 0.1)
    tag_topic_prob: float = 0.85
    tag_skew: float = 2.0
    title_min_words: int = 3
    title_max_words: int = 8
    title_topic_prob: float = 0.6
    title_offtopic_prob: float = 0.08
    # modalities: offset / signal / noise energies set so that item-to-item cosines sit in MiniLM's band
    text_signal: float = 0.0286
    text_offset: float = 0.0217
    text_noise: float = 0.039
    image_signal: float = 0.0828
    image_offset: float = 0.0665
    image_noise: float = 0.111
    # timeline (time runs over [0, 1])
    initial_item_share: float = 0.3      # items present at time 0
    late_item_share: float = 0.33        # items arriving after split_time (the valid/test period)
    split_time: float = 0.9              # train positives before it, valid/test positives after it
    start_time: float = 0.1              # earliest positive of a train user
    history_window: float = 0.05         # a user's history events lie in [t_pos - window, t_pos)
    # users and histories
    user_topic_probs: Tuple[float, ...] = (0.5, 0.35, 0.15)           # P(1, 2, 3 long-term topics)
    min_hist_len: int = 3
    hist_len_mu: float = 1.25
    hist_len_sigma: float = 0.95
    # next-item process
    next_item_mix: Tuple[float, ...] = (0.08, 0.3, 0.62)  # P(popularity, long-term interest, sequential)
    pop_alpha: float = 1.0               # popularity exponent of the popularity and interest components
    freshness_boost: float = 3.0         # weight x (1 + boost * exp(-(t - arrival) / tau)) for new items
    freshness_tau: float = 0.02
    recent_k: int = 5                    # the sequential component looks at the last recent_k items
    recency_decay: float = 0.5           # weight of the k-th most recent item ~ decay ** (k - 1)
    num_neighbors: int = 32              # content neighbours per item (within its topic)
    neighbor_temp: float = 10.0          # neighbour weight ~ exp(neighbor_temp * latent cosine)
    # negatives
    num_negatives: int = 3
    negative_power: float = 0.5          # negatives ~ popularity ** power over items available at t (0 = uniform)

    def __post_init__(self) -> None:
        _coerce_fields(self)
        _check_item_side(self)
        _require(self, ("num_train", "num_valid", "num_test", "recent_k", "num_neighbors", "num_negatives"),
                 lambda v: v >= 1, ">= 1")
        _require(self, ("pop_alpha", "freshness_boost", "neighbor_temp", "negative_power", "hist_len_sigma"),
                 lambda v: v >= 0, ">= 0")
        _require(self, ("initial_item_share", "late_item_share"), lambda v: 0.0 <= v <= 1.0, "in [0, 1]")
        if self.initial_item_share + self.late_item_share > 1.0:
            raise ConfigError("SeqNegConfig.initial_item_share + late_item_share must be <= 1, got "
                              f"{self.initial_item_share} + {self.late_item_share}")
        if not 0.0 < self.start_time < self.split_time < 1.0:
            raise ConfigError(f"SeqNegConfig needs 0 < start_time < split_time < 1, got start_time="
                              f"{self.start_time}, split_time={self.split_time}")
        if not 0.0 < self.history_window <= self.start_time:
            raise ConfigError(f"SeqNegConfig.history_window must lie in (0, start_time={self.start_time}], "
                              f"got {self.history_window}")
        if self.freshness_tau < 0.005:   # exp(1 / tau) must stay far inside float64 range
            raise ConfigError(f"SeqNegConfig.freshness_tau must be >= 0.005, got {self.freshness_tau}")
        if not 0.0 < self.recency_decay <= 1.0:
            raise ConfigError(f"SeqNegConfig.recency_decay must lie in (0, 1], got {self.recency_decay}")
        if len(self.next_item_mix) != 3 or self.next_item_mix[0] + self.next_item_mix[1] <= 0:
            raise ConfigError("SeqNegConfig.next_item_mix needs 3 entries (popularity, interest, sequential) with "
                              f"popularity + interest > 0 (the first item has no history), got {self.next_item_mix}")

    @property
    def latent_dim(self) -> int:
        """Width of the item latent vector (shared + text-only + image-only)."""
        return self.shared_dim + self.text_only_dim + self.image_only_dim

    @property
    def group_size(self) -> int:
        """Rows per user: the positive and its negatives."""
        return self.num_negatives + 1

    def num_groups(self, split: str) -> int:
        """Users of ``split`` (the last one may hold fewer than ``group_size`` rows)."""
        rows = {"train": self.num_train, "valid": self.num_valid, "test": self.num_test}[split]
        return -(-rows // self.group_size)

    @property
    def num_users(self) -> int:
        """Users over the three splits (each user has exactly one positive, in one split)."""
        return sum(self.num_groups(s) for s in ("train", "valid", "test"))

    def to_dict(self) -> Dict[str, Any]:
        """JSON-friendly dict of every field (tuples become lists)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}


WorldConfig = Union[SynthConfig, SeqNegConfig]

PRESETS: Mapping[str, SynthConfig] = types.MappingProxyType({
    "tiny": SynthConfig(name="tiny", num_items=400, num_users=300, num_train=4000, num_valid=1000, num_test=1000,
                        num_tags=200, num_topics=5),
    "small": SynthConfig(name="small", num_items=8000, num_users=30000, num_train=200_000, num_valid=10_000,
                         num_test=10_000, num_tags=1500, num_topics=20),
    "full": SynthConfig(name="full", num_items=91_717, num_users=1_000_000, num_train=3_600_000,
                        num_valid=10_000, num_test=379_142, num_tags=11_740, num_topics=20),
})

SEQNEG_PRESETS: Mapping[str, SeqNegConfig] = types.MappingProxyType({
    "tiny": SeqNegConfig(name="tiny", num_items=400, num_train=4000, num_valid=1000, num_test=1000, num_tags=200,
                         num_topics=5),
    "small": SeqNegConfig(name="small", num_items=8000, num_train=200_000, num_valid=10_000, num_test=10_000,
                          num_tags=1500, num_topics=20),
    "full": SeqNegConfig(name="full", num_items=91_717, num_train=3_600_000, num_valid=10_000, num_test=379_142,
                         num_tags=11_740, num_topics=20),
})


class World(NamedTuple):
    """What identifies a world: its config class, presets, generator version and dataset-id prefix."""

    config_cls: Type[Any]
    presets: Mapping[str, Any]
    version: str
    dataset_prefix: str


WORLDS: Mapping[str, World] = types.MappingProxyType({
    "microlens_synth": World(SynthConfig, PRESETS, GENERATOR_VERSION, "MicroLens_synth"),
    "seqneg": World(SeqNegConfig, SEQNEG_PRESETS, SEQNEG_GENERATOR_VERSION, "MicroLens_seqneg"),
})


def world_of(config: WorldConfig) -> str:
    """The world name of a config object (ConfigError for anything else)."""
    for name, world in WORLDS.items():
        if isinstance(config, world.config_cls):
            return name
    raise ConfigError(f"expected a SynthConfig or SeqNegConfig, got {type(config).__name__}")


def config_hash(config: WorldConfig) -> str:
    """sha256 of the canonical JSON of the config plus the generator version (the cache key)."""
    version = WORLDS[world_of(config)].version
    payload = json.dumps({"generator": version, "config": config.to_dict()}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def vocab_sizes(config: WorldConfig) -> Dict[str, int]:
    """Vocabulary sizes for the FuxiCTR YAML (every size >= max id + 1)."""
    return {"item_id": config.num_items + 1, "item_tags": config.num_tags, "likes_level": LEVEL_VOCAB,
            "views_level": LEVEL_VOCAB, "user_id": config.num_users + 1}


def make_config(preset: str = "tiny", seed: Optional[int] = None, *, world: str = DEFAULT_WORLD,
                **overrides: Any) -> WorldConfig:
    """A preset of ``world`` with an optional seed and field overrides; unknown names raise ConfigError."""
    if world not in WORLDS:
        raise ConfigError(f"unknown synthetic world '{world}'{did_you_mean(str(world), WORLDS)}; "
                          f"allowed worlds: {', '.join(WORLDS)}")
    spec = WORLDS[world]
    if preset not in spec.presets:
        raise ConfigError(f"unknown synthetic preset '{preset}'{did_you_mean(str(preset), spec.presets)}; "
                          f"allowed presets: {', '.join(spec.presets)}")
    names = [f.name for f in dataclasses.fields(spec.config_cls)]
    for key in overrides:
        if key not in names:
            raise ConfigError(f"unknown {spec.config_cls.__name__} override '{key}'{did_you_mean(key, names)}; "
                              f"allowed keys: {', '.join(names)}")
    if seed is not None:
        overrides["seed"] = seed
    return dataclasses.replace(spec.presets[preset], **overrides)
