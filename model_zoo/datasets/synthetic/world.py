"""World ``microlens_synth``: a seeded synthetic stand-in for MicroLens_1M_x1 (WWW 2025 MMCTR challenge, Task 2).

The real challenge files are no longer downloadable, so this module writes a *schema-identical* world under its own
dataset id: ``train/valid/test.parquet``, ``item_info.parquet``, ``item_feature.parquet`` and ``item_emb.parquet``
with exactly the challenge's columns, order, arrow types and padding conventions, plus the truth that the real data
never had: ``ground_truth.csv`` (``ID,label``), ``oracle_valid.parquet`` / ``oracle_test.parquet`` (the true click
probability of every row) and ``manifest.json`` (config, hashes, statistics). Numbers measured on it are never
MicroLens numbers.

Generative model (every coefficient is a :class:`~.config.SynthConfig` field)
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
writer options and no timestamps inside data files (:mod:`.writers`), so the same config and seed give byte-identical
files (the manifest's sha256 values match across runs). Caching, verification and the atomic publish of the world
directory are in :mod:`.cache`; the CLI is ``python -m model_zoo.apps.generate --world microlens_synth ...``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy as np

from model_zoo.embeddings.pca import pca_variants
from model_zoo.schema import E4_SPLIT, IMG_EMB_DIM, ITEM_EMB_DIM, ITEM_TAGS_LENGTH, NUM_LEVELS, SPLITS, TXT_EMB_DIM

from . import writers
from ._common import ROW_CHUNK, Stages, Streams, auc, chunks, len_stats, sigmoid
from .config import GENERATOR_VERSION, SynthConfig, WorldConfig, config_hash, vocab_sizes

__all__ = ["TOPIC_WORDS", "FILLER_WORDS", "ItemContent", "make_item_content", "make_titles", "make_modalities",
           "explained_variance", "progress_total", "generate_into"]

TEXT_DIM, IMAGE_DIM, EMB_DIM, TAG_SLOTS = TXT_EMB_DIM, IMG_EMB_DIM, ITEM_EMB_DIM, ITEM_TAGS_LENGTH
STREAM_NAMES = ("topics", "items", "tags", "titles", "text", "image", "users", "train", "valid", "test",
                "label_train", "label_valid", "label_test")

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


# ----------------------------------------------------------------------------------------------------------------
# Internal state
# ----------------------------------------------------------------------------------------------------------------

@dataclass
class ItemContent:
    """Item-side arrays both worlds draw the same way; index 0 is the padding item where an array has I + 1 rows."""

    topic: np.ndarray            # (I,) topic of item id i+1
    latent: np.ndarray           # (I+1, D) float32, row 0 zeros
    unit: np.ndarray             # (I+1, D) float32, L2-normalised latent
    log_pop: np.ndarray          # (I+1,) float64
    likes: np.ndarray            # (I+1,) int64 levels 1..9 (0 at row 0)
    views: np.ndarray            # (I+1,) int64
    tags: np.ndarray             # (I, 5) int64, left-padded
    centroids: np.ndarray        # (T, D) float32
    topic_share: np.ndarray      # (T,) share of items per topic


@dataclass
class _Exposure:
    """Exposure sampler of this world: items sorted by topic, one cumulative weight array, a segment per topic."""

    order: np.ndarray            # (I,) 0-based item indices sorted by topic
    cum: np.ndarray              # (I,) cumulative exposure weight along `order`
    seg_start: np.ndarray        # (T,) first position of each topic in `order`
    seg_end: np.ndarray          # (T,) one past the last position
    seg_lo: np.ndarray           # (T,) cumulative weight before the topic segment
    seg_hi: np.ndarray           # (T,) cumulative weight at the end of the segment


@dataclass
class _Users:
    """User-side arrays indexed by user_id - 1."""

    topics: np.ndarray           # (U, 3) topic ids (unused slots repeat the first topic)
    cum_w: np.ndarray            # (U, 3) float32 cumulative topic weights (last = 1)
    interest: np.ndarray         # (U, D) float32
    cdf: np.ndarray              # (U,) float64 cumulative activity share


def _levels(values: np.ndarray) -> np.ndarray:
    """1..NUM_LEVELS equal-frequency buckets of ``values``."""
    edges = np.quantile(values, np.arange(1, NUM_LEVELS) / NUM_LEVELS)
    return (np.searchsorted(edges, values, side="right") + 1).astype(np.int64)


# ----------------------------------------------------------------------------------------------------------------
# Items, modalities, users
# ----------------------------------------------------------------------------------------------------------------

def make_item_content(cfg: WorldConfig, streams: Streams) -> ItemContent:
    """Topics, latents, popularity, levels and tags of every item (streams "topics", "items", "tags")."""
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
    tags = _make_tags(cfg, topic, streams["tags"])
    counts = np.bincount(topic, minlength=n_topics)
    return ItemContent(topic=topic, latent=latent, unit=unit, log_pop=log_pop, likes=likes, views=views, tags=tags,
                       centroids=centroids, topic_share=counts / n_items)


def _make_exposure(cfg: SynthConfig, items: ItemContent) -> _Exposure:
    """Items sorted by topic with cumulative exposure weights popularity ** exposure_alpha (no randomness)."""
    order = np.argsort(items.topic, kind="stable")
    weight = np.exp(cfg.exposure_alpha * (items.log_pop[1:] - items.log_pop[1:].max()))
    cum = np.cumsum(weight[order])
    counts = np.bincount(items.topic, minlength=cfg.num_topics)
    seg_end = np.cumsum(counts)
    seg_start = seg_end - counts
    seg_hi = cum[seg_end - 1]
    seg_lo = np.where(seg_start > 0, cum[np.maximum(seg_start - 1, 0)], 0.0)
    return _Exposure(order=order, cum=cum, seg_start=seg_start, seg_end=seg_end, seg_lo=seg_lo, seg_hi=seg_hi)


def _make_tags(cfg: WorldConfig, topic: np.ndarray, rng: np.random.Generator) -> np.ndarray:
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


def make_titles(cfg: WorldConfig, topic: np.ndarray, rng: np.random.Generator) -> List[str]:
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


def make_modalities(cfg: WorldConfig, items: ItemContent, streams: Streams) -> Tuple[np.ndarray, np.ndarray]:
    """Text (I × 768) and image (I × 1024) float32 embeddings (streams "text", "image")."""
    s, t = cfg.shared_dim, cfg.text_only_dim
    lat = items.latent[1:]
    text = _modality(lat[:, : s + t], TEXT_DIM, cfg.text_signal, cfg.text_offset, cfg.text_noise, streams["text"])
    image_part = np.concatenate([lat[:, :s], lat[:, s + t:]], axis=1)
    image = _modality(image_part, IMAGE_DIM, cfg.image_signal, cfg.image_offset, cfg.image_noise, streams["image"])
    return text, image


def _make_users(cfg: SynthConfig, items: ItemContent, rng: np.random.Generator) -> _Users:
    """Topic mixtures, interest vectors and activity of every user."""
    n_users, n_topics = cfg.num_users, cfg.num_topics
    slots = len(cfg.user_topic_probs)
    k = rng.choice(np.arange(1, slots + 1), size=n_users, p=cfg.user_topic_probs)
    # Topics without replacement, proportional to topic size (Gumbel top-k), in user chunks to bound memory.
    topics = np.empty((n_users, slots), dtype=np.int64)
    log_share = np.log(np.maximum(items.topic_share, 1e-12)).astype(np.float32)
    for a, b in chunks(n_users, 250_000):
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

def _draw_items(items: _Exposure, topic: np.ndarray, r: np.ndarray) -> np.ndarray:
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


def _draw_rows(cfg: SynthConfig, items: _Exposure, users: _Users, n: int,
               rng: np.random.Generator) -> writers.RowBlock:
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
    for a, b in chunks(n):
        lo, hi = offsets[a], offsets[b]
        rep_user = np.repeat(user_idx[a:b], lengths[a:b])
        topic = _user_topic(users, rep_user, cfg.hist_explore, rng)
        hist[lo:hi] = _draw_items(items, topic, rng.random(hi - lo))
    return writers.RowBlock(users=user_idx, lengths=lengths, offsets=offsets, hist=hist, targets=targets)


def _raw_terms(cfg: SynthConfig, items: ItemContent, users: _Users, rows: writers.RowBlock) -> np.ndarray:
    """(n, 3) unstandardised click terms: log-popularity, interest . latent, mean recent-history cosine."""
    n = rows.targets.shape[0]
    terms = np.empty((n, 3), dtype=np.float64)
    terms[:, 0] = items.log_pop[rows.targets]
    for a, b in chunks(n):
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
        if sigmoid(mid + score).mean() < rate:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-10:
            break
    return 0.5 * (lo + hi)




# ----------------------------------------------------------------------------------------------------------------
# The whole world
# ----------------------------------------------------------------------------------------------------------------

def progress_total(cfg: SynthConfig) -> int:
    """Progress-bar steps of :func:`generate_into`."""
    per_split = sum(math.ceil(n / ROW_CHUNK) for n in (cfg.num_train, cfg.num_valid, cfg.num_test))
    # items, modalities, titles, users, pca, 3 item files, per split: draw + label (2) + chunks, hashing
    return 8 + 2 * len(SPLITS) + per_split + 1


def generate_into(cfg: SynthConfig, out: Path, bar: Any) -> Dict[str, Any]:
    """Generate every file into ``out`` (a fresh directory) and return the manifest (without total time)."""
    streams = Streams(cfg.seed, STREAM_NAMES)
    stage = Stages(bar)
    stage.start("items")
    items = make_item_content(cfg, streams)
    exposure = _make_exposure(cfg, items)
    bar.update(1)
    stage.start("modalities")
    text, image = make_modalities(cfg, items, streams)
    bar.update(1)
    titles = make_titles(cfg, items.topic, streams["titles"])
    bar.update(1)
    stage.start("pca")
    emb = pca_variants(text, image, dim=EMB_DIM, v4_split=E4_SPLIT, seed=cfg.seed)
    bar.update(1)
    stage.start("item_files")
    writers.write_item_files(out, tags=items.tags, likes=items.likes, views=items.views, titles=titles, text=text,
                             image=image, emb=emb, bar=bar)
    evr = explained_variance(emb)
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
        rows = _draw_rows(cfg, exposure, users, sizes[split], streams[split])
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
        p = sigmoid(b0 + score)
        labels = (rng.random(p.shape[0]) < p).astype(np.int64)
        del terms, score
        bar.update(1)
        stage.start(f"{split}_write")
        writers.write_rows(out / f"{split}.parquet", rows, labels, seq_len=cfg.seq_len, likes=items.likes,
                           views=items.views, bar=bar)
        if split != "train":
            writers.write_oracle(out / f"oracle_{split}.parquet", p)
            stats["oracle_auc"][split] = auc(labels, p)
        if split == "test":
            writers.write_ground_truth(out / "ground_truth.csv", labels)
        stats["rows"][split] = int(labels.shape[0])
        stats["positive_rate"][split] = round(float(labels.mean()), 6)
        stats["mean_p_click"][split] = round(float(p.mean()), 6)
        stats["hist_len"][split] = len_stats(rows.lengths)
        del rows, p, labels

    stage.start("sha256")
    files = writers.file_entries(out)
    bar.update(1)
    return {
        **writers.manifest_head(cfg, world="microlens_synth", dataset_prefix="MicroLens_synth",
                                version=GENERATOR_VERSION, config_hash=config_hash(cfg), vocab=vocab_sizes(cfg)),
        **stats,
        "click_model": {"b0": b0, "terms": ["log_pop", "interest", "recent_sim"], "coef": coef.tolist(),
                        "term_mean": [float(v) for v in mean], "term_std": [float(v) for v in std]},
        "pca_explained_variance": evr,
        "files": files,
        "stage_seconds": stage.finish(),
    }


def explained_variance(emb: Dict[str, np.ndarray]) -> Dict[str, float]:
    """Total explained-variance ratio of each PCA variant (e4 split into its text and image halves)."""
    half = E4_SPLIT[0]
    evr = {"v1": emb["v1_evr"].sum(), "v2": emb["v2_evr"].sum(), "v3": emb["v3_evr"].sum(),
           "e4_text": emb["e4_evr"][:half].sum(), "e4_image": emb["e4_evr"][half:].sum()}
    return {k: round(float(v), 6) for k, v in evr.items()}
