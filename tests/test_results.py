"""The results CSV: one locked append per row, never a rewrite; damaged lines reported with their line number."""
import pytest

from model_zoo.apps.results import RESULT_FIELDS, append_result, check_results_target, read_results
from model_zoo.errors import DataError


def test_append_and_read(tmp_path):
    path = tmp_path / "r" / "results.csv"
    append_result(path, {"expid": "a", "valid_AUC": 0.5})
    append_result(path, {"expid": "b", "valid_AUC": 0.75, "command": "x\ny"})
    table = read_results(path, required=True)
    assert [r["expid"] for r in table.rows] == ["a", "b"]
    assert table.rows[1]["valid_AUC"] == "0.75" and table.rows[1]["command"] == "x y"
    assert path.read_text().count("timestamp") == 1 and len(path.read_text().splitlines()) == 3
    assert not table.damaged


def test_append_never_rewrites_earlier_bytes(tmp_path):
    path = tmp_path / "results.csv"
    append_result(path, {"expid": "a"})
    before = path.read_bytes()
    append_result(path, {"expid": "b"})
    assert path.read_bytes().startswith(before)


def test_damaged_lines_are_reported_and_swallow_nothing(tmp_path):
    path = tmp_path / "results.csv"
    append_result(path, {"expid": "a"})
    with open(path, "ab") as fh:
        fh.write(b'x,"unbalanced,quote\n')            # a hand edit gone wrong
        fh.write(b"bad,\xff\xfe,bytes\n")             # not UTF-8
        fh.write(b"only,three,values\n")
    append_result(path, {"expid": "b"})
    append_result(path, {"expid": "c"})
    table = read_results(path)
    assert [r["expid"] for r in table.rows] == ["a", "b", "c"]
    assert [line for line, _ in table.damaged] == [3, 4, 5]
    assert "results.csv:3: cannot be parsed" in table.warnings()[0]


def test_older_header_gets_new_rows(tmp_path):
    path = tmp_path / "results.csv"
    path.write_text(",".join(RESULT_FIELDS[:17]) + "\n20260101,old,DIN" + "," * 14 + "\n")
    append_result(path, {"expid": "new", "device": "cpu"})
    rows = read_results(path).rows
    assert rows[0]["expid"] == "old" and rows[1]["device"] == "cpu"
    assert path.read_text().splitlines()[0] == ",".join(RESULT_FIELDS[:17]), "the header is never rewritten"


def test_unrelated_missing_or_directory_refused(tmp_path):
    other = tmp_path / "other.csv"
    other.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(DataError, match="not a zoo results header"):
        read_results(other, required=True)
    with pytest.raises(DataError, match="refusing to append"):
        append_result(other, {"expid": "x"})
    assert other.read_text() == "a,b,c\n1,2,3\n"
    with pytest.raises(DataError, match="no such file"):
        read_results(tmp_path / "typo.csv", required=True)
    with pytest.raises(DataError, match="is a directory"):
        check_results_target(tmp_path)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="empty"):
        read_results(empty, required=True)


def test_unknown_field_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown fields"):
        append_result(tmp_path / "r.csv", {"expid": "a", "valid_auc": 1})
