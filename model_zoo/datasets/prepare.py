"""Data steps from validated params to tensors: data presence checks, the synthetic world, embedding variants, the
feature map, item tables and loaders. ``model_zoo.experiment`` runs them in order; nothing here builds a model.

Derived files (feature maps, variant tables) go to a cache directory owned by the zoo (``cache_dir``), never into the
dataset's own folder, which may be read-only and belongs to the user."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple


from model_zoo.datasets.loader import ItemInfoTable, MMCTRDataLoader
import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from model_zoo.datasets.microlens import (ColumnSpec, open_parquet, read_item_info, read_optional_item_table,
                                         read_split)
from model_zoo.errors import ConfigError, DataError
from model_zoo.fileio import remove_stale_temp, temp_dir_for, publish_dir, sha256_file
from model_zoo.schema import LABEL_COLUMN, SEQ_COLUMN, TARGET_COLUMN

__all__ = ["DatasetFiles", "expand_feature_cols", "locate_data", "check_splits", "apply_embedding_variant",
           "split_columns", "item_columns",
           "build_feature_map", "load_item_table", "make_loader", "oracle_metrics", "train_item_mask",
           "load_item_feature_vectors", "sample_train_rows"]

CHALLENGE_DATASET_ID = "MicroLens_1M_x1"
_FEATURE_MAP_DIGEST = "feature_map.json.sha256"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatasetFiles:
    data_dir: Path
    train: Path
    valid: Path
    test: Optional[Path]
    item_info: Path
    synthetic_manifest: Optional[Dict[str, Any]] = None


def expand_feature_cols(feature_cols: List[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    """One dict per column (FuxiCTR allows ``name: [a, b]``); embeddings get an explicit ``pretrain_dim``."""
    cols: List[Dict[str, Any]] = []
    for col in feature_cols:
        names = col["name"] if isinstance(col["name"], list) else [col["name"]]
        for name in names:
            c = dict(col, name=name)
            if c.get("type") == "embedding":
                c.setdefault("pretrain_dim", c.get("embedding_dim"))
            cols.append(c)
    return [c for c in cols if c.get("active", True)]


def _vocab_of(cols: List[Dict[str, Any]], name: str) -> Optional[int]:
    return next((c.get("vocab_size") for c in cols if c["name"] == name), None)


def split_columns(params: Mapping[str, Any], *, with_label: bool = True) -> List[ColumnSpec]:
    """Column specs of train/valid/test: every non-item feature, the target id, the history, the label."""
    cols = expand_feature_cols(params["feature_cols"])
    item_vocab = _vocab_of(cols, TARGET_COLUMN)
    specs: List[ColumnSpec] = []
    for c in cols:
        name, ftype = c["name"], c["type"]
        if name == SEQ_COLUMN:
            specs.append(ColumnSpec(name, "int_list", vocab_size=item_vocab))
        elif name == TARGET_COLUMN:
            specs.append(ColumnSpec(name, "int", vocab_size=item_vocab, min_value=1))
        elif c.get("source") == "item":
            continue
        elif ftype in ("categorical", "meta"):
            specs.append(ColumnSpec(name, "int", vocab_size=c.get("vocab_size")))
        elif ftype == "sequence":
            specs.append(ColumnSpec(name, "int_list", vocab_size=c.get("vocab_size"), length=c.get("max_len")))
        elif ftype == "embedding":
            specs.append(ColumnSpec(name, "float_list", length=c.get("pretrain_dim")))
        else:
            raise ConfigError(f"feature_cols '{name}': type '{ftype}' is not supported by the MMCTR data path; "
                              f"expected one of ('categorical', 'sequence', 'embedding', 'meta')")
    if with_label:
        specs.append(ColumnSpec(params["label_col"]["name"], "label"))
    return specs


def item_columns(params: Mapping[str, Any]) -> List[ColumnSpec]:
    """Column specs of item_info: the ``source: item`` features."""
    specs: List[ColumnSpec] = []
    for c in expand_feature_cols(params["feature_cols"]):
        if c.get("source") != "item":
            continue
        if c["type"] == "categorical":
            specs.append(ColumnSpec(c["name"], "int", vocab_size=c.get("vocab_size")))
        elif c["type"] == "sequence":
            specs.append(ColumnSpec(c["name"], "int_list", vocab_size=c.get("vocab_size"), length=c.get("max_len")))
        elif c["type"] == "embedding":
            specs.append(ColumnSpec(c["name"], "float_list", length=c.get("pretrain_dim")))
        else:
            raise ConfigError(f"feature_cols '{c['name']}': item feature type '{c['type']}'; "
                              f"expected one of ('categorical', 'sequence', 'embedding')")
    return specs


def locate_data(params: Mapping[str, Any], *, progress: bool = True) -> DatasetFiles:
    """Paths of the dataset's files; generates (or verifies) a synthetic world when the dataset declares one.

    Missing files raise DataError naming each one; for the challenge dataset it also says where to place them.
    """
    data_dir = Path(params["data_root"]) / params["dataset_id"]
    manifest = None
    synth = params.get("synthetic")
    if synth:
        from model_zoo.datasets.synthetic import ensure_synthetic  # heavy imports only when needed
        synth = dict(synth)
        manifest = ensure_synthetic(data_dir, preset=synth.pop("preset", "tiny"), seed=synth.pop("seed", None),
                                    world=synth.pop("world", "microlens_synth"), progress=progress, **synth)
    files = DatasetFiles(data_dir=data_dir, train=Path(params["train_data"]), valid=Path(params["valid_data"]),
                         test=Path(params["test_data"]) if params.get("test_data") else None,
                         item_info=Path(params["item_info"]), synthetic_manifest=manifest)
    required = {"train_data": files.train, "valid_data": files.valid, "item_info": files.item_info}
    if files.test:
        required["test_data"] = files.test
    missing = {k: p for k, p in required.items() if not p.is_file()}
    if missing:
        listed = ", ".join(f"{k}: {p}" for k, p in missing.items())
        message = f"dataset '{params['dataset_id']}' is missing {len(missing)} file(s): {listed}"
        if params["dataset_id"] == CHALLENGE_DATASET_ID:
            message += (f". Place the MicroLens_1M_x1 challenge files (train.parquet, valid.parquet, test.parquet, "
                        f"item_info.parquet; optionally item_feature.parquet) in {data_dir}/ (see data/README.md), "
                        f"or run on a synthetic world, e.g. '--expid {params['model']}_MicroLens_synth'")
        else:
            message += ". Fix the paths in the dataset block (relative paths are relative to its YAML file)"
        raise DataError(message)
    return files


def check_splits(params: Mapping[str, Any], files: DatasetFiles) -> None:
    """Cheap checks a run makes before it writes anything: every file opens as parquet (a truncated file has no
    footer), and the labelled splits hold both classes (valid always; test when its labels are scored), since AUC,
    early stopping and the checkpoint choice need them. Raises DataError naming the file and column."""
    for path in (files.train, files.valid, files.test, files.item_info):
        if path is not None:
            open_parquet(path)
    label = params["label_col"]["name"]
    scored = [("valid", files.valid)]
    if files.test is not None and params.get("test_has_labels") is not False:
        scored.append(("test", files.test))
    for split, path in scored:
        values = read_split(path, [ColumnSpec(label, "label")], allow_extra=True)[label]
        classes = np.unique(values)
        if len(classes) < 2:
            raise DataError(f"the {split} split has {len(values)} rows, all with {label}={classes[0]:g}; AUC needs "
                            f"both classes (checked before training)", path=str(path), column=label)


def apply_embedding_variant(params: Dict[str, Any], files: DatasetFiles, cache_dir: Path, *,
                            progress: bool = True) -> Tuple[Dict[str, Any], DatasetFiles]:
    """Point the run at the item_info file of ``params["embedding_variant"]`` (V1, V2, ... built on demand).

    No ``embedding_variant`` (or ``null``) keeps the dataset's own ``item_info.parquet`` (the challenge's V3,
    PCA128 of text ‖ image). A variant may add item-side feature columns (e.g. semantic-id codes) and drop others
    (e.g. the dense vector for a codes-only variant); the returned params carry the adjusted ``feature_cols``.
    """
    variant = params.get("embedding_variant")
    if not variant:
        return params, files
    from model_zoo.embeddings.variants import ensure_variant  # heavy imports only when needed

    item_feature = Path(params["item_feature"]) if params.get("item_feature") else None
    if item_feature is None or not item_feature.is_file():
        raise DataError(f"embedding_variant={variant!r} needs the raw text/image vectors of item_feature.parquet; "
                        f"dataset '{params['dataset_id']}' has "
                        + (f"no file at item_feature: {item_feature}" if item_feature else "no 'item_feature' key"))
    info = ensure_variant(variant, cache_dir / "variants", item_info=files.item_info, item_feature=item_feature,
                          seed=int(params["seed"]), progress=progress)
    cols = [c for c in expand_feature_cols(params["feature_cols"]) if c["name"] not in info.drop_features]
    cols += [dict(c) for c in info.extra_feature_cols]
    params = dict(params, feature_cols=cols, item_info=str(info.item_info))
    if params.get("feature_specs"):  # overrides of dropped features would point at nothing
        params["feature_specs"] = [s for s in params["feature_specs"] if s.get("name") not in info.drop_features]
    return params, dataclasses.replace(files, item_info=Path(info.item_info))


def _feature_map_key(params: Mapping[str, Any]) -> str:
    payload = json.dumps({"feature_cols": params["feature_cols"], "label_col": params["label_col"]},
                         sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _feature_map_problem(map_dir: Path) -> Optional[str]:
    """None when ``map_dir/feature_map.json`` has the sha256 recorded next to it when it was built."""
    json_file, digest_file = map_dir / "feature_map.json", map_dir / _FEATURE_MAP_DIGEST
    if not json_file.is_file():
        return "feature_map.json missing"
    try:
        recorded = digest_file.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return f"{_FEATURE_MAP_DIGEST} missing (built by an older zoo)"
    return None if sha256_file(json_file) == recorded else "feature_map.json differs from its recorded sha256"


def build_feature_map(params: Mapping[str, Any], cache_dir: Path):
    """FuxiCTR ``FeatureMap`` of the dataset (``rebuild_dataset: False``: identity vocabs from each ``vocab_size``).

    Written by FuxiCTR's own ``FeatureProcessor.fit`` into a temp dir with the sha256 of its ``feature_map.json``,
    then renamed to ``cache_dir/feature_maps/<hash of feature_cols and label_col>/``, so a changed feature set gets
    its own map and parallel runs never see a half-written one. A cached map that no longer matches its sha256
    (truncated, edited, bit-flipped) is rebuilt with a warning: it is derived data. No Ray is started.
    """
    from fuxictr.features import FeatureMap
    from fuxictr.preprocess.feature_processor import FeatureProcessor

    dataset_id = params["dataset_id"]
    map_dir = cache_dir / "feature_maps" / _feature_map_key(params)  # one per feature set: variants never race
    json_file = map_dir / "feature_map.json"
    problem = _feature_map_problem(map_dir) if map_dir.exists() else "not built yet"
    if problem:
        if map_dir.exists():
            log.warning("feature map %s: %s; rebuilding it", map_dir, problem)
        map_dir.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temp(map_dir)  # a killed build's leftovers
        tmp_root = temp_dir_for(map_dir)
        try:
            processor = FeatureProcessor(feature_cols=expand_feature_cols(params["feature_cols"]),
                                         label_col=params["label_col"], dataset_id=dataset_id, data_root=str(tmp_root))
            processor.fit(train_ddf=None, rebuild_dataset=False)
            built = tmp_root / dataset_id
            (built / _FEATURE_MAP_DIGEST).write_text(sha256_file(built / "feature_map.json") + "\n", encoding="ascii")
            if map_dir.exists() and _feature_map_problem(map_dir):
                publish_dir(built, map_dir)  # replaces the damaged map in one rename
            else:
                try:
                    os.rename(built, map_dir)
                except OSError:  # another run finished the same map first
                    if _feature_map_problem(map_dir):
                        raise
        finally:
            shutil.rmtree(tmp_root, ignore_errors=True)
    feature_map = FeatureMap(dataset_id, str(map_dir))
    feature_map.load(str(json_file), dict(params))
    return feature_map


def load_item_table(params: Mapping[str, Any], files: DatasetFiles) -> ItemInfoTable:
    cols = expand_feature_cols(params["feature_cols"])
    item_vocab = _vocab_of(cols, TARGET_COLUMN)
    arrays = read_item_info(files.item_info, item_columns(params), num_items=item_vocab)
    return ItemInfoTable(arrays)


def make_loader(path: Path, params: Mapping[str, Any], item_table: ItemInfoTable, *, train: bool,
                with_label: bool = True) -> MMCTRDataLoader:
    """A loader over one split; ``max_len`` keeps the most recent history items, as the challenge loader did."""
    split = read_split(path, split_columns(params, with_label=with_label), seq_column=SEQ_COLUMN,
                       max_len=params.get("max_len"), allow_extra=not with_label)
    batch_size = params["batch_size"] if train else params.get("eval_batch_size") or params["batch_size"]
    return MMCTRDataLoader(split, item_table, batch_size=batch_size, shuffle=train and params["shuffle"],
                           seed=params["seed"], target_column=TARGET_COLUMN, seq_column=SEQ_COLUMN)


def train_item_mask(path: Path, num_items: int, *, positives_only: bool = False) -> np.ndarray:
    """(num_items,) bool: True for every item id that occurs in the train split, as a target or anywhere in a
    history (the whole stored history, whatever ``max_len``). The complement (id > 0) are the *cold* items.

    ``positives_only``: count only positive targets (and histories): the complement are *new* items, never
    interacted with in train. With sampled negatives almost every item is some train row's negative, so few rows
    are cold while new items remain (e.g. a dataset built from a positive-only log).
    """
    seen = np.zeros(num_items, dtype=bool)
    pf = pq.ParquetFile(path)
    columns = [TARGET_COLUMN, SEQ_COLUMN] + ([LABEL_COLUMN] if positives_only else [])
    for batch in pf.iter_batches(columns=columns, batch_size=65_536):
        targets = batch.column(0).to_numpy()
        if positives_only:
            targets = targets[batch.column(2).to_numpy().astype(np.float64) > 0.5]
        seen[targets] = True
        seen[pc.list_flatten(batch.column(1)).to_numpy()] = True
    seen[0] = False  # padding
    return seen


def load_item_feature_vectors(params: Mapping[str, Any], columns: Tuple[str, ...],
                              num_items: int) -> Dict[str, "np.ndarray"]:
    """Dense (num_items, dim) float32 tables by item id of item_feature.parquet ``columns`` (row 0 and items without
    a row stay zero)."""
    path = Path(params["item_feature"]) if params.get("item_feature") else None
    if path is None or not path.is_file():
        raise DataError(f"the model needs item_feature.parquet columns {list(columns)}; dataset "
                        f"'{params['dataset_id']}' has " + (f"no file at item_feature: {path}" if path else
                                                            "no 'item_feature' key") +
                        " (or set 'mm_source: item_info' for DMF)")
    arrays = read_optional_item_table(path, [ColumnSpec(c, "float_list") for c in columns], has_padding_row=False)
    ids = arrays[TARGET_COLUMN]
    if len(ids) and int(ids[-1]) >= num_items:
        raise DataError(f"item_id {int(ids[-1])} is outside the item_id vocab_size {num_items}", path=str(path),
                        column=TARGET_COLUMN, row=int(np.argmax(ids >= num_items)))
    out = {}
    for column in columns:
        table = np.zeros((num_items, arrays[column].shape[1]), dtype=np.float32)
        table[ids] = arrays[column]
        out[column] = table
    return out


def sample_train_rows(params: Mapping[str, Any], files: DatasetFiles, rows: int) -> Tuple[np.ndarray, np.ndarray]:
    """A seeded sample (``params["seed"]``) of ``rows`` train rows: history ids (n, L) and target ids (n,)."""
    split = read_split(files.train, [ColumnSpec(SEQ_COLUMN, "int_list"), ColumnSpec(TARGET_COLUMN, "int")],
                       max_len=params["max_len"], allow_extra=True)
    rng = np.random.default_rng(int(params["seed"]))
    total = len(split[TARGET_COLUMN])
    picked = np.sort(rng.choice(total, size=min(total, rows), replace=False))
    return split[SEQ_COLUMN][picked].astype(np.int64), split[TARGET_COLUMN][picked]


def oracle_metrics(files: DatasetFiles) -> Dict[str, float]:
    """Oracle AUC of the synthetic world (the true click probabilities scored against the labels)."""
    if not files.synthetic_manifest:
        return {}
    oracle = files.synthetic_manifest.get("oracle_auc", {})
    return {f"oracle_{split}_AUC": float(v) for split, v in oracle.items()}
