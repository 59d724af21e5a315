"""Item-embedding utilities (dimensionality reduction of frozen encoder outputs)."""
from __future__ import annotations

from model_zoo.embeddings.pca import VARIANTS, fit_pca, pca_variants

__all__ = ["VARIANTS", "fit_pca", "pca_variants"]
