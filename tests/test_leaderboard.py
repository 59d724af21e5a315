"""The leaderboard regenerates .md/.csv/.png from result rows; published figures stay in their own section."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Dict, List

import pytest

from model_zoo import leaderboard
from model_zoo.leaderboard import PUBLISHED, main, write_leaderboard
from model_zoo.results import append_result
from model_zoo.tuner import SweepReport

FIXTURE_ROWS = [  # written to a tmp results CSV, never to results/ or benchmarks/
    dict(timestamp="20260101-000000", expid="DIN_MicroLens_synth", model="DIN", dataset_id="MicroLens_synth_small",
         embedding_variant="V3", seed=1, valid_AUC=0.811, valid_logloss=0.45, test_AUC=0.809, test_logloss=0.46,
         oracle_valid_AUC=0.875, oracle_test_AUC=0.872, num_params=123456, train_seconds=61.25),
    dict(timestamp="20260102-000000", expid="DIN_MicroLens_synth", model="DIN", dataset_id="MicroLens_synth_small",
         embedding_variant="V3", seed=1, valid_AUC=0.801, valid_logloss=0.46, test_AUC=0.799, test_logloss=0.47,
         oracle_valid_AUC=0.875, oracle_test_AUC=0.872, num_params=123456, train_seconds=60.0),   # latest, worse
    dict(timestamp="20260101-000000", expid="DMF_MicroLens_synth", model="DMF", dataset_id="MicroLens_synth_small",
         embedding_variant="V4", seed=1, valid_AUC=0.833, valid_logloss=0.43, test_AUC=0.830, test_logloss=0.44,
         oracle_valid_AUC=0.875, oracle_test_AUC=0.872, num_params=234567, train_seconds=90.5),
    dict(timestamp="20260101-000000", expid="DIN_MicroLens", model="DIN", dataset_id="MicroLens_1M_x1",
         embedding_variant="V3", seed=1, valid_AUC=0.871234, valid_logloss=0.4, num_params=9876543,
         train_seconds=3600),                                                          # real data: hidden test
    dict(timestamp="20260101-000000", expid="DMF_test", model="DMF", dataset_id="MicroLens_synth_tiny",
         embedding_variant="V3", seed=1, valid_AUC=0.7, valid_logloss=0.5, test_AUC=0.71, test_logloss=0.5,
         oracle_valid_AUC=0.8756, oracle_test_AUC=0.8723, num_params=10481, train_seconds=1.5),
]


@pytest.fixture()
def results_csv(tmp_path) -> Path:
    path = tmp_path / "results" / "results.csv"
    for row in FIXTURE_ROWS:
        append_result(path, row)
    return path


def read_csv(path: Path) -> List[Dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def sections(md: str) -> Dict[str, str]:
    ours, published = md.split("## Published figures (published, not re-run here)")
    return {"ours": ours, "published": published}


def test_leaderboard_files_from_fixture_rows(results_csv, tmp_path):
    paths = write_leaderboard(results_csv, tmp_path / "out" / "leaderboard")
    assert sorted(p.name for p in paths.values()) == ["leaderboard.csv", "leaderboard.md", "leaderboard.png"]

    table = read_csv(paths["csv"])
    assert [r["expid"] for r in table] == ["DIN_MicroLens", "DMF_MicroLens_synth", "DIN_MicroLens_synth", "DMF_test"]
    by_expid = {r["expid"]: r for r in table}
    assert by_expid["DIN_MicroLens_synth"]["valid_AUC"] == "0.801"             # latest row, not the best one
    assert by_expid["DIN_MicroLens"]["synthetic"] == "no" and by_expid["DMF_test"]["synthetic"] == "yes"
    assert by_expid["DMF_MicroLens_synth"]["embedding_variant"] == "V4"
    assert by_expid["DMF_test"]["oracle_valid_AUC"] == "0.8756" and by_expid["DIN_MicroLens"]["test_AUC"] == ""
    assert {"model", "embedding_variant", "dataset_id", "valid_AUC", "test_AUC", "valid_logloss", "num_params",
            "train_seconds", "oracle_valid_AUC"} <= set(table[0])

    md = paths["md"].read_text()
    parts = sections(md)
    assert "### MicroLens_1M_x1 (real data)" in parts["ours"]
    assert "### MicroLens_synth_small (synthetic world: not MicroLens results)" in parts["ours"]
    assert "### MicroLens_synth_tiny (synthetic world: not MicroLens results)" in parts["ours"]
    assert parts["ours"].index("MicroLens_1M_x1 (real") < parts["ours"].index("MicroLens_synth_small")
    assert "| DMF | V4 | `DMF_MicroLens_synth` | 0.833000 | 0.430000 | 0.830000 |" in parts["ours"]
    assert "| DIN | V3 | `DIN_MicroLens` | 0.871234 | 0.400000 | n/a | n/a | 9,876,543 | 3600.0 |" in parts["ours"]
    assert "latest" in parts["ours"]
    # The published figures live only in their own section: never in our table, the CSV or next to our rows.
    for figure in ("0.8655", "0.8797", "0.9247", "0.9231", "0.9124", "0.9306", "0.976603", "0.9839", "0.9798"):
        assert figure in parts["published"]
        assert figure not in parts["ours"] and figure not in paths["csv"].read_text()
    assert len([p for p in PUBLISHED if p.team.startswith("FuxiCTR")]) == 1

    png = paths["png"].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert not list(paths["md"].parent.glob("*.tmp")), "no temp files left behind"


def test_select_best_and_filter(results_csv, tmp_path):
    paths = write_leaderboard(results_csv, tmp_path / "lb", select="best", expid_filter="DIN_*")
    table = read_csv(paths["csv"])
    assert [(r["expid"], r["valid_AUC"]) for r in table] == [("DIN_MicroLens", "0.871234"),
                                                             ("DIN_MicroLens_synth", "0.811")]
    assert "best valid AUC" in paths["md"].read_text()


def test_empty_results_still_write_every_file(tmp_path):
    paths = write_leaderboard(tmp_path / "missing.csv", tmp_path / "lb")
    assert read_csv(paths["csv"]) == []
    assert "No result rows yet" in paths["md"].read_text()
    assert paths["png"].stat().st_size > 0


def test_run_config_runs_missing_expids_then_shows_only_those(results_csv, tmp_path, monkeypatch):
    cfg = tmp_path / "leaderboard.yaml"
    cfg.write_text("expids: [DMF_MicroLens_synth, DIN_SENet_MicroLens_synth]\ngpus: [-1, -1]\n")
    calls = []

    def fake_run_expids(expids, config_dir, gpus, results, **kwargs):  # stands in for the real runs
        calls.append((list(expids), list(gpus)))
        append_result(results, dict(FIXTURE_ROWS[2], expid="DIN_SENet_MicroLens_synth", model="DIN_SENet",
                                    valid_AUC=0.82))
        return SweepReport(config_dir=None, results=str(results), expids=list(expids))

    monkeypatch.setattr("model_zoo.tuner.run_expids", fake_run_expids)
    out = tmp_path / "lb"
    assert main(["--results", str(results_csv), "--out", str(out), "--run", str(cfg), "--quiet"]) == 0
    assert calls == [(["DMF_MicroLens_synth", "DIN_SENet_MicroLens_synth"], [-1, -1])]
    assert [r["expid"] for r in read_csv(out.with_name("lb.csv"))] == ["DMF_MicroLens_synth",
                                                                        "DIN_SENet_MicroLens_synth"]


def test_shipped_leaderboard_config_lists_known_expids():
    from model_zoo.config import list_expids

    cfg = leaderboard.load_run_config(leaderboard.REPO_ROOT / "config" / "leaderboard.yaml")
    assert set(cfg["expids"]) <= set(list_expids())
