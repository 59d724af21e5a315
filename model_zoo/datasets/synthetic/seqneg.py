"""World ``seqneg``: positive-only sequences, the latest interaction as the positive, sampled negatives, exact oracle.

Why. MicroLens interactions are public comments, a positive-only log; the challenge had no impressions to take
negatives from, and its 3.6M train rows with exactly 25 % positives for about 1M users fit "each user's latest
interaction as the positive plus three sampled negatives sharing its history" (inferred, not verified:
``shared/reference/microlens_mmctr.md`` sections 3 and 9). The published AUCs of 0.97-0.99 are those of such a task
(telling a user's real next item from sampled ones), while world ``microlens_synth`` (Bernoulli clicks on a score of
popularity, interest and content similarity) tops out at an oracle AUC of 0.876. This world rebuilds the task itself:
its rows are groups of one real next item and sampled negatives, its labels are exact, and the oracle is the
Bayes-optimal pointwise posterior, about 0.96 AUC on ``small``. Same files, columns, dtypes and conventions as
``model_zoo.schema``; its own dataset ids ``MicroLens_seqneg_*`` and generator version.

Process (every coefficient is a :class:`~.config.SeqNegConfig` field; time runs over [0, 1])
--------------------------------------------------------------------------------------------
Items. Topics, latents, log-popularity ``log_pop ~ N(0, pop_sigma^2)`` (popularity ``pop = exp(log_pop)``),
likes/views levels (equal-frequency buckets of popularity plus noise), tags and titles exactly as in
:mod:`.world` (:func:`~.world.make_item_content`). Arrival times: ``initial_item_share`` of the items exist at 0,
``late_item_share`` arrive uniformly in [split_time, 1) (the valid/test period), the rest uniformly in [0,
split_time); the lowest item id of every topic exists at 0. Item ids are independent of arrival. Item ``i`` is
*available* at time t when ``arrival_i <= t``; nothing can be chosen before it arrives.

Users. User u has 1..3 long-term topics (``user_topic_probs``; without replacement, proportional to topic size) with
Dirichlet(1) weights ``w_u``. Each user appears in exactly one split with exactly one positive: ``ceil(rows /
(num_negatives + 1))`` users per split. Its positive time ``t_pos`` is uniform in [start_time, split_time) for train
and in [split_time, 1) for valid and test (so valid/test come later in time; valid and test share one period). Its
history length L is ``min_hist_len + floor(exp(hist_len_mu + hist_len_sigma * N(0, 1)))`` clipped to ``seq_len``
(min 3, median 6, mean ~8, max 100, like the real item_seq.parquet); the L history events happen at sorted uniform
times in [t_pos - history_window, t_pos).

Next item. At each event (time t, previous items h = h_1..h_l, most recent h_l) the item is drawn from

    P(c | h, u, t) = pi_pop P_pop(c | t) + pi_int P_int(c | u, t) + pi_seq sum_k rho_k P_nb(c | h_{l+1-k}, t)

with ``(pi_pop, pi_int, pi_seq) = next_item_mix`` (renormalised without the sequential part when l = 0), and

* ``W_t(c) = pop_c^pop_alpha * (1 + freshness_boost * exp(-(t - arrival_c) / freshness_tau))`` for available c, 0
  otherwise: popularity with a decaying boost for new items;
* ``P_pop(c | t) = W_t(c) / sum_i W_t(i)``: popularity over everything available;
* ``P_int(c | u, t) = w_u[topic(c)] * W_t(c) / sum_{i in topic(c)} W_t(i)``: long-term interests;
* ``rho_k ~ recency_decay^(k-1)`` over the min(recent_k, l) most recent items (recency decay), and
  ``P_nb(c | j, t) = nbw_j(c) / sum of nbw_j over j's available neighbours``, where j's neighbours are the
  ``num_neighbors`` items of its topic with the highest latent cosine and ``nbw_j(c) = exp(neighbor_temp * (cos(j,
  c) - 1)) * pop_c^pop_alpha``: short-term drift to content similar to the last few items. If none of j's
  neighbours has arrived yet, ``P_nb(. | j, t) = W_t(.)`` restricted to topic(j), normalised.

Items may repeat within a history (MicroLens users comment on a video more than once). Every normaliser is exact:
prefix sums of ``pop^alpha`` and ``pop^alpha * exp((arrival - 1) / tau)`` in arrival order (globally and per topic)
give ``sum W_t`` for any t, and each draw inverts the same cumulative sums, so the sampler draws from exactly the
distribution :func:`next_item_prob` evaluates (tests compare both to a brute-force sum over all items and to
Monte-Carlo frequencies).

Rows. The user's last event (at t_pos) is the positive c+; ``num_negatives`` = k negatives are i.i.d. draws from
``Q_t(c) = pop_c^negative_power / sum over items available at t_pos`` (0.5: popularity-tempered; 0: uniform), with
replacement and without excluding the positive, the history or each other (what makes the posterior below exact).
The k + 1 rows of a user share its ``item_seq`` (the L history items, left-padded with 0 to 100, most recent last)
and ``user_id``; their ``item_id`` is the candidate, likes/views are the candidate's; label 1 for c+. Groups are in
time order within a split, rows of a group in random order; user ids are a random permutation. The last group of a
split may be shorter (e.g. 379,142 test rows = 94,785 groups of 4 + one of 2), with fewer negatives.

Oracle. A row is a random member of its exchangeable group, so for a row with history h, candidate c, user u,
time t and k negatives in its group: ``P(label = 1 | h, c, u, t, k) = P(c | h, u, t) / (P(c | h, u, t) + k Q_t(c))``
(``p_click`` in ``oracle_valid.parquet`` / ``oracle_test.parquet``). It conditions on the row's history and
candidate *and* on hidden variables a model never sees: the user's long-term topics and weights, and t_pos (which
fixes the available items and the freshness boost). It does not condition on the other rows of the group: a model
that compares the k + 1 rows sharing a history can beat it; the group-wise posterior (``P(c) / Q(c)`` normalised
over the group) is recorded as ``oracle_group_auc``. Cold items: an item never in train (neither as a train
candidate nor in a train history), the zoo's definition; ``cold_target_share`` reports their share of valid/test
rows and of distinct valid/test candidates (``late_item_share`` mainly sets it).

Modalities. As in :mod:`.world` (text 768-d "BERT-like", image 1024-d "CLIP-like": offset + signal * W latent +
noise), with energies set so that item-to-item cosines sit in a narrow positive band like real encoders. Calibration:
1,000 random MicroLens-50k titles (``shared/data/microlens-50k-titles``, seed 0) encoded once with the real
all-MiniLM-L6-v2 (:class:`model_zoo.embeddings.encoders.MiniLMTextEncoder`) give random-pair cosines p5 0.021, p25
0.107, p50 0.170, p75 0.236, p95 0.337 (mean 0.173); each title's nearest other title has median cosine 0.50, the
mean of its 10 nearest 0.43 (``benchmarks/bench_cosine_band.py``). ``small`` gives, text / image: random pairs p5
0.027 / 0.033, p50 0.171 / 0.174, p95 0.345 / 0.354; positive vs. its recent history items p50 0.37 / 0.38; negative
vs. history p50 0.17 / 0.17 (the image band copies the text band: no CLIP weights are available offline).
``item_emb_d128`` and ``item_emb.parquet`` are the PCA variants of :mod:`model_zoo.embeddings.pca` as in the first
world.

Measured on ``small`` (seed 2025; 8,000 items, 55,000 users, 200k / 10k / 10k rows, 7 s on a 2-core CPU, 0.9 GB
peak RSS): positive rate 0.25; oracle AUC valid 0.961 / test 0.964 (group-wise 0.990 / 0.991); popularity alone
0.671 / 0.673; a history-blind per-item train CTR 0.688 / 0.684; cold targets 19.9 % / 20.0 % of rows (24 % of
distinct candidates). ``full`` (91,717 items, 997,286 users; the simulation alone takes about 45 s and 1.7 GB):
oracle 0.965 / 0.967, group-wise 0.993 / 0.994, popularity alone 0.677, cold 20 % of rows.

Assumptions (the real procedure is unknown): negatives popularity^0.5 over items available at the positive's time,
i.i.d. with replacement (the real sampler may have excluded seen items: that would change Q, not the layout); a
user-level split ordered by time with valid and test from one later period; no history longer than 100; time is
abstract (no timestamps are written); popularity is a fixed latent per item (no feedback from interactions).

Determinism: one ``SeedSequence`` per seed spawned into named streams; neighbour search single-threaded; fixed
parquet writer options (:mod:`.writers`): the same config and seed give byte-identical files.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Tuple

import numpy as np
from threadpoolctl import threadpool_limits

from model_zoo.embeddings.pca import pca_variants
from model_zoo.schema import E4_SPLIT, ITEM_EMB_DIM, SPLITS

from . import writers
from ._common import ROW_CHUNK, Stages, Streams, auc, chunks, len_stats, percentiles
from .config import SEQNEG_GENERATOR_VERSION, SeqNegConfig, config_hash, vocab_sizes
from .world import ItemContent, explained_variance, make_item_content, make_modalities, make_titles

__all__ = ["Catalog", "Users", "SplitDraw", "SeqNegState", "build_catalog", "simulate", "next_item_prob",
           "negative_prob", "oracle_prob", "split_oracle", "sample_next", "sample_negatives", "progress_total",
           "generate_into"]

STREAM_NAMES = ("topics", "items", "tags", "titles", "text", "image", "arrival", "users", "train", "valid", "test",
                "negatives_train", "negatives_valid", "negatives_test", "stats")
_STATS_PAIRS = 20_000      # item pairs sampled for the cosine statistics in the manifest


# ----------------------------------------------------------------------------------------------------------------
# State
# ----------------------------------------------------------------------------------------------------------------

@dataclass
class Catalog:
    """Everything the next-item process and the negative sampler need about items; index 0 = padding item.

    Weights: ``w = popularity ** pop_alpha``, ``fresh = exp((arrival - 1) / tau)``, ``q = popularity **
    negative_power`` (popularity = exp(log_pop)). The weight of an available item at time t is
    ``w * (1 + g(t) * fresh)`` with ``g(t) = boost * exp((1 - t) / tau)``, i.e. ``w * (1 + boost * exp(-(t -
    arrival) / tau))``; prefix sums of ``w`` and ``w * fresh`` in arrival order give every normaliser exactly.
    """

    topic: np.ndarray            # (I+1,) int64, -1 at 0
    arrival: np.ndarray          # (I+1,) float64, +inf at 0 (never available)
    log_pop: np.ndarray          # (I+1,)
    w: np.ndarray                # (I+1,) float64, 0 at 0
    fresh: np.ndarray            # (I+1,) float64, 0 at 0
    q: np.ndarray                # (I+1,) float64, 0 at 0
    by_arrival: np.ndarray       # (I,) item ids in arrival order (ties by id)
    arr_sorted: np.ndarray       # (I,) arrivals along by_arrival
    cum_w: np.ndarray            # (I,) prefix sums along by_arrival
    cum_wf: np.ndarray
    cum_q: np.ndarray
    by_topic: np.ndarray         # (I,) item ids sorted by (topic, arrival, id)
    topic_arr: np.ndarray        # (I,) arrivals along by_topic
    seg_start: np.ndarray        # (T,) first position of each topic in by_topic
    seg_end: np.ndarray          # (T,) one past its last position
    tcum_w: np.ndarray           # (I,) prefix sums along by_topic, restarting at each topic segment
    tcum_wf: np.ndarray
    nbr: np.ndarray              # (I+1, M) int64 content neighbours (0 = none)
    nbr_w: np.ndarray            # (I+1, M) float64 exp(temp * (cos - 1)) * w of each neighbour, 0 for none
    boost: float
    tau: float

    def g(self, t: np.ndarray) -> np.ndarray:
        """Freshness factor g(t) = boost * exp((1 - t) / tau)."""
        return self.boost * np.exp((1.0 - t) / self.tau)


@dataclass
class Users:
    """Long-term interests, indexed by the internal user index (train users first, then valid, then test)."""

    topics: np.ndarray           # (U, S) distinct topic ids
    weights: np.ndarray          # (U, S) float64 topic weights (0 for unused slots), rows sum to 1
    cum: np.ndarray              # (U, S) cumulative weights, exactly 1 from the last used slot on
    user_id: np.ndarray          # (U,) int64 written user_id - 1 (a random permutation)


@dataclass
class SplitDraw:
    """One split: its users' sequences, rows, labels and oracle."""

    first_user: int              # internal index of the split's first user
    hist_len: np.ndarray         # (G,) history length L per user (group)
    hist_off: np.ndarray         # (G + 1,) user g's history is hist[hist_off[g]:hist_off[g + 1]] (oldest first)
    hist: np.ndarray             # (sum L,) int64 item ids
    t_pos: np.ndarray            # (G,) time of the positive (the user's latest interaction)
    positive: np.ndarray         # (G,) positive item id
    row_group: np.ndarray        # (n,) group (user) of each row
    candidate: np.ndarray        # (n,) item id of each row
    label: np.ndarray            # (n,) int64
    num_neg: np.ndarray          # (G,) negatives in the group (num_negatives, fewer only in a split's last group)
    p_next: np.ndarray | None = None   # (n,) P(next item = candidate | history, user, t_pos), valid/test only
    q: np.ndarray | None = None        # (n,) Q_{t_pos}(candidate), valid/test only
    oracle: np.ndarray | None = None   # (n,) P(label = 1 | row) = p_next / (p_next + num_neg * q), valid/test only


@dataclass
class SeqNegState:
    """The generative process's full state (what :func:`generate_into` writes, plus the hidden variables)."""

    config: SeqNegConfig
    content: ItemContent
    catalog: Catalog
    users: Users
    splits: Dict[str, SplitDraw]


# ----------------------------------------------------------------------------------------------------------------
# Catalog: arrivals, weights, prefix sums, neighbours
# ----------------------------------------------------------------------------------------------------------------

def _arrivals(cfg: SeqNegConfig, topic: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(I,) arrival times: initial items at 0, late items in [split, 1), the rest in [0, split)."""
    n = topic.shape[0]
    perm = rng.permutation(n)
    n_init = int(round(n * cfg.initial_item_share))
    n_late = int(round(n * cfg.late_item_share))
    arrival = np.zeros(n)
    late = perm[n_init: n_init + n_late]
    mid = perm[n_init + n_late:]
    arrival[late] = cfg.split_time + (1.0 - cfg.split_time) * rng.random(late.shape[0])
    arrival[mid] = cfg.split_time * rng.random(mid.shape[0])
    # the lowest item id of every topic is there from the start, so every topic can always be drawn from
    arrival[np.unique(topic, return_index=True)[1]] = 0.0
    return arrival


def _neighbors(cfg: SeqNegConfig, content: ItemContent) -> Tuple[np.ndarray, np.ndarray]:
    """Each item's ``num_neighbors`` nearest items of its own topic by latent cosine, and their weights.

    Ordered by (cosine descending, id); weight ``exp(neighbor_temp * (cos - 1))``. Computed single-threaded in
    float64 so the same machine always gives the same lists.
    """
    n_items, m_max = cfg.num_items, cfg.num_neighbors
    nbr = np.zeros((n_items + 1, m_max), dtype=np.int64)
    nbr_w = np.zeros((n_items + 1, m_max), dtype=np.float64)
    with threadpool_limits(limits=1, user_api="blas"):
        for topic in range(cfg.num_topics):
            ids = np.flatnonzero(content.topic == topic) + 1
            m = min(m_max, ids.shape[0] - 1)
            if m < 1:
                continue
            unit = content.unit[ids].astype(np.float64)
            for a, b in chunks(ids.shape[0], 1024):
                sims = unit[a:b] @ unit.T                                 # (b-a, n_topic)
                sims[np.arange(b - a), np.arange(a, b)] = -np.inf         # not its own neighbour
                part = np.argpartition(-sims, m - 1, axis=1)[:, :m]
                part_sims = np.take_along_axis(sims, part, axis=1)
                order = np.lexsort((ids[part], -part_sims), axis=-1)
                part = np.take_along_axis(part, order, axis=1)
                part_sims = np.take_along_axis(part_sims, order, axis=1)
                nbr[ids[a:b], :m] = ids[part]
                nbr_w[ids[a:b], :m] = np.exp(cfg.neighbor_temp * (part_sims - 1.0))
    return nbr, nbr_w


def build_catalog(cfg: SeqNegConfig, content: ItemContent, rng: np.random.Generator) -> Catalog:
    """Arrival times, sampling weights, prefix sums and content neighbours of every item (stream "arrival")."""
    n = cfg.num_items
    topic = np.concatenate([[-1], content.topic]).astype(np.int64)
    arrival = np.concatenate([[np.inf], _arrivals(cfg, content.topic, rng)])
    pop_log = content.log_pop
    w = np.zeros(n + 1)
    q = np.zeros(n + 1)
    fresh = np.zeros(n + 1)
    w[1:] = np.exp(cfg.pop_alpha * pop_log[1:])
    q[1:] = np.exp(cfg.negative_power * pop_log[1:])
    fresh[1:] = np.exp((arrival[1:] - 1.0) / cfg.freshness_tau)
    ids = np.arange(1, n + 1)
    by_arrival = ids[np.argsort(arrival[1:], kind="stable")]
    by_topic = ids[np.lexsort((ids, arrival[1:], topic[1:]))]
    counts = np.bincount(topic[1:], minlength=cfg.num_topics)
    seg_end = np.cumsum(counts)
    seg_start = seg_end - counts
    tcum_w = np.empty(n)
    tcum_wf = np.empty(n)
    for s, e in zip(seg_start, seg_end):   # segment-local sums keep full precision inside every topic
        seg = by_topic[s:e]
        tcum_w[s:e] = np.cumsum(w[seg])
        tcum_wf[s:e] = np.cumsum(w[seg] * fresh[seg])
    nbr, nbr_w = _neighbors(cfg, content)
    nbr_w *= w[nbr]                            # similar and popular: exp(temp * (cos - 1)) * popularity ** alpha
    return Catalog(topic=topic, arrival=arrival, log_pop=pop_log, w=w, fresh=fresh, q=q, by_arrival=by_arrival,
                   arr_sorted=arrival[by_arrival], cum_w=np.cumsum(w[by_arrival]),
                   cum_wf=np.cumsum(w[by_arrival] * fresh[by_arrival]), cum_q=np.cumsum(q[by_arrival]),
                   by_topic=by_topic, topic_arr=arrival[by_topic], seg_start=seg_start, seg_end=seg_end,
                   tcum_w=tcum_w, tcum_wf=tcum_wf, nbr=nbr, nbr_w=nbr_w, boost=cfg.freshness_boost,
                   tau=cfg.freshness_tau)


def _make_users(cfg: SeqNegConfig, content: ItemContent, rng: np.random.Generator) -> Users:
    """1..S long-term topics per user (without replacement, proportional to topic size) with Dirichlet(1) weights."""
    n_users, slots = cfg.num_users, len(cfg.user_topic_probs)
    k = rng.choice(np.arange(1, slots + 1), size=n_users, p=cfg.user_topic_probs)
    log_share = np.log(np.maximum(content.topic_share, 1e-12))
    topics = np.empty((n_users, slots), dtype=np.int64)
    for a, b in chunks(n_users, 250_000):       # Gumbel top-k
        keys = log_share[None, :] + rng.gumbel(size=(b - a, cfg.num_topics))
        topics[a:b] = np.argsort(-keys, axis=1, kind="stable")[:, :slots]
    weights = rng.exponential(size=(n_users, slots))
    used = np.arange(slots)[None, :] < k[:, None]
    weights[~used] = 0.0
    weights /= weights.sum(axis=1, keepdims=True)
    cum = np.cumsum(weights, axis=1)
    cum[np.arange(slots)[None, :] >= (k - 1)[:, None]] = 1.0
    user_id = rng.permutation(n_users).astype(np.int64)
    return Users(topics=topics, weights=weights, cum=cum, user_id=user_id)


# ----------------------------------------------------------------------------------------------------------------
# The next-item distribution P(. | history, user, t) and the negative distribution Q_t: probabilities and samplers
# ----------------------------------------------------------------------------------------------------------------

def _search_right(values: np.ndarray, lo: np.ndarray, hi: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Per element: the first index i in [lo, hi) with values[i] > x (hi if none); ``values`` sorted on [lo, hi)."""
    lo = lo.astype(np.int64, copy=True)
    hi = hi.astype(np.int64, copy=True)
    last = values.shape[0] - 1
    while True:
        open_ = lo < hi
        if not open_.any():
            return lo
        mid = (lo + hi) >> 1
        right = values[np.minimum(mid, last)] <= x
        lo = np.where(open_ & right, mid + 1, lo)
        hi = np.where(open_ & ~right, mid, hi)


def _below(total: np.ndarray, u: np.ndarray) -> np.ndarray:
    """u * total, kept strictly below total (inverse-CDF sampling never runs past the last item)."""
    return np.minimum(u * total, np.nextafter(total, 0.0))


def _topic_end(cat: Catalog, topic: np.ndarray, t: np.ndarray) -> np.ndarray:
    """One past the last position (in by_topic) of the items of ``topic`` available at ``t``."""
    return _search_right(cat.topic_arr, cat.seg_start[topic], cat.seg_end[topic], t)


def _p_pop(cat: Catalog, c: np.ndarray, t: np.ndarray, g: np.ndarray) -> np.ndarray:
    """P_pop(c | t) = w_c (1 + g(t) fresh_c) / sum over available items, 0 for items not yet arrived."""
    n = np.searchsorted(cat.arr_sorted, t, side="right")
    z = cat.cum_w[n - 1] + g * cat.cum_wf[n - 1]
    return np.where(cat.arrival[c] <= t, cat.w[c] * (1.0 + g * cat.fresh[c]), 0.0) / z


def _p_topic(cat: Catalog, c: np.ndarray, topic: np.ndarray, t: np.ndarray, g: np.ndarray) -> np.ndarray:
    """P_topic(c | topic, t): as P_pop but restricted to the items of ``topic``."""
    end = _topic_end(cat, topic, t) - 1
    z = cat.tcum_w[end] + g * cat.tcum_wf[end]
    ok = (cat.arrival[c] <= t) & (cat.topic[c] == topic)
    return np.where(ok, cat.w[c] * (1.0 + g * cat.fresh[c]), 0.0) / z


def _p_neighbor(cat: Catalog, c: np.ndarray, j: np.ndarray, t: np.ndarray, g: np.ndarray) -> np.ndarray:
    """P_nb(c | j, t): c among j's available neighbours by weight; P_topic(c | topic(j), t) if none is available."""
    nb = cat.nbr[j]                                                  # (n, M)
    wts = cat.nbr_w[j] * (cat.arrival[nb] <= t[:, None])
    z = wts.sum(axis=1)
    hit = (wts * (nb == c[:, None])).sum(axis=1)
    out = np.divide(hit, z, out=np.zeros_like(z), where=z > 0)
    none = z <= 0
    if none.any():
        out[none] = _p_topic(cat, c[none], cat.topic[j[none]], t[none], g[none])
    return out


def _recency(cfg: SeqNegConfig, hist_len: np.ndarray) -> np.ndarray:
    """(n, K) recency weights rho_k ~ decay ** k over the min(K, L) most recent positions (k = 0: the latest)."""
    k = np.arange(cfg.recent_k)
    rho = np.where(k[None, :] < np.minimum(hist_len, cfg.recent_k)[:, None], cfg.recency_decay ** k[None, :], 0.0)
    total = rho.sum(axis=1, keepdims=True)
    return np.divide(rho, total, out=np.zeros_like(rho), where=total > 0)


def _mixture(cfg: SeqNegConfig, hist_len: np.ndarray) -> np.ndarray:
    """(n, 3) component probabilities (popularity, interest, sequential); no sequential part without history."""
    mix = np.tile(np.asarray(cfg.next_item_mix, dtype=np.float64), (hist_len.shape[0], 1))
    mix[hist_len == 0, 2] = 0.0
    return mix / mix.sum(axis=1, keepdims=True)


def next_item_prob(cat: Catalog, cfg: SeqNegConfig, c: np.ndarray, recent: np.ndarray, hist_len: np.ndarray,
                   topics: np.ndarray, weights: np.ndarray, t: np.ndarray) -> np.ndarray:
    """P(next item = c | history, user, t) for n rows.

    Args:
        c: (n,) candidate item ids.
        recent: (n, K) the last K history items, most recent first (0 where the history is shorter).
        hist_len: (n,) history length L.
        topics, weights: (n, S) the user's long-term topics and their weights.
        t: (n,) the time of the interaction.
    """
    g = cat.g(t)
    mix = _mixture(cfg, hist_len)
    p = mix[:, 0] * _p_pop(cat, c, t, g)
    topic_c = cat.topic[c]
    slot_w = (weights * (topics == topic_c[:, None])).sum(axis=1)
    has = slot_w > 0
    p_int = np.zeros_like(p)
    if has.any():
        p_int[has] = slot_w[has] * _p_topic(cat, c[has], topic_c[has], t[has], g[has])
    p += mix[:, 1] * p_int
    rho = _recency(cfg, hist_len)
    for k in range(cfg.recent_k):
        on = rho[:, k] > 0
        if on.any():
            p[on] += mix[on, 2] * rho[on, k] * _p_neighbor(cat, c[on], recent[on, k], t[on], g[on])
    return p


def negative_prob(cat: Catalog, c: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Q_t(c) = q_c / sum of q over the items available at t (0 for items not yet arrived)."""
    n = np.searchsorted(cat.arr_sorted, t, side="right")
    return np.where(cat.arrival[c] <= t, cat.q[c], 0.0) / cat.cum_q[n - 1]


def oracle_prob(p_next: np.ndarray, q: np.ndarray, num_neg: np.ndarray) -> np.ndarray:
    """P(label = 1 | row) = P(c) / (P(c) + k Q(c)) for a group of one positive and k i.i.d. negatives."""
    return p_next / (p_next + num_neg * q)


def _sample_pop(cat: Catalog, t: np.ndarray, g: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF draw from P_pop(. | t): the base part (w) or the fresh part (w * fresh) by their masses."""
    n = np.searchsorted(cat.arr_sorted, t, side="right")
    base, fresh = cat.cum_w[n - 1], g * cat.cum_wf[n - 1]
    x = _below(base + fresh, u)
    in_base = x < base
    g_safe = np.where(g > 0, g, 1.0)
    pos = np.where(in_base, np.searchsorted(cat.cum_w, x, side="right"),
                   np.searchsorted(cat.cum_wf, (x - base) / g_safe, side="right"))
    return cat.by_arrival[np.minimum(pos, n - 1)]


def _sample_topic(cat: Catalog, topic: np.ndarray, t: np.ndarray, g: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF draw from P_topic(. | topic, t) within the topic's segment."""
    lo = cat.seg_start[topic]
    end = _topic_end(cat, topic, t)
    base, fresh = cat.tcum_w[end - 1], g * cat.tcum_wf[end - 1]
    x = _below(base + fresh, u)
    in_base = x < base
    pos = np.empty_like(lo)
    pos[in_base] = _search_right(cat.tcum_w, lo[in_base], end[in_base], x[in_base])
    fb = ~in_base
    pos[fb] = _search_right(cat.tcum_wf, lo[fb], end[fb], (x[fb] - base[fb]) / g[fb])
    return cat.by_topic[np.minimum(pos, end - 1)]


def _sample_neighbor(cat: Catalog, j: np.ndarray, t: np.ndarray, g: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Draw from P_nb(. | j, t) (topic fallback when no neighbour of j has arrived yet)."""
    nb = cat.nbr[j]
    wts = cat.nbr_w[j] * (cat.arrival[nb] <= t[:, None])
    cum = np.cumsum(wts, axis=1)
    z = wts.sum(axis=1)
    x = _below(cum[:, -1], u)
    pick = np.argmax(cum > x[:, None], axis=1)     # first neighbour whose cumulative weight passes x
    out = nb[np.arange(nb.shape[0]), pick]
    none = z <= 0
    if none.any():
        out[none] = _sample_topic(cat, cat.topic[j[none]], t[none], g[none], u[none])
    return out


def sample_next(cat: Catalog, cfg: SeqNegConfig, recent: np.ndarray, hist_len: np.ndarray, cum_slot: np.ndarray,
                topics: np.ndarray, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw from P(. | history, user, t) per row (arguments as :func:`next_item_prob`; ``cum_slot`` =
    :attr:`Users.cum`). Uses three uniforms per row: component, slot or position, item."""
    n = t.shape[0]
    u = rng.random((n, 3))
    g = cat.g(t)
    mix = _mixture(cfg, hist_len)
    comp = (u[:, 0] >= mix[:, 0]).astype(np.int64) + (u[:, 0] >= mix[:, 0] + mix[:, 1])
    comp[(hist_len == 0) & (comp == 2)] = 1           # rounding guard: no sequential draw without history
    out = np.zeros(n, dtype=np.int64)
    sel = comp == 0
    out[sel] = _sample_pop(cat, t[sel], g[sel], u[sel, 2])
    sel = comp == 1
    if sel.any():
        slot = (u[sel, 1][:, None] >= cum_slot[sel, :-1]).sum(axis=1)
        out[sel] = _sample_topic(cat, topics[sel, slot], t[sel], g[sel], u[sel, 2])
    sel = comp == 2
    if sel.any():
        cum_rho = np.cumsum(_recency(cfg, hist_len[sel]), axis=1)
        used = np.minimum(hist_len[sel], cfg.recent_k)
        cum_rho[np.arange(cfg.recent_k)[None, :] >= (used - 1)[:, None]] = 1.0   # never past the last used one
        k = (u[sel, 1][:, None] >= cum_rho[:, :-1]).sum(axis=1)
        out[sel] = _sample_neighbor(cat, recent[sel, k], t[sel], g[sel], u[sel, 2])
    return out


def sample_negatives(cat: Catalog, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One i.i.d. draw from Q_t per element of ``t``."""
    n = np.searchsorted(cat.arr_sorted, t, side="right")
    x = _below(cat.cum_q[n - 1], rng.random(t.shape[0]))
    return cat.by_arrival[np.minimum(np.searchsorted(cat.cum_q, x, side="right"), n - 1)]


# ----------------------------------------------------------------------------------------------------------------
# Sequences, rows, oracle
# ----------------------------------------------------------------------------------------------------------------

def _recent(hist: np.ndarray, end: np.ndarray, hist_len: np.ndarray, k: int) -> np.ndarray:
    """(n, k) items hist[end - 1], hist[end - 2], ... (most recent first), 0 past each history's start."""
    out = np.zeros((end.shape[0], k), dtype=np.int64)
    for i in range(k):
        ok = hist_len > i
        out[ok, i] = hist[end[ok] - 1 - i]
    return out


def _simulate_split(cfg: SeqNegConfig, cat: Catalog, users: Users, split: str, first_user: int,
                    rng: np.random.Generator, neg_rng: np.random.Generator) -> SplitDraw:
    """Sequences of the split's users, their positives and negatives, and the rows (groups in time order)."""
    n_rows = {"train": cfg.num_train, "valid": cfg.num_valid, "test": cfg.num_test}[split]
    n_users = cfg.num_groups(split)
    extra = np.floor(np.exp(cfg.hist_len_mu + cfg.hist_len_sigma * rng.standard_normal(n_users)))
    hist_len = np.clip(cfg.min_hist_len + np.minimum(extra, cfg.seq_len), cfg.min_hist_len, cfg.seq_len)
    hist_len = hist_len.astype(np.int64)
    lo, hi = (cfg.start_time, cfg.split_time) if split == "train" else (cfg.split_time, 1.0)
    t_pos = np.sort(lo + (hi - lo) * rng.random(n_users))
    # sequence of user g: steps 0..L-1 (history, at increasing times in [t_pos - window, t_pos)) and step L
    seq_off = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(hist_len + 1, out=seq_off[1:])
    owner = np.repeat(np.arange(n_users), hist_len + 1)
    step = np.arange(seq_off[-1]) - seq_off[owner]
    in_hist = step < hist_len[owner]
    v = rng.random(int(hist_len.sum()))
    v = v[np.lexsort((v, owner[in_hist]))]            # sorted within each user: history times increase
    times = t_pos[owner].copy()
    times[in_hist] -= cfg.history_window * (1.0 - v)
    items = np.zeros(seq_off[-1], dtype=np.int64)
    idx = first_user + np.arange(n_users)
    for j in range(int(hist_len.max()) + 1):
        act = np.flatnonzero(hist_len >= j)
        at = seq_off[act] + j
        recent = _recent(items, at, np.full(act.shape[0], j), cfg.recent_k)
        items[at] = sample_next(cat, cfg, recent, np.full(act.shape[0], j), users.cum[idx[act]],
                                users.topics[idx[act]], times[at], rng)
    positive = items[seq_off[1:] - 1]
    hist = items[in_hist]
    hist_off = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(hist_len, out=hist_off[1:])

    # groups: the positive plus num_negatives i.i.d. draws from Q_{t_pos}; the split's last group may be shorter
    size = np.full(n_users, cfg.group_size, dtype=np.int64)
    size[-1] = n_rows - (n_users - 1) * cfg.group_size
    num_neg = size - 1
    row_group = np.repeat(np.arange(n_users), size)
    is_pos = np.zeros(n_rows, dtype=bool)
    is_pos[np.cumsum(size) - size] = True
    candidate = np.empty(n_rows, dtype=np.int64)
    candidate[is_pos] = positive
    candidate[~is_pos] = sample_negatives(cat, t_pos[row_group[~is_pos]], neg_rng)
    order = np.lexsort((neg_rng.random(n_rows), row_group))    # rows of a group in random order
    return SplitDraw(first_user=first_user, hist_len=hist_len, hist_off=hist_off, hist=hist, t_pos=t_pos,
                     positive=positive, row_group=row_group[order], candidate=candidate[order],
                     label=is_pos[order].astype(np.int64), num_neg=num_neg)


def split_oracle(cfg: SeqNegConfig, cat: Catalog, users: Users, draw: SplitDraw) -> Tuple[np.ndarray, np.ndarray]:
    """(P(c | history, user, t_pos), Q_{t_pos}(c)) of every row of a split."""
    n = draw.candidate.shape[0]
    p_next = np.empty(n)
    q = np.empty(n)
    for a, b in chunks(n):
        grp = draw.row_group[a:b]
        user = draw.first_user + grp
        recent = _recent(draw.hist, draw.hist_off[grp + 1], draw.hist_len[grp], cfg.recent_k)
        p_next[a:b] = next_item_prob(cat, cfg, draw.candidate[a:b], recent, draw.hist_len[grp], users.topics[user],
                                     users.weights[user], draw.t_pos[grp])
        q[a:b] = negative_prob(cat, draw.candidate[a:b], draw.t_pos[grp])
    return p_next, q


def simulate(cfg: SeqNegConfig) -> SeqNegState:
    """Items, catalog, users and every split's sequences, rows and (valid/test) oracle; no files."""
    streams = Streams(cfg.seed, STREAM_NAMES)
    content = make_item_content(cfg, streams)
    cat = build_catalog(cfg, content, streams["arrival"])
    users = _make_users(cfg, content, streams["users"])
    splits: Dict[str, SplitDraw] = {}
    first = 0
    for split in SPLITS:
        draw = _simulate_split(cfg, cat, users, split, first, streams[split], streams[f"negatives_{split}"])
        if split != "train":
            draw.p_next, draw.q = split_oracle(cfg, cat, users, draw)
            draw.oracle = oracle_prob(draw.p_next, draw.q, draw.num_neg[draw.row_group])
        splits[split] = draw
        first += draw.hist_len.shape[0]
    return SeqNegState(config=cfg, content=content, catalog=cat, users=users, splits=splits)


# ----------------------------------------------------------------------------------------------------------------
# Writing and statistics
# ----------------------------------------------------------------------------------------------------------------

def _row_block(draw: SplitDraw, users: Users) -> writers.RowBlock:
    """The split's rows in the writers' layout (each row carries its group's whole history)."""
    grp = draw.row_group
    lengths = draw.hist_len[grp]
    offsets = np.zeros(grp.shape[0] + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    within = np.arange(offsets[-1]) - np.repeat(offsets[:-1], lengths)
    hist = draw.hist[np.repeat(draw.hist_off[grp], lengths) + within]
    return writers.RowBlock(users=users.user_id[draw.first_user + grp], lengths=lengths, offsets=offsets, hist=hist,
                            targets=draw.candidate)


def _cosines(unit: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine of items a[i] and b[i] given L2-normalised vectors ``unit`` (item ids 1..I at rows 0..I-1)."""
    out = np.empty(a.shape[0])
    for lo, hi in chunks(a.shape[0], 2048):
        out[lo:hi] = np.einsum("ij,ij->i", unit[a[lo:hi] - 1], unit[b[lo:hi] - 1])
    return out


def _cosine_stats(state: SeqNegState, text: np.ndarray, image: np.ndarray,
                  rng: np.random.Generator) -> Dict[str, Any]:
    """Cosine percentiles of random item pairs and of (candidate, recent history item) pairs in valid + test."""
    n = state.config.num_items
    a = rng.integers(1, n + 1, _STATS_PAIRS)
    b = rng.integers(1, n + 1, _STATS_PAIRS)
    keep = a != b
    pairs = {"random_pairs": (a[keep], b[keep])}
    for name, want in (("positive_vs_history", 1), ("negative_vs_history", 0)):
        cand, hist = [], []
        for split in ("valid", "test"):
            d = state.splits[split]
            rows = np.flatnonzero(d.label == want)
            grp = d.row_group[rows]
            recent = _recent(d.hist, d.hist_off[grp + 1], d.hist_len[grp], state.config.recent_k)
            ok = recent > 0
            cand.append(np.broadcast_to(d.candidate[rows][:, None], recent.shape)[ok])
            hist.append(recent[ok])
        c, h = np.concatenate(cand), np.concatenate(hist)
        pick = rng.permutation(c.shape[0])[:_STATS_PAIRS]
        pairs[name] = (c[pick], h[pick])
    out = {}
    for modality, vec in (("text", text), ("image", image)):
        unit = vec / np.linalg.norm(vec, axis=1, keepdims=True)
        out[modality] = {name: percentiles(_cosines(unit, x, y)) for name, (x, y) in pairs.items()}
    return out


def _baselines(state: SeqNegState) -> Dict[str, Any]:
    """Cold-target shares, and AUCs of popularity alone, of a per-item train CTR and of the group-wise posterior."""
    train = state.splits["train"]
    cat = state.catalog
    n_items = state.config.num_items
    seen = np.zeros(n_items + 1, dtype=bool)
    seen[train.hist] = True
    seen[train.candidate] = True
    rows = np.bincount(train.candidate, minlength=n_items + 1)
    pos = np.bincount(train.candidate, weights=train.label, minlength=n_items + 1)
    ctr = (pos + 1.0) / (rows + 4.0)          # Beta prior with mean 0.25 and weight 4
    out: Dict[str, Any] = {"cold_target_share": {}, "baseline_auc": {"popularity": {}, "train_item_ctr": {}},
                           "oracle_group_auc": {}}
    for split in ("valid", "test"):
        d = state.splits[split]
        cold = ~seen[d.candidate]
        out["cold_target_share"][split] = {
            "rows": round(float(cold.mean()), 4),
            "distinct_items": round(float((~seen[np.unique(d.candidate)]).mean()), 4)}
        out["baseline_auc"]["popularity"][split] = auc(d.label, cat.log_pop[d.candidate])
        out["baseline_auc"]["train_item_ctr"][split] = auc(d.label, ctr[d.candidate])
        # posterior that a row is its group's positive given all candidates of the group: ~ P(c) / Q(c)
        ratio = d.p_next / d.q
        group_total = np.bincount(d.row_group, weights=ratio)
        out["oracle_group_auc"][split] = auc(d.label, ratio / group_total[d.row_group])
    return out


def progress_total(cfg: SeqNegConfig) -> int:
    """Progress-bar steps of :func:`generate_into`."""
    chunks_total = sum(math.ceil(n / ROW_CHUNK) for n in (cfg.num_train, cfg.num_valid, cfg.num_test))
    # simulate, modalities, titles, pca, 3 item files, per split: write chunks (+ oracle for valid/test), stats, hashing
    return 4 + 3 + chunks_total + 2 + 2


def generate_into(cfg: SeqNegConfig, out: Path, bar: Any) -> Dict[str, Any]:
    """Generate every file of the world into ``out`` (a fresh directory) and return the manifest."""
    streams = Streams(cfg.seed, STREAM_NAMES)
    stage = Stages(bar)
    stage.start("simulate")
    state = simulate(cfg)
    bar.update(1)
    stage.start("modalities")
    text, image = make_modalities(cfg, state.content, streams)
    bar.update(1)
    titles = make_titles(cfg, state.content.topic, streams["titles"])
    bar.update(1)
    stage.start("pca")
    emb = pca_variants(text, image, dim=ITEM_EMB_DIM, v4_split=E4_SPLIT, seed=cfg.seed)
    bar.update(1)
    stage.start("item_files")
    content = state.content
    writers.write_item_files(out, tags=content.tags, likes=content.likes, views=content.views, titles=titles,
                             text=text, image=image, emb=emb, bar=bar)
    evr = explained_variance(emb)
    del emb, titles
    stats: Dict[str, Any] = {"rows": {}, "positive_rate": {}, "oracle_auc": {}, "mean_p_click": {}, "hist_len": {}}
    for split in SPLITS:
        stage.start(f"{split}_write")
        d = state.splits[split]
        rows = _row_block(d, state.users)
        writers.write_rows(out / f"{split}.parquet", rows, d.label, seq_len=cfg.seq_len, likes=content.likes,
                           views=content.views, bar=bar)
        if d.oracle is not None:
            writers.write_oracle(out / f"oracle_{split}.parquet", d.oracle)
            stats["oracle_auc"][split] = auc(d.label, d.oracle)
            stats["mean_p_click"][split] = round(float(d.oracle.mean()), 6)
            bar.update(1)
        if split == "test":
            writers.write_ground_truth(out / "ground_truth.csv", d.label)
        stats["rows"][split] = int(d.label.shape[0])
        stats["positive_rate"][split] = round(float(d.label.mean()), 6)
        stats["hist_len"][split] = len_stats(rows.lengths)
        del rows
    stage.start("stats")
    extra = _baselines(state)
    extra["cosine"] = _cosine_stats(state, text, image, streams["stats"])
    late = state.catalog.arrival[1:] >= cfg.split_time
    extra["timeline"] = {"late_items": int(late.sum()),
                         "items_at_time_0": int((state.catalog.arrival[1:] == 0).sum()),
                         "users": {s: int(state.splits[s].hist_len.shape[0]) for s in SPLITS}}
    bar.update(1)
    del text, image
    stage.start("sha256")
    files = writers.file_entries(out)
    bar.update(1)
    return {
        **writers.manifest_head(cfg, world="seqneg", dataset_prefix="MicroLens_seqneg",
                                version=SEQNEG_GENERATOR_VERSION, config_hash=config_hash(cfg), vocab=vocab_sizes(cfg)),
        **stats,
        **extra,
        "pca_explained_variance": evr,
        "files": files,
        "stage_seconds": stage.finish(),
    }
