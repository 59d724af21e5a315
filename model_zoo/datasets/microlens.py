"""Read and validate MicroLens_1M_x1 (WWW 2025 MMCTR challenge) parquet files into numpy arrays.

The schema follows ``shared/reference/microlens_mmctr.md`` sections 3 to 5 and 9:

* ``train|valid|test.parquet``: ``user_id`` int64, ``item_seq`` list<int64> of one fixed length per file
  (left-padded with 0, most recent item last), ``item_id`` int64, ``likes_level`` int64, ``views_level`` int64, ``label`` 0/1.
* ``item_info.parquet``: I+1 dense rows sorted by ``item_id`` (row i holds item i), row 0 all zeros (padding);
  ``item_tags`` list<int64> of length 5 and ``item_emb_d128`` list<float32> of length 128, plus optional item-side columns.
* ``item_feature.parquet`` / ``item_emb.parquet``: I rows, ids 1..I contiguous, no padding row.

Files are streamed record batch by record batch into preallocated arrays, so the peak memory is the final arrays plus
one decoded batch. Every problem is reported as a :class:`~model_zoo.errors.DataError` naming the file, the column, the
first offending (0-based) row, the value found and what was expected.
"""
from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from model_zoo.errors import ConfigError, DataError, did_you_mean
from model_zoo.schema import (IMG_EMB_DIM, ITEM_EMB_COLUMNS, ITEM_EMB_DIM, ITEM_FEATURE_COLUMNS, ITEM_INFO_COLUMNS,
                               ITEM_TAGS_LENGTH, MICROLENS_VOCAB, SEQ_LENGTH, SPLIT_COLUMNS, TXT_EMB_DIM)

__all__ = [
    "ColumnSpec", "read_split", "read_item_info", "read_optional_item_table", "open_parquet",
    "split_specs", "item_info_specs", "item_feature_specs", "item_emb_specs",
    "SPLIT_COLUMNS", "ITEM_INFO_COLUMNS", "ITEM_FEATURE_COLUMNS", "ITEM_EMB_COLUMNS", "MICROLENS_VOCAB",
    "SEQ_LENGTH", "ITEM_TAGS_LENGTH", "ITEM_EMB_DIM", "TXT_EMB_DIM", "IMG_EMB_DIM", "COLUMN_KINDS",
]

# "str" is an extra kind beyond the four of the challenge columns, for item_feature's item_title.
COLUMN_KINDS = ("int", "int_list", "float_list", "label", "str")
_INT32_MAX = int(np.iinfo(np.int32).max)
_BATCH_ROWS = 65_536      # rows decoded at a time (100-long int64 lists: about 52 MB per batch)


@dataclass(frozen=True)
class ColumnSpec:
    """What one column must hold.

    Attributes:
        name: column name in the parquet file.
        kind: ``"int"`` (scalar integer id), ``"int_list"`` (fixed-length list of integer ids), ``"float_list"``
            (fixed-length float vector), ``"label"`` (0/1 stored as int, float or bool) or ``"str"`` (text, read as-is).
        vocab_size: ids must lie in ``[min_value, vocab_size - 1]``; ``None`` checks only the lower bound.
        length: required list length for list kinds; ``None`` accepts any length that is the same in every row.
        min_value: smallest allowed id (e.g. 1 for a target ``item_id``, where 0 is padding).
    """

    name: str
    kind: str
    vocab_size: int | None = None
    length: int | None = None
    min_value: int = 0

    def __post_init__(self) -> None:
        if self.kind not in COLUMN_KINDS:
            raise ConfigError(f"column '{self.name}': unknown kind '{self.kind}', expected one of {', '.join(COLUMN_KINDS)}"
                              f"{did_you_mean(self.kind, COLUMN_KINDS)}")
        if self.vocab_size is not None and self.vocab_size <= self.min_value:
            raise ConfigError(f"column '{self.name}': vocab_size {self.vocab_size} leaves no valid id "
                              f"(min_value is {self.min_value})")
        if self.length is not None and self.length < 1:
            raise ConfigError(f"column '{self.name}': length must be >= 1, got {self.length}")


# ---------------------------------------------------------------------------------------------------------------------
# Default specs of the challenge files
# ---------------------------------------------------------------------------------------------------------------------
def split_specs(vocab: Mapping[str, int] = MICROLENS_VOCAB, *, label: bool = True,
                seq_length: int | None = None) -> tuple[ColumnSpec, ...]:
    """Specs of the six split columns; ``label=False`` leaves the label out (e.g. a test file without usable labels)."""
    specs = [
        ColumnSpec("user_id", "int"),
        ColumnSpec("item_seq", "int_list", vocab_size=vocab["item_id"], length=seq_length),
        ColumnSpec("item_id", "int", vocab_size=vocab["item_id"], min_value=1),
        ColumnSpec("likes_level", "int", vocab_size=vocab["likes_level"]),
        ColumnSpec("views_level", "int", vocab_size=vocab["views_level"]),
    ]
    if label:
        specs.append(ColumnSpec("label", "label"))
    return tuple(specs)


def item_info_specs(vocab: Mapping[str, int] = MICROLENS_VOCAB) -> tuple[ColumnSpec, ...]:
    """Specs of the three item_info.parquet columns of the challenge."""
    return (ColumnSpec("item_id", "int", vocab_size=vocab["item_id"]),
            ColumnSpec("item_tags", "int_list", vocab_size=vocab["item_tags"], length=ITEM_TAGS_LENGTH),
            ColumnSpec("item_emb_d128", "float_list", length=ITEM_EMB_DIM))


def item_feature_specs(vocab: Mapping[str, int] = MICROLENS_VOCAB, *, title: bool = True) -> tuple[ColumnSpec, ...]:
    """Specs of item_feature.parquet (its item_tags length is not documented, so any fixed length is accepted)."""
    specs = [ColumnSpec("item_id", "int", vocab_size=vocab["item_id"], min_value=1)]
    if title:
        specs.append(ColumnSpec("item_title", "str"))
    specs += [ColumnSpec("item_tags", "int_list", vocab_size=vocab["item_tags"]),
              ColumnSpec("likes_level", "int", vocab_size=vocab["likes_level"]),
              ColumnSpec("views_level", "int", vocab_size=vocab["views_level"]),
              ColumnSpec("txt_emb_BERT", "float_list", length=TXT_EMB_DIM),
              ColumnSpec("img_emb_CLIPRN50", "float_list", length=IMG_EMB_DIM)]
    return tuple(specs)


def item_emb_specs(vocab: Mapping[str, int] = MICROLENS_VOCAB) -> tuple[ColumnSpec, ...]:
    """Specs of item_emb.parquet: item_id and the four 128-d embedding variants."""
    return (ColumnSpec("item_id", "int", vocab_size=vocab["item_id"], min_value=1),
            *(ColumnSpec(name, "float_list", length=ITEM_EMB_DIM) for name in ITEM_EMB_COLUMNS[1:]))


# ---------------------------------------------------------------------------------------------------------------------
# File and schema checks
# ---------------------------------------------------------------------------------------------------------------------
def _open_parquet(path: str | Path) -> tuple[pq.ParquetFile, str]:
    """Open ``path`` as a parquet file, or raise a DataError saying what is wrong with it."""
    shown = str(path)
    p = Path(path)
    if not p.exists():
        parent = p.parent if str(p.parent) else Path(".")
        if not parent.is_dir():
            raise DataError(f"file not found: expected a parquet file '{p.name}' here, "
                            f"but the directory '{parent}' does not exist", path=shown)
        hint = did_you_mean(p.name, sorted(x.name for x in parent.iterdir() if x.is_file()))
        raise DataError(f"file not found: expected a parquet file at this path{hint}", path=shown)
    if p.is_dir():
        raise DataError("is a directory, expected a parquet file", path=shown)
    try:
        pf = pq.ParquetFile(p)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"not a readable parquet file ({type(exc).__name__}: {exc})", path=shown) from None
    return pf, shown


def _type_ok(kind: str, t: pa.DataType) -> bool:
    """Whether an arrow type can be read as a column of ``kind``."""
    if kind == "int":
        return pa.types.is_integer(t)
    if kind == "label":
        return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)
    if kind == "str":
        return pa.types.is_string(t) or pa.types.is_large_string(t)
    is_list = pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)
    if not is_list:
        return False
    return pa.types.is_integer(t.value_type) if kind == "int_list" else pa.types.is_floating(t.value_type)


_EXPECTED_TYPE = {"int": "an integer type (int64)", "label": "int64, float or bool holding 0/1",
                  "str": "string", "int_list": "a list of integers (list<int64>)",
                  "float_list": "a list of floats (list<float32>)"}


def _check_schema(pf: pq.ParquetFile, shown: str, specs: Sequence[ColumnSpec], allow_extra: bool) -> None:
    """Check the requested columns exist with usable types, and (unless allowed) that no other column is present."""
    schema = pf.schema_arrow
    names = list(schema.names)
    missing = [s.name for s in specs if s.name not in names]
    if missing:
        details = "; ".join(f"'{m}'{did_you_mean(m, names)}" for m in missing)
        raise DataError(f"missing column(s) {details}; the file has columns {names}",
                        path=shown, column=missing[0])
    if not allow_extra:
        wanted = {s.name for s in specs}
        pandas_meta = schema.pandas_metadata or {}
        index_cols = {c for c in pandas_meta.get("index_columns", []) if isinstance(c, str)}
        extra = [n for n in names if n not in wanted and n not in index_cols]
        if extra:
            raise DataError(f"unexpected column(s) {extra}; expected exactly {[s.name for s in specs]} "
                            f"(pass allow_extra=True to ignore other columns)", path=shown, column=extra[0])
    for spec in specs:
        t = schema.field(spec.name).type
        if not _type_ok(spec.kind, t):
            raise DataError(f"stored as arrow type '{t}', expected {_EXPECTED_TYPE[spec.kind]}",
                            path=shown, column=spec.name)


def _validate_specs(specs: Sequence[ColumnSpec]) -> None:
    """Reject an empty or duplicated column request (a programming error, not a data error)."""
    if not specs:
        raise ConfigError("no columns requested")
    seen: set[str] = set()
    for s in specs:
        if not isinstance(s, ColumnSpec):
            raise ConfigError(f"expected ColumnSpec objects, got {type(s).__name__}")
        if s.name in seen:
            raise ConfigError(f"column '{s.name}' requested twice")
        seen.add(s.name)


# ---------------------------------------------------------------------------------------------------------------------
# Per-column streaming readers: each consumes record-batch arrays and fills one preallocated output array
# ---------------------------------------------------------------------------------------------------------------------
def _first_null_row(arr: pa.Array) -> int:
    """Index of the first null entry of ``arr`` (which has at least one)."""
    return int(np.argmin(arr.is_valid().to_numpy(zero_copy_only=False)))


def _fmt(value: Any) -> str:
    """Show one offending value."""
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return repr(value)


class _ColumnReader(ABC):
    """Base class: holds the spec, file name and total row count."""

    def __init__(self, spec: ColumnSpec, shown: str, num_rows: int) -> None:
        self.spec, self.shown, self.num_rows = spec, shown, num_rows
        self.out: np.ndarray | None = None

    def error(self, message: str, row: int | None) -> DataError:
        return DataError(message, path=self.shown, column=self.spec.name, row=row)

    def check_nulls(self, arr: pa.Array, row0: int) -> None:
        if arr.null_count:
            raise self.error(f"null value, expected {_EXPECTED_TYPE[self.spec.kind]} in every row",
                             row0 + _first_null_row(arr))

    def range_bounds(self) -> tuple[int, int | None]:
        spec = self.spec
        return spec.min_value, (spec.vocab_size - 1 if spec.vocab_size is not None else None)

    def range_message(self, value: Any, extra: str = "") -> str:
        lo, hi = self.range_bounds()
        want = f"an id in [{lo}, {hi}] (vocab_size {self.spec.vocab_size})" if hi is not None else f"an id >= {lo}"
        return f"value {_fmt(value)}{extra} out of range, expected {want}"

    @abstractmethod
    def consume(self, arr: pa.Array, row0: int) -> None:
        """Check one batch's array (its first row is file row ``row0``) and copy it into ``self.out``."""

    def result(self) -> np.ndarray:
        assert self.out is not None
        return self.out


class _IntReader(_ColumnReader):
    """Scalar integer ids -> int64 (N,)."""

    def consume(self, arr: pa.Array, row0: int) -> None:
        if self.out is None:
            self.out = np.empty(self.num_rows, dtype=np.int64)
        self.check_nulls(arr, row0)
        vals = arr.to_numpy(zero_copy_only=False)
        lo, hi = self.range_bounds()
        # compare in the stored dtype (uint64 too), then cast: out-of-range values never reach the cast
        bad = vals < lo if hi is None else (vals < lo) | (vals > hi)
        if bad.any():
            i = int(np.argmax(bad))
            raise self.error(self.range_message(vals[i]), row0 + i)
        if hi is None and vals.dtype == np.uint64 and vals.size and int(vals.max()) > np.iinfo(np.int64).max:
            i = int(np.argmax(vals > np.iinfo(np.int64).max))
            raise self.error(f"value {_fmt(vals[i])} does not fit int64", row0 + i)
        self.out[row0:row0 + len(vals)] = vals


class _LabelReader(_ColumnReader):
    """0/1 labels (int, float or bool) -> float32 (N,)."""

    def consume(self, arr: pa.Array, row0: int) -> None:
        if self.out is None:
            self.out = np.empty(self.num_rows, dtype=np.float32)
        self.check_nulls(arr, row0)
        vals = arr.to_numpy(zero_copy_only=False)
        if vals.dtype != np.bool_:
            bad = (vals != 0) & (vals != 1)      # NaN compares unequal to both, so it is caught too
            if bad.any():
                i = int(np.argmax(bad))
                raise self.error(f"label value {_fmt(vals[i])}, expected 0 or 1", row0 + i)
        self.out[row0:row0 + len(vals)] = vals


class _StrReader(_ColumnReader):
    """Text -> object array of str (N,)."""

    def consume(self, arr: pa.Array, row0: int) -> None:
        if self.out is None:
            self.out = np.empty(self.num_rows, dtype=object)
        self.check_nulls(arr, row0)
        self.out[row0:row0 + len(arr)] = arr.to_numpy(zero_copy_only=False)


class _ListReader(_ColumnReader):
    """Fixed-length lists -> C-contiguous 2-D array (N, L).

    ``int_list`` gives int64, ``float_list`` float32. As the sequence column, ``keep_last`` keeps only the last
    positions of every row, the output is int32, and rows must be left-padded with 0.
    """

    def __init__(self, spec: ColumnSpec, shown: str, num_rows: int, *, is_seq: bool = False,
                 keep_last: int | None = None) -> None:
        super().__init__(spec, shown, num_rows)
        self.is_seq, self.keep_last = is_seq, keep_last
        self.length: int | None = spec.length
        self.length_source = "the spec" if spec.length is not None else "the length of row 0"

    def _allocate(self, first_len: int) -> None:
        if self.length is None:
            if first_len == 0:
                raise self.error("empty list, expected a non-empty list", 0)
            self.length = first_len
        width = self.length if self.keep_last is None else min(self.length, self.keep_last)
        if self.spec.kind == "float_list":
            dtype = np.float32
        else:
            dtype = np.int32 if self.is_seq else np.int64
        self.out = np.empty((self.num_rows, width), dtype=dtype)

    def consume(self, arr: pa.Array, row0: int) -> None:
        n = len(arr)
        self.check_nulls(arr, row0)
        if pa.types.is_fixed_size_list(arr.type):
            lengths = None
            first_len = arr.type.list_size
        else:
            offsets = arr.offsets.to_numpy()
            lengths = np.diff(offsets)
            first_len = int(lengths[0]) if n else 0
        if self.out is None:
            self._allocate(first_len)
        L = self.length
        assert L is not None and self.out is not None
        if lengths is None:
            if first_len != L:
                raise self.error(f"list has length {first_len}, expected {L} ({self.length_source})", row0)
        else:
            ragged = lengths != L
            if ragged.any():
                i = int(np.argmax(ragged))
                raise self.error(f"list has length {int(lengths[i])}, expected {L} ({self.length_source}; "
                                 f"lists must have the same length in every row)", row0 + i)
        values = arr.flatten()
        if values.null_count:
            j = _first_null_row(values)
            raise self.error(f"null element at position {j % L} of the list, expected no nulls", row0 + j // L)
        block = values.to_numpy(zero_copy_only=False).reshape(n, L)
        if self.spec.kind == "float_list":
            self._store_floats(block, row0)
        else:
            self._store_ints(block, row0)

    def _store_floats(self, block: np.ndarray, row0: int) -> None:
        dest = self.out[row0:row0 + block.shape[0]]
        with np.errstate(over="ignore"):
            dest[...] = block                              # cast to float32 first: an overflow shows up as inf below
        finite = np.isfinite(dest)
        if not finite.all():
            j = int(np.argmin(finite.ravel()))
            r, pos = divmod(j, dest.shape[1])
            raise self.error(f"value {_fmt(dest[r, pos])} at position {pos}, expected finite floats (no NaN/Inf)",
                             row0 + r)

    def _store_ints(self, block: np.ndarray, row0: int) -> None:
        lo, hi = self.range_bounds()
        if self.is_seq and (hi is None or hi > _INT32_MAX):
            hi = _INT32_MAX if hi is None else min(hi, _INT32_MAX)
        if block.size:
            vmin, vmax = block.min(), block.max()
            if vmin < lo or (hi is not None and vmax > hi):
                bad = block < lo if hi is None else (block < lo) | (block > hi)
                j = int(np.argmax(bad.ravel()))
                r, pos = divmod(j, block.shape[1])
                raise self.error(self.range_message(block[r, pos], f" at position {pos}"), row0 + r)
        if self.is_seq and block.shape[1] > 1:
            # left padding: once a non-zero item appears, no 0 may follow it
            nz = block != 0
            bad_rows = (nz[:, :-1] & ~nz[:, 1:]).any(axis=1)
            if bad_rows.any():
                r = int(np.argmax(bad_rows))
                pos = int(np.argmax(nz[r, :-1] & ~nz[r, 1:])) + 1
                raise self.error(f"padding 0 at position {pos} after a non-zero item, expected the sequence to be "
                                 f"left-padded with 0 (most recent item last)", row0 + r)
        width = self.out.shape[1]
        self.out[row0:row0 + block.shape[0]] = block[:, block.shape[1] - width:]


def _make_reader(spec: ColumnSpec, shown: str, num_rows: int, seq_column: str | None,
                 max_len: int | None) -> _ColumnReader:
    if spec.kind == "int":
        return _IntReader(spec, shown, num_rows)
    if spec.kind == "label":
        return _LabelReader(spec, shown, num_rows)
    if spec.kind == "str":
        return _StrReader(spec, shown, num_rows)
    is_seq = spec.name == seq_column
    return _ListReader(spec, shown, num_rows, is_seq=is_seq, keep_last=max_len if is_seq else None)


def _read_columns(path: str | Path, specs: Sequence[ColumnSpec], *, allow_extra: bool,
                  seq_column: str | None = None, max_len: int | None = None) -> tuple[dict[str, np.ndarray], str]:
    """Open, check the schema, stream the requested columns through their readers; return arrays and the shown path."""
    _validate_specs(specs)
    pf, shown = _open_parquet(path)
    _check_schema(pf, shown, specs, allow_extra)
    num_rows = pf.metadata.num_rows
    if num_rows == 0:
        raise DataError("file has no rows, expected at least one", path=shown)
    readers = [_make_reader(s, shown, num_rows, seq_column, max_len) for s in specs]
    names = [s.name for s in specs]
    row0 = 0
    try:
        for batch in pf.iter_batches(batch_size=_BATCH_ROWS, columns=names, use_threads=True):
            if batch.num_rows == 0:
                continue
            for reader, name in zip(readers, names):
                reader.consume(batch.column(name), row0)
            row0 += batch.num_rows
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"could not decode parquet data near row {row0} "
                        f"({type(exc).__name__}: {exc})", path=shown) from None
    if row0 != num_rows:
        raise DataError(f"decoded {row0} rows but the parquet footer declares {num_rows}", path=shown)
    return {name: reader.result() for name, reader in zip(names, readers)}, shown


open_parquet = _open_parquet  # public name: the runner opens every split before it writes anything


# ---------------------------------------------------------------------------------------------------------------------
# Public readers
# ---------------------------------------------------------------------------------------------------------------------
def read_split(path: str | Path, columns: Sequence[ColumnSpec], *, seq_column: str = "item_seq",
               max_len: int | None = None, allow_extra: bool = False) -> dict[str, np.ndarray]:
    """Read one train/valid/test split.

    Args:
        path: the split's parquet file.
        columns: what to read and check (see :func:`split_specs` for the challenge columns).
        seq_column: the history column: returned as int32 (N, W), rows must be left-padded with 0.
        max_len: keep only the last ``max_len`` positions of ``seq_column`` (the most recent items), as the
            challenge loader's ``item_seq[:, -max_len:]``; W = min(stored length, max_len). ``None`` keeps all.
        allow_extra: ignore file columns that are not requested instead of raising (a pandas index column is
            always ignored).

    Returns:
        name -> array: ``int`` int64 (N,), ``label`` float32 (N,), ``int_list`` int64 (N, L) except ``seq_column``
        int32 (N, W), ``float_list`` float32 (N, L), ``str`` object (N,); all C-contiguous.

    Raises:
        DataError: the file or its content does not match ``columns`` (names file, column, row, value, expectation).
        ConfigError: the request itself is invalid (bad ``max_len``, duplicated specs, wrong ``seq_column`` kind).
    """
    if max_len is not None:
        if max_len < 1:
            raise ConfigError(f"max_len must be >= 1, got {max_len}")
        if seq_column not in {s.name for s in columns}:
            raise ConfigError(f"max_len={max_len} given but the sequence column '{seq_column}' is not requested")
    for s in columns:
        if s.name == seq_column and s.kind != "int_list":
            raise ConfigError(f"sequence column '{seq_column}' must have kind 'int_list', got '{s.kind}'")
    arrays, _ = _read_columns(path, columns, allow_extra=allow_extra, seq_column=seq_column, max_len=max_len)
    return arrays


def _check_dense_ids(ids: np.ndarray, first_id: int, shown: str, layout: str) -> None:
    """Require ``ids[i] == first_id + i``; explain the first row that breaks it (gap, duplicate, unsorted)."""
    expected = np.arange(first_id, first_id + len(ids), dtype=np.int64)
    bad = ids != expected
    if not bad.any():
        return
    r = int(np.argmax(bad))
    v, want = int(ids[r]), int(expected[r])
    # rows before r hold first_id..want-1, so a smaller id repeats an earlier row and a larger one skips `want`
    if r == 0:
        why = f"the first row must hold item_id {first_id}"
    elif first_id <= v < want:
        why = f"duplicate of row {v - first_id}"
    elif v < first_id:
        why = f"ids must start at {first_id}"
    else:
        later = np.flatnonzero(ids[r + 1:] == want)
        why = (f"rows are not sorted by item_id: item_id {want} is in row {r + 1 + int(later[0])}" if later.size
               else f"gap: item_id {want} is missing")
    raise DataError(f"item_id {v}, expected {want} ({why}); {layout}", path=shown, column="item_id", row=r)


def _check_row_count(n: int, expected: int, shown: str, what: str) -> None:
    if n == expected:
        return
    if n > expected:
        raise DataError(f"{n} rows, expected {expected} ({what}); this row and the ones after it are surplus",
                        path=shown, column="item_id", row=expected)
    raise DataError(f"only {n} rows, expected {expected} ({what}); the rows from {n} on are missing",
                    path=shown, column="item_id")


def _with_item_id(columns: Sequence[ColumnSpec], min_value: int) -> list[ColumnSpec]:
    """The requested specs with item_id present (added if absent) and its lower bound set by the table layout."""
    specs = list(columns)
    for i, s in enumerate(specs):
        if s.name == "item_id":
            if s.kind != "int":
                raise ConfigError(f"item_id must have kind 'int', got '{s.kind}'")
            specs[i] = dataclasses.replace(s, min_value=min_value)
            return specs
    return [ColumnSpec("item_id", "int", min_value=min_value), *specs]


def _check_zero_row(arrays: Mapping[str, np.ndarray], shown: str) -> None:
    """Row 0 (padding) must be all zeros in every numeric column."""
    for name, arr in arrays.items():
        if arr.dtype == object:
            continue
        row = np.atleast_1d(arr[0])
        nonzero = row != 0
        if nonzero.any():
            pos = int(np.argmax(nonzero))
            where = f" at position {pos}" if arr.ndim > 1 else ""
            raise DataError(f"value {_fmt(row[pos])}{where}, expected all zeros in the padding row 0",
                            path=shown, column=name, row=0)


def read_item_info(path: str | Path, columns: Sequence[ColumnSpec], *,
                   num_items: int | None = None) -> dict[str, np.ndarray]:
    """Read item_info.parquet: dense rows sorted by item_id (row i holds item i) with an all-zero padding row 0.

    Args:
        path: the item_info parquet file.
        columns: what to read (see :func:`item_info_specs`); ``item_id`` is always read and returned (its
            ``min_value`` is taken as 0). Further item-side columns in the file are allowed and ignored.
        num_items: the item vocab = expected row count I+1 (padding row included), e.g. 91,718; ``None`` skips.

    Returns:
        name -> array with the dtypes of :func:`read_split`, N = I+1 rows; row ``i`` of every array is item ``i``.
    """
    specs = _with_item_id(columns, min_value=0)
    arrays, shown = _read_columns(path, specs, allow_extra=True)
    ids = arrays["item_id"]
    layout = "item_info must be dense and sorted, row i holding item_id i, with the padding row 0 first"
    _check_dense_ids(ids, 0, shown, layout)
    if num_items is not None:
        _check_row_count(len(ids), num_items, shown, f"item ids 0..{num_items - 1} including the padding row 0")
    _check_zero_row(arrays, shown)
    return arrays


def read_optional_item_table(path: str | Path, columns: Sequence[ColumnSpec], *, has_padding_row: bool,
                             num_items: int | None = None) -> dict[str, np.ndarray]:
    """Read item_feature.parquet or item_emb.parquet.

    Args:
        path: the parquet file.
        columns: what to read (see :func:`item_feature_specs`, :func:`item_emb_specs`); ``item_id`` is always read
            and returned. Other file columns are ignored.
        has_padding_row: ``False`` for the challenge files (I rows, ids 1..I contiguous); ``True`` for a table laid
            out like item_info (ids 0..I, all-zero row 0).
        num_items: the item vocab I+1 (as for :func:`read_item_info`); the table must then hold I rows
            (I+1 with a padding row). ``None`` skips the count check.

    Returns:
        name -> array with the dtypes of :func:`read_split`; row ``k`` is item ``k + 1`` (item ``k`` with a padding row).
    """
    first_id = 0 if has_padding_row else 1
    specs = _with_item_id(columns, min_value=first_id)
    arrays, shown = _read_columns(path, specs, allow_extra=True)
    ids = arrays["item_id"]
    if has_padding_row:
        layout = "the table must be dense and sorted, row i holding item_id i, with the padding row 0 first"
    else:
        layout = "the table must hold item ids 1..I in order, row k holding item_id k+1, without a padding row"
    _check_dense_ids(ids, first_id, shown, layout)
    if num_items is not None:
        expected = num_items if has_padding_row else num_items - 1
        _check_row_count(len(ids), expected, shown, f"item ids {first_id}..{num_items - 1}")
    if has_padding_row:
        _check_zero_row(arrays, shown)
    return arrays

