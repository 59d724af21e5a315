"""FiBiNET (SENet + bilinear interaction) over the target-attention fields, pooled history included."""
from __future__ import annotations

from typing import Dict, Literal

import torch
from fuxictr.pytorch.layers import BilinearInteractionV2, MLP_Block, SqueezeExcitation
from torch import Tensor

from model_zoo.datasets.loader import MMCTRBatch
from model_zoo.layers.target_attention import EXCITATION_ACTIVATIONS, TargetAttentionModel
from model_zoo.params import Activation, DropoutRate, PositiveFloat, Units, check_choice
from model_zoo.registry import register_model

__all__ = ["FiBiNET_Bilinear", "BILINEAR_TYPES"]

BILINEAR_TYPES = ("field_all", "field_each", "field_interaction")


def _bilinear(num_fields: int, field_dim: int, bilinear_type: str) -> BilinearInteractionV2:
    """FuxiCTR's BilinearInteractionV2 with its constant pair index held as a non-persistent buffer.

    FuxiCTR stores ``triu_index`` as ``nn.Parameter(requires_grad=False)``, which puts an integer tensor into
    ``parameters()``, the optimiser and the checkpoint; it is rebuilt in the constructor, so a buffer is enough.
    """
    layer = BilinearInteractionV2(num_fields, field_dim, bilinear_type=bilinear_type)
    triu_index = layer.triu_index.data
    del layer.triu_index
    layer.register_buffer("triu_index", triu_index, persistent=False)
    return layer


@register_model
class FiBiNET_Bilinear(TargetAttentionModel):
    """FiBiNET over the MMCTR fields: SENet, bilinear interactions on raw and re-weighted fields, then a DNN.

    The fields are the backbone's stacked view (B, F, d): context fields, the target vector and the attention-pooled
    history, each cut into d-sized chunks (``model_zoo/layers/target_attention.py``), so target x interest pairs
    are among the bilinear interactions. Two ``BilinearInteractionV2`` layers (raw E, SENet-weighted V) each give
    (B, F(F-1)/2, d); their concatenation, flattened, feeds the DNN.

    Shapes: B batch, d embedding_dim, F stacked fields, P = F(F-1)/2 field pairs.

    Reference:
        Huang, Zhang, Zhang, "FiBiNET: Combining Feature Importance and Bilinear feature Interaction for
        Click-Through Rate Prediction", RecSys 2019, arXiv:1905.09433.

    Deviations from paper:
        The paper has no behaviour sequence: here the history enters as attention-pooled fields (DIN-style, via
        the shared backbone), and the item vector is cut into d-sized fields. No first-order (LR) term, unlike
        FuxiCTR's FiBiNET. The two bilinear layers have separate weights (as in FuxiCTR and DeepCTR). The configs
        pool with softmax (``"multihead"``): DIN's unnormalised weights let the pooled history grow with the history
        length, and the quadratic bilinear terms then saturate the sigmoid.

    Args:
        bilinear_type: "field_all", "field_each" or "field_interaction" (weight sharing of the bilinear maps).
        reduction_ratio: SENet bottleneck ratio (hidden size = max(1, int(F / reduction_ratio))).
        excitation_activation: SENet output activation, "ReLU" (paper) or "Sigmoid".
        dnn_hidden_units: DNN layer sizes.
        dnn_activations: DNN activation.
        net_dropout: DNN dropout.
        batch_norm: BatchNorm in the DNN.
        **kwargs: TargetAttentionModel arguments (attention_type, num_heads, position_encoding, ...) and MMCTRModel /
            FuxiCTR BaseModel arguments (embedding_dim, regularizers, item_id_dropout, unknown_item, ...).

    Example::

        model = FiBiNET_Bilinear(feature_map, model_root="/tmp/ckpt", metrics=["AUC"], verbose=0, embedding_dim=8,
                                 bilinear_type="field_each", attention_type="din")
        y = model(batch)["y_pred"]   # (B, 1) in [0, 1]
    """

    def __init__(self, feature_map, model_id: str = "FiBiNET_Bilinear",
                 bilinear_type: Literal["field_all", "field_each", "field_interaction"] = "field_interaction",
                 reduction_ratio: PositiveFloat = 3, excitation_activation: Literal["ReLU", "Sigmoid"] = "ReLU",
                 dnn_hidden_units: Units = (1024, 512, 256), dnn_activations: Activation = "ReLU",
                 net_dropout: DropoutRate = 0.0, batch_norm: bool = True, **kwargs) -> None:
        # FuxiCTR raises a bare NotImplementedError on these; check them before building anything
        check_choice("bilinear_type", bilinear_type, BILINEAR_TYPES)
        check_choice("excitation_activation", excitation_activation, EXCITATION_ACTIVATIONS)
        super().__init__(feature_map, model_id=model_id, **kwargs)
        num_fields, field_dim = self.backbone.num_fields, self.backbone.field_dim
        self.senet = SqueezeExcitation(num_fields, reduction_ratio, excitation_activation)
        self.bilinear = _bilinear(num_fields, field_dim, bilinear_type)
        self.bilinear_senet = _bilinear(num_fields, field_dim, bilinear_type)
        num_pairs = num_fields * (num_fields - 1) // 2
        self.dnn = MLP_Block(input_dim=2 * num_pairs * field_dim, output_dim=1, hidden_units=list(dnn_hidden_units),
                             hidden_activations=dnn_activations, output_activation=self.output_activation,
                             dropout_rates=net_dropout, batch_norm=batch_norm)
        self.finish()

    def forward(self, inputs: MMCTRBatch) -> Dict[str, Tensor]:
        field_emb = self.backbone.stack(self.embed_fields(inputs))  # (B, F, d)
        weighted = self.senet(field_emb)  # (B, F, d)
        pairs = torch.cat([self.bilinear(field_emb), self.bilinear_senet(weighted)], dim=1)  # (B, 2P, d)
        return {"y_pred": self.dnn(pairs.flatten(start_dim=1))}  # (B, 1)
