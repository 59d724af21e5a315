"""The results CSV: appended rows keep one header, old layouts are migrated, unknown fields are refused."""
import pytest

from model_zoo.results import RESULT_FIELDS, append_result, read_results


def test_append_and_read(tmp_path):
    path = tmp_path / "r" / "results.csv"
    append_result(path, {"expid": "a", "valid_AUC": 0.5})
    append_result(path, {"expid": "b", "valid_AUC": 0.75})
    rows = read_results(path)
    assert [r["expid"] for r in rows] == ["a", "b"]
    assert rows[1]["valid_AUC"] == "0.75"
    assert path.read_text().count("timestamp") == 1
    assert not list(path.parent.glob("*.tmp"))


def test_old_layout_is_migrated(tmp_path):
    path = tmp_path / "results.csv"
    path.write_text("timestamp,expid,valid_AUC\n1,old,0.6\n")
    append_result(path, {"expid": "new", "embedding_variant": "V4"})
    header = path.read_text().splitlines()[0].split(",")
    assert header == list(RESULT_FIELDS)
    rows = read_results(path)
    assert rows[0]["expid"] == "old" and rows[0]["valid_AUC"] == "0.6"
    assert rows[1]["embedding_variant"] == "V4"


def test_unknown_field_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown fields"):
        append_result(tmp_path / "r.csv", {"expid": "a", "valid_auc": 1})
