"""The results CSV: one row per run, appended atomically under a file lock (parallel sweeps share the file)."""
from __future__ import annotations

import csv
import fcntl
import io
import os
from pathlib import Path
from typing import Any, Dict, List, Mapping

from model_zoo.fileio import atomic_write_text

__all__ = ["RESULT_FIELDS", "append_result", "read_results"]

RESULT_FIELDS = (
    "timestamp", "expid", "model", "dataset_id", "embedding_variant", "seed", "valid_AUC", "valid_logloss", "test_AUC", "test_logloss",
    "oracle_valid_AUC", "oracle_test_AUC", "num_params", "train_seconds", "checkpoint", "params_file", "command",
)


def append_result(path: str | os.PathLike, row: Mapping[str, Any]) -> Path:
    """Append ``row`` (keys from RESULT_FIELDS; missing ones left empty) to the CSV at ``path``.

    The file is rewritten through a temp file and renamed, so a reader never sees a half-written row.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    unknown = set(row) - set(RESULT_FIELDS)
    if unknown:
        raise ValueError(f"result row has unknown fields {sorted(unknown)}; expected a subset of {RESULT_FIELDS}")
    with open(path.with_suffix(path.suffix + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        rows = read_results(path)  # rows of an older layout are carried over under the current header
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=RESULT_FIELDS, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        for old in rows + [dict(row)]:
            writer.writerow({k: old.get(k, "") for k in RESULT_FIELDS})
        atomic_write_text(path, buf.getvalue())
    return path


def read_results(path: str | os.PathLike) -> List[Dict[str, str]]:
    """All rows of the results CSV (empty list when it does not exist)."""
    path = Path(path)
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))
