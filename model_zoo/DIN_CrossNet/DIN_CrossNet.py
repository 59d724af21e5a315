"""DIN target-attention backbone + a DCN-V2 cross network (jzzx.NTU's 3rd-place "DIN_DCN" is one configuration)."""
from __future__ import annotations

from typing import Dict, Literal, Optional

import torch
from fuxictr.pytorch.layers import CrossNetMix, CrossNetV2, MLP_Block
from torch import Tensor, nn

from model_zoo.datasets.loader import MMCTRBatch
from model_zoo.errors import ConfigError
from model_zoo.layers.target_attention import TargetAttentionModel
from model_zoo.params import Activation, DropoutRate, PositiveInt, Units, check_choice
from model_zoo.registry import register_model

__all__ = ["DIN_CrossNet", "MODEL_STRUCTURES", "build_crossnet"]

MODEL_STRUCTURES = ("stacked", "parallel")


def build_crossnet(input_dim: int, num_layers: int, low_rank: Optional[int] = None,
                   num_experts: Optional[int] = None) -> nn.Module:
    """FuxiCTR ``CrossNetV2`` (full-rank), or ``CrossNetMix`` when ``low_rank`` or ``num_experts`` is set.

    A missing one of the two takes FuxiCTR's default (low_rank 32, num_experts 4). Maps (B, input_dim) to
    (B, input_dim).

    Example::

        crossnet = build_crossnet(64, num_layers=3, low_rank=8, num_experts=2)
        out = crossnet(torch.randn(4, 64))   # (4, 64)
    """
    for key, value in (("num_cross_layers", num_layers), ("low_rank", low_rank), ("num_experts", num_experts)):
        if (value is not None or key == "num_cross_layers") and (not isinstance(value, int) or value < 1):
            raise ConfigError(f"{key}={value!r}; expected an integer >= 1")
    if low_rank is None and num_experts is None:
        return CrossNetV2(input_dim, num_layers)
    return CrossNetMix(input_dim, layer_num=num_layers, low_rank=low_rank or 32, num_experts=num_experts or 4)


@register_model
class DIN_CrossNet(TargetAttentionModel):
    """Target attention over the history, then a cross network and a DNN over the flattened fields.

    The flat fields x0 = context ‖ target ‖ pooled history (B, F*d) feed the cross network. ``"stacked"``: cross
    network, then DNN, then a linear output. ``"parallel"``: cross network ∥ DNN on x0, concatenated into the linear
    output (DCN-V2's two structures).

    Shapes: B batch, d embedding_dim, D item vector size, F*d = flat field size (``backbone.flat_dim``).

    Reference:
        Wang et al., "DCN V2: Improved Deep & Cross Network and Practical Lessons for Web-scale Learning to Rank
        Systems", WWW 2021, arXiv:2008.13535. Zhou et al., DIN, KDD 2018, arXiv:1706.06978. As combined by the
        3rd place of the WWW 2025 MMCTR challenge (jzzx.NTU, ``ZiaoGao/MMCTR``, DIN_DCN).

    Deviations from paper:
        The cross network's input includes the attention-pooled history (DCN-V2 has no sequence part). The output
        is one ``nn.Linear`` + sigmoid, as in FuxiCTR's DCNv2. DCN-V2's "crossnet_only" is not offered.

    DIN_DCN (jzzx.NTU, 3rd place; ``ZiaoGao/MMCTR`` ``src/DIN_DCN.py``, best point ``DIN_DCN_MicroLens_1M_x1_013``)
    = DIN_CrossNet with ``attention_type="multihead"`` (FuxiCTR ``MultiHeadTargetAttention`` on D = 256: num_heads 4,
    attention_dim 64 = FuxiCTR's default, use_scale, use_qkvo, attention_dropout 0.1), ``model_structure="stacked"``,
    CrossNetMix (num_cross_layers 6, low_rank 32, num_experts 4), dnn_hidden_units (1024, 1024), ReLU,
    batch_norm True, net_dropout 0; expid ``DIN_DCN_MicroLens`` (= ``DIN_CrossNet_MicroLens``), CPU-sized
    ``DIN_DCN_MicroLens_synth`` / ``_seqneg``. No option is needed: the cross network sees the same x0 (likes ‖
    views ‖ target ‖ pooled history, 640 wide) and an empty history pools to 0 in both (bias-free V/O over zero
    padding rows). Left out: their built-but-never-called ``DIN_Attention`` module (no effect on the output) and
    the clamp of y_pred to [1e-7, 1 - 1e-7] (matters only at saturation). Their Jina-CLIP-v2 item vectors are
    data, not model (the dataset's item_emb_d128 is used).

    Args:
        model_structure: "stacked" (cross -> DNN) or "parallel" (cross ∥ DNN).
        crossnet: a ready cross network mapping (B, backbone.flat_dim) to the same shape (torchrec ``crossnet=``
            style); None = ``build_crossnet(flat_dim, num_cross_layers, low_rank, num_experts)``.
        num_cross_layers: cross layers (ignored when ``crossnet`` is given).
        low_rank: CrossNetMix rank; set this or ``num_experts`` to use CrossNetMix (ignored with ``crossnet``).
        num_experts: CrossNetMix experts (ignored with ``crossnet``).
        dnn_hidden_units: DNN layer sizes; () = no DNN.
        dnn_activations: DNN activation.
        net_dropout: DNN dropout.
        batch_norm: BatchNorm in the DNN.
        **kwargs: TargetAttentionModel arguments (attention_type, num_heads, position_encoding, ...) and MMCTRModel /
            FuxiCTR BaseModel arguments (embedding_dim, regularizers, item_id_dropout, unknown_item, ...).

    Example::

        model = DIN_CrossNet(feature_map, model_root="/tmp/ckpt", metrics=["AUC"], verbose=0, embedding_dim=8,
                             model_structure="parallel", low_rank=4, num_experts=2)
        y = model(batch)["y_pred"]   # (B, 1) in [0, 1]
    """

    def __init__(self, feature_map, model_id: str = "DIN_CrossNet",
                 model_structure: Literal["stacked", "parallel"] = "parallel", crossnet: Optional[nn.Module] = None,
                 num_cross_layers: PositiveInt = 3, low_rank: Optional[PositiveInt] = None,
                 num_experts: Optional[PositiveInt] = None, dnn_hidden_units: Units = (1024, 512, 256),
                 dnn_activations: Activation = "ReLU", net_dropout: DropoutRate = 0.0, batch_norm: bool = True,
                 **kwargs) -> None:
        check_choice("model_structure", model_structure, MODEL_STRUCTURES)
        if crossnet is not None and not isinstance(crossnet, nn.Module):
            raise ConfigError(f"crossnet={crossnet!r}; expected an nn.Module or null (configure it with "
                              f"num_cross_layers / low_rank / num_experts instead)")
        super().__init__(feature_map, model_id=model_id, **kwargs)
        self.model_structure = model_structure
        flat_dim = self.backbone.flat_dim
        self.crossnet = crossnet if crossnet is not None else build_crossnet(flat_dim, num_cross_layers, low_rank,
                                                                              num_experts)
        self.dnn = MLP_Block(input_dim=flat_dim, hidden_units=list(dnn_hidden_units),
                             hidden_activations=dnn_activations, dropout_rates=net_dropout, batch_norm=batch_norm)
        dnn_dim = dnn_hidden_units[-1] if len(dnn_hidden_units) else flat_dim
        self.fc = nn.Linear(dnn_dim if model_structure == "stacked" else flat_dim + dnn_dim, 1)
        self.finish()

    def forward(self, inputs: MMCTRBatch) -> Dict[str, Tensor]:
        flat = self.backbone.flatten(self.embed_fields(inputs))  # (B, F*d)
        # CrossNetMix squeezes its output, which drops the batch dim when B == 1
        cross_out = self.crossnet(flat).reshape(flat.shape[0], -1)  # (B, F*d)
        if self.model_structure == "stacked":
            final = self.dnn(cross_out)  # (B, dnn_dim)
        else:
            final = torch.cat([cross_out, self.dnn(flat)], dim=-1)  # (B, F*d + dnn_dim)
        return {"y_pred": self.output_activation(self.fc(final))}  # (B, 1)
