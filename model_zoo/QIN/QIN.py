"""QIN, the 2nd-place model of the WWW 2025 MMCTR challenge: ReLU target attention + a Quadratic Neural Network."""
from __future__ import annotations

import math
from typing import Annotated, Any, Dict, List, Mapping, Optional, Tuple

import torch
from torch import Tensor, nn

from model_zoo.datasets.loader import MMCTRBatch
from model_zoo.errors import ConfigError
from model_zoo.layers.mmctr_base import MMCTRModel
from model_zoo.layers.position import PositionEncoding, build_position_encoding, position_conflicts
from model_zoo.params import DropoutRate, PositiveInt, Range
from model_zoo.registry import register_model

__all__ = ["QIN", "ReLUTargetAttention", "QuadraticLayer", "QuadraticNetwork"]

LrDecayFactor = Annotated[float, Range(0, 1, low_open=True, high_open=True)]


def _check_positive(owner: str, **values: int) -> None:
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{owner}: {key}={value!r}; expected an integer >= 1")


class ReLUTargetAttention(nn.Module):
    """Single-query dot-product attention whose weights are ReLU(scaled score × mask): no softmax.

    ``out = W_o(Σ_j relu(q·k_j / sqrt(A) · m_j) v_j) + target`` with q = W_q t, k_j = W_k h_j, v_j = W_v h_j
    (W_q, W_k, W_v: D → A, W_o: A → D; only W_o may have a bias). The weights are unnormalised (they can sum to
    anything, including 0); a padded position (m_j = 0) gets weight relu(0) = 0, so padding contributes nothing and an
    all-padding history gives ``target`` (plus ``W_o.bias`` with ``output_bias``).

    Shapes: B rows, L history positions, D item vector size, A ``attention_dim``, n valid (row, position) pairs.

    Args:
        input_dim: D.
        attention_dim: A, the Q/K/V size.
        use_scale: divide the scores by sqrt(A).
        output_bias: give W_o a bias (the published run had none; a later commit of the code added one).

    Example::

        attention = ReLUTargetAttention(8, 16)
        out = attention(torch.randn(2, 8), torch.randn(2, 5, 8), torch.ones(2, 5))   # (2, 8)
    """

    def __init__(self, input_dim: int, attention_dim: int, use_scale: bool = True, output_bias: bool = False) -> None:
        super().__init__()
        _check_positive("ReLUTargetAttention", input_dim=input_dim, attention_dim=attention_dim)
        self.scale = math.sqrt(attention_dim) if use_scale else 1.0
        self.W_q = nn.Linear(input_dim, attention_dim, bias=False)
        self.W_k = nn.Linear(input_dim, attention_dim, bias=False)
        self.W_v = nn.Linear(input_dim, attention_dim, bias=False)
        self.W_o = nn.Linear(attention_dim, input_dim, bias=output_bias)

    def weights(self, target: Tensor, history: Tensor, mask: Tensor) -> Tensor:
        """(B, L) attention weights relu(q·k / scale · mask)."""
        scores = torch.einsum("ba,bla->bl", self.W_q(target), self.W_k(history)) / self.scale  # (B, L)
        return torch.relu(scores * mask.to(scores.dtype))

    def forward(self, target: Tensor, history: Tensor, mask: Tensor) -> Tensor:
        pooled = torch.einsum("bl,bla->ba", self.weights(target, history, mask), self.W_v(history))  # (B, A)
        return self.W_o(pooled) + target  # (B, D)

    def forward_valid(self, target: Tensor, rows: Tensor, seq: Tensor) -> Tensor:
        """``forward`` on a padding-free history: ``seq`` (n, D) holds the valid items, ``rows`` (n,) their row.
        Equal to ``forward`` (padded positions have weight 0 there), without building the (B, L, A) keys."""
        scores = (self.W_q(target)[rows] * self.W_k(seq)).sum(dim=-1, keepdim=True) / self.scale  # (n, 1)
        values = torch.relu(scores) * self.W_v(seq)  # (n, A)
        pooled = values.new_zeros(target.shape[0], values.shape[1]).index_add(0, rows, values)  # (B, A)
        return self.W_o(pooled) + target  # (B, D)


class QuadraticLayer(nn.Module):
    """One quadratic interaction: ``x ⊙ Σ_r dropout(W_r x + b_r)`` with ``num_row`` blocks W_r of size d × d.

    A single ``Linear(d, num_row·d)`` produces the R blocks (B, R, d); each is multiplied element-wise with the
    input and the R products are summed (the published einsum ``"bd,brd->bd"``). The output is quadratic in x.

    Args:
        input_dim: d.
        num_row: R, the number of blocks.
        dropout: dropout on the (B, R·d) linear output, before the product.

    Example::

        layer = QuadraticLayer(6, num_row=3)
        out = layer(torch.randn(4, 6))   # (4, 6)
    """

    def __init__(self, input_dim: int, num_row: int = 2, dropout: float = 0.0) -> None:
        super().__init__()
        _check_positive("QuadraticLayer", input_dim=input_dim, num_row=num_row)
        self.input_dim, self.num_row = input_dim, num_row
        self.linear = nn.Linear(input_dim, input_dim * num_row)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        blocks = self.dropout(self.linear(x)).view(-1, self.num_row, self.input_dim)  # (B, R, d)
        return x * blocks.sum(dim=1)  # (B, d)


class QuadraticNetwork(nn.Module):
    """QNN: ``num_layers`` residual quadratic layers, then a linear output (the logit).

    Each layer: ``x ← x + dropout(PReLU(BN(QuadraticLayer(x))))``; the same ``dropout`` rate also acts inside the
    quadratic layer (as published).

    Args:
        input_dim: d.
        num_layers: residual layers.
        num_row: blocks per quadratic layer.
        dropout: dropout rate (inside each quadratic layer and after its activation).
        batch_norm: BatchNorm1d after each quadratic layer.

    Example::

        qnn = QuadraticNetwork(6, num_layers=2, num_row=3, dropout=0.1)
        logit = qnn(torch.randn(4, 6))   # (4, 1)
    """

    def __init__(self, input_dim: int, num_layers: int = 3, num_row: int = 2, dropout: float = 0.0,
                 batch_norm: bool = True) -> None:
        super().__init__()
        _check_positive("QuadraticNetwork", input_dim=input_dim, num_layers=num_layers)
        self.layers = nn.ModuleList(QuadraticLayer(input_dim, num_row, dropout) for _ in range(num_layers))
        self.norms = nn.ModuleList(nn.BatchNorm1d(input_dim) if batch_norm else nn.Identity()
                                   for _ in range(num_layers))
        self.activations = nn.ModuleList(nn.PReLU() for _ in range(num_layers))
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(input_dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        for layer, norm, activation in zip(self.layers, self.norms, self.activations):
            x = x + self.dropout(activation(norm(layer(x))))  # (B, d)
        return self.fc(x)  # (B, 1)


@register_model
class QIN(MMCTRModel):
    """Quadratic Interest Network: a QNN over [context fields ‖ target ‖ ReLU-attention-pooled history].

    Every ``source: item`` feature is embedded for the target and each history item into an item vector of size D.
    ``ReLUTargetAttention`` (D → A → D, residual + target) pools the history; the QNN input is the flat context
    embeddings ‖ target (D) ‖ pooled history (D), of size d_in = F_ctx·d + 2D (1024 with the published config:
    2·128 + 384 + 384), and the QNN's linear output goes through the sigmoid.

    The attention is a block of this folder, not an option of the zoo's ``TargetAttention``: that class wraps
    FuxiCTR's ``MultiHeadTargetAttention`` / ``DIN_Attention`` (softmax or an MLP scorer, no residual), so a ReLU-score
    variant with a residual target would be a fork of the wrapped layer rather than an option.

    Shapes: B batch, L history length, D item vector size, A attention_dim, d_in QNN width.

    Reference:
        Li, Li, Zhang, Zhang, Yu, Sang and Zhang (DISCO.AHU, Anhui University), "Quadratic Interest Network for
        Multimodal Click-Through Rate Prediction", 2nd place of the WWW 2025 EReL@MIR MMCTR challenge (Task 2),
        arXiv:2504.17699 (the paper calls the attention "Adaptive Sparse Target Attention", ASTA, and the head a
        "Quadratic Neural Network", QNN). Code: ``salmon1802/QIN``, ``src/QIN_variety_v9.py`` with expid
        ``QIN_variety_v9`` (fuxictr 2.3.7). The order of operations follows that code as of commit 678115c, the
        version whose log (``checkpoints/MicroLens_1M_x1/QIN_variety_v9_9701.log``: num_row 4, 31,244,293
        parameters, valid AUC 0.9701) this class reproduces; commit 3aa9f52 later added a bias to W_o and
        ``2 * embedding_dim`` to D for its "with level feature" data (see ``attention_output_bias``).

    Deviations from the published code:
        - The history/target item vectors come from the zoo's shared item embedding (``MMCTRModel``), so the zoo's
          options apply: ``item_id_dropout`` / ``unknown_item`` and the recency ``position_encoding`` (off by default;
          not published). With ``skip_padding_items`` the attention runs padding-free
          (``ReLUTargetAttention.forward_valid``; same function, tested).
        - D is the sum of the item features' sizes (as at 678115c; 3aa9f52's ``+ 2 * embedding_dim`` fits only
          its 5-feature "level" item_info).
        - ``lr_decay_factor`` is a config key of this model (published ``factor: 0.5`` in an overridden
          ``checkpoint_and_earlystop``); the zoo keeps FuxiCTR's loop and overrides ``lr_decay`` instead.
        - The published class's unused ``pseudo_label_epochs`` argument is not a key.
        - ``num_row`` blocks are summed after the product (as published): at evaluation the layer equals
          ``x ⊙ (W x + b)`` with W = Σ_r W_r; num_row only changes the parametrisation and the dropout noise.

    Args:
        attention_dim: A; None = 2D (the published 384 → 768).
        attention_use_scale: divide the attention scores by sqrt(A).
        attention_output_bias: a bias in W_o (off = the published run; on = the later code).
        num_layers: QNN residual layers.
        num_row: blocks per quadratic layer (Linear(d_in, num_row·d_in)).
        net_dropout: dropout in the QNN.
        batch_norm: BatchNorm in the QNN.
        lr_decay_factor: learning-rate multiplier on each non-improving evaluation (with ``reduce_lr_on_plateau``).
        position_encoding: ``"none"`` (order-blind, as published) or ``"learned"``: a recency embedding added to
            each history item before the attention (``model_zoo/layers/position.py``).
        num_positions: rows of the recency table (``position_encoding: learned`` only).
        **kwargs: MMCTRModel / FuxiCTR BaseModel arguments (embedding_dim, regularizers, item_id_dropout,
            unknown_item, ...).

    Example::

        model = QIN(feature_map, model_root="/tmp/ckpt", metrics=["AUC"], verbose=0, embedding_dim=8,
                    num_layers=2, num_row=2)
        y = model(batch)["y_pred"]   # (B, 1) in [0, 1]
    """

    def __init__(self, feature_map, model_id: str = "QIN", attention_dim: Optional[PositiveInt] = None,
                 attention_use_scale: bool = True, attention_output_bias: bool = False,
                 num_layers: PositiveInt = 4, num_row: PositiveInt = 4,
                 net_dropout: DropoutRate = 0.1, batch_norm: bool = True, lr_decay_factor: LrDecayFactor = 0.1,
                 position_encoding: PositionEncoding = "none", num_positions: Annotated[int, Range(low=2)] = 32,
                 **kwargs) -> None:
        super().__init__(feature_map, model_id=model_id, **kwargs)
        self.lr_decay_factor = float(lr_decay_factor)
        self.positions = build_position_encoding(position_encoding, num_positions, self.item_info_dim)
        self.attention = ReLUTargetAttention(self.item_info_dim, attention_dim or 2 * self.item_info_dim,
                                             use_scale=attention_use_scale, output_bias=attention_output_bias)
        self.qnn_dim = self.row_emb_dim + 2 * self.item_info_dim
        self.qnn = QuadraticNetwork(self.qnn_dim, num_layers=num_layers, num_row=num_row, dropout=net_dropout,
                                    batch_norm=batch_norm)
        self.finish()

    @classmethod
    def config_conflicts(cls, params: Mapping[str, Any]) -> List[Tuple[str, str]]:
        out = []
        if "lr_decay_factor" in params and params.get("reduce_lr_on_plateau") is False:
            out.append(("lr_decay_factor", "key 'lr_decay_factor' is read only with reduce_lr_on_plateau: true"))
        return out + position_conflicts(params) + super().config_conflicts(params)

    def lr_decay(self, factor: Optional[float] = None, min_lr: float = 1e-6) -> float:
        """FuxiCTR's plateau decay (called with no factor by its early-stopping loop) with ``lr_decay_factor``."""
        return super().lr_decay(self.lr_decay_factor if factor is None else factor, min_lr)

    def forward(self, inputs: MMCTRBatch) -> Dict[str, Tensor]:
        row_inputs, item_inputs, mask = self.get_inputs(inputs)
        if self.skip_padding_items:
            target, rows, seq = self.embed_valid_items(item_inputs, mask)  # (B, D), (n,), (n, D)
            if self.positions is not None:
                seq = seq + self.positions.of_valid(mask)
            pooled = self.attention.forward_valid(target, rows, seq)  # (B, D)
        else:
            target, history = self.embed_items(item_inputs, mask.shape[0])  # (B, D), (B, L, D)
            if self.positions is not None:
                history = history + self.positions(mask)  # padded positions get 0
            pooled = self.attention(target, history, mask)  # (B, D)
        parts = [target, pooled]
        if row_inputs:
            parts.insert(0, self.embedding_layer(row_inputs, flatten_emb=True))  # (B, F_ctx * d)
        logit = self.qnn(torch.cat(parts, dim=-1))  # (B, 1)
        return {"y_pred": self.output_activation(logit)}
