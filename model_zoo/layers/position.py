"""Recency (position) information for history attention: a learned embedding of each behaviour's distance from the
most recent one.

Every attention layer of the zoo is order-blind: permuting the valid history items (with their mask) leaves its
output unchanged, yet in a next-item task the last few behaviours carry most of the signal. ``RecencyEmbedding``
adds ``P[r_j]`` to the vector of history item j, where ``r_j`` is the number of valid items after j (0 = the most
recent); distances of ``num_positions - 1`` or more share the last row. Left-padded histories (the MicroLens
convention: most recent last) give ``r_j = L - 1 - j``; counting valid items instead of positions keeps it right for
any padding layout.

The term depends on the history alone (never on the candidate), so a model that caches per-user keys and values
(DMF's Decoupled Target Attention) still caches them with positions on.

Reference:
    Vaswani et al., "Attention Is All You Need", NeurIPS 2017, arXiv:1706.03762 (learned position embeddings added
    to the inputs); Kang and McAuley, "Self-Attentive Sequential Recommendation" (SASRec), ICDM 2018,
    arXiv:1808.09781 (learned positions over a behaviour sequence). Deviation: positions count from the end of the
    history (recency), not from its start, so the most recent behaviour always has the same embedding whatever the
    history length; the table starts at zero (see :class:`RecencyEmbedding`).

Shapes: B rows, L history positions, D the vector size the embedding is added to, n valid (row, position) pairs.
"""
from __future__ import annotations

from typing import Any, List, Literal, Mapping, Optional, Tuple

import torch
from torch import Tensor, nn

__all__ = ["POSITION_ENCODINGS", "POSITION_KEYS", "PositionEncoding", "recency_index", "RecencyEmbedding",
           "RecencyWeights", "build_position_encoding", "position_conflicts"]

POSITION_ENCODINGS = ("none", "learned")
PositionEncoding = Literal["none", "learned"]
# Config keys read only when position_encoding is not "none".
POSITION_KEYS: Tuple[str, ...] = ("num_positions",)


def recency_index(mask: Tensor) -> Tensor:
    """(..., L) long: for each valid position the number of valid positions after it (0 = most recent); 0 where
    ``mask`` is 0.

    Example::

        r = recency_index(torch.tensor([[0.0, 0.0, 1.0, 1.0, 1.0]]))   # (1, 5): [[0, 0, 2, 1, 0]]
    """
    valid = (mask > 0).long()
    after = valid.flip(-1).cumsum(-1).flip(-1) - valid  # valid positions strictly after each position
    return after * valid


class RecencyEmbedding(nn.Module):
    """A learned (num_positions, dim) table indexed by :func:`recency_index`, clipped at ``num_positions - 1``.

    The table is created as zeros (no random numbers drawn, so every other layer of a model gets the same initial
    weights as without positions) and :meth:`init_weights` keeps it at zero: at initialisation a model with
    positions computes exactly what the same model without them computes, and training moves away from it.
    Padded positions get a zero vector.

    Args:
        num_positions: table rows; the ``num_positions - 1`` most recent distances get their own row, older items
            share the last one.
        dim: D, the size of the vectors the embedding is added to.

    Example::

        positions = RecencyEmbedding(num_positions=4, dim=8)
        emb = positions(torch.ones(2, 6))                       # (2, 6, 8)
        flat = positions.of_valid(torch.ones(2, 6))             # (12, 8): valid pairs in mask.nonzero() order
    """

    def __init__(self, num_positions: int, dim: int) -> None:
        super().__init__()
        if num_positions < 2:
            raise ValueError(f"num_positions={num_positions}; expected an integer >= 2")
        self.num_positions, self.dim = num_positions, dim
        self.weight = nn.Parameter(torch.zeros(num_positions, dim))

    def init_weights(self) -> None:
        nn.init.zeros_(self.weight)

    def indices(self, mask: Tensor) -> Tensor:
        """(..., L) long row ids in [0, num_positions)."""
        return recency_index(mask).clamp_(max=self.num_positions - 1)

    def forward(self, mask: Tensor) -> Tensor:
        """``mask`` (..., L), 1 = valid -> (..., L, D), zero at padded positions."""
        emb = self.weight.index_select(0, self.indices(mask).reshape(-1)).view(*mask.shape, self.dim)
        return emb * (mask > 0).unsqueeze(-1).to(emb.dtype)

    def of_valid(self, mask: Tensor) -> Tensor:
        """(n, D): the embeddings of the valid positions of ``mask`` (B, L), in ``mask.nonzero()`` order (row-major),
        for padding-free histories."""
        return self.weight.index_select(0, self.indices(mask)[mask > 0])


class RecencyWeights(nn.Module):
    """A learned weight per recency (clipped at ``num_positions - 1``), starting at 1: per-position weights for a
    pooling that would otherwise count every valid item once (e.g. DMF's similarity histogram).

    Args:
        num_positions: weights; items ``num_positions - 1`` or more behaviours back share the last one.

    Example::

        weights = RecencyWeights(num_positions=4)
        w = weights(torch.tensor([[0.0, 1.0, 1.0]]))   # (1, 3): [[0, 1, 1]] at initialisation
    """

    def __init__(self, num_positions: int) -> None:
        super().__init__()
        if num_positions < 2:
            raise ValueError(f"num_positions={num_positions}; expected an integer >= 2")
        self.num_positions = num_positions
        self.weight = nn.Parameter(torch.ones(num_positions))

    def init_weights(self) -> None:
        nn.init.ones_(self.weight)

    def forward(self, mask: Tensor) -> Tensor:
        """``mask`` (..., L) -> (..., L) weights, 0 at padded positions."""
        rec = recency_index(mask).clamp_(max=self.num_positions - 1)
        return self.weight.index_select(0, rec.reshape(-1)).view(mask.shape) * (mask > 0).to(self.weight.dtype)


def build_position_encoding(position_encoding: str, num_positions: int, dim: int) -> Optional[RecencyEmbedding]:
    """The position block of a ``position_encoding`` setting: None for ``"none"``."""
    if position_encoding not in POSITION_ENCODINGS:
        from model_zoo.errors import ConfigError
        raise ConfigError(f"position_encoding={position_encoding!r}; expected one of {POSITION_ENCODINGS}")
    return None if position_encoding == "none" else RecencyEmbedding(num_positions, dim)


def position_conflicts(params: Mapping[str, Any]) -> List[Tuple[str, str]]:
    """(key, message) for position options given with ``position_encoding: none`` (they would be ignored)."""
    if params.get("position_encoding", "none") != "none":
        return []
    return [(key, f"key '{key}' is read only with position_encoding: learned; this expid uses 'none'")
            for key in POSITION_KEYS if key in params]
