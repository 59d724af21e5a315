"""Deterministic PCA helpers for item embeddings.

The MMCTR challenge ships item embeddings that are PCA projections of frozen encoder outputs:
``item_emb_d128`` (and ``item_emb_d128_v3``) is PCA128 of the concatenated text and image vectors, ``_v1`` is
PCA128 of text alone, ``_v2`` PCA128 of image alone and ``_e4`` is PCA64(text) followed by PCA64(image).
:func:`fit_pca` computes one projection with scikit-learn's randomized solver under a fixed seed and a fixed sign
convention, so the same input yields bit-identical float32 scores on a given machine and library stack;
:func:`pca_variants` builds all four variants from a pair of modality matrices.
"""
from __future__ import annotations

import contextlib
from typing import ContextManager, Dict, Tuple

import numpy as np
from sklearn.decomposition import PCA
from threadpoolctl import ThreadpoolController, threadpool_limits

from model_zoo.errors import ConfigError, DataError

__all__ = ["fit_pca", "pca_variants", "VARIANTS"]

#: Names of the variants returned by :func:`pca_variants`, in ``item_emb.parquet`` column order.
VARIANTS: Tuple[str, ...] = ("v1", "v2", "v3", "e4")

#: Inputs with fewer elements than this run single-threaded (thread start-up and spinning cost more than they save).
SMALL_INPUT = 4_000_000


def _blas_threads(n_elements: int) -> ContextManager[object]:
    """Thread limits for one randomized PCA.

    The randomized solver alternates numpy matmuls with scipy LU factorisations, and numpy and scipy ship separate
    OpenBLAS builds whose idle threads spin against each other; on a 2-core box that made PCA up to 5x slower.
    Small inputs run with one BLAS thread; large ones keep numpy's threads for the matmuls and give scipy's
    (thin LU on n × k) a single thread. The choice depends only on the input size, so repeated runs on the same
    machine use the same settings (and, in our checks, both settings gave bit-identical scores).
    """
    if n_elements < SMALL_INPUT:
        return threadpool_limits(limits=1, user_api="blas")
    controller = ThreadpoolController()
    scipy_libs = [lib for lib in controller.lib_controllers if "scipy" in str(getattr(lib, "filepath", ""))]
    if not scipy_libs:
        return contextlib.nullcontext()
    return controller.select(filepath=[lib.filepath for lib in scipy_libs]).limit(limits=1)


def _check_matrix(x: np.ndarray, name: str) -> None:
    """Raise DataError unless ``x`` is a finite 2-d floating matrix."""
    if not isinstance(x, np.ndarray) or x.ndim != 2:
        raise DataError(f"{name} must be a 2-d numpy array, got {type(x).__name__} "
                        f"with shape {getattr(x, 'shape', None)}")
    if not np.issubdtype(x.dtype, np.floating):
        raise DataError(f"{name} must hold floats, got dtype {x.dtype}")
    if not np.isfinite(x).all():
        raise DataError(f"{name} holds NaN or infinite values")


def fit_pca(x: np.ndarray, n_components: int, *, seed: int, whiten: bool = False) -> Tuple[np.ndarray, np.ndarray]:
    """Project ``x`` (n_samples × n_features) onto its first ``n_components`` principal components.

    Uses ``PCA(svd_solver="randomized", random_state=seed)``; float32 input stays float32 inside scikit-learn,
    which keeps memory at roughly one centred copy of ``x``. Each component's sign is fixed so that its
    largest-magnitude loading is positive, so results never flip between library versions or seeds.

    Returns ``(scores, explained_variance_ratio)``: float32 scores of shape (n_samples, n_components) and the
    float64 ratio of variance explained by each component.
    """
    _check_matrix(x, "x")
    n_samples, n_features = x.shape
    if not isinstance(n_components, (int, np.integer)) or isinstance(n_components, bool) or n_components < 1:
        raise ConfigError(f"n_components must be a positive integer, got {n_components!r}")
    if n_components > min(n_samples, n_features):
        raise ConfigError(f"n_components={n_components} exceeds min(n_samples, n_features)="
                          f"{min(n_samples, n_features)} for input of shape {x.shape}")
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float32)
    pca = PCA(n_components=int(n_components), svd_solver="randomized", random_state=int(seed), whiten=whiten)
    with _blas_threads(x.size):
        scores = pca.fit_transform(x)
    # Sign convention: the largest |loading| of every component is positive.
    comps = pca.components_
    signs = np.sign(comps[np.arange(comps.shape[0]), np.abs(comps).argmax(axis=1)])
    signs[signs == 0] = 1.0
    scores *= signs.astype(scores.dtype)[None, :]
    return np.ascontiguousarray(scores, dtype=np.float32), np.asarray(pca.explained_variance_ratio_, dtype=np.float64)


def pca_variants(text: np.ndarray, image: np.ndarray, *, dim: int = 128, v4_split: Tuple[int, int] = (64, 64),
                 seed: int) -> Dict[str, np.ndarray]:
    """Build the four challenge embedding variants from per-item text and image matrices (same row order).

    Returns a dict with float32 matrices ``v1`` (PCA``dim`` of text), ``v2`` (PCA``dim`` of image), ``v3``
    (PCA``dim`` of ``concat(text, image)``) and ``e4`` (PCA``v4_split[0]`` of text ‖ PCA``v4_split[1]`` of image),
    plus the matching explained-variance-ratio arrays under ``v1_evr``, ``v2_evr``, ``v3_evr`` and ``e4_evr``
    (the last one is the text ratios followed by the image ratios). Every fit uses the same ``seed``.
    """
    _check_matrix(text, "text")
    _check_matrix(image, "image")
    if text.shape[0] != image.shape[0]:
        raise DataError(f"text and image must have the same number of rows, got {text.shape[0]} and {image.shape[0]}")
    if len(v4_split) != 2 or sum(v4_split) != dim:
        raise ConfigError(f"v4_split must be two sizes that sum to dim={dim}, got {tuple(v4_split)}")
    out: Dict[str, np.ndarray] = {}
    out["v1"], out["v1_evr"] = fit_pca(text, dim, seed=seed)
    out["v2"], out["v2_evr"] = fit_pca(image, dim, seed=seed)
    joint = np.concatenate([text, image], axis=1)
    out["v3"], out["v3_evr"] = fit_pca(joint, dim, seed=seed)
    del joint
    e_txt, r_txt = fit_pca(text, int(v4_split[0]), seed=seed)
    e_img, r_img = fit_pca(image, int(v4_split[1]), seed=seed)
    out["e4"] = np.concatenate([e_txt, e_img], axis=1)
    out["e4_evr"] = np.concatenate([r_txt, r_img])
    return out
