"""Ingestion checks on an item table (``item_feature.parquet`` or an in-memory equivalent) before any PCA or encoder.

Every problem belongs to one *class*; each class has a configurable *policy*, and every affected item is counted,
flagged and reported. Nothing is removed silently.

Classes, their flag bit and policies (the default first):

* ``id_invalid`` (no bit): item_id null, not an integer, < 1 or >= the item vocab. fail | drop.
* ``id_duplicate`` (1): an item_id on more than one row (every copy after the first). fail | drop | zero_fill.
* ``id_missing`` (2): an id 1..I of the vocab without a row. zero_fill | fail.
* ``title_non_text`` (4): null, not a string, or no letter at all ("12345", "!!!"). zero_fill | fail | drop | keep.
* ``title_empty`` (8): empty or whitespace-only. zero_fill | fail | drop | keep.
* ``title_mojibake`` (16): U+FFFD, control characters, UTF-8 read as Latin-1 ("Ã©", "â€™").
  zero_fill | fail | drop | keep.
* ``title_mistranslation`` (32): translation residue: leftover CJK characters, HTML entities, a literal "\\n".
  keep | fail | drop | zero_fill.
* ``title_broken_json`` (64): unbalanced {} / [] or JSON fragments ('{"', '":', '\\"'). zero_fill | fail | drop | keep.
* ``emb_dim_mismatch`` (128): vector null or of another length than expected. fail | drop | zero_fill.
* ``emb_nonfinite`` (256): NaN or +-Inf in a vector. zero_fill | fail | drop.
* ``emb_zero_norm`` (512): an all-zero vector. zero_fill | fail | drop.
* ``emb_constant`` (1024): every entry of a vector equal (and non-zero): a fill value. zero_fill | fail | drop.
* ``column_constant`` (no bit): all usable vectors of a column identical (PCA would be empty). fail.

Policies: ``fail`` raises :class:`~model_zoo.errors.DataError` naming the file, column, (0-based) row and value;
``drop`` removes the row (the item gets the ``dropped`` bit where a dense table is built from the result);
``zero_fill`` keeps the row with the offending cell neutralised (a vector set to zeros, a title set to ``""``;
a duplicate collapses to one zero row; a missing id gets a zero row) and sets the class bit in ``flags``;
``keep`` (titles only) leaves the value as is and sets the bit. Consumers treat an item with any ``emb_*`` or
``id_*`` bit as having no usable vectors (:meth:`IngestResult.usable`): PCA is fitted without it and it gets a zero
vector. The report (JSON, written atomically) holds per class the count, the policy, per-column counts and sample
ids and rows; dropped item ids are listed in full.
"""
from __future__ import annotations

import collections.abc
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from model_zoo.errors import ConfigError, DataError, did_you_mean
from model_zoo.fileio import atomic_write_json

__all__ = ["CLASSES", "DEFAULT_POLICIES", "POLICIES", "DROPPED_BIT", "VECTOR_BITS", "IngestResult", "ingest_arrays",
           "ingest_item_table", "resolve_policies", "title_problems"]

POLICIES = ("fail", "drop", "zero_fill", "keep")


@dataclass(frozen=True)
class _Class:
    bit: int
    allowed: Tuple[str, ...]   # the first one is the default
    expected: str              # what a good value looks like (used in fail messages)


_TITLE = ("fail", "drop", "zero_fill", "keep")
CLASSES: Dict[str, _Class] = {
    "id_invalid": _Class(0, ("fail", "drop"), "an integer item_id in 1..I"),
    "id_duplicate": _Class(1, ("fail", "drop", "zero_fill"), "each item_id on exactly one row"),
    "id_missing": _Class(2, ("zero_fill", "fail"), "a row for every item id 1..I of the vocab"),
    "title_non_text": _Class(4, ("zero_fill",) + _TITLE[:2] + _TITLE[3:], "a string with at least one letter"),
    "title_empty": _Class(8, ("zero_fill",) + _TITLE[:2] + _TITLE[3:], "a non-empty title"),
    "title_mojibake": _Class(16, ("zero_fill",) + _TITLE[:2] + _TITLE[3:], "text without encoding damage"),
    "title_mistranslation": _Class(32, ("keep",) + _TITLE[:3], "a fully translated title"),
    "title_broken_json": _Class(64, ("zero_fill",) + _TITLE[:2] + _TITLE[3:], "text without JSON fragments"),
    "emb_dim_mismatch": _Class(128, ("fail", "drop", "zero_fill"), "a vector of the expected length"),
    "emb_nonfinite": _Class(256, ("zero_fill", "fail", "drop"), "finite floats"),
    "emb_zero_norm": _Class(512, ("zero_fill", "fail", "drop"), "a non-zero vector"),
    "emb_constant": _Class(1024, ("zero_fill", "fail", "drop"), "a vector with varying entries"),
    "column_constant": _Class(0, ("fail",), "vectors that differ between items"),
}
DEFAULT_POLICIES: Dict[str, str] = {name: c.allowed[0] for name, c in CLASSES.items()}
DROPPED_BIT = 1 << 20                       # set by dense consumers on items whose row was dropped
VECTOR_BITS = 1 | 2 | 128 | 256 | 512 | 1024  # an item with one of these has no usable vectors

_TITLE_CLASSES = ("title_non_text", "title_empty", "title_mojibake", "title_mistranslation", "title_broken_json")
_EMB_CLASSES = ("emb_dim_mismatch", "emb_nonfinite", "emb_zero_norm", "emb_constant")

# UTF-8 read as Latin-1/cp1252 ("Ã©", "Â ", "â€™", "ðŸ"), BOM residue, U+FFFD, C0 controls except \t \n \r.
_MOJIBAKE = re.compile("\ufffd|[\u00c2\u00c3][\u0080-\u00bf\u00a0]|\u00e2\u20ac|\u00f0\u0178|\u00ef\u00bb\u00bf"
                       "|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Residue of machine translation from Chinese: untranslated Han characters, kana; escaped markup.
_MISTRANSLATION = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]|&(?:[a-z]{2,8}|#\d{2,6});"
                             r"|\\[ntr]|\\u[0-9a-fA-F]{4}")
_JSON_FRAGMENT = re.compile(r'\{\s*"|"\s*\}|"\s*:\s*["\[{\d]|\\"')


def resolve_policies(policies: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """The default policy of every class, overridden by ``policies``; unknown classes or policies raise ConfigError."""
    out = dict(DEFAULT_POLICIES)
    for name, policy in (policies or {}).items():
        if name not in CLASSES:
            raise ConfigError(f"ingest policy for unknown class '{name}'{did_you_mean(str(name), CLASSES)}; "
                              f"known classes: {', '.join(CLASSES)}")
        if policy not in CLASSES[name].allowed:
            raise ConfigError(f"ingest policy {name}={policy!r}; expected one of {CLASSES[name].allowed}")
        out[name] = policy
    return out


def title_problems(title: Any) -> List[str]:
    """Title classes that ``title`` falls into (empty list = clean). A non-string is only ``title_non_text``."""
    if not isinstance(title, str):
        return ["title_non_text"]
    if not title.strip():
        return ["title_empty"]
    found = []
    if not any(ch.isalpha() for ch in title):
        found.append("title_non_text")
    if _MOJIBAKE.search(title):
        found.append("title_mojibake")
    if _MISTRANSLATION.search(title):
        found.append("title_mistranslation")
    if title.count("{") != title.count("}") or title.count("[") != title.count("]") or _JSON_FRAGMENT.search(title):
        found.append("title_broken_json")
    return found


@dataclass
class IngestResult:
    """The checked table: one row per kept item, sorted by item_id.

    Attributes:
        item_ids: (n,) int64, ascending, unique.
        titles: (n,) object array of str, or None when no title column was checked.
        vectors: column -> (n, d) float32, zero rows where a vector was zero-filled.
        flags: (n,) int64 bitmask of the classes that hit each item (see the module table).
        report: counts, policies, samples; what the JSON report file holds.
    """

    item_ids: np.ndarray
    titles: Optional[np.ndarray]
    vectors: Dict[str, np.ndarray]
    flags: np.ndarray
    report: Dict[str, Any] = field(default_factory=dict)

    def usable(self) -> np.ndarray:
        """(n,) bool: items whose vectors may be fitted on (no ``emb_*`` / ``id_*`` bit)."""
        return (self.flags & VECTOR_BITS) == 0

    def dense(self, num_items: int) -> Tuple[Dict[str, np.ndarray], np.ndarray]:
        """Vectors and flags laid out like item_info (row i = item i, row 0 padding, ``num_items`` = I + 1 rows).

        Items without a row (dropped, or missing under a policy that added none) get zeros and ``DROPPED_BIT``.
        """
        if self.item_ids.size and int(self.item_ids.max()) >= num_items:
            raise DataError(f"item_id {int(self.item_ids.max())} does not fit a table of {num_items} rows "
                            f"(ids 0..{num_items - 1})", column="item_id")
        flags = np.full(num_items, DROPPED_BIT, dtype=np.int64)
        flags[0] = 0
        flags[self.item_ids] = self.flags
        out = {}
        for name, mat in self.vectors.items():
            dense = np.zeros((num_items, mat.shape[1]), dtype=np.float32)
            dense[self.item_ids] = mat
            out[name] = dense
        return out, flags


# ---------------------------------------------------------------------------------------------------------------------
# Conversions
# ---------------------------------------------------------------------------------------------------------------------
def _ids_from(values: Any) -> Tuple[np.ndarray, np.ndarray]:
    """(int64 ids, invalid mask): null, non-integral or non-numeric values are invalid (id set to -1)."""
    if isinstance(values, np.ndarray) and np.issubdtype(values.dtype, np.integer):
        return values.astype(np.int64), np.zeros(len(values), dtype=bool)
    out = np.full(len(values), -1, dtype=np.int64)
    bad = np.zeros(len(values), dtype=bool)
    for i, v in enumerate(values):
        if isinstance(v, (bool, np.bool_)) or v is None:
            bad[i] = True
        elif isinstance(v, (int, np.integer)):
            out[i] = int(v)
        elif isinstance(v, (float, np.floating)) and np.isfinite(v) and float(v).is_integer():
            out[i] = int(v)
        else:
            bad[i] = True
    return out, bad


def _matrix_from(values: Any, dim: Optional[int]) -> Tuple[np.ndarray, np.ndarray, int]:
    """(float32 (n, d) matrix, length-mismatch mask, d) from a 2-d array, a list of vectors or an arrow list column.

    ``dim=None`` takes the most common length. Rows of another length (or null) are zero in the matrix.
    """
    if isinstance(values, np.ndarray) and values.ndim == 2:
        d = values.shape[1] if dim is None else int(dim)
        if values.shape[1] != d:
            return (np.zeros((len(values), d), dtype=np.float32), np.ones(len(values), dtype=bool), d)
        return np.array(values, dtype=np.float32, copy=True), np.zeros(len(values), dtype=bool), d
    if isinstance(values, (pa.ChunkedArray, pa.Array)):
        return _matrix_from_arrow(values, dim)
    rows = list(values)
    lengths = np.array([len(r) if r is not None and hasattr(r, "__len__") else -1 for r in rows], dtype=np.int64)
    d = _mode_length(lengths) if dim is None else int(dim)
    bad = lengths != d
    mat = np.zeros((len(rows), d), dtype=np.float32)
    for i in np.flatnonzero(~bad):
        mat[i] = np.asarray(rows[i], dtype=np.float32)
    return mat, bad, d


def _mode_length(lengths: np.ndarray) -> int:
    valid = lengths[lengths > 0]
    if not valid.size:
        return 0
    vals, counts = np.unique(valid, return_counts=True)
    return int(vals[np.argmax(counts)])


def _matrix_from_arrow(col: pa.ChunkedArray | pa.Array, dim: Optional[int]) -> Tuple[np.ndarray, np.ndarray, int]:
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    lengths = pc.list_value_length(col).fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    d = _mode_length(lengths) if dim is None else int(dim)
    bad = lengths != d
    n = len(col)
    values = col.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)  # nulls contribute nothing
    if not bad.any():
        return np.array(values.reshape(n, d), dtype=np.float32, copy=True), bad, d  # writable, owns its memory
    mat = np.zeros((n, d), dtype=np.float32)
    starts = np.concatenate([[0], np.cumsum(np.maximum(lengths, 0))[:-1]])
    for i in np.flatnonzero(~bad):
        mat[i] = values[starts[i]:starts[i] + d]
    return mat, bad, d


# ---------------------------------------------------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------------------------------------------------
class _Tracker:
    """Per-class hit rows (original row numbers), per-column counts and the fail check."""

    def __init__(self, policies: Mapping[str, str], shown: Optional[str], max_samples: int) -> None:
        self.policies, self.shown, self.max_samples = policies, shown, max_samples
        self.rows: Dict[str, List[np.ndarray]] = {name: [] for name in CLASSES}
        self.columns: Dict[str, Dict[str, int]] = {name: {} for name in CLASSES}
        self.sample_ids: Dict[str, List[int]] = {name: [] for name in CLASSES}

    def hit(self, name: str, rows: np.ndarray, ids: np.ndarray, column: str, what: Any = None) -> None:
        """Record rows of class ``name`` in ``column``; raise at the first one if the policy is ``fail``."""
        rows = np.asarray(rows, dtype=np.int64)
        if not rows.size:
            return
        if self.policies[name] == "fail":
            r = int(rows[0])
            value = what(r) if callable(what) else what
            shown_value = f"value {value}; " if value is not None else ""
            first = f", item_id {int(ids[r])} first" if r < len(ids) and ids[r] >= 0 else ""
            others = tuple(p for p in CLASSES[name].allowed if p != "fail")
            raise DataError(f"{shown_value}expected {CLASSES[name].expected} (ingest class '{name}', policy 'fail'; "
                            f"{rows.size} row(s) affected{first}). "
                            f"Set ingest policy {name} to one of {others} to continue",
                            path=self.shown, column=column, row=r)
        self.rows[name].append(rows)
        self.columns[name][column] = self.columns[name].get(column, 0) + int(rows.size)
        room = self.max_samples - len(self.sample_ids[name])
        if room > 0:
            self.sample_ids[name] += [int(ids[r]) if ids[r] >= 0 else None for r in rows[:room]]

    def all_rows(self, name: str) -> np.ndarray:
        return np.unique(np.concatenate(self.rows[name])) if self.rows[name] else np.zeros(0, dtype=np.int64)


def ingest_arrays(item_ids: Any, vectors: Mapping[str, Any], titles: Optional[Sequence[Any]] = None, *,
                  num_items: Optional[int] = None, expected_dims: Optional[Mapping[str, Optional[int]]] = None,
                  policies: Optional[Mapping[str, str]] = None, source: Optional[str] = None,
                  report_path: Optional[Path] = None, max_samples: int = 10) -> IngestResult:
    """Check an item table given as arrays and apply the per-class policies (see the module docstring).

    Args:
        item_ids: (N,) ids (ints; null or non-integral entries are ``id_invalid``).
        vectors: column name -> (N, d) array, a list of N vectors (None allowed), or an arrow list column.
        titles: N titles, or None to skip the title classes.
        num_items: the item vocab I + 1 (ids 1..I expected; enables ``id_missing`` and the upper id bound).
        expected_dims: column -> required length (None or absent = the most common length).
        policies: class -> policy overrides of :data:`DEFAULT_POLICIES`.
        source: file name used in messages and the report.
        report_path: where to write the JSON report (atomically); None = do not write.
        max_samples: sample ids kept per class in the report.
    """
    pol = resolve_policies(policies)
    ids, invalid = _ids_from(item_ids)
    n_rows = len(ids)
    expected_dims = dict(expected_dims or {})
    tr = _Tracker(pol, source, max_samples)
    flags = np.zeros(n_rows, dtype=np.int64)
    drop = np.zeros(n_rows, dtype=bool)

    # ids
    if num_items is not None:
        invalid |= (ids < 1) | (ids >= num_items)
    else:
        invalid |= ids < 1
    raw_ids = list(item_ids) if not isinstance(item_ids, np.ndarray) else item_ids
    tr.hit("id_invalid", np.flatnonzero(invalid), ids, "item_id", lambda r: repr(raw_ids[r]))
    drop |= invalid
    order = np.argsort(np.where(invalid, np.iinfo(np.int64).max, ids), kind="stable")
    sorted_ids = ids[order]
    is_dup_sorted = np.zeros(n_rows, dtype=bool)
    is_dup_sorted[1:] = (sorted_ids[1:] == sorted_ids[:-1]) & ~invalid[order][1:]
    dup_rows = np.sort(order[is_dup_sorted])
    tr.hit("id_duplicate", dup_rows, ids, "item_id",
           lambda r: f"{int(ids[r])} (first seen on row {int(np.flatnonzero(ids == ids[r])[0])})")
    dup_of_first = np.zeros(n_rows, dtype=bool)   # first copies of duplicated ids (zero_fill collapses onto them)
    if dup_rows.size:
        drop[dup_rows] = True
        if pol["id_duplicate"] == "zero_fill":
            dup_ids = np.unique(ids[dup_rows])
            firsts = order[~is_dup_sorted][np.isin(sorted_ids[~is_dup_sorted], dup_ids)]
            dup_of_first[firsts] = True
            flags[firsts] |= CLASSES["id_duplicate"].bit

    # titles
    title_arr = None
    if titles is not None:
        title_arr = np.empty(n_rows, dtype=object)
        for r, t in enumerate(titles):
            title_arr[r] = t
        hits: Dict[str, List[int]] = {name: [] for name in _TITLE_CLASSES}
        for r, t in enumerate(title_arr):
            for name in title_problems(t):
                hits[name].append(r)
        for name in _TITLE_CLASSES:
            rows = np.asarray(hits[name], dtype=np.int64)
            tr.hit(name, rows, ids, "item_title", lambda r: repr(title_arr[r])[:80])
            _apply(pol[name], rows, flags, drop, CLASSES[name].bit)
            if pol[name] == "zero_fill":
                title_arr[rows] = ""
        title_arr = np.array([t if isinstance(t, str) else "" if t is None or t != t else str(t)  # None / NaN
                              for t in title_arr], dtype=object)

    # vectors
    mats: Dict[str, np.ndarray] = {}
    for column in vectors:
        mat, bad_len, d = _matrix_from(vectors[column], expected_dims.get(column))
        rows = np.flatnonzero(bad_len)
        tr.hit("emb_dim_mismatch", rows, ids, column, lambda r, d=d: f"of length != {d}")
        _apply(pol["emb_dim_mismatch"], rows, flags, drop, CLASSES["emb_dim_mismatch"].bit)
        finite = np.isfinite(mat).all(axis=1)
        rows = np.flatnonzero(~finite & ~bad_len)
        tr.hit("emb_nonfinite", rows, ids, column,
               lambda r: f"{mat[r][~np.isfinite(mat[r])][0]} at position {int(np.argmax(~np.isfinite(mat[r])))}")
        _apply(pol["emb_nonfinite"], rows, flags, drop, CLASSES["emb_nonfinite"].bit)
        mat[rows] = 0.0
        ok = finite & ~bad_len
        span = np.zeros(n_rows, dtype=np.float32)
        absmax = np.zeros(n_rows, dtype=np.float32)
        if d:
            span[ok] = mat[ok].max(axis=1) - mat[ok].min(axis=1)
            absmax[ok] = np.abs(mat[ok]).max(axis=1)
        rows = np.flatnonzero(ok & (absmax == 0))
        tr.hit("emb_zero_norm", rows, ids, column, "all zeros")
        _apply(pol["emb_zero_norm"], rows, flags, drop, CLASSES["emb_zero_norm"].bit)
        rows = np.flatnonzero(ok & (absmax > 0) & (span == 0)) if d > 1 else np.zeros(0, dtype=np.int64)
        tr.hit("emb_constant", rows, ids, column, lambda r: f"{mat[r][0]} in every position")
        _apply(pol["emb_constant"], rows, flags, drop, CLASSES["emb_constant"].bit)
        mat[rows] = 0.0
        mat[bad_len] = 0.0
        mats[column] = mat

    # keep the surviving rows, collapse zero-filled duplicates, add missing ids
    keep = ~drop
    out_ids = ids[keep]
    out_flags = flags[keep]
    out_titles = title_arr[keep] if title_arr is not None else None
    out_mats = {c: m if keep.all() else m[keep] for c, m in mats.items()}   # no copy in the common clean case
    if pol["id_duplicate"] == "zero_fill":
        collapsed = dup_of_first[keep]
        for m in out_mats.values():
            m[collapsed] = 0.0
    missing = np.zeros(0, dtype=np.int64)
    if num_items is not None:
        present = np.zeros(num_items, dtype=bool)
        present[ids[~invalid]] = True     # a dropped row is not "missing": it is reported as dropped
        missing = np.flatnonzero(~present[1:]) + 1
    if missing.size:
        if pol["id_missing"] == "fail":
            raise DataError(f"{missing.size} item id(s) of 1..{num_items - 1} have no row, e.g. item_id "
                            f"{int(missing[0])}; expected {CLASSES['id_missing'].expected} (ingest class "
                            f"'id_missing', policy 'fail'; set it to zero_fill to continue)",
                            path=source, column="item_id")
        tr.rows["id_missing"].append(missing)
        tr.columns["id_missing"]["item_id"] = int(missing.size)
        tr.sample_ids["id_missing"] = [int(i) for i in missing[:max_samples]]
        out_ids = np.concatenate([out_ids, missing])
        out_flags = np.concatenate([out_flags, np.full(missing.size, CLASSES["id_missing"].bit, dtype=np.int64)])
        if out_titles is not None:
            out_titles = np.concatenate([out_titles, np.array([""] * missing.size, dtype=object)])
        out_mats = {c: np.concatenate([m, np.zeros((missing.size, m.shape[1]), dtype=np.float32)])
                    for c, m in out_mats.items()}
    srt = np.argsort(out_ids, kind="stable")
    if np.array_equal(srt, np.arange(len(srt))):   # already sorted (the challenge layout): keep the matrices
        result = IngestResult(out_ids, out_titles, out_mats, out_flags)
    else:
        result = IngestResult(out_ids[srt], out_titles[srt] if out_titles is not None else None,
                              {c: m[srt] for c, m in out_mats.items()}, out_flags[srt])
    del mats, out_mats

    # a column whose usable vectors are all identical carries no information
    usable = result.usable()
    for column, m in result.vectors.items():
        if usable.sum() > 1 and m.shape[1] and not (m[usable] != m[usable][0]).any():
            raise DataError(f"all {int(usable.sum())} usable vectors are identical; expected "
                            f"{CLASSES['column_constant'].expected} (ingest class 'column_constant', policy 'fail')",
                            path=source, column=column)

    dropped_rows = np.flatnonzero(drop)
    report = {
        "source": source, "rows_in": int(n_rows), "rows_out": int(len(result.item_ids)),
        "num_items": num_items, "policies": pol,
        "vector_dims": {c: int(m.shape[1]) for c, m in result.vectors.items()},
        "classes": {},
        "dropped": {"count": int(dropped_rows.size), "rows": dropped_rows.tolist(),
                    "item_ids": [int(ids[r]) if not invalid[r] else None for r in dropped_rows]},
        "flagged_items": int((result.flags != 0).sum()),
        "usable_items": int(usable.sum()),
        "flag_bits": {name: c.bit for name, c in CLASSES.items() if c.bit} | {"dropped": DROPPED_BIT},
    }
    for name, c in CLASSES.items():
        rows = tr.all_rows(name)
        report["classes"][name] = {"count": int(rows.size), "policy": pol[name], "bit": c.bit,
                                   "columns": tr.columns[name], "sample_ids": tr.sample_ids[name],
                                   "sample_rows": rows[:max_samples].tolist() if name != "id_missing" else []}
    result.report = report
    if report_path is not None:
        atomic_write_json(report_path, report)
    return result


def _apply(policy: str, rows: np.ndarray, flags: np.ndarray, drop: np.ndarray, bit: int) -> None:
    if not rows.size:
        return
    flags[rows] |= bit
    if policy == "drop":
        drop[rows] = True


def ingest_item_table(path: str | Path, *, vector_columns: Sequence[str] = ("txt_emb_BERT", "img_emb_CLIPRN50"),
                      title_column: Optional[str] = "item_title", num_items: Optional[int] = None,
                      expected_dims: Optional[Mapping[str, Optional[int]]] = None,
                      policies: Optional[Mapping[str, str]] = None, report_path: Optional[Path] = None,
                      max_samples: int = 10) -> IngestResult:
    """Read ``path`` (e.g. item_feature.parquet: ids 1..I, no padding row) and run :func:`ingest_arrays` on it.

    The file is read with pyarrow directly, so duplicates, gaps and ragged vectors reach the checks instead of
    stopping the strict schema reader. A missing file or column raises DataError naming it.
    """
    path = Path(path)
    shown = str(path)
    if not path.is_file():
        raise DataError("file not found: expected an item table (e.g. item_feature.parquet with item_id, "
                        f"{', '.join(vector_columns)})", path=shown)
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"not a readable parquet file ({type(exc).__name__}: {exc})", path=shown) from None
    names = pf.schema_arrow.names
    wanted = ["item_id"] + ([title_column] if title_column else []) + list(vector_columns)
    for col in wanted:
        if col not in names:
            raise DataError(f"missing column '{col}'{did_you_mean(col, names)}; the file has columns {names}",
                            path=shown, column=col)
    id_col = pf.read(columns=["item_id"]).column("item_id")
    if pa.types.is_integer(id_col.type) and id_col.null_count == 0:
        item_ids: Any = id_col.to_numpy().astype(np.int64)
    else:
        item_ids = id_col.to_pylist()
    titles = pf.read(columns=[title_column]).column(title_column).to_pylist() if title_column else None
    # one column at a time, so only one arrow copy of a modality is alive next to the numpy matrices
    vectors = _LazyColumns(pf, vector_columns)
    return ingest_arrays(item_ids, vectors, titles, num_items=num_items, expected_dims=expected_dims,
                         policies=policies, source=shown, report_path=report_path, max_samples=max_samples)


class _LazyColumns(collections.abc.Mapping):
    """column -> arrow column, read from the parquet file when accessed and never kept."""

    def __init__(self, pf: pq.ParquetFile, columns: Sequence[str]) -> None:
        self.pf, self.columns = pf, list(columns)

    def __getitem__(self, name: str) -> pa.ChunkedArray:
        if name not in self.columns:
            raise KeyError(name)
        return self.pf.read(columns=[name]).column(name)

    def __iter__(self):
        return iter(self.columns)

    def __len__(self) -> int:
        return len(self.columns)
