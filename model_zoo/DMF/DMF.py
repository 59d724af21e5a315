"""DMF, Decoupled Multimodal Fusion (arXiv 2510.11066): DTA + similarity histogram + CMM over MMCTR item features."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from fuxictr.pytorch.layers import MLP_Block
from torch import Tensor, nn

from model_zoo.datasets.loader import MMCTRBatch
from model_zoo.datasets.microlens import ColumnSpec, read_item_info, read_optional_item_table, read_split
from model_zoo.errors import DataError
from model_zoo.layers.mmctr_base import MMCTRModel
from model_zoo.layers.similarity import (BUCKET_EDGE_MODES, SimilarityBucketizer, SimilarityHistogram,
                                         gathered_cosines, l2_normalize_segments, segment_cosines)
from model_zoo.registry import register_model

__all__ = ["DMF", "DecoupledTargetAttention", "EarlyFusionTargetAttention"]

ATTENTION_MODES = ("decoupled", "early_fusion")
CMM_MODES = ("concat", "weighted_sum", "gate")
MM_SOURCES = ("item_feature", "item_info")
_ITEM_ID = "item_id"  # the item id feature of the MicroLens schema (target and history ids)
HistoryState = Any  # DTA: (K^id, V^id); early fusion: the raw history vectors


def _masked_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """Softmax over the last axis of (B, h, L) ``scores`` where ``mask`` (B, L) or (L,) is 1 (all padding -> 0)."""
    valid = mask.unsqueeze(-2) > 0  # (B, 1, L) or (1, L)
    alpha = torch.softmax(scores.masked_fill(~valid, torch.finfo(scores.dtype).min), dim=-1)
    return alpha * valid.to(alpha.dtype)  # an all-padding row was uniform; zero it


def _check_choice(key: str, value: str, allowed: Tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{key}={value!r}; expected one of {allowed}")


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
            raise ValueError(f"num_heads={num_heads}; expected a divisor of attention_dim={attention_dim}")
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
        alpha = _masked_softmax(scores, mask)  # (B, h, L)
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
            raise ValueError(f"num_heads={num_heads}; expected a divisor of attention_dim={attention_dim}")
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
        alpha = _masked_softmax(torch.einsum("bhd,blhd->bhl", q, keys) * self.scale, mask)  # (B, h, L)
        out = torch.einsum("bhl,blhd->bhd", alpha, values).reshape(rows, -1)  # (B, d_a)
        return self.output_layer(out) if self.output_layer is not None else out


class _ComplementaryModality(nn.Module):
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


@register_model
class DMF(MMCTRModel):
    """DMF: Decoupled Multimodal Fusion for user-interest modelling in CTR prediction. Not RecBole's DMF (Deep
    Matrix Factorization, IJCAI'17).

    ID side: e_i = item id ‖ pooled tags embeddings (‖ the ``item_emb_d128`` projection with ``mm_in_keys``).
    MM side: K frozen, L2-normalised modality vectors per item (``txt_emb_BERT`` and ``img_emb_CLIPRN50`` from
    item_feature.parquet held as a non-persistent buffer, or the joined ``item_emb_d128``); only the cosine
    s^(k)_{t,j} crosses into ID space. Pathways: DTA over bucket ids of s (modality-enriched) and an MLP over a
    tiered histogram of s (modality-centric), combined by CMM. Head: [context ; e_t ; proj(item_emb_d128 of t) ;
    CMM] -> MLP -> sigmoid. :meth:`forward_serving` scores N candidates of one user, computing every
    target-agnostic part once.

    Shapes: B batch, L history, d ID item vector size, d_a attention size, K modalities, n_b buckets, n_t tiers.

    Reference:
        Alin Fan, Hanqing Li, Sihan Lu, Jingsong Yuan, Jiandong Zhang (Alibaba International Digital Commerce /
        Lazada; Renmin University), DMF, Decoupled Multimodal Fusion for user-interest modelling in CTR prediction,
        arXiv:2510.11066, 2025 (v2 names DTA and CMM). Only the abstracts were available; the implementable reading
        is shared/reference/dmf_spec.md.

    Deviations from paper:
        Built from the abstracts and the spec's proposed reading: bucket ids from per-modality cosines with n_b
        equal-width or quantile edges, separate P_K/P_V per modality (summed), scaled dot-product DTA with no key bias,
        SimTier histogram of n_t equal-width tiers, CMM ``concat`` by default (``weighted_sum``/``gate`` project both
        pathways to d_a with one Linear each). No scaled-lookup encoding (DMAE), no Dice. The unknown paper values
        (n_b, n_t, dims, encoders) are spec defaults. The head's "projected target MM vector" is FuxiCTR's projection
        of ``item_emb_d128`` (the challenge's PCA of text and image), not a new projection of the raw encoder vectors.
        ``mm_source`` is explicit (default ``item_feature``), not picked by file presence, because K fixes the
        parameter shapes before any file is read. The early-fusion comparator uses d_s = d_a.

    Args:
        mm_source: ``"item_feature"`` (K modalities from item_feature.parquet; needs :meth:`attach_data`) or
            ``"item_info"`` (K = 1: cosine of the joined ``mm_item_info_column`` vectors).
        mm_feature_columns: item_feature.parquet columns used as modalities.
        mm_item_info_column: the item_info multimodal feature (similarity source for ``item_info``, head input).
        mm_in_keys: put the projection of ``mm_item_info_column`` into e_i (ablation; still cacheable).
        target_mm_in_head: feed the target's ``mm_item_info_column`` projection to the head (without ``mm_in_keys``).
        attention_mode: ``"decoupled"`` (DTA) or ``"early_fusion"`` (the comparator; d_s = attention_dim).
        attention_dim: d_a.
        num_heads: DTA heads.
        attention_output_dim: size of an output Linear after DTA; None = none.
        num_buckets: n_b per modality.
        bucket_edges: ``"equal_width"`` on [-1, 1] or ``"quantile"`` (fitted by :meth:`attach_data`, saved in the
            checkpoint).
        quantile_fit_rows: train rows sampled (seeded by ``seed``) to fit quantile edges.
        sim_on_values: add bucket embeddings to the values as well as the keys.
        use_dta: the modality-enriched pathway.
        use_histogram: the modality-centric pathway (at least one of the two must be on).
        num_tiers: n_t histogram tiers on [-1, 1].
        normalize_histogram: divide counts by the valid history length.
        histogram_hidden_units: MLP over the K n_t histogram (its last size is the pathway output).
        cmm_mode: ``"concat"``, ``"weighted_sum"`` or ``"gate"``.
        cmm_weight: weight of the DTA pathway in ``weighted_sum``.
        dnn_hidden_units, dnn_activations, net_dropout, batch_norm: the head MLP.
        learning_rate, optimizer, loss: compile settings.
        **kwargs: MMCTRModel / FuxiCTR BaseModel arguments (embedding_dim, regularizers, model_root, ...).

    Example::

        model = DMF(feature_map, model_root="/tmp/ckpt", metrics=["AUC"], verbose=0, embedding_dim=8)
        model.attach_data(files, params)            # loads the multimodal tables
        y = model(batch)["y_pred"]                  # (B, 1)
        user, cands = model.serving_request(batch, row=0, candidate_rows=range(8))
        scores = model.forward_serving(user, cands) # (8, 1)
    """

    def __init__(self, feature_map, model_id: str = "DMF", mm_source: str = "item_feature",
                 mm_feature_columns: Sequence[str] = ("txt_emb_BERT", "img_emb_CLIPRN50"),
                 mm_item_info_column: str = "item_emb_d128", mm_in_keys: bool = False, target_mm_in_head: bool = True,
                 attention_mode: str = "decoupled", attention_dim: int = 64, num_heads: int = 1,
                 attention_output_dim: Optional[int] = None, num_buckets: int = 32,
                 bucket_edges: str = "equal_width", quantile_fit_rows: int = 20_000, sim_on_values: bool = True,
                 use_dta: bool = True, use_histogram: bool = True, num_tiers: int = 20,
                 normalize_histogram: bool = False, histogram_hidden_units: Sequence[int] = (64,),
                 cmm_mode: str = "concat", cmm_weight: float = 0.5,
                 dnn_hidden_units: Sequence[int] = (512, 256, 128), dnn_activations: str = "ReLU",
                 net_dropout: float = 0.0, batch_norm: bool = True, learning_rate: float = 1e-3,
                 optimizer: str = "adam", loss: str = "binary_crossentropy", **kwargs) -> None:
        _check_choice("mm_source", mm_source, MM_SOURCES)
        _check_choice("attention_mode", attention_mode, ATTENTION_MODES)
        _check_choice("bucket_edges", bucket_edges, BUCKET_EDGE_MODES)
        _check_choice("cmm_mode", cmm_mode, CMM_MODES)
        if not (use_dta or use_histogram):
            raise ValueError("use_dta=False and use_histogram=False; expected at least one pathway on")
        if not 0.0 <= cmm_weight <= 1.0:
            raise ValueError(f"cmm_weight={cmm_weight}; expected a value in [0, 1]")
        super().__init__(feature_map, model_id=model_id, **kwargs)
        has_info_mm = mm_item_info_column in self.item_features
        if not has_info_mm and (mm_source == "item_info" or mm_in_keys or target_mm_in_head):
            raise ValueError(f"mm_item_info_column={mm_item_info_column!r} is not an item feature of the feature map;"
                             f" expected one of {tuple(self.item_features)}")
        self.mm_source, self.mm_feature_columns = mm_source, tuple(mm_feature_columns)
        self.mm_item_info_column, self.quantile_fit_rows = mm_item_info_column, int(quantile_fit_rows)
        self.id_features: List[str] = [f for f in self.item_features if f != mm_item_info_column or mm_in_keys]
        self.head_mm = target_mm_in_head and not mm_in_keys  # with mm_in_keys the projection is already in e_t
        id_dim = sum(self._emb_dim(f) for f in self.id_features)
        num_mod = len(self.mm_feature_columns) if mm_source == "item_feature" else 1
        # Frozen L2-normalised MM vectors by item id, (I + 1, M) with a zero row 0: reloaded from data, not saved.
        self.register_buffer("mm_table", None, persistent=False)
        self.mm_dims: Tuple[int, ...] = (() if mm_source == "item_feature" else
                                         (int(self._raw_dim(mm_item_info_column)),))
        self.bucketizer = SimilarityBucketizer(num_mod, num_buckets, bucket_edges)
        attention_cls = DecoupledTargetAttention if attention_mode == "decoupled" else EarlyFusionTargetAttention
        extra = {"similarity_dim": attention_dim} if attention_mode == "early_fusion" else {}
        self.attention = (attention_cls(id_dim, attention_dim, num_mod * num_buckets, num_heads=num_heads,
                                        sim_on_values=sim_on_values, output_dim=attention_output_dim, **extra)
                          if use_dta else None)
        self.histogram = SimilarityHistogram(num_tiers, normalize=normalize_histogram) if use_histogram else None
        self.histogram_mlp = (MLP_Block(num_mod * num_tiers, hidden_units=list(histogram_hidden_units),
                                        hidden_activations="ReLU") if use_histogram else None)
        centric_dim = (list(histogram_hidden_units) or [num_mod * num_tiers])[-1] if use_histogram else 0
        self.cmm = _ComplementaryModality(cmm_mode, self.attention.output_dim if use_dta else 0, centric_dim,
                                          attention_dim, cmm_weight)
        head_dim = (self.row_emb_dim + id_dim + self.cmm.output_dim
                    + (self._emb_dim(mm_item_info_column) if self.head_mm else 0))
        self.dnn = MLP_Block(input_dim=head_dim, output_dim=1, hidden_units=list(dnn_hidden_units),
                             hidden_activations=dnn_activations, output_activation=self.output_activation,
                             dropout_rates=net_dropout, batch_norm=batch_norm)
        self.finish(optimizer, loss, learning_rate)

    def _raw_dim(self, feature: str) -> int:
        """Width of an ``embedding`` feature's stored vector (FuxiCTR's default: its embedding_dim)."""
        spec = self.feature_map.features[feature]
        return spec.get("pretrain_dim", spec.get("embedding_dim", self.embedding_dim))

    # ---- data --------------------------------------------------------------------------------------------------
    def attach_data(self, files, params: Mapping[str, Any]) -> None:
        """Load the frozen MM tables (``mm_source: item_feature``) and fit quantile bucket edges if configured.

        Args:
            files: ``model_zoo.datasets.prepare.DatasetFiles`` of the dataset.
            params: resolved params (``item_feature`` path, ``max_len``, ``seed``).
        """
        if self.mm_source == "item_feature":
            path = self._item_feature_path(files, params)
            specs = [ColumnSpec(c, "float_list") for c in self.mm_feature_columns]
            arrays = read_optional_item_table(path, specs, has_padding_row=False)
            vocab = int(self.feature_map.features[_ITEM_ID]["vocab_size"])
            if len(arrays[_ITEM_ID]) > vocab - 1:
                raise DataError(f"{len(arrays[_ITEM_ID])} items, but the item_id vocab_size {vocab} allows at most "
                                f"{vocab - 1}", path=str(path), column=_ITEM_ID)
            dims = tuple(int(arrays[c].shape[1]) for c in self.mm_feature_columns)
            table = torch.zeros(vocab, sum(dims))  # row 0 (padding) and unseen ids stay zero
            table[1:len(arrays[_ITEM_ID]) + 1] = torch.from_numpy(
                np.concatenate([arrays[c] for c in self.mm_feature_columns], axis=1))
            self.attach_mm_vectors(table, dims)
        if self.bucketizer.mode == "quantile":
            self._fit_quantile_edges(files, params)

    def attach_mm_vectors(self, table: Tensor, dims: Sequence[int]) -> None:
        """Hold ``table`` (I + 1, M), the K modality vectors of every item id side by side (row 0 = padding, zero),
        as the frozen non-persistent buffer, each modality L2-normalised once. Used by :meth:`attach_data`, and
        directly by benchmarks or callers that hold the vectors in memory."""
        if self.mm_source != "item_feature":
            raise ValueError(f"attach_mm_vectors needs mm_source='item_feature'; got {self.mm_source!r}")
        if len(dims) != self.bucketizer.num_modalities:
            raise ValueError(f"dims={tuple(dims)} gives {len(dims)} modalities; expected "
                             f"{self.bucketizer.num_modalities} (mm_feature_columns={self.mm_feature_columns})")
        self.mm_dims = tuple(int(d) for d in dims)
        self.mm_table = l2_normalize_segments(table.float(), self.mm_dims).to(self.device)

    @staticmethod
    def _item_feature_path(files, params: Mapping[str, Any]) -> Path:
        """The configured ``item_feature`` file, else item_feature.parquet in the dataset directory."""
        default = Path(files.data_dir) / "item_feature.parquet"
        configured = Path(params["item_feature"]) if params.get("item_feature") else None
        for path in (configured, default):
            if path is not None and path.is_file():
                return path
        tried = " or ".join(str(p) for p in (configured, default) if p is not None)
        raise DataError(f"mm_source='item_feature' needs item_feature.parquet (looked for {tried}); place the file "
                        f"there or set 'mm_source: item_info'")

    def _fit_quantile_edges(self, files, params: Mapping[str, Any]) -> None:
        """Quantile edges per modality from the cosines of every valid (target, history) pair of sampled train rows."""
        split = read_split(files.train, [ColumnSpec("item_seq", "int_list"), ColumnSpec(_ITEM_ID, "int")],
                           max_len=params.get("max_len"), allow_extra=True)
        rng = np.random.default_rng(int(params.get("seed") or 0))
        num_rows = len(split[_ITEM_ID])
        rows = np.sort(rng.choice(num_rows, size=min(num_rows, self.quantile_fit_rows), replace=False))
        ids = torch.from_numpy(np.concatenate([split["item_seq"][rows], split[_ITEM_ID][rows, None]], 1)).long()
        if self.mm_source == "item_feature":
            table = self.mm_table.cpu()
        else:
            column = read_item_info(files.item_info, [ColumnSpec(self.mm_item_info_column, "float_list")])
            table = l2_normalize_segments(torch.from_numpy(column[self.mm_item_info_column]), self.mm_dims)
        valid = ids[:, :-1] > 0
        sims = gathered_cosines(table, ids[:, -1], ids[:, :-1], valid, self.mm_dims)  # (n, K, L)
        self.bucketizer.fit([sims[:, k][valid] for k in range(sims.shape[1])])

    def _table(self) -> Tensor:
        if self.mm_table is None:
            raise RuntimeError("DMF(mm_source='item_feature'): the multimodal tables are not attached; call "
                               "model.attach_data(files, params) after building the model (run_expid.py does)")
        return self.mm_table

    def _mm_vectors(self, item_inputs: Dict[str, Tensor]) -> Tensor:
        """Normalised MM vectors (n, M) of the n items in ``item_inputs`` (flat: one item per leading index)."""
        with torch.no_grad():  # frozen: similarities only feed discrete ids and counts
            if self.mm_source == "item_info":
                return l2_normalize_segments(item_inputs[self.mm_item_info_column].float(), self.mm_dims)
            return self._table().index_select(0, item_inputs[_ITEM_ID].reshape(-1))

    def _batch_cosines(self, item_inputs: Dict[str, Tensor], mask: Tensor) -> Tensor:
        """(B, K, L) target-history cosines of a training-layout batch."""
        rows, length = mask.shape
        if self.mm_source == "item_feature":  # gather only the valid pairs from the table
            ids = item_inputs[_ITEM_ID].view(rows, length + 1)
            with torch.no_grad():
                return gathered_cosines(self._table(), ids[:, -1], ids[:, :-1], mask, self.mm_dims)
        mm = self._mm_vectors(item_inputs).view(rows, length + 1, -1)  # (B, L + 1, M)
        return segment_cosines(mm[:, -1], mm[:, :-1], self.mm_dims)

    def _embed(self, inputs: Dict[str, Tensor], features: Sequence[str]) -> Tensor:
        return self.embedding_layer({f: inputs[f] for f in features}, flatten_emb=True)

    # ---- model -------------------------------------------------------------------------------------------------
    def _score(self, context: Optional[Tensor], target: Tensor, target_mm: Optional[Tensor], state: HistoryState,
               sims: Tensor, mask: Tensor) -> Tensor:
        """Both pathways, CMM and the head. ``sims`` (B, K, L); ``mask`` (B, L), or (L,) with a shared history."""
        enriched = centric = None
        if self.attention is not None:
            bucket_ids = self.bucketizer(sims, offset_by_modality=True)  # (B, K, L)
            enriched = self.attention(target, state, bucket_ids, mask)  # (B, d_a or attention_output_dim)
        if self.histogram is not None:
            centric = self.histogram_mlp(self.histogram(sims, mask).flatten(1))  # (B, K n_t) -> (B, .)
        parts = [p for p in (context, target, target_mm) if p is not None] + [self.cmm(enriched, centric)]
        return self.dnn(torch.cat(parts, dim=-1))  # (B, 1)

    def forward(self, inputs: MMCTRBatch) -> Dict[str, Tensor]:
        row_inputs, item_inputs, mask = self.get_inputs(inputs)
        rows, length = mask.shape
        item_emb = self._embed(item_inputs, self.id_features).view(rows, length + 1, -1)  # (B, L + 1, d)
        # the target is the last of the L + 1 joined rows
        target, history = item_emb[:, -1], item_emb[:, :-1]  # (B, d), (B, L, d)
        sims = self._batch_cosines(item_inputs, mask)  # (B, K, L)
        target_mm = None
        if self.head_mm:
            raw = item_inputs[self.mm_item_info_column]
            target_mm = self._embed({self.mm_item_info_column: raw.view(rows, length + 1, -1)[:, -1]},
                                    [self.mm_item_info_column])  # (B, d_mm)
        context = self._embed(row_inputs, list(row_inputs)) if row_inputs else None  # (B, row_emb_dim)
        state = self.attention.prepare_history(history) if self.attention is not None else None
        return {"y_pred": self._score(context, target, target_mm, state, sims, mask)}

    # ---- serving -------------------------------------------------------------------------------------------------
    def forward_serving(self, user: Mapping[str, Any], candidates: Mapping[str, Tensor]) -> Tensor:
        """Scores of N candidates for one user: (N, 1), equal to :meth:`forward` on :meth:`request_to_batch`.

        Computed once per user: the history item vectors, K^id and V^id, the normalised history MM vectors and the
        context embeddings. Per candidate: e_t, q, N x L cosines, bucket ids, the gather/scatter of DTA, the
        histogram and the head.

        Args:
            user: ``{"history": {item feature: (L, ...)}, "mask": (L,) 1 = valid, "context": {row feature: (1,)}}``;
                the history dict holds the item-side columns of the history items (as item_info rows: ``item_id``
                (L,), ``item_tags`` (L, 5), ``item_emb_d128`` (L, 128)).
            candidates: ``{item feature: (N, ...)}``, the same item-side columns for the N candidates.
        """
        history_in = {k: v.to(self.device) for k, v in user["history"].items()}
        cand_in = {k: v.to(self.device) for k, v in candidates.items()}
        mask = user["mask"].to(self.device).float()  # (L,)
        num_cands = cand_in[_ITEM_ID].shape[0]
        # once per user
        history = self._embed(history_in, self.id_features)  # (L, d)
        state = self.attention.prepare_history(history) if self.attention is not None else None
        history_mm = self._mm_vectors(history_in)  # (L, M)
        context = None
        if user.get("context"):
            context = self._embed({k: v.to(self.device) for k, v in user["context"].items()},
                                  list(user["context"])).expand(num_cands, -1)  # (N, row_emb_dim)
        # per candidate
        target = self._embed(cand_in, self.id_features)  # (N, d)
        sims = segment_cosines(self._mm_vectors(cand_in), history_mm, self.mm_dims)  # (N, K, L)
        target_mm = self._embed(cand_in, [self.mm_item_info_column]) if self.head_mm else None
        return self._score(context, target, target_mm, state, sims, mask)

    def serving_request(self, batch: MMCTRBatch, row: int,
                        candidate_rows: Optional[Sequence[int]] = None) -> Tuple[Dict[str, Any], Dict[str, Tensor]]:
        """The serving input of ``batch`` row ``row`` (its history and context), scoring the targets of
        ``candidate_rows`` (default: the row's own target)."""
        batch_dict, item_dict, mask = batch
        rows, length = mask.shape
        cand = list(candidate_rows) if candidate_rows is not None else [row]
        per_row = {k: v.view(rows, length + 1, *v.shape[1:]) for k, v in item_dict.items() if k in self.item_features}
        user = {"history": {k: v[row, :-1] for k, v in per_row.items()}, "mask": mask[row],
                "context": {k: batch_dict[k][row:row + 1] for k in self.row_features if k in batch_dict}}
        return user, {k: v[cand, -1] for k, v in per_row.items()}

    def request_to_batch(self, user: Mapping[str, Any], candidates: Mapping[str, Tensor]) -> MMCTRBatch:
        """The N-row training-layout batch of a serving request (row n: the user's history, candidate n)."""
        num_cands = next(iter(candidates.values())).shape[0]
        item_dict = {}
        for k, hist in user["history"].items():
            rows = torch.cat([hist.unsqueeze(0).expand(num_cands, *hist.shape),
                              candidates[k].unsqueeze(1)], dim=1)  # (N, L + 1, ...)
            item_dict[k] = rows.reshape(-1, *hist.shape[1:])
        batch_dict = {k: v.expand(num_cands) for k, v in user.get("context", {}).items()}
        return MMCTRBatch(batch_dict, item_dict, user["mask"].unsqueeze(0).expand(num_cands, -1))
