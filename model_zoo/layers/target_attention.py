"""Target-attention backbone shared by the DIN-family models (DIN_SENet, DIN_CrossNet, FiBiNET_Bilinear).

Reference:
    Zhou et al., "Deep Interest Network for Click-Through Rate Prediction", KDD 2018, arXiv:1706.06978 (``"din"``).
    Vaswani et al., "Attention Is All You Need", NeurIPS 2017, arXiv:1706.03762 (``"multihead"``, one target query).

The attention blocks are FuxiCTR's ``DIN_Attention`` and ``MultiHeadTargetAttention``, imported, not copied.

Shapes: B batch, L history length, d ``field_dim`` (= ``embedding_dim``), D item vector size (sum of the item
features' sizes), F_ctx context (row) fields, F = F_ctx + 2 * D / d stacked fields.

Field definition (the *stacked view*, used by SENet and bilinear heads): the context fields as embedded, then the
target vector cut into D / d consecutive chunks of size d, then the pooled history cut the same way. Every item
feature's size must be a multiple of d, so each chunk belongs to exactly one feature (item_id -> 1 field, pooled
item_tags -> 1 field, a 2d multimodal projection -> 2 fields). The stacked view is a pure reshape:
``stack(fields).flatten(1) == flatten(fields)``; no parameters are added.
"""
from __future__ import annotations

import inspect
from typing import Annotated, Any, ClassVar, Dict, List, Literal, Mapping, NamedTuple, Optional, Sequence, Tuple

import torch
from fuxictr.pytorch.layers import DIN_Attention, MultiHeadTargetAttention
from torch import Tensor, nn
from torch.nn import functional as F

from model_zoo.datasets.loader import MMCTRBatch
from model_zoo.errors import ConfigError
from model_zoo.layers.mmctr_base import MMCTRModel
from model_zoo.layers.position import (POSITION_KEYS, PositionEncoding, RecencyEmbedding, build_position_encoding,
                                       position_conflicts)
from model_zoo.params import Activation, DropoutRate, PositiveInt, Range, Units, check_choice

__all__ = ["ATTENTION_TYPES", "ATTENTION_KEYS", "SHARED_ATTENTION_KEYS", "EXCITATION_ACTIVATIONS", "TargetAttention", "TargetAttentionFields",
           "TargetAttentionBackbone", "TargetAttentionModel"]

ATTENTION_TYPES = ("din", "multihead")
# Config keys of each attention type (TargetAttentionModel's parameters), and those every type reads.
ATTENTION_KEYS: Mapping[str, Tuple[str, ...]] = {
    "din": ("attention_hidden_units", "attention_hidden_activations", "attention_output_activation", "din_use_softmax"),
    "multihead": ("num_heads", "attention_dim", "attention_use_scale", "attention_use_qkvo"),
}
SHARED_ATTENTION_KEYS: Tuple[str, ...] = ("attention_dropout", "position_encoding") + POSITION_KEYS
EXCITATION_ACTIVATIONS = ("ReLU", "Sigmoid")  # what FuxiCTR's SqueezeExcitation accepts (SENet heads check first)


class TargetAttention(nn.Module):
    """Pools a history (B, L, D) into one vector (B, D) with the target item (B, D) as query.

    A row whose history is all padding gets a pooled vector of exactly 0: FuxiCTR's layers do not NaN on an
    all-zero mask, but ``"multihead"`` (and ``"din"`` with softmax) would return the mean of the padding vectors.
    With ``"din"`` and ``din_use_softmax`` the scorer's output bias cancels in the softmax (its gradient is 0).

    Args:
        input_dim: item vector size D.
        attention_type: ``"din"`` (DIN MLP scorer) or ``"multihead"`` (scaled dot-product, one query).
        attention_hidden_units: DIN scorer hidden sizes (``"din"`` only).
        attention_hidden_activations: DIN scorer activation, "ReLU" or "Dice" (``"din"`` only).
        attention_output_activation: activation of the DIN weight, None = linear (``"din"`` only).
        din_use_softmax: masked softmax over DIN weights (``"din"`` only).
        num_heads: heads (``"multihead"`` only); must divide ``attention_dim``.
        attention_dim: Q/K/V size, None = D (``"multihead"`` only; forced to D when ``use_qkvo`` is False).
        use_scale: divide scores by sqrt(head size) (``"multihead"`` only).
        use_qkvo: learn Q/K/V/O projections (``"multihead"`` only).
        attention_dropout: dropout in the scorer (din) or on the attention weights (multihead).

    Example::

        pool = TargetAttention(32, attention_type="multihead", num_heads=4)
        pooled = pool(torch.randn(2, 32), torch.randn(2, 5, 32), torch.ones(2, 5))   # (2, 32)
    """

    def __init__(self, input_dim: int, attention_type: str = "din", attention_hidden_units: Sequence[int] = (512, 256),
                 attention_hidden_activations: str = "ReLU", attention_output_activation: Optional[str] = None,
                 din_use_softmax: bool = False, num_heads: int = 1, attention_dim: Optional[int] = None,
                 use_scale: bool = True, use_qkvo: bool = True, attention_dropout: float = 0.0) -> None:
        super().__init__()
        check_choice("attention_type", attention_type, ATTENTION_TYPES)
        self.attention_type = attention_type
        # Padding-free ("packed") pooling: DIN's unnormalised weights and the multi-head softmax (a segment softmax
        # over each row's valid items) skip padded positions (histories are mostly padding). Dice normalises over the
        # batch of positions and DIN's softmax variant is rare, so those two keep FuxiCTR's full padded layer.
        self.packed = attention_type == "multihead" or (not din_use_softmax
                                                        and str(attention_hidden_activations).lower() != "dice")
        if attention_type == "din":
            self.attention = DIN_Attention(input_dim, attention_units=list(attention_hidden_units),
                                           hidden_activations=attention_hidden_activations,
                                           output_activation=attention_output_activation,
                                           dropout_rate=attention_dropout, use_softmax=din_use_softmax)
        else:
            attention_dim = input_dim if attention_dim is None or not use_qkvo else attention_dim
            if num_heads < 1 or attention_dim % num_heads != 0:
                raise ConfigError(f"num_heads={num_heads} must be >= 1 and divide attention_dim={attention_dim} "
                                  f"(attention_dim is the item vector size D={input_dim} when null or use_qkvo=False)")
            self.attention = MultiHeadTargetAttention(input_dim, attention_dim, num_heads=num_heads,
                                                      dropout_rate=attention_dropout, use_scale=use_scale,
                                                      use_qkvo=use_qkvo)

    def forward(self, target: Tensor, history: Tensor, mask: Tensor) -> Tensor:
        if self.packed:  # the valid (row, position) pairs only
            rows, cols = mask.nonzero(as_tuple=True)
            return self.pool_valid(target, rows, history[rows, cols])
        return self.padded(target, history, mask)

    def padded(self, target: Tensor, history: Tensor, mask: Tensor) -> Tensor:
        """FuxiCTR's layer on the padded (B, L, D) history (the reference the packed path is tested against)."""
        pooled = self.attention(target, history, mask)  # (B, D)
        has_history = (mask.sum(dim=1, keepdim=True) > 0).to(pooled.dtype)  # (B, 1)
        return pooled * has_history

    def pool_valid(self, target: Tensor, rows: Tensor, seq: Tensor) -> Tensor:
        """Pooling on a padding-free history: ``seq`` (n, D) holds the valid items, ``rows`` (n,) their row (B, D).

        Equals :meth:`padded` (tested, values and gradients; a row without valid items pools to 0) at a fraction of
        its cost: with the synthetic world's median history of 6 items and ``max_len`` 32, about 80 % fewer items.
        """
        if self.attention_type == "multihead":
            return self._pool_valid_multihead(target, rows, seq)
        return self._pool_valid_din(target, rows, seq)

    def _pool_valid_multihead(self, target: Tensor, rows: Tensor, seq: Tensor) -> Tensor:
        """FuxiCTR's ``MultiHeadTargetAttention`` as a segment softmax over each row's valid items.

        Scores ``s_j = q_{row(j)} . k_j / sqrt(d_h)`` per head; ``alpha_j = exp(s_j - m_row) / sum_{i in row}
        exp(s_i - m_row)`` with the row's max m_row (softmax is shift-invariant, so m is detached); the pooled vector
        is ``W_o sum_j alpha_j v_j``. FuxiCTR fills padded scores with -1e9, whose exp is exactly 0 in float32, so the
        padded layer computes the same sums over the same items. Dropout acts on alpha as there.
        """
        layer = self.attention
        heads, head_dim = layer.num_heads, layer.head_dim
        if layer.use_qkvo:
            query, key, value = layer.W_q(target), layer.W_k(seq), layer.W_v(seq)  # (B, A), (n, A), (n, A)
        else:
            query, key, value = target, seq, seq
        query, key = query.view(-1, heads, head_dim), key.view(-1, heads, head_dim)
        scores = (query[rows] * key).sum(dim=-1)  # (n, h)
        if layer.scale:
            scores = scores / layer.scale
        row_max = scores.new_full((target.shape[0], heads), float("-inf")).scatter_reduce(
            0, rows.unsqueeze(1).expand(-1, heads), scores.detach(), reduce="amax", include_self=True)  # (B, h)
        weights = torch.exp(scores - row_max[rows])  # (n, h), in (0, 1]
        total = weights.new_zeros(target.shape[0], heads).index_add(0, rows, weights)  # (B, h), >= 1 where valid
        alpha = weights / total[rows]
        if layer.dot_attention.dropout is not None:
            alpha = layer.dot_attention.dropout(alpha)
        pooled = value.new_zeros(target.shape[0], heads, head_dim).index_add(
            0, rows, alpha.unsqueeze(-1) * value.view(-1, heads, head_dim)).view(target.shape[0], -1)  # (B, A)
        return layer.W_o(pooled) if layer.use_qkvo else pooled

    def _pool_valid_din(self, target: Tensor, rows: Tensor, seq: Tensor) -> Tensor:
        """DIN pooling with FuxiCTR's scorer run on the valid items only (equals ``DIN_Attention`` without softmax,
        where a padded position's weight is multiplied by 0).

        The scorer's first Linear acts on ``[t, s, t - s, t * s]``; with its weight split column-wise into
        (W_t, W_s, W_d, W_p) that is ``t (W_t + W_d)' + s (W_s - W_d)' + (t * s) W_p' + b``, so the target term is
        computed once per row instead of once per valid item and the (n, 4D) input is never built. Same parameters
        and the same function as FuxiCTR's layer (tested), about half of its first-layer multiply-adds.
        """
        first, rest = self.attention.attention_layer.mlp[0], self.attention.attention_layer.mlp[1:]
        w_t, w_s, w_d, w_p = first.weight.split(target.shape[1], dim=1)
        per_target = F.linear(target, w_t + w_d, first.bias)  # (B, h)
        per_item = F.linear(torch.cat([seq, target[rows] * seq], dim=-1), torch.cat([w_s - w_d, w_p], dim=1))
        weight = rest(per_target[rows] + per_item)  # (n, 1)
        return seq.new_zeros(target.shape).index_add(0, rows, weight * seq)  # (B, D)


class TargetAttentionFields(NamedTuple):
    """What a head consumes: context fields (B, F_ctx, d), target (B, D), attention-pooled history (B, D)."""

    context: Tensor
    target: Tensor
    pooled_history: Tensor


class TargetAttentionBackbone(nn.Module):
    """Context fields + target + attention-pooled history, with a flat (B, F*d) and a stacked (B, F, d) view.

    With ``positions`` (a :class:`~model_zoo.layers.position.RecencyEmbedding` of size D) each valid history item
    vector gets its recency embedding added before the attention, so the scorer (and the pooled vector) knows how
    recent each behaviour is; without it the backbone is order-blind, as before.

    Args:
        item_field_dims: embedding size of each item feature, in item-vector order (name -> size).
        context_field_dims: embedding size of each context (row) feature, in order (name -> size).
        field_dim: d; every context size must equal it and every item size must be a multiple of it.
        positions: recency embedding added to the history item vectors (dim D); None = no position information.
        **attention_kwargs: ``TargetAttention`` arguments (``attention_type``, ``num_heads``, ...).

    Example::

        backbone = TargetAttentionBackbone({"item_id": 8, "item_emb": 16}, {"likes_level": 8}, 8,
                                           attention_type="multihead", num_heads=2)
        fields = backbone(torch.randn(2, 1, 8), torch.randn(2, 24), torch.randn(2, 5, 24), torch.ones(2, 5))
        backbone.stack(fields).shape   # (2, 7, 8): 1 context + 3 target + 3 pooled-history fields
    """

    def __init__(self, item_field_dims: Mapping[str, int], context_field_dims: Mapping[str, int], field_dim: int,
                 positions: Optional[RecencyEmbedding] = None, **attention_kwargs) -> None:
        super().__init__()
        sizes = ", ".join(f"{k}={v}" for k, v in item_field_dims.items())
        for name, size in item_field_dims.items():
            if field_dim < 1 or size % field_dim != 0:
                raise ConfigError(f"item feature '{name}' has embedding size {size}, not a multiple of "
                                  f"field_dim={field_dim} (embedding_dim); stacked fields need every item feature "
                                  f"size ({sizes}; D={sum(item_field_dims.values())}) divisible by field_dim")
        for name, size in context_field_dims.items():
            if size != field_dim:
                raise ConfigError(f"context feature '{name}' has embedding size {size}; stacked fields need "
                                  f"field_dim={field_dim} (embedding_dim) for every context feature")
        self.field_dim = field_dim
        self.item_dim = sum(item_field_dims.values())
        self.num_context_fields = len(context_field_dims)
        self.num_fields = self.num_context_fields + 2 * self.item_dim // field_dim
        self.flat_dim = self.num_fields * field_dim
        item_names: List[str] = []
        for name, size in item_field_dims.items():
            chunks = size // field_dim
            item_names += [name] if chunks == 1 else [f"{name}[{k}]" for k in range(chunks)]
        self.field_names = (tuple(context_field_dims) + tuple(f"target.{n}" for n in item_names)
                            + tuple(f"history.{n}" for n in item_names))
        if positions is not None and positions.dim != self.item_dim:
            raise ValueError(f"positions.dim={positions.dim}; expected the item vector size D={self.item_dim}")
        self.positions = positions
        self.attention = TargetAttention(self.item_dim, **attention_kwargs)

    def forward(self, context: Optional[Tensor], target: Tensor, history: Tensor,
                mask: Tensor) -> TargetAttentionFields:
        if context is None:
            context = target.new_zeros(target.shape[0], 0, self.field_dim)  # (B, 0, d)
        if self.positions is not None:
            history = history + self.positions(mask)  # (B, L, D); padded positions get 0
        return TargetAttentionFields(context, target, self.attention(target, history, mask))

    def forward_valid(self, context: Optional[Tensor], target: Tensor, rows: Tensor, seq: Tensor,
                      mask: Optional[Tensor] = None) -> TargetAttentionFields:
        """``forward`` on a padding-free history (see ``TargetAttention.pool_valid``); needs ``attention.packed``.

        ``seq`` holds the valid items of ``mask`` (B, L) in ``mask.nonzero()`` order; the mask is needed only for
        the recency embedding (with ``positions``)."""
        if context is None:
            context = target.new_zeros(target.shape[0], 0, self.field_dim)  # (B, 0, d)
        if self.positions is not None:
            if mask is None:
                raise ValueError("forward_valid with positions needs the history mask the items were taken from")
            seq = seq + self.positions.of_valid(mask)  # (n, D)
        return TargetAttentionFields(context, target, self.attention.pool_valid(target, rows, seq))

    def stack(self, fields: TargetAttentionFields) -> Tensor:
        """(B, F, d): context fields, then the target and the pooled history each cut into D / d chunks."""
        batch_size = fields.target.shape[0]
        target = fields.target.view(batch_size, -1, self.field_dim)  # (B, D/d, d)
        pooled = fields.pooled_history.view(batch_size, -1, self.field_dim)  # (B, D/d, d)
        return torch.cat([fields.context, target, pooled], dim=1)

    def flatten(self, fields: TargetAttentionFields) -> Tensor:
        """(B, F*d) = context ‖ target ‖ pooled history (the DIN DNN input)."""
        return torch.cat([fields.context.flatten(start_dim=1), fields.target, fields.pooled_history], dim=-1)


class TargetAttentionModel(MMCTRModel):
    """``MMCTRModel`` with a ``TargetAttentionBackbone``; subclasses add a head on ``embed_fields(batch)``.

    A subclass narrows ``attention_types`` to the attention it supports; it then exposes exactly the config keys of
    those types (``ATTENTION_KEYS``) plus ``attention_dropout``, and ``attention_type`` only when it can choose.

    Args:
        attention_type: ``"din"`` or ``"multihead"``.
        num_heads, attention_dim, attention_use_scale, attention_use_qkvo: multi-head settings (see TargetAttention).
        attention_hidden_units, attention_hidden_activations, attention_output_activation, din_use_softmax: DIN
            scorer settings.
        attention_dropout: attention dropout.
        position_encoding: ``"none"`` (order-blind, as the papers) or ``"learned"``: a learned embedding of each
            history item's recency (valid items after it; 0 = most recent) added to its item vector before the
            attention (``model_zoo/layers/position.py``). Starts at zero, so training starts from the order-blind
            model.
        num_positions: rows of the recency table; items ``num_positions - 1`` or more behaviours back share the
            last row (``position_encoding: learned`` only).
        **kwargs: MMCTRModel / FuxiCTR BaseModel arguments (embedding_dim = field size d, regularizers, ...).
    """

    attention_types: ClassVar[Tuple[str, ...]] = ATTENTION_TYPES

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for kind in cls.attention_types:
            check_choice("attention_types", kind, ATTENTION_TYPES)
        keys = list(SHARED_ATTENTION_KEYS) + [k for t in cls.attention_types for k in ATTENTION_KEYS[t]]
        if len(cls.attention_types) > 1:
            keys.append("attention_type")
        cls.exposed_keys = {key: TargetAttentionModel for key in keys}

    def __init__(self, feature_map, model_id: str = "TargetAttentionModel",
                 attention_type: Literal["din", "multihead"] = "multihead", num_heads: PositiveInt = 1,
                 attention_dim: Optional[PositiveInt] = None, attention_use_scale: bool = True,
                 attention_use_qkvo: bool = True, attention_hidden_units: Units = (512, 256),
                 attention_hidden_activations: Activation = "ReLU",
                 attention_output_activation: Optional[Activation] = None, din_use_softmax: bool = False,
                 attention_dropout: DropoutRate = 0.0, position_encoding: PositionEncoding = "none",
                 num_positions: Annotated[int, Range(low=2)] = 32, **kwargs) -> None:
        if attention_type not in self.attention_types:
            raise ConfigError(f"attention_type={attention_type!r}; {type(self).__name__} supports "
                              f"{self.attention_types}")
        super().__init__(feature_map, model_id=model_id, **kwargs)
        item_dims: Dict[str, int] = {f: self._emb_dim(f) for f in self.item_features}
        context_dims: Dict[str, int] = {f: self._emb_dim(f) for f in self.row_features}
        positions = build_position_encoding(position_encoding, num_positions, self.item_info_dim)
        self.backbone = TargetAttentionBackbone(
            item_dims, context_dims, self.embedding_dim, positions=positions, attention_type=attention_type,
            num_heads=num_heads,
            attention_dim=attention_dim, use_scale=attention_use_scale, use_qkvo=attention_use_qkvo,
            attention_hidden_units=attention_hidden_units, attention_hidden_activations=attention_hidden_activations,
            attention_output_activation=attention_output_activation, din_use_softmax=din_use_softmax,
            attention_dropout=attention_dropout)

    @classmethod
    def config_conflicts(cls, params: Mapping[str, Any]) -> List[Tuple[str, str]]:
        """Keys of the attention type not in use are rejected (they would be silently ignored)."""
        chosen = params.get("attention_type", cls.attention_types[0] if len(cls.attention_types) == 1 else
                            inspect.signature(TargetAttentionModel.__init__).parameters["attention_type"].default)
        out = []
        for kind, keys in ATTENTION_KEYS.items():
            if kind == chosen:
                continue
            out += [(key, f"key '{key}' applies to attention_type '{kind}' only; this expid uses '{chosen}'")
                    for key in keys if key in params and key in cls.exposed_keys]
        return out + position_conflicts(params) + super().config_conflicts(params)

    def embed_fields(self, inputs: MMCTRBatch) -> TargetAttentionFields:
        row_inputs, item_inputs, mask = self.get_inputs(inputs)
        context = self.embed_rows(row_inputs) if row_inputs else None  # (B, F_ctx, d)
        if self.skip_padding_items and self.backbone.attention.packed:
            # padding-free: the (B, L, D) history is never built, only the n valid items are embedded and scored
            target, rows, seq = self.embed_valid_items(item_inputs, mask)  # (B, D), (n,), (n, D)
            return self.backbone.forward_valid(context, target, rows, seq, mask)
        target, history = self.embed_items(item_inputs, mask.shape[0])  # (B, D), (B, L, D)
        return self.backbone(context, target, history, mask)
