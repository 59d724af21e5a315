"""Transformer over [history item ‖ target item] tokens + a parallel DCN-V2 (the 1st-place "momo" model of the
WWW 2025 MMCTR challenge)."""
from __future__ import annotations

from typing import Annotated, Any, Dict, List, Mapping, Tuple

import torch
from fuxictr.pytorch.layers import CrossNetV2, MLP_Block
from torch import Tensor, nn

from model_zoo.datasets.loader import MMCTRBatch
from model_zoo.errors import ConfigError
from model_zoo.layers.mmctr_base import MMCTRModel
from model_zoo.layers.position import PositionEncoding, build_position_encoding, position_conflicts
from model_zoo.params import Activation, DropoutRate, PositiveInt, Range, Units
from model_zoo.registry import register_model

__all__ = ["Transformer_DCN", "SequenceTransformer", "key_padding_mask"]

# Value written into ignored positions before the max-pool (the published code's choice; not -inf, so a row whose
# positions are all ignored would still give a finite maximum).
_MAX_POOL_FILL = -1e9


def key_padding_mask(mask: Tensor, faithful: bool = False) -> Tensor:
    """``src_key_padding_mask`` (B, L) bool, True = position ignored by attention, from the loader's mask (1 = valid).

    ``faithful=False``: padding is ignored (the corrected mask). ``faithful=True``: the published code's mask, the
    loader's mask passed as is, so the *valid* items are ignored and the padding is attended. Either way, a row in
    which every position would be ignored gets its last (most recent) position un-ignored, as the published
    ``adjust_mask`` does. Without it such a row depends on the torch version: a softmax over all -inf gives NaN (the
    attention of torch 1.13, the published environment, and still ``nn.MultiheadAttention`` with
    ``need_weights=True``), while the encoder of torch 2.13 (``scaled_dot_product_attention``) returns a finite
    output that attends to nothing (only the output projection's bias). With the guard no row is ever fully ignored,
    so every version computes the same thing. In the faithful mode the guard acts on full histories (all L positions
    valid), whose most recent item is then attended; in the corrected mode on empty histories (all padding), which
    attend to one padding token.

    Example::

        key_padding_mask(torch.tensor([[0.0, 1.0, 1.0], [0.0, 0.0, 0.0]]))
        # tensor([[ True, False, False], [ True,  True, False]])
    """
    valid = mask > 0  # (B, L)
    ignore = valid if faithful else ~valid
    fully_ignored = ignore.all(dim=-1, keepdim=True)  # (B, 1)
    last = torch.zeros_like(ignore)
    last[:, -1] = True
    return ignore & ~(fully_ignored & last)  # a new tensor: the loader's mask is never modified


class SequenceTransformer(nn.Module):
    """The sequence branch: tokens [h_j ‖ t] → ``nn.TransformerEncoder`` → the last ``first_k_cols`` token
    outputs, flattened, ‖ (``concat_max_pool``) ``Linear(max over the attended tokens)``.

    Ignored positions (see :func:`key_padding_mask`) output 0 before the selection and are left out of the max-pool.
    Histories are left-padded (most recent last), so the last ``first_k_cols`` positions are the most recent ones.

    Args:
        item_dim: D, the item vector size; tokens are 2D wide (the encoder's d_model).
        num_heads: attention heads; must divide 2D.
        dim_feedforward: hidden size of each encoder layer's feed-forward block.
        dropout: dropout inside the encoder layers.
        num_layers: encoder layers.
        first_k_cols: most recent token outputs kept (needs L >= first_k_cols).
        concat_max_pool: append a max-pool over the attended tokens through ``Linear(2D, 2D)``.
        faithful_padding_mask: the published (inverted) mask; see :func:`key_padding_mask`.

    Example::

        branch = SequenceTransformer(8, num_heads=2, dim_feedforward=16, dropout=0.0, num_layers=1, first_k_cols=3)
        out = branch(torch.randn(2, 8), torch.randn(2, 5, 8), torch.ones(2, 5))   # (2, (3 + 1) * 16)
    """

    def __init__(self, item_dim: int, num_heads: int = 1, dim_feedforward: int = 256, dropout: float = 0.0,
                 num_layers: int = 2, first_k_cols: int = 16, concat_max_pool: bool = True,
                 faithful_padding_mask: bool = False) -> None:
        super().__init__()
        d_model = 2 * item_dim
        if num_heads < 1 or d_model % num_heads != 0:
            raise ConfigError(f"num_heads={num_heads} must be >= 1 and divide the token size 2 * D = {d_model} "
                              f"(D = {item_dim}, the item vector size)")
        layer = nn.TransformerEncoderLayer(d_model=d_model, nhead=num_heads, dim_feedforward=dim_feedforward,
                                           dropout=dropout, batch_first=True)
        # nested tensors only change speed (ignored positions come back as 0, which we write there anyway); off, so
        # torch does not warn about odd head counts and every mode runs the same code
        self.encoder = nn.TransformerEncoder(layer, num_layers=num_layers, enable_nested_tensor=False)
        self.out_linear = nn.Linear(d_model, d_model) if concat_max_pool else None
        self.d_model, self.first_k_cols, self.faithful = d_model, first_k_cols, faithful_padding_mask
        self.output_dim = (first_k_cols + int(concat_max_pool)) * d_model

    def forward(self, target: Tensor, history: Tensor, mask: Tensor) -> Tensor:
        """``target`` (B, D), ``history`` (B, L, D), ``mask`` (B, L) 1 = valid → (B, output_dim)."""
        seq_len = history.shape[1]
        if seq_len < self.first_k_cols:
            raise ValueError(f"first_k_cols={self.first_k_cols} but the history has only {seq_len} positions; set "
                             f"max_len >= first_k_cols")
        tokens = torch.cat([history, target.unsqueeze(1).expand(-1, seq_len, -1)], dim=-1)  # (B, L, 2D)
        ignore = key_padding_mask(mask, self.faithful)  # (B, L) True = ignored
        out = self.encoder(tokens, src_key_padding_mask=ignore)  # (B, L, 2D)
        out = out.masked_fill(ignore.unsqueeze(-1), 0.0)
        parts = [out[:, -self.first_k_cols:].flatten(start_dim=1)]  # (B, k * 2D), most recent k positions
        if self.out_linear is not None:
            pooled = out.masked_fill(ignore.unsqueeze(-1), _MAX_POOL_FILL).max(dim=1).values  # (B, 2D)
            parts.append(self.out_linear(pooled))
        return torch.cat(parts, dim=-1)


@register_model
class Transformer_DCN(MMCTRModel):
    """Transformer over [history item ‖ target item] tokens, then DCN-V2 (cross network ∥ DNN) and a final MLP.

    Each history item vector h_j (B, L, D) is concatenated with the target item vector t (B, D) into a 2D token; a
    ``nn.TransformerEncoder`` runs over the L tokens; the last ``first_k_cols`` token outputs (the most recent items,
    histories being left-padded) are flattened and, with ``concat_max_pool``, a max-pool over the attended tokens
    through a Linear is appended. x0 = row fields (likes_level, views_level) ‖ t ‖ sequence output feeds FuxiCTR's
    ``CrossNetV2`` and an ``MLP_Block`` DNN in parallel; the final ``MLP_Block`` maps [cross ‖ dnn] to 1 (sigmoid).
    With the published settings D = 256, tokens 512, x0 = 128 + 256 + 17 * 512 = 9088 and the cross network alone
    holds 3 * (9088² + 9088) = 247,802,496 parameters, of 267,898,881 in all (DNN 9,963,264, embedding tables
    6,639,104, encoder and pooling Linear 2,893,824, final MLP 600,193).

    Shapes: B batch, L history length (``max_len``), D item vector size (sum of the item features' sizes).

    Reference:
        1st place of the WWW 2025 MMCTR challenge, team momo: ``pinskyrobin/WWW2025_MMCTR`` ``src/Transformer_DCN.py``
        (mirror ``yinzm/WWW2025_MMCTR_rk1``), arXiv:2505.03543. Built from Vaswani et al., "Attention Is All You
        Need", NeurIPS 2017, arXiv:1706.03762, and Wang et al., "DCN V2", WWW 2021, arXiv:2008.13535.

    Deviations from the published code:
        - Padding mask: the published code passes the loader's mask (1 = valid) as ``src_key_padding_mask``
          (True = ignore), so attention sees only padding and the valid tokens' outputs are zeroed: the sequence
          branch reduces to f(target) plus a unary code of the history length (for lengths below ``first_k_cols``);
          only a full history (all L valid) lets its most recent item through. ``faithful_padding_mask: true``
          reproduces that exactly; the default (false) ignores the padding instead.
        - Both modes keep the published guard against fully ignored rows (see :func:`key_padding_mask`); ours
          builds a new mask instead of editing the loader's mask in place.
        - ``position_encoding: learned`` (off by default; not in the published model, which is order-blind apart
          from taking the last ``first_k_cols`` positions) adds the zoo's recency embedding to each history item
          vector before the tokens are built. In the faithful mode it has (almost) no effect: it is refused there.
        - ``nn.TransformerEncoder`` is built with ``enable_nested_tensor=False`` (same values; see the code).
        - A history shorter than ``first_k_cols`` raises a clear error (the published code fails with a shape
          mismatch in the cross network). The zoo's shared item embedding embeds only real history items (padding
          rows are zero either way: same function, tested). Gradient accumulation, clipping and the rest of the
          training loop come from the zoo's ``MMCTRModel``.

    Args:
        hidden_activations: activation of the parallel DNN and the final MLP ("relu" in the published config).
        dcn_cross_layers: CrossNetV2 layers.
        dcn_hidden_units: sizes of the DNN running parallel to the cross network (at least one layer).
        mlp_hidden_units: hidden sizes of the final MLP on [cross ‖ dnn] (() = one Linear to 1).
        num_heads: attention heads of the encoder; must divide 2D.
        transformer_layers: encoder layers.
        transformer_dropout: dropout inside the encoder layers.
        dim_feedforward: feed-forward size of each encoder layer.
        first_k_cols: most recent token outputs kept (needs ``max_len`` >= ``first_k_cols``).
        concat_max_pool: append a max-pool over the attended tokens through ``Linear(2D, 2D)``.
        net_dropout: dropout of the parallel DNN (the final MLP has none, as published).
        batch_norm: BatchNorm in the parallel DNN.
        faithful_padding_mask: true = the published inverted mask (what scored 0.9839), false = padding ignored.
        position_encoding: ``"none"`` or ``"learned"`` recency embedding on the history items (not in the paper).
        num_positions: rows of the recency table (``position_encoding: learned`` only).
        **kwargs: MMCTRModel / FuxiCTR BaseModel arguments (embedding_dim, learning_rate, regularizers,
            item_id_dropout, unknown_item, ...).

    Example::

        model = Transformer_DCN(feature_map, model_root="/tmp/ckpt", metrics=["AUC"], verbose=0, embedding_dim=8,
                                first_k_cols=4, dcn_hidden_units=(32,), mlp_hidden_units=(16,))
        y = model(batch)["y_pred"]   # (B, 1) in [0, 1]
    """

    def __init__(self, feature_map, model_id: str = "Transformer_DCN", hidden_activations: Activation = "ReLU",
                 dcn_cross_layers: PositiveInt = 3, dcn_hidden_units: Units = (1024, 512, 256),
                 mlp_hidden_units: Units = (64, 32), num_heads: PositiveInt = 1, transformer_layers: PositiveInt = 2,
                 transformer_dropout: DropoutRate = 0.2, dim_feedforward: PositiveInt = 256,
                 first_k_cols: PositiveInt = 16, concat_max_pool: bool = True, net_dropout: DropoutRate = 0.2,
                 batch_norm: bool = False, faithful_padding_mask: bool = False,
                 position_encoding: PositionEncoding = "none", num_positions: Annotated[int, Range(low=2)] = 32,
                 **kwargs) -> None:
        if not dcn_hidden_units:
            raise ConfigError("dcn_hidden_units=(); expected at least one layer size (the DNN parallel to the cross "
                              "network)")
        super().__init__(feature_map, model_id=model_id, **kwargs)
        self.positions = build_position_encoding(position_encoding, num_positions, self.item_info_dim)
        self.sequence = SequenceTransformer(self.item_info_dim, num_heads=num_heads, dim_feedforward=dim_feedforward,
                                            dropout=transformer_dropout, num_layers=transformer_layers,
                                            first_k_cols=first_k_cols, concat_max_pool=concat_max_pool,
                                            faithful_padding_mask=faithful_padding_mask)
        self.dcn_input_dim = self.row_emb_dim + self.item_info_dim + self.sequence.output_dim
        self.crossnet = CrossNetV2(self.dcn_input_dim, dcn_cross_layers)
        self.dnn = MLP_Block(input_dim=self.dcn_input_dim, hidden_units=list(dcn_hidden_units),
                             hidden_activations=hidden_activations, dropout_rates=net_dropout, batch_norm=batch_norm)
        self.mlp = MLP_Block(input_dim=self.dcn_input_dim + dcn_hidden_units[-1], output_dim=1,
                             hidden_units=list(mlp_hidden_units), hidden_activations=hidden_activations,
                             output_activation=self.output_activation)
        self.finish()

    @classmethod
    def config_conflicts(cls, params: Mapping[str, Any]) -> List[Tuple[str, str]]:
        """``first_k_cols`` beyond ``max_len``, and recency positions under the faithful mask (they would be added
        to the ignored tokens only), are refused."""
        out: List[Tuple[str, str]] = []
        first_k, max_len = params.get("first_k_cols", 16), params.get("max_len")
        if isinstance(max_len, int) and isinstance(first_k, int) and first_k > max_len:
            out.append(("first_k_cols", f"first_k_cols={first_k} exceeds max_len={max_len}: the encoder outputs only "
                                        f"max_len positions"))
        if params.get("faithful_padding_mask") and params.get("position_encoding", "none") != "none":
            out.append(("position_encoding", "key 'position_encoding: learned' has (almost) no effect with "
                                             "faithful_padding_mask: true (the valid history items it marks are "
                                             "masked out); use one or the other"))
        return out + position_conflicts(params) + super().config_conflicts(params)

    def forward(self, inputs: MMCTRBatch) -> Dict[str, Tensor]:
        row_inputs, item_inputs, mask = self.get_inputs(inputs)
        target, history = self.embed_items(item_inputs, mask.shape[0])  # (B, D), (B, L, D)
        if self.positions is not None:
            history = history + self.positions(mask)  # padded positions get 0
        parts = [self.embedding_layer(row_inputs, flatten_emb=True)] if row_inputs else []  # (B, F_row * d)
        x0 = torch.cat(parts + [target, self.sequence(target, history, mask)], dim=-1)  # (B, dcn_input_dim)
        final = torch.cat([self.crossnet(x0), self.dnn(x0)], dim=-1)  # (B, dcn_input_dim + dnn_dim)
        return {"y_pred": self.mlp(final)}  # (B, 1), sigmoid inside
