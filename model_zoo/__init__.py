"""MMCTR Zoo: FuxiCTR plugin models for multimodal CTR prediction on MicroLens_1M_x1.

Importing the package registers every model (each sub-package is imported explicitly below) and does nothing else:
no environment variables, thread settings or allocator settings change on import (the runner sets what it needs).
"""
from model_zoo.registry import get_model, list_models, register_model
from model_zoo import DIN  # noqa: F401  (registers the model)
from model_zoo import DIN_SENet  # noqa: F401  (registers the model)
from model_zoo import DIN_CrossNet  # noqa: F401  (registers the model)
from model_zoo import FiBiNET_Bilinear  # noqa: F401  (registers the model)
from model_zoo import DMF  # noqa: F401  (registers the model)
from model_zoo import Transformer_DCN  # noqa: F401  (registers the model)
from model_zoo import QIN  # noqa: F401  (registers the model)

__all__ = ["get_model", "list_models", "register_model"]
