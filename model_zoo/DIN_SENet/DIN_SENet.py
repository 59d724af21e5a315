"""DIN + multi-head target attention + SENet, the WWW 2025 MMCTR Task-2 model winner's architecture."""
from __future__ import annotations

from typing import Dict, Literal

from fuxictr.pytorch.layers import MLP_Block, SqueezeExcitation
from torch import Tensor

from model_zoo.datasets.loader import MMCTRBatch
from model_zoo.layers.target_attention import EXCITATION_ACTIVATIONS, TargetAttentionModel
from model_zoo.params import Activation, DropoutRate, PositiveFloat, Units, check_choice
from model_zoo.registry import register_model

__all__ = ["DIN_SENet"]


@register_model
class DIN_SENet(TargetAttentionModel):
    """DIN with multi-head target attention whose field embeddings are re-weighted by a SENet before the DNN.

    A unified embedding layer embeds the context (row) fields and the item features of the target and of every
    history item; multi-head target attention pools the history with the target as query; the stacked fields
    (context, target chunks, pooled-interest chunks; see ``model_zoo/layers/target_attention.py``) go through
    FuxiCTR's ``SqueezeExcitation`` and, flattened, into an MLP.

    Shapes: B batch, L history length, d embedding_dim, D item vector size, F stacked fields.

    Reference:
        Zhou, "Rethinking Feature Fusion in Multimodal CTR Prediction", WWW 2025 MMCTR challenge (Task-2 model
        winner), arXiv:2504.18961. SENet: Hu et al., "Squeeze-and-Excitation Networks", CVPR 2018, arXiv:1709.01507;
        as a field re-weighting: Huang et al., FiBiNET, RecSys 2019, arXiv:1905.09433.

    Deviations from paper:
        The paper body and code (Lattice-zjj/MMCTR_Code) were unavailable; only the abstract and a summary were read.
        Inferred, not from the paper: SENet placement (over all field embeddings, directly before the DNN, its
        output replacing the raw fields); the field definition (d-sized chunks of the target and pooled vectors);
        no residual around SENet; the Sigmoid excitation default (the original SENet's; FuxiCTR's FiBiNET default
        ReLU can zero a field for every row, which cuts its embedding's gradient); number of heads, attention size,
        DNN sizes and optimiser settings (the configs take the challenge baseline's). The paper's best variant V4
        (PCA(BERT) ‖ PCA(CLIP)) is a data choice: it enters through ``item_emb_d128``, not through this class.

    Args:
        reduction_ratio: SENet bottleneck ratio (hidden size = max(1, int(F / reduction_ratio))).
        excitation_activation: SENet output activation, "ReLU" or "Sigmoid".
        dnn_hidden_units: DNN layer sizes.
        dnn_activations: DNN activation.
        net_dropout: DNN dropout.
        batch_norm: BatchNorm in the DNN.
        **kwargs: TargetAttentionModel arguments (attention_type, num_heads, attention_dim, position_encoding, ...) and
            MMCTRModel / FuxiCTR BaseModel arguments (embedding_dim, regularizers, item_id_dropout, unknown_item, ...).

    Example::

        model = DIN_SENet(feature_map, model_root="/tmp/ckpt", metrics=["AUC"], verbose=0, embedding_dim=8,
                          num_heads=2)
        y = model(batch)["y_pred"]   # (B, 1) in [0, 1]
    """

    def __init__(self, feature_map, model_id: str = "DIN_SENet", reduction_ratio: PositiveFloat = 3,
                 excitation_activation: Literal["ReLU", "Sigmoid"] = "Sigmoid", dnn_hidden_units: Units = (1024, 512, 256),
                 dnn_activations: Activation = "ReLU", net_dropout: DropoutRate = 0.0, batch_norm: bool = True,
                 **kwargs) -> None:
        check_choice("excitation_activation", excitation_activation, EXCITATION_ACTIVATIONS)
        super().__init__(feature_map, model_id=model_id, **kwargs)
        self.senet = SqueezeExcitation(self.backbone.num_fields, reduction_ratio, excitation_activation)
        self.dnn = MLP_Block(input_dim=self.backbone.flat_dim, output_dim=1, hidden_units=list(dnn_hidden_units),
                             hidden_activations=dnn_activations, output_activation=self.output_activation,
                             dropout_rates=net_dropout, batch_norm=batch_norm)
        self.finish()

    def forward(self, inputs: MMCTRBatch) -> Dict[str, Tensor]:
        fields = self.embed_fields(inputs)
        field_emb = self.backbone.stack(fields)  # (B, F, d)
        weighted = self.senet(field_emb)  # (B, F, d)
        return {"y_pred": self.dnn(weighted.flatten(start_dim=1))}  # (B, 1)
