"""Writers of a synthetic world's files, shared by both worlds: split parquet files, item files, oracle and truth.

Columns, order and arrow types come from :mod:`model_zoo.schema`. The parquet writer options are fixed and no
timestamp goes into a data file, so the same arrays always give the same bytes (the manifest's sha256 values are
reproducible). The files are written into the world's temp directory (``fileio.temp_dir_for``), which the caller
publishes as a whole (``fileio.publish_dir``), so none of them is ever seen half-written.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from model_zoo.fileio import sha256_file
from model_zoo.schema import (DATA_FILES, IMG_EMB_DIM, ITEM_EMB_DIM, ITEM_EMB_SCHEMA, ITEM_FEATURE_SCHEMA,
                               ITEM_INFO_SCHEMA, ITEM_TAGS_LENGTH, SPLIT_SCHEMA, TXT_EMB_DIM)

from ._common import ROW_CHUNK, chunks

__all__ = ["TRUTH_FILES", "MANIFEST", "ORACLE_SCHEMA", "RowBlock", "list_array", "padded_seq", "write_rows",
           "write_table", "write_item_files", "write_oracle", "write_ground_truth", "file_entries"]

TRUTH_FILES = ("ground_truth.csv", "oracle_valid.parquet", "oracle_test.parquet")
MANIFEST = "manifest.json"

_I64 = pa.int64()
ORACLE_SCHEMA = pa.schema([("ID", _I64), ("p_click", pa.float64())])

# Fixed writer options: same data -> same bytes. Random float columns skip dictionary encoding (it never pays).
_WRITER_OPTS: Mapping[str, Any] = dict(version="2.6", data_page_version="1.0", compression="zstd",
                                       compression_level=1, write_statistics=True, store_schema=True)


@dataclass
class RowBlock:
    """One split's rows: users (0-based), histories (flat, oldest first, 1-based item ids), targets (1-based)."""

    users: np.ndarray            # (n,) user index; user_id = users + 1
    lengths: np.ndarray          # (n,) history length of each row
    offsets: np.ndarray          # (n + 1,) row r's history is hist[offsets[r]:offsets[r + 1]]
    hist: np.ndarray             # (sum(lengths),) item ids
    targets: np.ndarray          # (n,) target item ids


def list_array(values: np.ndarray, width: int, arrow_type: pa.DataType) -> pa.ListArray:
    """A list column of fixed ``width`` from a row-major (n × width) block, without Python loops."""
    values = np.ascontiguousarray(values).reshape(-1)
    n = values.shape[0] // width
    offsets = pa.array(np.arange(0, n * width + 1, width, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(values, type=arrow_type))


def padded_seq(rows: RowBlock, a: int, b: int, seq_len: int) -> np.ndarray:
    """(b-a) × seq_len int64 histories, left-padded with 0, most recent last."""
    lengths = rows.lengths[a:b]
    flat = np.zeros((b - a) * seq_len, dtype=np.int64)
    local = rows.offsets[a:b] - rows.offsets[a]
    within = np.arange(int(lengths.sum())) - np.repeat(local, lengths)
    dest = np.repeat(np.arange(b - a, dtype=np.int64) * seq_len + seq_len - lengths, lengths) + within
    flat[dest] = rows.hist[rows.offsets[a]: rows.offsets[b]]
    return flat


def _writer(path: Path, schema: pa.Schema, dictionary: bool | List[str]) -> pq.ParquetWriter:
    """ParquetWriter with the fixed, deterministic options."""
    return pq.ParquetWriter(str(path), schema, use_dictionary=dictionary, **_WRITER_OPTS)


def write_rows(path: Path, rows: RowBlock, labels: np.ndarray, *, seq_len: int, likes: np.ndarray,
               views: np.ndarray, bar: Any) -> None:
    """Write one split in ROW_CHUNK row groups; ``likes`` / ``views`` are per item id (row 0 = padding)."""
    with _writer(path, SPLIT_SCHEMA, True) as writer:
        for a, b in chunks(rows.targets.shape[0]):
            tgt = rows.targets[a:b].astype(np.int64)
            table = pa.Table.from_arrays([
                pa.array(rows.users[a:b].astype(np.int64) + 1),
                list_array(padded_seq(rows, a, b, seq_len), seq_len, _I64),
                pa.array(tgt), pa.array(likes[tgt]), pa.array(views[tgt]),
                pa.array(labels[a:b].astype(np.int64)),
            ], schema=SPLIT_SCHEMA)
            writer.write_table(table, row_group_size=ROW_CHUNK)
            bar.update(1)


def write_table(path: Path, table: pa.Table, dictionary: bool | List[str], group: int = 16_384) -> None:
    """Write a whole (item-side) table with the fixed options."""
    with _writer(path, table.schema, dictionary) as writer:
        writer.write_table(table, row_group_size=group)


def write_item_files(out: Path, *, tags: np.ndarray, likes: np.ndarray, views: np.ndarray, titles: Sequence[str],
                     text: np.ndarray, image: np.ndarray, emb: Mapping[str, np.ndarray], bar: Any) -> None:
    """item_info.parquet (with padding row 0), item_feature.parquet and item_emb.parquet.

    ``tags`` (I, 5), ``titles``, ``text``, ``image`` and ``emb[v]`` hold items 1..I; ``likes`` / ``views`` are
    indexed by item id (I + 1 entries, row 0 = padding).
    """
    n = tags.shape[0]
    ids = np.arange(1, n + 1, dtype=np.int64)
    int_cols = ["item_id", "item_tags.list.element", "likes_level", "views_level"]
    padded_tags = np.vstack([np.zeros((1, ITEM_TAGS_LENGTH), dtype=np.int64), tags])
    padded_emb = np.vstack([np.zeros((1, ITEM_EMB_DIM), dtype=np.float32), emb["v3"]])
    write_table(out / "item_info.parquet", pa.Table.from_arrays([
        pa.array(np.arange(n + 1, dtype=np.int64)), list_array(padded_tags, ITEM_TAGS_LENGTH, _I64),
        list_array(padded_emb, ITEM_EMB_DIM, pa.float32())], schema=ITEM_INFO_SCHEMA), int_cols)
    bar.update(1)
    write_table(out / "item_feature.parquet", pa.Table.from_arrays([
        pa.array(ids), pa.array(list(titles), type=pa.string()), list_array(tags, ITEM_TAGS_LENGTH, _I64),
        pa.array(likes[1:]), pa.array(views[1:]),
        list_array(text, TXT_EMB_DIM, pa.float32()), list_array(image, IMG_EMB_DIM, pa.float32())],
        schema=ITEM_FEATURE_SCHEMA), int_cols, group=8192)
    bar.update(1)
    write_table(out / "item_emb.parquet", pa.Table.from_arrays(
        [pa.array(ids)] + [list_array(emb[v], ITEM_EMB_DIM, pa.float32()) for v in ("v1", "v2", "v3", "e4")],
        schema=ITEM_EMB_SCHEMA), ["item_id"])
    bar.update(1)


def write_oracle(path: Path, p: np.ndarray) -> None:
    """ID (row order) and the true probability that the row's label is 1."""
    write_table(path, pa.Table.from_arrays([pa.array(np.arange(p.shape[0], dtype=np.int64)), pa.array(p)],
                                           schema=ORACLE_SCHEMA), False, group=1 << 20)


def write_ground_truth(path: Path, labels: np.ndarray) -> None:
    """ground_truth.csv with header ID,label in test row order."""
    body = np.char.add(np.char.add(np.arange(labels.shape[0]).astype(str), ","), labels.astype(np.int64).astype(str))
    with open(path, "w", encoding="ascii", newline="\n") as fh:
        fh.write("ID,label\n")
        if body.size:
            fh.write("\n".join(body.tolist()))
            fh.write("\n")


def file_entries(out: Path) -> Dict[str, Dict[str, Any]]:
    """{name: {"sha256", "bytes"}} of every data and truth file of a world (the manifest's ``files``)."""
    entries = {}
    for name in DATA_FILES + TRUTH_FILES:
        path = out / name
        entries[name] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    return entries


def manifest_head(cfg: Any, *, world: str, dataset_prefix: str, version: str, config_hash: str,
                  vocab: Dict[str, int]) -> Dict[str, Any]:
    """The fields every world's ``manifest.json`` starts with (identity, config and sizes)."""
    return {"dataset_id": f"{dataset_prefix}_{cfg.name}", "world": world, "generator_version": version,
            "config_hash": config_hash, "seed": cfg.seed, "config": cfg.to_dict(), "num_items": cfg.num_items,
            "num_users": cfg.num_users, "vocab_sizes": vocab}
