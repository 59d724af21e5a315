"""DMF's attention blocks: Decoupled Target Attention, its early-fusion comparator, and the CMM combiner.

Reference:
    Fan et al., "DMF: Decoupled Multimodal Fusion for user-interest modelling in CTR prediction", arXiv:2510.11066
    (DTA and CMM as named in v2; only the abstracts were available, see shared/reference/dmf_spec.md sections 4, 6, 10).

Shapes: B rows (or N candidates), L history positions, d item vector size, d_a attention size, h heads, d_h = d_a / h,
K modalities, n_b buckets per modality.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
from torch import Tensor, nn

from model_zoo.errors import ConfigError

__all__ = ["DecoupledTargetAttention", "EarlyFusionTargetAttention", "ComplementaryModality", "masked_softmax"]


def masked_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """Softmax over the last axis of (B, h, L) ``scores`` where ``mask`` (B, L) or (L,) is 1 (all padding -> 0)."""
    valid = mask.unsqueeze(-2) > 0  # (B, 1, L) or (1, L)
    alpha = torch.softmax(scores.masked_fill(~valid, torch.finfo(scores.dtype).min), dim=-1)
    return alpha * valid.to(alpha.dtype)  # an all-padding row was uniform; zero it


class DecoupledTargetAttention(nn.Module):
    """Decoupled Target Attention: dot-product target attention with a bucket embedding of the target-behaviour
    similarity added to keys (and values) **after** the target-agnostic projections.

    ``scores = (q . K^id_j + (q P_K^T)[b_j]) / sqrt(d_h)``, ``out = alpha V^id + scatter_b(alpha) P_V``, evaluated as a
    gather from ``q P_K^T`` (B, h, K n_b) and a scatter of alpha into buckets, never as an (N, L, d_a) tensor. With a
    history of shape (L, d) shared by N candidates, :meth:`prepare_history` computes K^id and V^id once per user
    and stacks them over P_K and P_V, so a candidate costs two small GEMMs, a gather and a scatter.

    Args:
        input_dim: d, the item vector size.
        attention_dim: d_a (split over heads).
        num_bucket_rows: K * n_b (one n_b-row table per modality, stacked; ids arrive offset by modality).
        num_heads: h; ``attention_dim`` must be divisible by it.
        sim_on_values: add P_V to the values too (else keys only).
        output_dim: size of an output Linear; None = no output layer (output d_a).

    Example::

        dta = DecoupledTargetAttention(input_dim=8, attention_dim=8, num_bucket_rows=2 * 4)
        state = dta.prepare_history(torch.randn(5, 8))                          # one user, L = 5
        out = dta(torch.randn(3, 8), state, torch.randint(0, 8, (3, 2, 5)), torch.ones(5))   # (3, 8)
    """

    def __init__(self, input_dim: int, attention_dim: int, num_bucket_rows: int, num_heads: int = 1,
                 sim_on_values: bool = True, output_dim: Optional[int] = None) -> None:
        super().__init__()
        if num_heads < 1 or attention_dim % num_heads:
            raise ConfigError(f"num_heads={num_heads}; expected a divisor of attention_dim={attention_dim}")
        self.num_heads, self.head_dim = num_heads, attention_dim // num_heads
        self.scale = 1.0 / math.sqrt(self.head_dim)
        self.query = nn.Linear(input_dim, attention_dim)
        self.key = nn.Linear(input_dim, attention_dim, bias=False)  # a key bias shifts every score of a row equally
        self.value = nn.Linear(input_dim, attention_dim)
        self.key_buckets = nn.Embedding(num_bucket_rows, attention_dim)  # P_K
        self.value_buckets = nn.Embedding(num_bucket_rows, attention_dim) if sim_on_values else None  # P_V
        self.output_layer = nn.Linear(attention_dim, output_dim) if output_dim else None
        self.output_dim = output_dim or attention_dim

    def init_weights(self) -> None:
        for table in (self.key_buckets, self.value_buckets):
            if table is not None:
                nn.init.xavier_normal_(table.weight)

    def _heads(self, x: Tensor) -> Tensor:
        return x.view(*x.shape[:-1], self.num_heads, self.head_dim)

    def prepare_history(self, history: Tensor) -> Tuple[Tensor, Tensor]:
        """Target-agnostic K^id, V^id: (B, L, h, d_h) each from per-row history vectors (B, L, d).

        For one user's history (L, d) (serving) the bucket tables are appended once, giving [K^id; P_K] and
        [V^id; P_V] of shape (L + K n_b, h, d_h): each candidate then needs one GEMM for all its scores and one for
        its output."""
        keys, values = self._heads(self.key(history)), self._heads(self.value(history))
        if history.dim() == 2:
            keys = torch.cat([keys, self._heads(self.key_buckets.weight)], dim=0)  # (L + K n_b, h, d_h)
            if self.value_buckets is not None:
                values = torch.cat([values, self._heads(self.value_buckets.weight)], dim=0)
        return keys, values

    def forward(self, target: Tensor, state: Tuple[Tensor, Tensor], bucket_ids: Tensor, mask: Tensor) -> Tensor:
        """``target`` (B, d); ``state`` from :meth:`prepare_history`, per row or shared; ``bucket_ids`` (B, K, L)
        offset by modality; ``mask`` (B, L) or shared (L,) -> (B, output_dim)."""
        keys, values = state
        shared = keys.dim() == 3
        rows, num_mod, length = bucket_ids.shape
        heads = self.num_heads
        q = self._heads(self.query(target)) * self.scale  # (B, h, d_h), pre-scaled
        flat_ids = bucket_ids.reshape(rows, 1, num_mod * length).expand(-1, heads, -1)  # (B, h, K L)
        if shared:  # q [K^id; P_K]^T in one GEMM: (B, h, L + K n_b)
            q_all = torch.einsum("bhd,rhd->bhr", q, keys)
            scores, q_pk = q_all[..., :length], q_all[..., length:]  # (B, h, L), (B, h, K n_b)
        else:
            scores = torch.einsum("bhd,blhd->bhl", q, keys)  # (B, h, L)
            q_pk = torch.einsum("bhd,rhd->bhr", q, self._heads(self.key_buckets.weight))  # (B, h, K n_b)
        scores = scores + q_pk.gather(2, flat_ids).view(rows, heads, num_mod, length).sum(2)
        alpha = masked_softmax(scores, mask)  # (B, h, L)
        if self.value_buckets is None:
            out = torch.einsum("bhl,lhd->bhd" if shared else "bhl,blhd->bhd", alpha, values)  # (B, h, d_h)
        else:  # scatter_b(alpha): the attention mass per bucket, (B, h, K n_b)
            bucket_mass = alpha.new_zeros(rows, heads, self.value_buckets.num_embeddings)
            spread = alpha.unsqueeze(2).expand(-1, -1, num_mod, -1).reshape(rows, heads, -1)  # (B, h, K L)
            bucket_mass.scatter_add_(2, flat_ids, spread)
            if shared:  # [alpha | mass] [V^id; P_V] in one GEMM
                out = torch.einsum("bhr,rhd->bhd", torch.cat([alpha, bucket_mass], dim=-1), values)
            else:
                out = torch.einsum("bhl,blhd->bhd", alpha, values) + torch.einsum(
                    "bhr,rhd->bhd", bucket_mass, self._heads(self.value_buckets.weight))
        out = out.reshape(rows, -1)  # (B, d_a)
        return self.output_layer(out) if self.output_layer is not None else out


class EarlyFusionTargetAttention(nn.Module):
    """The early-fusion comparator of DTA (spec section 10): the target-aware similarity embedding
    z_{t,j} = sum_k E_s[b^(k)_{t,j}] is concatenated to e_j **before** the K/V projections
    (W_K = [W_K^e | W_K^z]), so the projections run per (candidate, behaviour) and nothing can be cached per user.

    With P_K := E_s W_K^{zT} and P_V := E_s W_V^{zT} DTA computes exactly the same function (a unit test checks it).

    Args:
        input_dim, attention_dim, num_bucket_rows, num_heads, sim_on_values, output_dim: as in
            :class:`DecoupledTargetAttention`.
        similarity_dim: d_s, the width of E_s.

    Example::

        ef = EarlyFusionTargetAttention(input_dim=8, attention_dim=8, num_bucket_rows=8, similarity_dim=8)
        out = ef(torch.randn(3, 8), ef.prepare_history(torch.randn(5, 8)), torch.randint(0, 8, (3, 2, 5)),
                 torch.ones(5))   # (3, 8)
    """

    def __init__(self, input_dim: int, attention_dim: int, num_bucket_rows: int, similarity_dim: int,
                 num_heads: int = 1, sim_on_values: bool = True, output_dim: Optional[int] = None) -> None:
        super().__init__()
        if num_heads < 1 or attention_dim % num_heads:
            raise ConfigError(f"num_heads={num_heads}; expected a divisor of attention_dim={attention_dim}")
        self.num_heads, self.head_dim = num_heads, attention_dim // num_heads
        self.scale = 1.0 / math.sqrt(self.head_dim)
        self.sim_on_values = sim_on_values
        self.similarity_embedding = nn.Embedding(num_bucket_rows, similarity_dim)  # E_s
        self.query = nn.Linear(input_dim, attention_dim)
        self.key = nn.Linear(input_dim + similarity_dim, attention_dim, bias=False)
        self.value = nn.Linear(input_dim + (similarity_dim if sim_on_values else 0), attention_dim)
        self.output_layer = nn.Linear(attention_dim, output_dim) if output_dim else None
        self.output_dim = output_dim or attention_dim

    def init_weights(self) -> None:
        nn.init.xavier_normal_(self.similarity_embedding.weight)

    def prepare_history(self, history: Tensor) -> Tensor:
        """Nothing target-agnostic to precompute: K and V depend on the candidate through z_{t,j}."""
        return history

    def forward(self, target: Tensor, history: Tensor, bucket_ids: Tensor, mask: Tensor) -> Tensor:
        """Same contract as :meth:`DecoupledTargetAttention.forward`, with ``history`` (B, L, d) or shared (L, d)."""
        rows = target.shape[0]
        if history.dim() == 2:  # one user's history, repeated for each candidate
            history = history.unsqueeze(0).expand(rows, -1, -1)  # (N, L, d)
        z = self.similarity_embedding(bucket_ids).sum(1)  # (B, K, L, d_s) -> (B, L, d_s)
        fused = torch.cat([history, z], dim=-1)  # (B, L, d + d_s)
        keys = self.key(fused).view(rows, -1, self.num_heads, self.head_dim)  # (B, L, h, d_h): per candidate
        values = self.value(fused if self.sim_on_values else history).view(rows, -1, self.num_heads, self.head_dim)
        q = self.query(target).view(rows, self.num_heads, self.head_dim)  # (B, h, d_h)
        alpha = masked_softmax(torch.einsum("bhd,blhd->bhl", q, keys) * self.scale, mask)  # (B, h, L)
        out = torch.einsum("bhl,blhd->bhd", alpha, values).reshape(rows, -1)  # (B, d_a)
        return self.output_layer(out) if self.output_layer is not None else out


class ComplementaryModality(nn.Module):
    """CMM: combines the modality-enriched (DTA) and modality-centric (histogram) interests (spec section 6)."""

    def __init__(self, mode: str, enriched_dim: int, centric_dim: int, common_dim: int, weight: float) -> None:
        super().__init__()
        self.mode, self.weight = mode, weight
        both = enriched_dim > 0 and centric_dim > 0
        self.output_dim = enriched_dim + centric_dim if mode == "concat" or not both else common_dim
        if mode != "concat" and both:
            self.enriched_proj = nn.Linear(enriched_dim, common_dim)
            self.centric_proj = nn.Linear(centric_dim, common_dim)
            self.gate = nn.Linear(enriched_dim + centric_dim, 1) if mode == "gate" else None

    def forward(self, enriched: Optional[Tensor], centric: Optional[Tensor]) -> Tensor:
        if enriched is None or centric is None:  # one pathway ablated: nothing to combine
            return enriched if centric is None else centric
        if self.mode == "concat":
            return torch.cat([enriched, centric], dim=-1)
        if self.gate is not None:
            weight = torch.sigmoid(self.gate(torch.cat([enriched, centric], dim=-1)))  # (B, 1)
        else:
            weight = self.weight
        return weight * self.enriched_proj(enriched) + (1 - weight) * self.centric_proj(centric)
