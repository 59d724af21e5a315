"""The FuxiCTR ``BaseModel`` adapted to the MMCTR batch layout, shared by every model of the zoo.

The challenge baseline (``reczoo/WWW2025_MMCTR_Challenge:src/DIN.py``) overrides ``get_inputs``, ``get_labels``,
``get_group_id`` and ``train_step`` of FuxiCTR's BaseModel because its loader yields ``(batch_dict, item_dict, mask)``
instead of one dict. Those overrides live here once, together with the item-side embedding that turns ``item_dict``
into target and history vectors.
"""
from __future__ import annotations

from typing import Dict, List, Tuple

from fuxictr.pytorch.layers import FeatureEmbedding
from fuxictr.pytorch.models import BaseModel
from fuxictr.utils import not_in_whitelist
import torch
from torch import Tensor, nn

from model_zoo.datasets.loader import MMCTRBatch

__all__ = ["MMCTRModel"]


class MMCTRModel(BaseModel):
    """BaseModel for ``MMCTRBatch`` inputs, with the shared item-side embedding.

    Shapes: B batch, L history length, D = ``item_info_dim`` (sum of the item features' embedding sizes).

    Subclasses call ``super().__init__`` first, build their layers, then call ``self.finish(...)``.

    Args:
        feature_map: FuxiCTR ``FeatureMap``; features with ``source: item`` form the item vector.
        embedding_dim: default embedding size of a field.
        accumulation_steps: gradient accumulation (the challenge's ``train_step``); 1 = none.
        skip_padding_items: embed only real items and fill padding rows with their zero embedding (see embed_items).
        embedding_regularizer, net_regularizer, model_id, gpu: as in FuxiCTR's BaseModel.
    """

    def __init__(self, feature_map, model_id: str = "MMCTRModel", gpu: int = -1, embedding_dim: int = 64,
                 accumulation_steps: int = 1, skip_padding_items: bool = True, embedding_regularizer=None,
                 net_regularizer=None, **kwargs) -> None:
        super().__init__(feature_map, model_id=model_id, gpu=gpu, embedding_regularizer=embedding_regularizer,
                         net_regularizer=net_regularizer, **kwargs)
        if accumulation_steps < 1:
            raise ValueError(f"accumulation_steps={accumulation_steps}; expected an integer >= 1")
        self.accumulation_steps = int(accumulation_steps)
        self.skip_padding_items = skip_padding_items
        self.embedding_dim = embedding_dim
        self.item_features: List[str] = [f for f, spec in feature_map.features.items()
                                         if spec.get("source") == "item" and spec["type"] != "meta"]
        self.row_features: List[str] = [f for f, spec in feature_map.features.items()
                                        if spec.get("source") != "item" and spec["type"] != "meta"]
        if not self.item_features:
            raise ValueError("feature_map has no feature with 'source: item'; MMCTR models need the item features")
        self.item_info_dim = sum(self._emb_dim(f) for f in self.item_features)
        self.row_emb_dim = sum(self._emb_dim(f) for f in self.row_features)
        self.embedding_layer = FeatureEmbedding(feature_map, embedding_dim)

    def _emb_dim(self, feature: str) -> int:
        spec = self.feature_map.features[feature]
        return spec.get("emb_output_dim", spec.get("embedding_dim", self.embedding_dim))

    def finish(self, optimizer: str = "adam", loss: str = "binary_crossentropy", learning_rate: float = 1e-3) -> None:
        """FuxiCTR's constructor epilogue: compile, initialise, move to device."""
        self.compile(optimizer, loss, learning_rate)
        self.reset_parameters()
        self.model_to_device()

    # ---- batch plumbing (the challenge's overrides) -------------------------------------------------------------
    def get_inputs(self, inputs: MMCTRBatch, feature_source=None) -> Tuple[Dict[str, Tensor], Dict[str, Tensor], Tensor]:
        batch_dict, item_dict, mask = inputs
        row_inputs = {}
        for feature, value in batch_dict.items():
            spec = self.feature_map.features.get(feature)
            if feature in self.feature_map.labels or spec is None or spec["type"] == "meta":
                continue
            if feature_source and not_in_whitelist(spec["source"], feature_source):
                continue
            row_inputs[feature] = value.to(self.device)
        item_inputs = {k: v.to(self.device) for k, v in item_dict.items() if k in self.item_features}
        return row_inputs, item_inputs, mask.to(self.device)

    def get_labels(self, inputs: MMCTRBatch) -> Tensor:
        return inputs.batch_dict[self.feature_map.labels[0]].to(self.device).float().view(-1, 1)

    def get_group_id(self, inputs: MMCTRBatch) -> Tensor:
        return inputs.batch_dict[self.feature_map.group_id]

    def train_step(self, batch_data: MMCTRBatch) -> Tensor:
        """One step with the challenge's gradient accumulation over ``accumulation_steps`` batches."""
        return_dict = self.forward(batch_data)
        loss = self.compute_loss(return_dict, self.get_labels(batch_data)) / self.accumulation_steps
        loss.backward()
        if (self._batch_index + 1) % self.accumulation_steps == 0 or self._batch_index + 1 == self._steps_per_epoch:
            nn.utils.clip_grad_norm_(self.parameters(), self._max_gradient_norm)
            self.optimizer.step()
            self.optimizer.zero_grad()
        return loss * self.accumulation_steps

    # ---- shared embeddings --------------------------------------------------------------------------------------
    def embed_rows(self, row_inputs: Dict[str, Tensor]) -> Tensor:
        """Per-row (context) field embeddings stacked as fields: (B, F_row, d); requires equal field sizes."""
        return self.embedding_layer(row_inputs, flatten_emb=False)

    def embed_items(self, item_inputs: Dict[str, Tensor], batch_size: int) -> Tuple[Tensor, Tensor]:
        """Target (B, D) and history (B, L, D) item vectors from the joined item features.

        With ``skip_padding_items`` only the rows of real items are embedded; padding rows (item id 0) are filled
        with zeros. That is what they embed to anyway (FuxiCTR's ``padding_idx`` rows, pooled all-padding tags, the
        all-zero item_info row 0 through a bias-free projection), and it skips most rows: MicroLens-like histories
        are mostly padding.
        """
        if self.skip_padding_items and "item_id" in item_inputs:
            real = (item_inputs["item_id"] != 0).nonzero(as_tuple=True)[0]  # rows of real items
            real_emb = self.embedding_layer({k: v[real] for k, v in item_inputs.items()}, flatten_emb=True)
            num_rows = item_inputs["item_id"].shape[0]
            item_emb = real_emb.new_zeros(num_rows, self.item_info_dim).index_copy(0, real, real_emb)
        else:
            item_emb = self.embedding_layer(item_inputs, flatten_emb=True)  # (B * (L + 1), D)
        item_emb = item_emb.view(batch_size, -1, self.item_info_dim)
        # the target is the last of the L + 1 joined rows
        return item_emb[:, -1, :], item_emb[:, :-1, :]

    def embed_valid_items(self, item_inputs: Dict[str, Tensor], mask: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Padding-free item embedding: target (B, D), and the valid history items as rows (n,) and vectors (n, D).

        ``rows``/``seq`` list the valid (row, position) pairs of ``mask`` in row-major order, as
        ``mask.nonzero()`` does, so ``seq[k] == embed_items(...)[1][rows[k], cols[k]]``. Only the n + B real rows
        are gathered and embedded; nothing of size (B, L, D) is allocated, forward or backward.
        """
        batch_size, max_len = mask.shape
        rows, cols = mask.nonzero(as_tuple=True)
        targets = torch.arange(batch_size, device=mask.device)
        picked = torch.cat([rows * (max_len + 1) + cols, targets * (max_len + 1) + max_len])  # flat joined rows
        item_emb = self.embedding_layer({k: v.index_select(0, picked) for k, v in item_inputs.items()},
                                        flatten_emb=True)  # (n + B, D)
        num_valid = rows.numel()
        return item_emb[num_valid:], rows, item_emb[:num_valid]
