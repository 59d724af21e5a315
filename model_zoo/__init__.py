"""MMCTR Zoo: FuxiCTR plugin models for multimodal CTR prediction on MicroLens_1M_x1.

Importing the package registers every model: each sub-package is imported explicitly below.

It also asks Intel MKL (torch's CPU BLAS) for strict conditional numerical reproducibility unless ``MKL_CBWR`` is
already set. On a loaded machine MKL's gemm rounded the same product differently from call to call (the weight
gradient of the ``item_emb_d128`` projection, recomputed on one batch: 3 to 11 of 600 backward passes differed,
0 of 1,500 with ``AUTO,STRICT``). It does not make a whole run bitwise stable under CPU contention (1 of 5 to 7
``DIN_test`` runs still ended 3e-5 valid AUC away there; identical on an idle machine): see benchmarks/README.md.
MKL reads the variable at its first call, so this works as long as no matrix product ran before the import.
"""
import os

os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")

from model_zoo.registry import get_model, list_models, register_model
from model_zoo import DIN  # noqa: F401  (registers the model)
from model_zoo import DIN_SENet  # noqa: F401  (registers the model)
from model_zoo import DIN_CrossNet  # noqa: F401  (registers the model)
from model_zoo import FiBiNET_Bilinear  # noqa: F401  (registers the model)
from model_zoo import DMF  # noqa: F401  (registers the model)

__all__ = ["get_model", "list_models", "register_model"]
