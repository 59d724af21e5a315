"""The item-embedding variants V1..V6 by name, and their validated settings (``config/embeddings.yaml``).

What each variant builds is described in :mod:`model_zoo.embeddings.variants`; this module only says which variants
exist (:data:`VARIANTS`, :func:`canonical_variant`) and loads the settings they are built with (:func:`load_config`:
the shipped ``config/embeddings.yaml``, then a user file or mapping, then overrides; unknown keys and bad values raise
:class:`~model_zoo.errors.ConfigError` naming the key, the value and what is allowed).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

from model_zoo.config import config_file, read_yaml
from model_zoo.embeddings import ingest as ingest_mod
from model_zoo.embeddings import quantize as quant
from model_zoo.errors import ConfigError, did_you_mean

__all__ = ["VariantSpec", "VARIANTS", "PCA_VARIANTS", "DEFAULT_CONFIG", "load_config", "canonical_variant"]

DEFAULT_CONFIG = config_file("embeddings.yaml")


@dataclass(frozen=True)
class VariantSpec:
    """How one variant is made.

    Attributes:
        pca: "text" | "image" | "concat" | "split"; None for a quantized variant (vector from ``quantize.source``).
        quantizer: "rq" | "pq" | None.
        codes_only: the variant drops ``item_emb_d128`` from the model and keeps only ``item_sid``.
        description: one line for tables and errors.
    """

    pca: Optional[str]
    quantizer: Optional[str]
    codes_only: bool
    description: str


VARIANTS: Mapping[str, VariantSpec] = {
    "V1": VariantSpec("text", None, False, "PCA(text)"),
    "V2": VariantSpec("image", None, False, "PCA(image)"),
    "V3": VariantSpec("concat", None, False, "PCA(text ‖ image)"),
    "V4": VariantSpec("split", None, False, "PCA(text) ‖ PCA(image)"),
    "V5": VariantSpec(None, "rq", False, "source vector + RQ-KMeans item_sid"),
    "V6": VariantSpec(None, "pq", False, "source vector + PQ item_sid"),
    "V5c": VariantSpec(None, "rq", True, "RQ-KMeans item_sid only"),
    "V6c": VariantSpec(None, "pq", True, "PQ item_sid only"),
}
PCA_VARIANTS = ("V1", "V2", "V3", "V4")

_TOP_KEYS = {"dim", "v4_split", "whiten", "l2_normalize", "seed", "text_column", "image_column", "title_column",
             "text_dim", "image_dim", "quantize", "ingest"}
_QUANT_KEYS = {"source", "algorithm", "n_init", "max_iter", "batch_size", "min_points_per_code", "rq_levels",
               "rq_codebook_size", "pq_subspaces", "pq_codebook_size"}


def canonical_variant(variant: str) -> str:
    """The registered spelling of ``variant`` (case-insensitive); unknown names raise ConfigError."""
    by_lower = {v.lower(): v for v in VARIANTS}
    name = by_lower.get(str(variant).strip().lower())
    if name is None:
        raise ConfigError(f"unknown embedding_variant '{variant}'{did_you_mean(str(variant), VARIANTS)}; "
                          f"allowed: {', '.join(f'{k} ({s.description})' for k, s in VARIANTS.items())}")
    return name


def load_config(config: Optional[Mapping[str, Any] | str | Path] = None,
                overrides: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """``config/embeddings.yaml`` (or the given file / mapping merged over it), then ``overrides``; validated.

    Unknown keys raise ConfigError with a did-you-mean; nested ``quantize`` / ``ingest`` mappings are merged.
    """
    base = read_yaml(DEFAULT_CONFIG)
    if isinstance(config, (str, Path)):
        base = _merge(base, read_yaml(config))
    elif config is not None:
        base = _merge(base, dict(config))
    cfg = _merge(base, dict(overrides or {}))
    _validate(cfg)
    return cfg


def _merge(a: Mapping[str, Any], b: Mapping[str, Any]) -> Dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return out


def _int_at_least(key: str, value: Any, minimum: int = 1) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"embeddings config {key}={value!r}; expected an integer >= {minimum}")


def _validate(cfg: Mapping[str, Any]) -> None:
    if not isinstance(cfg.get("quantize"), Mapping):
        raise ConfigError(f"embeddings config quantize={cfg.get('quantize')!r}; expected a mapping of "
                          f"{', '.join(sorted(_QUANT_KEYS))}")
    for keys, allowed, where in ((set(cfg), _TOP_KEYS, ""), (set(cfg["quantize"]), _QUANT_KEYS, "quantize.")):
        unknown = sorted(keys - allowed)
        if unknown:
            hints = "; ".join(f"'{where}{k}'{did_you_mean(k, allowed)}" for k in unknown)
            raise ConfigError(f"unknown embeddings config key(s): {hints}; allowed: {', '.join(sorted(allowed))}")
    _int_at_least("dim", cfg["dim"])
    split = cfg["v4_split"]
    if not isinstance(split, (list, tuple)) or len(split) != 2 \
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in split) \
            or sum(split) != cfg["dim"]:
        raise ConfigError(f"embeddings config v4_split={split!r}; expected two positive sizes that sum to "
                          f"dim={cfg['dim']}")
    for key in ("whiten", "l2_normalize"):
        if not isinstance(cfg[key], bool):
            raise ConfigError(f"embeddings config {key}={cfg[key]!r}; expected true or false")
    if cfg["seed"] is not None:
        _int_at_least("seed", cfg["seed"], 0)
    for key in ("text_dim", "image_dim"):
        if cfg[key] is not None:
            _int_at_least(key, cfg[key])
    q = cfg["quantize"]
    if q["source"] not in PCA_VARIANTS:
        raise ConfigError(f"embeddings config quantize.source={q['source']!r}; expected one of {PCA_VARIANTS}")
    if q["algorithm"] not in quant.ALGORITHMS:
        raise ConfigError(f"embeddings config quantize.algorithm={q['algorithm']!r}; expected one of "
                          f"{quant.ALGORITHMS}")
    for key in ("n_init", "max_iter", "batch_size", "min_points_per_code", "rq_levels", "pq_subspaces"):
        _int_at_least(f"quantize.{key}", q[key])
    for key in ("rq_codebook_size", "pq_codebook_size"):
        _int_at_least(f"quantize.{key}", q[key], 2)
    ingest_mod.resolve_policies(cfg.get("ingest") or {})
