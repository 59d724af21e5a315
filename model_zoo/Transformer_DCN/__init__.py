from model_zoo.Transformer_DCN.Transformer_DCN import SequenceTransformer, Transformer_DCN, key_padding_mask

__all__ = ["Transformer_DCN", "SequenceTransformer", "key_padding_mask"]
