"""Tests of model_zoo.datasets.microlens: reading and validating MicroLens-schema parquet files."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from model_zoo.datasets import microlens
from model_zoo.datasets.microlens import (
    ITEM_EMB_COLUMNS, ITEM_FEATURE_COLUMNS, ITEM_INFO_COLUMNS, MICROLENS_VOCAB, SPLIT_COLUMNS, ColumnSpec,
    item_emb_specs, item_feature_specs, item_info_specs, read_item_info, read_optional_item_table, read_split,
    split_specs,
)
from model_zoo.errors import ConfigError, DataError

VOCAB = {"item_id": 21, "item_tags": 9, "likes_level": 11, "views_level": 11}   # 20 items + padding 0
SEQ_LEN = 6


def where(path: Path, column: str | None = None, row: int | None = None) -> str:
    """Regex for the DataError prefix "<path>, column 'c', row r: "."""
    text = re.escape(str(path))
    if column is not None:
        text += re.escape(f", column '{column}'")
    if row is not None:
        text += re.escape(f", row {row}")
    return text + ": "


def split_data(n: int = 5) -> dict[str, Any]:
    """A valid split as python lists; row r's history ends with items r+1, r+2 (left-padded with 0)."""
    seqs = [[0] * (SEQ_LEN - 2 - (r % 3)) + list(range(20 - (r % 3), 21)) + [r + 1, r + 2] for r in range(n)]
    seqs = [s[-SEQ_LEN:] for s in seqs]
    return {
        "user_id": list(range(100, 100 + n)),
        "item_seq": seqs,
        "item_id": [(r % 20) + 1 for r in range(n)],
        "likes_level": [r % 10 for r in range(n)],
        "views_level": [(r + 3) % 10 for r in range(n)],
        "label": [r % 2 for r in range(n)],
    }


def write(path: Path, data: dict[str, Any], types: dict[str, pa.DataType] | None = None) -> Path:
    """Write columns (python lists) to parquet; default types int64 / list<int64> / list<float32>."""
    types = types or {}
    arrays = {}
    for name, values in data.items():
        if name in types:
            arrays[name] = pa.array(values, type=types[name])
        elif name in {"item_seq", "item_tags"}:
            arrays[name] = pa.array(values, type=pa.list_(pa.int64()))
        elif name.startswith(("item_emb", "txt_emb", "img_emb")):
            arrays[name] = pa.array(values, type=pa.list_(pa.float32()))
        else:
            arrays[name] = pa.array(values)
    pq.write_table(pa.table(arrays), path)
    return path


def specs(seq_length: int | None = None) -> tuple[ColumnSpec, ...]:
    return split_specs(VOCAB, seq_length=seq_length)


def item_info_data(num_items: int = 20, dim: int = 4) -> dict[str, Any]:
    """A valid item_info: rows 0..num_items, row 0 all zeros."""
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(num_items + 1, dim)).astype(np.float32)
    emb[0] = 0
    tags = [[0, 0, 0, 0, 0]] + [[0, 0, i % 8 + 1, (i + 1) % 8 + 1, (i + 2) % 8 + 1] for i in range(1, num_items + 1)]
    return {"item_id": list(range(num_items + 1)), "item_tags": tags, "item_emb_d128": emb.tolist()}


def info_specs(dim: int = 4) -> tuple[ColumnSpec, ...]:
    return (ColumnSpec("item_id", "int", vocab_size=VOCAB["item_id"]),
            ColumnSpec("item_tags", "int_list", vocab_size=VOCAB["item_tags"], length=5),
            ColumnSpec("item_emb_d128", "float_list", length=dim))


# --------------------------------------------------------------------------------------------------------------------
# valid splits
# --------------------------------------------------------------------------------------------------------------------
def test_schema_constants() -> None:
    assert SPLIT_COLUMNS == ("user_id", "item_seq", "item_id", "likes_level", "views_level", "label")
    assert ITEM_INFO_COLUMNS == ("item_id", "item_tags", "item_emb_d128")
    assert "txt_emb_BERT" in ITEM_FEATURE_COLUMNS and "img_emb_CLIPRN50" in ITEM_FEATURE_COLUMNS
    assert ITEM_EMB_COLUMNS[1:] == ("item_emb_d128_v1", "item_emb_d128_v2", "item_emb_d128_v3", "item_emb_d128_e4")
    assert MICROLENS_VOCAB == {"item_id": 91718, "item_tags": 11740, "likes_level": 11, "views_level": 11}
    assert [s.name for s in split_specs()] == list(SPLIT_COLUMNS)
    assert [s.name for s in item_info_specs()] == list(ITEM_INFO_COLUMNS)
    assert [s.name for s in item_feature_specs()] == list(ITEM_FEATURE_COLUMNS)
    assert [s.name for s in item_emb_specs()] == list(ITEM_EMB_COLUMNS)


def test_split_round_trip(tmp_path: Path) -> None:
    data = split_data(7)
    path = write(tmp_path / "train.parquet", data)
    out = read_split(path, specs(seq_length=SEQ_LEN))
    assert list(out) == list(SPLIT_COLUMNS)
    for name in ("user_id", "item_id", "likes_level", "views_level"):
        assert out[name].dtype == np.int64 and out[name].shape == (7,)
        np.testing.assert_array_equal(out[name], data[name])
    assert out["label"].dtype == np.float32
    np.testing.assert_array_equal(out["label"], np.array(data["label"], dtype=np.float32))
    seq = out["item_seq"]
    assert seq.dtype == np.int32 and seq.shape == (7, SEQ_LEN) and seq.flags.c_contiguous
    np.testing.assert_array_equal(seq, np.array(data["item_seq"]))


def test_max_len_keeps_most_recent_items(tmp_path: Path) -> None:
    data = split_data(4)
    path = write(tmp_path / "valid.parquet", data)
    out = read_split(path, specs(), max_len=2)
    assert out["item_seq"].shape == (4, 2) and out["item_seq"].flags.c_contiguous
    np.testing.assert_array_equal(out["item_seq"], [[r + 1, r + 2] for r in range(4)])
    np.testing.assert_array_equal(out["item_seq"], np.array(data["item_seq"])[:, -2:])
    # a max_len above the stored length keeps everything, like item_seq[:, -max_len:]
    assert read_split(path, specs(), max_len=50)["item_seq"].shape == (4, SEQ_LEN)


def test_rows_across_batches_and_float_or_bool_labels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(microlens, "_BATCH_ROWS", 3)
    data = split_data(10)
    data["label"] = [float(v) for v in data["label"]]
    path = write(tmp_path / "train.parquet", data)
    out = read_split(path, specs())
    np.testing.assert_array_equal(out["item_seq"], np.array(data["item_seq"]))
    np.testing.assert_array_equal(out["label"], np.array(data["label"], dtype=np.float32))
    data["label"] = [bool(v) for v in data["label"]]
    data["item_id"][8] = 0                       # row index must count across batches
    path = write(tmp_path / "train.parquet", data)
    with pytest.raises(DataError, match=where(path, "item_id", 8) + r"value 0 out of range, expected an id in \[1, 20\]"):
        read_split(path, specs())


def test_test_split_without_label_spec(tmp_path: Path) -> None:
    data = split_data(3)
    data["label"] = [None, None, None]           # labels unknown in test
    path = write(tmp_path / "test.parquet", data, {"label": pa.float64()})
    out = read_split(path, split_specs(VOCAB, label=False), allow_extra=True)
    assert "label" not in out and out["item_id"].shape == (3,)


# --------------------------------------------------------------------------------------------------------------------
# bad files and columns
# --------------------------------------------------------------------------------------------------------------------
def test_missing_file(tmp_path: Path) -> None:
    write(tmp_path / "train.parquet", split_data())
    path = tmp_path / "trian.parquet"
    with pytest.raises(DataError, match=where(path) + r"file not found: expected a parquet file at this path "
                                                     r"\(did you mean 'train.parquet'\?\)"):
        read_split(path, specs())
    gone = tmp_path / "nodir" / "train.parquet"
    with pytest.raises(DataError, match=where(gone) + r"file not found.*directory .*nodir' does not exist"):
        read_split(gone, specs())


def test_not_a_parquet_file(tmp_path: Path) -> None:
    path = tmp_path / "train.parquet"
    path.write_text("user_id,item_id\n1,2\n")
    with pytest.raises(DataError, match=where(path) + "not a readable parquet file"):
        read_split(path, specs())
    with pytest.raises(DataError, match=where(tmp_path) + "is a directory"):
        read_split(tmp_path, specs())


@pytest.mark.parametrize("bad_name", ["itemseq", "item_seq ", "item_Seq"])
def test_missing_column_did_you_mean(tmp_path: Path, bad_name: str) -> None:
    data = split_data()
    data[bad_name] = data.pop("item_seq")
    path = write(tmp_path / "train.parquet", data)
    with pytest.raises(DataError, match=where(path, "item_seq") + r"missing column\(s\) 'item_seq' "
                                                                 rf"\(did you mean '{re.escape(bad_name)}'\?\)"):
        read_split(path, specs())


def test_extra_columns(tmp_path: Path) -> None:
    data = split_data()
    data["item_tags"] = [[1, 2]] * 5
    path = write(tmp_path / "train.parquet", data)
    with pytest.raises(DataError, match=where(path, "item_tags") + r"unexpected column\(s\) \['item_tags'\].*allow_extra"):
        read_split(path, specs())
    out = read_split(path, specs(), allow_extra=True)
    assert "item_tags" not in out


def test_pandas_index_column_is_not_extra(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(split_data(4), index=[10, 11, 12, 13])
    path = tmp_path / "train.parquet"
    frame.to_parquet(path, engine="pyarrow")
    assert "__index_level_0__" in pq.ParquetFile(path).schema_arrow.names
    out = read_split(path, specs())
    np.testing.assert_array_equal(out["item_seq"], np.array(split_data(4)["item_seq"]))


@pytest.mark.parametrize("arrow_type, shown", [(pa.float64(), "double"), (pa.string(), "string")])
def test_wrong_dtype(tmp_path: Path, arrow_type: pa.DataType, shown: str) -> None:
    data = split_data()
    data["item_id"] = [float(v) if shown == "double" else str(v) for v in data["item_id"]]
    path = write(tmp_path / "train.parquet", data, {"item_id": arrow_type})
    with pytest.raises(DataError, match=where(path, "item_id") + rf"stored as arrow type '{shown}', "
                                                                r"expected an integer type \(int64\)"):
        read_split(path, specs())


def test_wrong_list_dtype(tmp_path: Path) -> None:
    data = split_data()
    data["item_seq"] = [[float(x) for x in s] for s in data["item_seq"]]
    path = write(tmp_path / "train.parquet", data, {"item_seq": pa.list_(pa.float32())})
    with pytest.raises(DataError, match=where(path, "item_seq") + r"stored as arrow type 'list<\w+: float>', "
                                                                 r"expected a list of integers"):
        read_split(path, specs())


def test_null_scalar(tmp_path: Path) -> None:
    data = split_data()
    data["likes_level"][3] = None
    path = write(tmp_path / "train.parquet", data)
    with pytest.raises(DataError, match=where(path, "likes_level", 3) + "null value"):
        read_split(path, specs())


def test_null_list_and_null_element(tmp_path: Path) -> None:
    data = split_data()
    data["item_seq"][2] = None
    path = write(tmp_path / "train.parquet", data)
    with pytest.raises(DataError, match=where(path, "item_seq", 2) + "null value"):
        read_split(path, specs())
    data = split_data()
    data["item_seq"][4][1] = None
    path = write(tmp_path / "valid.parquet", data)
    with pytest.raises(DataError, match=where(path, "item_seq", 4) + "null element at position 1"):
        read_split(path, specs())


def test_ragged_lists(tmp_path: Path) -> None:
    data = split_data()
    data["item_seq"][3] = data["item_seq"][3][1:]
    path = write(tmp_path / "train.parquet", data)
    with pytest.raises(DataError, match=where(path, "item_seq", 3) + r"list has length 5, expected 6 \(the length of row 0"):
        read_split(path, specs())
    path = write(tmp_path / "valid.parquet", split_data())
    with pytest.raises(DataError, match=where(path, "item_seq", 0) + r"list has length 6, expected 100 \(the spec"):
        read_split(path, specs(seq_length=100))


@pytest.mark.parametrize("column, row, value, message", [
    ("item_seq", 2, -1, r"value -1 at position 0 out of range, expected an id in \[0, 20\] \(vocab_size 21\)"),
    ("item_seq", 4, 21, r"value 21 at position 0 out of range, expected an id in \[0, 20\]"),
    ("item_id", 1, 21, r"value 21 out of range, expected an id in \[1, 20\]"),
    ("item_id", 0, 0, r"value 0 out of range, expected an id in \[1, 20\]"),
    ("views_level", 3, -2, r"value -2 out of range, expected an id in \[0, 10\]"),
    ("likes_level", 1, 11, r"value 11 out of range, expected an id in \[0, 10\]"),
])
def test_ids_out_of_range(tmp_path: Path, column: str, row: int, value: int, message: str) -> None:
    data = split_data()
    if column == "item_seq":
        data[column][row][0] = value
    else:
        data[column][row] = value
    path = write(tmp_path / "train.parquet", data)
    with pytest.raises(DataError, match=where(path, column, row) + message):
        read_split(path, specs())


def test_right_padded_sequence(tmp_path: Path) -> None:
    data = split_data()
    data["item_seq"][1] = [5, 6, 7, 0, 0, 0]
    path = write(tmp_path / "train.parquet", data)
    with pytest.raises(DataError, match=where(path, "item_seq", 1) + "padding 0 at position 3 after a non-zero item, "
                                                                     "expected the sequence to be left-padded"):
        read_split(path, specs())


@pytest.mark.parametrize("value, shown", [(2, "2.0"), (-1, "-1.0"), (float("nan"), "nan"), (0.5, "0.5")])
def test_bad_labels(tmp_path: Path, value: float, shown: str) -> None:
    data = split_data()
    data["label"] = [float(v) for v in data["label"]]
    data["label"][3] = value
    path = write(tmp_path / "train.parquet", data)
    with pytest.raises(DataError, match=where(path, "label", 3) + f"label value {shown}, expected 0 or 1"):
        read_split(path, specs())


def test_bad_int_label(tmp_path: Path) -> None:
    data = split_data()
    data["label"][2] = 2
    path = write(tmp_path / "valid.parquet", data)
    with pytest.raises(DataError, match=where(path, "label", 2) + "label value 2, expected 0 or 1"):
        read_split(path, specs())


def test_empty_file(tmp_path: Path) -> None:
    data = {k: v[:0] for k, v in split_data().items()}
    path = write(tmp_path / "train.parquet", data, {"user_id": pa.int64(), "item_seq": pa.list_(pa.int64()),
                                                    "item_id": pa.int64(), "likes_level": pa.int64(),
                                                    "views_level": pa.int64(), "label": pa.int64()})
    with pytest.raises(DataError, match=where(path) + "file has no rows"):
        read_split(path, specs())


def test_bad_requests_are_config_errors(tmp_path: Path) -> None:
    path = write(tmp_path / "train.parquet", split_data())
    with pytest.raises(ConfigError, match="unknown kind 'ints'"):
        ColumnSpec("item_id", "ints")
    with pytest.raises(ConfigError, match="max_len must be >= 1"):
        read_split(path, specs(), max_len=0)
    with pytest.raises(ConfigError, match="requested twice"):
        read_split(path, (*specs(), ColumnSpec("label", "label")))
    with pytest.raises(ConfigError, match="'item_seq' is not requested"):
        read_split(path, [s for s in specs() if s.name != "item_seq"], max_len=3, allow_extra=True)


# --------------------------------------------------------------------------------------------------------------------
# item_info
# --------------------------------------------------------------------------------------------------------------------
def test_item_info_round_trip_with_extra_columns(tmp_path: Path) -> None:
    data = item_info_data()
    data["item_emb_d128_v1"] = data["item_emb_d128"]             # further item-side columns are allowed
    data["sid_codes"] = [[0, 0, 0]] + [[1, 2, 3]] * 20
    path = write(tmp_path / "item_info.parquet", data, {"sid_codes": pa.list_(pa.int64(), 3)})
    out = read_item_info(path, info_specs(), num_items=21)
    assert set(out) == {"item_id", "item_tags", "item_emb_d128"}
    assert out["item_id"].dtype == np.int64 and out["item_id"].shape == (21,)
    assert out["item_tags"].dtype == np.int64 and out["item_tags"].shape == (21, 5)
    emb = out["item_emb_d128"]
    assert emb.dtype == np.float32 and emb.shape == (21, 4) and emb.flags.c_contiguous
    np.testing.assert_array_equal(emb, np.array(data["item_emb_d128"], dtype=np.float32))
    # fixed-size lists and a requested extra column; item_id is returned even when not requested
    out = read_item_info(path, [ColumnSpec("sid_codes", "int_list", vocab_size=4, length=3)])
    assert out["sid_codes"].shape == (21, 3) and out["item_id"][-1] == 20


@pytest.mark.parametrize("ids, row, message", [
    ([0, 1, 2, 4, 5], 3, r"item_id 4, expected 3 \(gap: item_id 3 is missing\)"),
    ([0, 1, 2, 2, 3], 3, r"item_id 2, expected 3 \(duplicate of row 2\)"),
    ([0, 1, 2, 3, 1], 4, r"item_id 1, expected 4 \(duplicate of row 1\)"),
    ([0, 1, 3, 2, 4], 2, r"item_id 3, expected 2 \(rows are not sorted by item_id: item_id 2 is in row 3\)"),
    ([0, 4, 3, 2, 1], 1, r"item_id 4, expected 1 \(rows are not sorted by item_id: item_id 1 is in row 4\)"),
    ([1, 2, 3, 4, 5], 0, r"item_id 1, expected 0 \(the first row must hold item_id 0\)"),
])
def test_item_info_dense_and_sorted(tmp_path: Path, ids: list[int], row: int, message: str) -> None:
    data = {k: v[:5] for k, v in item_info_data().items()}
    data["item_id"] = ids
    path = write(tmp_path / "item_info.parquet", data)
    with pytest.raises(DataError, match=where(path, "item_id", row) + message + "; item_info must be dense and sorted"):
        read_item_info(path, info_specs())


@pytest.mark.parametrize("column", ["item_tags", "item_emb_d128"])
def test_item_info_zero_row(tmp_path: Path, column: str) -> None:
    data = item_info_data()
    data[column][0][2] = 3
    path = write(tmp_path / "item_info.parquet", data)
    with pytest.raises(DataError, match=where(path, column, 0) + r"value 3(\.0)? at position 2, expected all zeros "
                                                                r"in the padding row 0"):
        read_item_info(path, info_specs())


def test_item_info_num_items(tmp_path: Path) -> None:
    path = write(tmp_path / "item_info.parquet", item_info_data(num_items=20))
    with pytest.raises(DataError, match=where(path, "item_id") + r"only 21 rows, expected 30 \(item ids 0..29 "
                                                                r"including the padding row 0\)"):
        read_item_info(path, info_specs(), num_items=30)
    small = [ColumnSpec("item_emb_d128", "float_list", length=4)]
    with pytest.raises(DataError, match=where(path, "item_id", 15) + r"21 rows, expected 15"):
        read_item_info(path, small, num_items=15)


def test_item_info_tags_out_of_vocab(tmp_path: Path) -> None:
    data = item_info_data()
    data["item_tags"][7][4] = 9
    path = write(tmp_path / "item_info.parquet", data)
    with pytest.raises(DataError, match=where(path, "item_tags", 7) + r"value 9 at position 4 out of range, "
                                                                     r"expected an id in \[0, 8\]"):
        read_item_info(path, info_specs())


@pytest.mark.parametrize("value, shown", [(float("nan"), "nan"), (float("inf"), "inf"), (-float("inf"), "-inf")])
def test_item_info_non_finite(tmp_path: Path, value: float, shown: str) -> None:
    data = item_info_data()
    data["item_emb_d128"][12][1] = value
    path = write(tmp_path / "item_info.parquet", data)
    with pytest.raises(DataError, match=where(path, "item_emb_d128", 12) + f"value {shown} at position 1, "
                                                                          r"expected finite floats"):
        read_item_info(path, info_specs())


def test_float64_overflow_is_reported(tmp_path: Path) -> None:
    data = item_info_data()
    data["item_emb_d128"][5][3] = 1e300
    path = write(tmp_path / "item_info.parquet", data, {"item_emb_d128": pa.list_(pa.float64())})
    with pytest.raises(DataError, match=where(path, "item_emb_d128", 5) + "value inf at position 3"):
        read_item_info(path, info_specs())


def test_item_info_wrong_embedding_length(tmp_path: Path) -> None:
    path = write(tmp_path / "item_info.parquet", item_info_data(dim=4))
    with pytest.raises(DataError, match=where(path, "item_emb_d128", 0) + r"list has length 4, expected 128"):
        read_item_info(path, item_info_specs(VOCAB))


# --------------------------------------------------------------------------------------------------------------------
# item_feature / item_emb
# --------------------------------------------------------------------------------------------------------------------
def item_emb_data(num_items: int = 20, dim: int = 3) -> dict[str, Any]:
    rng = np.random.default_rng(1)
    data: dict[str, Any] = {"item_id": list(range(1, num_items + 1))}
    for name in ITEM_EMB_COLUMNS[1:]:
        data[name] = rng.normal(size=(num_items, dim)).astype(np.float32).tolist()
    return data


def test_item_emb_without_padding_row(tmp_path: Path) -> None:
    data = item_emb_data()
    path = write(tmp_path / "item_emb.parquet", data)
    specs_ = [ColumnSpec(n, "float_list", length=3) for n in ITEM_EMB_COLUMNS[1:]]
    out = read_optional_item_table(path, specs_, has_padding_row=False, num_items=21)
    assert out["item_id"][0] == 1 and out["item_id"].shape == (20,)
    assert out["item_emb_d128_e4"].shape == (20, 3) and out["item_emb_d128_e4"].dtype == np.float32
    np.testing.assert_array_equal(out["item_emb_d128_v2"], np.array(data["item_emb_d128_v2"], dtype=np.float32))
    with pytest.raises(DataError, match=where(path, "item_id") + r"only 20 rows, expected 24 \(item ids 1..24\)"):
        read_optional_item_table(path, specs_, has_padding_row=False, num_items=25)
    # the same file read as if it had a padding row fails on row 0
    with pytest.raises(DataError, match=where(path, "item_id", 0) + r"item_id 1, expected 0"):
        read_optional_item_table(path, specs_, has_padding_row=True)


def test_item_emb_with_unexpected_padding_row_and_gap(tmp_path: Path) -> None:
    data = item_emb_data()
    data["item_id"] = [0] + data["item_id"][:-1]
    path = write(tmp_path / "item_emb.parquet", data)
    specs_ = [ColumnSpec("item_emb_d128_v1", "float_list")]
    with pytest.raises(DataError, match=where(path, "item_id", 0) + r"value 0 out of range, expected an id >= 1"):
        read_optional_item_table(path, specs_, has_padding_row=False)
    data = item_emb_data()
    data["item_id"][10] = 12
    path = write(tmp_path / "item_emb.parquet", data)
    with pytest.raises(DataError, match=where(path, "item_id", 10) + r"item_id 12, expected 11 \(gap: item_id 11 is "
                                                                     r"missing\); the table must hold item ids 1..I"):
        read_optional_item_table(path, specs_, has_padding_row=False)


def test_item_feature_with_title_and_padding_variant(tmp_path: Path) -> None:
    n = 6
    rng = np.random.default_rng(2)
    data = {"item_id": list(range(1, n + 1)), "item_title": [f"video {i} #tag" for i in range(1, n + 1)],
            "item_tags": [[0, 1, 2]] * n, "likes_level": [3] * n, "views_level": [4] * n,
            "txt_emb_BERT": rng.normal(size=(n, 8)).astype(np.float32).tolist(),
            "img_emb_CLIPRN50": rng.normal(size=(n, 5)).astype(np.float32).tolist()}
    path = write(tmp_path / "item_feature.parquet", data)
    specs_ = [ColumnSpec("item_title", "str"), ColumnSpec("item_tags", "int_list", vocab_size=9),
              ColumnSpec("likes_level", "int", vocab_size=11), ColumnSpec("txt_emb_BERT", "float_list", length=8),
              ColumnSpec("img_emb_CLIPRN50", "float_list", length=5)]
    out = read_optional_item_table(path, specs_, has_padding_row=False, num_items=n + 1)
    assert out["item_title"].dtype == object and out["item_title"][2] == "video 3 #tag"
    assert out["item_tags"].shape == (n, 3) and out["img_emb_CLIPRN50"].shape == (n, 5)
    with pytest.raises(DataError, match=where(path, "txt_emb_BERT", 0) + "list has length 8, expected 768"):
        read_optional_item_table(path, item_feature_specs(VOCAB), has_padding_row=False)
    # a table that carries a padding row is checked like item_info
    padded = {k: [v[0]] + v for k, v in data.items()}
    padded["item_id"] = list(range(n + 1))
    path = write(tmp_path / "item_feature_padded.parquet", padded)
    with pytest.raises(DataError, match=where(path, "item_tags", 0) + "value 1 at position 1, expected all zeros"):
        read_optional_item_table(path, specs_[1:], has_padding_row=True)
