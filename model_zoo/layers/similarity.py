"""Target-aware similarity features: per-modality cosines, their bucket ids and their tier histogram.

Used by DMF (``model_zoo/DMF``): DTA looks up an embedding per bucket id of the target-behaviour cosine, and the
SimTier-style pathway feeds a histogram of the same cosines to an MLP. Any model that compares a target with its
history in a frozen multimodal space can reuse these blocks.

Reference:
    Fan et al., "DMF: Decoupled Multimodal Fusion ...", arXiv:2510.11066 (bucketized similarity, "discretized
    embedding lookup"); Sheng et al., "Enhancing Taobao Display Advertising with Multimodal Representations"
    (SimTier + MAKE), CIKM 2024, arXiv:2407.19467 (similarity histogram).

Shapes: B rows (or N candidates), L history positions, K modalities, M = sum of the modality widths, n_b buckets,
n_t tiers. Similarities are laid out modality-major, ``(B, K, L)``, so each modality's block is contiguous.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["BUCKET_EDGE_MODES", "l2_normalize_segments", "segment_cosines", "gathered_cosines", "equal_width_edges",
           "quantile_edges", "SimilarityBucketizer", "SimilarityHistogram"]

BUCKET_EDGE_MODES = ("equal_width", "quantile")


def l2_normalize_segments(x: Tensor, dims: Sequence[int], eps: float = 1e-12) -> Tensor:
    """L2-normalise each modality segment of the last axis of ``x`` separately (an all-zero row stays zero).

    Args:
        x: (..., M) concatenated modality vectors.
        dims: width of each modality segment, summing to M.
        eps: floor of the norm.
    """
    if sum(dims) != x.shape[-1]:
        raise ValueError(f"dims={tuple(dims)} sum to {sum(dims)}; expected the last axis size {x.shape[-1]}")
    parts = torch.split(x, list(dims), dim=-1)
    return torch.cat([p / p.norm(dim=-1, keepdim=True).clamp_min(eps) for p in parts], dim=-1)


def segment_cosines(target: Tensor, history: Tensor, dims: Sequence[int]) -> Tensor:
    """Per-modality dot products of L2-normalised vectors (= cosines), clamped to [-1, 1].

    Two layouts: ``target`` (B, M) with a per-row ``history`` (B, L, M) -> (B, K, L); or ``target`` (N, M) with one
    ``history`` (L, M) shared by all N candidates (serving) -> (N, K, L).

    Example::

        s = segment_cosines(torch.randn(4, 6), torch.randn(4, 3, 6), dims=(2, 4))   # (4, 2, 3)
    """
    t_parts = torch.split(target, list(dims), dim=-1)
    h_parts = torch.split(history, list(dims), dim=-1)
    if history.dim() == 3:  # per-row history: batched matrix-vector products
        sims = [torch.bmm(h, t.unsqueeze(-1)).squeeze(-1) for t, h in zip(t_parts, h_parts)]  # K x (B, L)
    elif history.dim() == 2:  # one history for every candidate: one GEMM per modality
        sims = [t @ h.transpose(0, 1) for t, h in zip(t_parts, h_parts)]  # K x (N, L)
    else:
        raise ValueError(f"history.dim()={history.dim()}; expected 3 (B, L, M) or 2 (L, M)")
    return torch.stack(sims, dim=1).clamp_(-1.0, 1.0)  # (B, K, L)


def gathered_cosines(table: Tensor, target_ids: Tensor, history_ids: Tensor, mask: Tensor, dims: Sequence[int],
                     chunk_size: int = 4096) -> Tensor:
    """Per-modality cosines between the ``table`` rows of each target and of its **valid** history items.

    Same values as :func:`segment_cosines` on the gathered rows, but only the valid (row, position) pairs are
    gathered, ``chunk_size`` pairs at a time: histories are mostly padding, and gathering every (B, L + 1, M) row
    dominated the training step. Padded positions get 0 (callers mask them anyway).

    Args:
        table: (I + 1, M) L2-normalised modality vectors by item id.
        target_ids: (B,) target item ids.
        history_ids: (B, L) history item ids.
        mask: (B, L), 1 = valid.
        dims: modality widths, summing to M.
        chunk_size: pairs gathered at once: bounds the temporaries to 2 * chunk_size * M floats (4096 x 1792
            floats = 29 MB each, under glibc's 32 MB mmap ceiling, so the buffers are reused, not re-faulted).

    Returns:
        (B, K, L) cosines clamped to [-1, 1].

    Example::

        table = l2_normalize_segments(torch.randn(10, 6), (2, 4))
        s = gathered_cosines(table, torch.tensor([1, 2]), torch.tensor([[0, 3], [4, 5]]), torch.tensor(
            [[0.0, 1.0], [1.0, 1.0]]), dims=(2, 4))   # (2, 2, 2)
    """
    rows, cols = (mask > 0).nonzero(as_tuple=True)  # P valid pairs
    hist_ids, tgt_ids = history_ids[rows, cols], target_ids[rows]  # (P,), (P,)
    sims = table.new_empty(len(hist_ids), len(dims))  # (P, K)
    for start in range(0, len(hist_ids), chunk_size):
        part = slice(start, start + chunk_size)
        prod = table.index_select(0, hist_ids[part]).mul_(table.index_select(0, tgt_ids[part]))  # (c, M)
        sims[part] = torch.stack([p.sum(-1) for p in prod.split(list(dims), dim=-1)], dim=-1)
    out = table.new_zeros(history_ids.shape[0], len(dims), history_ids.shape[1])  # (B, K, L)
    out[rows, :, cols] = sims
    return out.clamp_(-1.0, 1.0)


def equal_width_edges(num_bins: int, low: float = -1.0, high: float = 1.0) -> Tensor:
    """The ``num_bins - 1`` interior edges of equal-width bins on [low, high]: (num_bins - 1,) float32."""
    if num_bins < 2:
        raise ValueError(f"num_bins={num_bins}; expected an integer >= 2")
    return torch.linspace(low, high, num_bins + 1, dtype=torch.float64)[1:-1].float()


def quantile_edges(similarities: np.ndarray | Tensor, num_buckets: int) -> Tensor:
    """Interior edges at the k / n_b quantiles of ``similarities`` (any shape), strictly increasing in (-1, 1].

    Each edge lies **between** two fitted values (the midpoint of the order statistics on either side of the k / n_b
    quantile), never on one: a cosine that equals a fitted value (the same item pair, often seen again at evaluation)
    would otherwise sit exactly on an edge, where the last-bit rounding difference between two ways of computing it
    (the training path's gathered dot products, the serving path's GEMM) flips its bucket. Ties (many identical
    cosines) move the edge to the midpoint above the tied value; any remaining equal edges are nudged just above
    their predecessor so that ``bucketize`` stays well defined (such a bucket is simply narrow).
    """
    values = np.asarray(similarities.cpu() if isinstance(similarities, Tensor) else similarities,
                        dtype=np.float64).reshape(-1)
    if values.size == 0:
        raise ValueError("quantile_edges: no similarity values to fit on (is every sampled history empty?)")
    if num_buckets < 2:
        raise ValueError(f"num_buckets={num_buckets}; expected an integer >= 2")
    ordered = np.sort(np.clip(values, -1.0, 1.0))
    count = len(ordered)
    below = np.clip(np.rint(np.arange(1, num_buckets) / num_buckets * count).astype(np.int64), 1, max(count - 1, 1))
    lo, hi = ordered[below - 1], ordered[np.minimum(below, count - 1)]
    above_tie = np.searchsorted(ordered, hi, side="right")  # first value above a tied one
    next_distinct = np.where(above_tie < count, ordered[np.minimum(above_tie, count - 1)], 1.0)
    edges64 = np.where(hi > lo, (lo + hi) / 2, (hi + next_distinct) / 2)
    edges = edges64.astype(np.float32)
    lowest = np.nextafter(np.float32(-1.0), np.float32(1.0))
    edges[0] = max(edges[0], lowest)  # s = -1 must stay in bucket 0
    for i in range(1, len(edges)):
        if edges[i] <= edges[i - 1]:
            edges[i] = np.nextafter(edges[i - 1], np.float32(2.0))
    return torch.from_numpy(edges)


class SimilarityBucketizer(nn.Module):
    """Maps per-modality cosines to bucket ids, one edge vector per modality.

    Bucket ``k`` of modality ``j`` is ``[edges[j, k-1], edges[j, k])``; s = -1 falls in bucket 0 and s = +1 in bucket
    ``num_buckets - 1`` exactly, and the id is monotone in s. ``edges`` is a persistent buffer: quantile edges fitted
    on training data travel with the checkpoint. With ``offset_by_modality`` the ids of modality j are shifted by
    ``j * num_buckets``, so K per-modality tables can live in one ``(K * n_b, D)`` embedding.

    Args:
        num_modalities: K.
        num_buckets: n_b >= 2.
        mode: ``"equal_width"`` (edges on [-1, 1], ready at once) or ``"quantile"`` (call :meth:`fit` first).

    Example::

        bucketizer = SimilarityBucketizer(num_modalities=2, num_buckets=8)
        ids = bucketizer(torch.rand(4, 2, 5) * 2 - 1)   # (4, 2, 5) long in [0, 8)
    """

    def __init__(self, num_modalities: int, num_buckets: int, mode: str = "equal_width") -> None:
        super().__init__()
        if mode not in BUCKET_EDGE_MODES:
            raise ValueError(f"bucket_edges={mode!r}; expected one of {BUCKET_EDGE_MODES}")
        if num_modalities < 1:
            raise ValueError(f"num_modalities={num_modalities}; expected an integer >= 1")
        self.num_modalities, self.num_buckets, self.mode = num_modalities, num_buckets, mode
        edges = equal_width_edges(num_buckets).expand(num_modalities, -1).clone()  # (K, n_b - 1)
        if mode == "quantile":
            edges.fill_(float("nan"))  # unfitted
        self.register_buffer("edges", edges)
        offsets = torch.arange(num_modalities).view(1, num_modalities, 1) * num_buckets
        self.register_buffer("offsets", offsets, persistent=False)  # (1, K, 1)
        self.fitted = mode == "equal_width"

    def fit(self, similarities: Sequence[np.ndarray | Tensor]) -> None:
        """Fit quantile edges, one modality at a time (``similarities[j]``: any shape, valid pairs only)."""
        if len(similarities) != self.num_modalities:
            raise ValueError(f"got similarities for {len(similarities)} modalities; expected {self.num_modalities}")
        fitted = torch.stack([quantile_edges(s, self.num_buckets) for s in similarities])
        self.edges.copy_(fitted.to(self.edges.device))
        self.fitted = True

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:  # noqa: ANN001
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self.fitted = bool(torch.isfinite(self.edges).all())

    def forward(self, similarities: Tensor, offset_by_modality: bool = False) -> Tensor:
        """(..., K, L) cosines -> (..., K, L) long bucket ids in [0, n_b) (or [0, K * n_b) with offsets)."""
        if not self.fitted:
            raise RuntimeError("SimilarityBucketizer(mode='quantile'): the edges were never fitted; build "
                               "the model with a train sample (model_zoo.experiment does) or load a checkpoint")
        ids = torch.stack([torch.bucketize(similarities.select(-2, j).contiguous(), self.edges[j], right=True)
                           for j in range(self.num_modalities)], dim=-2)
        return ids + self.offsets if offset_by_modality else ids


class SimilarityHistogram(nn.Module):
    """SimTier-style histogram: per modality, the number of valid history positions whose cosine falls in each of
    ``num_tiers`` tiers.

    Tiers are equal-width on [-1, 1] (SimTier's), or with ``mode="quantile"`` per-modality quantile tiers fitted
    like :class:`SimilarityBucketizer`'s edges (call :meth:`fit`; saved in the checkpoint): encoder cosines sit in a
    narrow band, where most equal-width tiers stay empty. Optional per-position ``weights`` replace the count of 1 per
    valid item (e.g. a learned weight per recency, so that the histogram says how similar the *recent* behaviours
    are).

    Args:
        num_tiers: n_t >= 2.
        normalize: divide the counts by the valid length (each modality's histogram then sums to 1 without weights;
            an empty history gives all zeros either way).
        mode: ``"equal_width"`` or ``"quantile"``.
        num_modalities: K (needed for per-modality quantile tiers).

    Example::

        hist = SimilarityHistogram(num_tiers=4)
        h = hist(torch.rand(2, 1, 5) * 2 - 1, torch.ones(2, 5))   # (2, 1, 4); each row sums to 5
    """

    def __init__(self, num_tiers: int, normalize: bool = False, mode: str = "equal_width",
                 num_modalities: int = 1) -> None:
        super().__init__()
        self.num_tiers, self.normalize = num_tiers, normalize
        # equal-width tiers: one constant edge vector (not saved); quantile: fitted per-modality edges (saved)
        self.register_buffer("tier_edges", equal_width_edges(num_tiers), persistent=False)  # (n_t - 1,)
        self.tiers = SimilarityBucketizer(num_modalities, num_tiers, mode) if mode == "quantile" else None

    def fit(self, similarities: Sequence[np.ndarray | Tensor]) -> None:
        """Fit quantile tiers (as :meth:`SimilarityBucketizer.fit`); nothing to fit for equal-width tiers."""
        if self.tiers is not None:
            self.tiers.fit(similarities)

    def forward(self, similarities: Tensor, mask: Tensor, weights: Optional[Tensor] = None) -> Tensor:
        """``similarities`` (B, K, L); ``mask`` (B, L) or (L,) with 1 = valid; ``weights`` (B, L) or (L,) per-position
        weights (None = 1) -> counts (B, K, n_t)."""
        if self.tiers is None:
            tiers = torch.bucketize(similarities, self.tier_edges, right=True)  # (B, K, L)
        else:
            tiers = self.tiers(similarities)
        per_item = mask.to(similarities.dtype) if weights is None else weights.to(similarities.dtype) * (mask > 0)
        weights = per_item.unsqueeze(-2).expand_as(similarities)  # (B, K, L)
        counts = similarities.new_zeros(*similarities.shape[:-1], self.num_tiers)  # (B, K, n_t)
        counts.scatter_add_(-1, tiers, weights)
        if self.normalize:
            valid = mask.to(similarities.dtype).unsqueeze(-2).expand_as(similarities)
            counts = counts / valid.sum(-1, keepdim=True).clamp_min(1.0)
        return counts
