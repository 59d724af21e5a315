"""Quantized semantic ids of item embeddings: residual K-means (RQ-KMeans) and product quantization (PQ).

* **RQ** (``levels`` x ``codebook_size``): level 1 clusters the vectors, level l clusters the residual left by levels
  1..l-1; the reconstruction is the sum of the chosen centroids, so its error can only shrink with more levels
  (each level's K-means starts from the residual and the zero vector is never worse than the nearest centroid
  on average). As in momo's ``Transformer_DCN_Quant`` (reference section 8) and TIGER-style semantic ids.
* **PQ** (``subspaces`` x ``codebook_size``): the d dimensions are cut into ``subspaces`` contiguous blocks of
  (nearly) equal size and each block is clustered on its own; the reconstruction is the concatenation.

K-means is scikit-learn's (``KMeans`` or ``MiniBatchKMeans``) with a fixed ``random_state`` and ``n_init``, so
the same input and seed give the same codes. Codes per level are 0..K-1; :func:`semantic_ids` turns them into one
id space in which levels are disjoint: ``id = level * K + code + 1`` (0 = padding), ready for an item-side FuxiCTR
``sequence`` feature (``item_sid``, ``max_len = levels``, ``vocab_size = levels * K + 2``: ids 0..levels*K plus
the OOV slot that FuxiCTR's identity vocab reserves).

Reported per level: relative reconstruction error ``||x - x_hat||^2 / ||x - mean(x)||^2`` (RQ: cumulative after
each level; PQ: per subspace and overall), code usage (used / dead codes, perplexity ``exp(entropy)``, the largest
code's share) and the effective codebook size (``codebook_size`` is capped at ``n // min_points_per_code`` so a
small world does not ask K-means for more clusters than it has support for; the cap is reported).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import numpy as np
from sklearn.cluster import KMeans, MiniBatchKMeans

from model_zoo.errors import ConfigError, DataError

__all__ = ["ALGORITHMS", "QuantResult", "residual_kmeans", "product_kmeans", "semantic_ids", "code_usage",
           "effective_codebook_size", "relative_error", "sid_vocab_size"]

ALGORITHMS = ("kmeans", "minibatch")


@dataclass
class QuantResult:
    """Codes (n, levels) int64 in 0..K-1, the codebooks, the reconstruction (n, d) float32 and the report."""

    method: str
    codes: np.ndarray
    codebooks: List[np.ndarray]
    reconstruction: np.ndarray
    codebook_size: int
    report: Dict[str, Any] = field(default_factory=dict)

    @property
    def levels(self) -> int:
        return self.codes.shape[1]


def effective_codebook_size(codebook_size: int, n: int, min_points_per_code: int = 8) -> int:
    """``min(codebook_size, n // min_points_per_code)``, at least 2 (and at most n)."""
    if codebook_size < 2:
        raise ConfigError(f"codebook_size={codebook_size}; expected an integer >= 2")
    if min_points_per_code < 1:
        raise ConfigError(f"min_points_per_code={min_points_per_code}; expected an integer >= 1")
    if n < 2:
        raise DataError(f"{n} usable item vector(s); quantization needs at least 2")
    return int(max(2, min(codebook_size, n // min_points_per_code, n)))


def relative_error(x: np.ndarray, x_hat: np.ndarray) -> float:
    """``||x - x_hat||^2 / ||x - mean(x)||^2`` (0 = perfect, 1 = as bad as predicting the mean)."""
    x64 = x.astype(np.float64)
    denom = float(((x64 - x64.mean(axis=0)) ** 2).sum())
    return float(((x64 - x_hat) ** 2).sum() / denom) if denom > 0 else 0.0


def code_usage(codes: np.ndarray, codebook_size: int) -> List[Dict[str, Any]]:
    """Per level (column of ``codes``): used and dead codes, perplexity, largest share, up to 20 dead code ids."""
    out = []
    for level in range(codes.shape[1]):
        counts = np.bincount(codes[:, level], minlength=codebook_size)
        p = counts[counts > 0] / counts.sum()
        dead = np.flatnonzero(counts == 0)
        out.append({"level": level, "used": int((counts > 0).sum()), "dead": int(dead.size),
                    "dead_codes": dead[:20].tolist(), "perplexity": float(math.exp(-(p * np.log(p)).sum())),
                    "max_share": float(p.max()) if p.size else 0.0})
    return out


def _kmeans(x: np.ndarray, k: int, *, seed: int, algorithm: str, n_init: int, max_iter: int,
            batch_size: int) -> np.ndarray:
    """Fitted centroids (k, d) float32 and labels of ``x``."""
    if algorithm == "kmeans":
        km = KMeans(n_clusters=k, n_init=n_init, max_iter=max_iter, random_state=seed)
    else:
        km = MiniBatchKMeans(n_clusters=k, n_init=n_init, max_iter=max_iter, batch_size=batch_size,
                             random_state=seed)
    labels = km.fit_predict(x)
    return km.cluster_centers_.astype(np.float32), labels.astype(np.int64)


def _check(x: np.ndarray, algorithm: str, n_init: int, max_iter: int) -> None:
    if algorithm not in ALGORITHMS:
        raise ConfigError(f"algorithm={algorithm!r}; expected one of {ALGORITHMS}")
    if n_init < 1 or max_iter < 1:
        raise ConfigError(f"n_init={n_init}, max_iter={max_iter}; expected integers >= 1")
    if not isinstance(x, np.ndarray) or x.ndim != 2 or not np.isfinite(x).all():
        raise DataError(f"quantization input must be a finite 2-d array, got shape {getattr(x, 'shape', None)}")


def residual_kmeans(x: np.ndarray, levels: int, codebook_size: int, *, seed: int, algorithm: str = "kmeans",
                    n_init: int = 1, max_iter: int = 100, batch_size: int = 4096, min_points_per_code: int = 8,
                    progress: Any = None) -> QuantResult:
    """RQ-KMeans codes of ``x`` (n, d): one K-means per level on the running residual.

    Args:
        x: vectors to quantize (float).
        levels: number of residual levels (>= 1).
        codebook_size: K per level (capped, see :func:`effective_codebook_size`).
        seed: ``random_state`` of level 0; level l uses ``seed + l``.
        algorithm: ``"kmeans"`` (Lloyd) or ``"minibatch"``.
        n_init, max_iter, batch_size: K-means settings (``batch_size`` for minibatch only).
        progress: optional tqdm-like object; ``update(1)`` is called after each level.
    """
    _check(x, algorithm, n_init, max_iter)
    if levels < 1:
        raise ConfigError(f"levels={levels}; expected an integer >= 1")
    k = effective_codebook_size(codebook_size, len(x), min_points_per_code)
    x = x.astype(np.float32)
    residual = x.copy()
    recon = np.zeros_like(x)
    codes = np.zeros((len(x), levels), dtype=np.int64)
    books, errors = [], []
    for level in range(levels):
        centers, labels = _kmeans(residual, k, seed=seed + level, algorithm=algorithm, n_init=n_init,
                                  max_iter=max_iter, batch_size=batch_size)
        codes[:, level] = labels
        recon += centers[labels]
        residual -= centers[labels]
        books.append(centers)
        errors.append(relative_error(x, recon))
        if progress is not None:
            progress.update(1)
    report = {"method": "rq_kmeans", "levels": levels, "codebook_size": codebook_size, "codebook_size_effective": k,
              "algorithm": algorithm, "n_init": n_init, "seed": seed, "num_vectors": int(len(x)),
              "relative_error_by_level": errors, "usage": code_usage(codes, k),
              "unique_code_tuples": int(len(np.unique(codes, axis=0)))}
    return QuantResult("rq", codes, books, recon, k, report)


def product_kmeans(x: np.ndarray, subspaces: int, codebook_size: int, *, seed: int, algorithm: str = "kmeans",
                   n_init: int = 1, max_iter: int = 100, batch_size: int = 4096, min_points_per_code: int = 8,
                   progress: Any = None) -> QuantResult:
    """PQ codes of ``x`` (n, d): ``subspaces`` contiguous column blocks, one K-means each (seed + block index)."""
    _check(x, algorithm, n_init, max_iter)
    if not 1 <= subspaces <= x.shape[1]:
        raise ConfigError(f"subspaces={subspaces}; expected an integer in 1..{x.shape[1]} (the vector size)")
    k = effective_codebook_size(codebook_size, len(x), min_points_per_code)
    x = x.astype(np.float32)
    bounds = np.linspace(0, x.shape[1], subspaces + 1).round().astype(int)
    recon = np.zeros_like(x)
    codes = np.zeros((len(x), subspaces), dtype=np.int64)
    books, errors = [], []
    for s in range(subspaces):
        a, b = bounds[s], bounds[s + 1]
        centers, labels = _kmeans(x[:, a:b], k, seed=seed + s, algorithm=algorithm, n_init=n_init,
                                  max_iter=max_iter, batch_size=batch_size)
        codes[:, s] = labels
        recon[:, a:b] = centers[labels]
        books.append(centers)
        errors.append(relative_error(x[:, a:b], recon[:, a:b]))
        if progress is not None:
            progress.update(1)
    report = {"method": "pq_kmeans", "subspaces": subspaces, "subspace_bounds": bounds.tolist(),
              "codebook_size": codebook_size, "codebook_size_effective": k, "algorithm": algorithm,
              "n_init": n_init, "seed": seed, "num_vectors": int(len(x)), "relative_error_by_subspace": errors,
              "relative_error": relative_error(x, recon), "usage": code_usage(codes, k),
              "unique_code_tuples": int(len(np.unique(codes, axis=0)))}
    return QuantResult("pq", codes, books, recon, k, report)


def semantic_ids(codes: np.ndarray, codebook_size: int, valid: Optional[np.ndarray] = None) -> np.ndarray:
    """Disjoint ids per level: ``level * K + code + 1``; rows with ``valid == False`` become all 0 (padding)."""
    codes = np.asarray(codes, dtype=np.int64)
    if codes.size and (codes.min() < 0 or codes.max() >= codebook_size):
        raise DataError(f"codes must lie in 0..{codebook_size - 1}, got {codes.min()}..{codes.max()}")
    ids = codes + np.arange(codes.shape[1], dtype=np.int64)[None, :] * codebook_size + 1
    if valid is not None:
        ids[~np.asarray(valid, dtype=bool)] = 0
    return ids


def sid_vocab_size(levels: int, codebook_size: int) -> int:
    """FuxiCTR vocab_size of the ``item_sid`` feature: padding 0, ids 1..levels*K, the OOV slot."""
    return levels * codebook_size + 2

