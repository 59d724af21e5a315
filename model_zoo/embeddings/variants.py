"""Item-embedding variants V1..V6 as item_info files, built on demand and cached.

Zhou's Table 1 (arXiv 2504.18961; reference section 8) compares four ways to turn the frozen text (BERT, 768-d) and
image (CLIP RN50, 1024-d) vectors of ``item_feature.parquet`` into the 128-d ``item_emb_d128``; this module adds
quantized semantic ids (reference section 8: momo's RQ variant, Hsyy04's VQ codes):

========  ===============================================================  ==========================================
variant   item_emb_d128                                                    extra item feature
========  ===============================================================  ==========================================
``V1``    PCA``dim``(text)                                                 --
``V2``    PCA``dim``(image)                                                --
``V3``    PCA``dim``(text ‖ image) (the challenge's own item_emb_d128)     --
``V4``    PCA``split[0]``(text) ‖ PCA``split[1]``(image)                   --
``V5``    the ``quantize.source`` vector (V4)                              ``item_sid``: RQ-KMeans codes, one per level
``V6``    the ``quantize.source`` vector (V4)                              ``item_sid``: PQ codes, one per subspace
``V5c``   not a feature (column kept in the file, dropped from the model)  ``item_sid`` (RQ) only
``V6c``   not a feature                                                    ``item_sid`` (PQ) only
========  ===============================================================  ==========================================

A model selects one with ``embedding_variant: V4`` in its expid: the runner calls
``model_zoo.datasets.prepare.apply_embedding_variant``, which calls :func:`ensure_variant` and points the run at
``<data_dir>/item_info_<variant>.parquet`` (adding ``item_sid`` to / dropping ``item_emb_d128`` from the feature
columns). The file has the item_info layout (row i = item i, all-zero padding row 0, dense, sorted): every column
of the source item_info (``item_tags``, ...) with ``item_emb_d128`` replaced, plus ``item_sid`` (quantized
variants) and ``ingest_flags`` (the bitmask of :mod:`model_zoo.embeddings.ingest`; flagged items without usable
vectors get a zero vector and padding codes; PCA and K-means are fitted without them).

Caching: ``item_info_<variant>.json`` next to the parquet keeps the build key (sha256 of the builder version, the
variant's settings, the seed and the sha256 of the input files; V5/V6 also the key of their source variant) and the
report (explained variance, quantization errors and code usage, ingestion counts). A matching key and output size
reuse the file; anything else rebuilds it, written to a temp file and renamed into place. Defaults come from
``config/embeddings.yaml``. With an ``item_feature`` file other than ``item_feature.parquet`` the outputs carry its
stem (``item_info_V4__item_feature_minilm.parquet``), so vector sources never overwrite each other.

CLI: ``python -m model_zoo.embeddings.variants --data-dir data/MicroLens_synth_small [--variants V1 V4 V5]``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from model_zoo.datasets.microlens import ColumnSpec, read_item_info
from model_zoo.embeddings import ingest as ingest_mod
from model_zoo.embeddings import quantize as quant
from model_zoo.embeddings.pca import fit_pca
from model_zoo.errors import ConfigError, DataError, ZooError, did_you_mean
from model_zoo.fileio import sha256_file

__all__ = ["VariantInfo", "VARIANTS", "DEFAULT_CONFIG", "BUILDER_VERSION", "ensure_variant", "build_variants",
           "load_config", "canonical_variant", "variant_path", "summary_rows", "format_table", "main"]

BUILDER_VERSION = "variants-1.0"
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = REPO_ROOT / "config" / "embeddings.yaml"
EMB_COLUMN = "item_emb_d128"
SID_COLUMN = "item_sid"
FLAG_COLUMN = "ingest_flags"
SCHEMA_EMB_DIM = 128          # item_emb_d128 as declared by the dataset configs (pretrain_dim 128)
_WRITER_OPTS: Dict[str, Any] = dict(version="2.6", data_page_version="1.0", compression="zstd", compression_level=1,
                                    write_statistics=True, store_schema=True)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Spec:
    pca: Optional[str]        # "text" | "image" | "concat" | "split" (None: quantized, vector from quantize.source)
    quantizer: Optional[str]  # "rq" | "pq"
    codes_only: bool
    description: str


VARIANTS: Mapping[str, _Spec] = {
    "V1": _Spec("text", None, False, "PCA(text)"),
    "V2": _Spec("image", None, False, "PCA(image)"),
    "V3": _Spec("concat", None, False, "PCA(text ‖ image)"),
    "V4": _Spec("split", None, False, "PCA(text) ‖ PCA(image)"),
    "V5": _Spec(None, "rq", False, "source vector + RQ-KMeans item_sid"),
    "V6": _Spec(None, "pq", False, "source vector + PQ item_sid"),
    "V5c": _Spec(None, "rq", True, "RQ-KMeans item_sid only"),
    "V6c": _Spec(None, "pq", True, "PQ item_sid only"),
}
_PCA_VARIANTS = ("V1", "V2", "V3", "V4")


@dataclass(frozen=True)
class VariantInfo:
    """What the runner needs to use a variant (see ``prepare.apply_embedding_variant``).

    Attributes:
        name: canonical variant name ("V1".."V6", "V5c", "V6c").
        item_info: the variant's item_info parquet.
        extra_feature_cols: FuxiCTR ``feature_cols`` entries of columns the variant adds (``item_sid``; a redefined
            ``item_emb_d128`` when ``dim`` != 128).
        drop_features: dataset features the variant removes (codes-only: ``item_emb_d128``).
        report: the sidecar's report (explained variance, quantization, ingestion summary).
    """

    name: str
    item_info: Path
    extra_feature_cols: Tuple[Mapping[str, Any], ...] = ()
    drop_features: Tuple[str, ...] = ()
    report: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)


# ---------------------------------------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------------------------------------
_TOP_KEYS = {"dim", "v4_split", "whiten", "l2_normalize", "seed", "text_column", "image_column", "title_column",
             "text_dim", "image_dim", "quantize", "ingest"}
_QUANT_KEYS = {"source", "algorithm", "n_init", "max_iter", "batch_size", "min_points_per_code", "rq_levels",
               "rq_codebook_size", "pq_subspaces", "pq_codebook_size"}


def load_config(config: Optional[Mapping[str, Any] | str | Path] = None,
                overrides: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """``config/embeddings.yaml`` (or the given file / mapping), then ``overrides``; validated.

    Unknown keys raise ConfigError with a did-you-mean; nested ``quantize`` / ``ingest`` overrides are merged.
    """
    base = _read_yaml(DEFAULT_CONFIG)
    if isinstance(config, (str, Path)):
        base = _merge(base, _read_yaml(Path(config)))
    elif config is not None:
        base = _merge(base, dict(config))
    cfg = _merge(base, dict(overrides or {}))
    _validate(cfg)
    return cfg


def _read_yaml(path: Path) -> Dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: embeddings config not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, found {type(data).__name__}")
    return data


def _merge(a: Mapping[str, Any], b: Mapping[str, Any]) -> Dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return out


def _int_at_least(key: str, value: Any, minimum: int = 1) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"embeddings config {key}={value!r}; expected an integer >= {minimum}")


def _validate(cfg: Mapping[str, Any]) -> None:
    for keys, allowed, where in ((set(cfg), _TOP_KEYS, ""), (set(cfg.get("quantize") or {}), _QUANT_KEYS, "quantize.")):
        unknown = sorted(keys - allowed)
        if unknown:
            hints = "; ".join(f"'{where}{k}'{did_you_mean(k, allowed)}" for k in unknown)
            raise ConfigError(f"unknown embeddings config key(s): {hints}; allowed: {', '.join(sorted(allowed))}")
    _int_at_least("dim", cfg["dim"])
    split = cfg["v4_split"]
    if not isinstance(split, (list, tuple)) or len(split) != 2 or sum(int(s) for s in split) != cfg["dim"] \
            or min(int(s) for s in split) < 1:
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
    if q["source"] not in _PCA_VARIANTS:
        raise ConfigError(f"embeddings config quantize.source={q['source']!r}; expected one of {_PCA_VARIANTS}")
    if q["algorithm"] not in quant.ALGORITHMS:
        raise ConfigError(f"embeddings config quantize.algorithm={q['algorithm']!r}; expected one of "
                          f"{quant.ALGORITHMS}")
    for key in ("n_init", "max_iter", "batch_size", "min_points_per_code", "rq_levels", "pq_subspaces"):
        _int_at_least(f"quantize.{key}", q[key])
    for key in ("rq_codebook_size", "pq_codebook_size"):
        _int_at_least(f"quantize.{key}", q[key], 2)
    ingest_mod.resolve_policies(cfg.get("ingest") or {})


def canonical_variant(variant: str) -> str:
    """The registered spelling of ``variant`` (case-insensitive); unknown names raise ConfigError."""
    by_lower = {v.lower(): v for v in VARIANTS}
    name = by_lower.get(str(variant).strip().lower())
    if name is None:
        raise ConfigError(f"unknown embedding_variant '{variant}'{did_you_mean(str(variant), VARIANTS)}; "
                          f"allowed: {', '.join(f'{k} ({s.description})' for k, s in VARIANTS.items())}")
    return name


def variant_path(data_dir: Path, variant: str, item_feature: Optional[Path] = None) -> Path:
    """``data_dir/item_info_<variant>[__<item_feature stem>].parquet``."""
    suffix = "" if item_feature is None or Path(item_feature).name == "item_feature.parquet" \
        else f"__{Path(item_feature).stem}"
    return Path(data_dir) / f"item_info_{canonical_variant(variant)}{suffix}.parquet"


# ---------------------------------------------------------------------------------------------------------------------
# Cache keys
# ---------------------------------------------------------------------------------------------------------------------


def _fingerprint(path: Path, known: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """size, mtime_ns and sha256 of ``path``; the sha256 is reused from ``known`` when size and mtime match."""
    st = path.stat()
    if known and known.get("bytes") == st.st_size and known.get("mtime_ns") == st.st_mtime_ns and known.get("sha256"):
        sha = known["sha256"]
    else:
        sha = sha256_file(path)
    return {"path": str(path), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha}


def _settings(name: str, cfg: Mapping[str, Any], seed: int) -> Dict[str, Any]:
    """The config subset a variant depends on."""
    keys = ["dim", "whiten", "l2_normalize", "text_column", "image_column", "title_column", "text_dim", "image_dim",
            "ingest"]
    spec = VARIANTS[name]
    if spec.pca == "split":
        keys.append("v4_split")
    out = {k: cfg.get(k) for k in keys}
    out["ingest"] = ingest_mod.resolve_policies(cfg.get("ingest") or {})
    if spec.quantizer:
        q = cfg["quantize"]
        prefix = "rq_" if spec.quantizer == "rq" else "pq_"
        out["quantize"] = {k: v for k, v in q.items() if not k.startswith(("rq_", "pq_")) or k.startswith(prefix)}
    out["seed"] = seed
    return out


def _key(payload: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


# ---------------------------------------------------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------------------------------------------------
class _Builder:
    """Shared state of one build session: the item_info table, the checked vectors, the sidecars' fingerprints."""

    def __init__(self, data_dir: Path, item_info: Path, item_feature: Path, cfg: Mapping[str, Any], seed: int,
                 progress: bool, force: bool = False) -> None:
        self.data_dir, self.item_info, self.item_feature = Path(data_dir), Path(item_info), Path(item_feature)
        self.cfg, self.seed, self.progress, self.force = cfg, int(seed), progress, force
        self.suffix = _suffix(variant_path(self.data_dir, "V1", self.item_feature), "V1")  # "" or "__<stem>"
        self.ingest_report_path = self.data_dir / f"ingest_report{self.suffix}.json"
        self._inputs: Optional[Dict[str, Any]] = None
        self._dense: Optional[Tuple[Dict[str, np.ndarray], np.ndarray, Dict[str, Any]]] = None
        self._built: Dict[str, VariantInfo] = {}
        self._quantized: Dict[Tuple[str, str], quant.QuantResult] = {}   # V5 and V5c share one RQ fit
        self.timings: Dict[str, float] = {}
        self.cached: Dict[str, bool] = {}

    # -- inputs
    def inputs(self, known: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
        if self._inputs is None:
            if not self.item_info.is_file():
                raise DataError("file not found: embedding variants copy item_tags (and every other column) from "
                                "item_info.parquet", path=str(self.item_info))
            if not self.item_feature.is_file():
                raise DataError(
                    f"file not found: embedding variants are built from the text and image vectors "
                    f"({self.cfg['text_column']}, {self.cfg['image_column']}) of item_feature.parquet; place the "
                    f"challenge's item_feature.parquet at this path (next to item_info.parquet in "
                    f"{self.item_info.parent}) or set 'item_feature:' in the dataset config",
                    path=str(self.item_feature))
            known = known or {}
            self._inputs = {"item_info": _fingerprint(self.item_info, known.get("item_info")),
                            "item_feature": _fingerprint(self.item_feature, known.get("item_feature"))}
        return self._inputs

    def dense(self) -> Tuple[Dict[str, np.ndarray], np.ndarray, Dict[str, Any]]:
        """(vectors by modality laid out like item_info, flags, ingest report), computed once."""
        if self._dense is None:
            ids = read_item_info(self.item_info, [ColumnSpec("item_id", "int")])["item_id"]
            num_items = len(ids)
            text_col, image_col = self.cfg["text_column"], self.cfg["image_column"]
            result = ingest_mod.ingest_item_table(
                self.item_feature, vector_columns=(text_col, image_col), title_column=self.cfg["title_column"],
                num_items=num_items, expected_dims={text_col: self.cfg["text_dim"], image_col: self.cfg["image_dim"]},
                policies=self.cfg.get("ingest"), report_path=self.ingest_report_path)
            vectors, flags = result.dense(num_items)
            report = result.report
            del result
            self._dense = ({"text": vectors[text_col], "image": vectors[image_col]}, flags, report)
        return self._dense

    # -- one variant
    def ensure(self, name: str) -> VariantInfo:
        if name in self._built:
            return self._built[name]
        spec = VARIANTS[name]
        out = variant_path(self.data_dir, name, self.item_feature)
        sidecar = out.with_suffix(".json")
        previous = _read_json(sidecar)
        inputs = self.inputs(previous.get("inputs") if previous else None)
        settings = _settings(name, self.cfg, self.seed)
        dep = self.ensure(self.cfg["quantize"]["source"]) if spec.quantizer else None
        key = _key({"builder": BUILDER_VERSION, "variant": name, "settings": settings,
                    "inputs": {k: v["sha256"] for k, v in inputs.items()},
                    "source_key": dep.report.get("key") if dep else None})
        if (not self.force and previous and previous.get("key") == key and out.is_file()
                and out.stat().st_size == previous.get("output_bytes")):
            info = _info_from_report(name, out, previous)
            if previous.get("inputs") != inputs:   # refresh the mtimes so the next call skips the hashing
                _write_json_atomic(sidecar, dict(previous, inputs=inputs))
            self._built[name], self.cached[name] = info, True
            log.info("embedding variant %s: cached %s", name, out)
            return info
        started = time.perf_counter()
        report = self._build(name, spec, out, key, settings, inputs, dep)
        self.timings[name] = time.perf_counter() - started
        report["build_seconds"] = round(self.timings[name], 3)
        _write_json_atomic(sidecar, report)
        info = _info_from_report(name, out, report)
        self._built[name], self.cached[name] = info, False
        log.info("embedding variant %s: built %s in %.1f s (explained variance %s)", name, out, self.timings[name],
                 report.get("explained_variance"))
        return info

    def _bar(self, name: str, total: int):
        from tqdm.auto import tqdm
        return tqdm(total=total, desc=f"embeddings[{name}]", unit="step", file=sys.stderr, leave=False,
                    disable=not self.progress)

    def _build(self, name: str, spec: _Spec, out: Path, key: str, settings: Mapping[str, Any],
               inputs: Mapping[str, Any], dep: Optional[VariantInfo]) -> Dict[str, Any]:
        cfg = self.cfg
        report: Dict[str, Any] = {"variant": name, "description": spec.description, "key": key,
                                  "builder": BUILDER_VERSION, "settings": settings, "inputs": dict(inputs)}
        if spec.pca:
            bar = self._bar(name, 4 if spec.pca == "split" else 3)
            vectors, flags, ingest_report = self.dense()
            bar.update(1)
            emb, ev = self._pca(spec.pca, vectors, flags, bar)
            report.update(ev)
            sid = None
        else:
            q = cfg["quantize"]
            levels = q["rq_levels"] if spec.quantizer == "rq" else q["pq_subspaces"]
            bar = self._bar(name, levels + 2)
            src = pq.read_table(dep.item_info, columns=[EMB_COLUMN, FLAG_COLUMN])
            emb = _matrix(src.column(EMB_COLUMN))
            flags = src.column(FLAG_COLUMN).to_numpy().astype(np.int64)
            ingest_report = _read_json(self.ingest_report_path) or {}
            bar.update(1)
            usable = _usable_rows(flags)
            kwargs = dict(seed=self.seed, algorithm=q["algorithm"], n_init=q["n_init"], max_iter=q["max_iter"],
                          batch_size=q["batch_size"], min_points_per_code=q["min_points_per_code"], progress=bar)
            memo = (spec.quantizer, _key(settings) + str(dep.report.get("key")))
            res = self._quantized.get(memo)
            if res is None:
                if spec.quantizer == "rq":
                    res = quant.residual_kmeans(emb[usable], q["rq_levels"], q["rq_codebook_size"], **kwargs)
                else:
                    res = quant.product_kmeans(emb[usable], q["pq_subspaces"], q["pq_codebook_size"], **kwargs)
                self._quantized[memo] = res
            else:
                bar.update(res.levels)
            sid = np.zeros((len(emb), res.levels), dtype=np.int64)
            sid[usable] = quant.semantic_ids(res.codes, res.codebook_size)
            report["quantization"] = res.report
            report["source_variant"] = dep.name
            for k in ("explained_variance", "explained_variance_text", "explained_variance_image"):
                report[k] = dep.report.get(k)
            report["sid_levels"], report["sid_vocab_size"] = res.levels, quant.sid_vocab_size(res.levels,
                                                                                                res.codebook_size)
        self._write(out, emb, flags, sid)
        bar.update(1)
        bar.close()
        report["output_bytes"] = out.stat().st_size
        report["num_items"] = int(len(flags) - 1)
        report["usable_items"] = int(_usable_rows(flags).sum())
        report["flagged_items"] = int((flags != 0).sum())
        report["ingest"] = {"report": str(self.ingest_report_path),
                            "counts": {c: v["count"] for c, v in (ingest_report.get("classes") or {}).items()
                                       if v.get("count")},
                            "dropped": (ingest_report.get("dropped") or {}).get("count", 0)}
        report["dim"] = int(emb.shape[1])
        report["extra_feature_cols"], report["drop_features"] = _feature_changes(spec, int(emb.shape[1]), report)
        return report

    def _pca(self, kind: str, vectors: Mapping[str, np.ndarray], flags: np.ndarray,
             bar: Any) -> Tuple[np.ndarray, Dict[str, Any]]:
        cfg = self.cfg
        usable = _usable_rows(flags)
        num_rows = len(flags)
        whiten, l2 = cfg["whiten"], cfg["l2_normalize"]

        all_usable = bool(usable[1:].all())

        def rows_of(x: np.ndarray) -> np.ndarray:
            return x[1:] if all_usable else x[usable]   # a view in the common clean case

        def fit(x: np.ndarray, k: int) -> Tuple[np.ndarray, np.ndarray]:
            scores, ratio = fit_pca(rows_of(x), k, seed=self.seed, whiten=whiten)
            full = np.zeros((num_rows, k), dtype=np.float32)
            full[usable] = scores
            bar.update(1)
            return full, ratio

        def total_var(x: np.ndarray) -> float:
            rows = rows_of(x)
            return float(sum(rows[:, j:j + 64].astype(np.float64).var(axis=0).sum() for j in range(0, x.shape[1], 64)))

        text, image = vectors["text"], vectors["image"]
        ev: Dict[str, Any] = {"explained_variance_text": None, "explained_variance_image": None}
        if kind == "text":
            emb, ratio = fit(text, cfg["dim"])
            ev["explained_variance_text"] = float(ratio.sum())
            ev["explained_variance"] = ev["explained_variance_text"]
        elif kind == "image":
            emb, ratio = fit(image, cfg["dim"])
            ev["explained_variance_image"] = float(ratio.sum())
            ev["explained_variance"] = ev["explained_variance_image"]
        elif kind == "concat":
            joint = np.concatenate([rows_of(text), rows_of(image)], axis=1)
            scores, ratio = fit_pca(joint, cfg["dim"], seed=self.seed, whiten=whiten)
            del joint
            emb = np.zeros((num_rows, cfg["dim"]), dtype=np.float32)
            emb[usable] = scores
            bar.update(1)
            ev["explained_variance"] = float(ratio.sum())
        else:
            k_text, k_image = (int(s) for s in cfg["v4_split"])
            e_text, r_text = fit(text, k_text)
            e_image, r_image = fit(image, k_image)
            if l2:
                e_text, e_image = _l2(e_text), _l2(e_image)
            emb = np.concatenate([e_text, e_image], axis=1)
            ratio = np.concatenate([r_text, r_image])
            v_text, v_image = total_var(text), total_var(image)
            ev["explained_variance_text"], ev["explained_variance_image"] = float(r_text.sum()), float(r_image.sum())
            # the share of the joint (text ‖ image) variance kept, comparable with V3's ratio
            ev["explained_variance"] = float((r_text.sum() * v_text + r_image.sum() * v_image) / (v_text + v_image))
            ev["v4_split"] = [k_text, k_image]
        if l2 and kind != "split":
            emb = _l2(emb)
        ev["explained_variance_ratio"] = [round(float(r), 8) for r in ratio]
        ev["whiten"], ev["l2_normalize"] = whiten, l2
        return emb, ev

    def _write(self, out: Path, emb: np.ndarray, flags: np.ndarray, sid: Optional[np.ndarray]) -> None:
        table = pq.read_table(self.item_info)
        drop = [c for c in (EMB_COLUMN, SID_COLUMN, FLAG_COLUMN) if c in table.column_names]
        names = [c for c in table.column_names if c not in drop]
        table = table.select(names)
        position = table.column_names.index("item_tags") + 1 if "item_tags" in names else len(names)
        table = table.add_column(position, EMB_COLUMN, _list_array(emb.astype(np.float32), pa.float32()))
        if sid is not None:
            table = table.append_column(SID_COLUMN, _list_array(sid, pa.int64()))
        table = table.append_column(FLAG_COLUMN, pa.array(flags.astype(np.int64), pa.int64()))
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
        os.close(fd)
        try:
            pq.write_table(table, tmp, use_dictionary=["item_tags"] if "item_tags" in names else False,
                           row_group_size=16_384, **_WRITER_OPTS)
            os.replace(tmp, out)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _suffix(out: Path, name: str) -> str:
    return out.stem[len(f"item_info_{name}"):]


def _usable_rows(flags: np.ndarray) -> np.ndarray:
    usable = (flags & (ingest_mod.VECTOR_BITS | ingest_mod.DROPPED_BIT)) == 0
    usable[0] = False   # the padding row is never fitted and stays zero
    return usable


def _l2(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.where(norms > 0, x / np.maximum(norms, 1e-12), 0.0).astype(np.float32)


def _list_array(mat: np.ndarray, value_type: pa.DataType) -> pa.ListArray:
    n, d = mat.shape
    offsets = pa.array(np.arange(0, (n + 1) * d, d, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(np.ascontiguousarray(mat).reshape(-1), value_type))


def _matrix(col: pa.ChunkedArray) -> np.ndarray:
    col = col.combine_chunks()
    return col.flatten().to_numpy().reshape(len(col), -1).astype(np.float32)


def _read_json(path: Path) -> Optional[Dict[str, Any]]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_json_atomic(path: Path, payload: Mapping[str, Any]) -> None:
    ingest_mod.write_json_atomic(path, payload)


def _feature_changes(spec: _Spec, dim: int, report: Mapping[str, Any]) -> Tuple[List[Dict[str, Any]], List[str]]:
    extra: List[Dict[str, Any]] = []
    drop: List[str] = []
    if spec.codes_only:
        drop.append(EMB_COLUMN)
    elif dim != SCHEMA_EMB_DIM:   # the dataset declares pretrain_dim 128: redefine the column at its new size
        drop.append(EMB_COLUMN)
        extra.append({"name": EMB_COLUMN, "active": True, "dtype": "float", "type": "embedding", "source": "item",
                      "embedding_dim": dim, "pretrain_dim": dim})
    if spec.quantizer:
        # MaskedAveragePooling (FuxiCTR's sequence default, made explicit) pools the codes into one d-sized field,
        # so every model's item vector keeps sizes that are multiples of embedding_dim.
        extra.append({"name": SID_COLUMN, "active": True, "dtype": "int", "type": "sequence", "source": "item",
                      "max_len": int(report["sid_levels"]), "vocab_size": int(report["sid_vocab_size"]),
                      "feature_encoder": "layers.MaskedAveragePooling()"})
    return extra, drop


def _info_from_report(name: str, out: Path, report: Mapping[str, Any]) -> VariantInfo:
    return VariantInfo(name=name, item_info=out, extra_feature_cols=tuple(report.get("extra_feature_cols") or ()),
                       drop_features=tuple(report.get("drop_features") or ()), report=report)


# ---------------------------------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------------------------------
def ensure_variant(variant: str, data_dir: Path, *, item_info: Path, item_feature: Optional[Path], seed: int,
                   progress: bool, config: Optional[Mapping[str, Any] | str | Path] = None,
                   force: bool = False) -> VariantInfo:
    """Build ``data_dir/item_info_<variant>.parquet`` unless a matching cached one exists; return its info.

    Args:
        variant: "V1".."V6", "V5c", "V6c" (case-insensitive); anything else raises ConfigError listing the allowed.
        data_dir: where the variant files, their sidecars and the ingestion report go.
        item_info: the dataset's item_info.parquet (ids, tags and any other item columns are copied from it).
        item_feature: the text/image vectors; None = ``data_dir/item_feature.parquet``. Missing: DataError.
        seed: PCA / K-means seed (``seed`` of config/embeddings.yaml wins when set).
        progress: tqdm bars on stderr.
        config: embeddings config file or mapping merged over ``config/embeddings.yaml``.
        force: rebuild even if the cache matches.
    """
    infos, _ = build_variants([variant], data_dir, item_info=item_info, item_feature=item_feature, seed=seed,
                              progress=progress, config=config, force=force)
    return infos[0]


def build_variants(variants: Sequence[str], data_dir: Path, *, item_info: Path, item_feature: Optional[Path],
                   seed: int, progress: bool, config: Optional[Mapping[str, Any] | str | Path] = None,
                   force: bool = False) -> Tuple[List[VariantInfo], _Builder]:
    """:func:`ensure_variant` for several variants sharing one read of the inputs; returns the infos and builder."""
    names = [canonical_variant(v) for v in variants]
    cfg = load_config(config)
    seed = int(cfg["seed"]) if cfg.get("seed") is not None else int(seed)
    data_dir = Path(data_dir)
    feature = Path(item_feature) if item_feature else data_dir / "item_feature.parquet"
    builder = _Builder(data_dir, Path(item_info), feature, cfg, seed, progress, force=force)
    return [builder.ensure(n) for n in names], builder


def summary_rows(infos: Sequence[VariantInfo], builder: Optional[_Builder] = None) -> List[Dict[str, Any]]:
    """One dict per variant: explained variance, sid stats, timings (what the CLI prints and saves)."""
    rows = []
    for info in infos:
        r = info.report
        q = r.get("quantization") or {}
        err = q.get("relative_error_by_level") or ([q["relative_error"]] if "relative_error" in q else [])
        rows.append({
            "variant": info.name, "description": r.get("description"), "file": str(info.item_info),
            "dim": r.get("dim"), "explained_variance": r.get("explained_variance"),
            "explained_variance_text": r.get("explained_variance_text"),
            "explained_variance_image": r.get("explained_variance_image"),
            "sid_levels": r.get("sid_levels"), "codebook_size": q.get("codebook_size_effective"),
            "relative_error": err, "dead_codes": [u["dead"] for u in q.get("usage", [])],
            "features_added": [c["name"] for c in info.extra_feature_cols],
            "features_dropped": list(info.drop_features),
            "usable_items": r.get("usable_items"), "flagged_items": r.get("flagged_items"),
            "cached": builder.cached.get(info.name) if builder else None,
            "build_seconds": round(builder.timings[info.name], 2) if builder and info.name in builder.timings else None,
        })
    return rows


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    def f(v: Any, spec: str = ".4f") -> str:
        return "-" if v is None else format(v, spec)
    lines = [f"{'variant':7} {'dim':>4} {'EV':>7} {'EV txt':>7} {'EV img':>7} {'sid':>7} {'rel.err by level':24} "
             f"{'dead':10} {'secs':>6}  item vector"]
    for r in rows:
        sid = f"{r['sid_levels']}x{r['codebook_size']}" if r.get("sid_levels") else "-"
        err = ",".join(f"{e:.3f}" for e in r["relative_error"]) or "-"
        dead = ",".join(str(d) for d in r["dead_codes"]) or "-"
        secs = "cached" if r.get("cached") else f(r.get("build_seconds"), ".1f")
        lines.append(f"{r['variant']:7} {r['dim'] or 0:>4} {f(r['explained_variance']):>7} "
                     f"{f(r['explained_variance_text']):>7} {f(r['explained_variance_image']):>7} {sid:>7} "
                     f"{err:24} {dead:10} {secs:>6}  {r['description']}")
    return "\n".join(lines)


def _base_seed() -> int:
    try:
        return int(yaml.safe_load((REPO_ROOT / "config" / "model_config.yaml").read_text())["Base"]["seed"])
    except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError):
        return 0


def _dataset_paths(dataset_id: str, progress: bool) -> Tuple[Path, Path, Optional[Path]]:
    """(data_dir, item_info, item_feature) of a dataset block of config/dataset_config.yaml (synthetic: generated)."""
    from model_zoo.config import resolve_path
    blocks = yaml.safe_load((REPO_ROOT / "config" / "dataset_config.yaml").read_text()) or {}
    if dataset_id not in blocks:
        raise ConfigError(f"unknown dataset '{dataset_id}'{did_you_mean(dataset_id, blocks)}; "
                          f"known: {', '.join(blocks)}")
    block = blocks[dataset_id]
    data_dir = resolve_path(block["data_root"]) / dataset_id
    if block.get("synthetic"):
        from model_zoo.datasets.synthetic import ensure_synthetic
        synth = dict(block["synthetic"])
        ensure_synthetic(data_dir, preset=synth.pop("preset", "tiny"), seed=synth.pop("seed", None),
                         progress=progress, **synth)
    feature = resolve_path(block["item_feature"]) if block.get("item_feature") else None
    return data_dir, resolve_path(block["item_info"]), feature


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Build item-embedding variants (item_info_<Vn>.parquet) and report "
                                                 "explained variance, quantization error and code usage.")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--data-dir", help="directory with item_info.parquet and item_feature.parquet")
    where.add_argument("--dataset", help="a dataset id of config/dataset_config.yaml (a synthetic one is generated)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), help=f"default: all ({' '.join(VARIANTS)})")
    parser.add_argument("--config", default=None, help="embeddings YAML merged over config/embeddings.yaml")
    parser.add_argument("--item-info", default=None, help="default: <data-dir>/item_info.parquet")
    parser.add_argument("--item-feature", default=None, help="default: <data-dir>/item_feature.parquet")
    parser.add_argument("--out-dir", default=None, help="where the variant files go (default: the data dir)")
    parser.add_argument("--seed", type=int, default=None, help="default: Base seed of config/model_config.yaml, "
                                                               "as the runner uses")
    parser.add_argument("--force", action="store_true", help="rebuild even when the cache matches")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    try:
        if args.dataset:
            data_dir, item_info, item_feature = _dataset_paths(args.dataset, not args.quiet)
        else:
            data_dir = Path(args.data_dir)
            item_info, item_feature = data_dir / "item_info.parquet", None
        item_info = Path(args.item_info) if args.item_info else item_info
        item_feature = Path(args.item_feature) if args.item_feature else item_feature
        out_dir = Path(args.out_dir) if args.out_dir else data_dir
        if item_feature is None:
            item_feature = data_dir / "item_feature.parquet"
        seed = args.seed if args.seed is not None else _base_seed()
        started = time.perf_counter()
        infos, builder = build_variants(args.variants, out_dir, item_info=item_info, item_feature=item_feature,
                                        seed=seed, progress=not args.quiet, config=args.config, force=args.force)
        seconds = time.perf_counter() - started
    except ZooError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rows = summary_rows(infos, builder)
    report = {"data_dir": str(out_dir), "item_info": str(item_info), "item_feature": str(item_feature),
              "seed": builder.seed, "seconds": round(seconds, 2), "variants": rows}
    path = out_dir / f"embedding_variants_report{_suffix(infos[0].item_info, infos[0].name)}.json"
    _write_json_atomic(path, report)
    print(format_table(rows))
    print(f"report: {path}  ({seconds:.1f} s)")
    print(json.dumps({k: v for k, v in report.items() if k != "variants"}
                     | {"explained_variance": {r["variant"]: r["explained_variance"] for r in rows}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
