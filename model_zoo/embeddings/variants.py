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
report (explained variance, quantization errors and code usage, ingestion counts), plus the size and sha256 of the
output file. A matching key reuses the file only when its sha256 matches the sidecar (a corrupted or modified file
is rebuilt with a warning); anything else rebuilds it, written through :mod:`model_zoo.fileio` (temp file, rename).
Settings and their validation: :mod:`model_zoo.embeddings.variant_config` (defaults in ``config/embeddings.yaml``).
With an ``item_feature`` file other than ``item_feature.parquet`` the outputs carry its stem
(``item_info_V4__item_feature_minilm.parquet``), so vector sources never overwrite each other.

Report table and CLI: :mod:`model_zoo.apps.variants` (``python -m model_zoo.apps.variants --data-dir DIR``).
"""
from __future__ import annotations

import hashlib
import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from model_zoo.datasets.microlens import ColumnSpec, read_item_info
from model_zoo.embeddings import ingest as ingest_mod
from model_zoo.embeddings import quantize as quant
from model_zoo.embeddings.pca import fit_pca
from model_zoo.embeddings.variant_config import (DEFAULT_CONFIG, VARIANTS, VariantSpec, canonical_variant,
                                                 load_config)
from model_zoo.errors import DataError
from model_zoo.fileio import atomic_write, atomic_write_json, sha256_file

__all__ = ["VariantInfo", "VariantBuilder", "VARIANTS", "DEFAULT_CONFIG", "BUILDER_VERSION", "EMB_COLUMN",
           "SID_COLUMN", "FLAG_COLUMN", "ensure_variant", "build_variants", "load_config", "canonical_variant",
           "variant_path"]

BUILDER_VERSION = "variants-1.1"   # 1.1: sidecars record the output's sha256
EMB_COLUMN = "item_emb_d128"
SID_COLUMN = "item_sid"
FLAG_COLUMN = "ingest_flags"
SCHEMA_EMB_DIM = 128          # item_emb_d128 as declared by the dataset configs (pretrain_dim 128)
_WRITER_OPTS: Dict[str, Any] = dict(version="2.6", data_page_version="1.0", compression="zstd", compression_level=1,
                                    write_statistics=True, store_schema=True)

log = logging.getLogger(__name__)


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
class VariantBuilder:
    """One build session over a data dir: reads and checks the inputs once, builds or reuses each variant.

    Returned by :func:`build_variants`; ``cached[name]`` says whether a variant was reused, ``timings[name]`` how
    long its build took (absent when cached), ``suffix`` is the output-name suffix of the ``item_feature`` file.
    """

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
        if not self.force and previous and previous.get("key") == key:
            problem = _output_problem(out, previous)
            if problem is None:
                info = _info_from_report(name, out, previous)
                if previous.get("inputs") != inputs:   # refresh the mtimes so the next call skips the hashing
                    atomic_write_json(sidecar, dict(previous, inputs=inputs))
                self._built[name], self.cached[name] = info, True
                log.info("embedding variant %s: cached %s", name, out)
                return info
            if out.is_file():   # present but not what the sidecar describes: never use it
                log.warning("embedding variant %s: %s: %s; rebuilding it", name, out, problem)
        started = time.perf_counter()
        report = self._build(name, spec, out, key, settings, inputs, dep)
        self.timings[name] = time.perf_counter() - started
        report["build_seconds"] = round(self.timings[name], 3)
        atomic_write_json(sidecar, report)
        info = _info_from_report(name, out, report)
        self._built[name], self.cached[name] = info, False
        log.info("embedding variant %s: built %s in %.1f s (explained variance %s)", name, out, self.timings[name],
                 report.get("explained_variance"))
        return info

    def _bar(self, name: str, total: int):
        from tqdm.auto import tqdm
        return tqdm(total=total, desc=f"embeddings[{name}]", unit="step", file=sys.stderr, leave=False,
                    disable=not self.progress)

    def _build(self, name: str, spec: VariantSpec, out: Path, key: str, settings: Mapping[str, Any],
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
        report["output_sha256"] = sha256_file(out)
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
        dictionary = ["item_tags"] if "item_tags" in names else False
        atomic_write(out, lambda tmp: pq.write_table(table, tmp, use_dictionary=dictionary, row_group_size=16_384,
                                                     **_WRITER_OPTS))


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
    """A JSON object from ``path``; None when the file is absent, and None with a warning when it is unreadable."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("%s: unreadable (%s); ignoring it", path, exc)
        return None
    if not isinstance(data, dict):
        log.warning("%s: expected a JSON object, found %s; ignoring it", path, type(data).__name__)
        return None
    return data


def _output_problem(out: Path, sidecar: Mapping[str, Any]) -> Optional[str]:
    """Why the built file ``out`` cannot be reused as described by its sidecar; None when it can."""
    if not out.is_file():
        return "file missing"
    if out.stat().st_size != sidecar.get("output_bytes"):
        return f"{out.stat().st_size} bytes, its sidecar records {sidecar.get('output_bytes')}"
    if sha256_file(out) != sidecar.get("output_sha256"):
        return "sha256 differs from its sidecar (corrupted or modified)"
    return None


def _feature_changes(spec: VariantSpec, dim: int, report: Mapping[str, Any]) -> Tuple[List[Dict[str, Any]], List[str]]:
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
                   force: bool = False) -> Tuple[List[VariantInfo], VariantBuilder]:
    """:func:`ensure_variant` for several variants sharing one read of the inputs; returns the infos and builder."""
    names = [canonical_variant(v) for v in variants]
    cfg = load_config(config)
    seed = int(cfg["seed"]) if cfg.get("seed") is not None else int(seed)
    data_dir = Path(data_dir)
    feature = Path(item_feature) if item_feature else data_dir / "item_feature.parquet"
    builder = VariantBuilder(data_dir, Path(item_info), feature, cfg, seed, progress, force=force)
    return [builder.ensure(n) for n in names], builder
