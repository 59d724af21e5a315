"""DMF, Decoupled Multimodal Fusion (arXiv 2510.11066): DTA + similarity histogram + CMM over MMCTR item features."""
from __future__ import annotations

import dataclasses
import inspect
from typing import Annotated, Any, Dict, List, Literal, Mapping, Optional, Sequence, Tuple

import torch
from fuxictr.pytorch.layers import MLP_Block
from torch import Tensor

from model_zoo.datasets.loader import MMCTRBatch
from model_zoo.DMF.attention import ComplementaryModality, DecoupledTargetAttention, EarlyFusionTargetAttention
from model_zoo.layers.mmctr_base import DataRequirements, MMCTRModel, ModelData
from model_zoo.layers.position import PositionEncoding, RecencyWeights, build_position_encoding
from model_zoo.layers.similarity import (BUCKET_EDGE_MODES, SimilarityBucketizer, SimilarityHistogram,
                                         gathered_cosines, l2_normalize_segments, segment_cosines)
from model_zoo.errors import ConfigError
from model_zoo.params import Activation, DropoutRate, PositiveInt, Probability, Range, Units, check_choice
from model_zoo.registry import register_model
from model_zoo.schema import IMAGE_COLUMN, TEXT_COLUMN

__all__ = ["DMF", "DecoupledTargetAttention", "EarlyFusionTargetAttention"]

ATTENTION_MODES = ("decoupled", "early_fusion")
HISTOGRAM_WEIGHTINGS = ("count", "recency")
CMM_MODES = ("concat", "weighted_sum", "gate")
MM_SOURCES = ("item_feature", "item_info")
_ITEM_ID = "item_id"  # the item id feature of the MicroLens schema (target and history ids)
HistoryState = Any  # DTA: (K^id, V^id); early fusion: the raw history vectors


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
        Not in the paper (zoo additions, off unless stated): bucket edges default to ``quantile`` (fitted on train
        pairs; encoder cosines sit in a narrow band, where equal-width edges put most pairs into a few buckets);
        ``position_encoding: learned`` adds a recency embedding to the history ID vectors e_j before K^id, V^id
        (target-agnostic, so K^id and V^id stay cached per user); ``tier_edges: quantile`` and
        ``histogram_weighting: recency`` (a learned weight per recency in place of SimTier's count of 1, so the
        histogram describes the recent behaviours; also target-agnostic); ``item_id_dropout`` / ``unknown_item``
        (MMCTRModel) replace the item-id part of e_i by a learned unknown-item vector.

    Args:
        mm_source: ``"item_feature"`` (K modalities from item_feature.parquet, delivered in ``data``) or
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
        bucket_edges: ``"quantile"`` (default; edges at the k / n_b quantiles of the cosines of ``data``'s train
            sample, per modality, saved in the checkpoint) or ``"equal_width"`` on [-1, 1] (the spec's original).
        quantile_fit_rows: train rows sampled (seeded by ``seed``) to fit quantile edges (buckets and/or tiers).
        sim_on_values: add bucket embeddings to the values as well as the keys.
        use_dta: the modality-enriched pathway.
        position_encoding: ``"none"`` (order-blind DTA) or ``"learned"``: a learned embedding of each history item's
            recency (0 = most recent), starting at zero, added to e_j before the K^id / V^id projections
            (``model_zoo/layers/position.py``); still computed once per user in :meth:`forward_serving`.
        num_positions: rows of the recency table / recency weights (older items share the last one); read with
            ``position_encoding: learned`` or ``histogram_weighting: recency``.
        use_histogram: the modality-centric pathway (at least one of the two must be on).
        num_tiers: n_t histogram tiers.
        tier_edges: ``"equal_width"`` tiers on [-1, 1] (SimTier's) or ``"quantile"`` tiers per modality, fitted on
            the same train sample as quantile bucket edges (saved in the checkpoint).
        histogram_weighting: ``"count"`` (each valid behaviour counts 1, SimTier) or ``"recency"``: it counts a
            learned weight of its recency (0 = most recent; ``num_positions`` weights, starting at 1).
        normalize_histogram: divide counts by the valid history length.
        histogram_hidden_units: MLP over the K n_t histogram (its last size is the pathway output).
        cmm_mode: ``"concat"``, ``"weighted_sum"`` or ``"gate"``.
        cmm_weight: weight of the DTA pathway in ``weighted_sum``.
        dnn_hidden_units, dnn_activations, net_dropout, batch_norm: the head MLP.
        data: the modality tables and train sample of :meth:`data_requirements` (``model_zoo.experiment`` loads them).
        **kwargs: MMCTRModel / FuxiCTR BaseModel arguments (embedding_dim, regularizers, learning_rate, ...).

    Example::

        exp = build_experiment(params)               # model_zoo.experiment: data, feature map, DMF with its tables
        model, batch = exp.model, exp.loader("valid").batch(slice(0, 64))
        y = model(batch)["y_pred"]                  # (B, 1)
        user, cands = model.serving_request(batch, row=0, candidate_rows=range(8))
        scores = model.forward_serving(user, cands) # (8, 1)
    """

    def __init__(self, feature_map, model_id: str = "DMF",
                 mm_source: Literal["item_feature", "item_info"] = "item_feature",
                 mm_feature_columns: Tuple[str, ...] = (TEXT_COLUMN, IMAGE_COLUMN),
                 mm_item_info_column: str = "item_emb_d128", mm_in_keys: bool = False, target_mm_in_head: bool = True,
                 attention_mode: Literal["decoupled", "early_fusion"] = "decoupled",
                 attention_dim: PositiveInt = 64, num_heads: PositiveInt = 1,
                 attention_output_dim: Optional[PositiveInt] = None, num_buckets: Annotated[int, Range(low=2)] = 32,
                 bucket_edges: Literal["equal_width", "quantile"] = "quantile",
                 quantile_fit_rows: PositiveInt = 20_000, sim_on_values: bool = True, use_dta: bool = True,
                 position_encoding: PositionEncoding = "none", num_positions: Annotated[int, Range(low=2)] = 32,
                 use_histogram: bool = True, num_tiers: Annotated[int, Range(low=2)] = 20,
                 tier_edges: Literal["equal_width", "quantile"] = "equal_width",
                 histogram_weighting: Literal["count", "recency"] = "count",
                 normalize_histogram: bool = False, histogram_hidden_units: Units = (64,),
                 cmm_mode: Literal["concat", "weighted_sum", "gate"] = "concat", cmm_weight: Probability = 0.5,
                 dnn_hidden_units: Units = (512, 256, 128), dnn_activations: Activation = "ReLU",
                 net_dropout: DropoutRate = 0.0, batch_norm: bool = True, data: Optional[ModelData] = None,
                 **kwargs) -> None:
        check_choice("mm_source", mm_source, MM_SOURCES)
        check_choice("attention_mode", attention_mode, ATTENTION_MODES)
        check_choice("bucket_edges", bucket_edges, BUCKET_EDGE_MODES)
        check_choice("tier_edges", tier_edges, BUCKET_EDGE_MODES)
        check_choice("histogram_weighting", histogram_weighting, HISTOGRAM_WEIGHTINGS)
        check_choice("cmm_mode", cmm_mode, CMM_MODES)
        if not (use_dta or use_histogram):
            raise ConfigError("use_dta=False and use_histogram=False; expected at least one pathway on")
        if not 0.0 <= cmm_weight <= 1.0:
            raise ConfigError(f"cmm_weight={cmm_weight}; expected a value in [0, 1]")
        super().__init__(feature_map, model_id=model_id, data=data, **kwargs)
        has_info_mm = mm_item_info_column in self.item_features
        if not has_info_mm and (mm_source == "item_info" or mm_in_keys or target_mm_in_head):
            raise ConfigError(f"mm_item_info_column={mm_item_info_column!r} is not an item feature of the feature map;"
                             f" expected one of {tuple(self.item_features)}")
        self.mm_source, self.mm_feature_columns = mm_source, tuple(mm_feature_columns)
        self.mm_item_info_column = mm_item_info_column
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
        # recency of each behaviour, added to e_j before K/V (target-agnostic: cached per user with K^id, V^id)
        self.positions = build_position_encoding(position_encoding, num_positions, id_dim) if use_dta else None
        self.histogram = (SimilarityHistogram(num_tiers, normalize=normalize_histogram, mode=tier_edges,
                                              num_modalities=num_mod) if use_histogram else None)
        # a learned weight per recency instead of a count of 1 per behaviour (target-agnostic: once per user)
        self.histogram_weights = (RecencyWeights(num_positions) if use_histogram and histogram_weighting == "recency"
                                  else None)
        self.histogram_mlp = (MLP_Block(num_mod * num_tiers, hidden_units=list(histogram_hidden_units),
                                        hidden_activations="ReLU") if use_histogram else None)
        centric_dim = (list(histogram_hidden_units) or [num_mod * num_tiers])[-1] if use_histogram else 0
        self.cmm = ComplementaryModality(cmm_mode, self.attention.output_dim if use_dta else 0, centric_dim,
                                         attention_dim, cmm_weight)
        head_dim = (self.row_emb_dim + id_dim + self.cmm.output_dim
                    + (self._emb_dim(mm_item_info_column) if self.head_mm else 0))
        self.dnn = MLP_Block(input_dim=head_dim, output_dim=1, hidden_units=list(dnn_hidden_units),
                             hidden_activations=dnn_activations, output_activation=self.output_activation,
                             dropout_rates=net_dropout, batch_norm=batch_norm)
        self.finish()
        if data is not None:
            self._use_data(data)

    # ---- config -------------------------------------------------------------------------------------------------
    @classmethod
    def config_conflicts(cls, params: Mapping[str, Any]) -> List[Tuple[str, str]]:
        """Keys that a switched-off part of DMF would ignore."""
        out: List[Tuple[str, str]] = []
        unused = {
            "use_dta": (False, ("attention_mode", "attention_dim", "num_heads", "attention_output_dim",
                                "num_buckets", "bucket_edges", "sim_on_values", "position_encoding")),
            "use_histogram": (False, ("num_tiers", "tier_edges", "histogram_weighting", "normalize_histogram",
                                      "histogram_hidden_units")),
        }
        for switch, (off, keys) in unused.items():
            if params.get(switch, True) is off:
                out += [(k, f"key '{k}' is unused with {switch}: {off}") for k in keys if k in params]
        defaults = inspect.signature(cls.__init__).parameters
        get = (lambda key: params.get(key, defaults[key].default))
        heads, dim = get("num_heads"), get("attention_dim")
        if get("use_dta") and dim % heads:
            out.append(("num_heads", f"num_heads={heads} must divide attention_dim={dim}"))
        variant = params.get("embedding_variant")
        if variant:
            from model_zoo.embeddings.variant_config import VARIANTS, canonical_variant
            name = canonical_variant(variant)
            uses_vector = params.get("target_mm_in_head", True) or params.get("mm_in_keys", False) or \
                params.get("mm_source", "item_feature") == "item_info"
            if VARIANTS[name].codes_only and uses_vector:
                out.append(("embedding_variant", f"embedding_variant={variant!r} keeps semantic ids only (no "
                            f"item_emb_d128); DMF then needs target_mm_in_head: false, mm_in_keys: false and "
                            f"mm_source: item_feature (e.g. --set target_mm_in_head=false)"))
        if "cmm_weight" in params and get("cmm_mode") != "weighted_sum":
            out.append(("cmm_weight", "key 'cmm_weight' is read only with cmm_mode: weighted_sum"))
        if "quantile_fit_rows" in params and not cls._quantile_parts(get):
            out.append(("quantile_fit_rows", "key 'quantile_fit_rows' is read only with bucket_edges: quantile (and "
                                             "use_dta) or tier_edges: quantile (and use_histogram)"))
        positions_read = ((get("use_dta") and get("position_encoding") != "none")
                          or (get("use_histogram") and get("histogram_weighting") == "recency"))
        if "num_positions" in params and not positions_read:
            out.append(("num_positions", "key 'num_positions' is read only with position_encoding: learned (and "
                                         "use_dta) or histogram_weighting: recency (and use_histogram)"))
        if "mm_feature_columns" in params and get("mm_source") != "item_feature":
            out.append(("mm_feature_columns", "key 'mm_feature_columns' is read only with mm_source: item_feature"))
        return out + super().config_conflicts(params)

    @staticmethod
    def _quantile_parts(get: Any) -> Tuple[str, ...]:
        """The parts that fit quantile edges on a train sample: "buckets" (DTA) and/or "tiers" (histogram)."""
        return tuple(part for part, on in (("buckets", get("use_dta") and get("bucket_edges") == "quantile"),
                                           ("tiers", get("use_histogram") and get("tier_edges") == "quantile")) if on)

    @classmethod
    def data_requirements(cls, params: Mapping[str, Any]) -> DataRequirements:
        """The raw modality vectors of item_feature.parquet (``mm_source: item_feature``), for quantile bucket
        edges a seeded sample of train rows, and MMCTRModel's (the train item mask with ``unknown_item``)."""
        defaults = inspect.signature(cls.__init__).parameters
        get = (lambda key: params.get(key, defaults[key].default))
        columns = tuple(get("mm_feature_columns")) if get("mm_source") == "item_feature" else ()
        quantile = bool(cls._quantile_parts(get))
        info_columns = (get("mm_item_info_column"),) if quantile and get("mm_source") == "item_info" else ()
        return dataclasses.replace(super().data_requirements(params), item_feature_columns=columns,
                                   item_info_columns=info_columns,
                                   train_sample_rows=int(get("quantile_fit_rows")) if quantile else 0)

    def _raw_dim(self, feature: str) -> int:
        """Width of an ``embedding`` feature's stored vector (FuxiCTR's default: its embedding_dim)."""
        spec = self.feature_map.features[feature]
        return spec.get("pretrain_dim", spec.get("embedding_dim", self.embedding_dim))

    # ---- data --------------------------------------------------------------------------------------------------
    def _use_data(self, data: ModelData) -> None:
        """Hold the frozen MM tables and fit quantile bucket edges from the sampled train rows."""
        if self.mm_source == "item_feature":
            missing = [c for c in self.mm_feature_columns if c not in data.item_vectors]
            if missing:
                raise ConfigError(f"DMF(mm_source='item_feature') needs the item vectors {missing}; got "
                                 f"{sorted(data.item_vectors)}")
            tables = [data.item_vectors[c] for c in self.mm_feature_columns]
            self.attach_mm_vectors(torch.cat(tables, dim=1), [t.shape[1] for t in tables])
        quantile_tiers = self.histogram is not None and self.histogram.tiers is not None
        if (self.bucketizer.mode == "quantile" or quantile_tiers) and data.train_history is not None:
            self._fit_quantile_edges(data.train_history, data.train_target, data)

    def attach_mm_vectors(self, table: Tensor, dims: Sequence[int]) -> None:
        """Hold ``table`` (I + 1, M), the K modality vectors of every item id side by side (row 0 = padding, zero),
        as the frozen non-persistent buffer, each modality L2-normalised once (the constructor does this from its
        ``data``; benchmarks holding vectors in memory call it directly)."""
        if self.mm_source != "item_feature":
            raise ValueError(f"attach_mm_vectors needs mm_source='item_feature'; got {self.mm_source!r}")
        if len(dims) != self.bucketizer.num_modalities:
            raise ValueError(f"dims={tuple(dims)} gives {len(dims)} modalities; expected "
                             f"{self.bucketizer.num_modalities} (mm_feature_columns={self.mm_feature_columns})")
        self.mm_dims = tuple(int(d) for d in dims)
        self.mm_table = l2_normalize_segments(table.float(), self.mm_dims).to(self.device)

    def _fit_quantile_edges(self, history: Tensor, target: Tensor, data: ModelData) -> None:
        """Quantile edges per modality from the cosines of every valid (target, history) pair of the sample."""
        if self.mm_source == "item_feature":
            table = self._table().cpu()
        else:
            table = l2_normalize_segments(data.item_vectors[self.mm_item_info_column].float(), self.mm_dims)
        valid = history > 0
        sims = gathered_cosines(table, target, history, valid, self.mm_dims)  # (n, K, L)
        per_modality = [sims[:, k][valid] for k in range(sims.shape[1])]
        if self.bucketizer.mode == "quantile":
            self.bucketizer.fit(per_modality)
        if self.histogram is not None:
            self.histogram.fit(per_modality)  # quantile tiers only; equal-width tiers need nothing

    def _table(self) -> Tensor:
        if self.mm_table is None:
            raise RuntimeError("DMF(mm_source='item_feature'): no multimodal tables; build the model with "
                               "data=ModelData(item_vectors=...) (model_zoo.experiment does) or attach_mm_vectors()")
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
        """Flat embeddings of ``features`` (the unknown-item vector in place of unseen / dropped item ids)."""
        return self.embed_item_features(inputs, features)

    def _history_state(self, history: Tensor, mask: Tensor) -> HistoryState:
        """The attention's target-agnostic state of history ID vectors (B, L, d) or one user's (L, d), with the
        recency embedding added first (it depends on the mask only, so the state stays cacheable)."""
        if self.positions is not None:
            history = history + self.positions(mask)  # (..., L, d); padded positions get 0
        return self.attention.prepare_history(history)

    # ---- model -------------------------------------------------------------------------------------------------
    def _score(self, context: Optional[Tensor], target: Tensor, target_mm: Optional[Tensor], state: HistoryState,
               sims: Tensor, mask: Tensor) -> Tensor:
        """Both pathways, CMM and the head. ``sims`` (B, K, L); ``mask`` (B, L), or (L,) with a shared history."""
        enriched = centric = None
        if self.attention is not None:
            bucket_ids = self.bucketizer(sims, offset_by_modality=True)  # (B, K, L)
            enriched = self.attention(target, state, bucket_ids, mask)  # (B, d_a or attention_output_dim)
        if self.histogram is not None:
            weights = self.histogram_weights(mask) if self.histogram_weights is not None else None  # (B, L) | (L,)
            centric = self.histogram_mlp(self.histogram(sims, mask, weights).flatten(1))  # (B, K n_t) -> (B, .)
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
        state = self._history_state(history, mask) if self.attention is not None else None
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
        state = self._history_state(history, mask) if self.attention is not None else None
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
