"""Blocks shared by two or more models of the zoo (FuxiCTR layers are imported, never copied)."""
from model_zoo.layers.mmctr_base import MMCTRModel
from model_zoo.layers.position import RecencyEmbedding, RecencyWeights, recency_index
from model_zoo.layers.target_attention import (ATTENTION_TYPES, EXCITATION_ACTIVATIONS, TargetAttention,
                                               TargetAttentionBackbone, TargetAttentionFields, TargetAttentionModel,
                                               check_choice)

__all__ = ["MMCTRModel", "RecencyEmbedding", "RecencyWeights", "recency_index", "ATTENTION_TYPES",
           "EXCITATION_ACTIVATIONS", "TargetAttention", "TargetAttentionBackbone", "TargetAttentionFields",
           "TargetAttentionModel", "check_choice"]
