"""Multi-seed comparison: golden statistics, pairing by seed, config errors, bad results files, and an end-to-end
study on the tiny world (runs through the tuner's run module with --set seed=N, outputs under a tmp dir)."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Dict

import pytest
import yaml

from model_zoo.apps.results import append_result, read_results
from model_zoo.apps.seeds import load_seed_config, main, seed_jobs, seed_rows, summarize
from model_zoo.errors import ConfigError


def _rows(valid, test=None, oracle=0.9):
    test = test or valid
    return {seed: {"valid_AUC": str(v), "test_AUC": str(test[seed]), "model": "M", "dataset_id": "D",
                   "oracle_valid_AUC": str(oracle), "device": "cpu"} for seed, v in valid.items()}


def test_summary_golden_values():
    """The docstring's example: means, sample standard deviations and paired differences by seed."""
    table = summarize({"R": _rows({1: 0.79, 2: 0.80}), "A": _rows({1: 0.80, 2: 0.82}, {1: 0.70, 2: 0.75})}, "R")
    ref, a = table
    assert ref["n"] == 2 and ref["diff_valid_AUC_mean"] == pytest.approx(0.0) and ref["wins_valid"] == 0
    assert a["valid_AUC_mean"] == pytest.approx(0.81)
    assert a["valid_AUC_std"] == pytest.approx(0.0141421, abs=1e-6)
    assert (a["valid_AUC_min"], a["valid_AUC_max"]) == (0.80, 0.82)
    assert a["diff_valid_AUC_mean"] == pytest.approx(0.015)
    assert a["diff_valid_AUC_std"] == pytest.approx(0.0070711, abs=1e-6)
    assert a["diff_test_AUC_mean"] == pytest.approx(((0.70 - 0.79) + (0.75 - 0.80)) / 2)
    assert (a["wins_valid"], a["paired_n"], a["devices"]) == (2, 2, "cpu")


def test_differences_use_shared_seeds_only():
    """Seed 3 ran only for A: it counts in A's mean but is not paired with the reference."""
    _, a = summarize({"R": _rows({1: 0.5, 2: 0.6}), "A": _rows({1: 0.4, 2: 0.7, 3: 0.9})}, "R")
    assert a["n"] == 3 and a["seeds"] == "1 2 3" and a["valid_AUC_mean"] == pytest.approx(2.0 / 3)
    assert a["paired_n"] == 2 and a["diff_valid_AUC_mean"] == pytest.approx(0.0) and a["wins_valid"] == 1


def test_single_seed_has_no_spread_and_hidden_test_labels_are_left_out():
    rows = _rows({7: 0.8})
    rows[7].update(test_AUC="", valid_cold_AUC="0.6")  # real data: the test labels are hidden
    (a,) = summarize({"A": rows}, "A")
    assert a["valid_AUC_std"] is None and a["diff_valid_AUC_std"] is None
    assert a["test_AUC_mean"] is None and a["valid_cold_AUC_mean"] == pytest.approx(0.6)


def test_seed_rows_match_the_seed_override_exactly():
    rows = [{"expid": "A", "overrides": '{"seed": 1}', "valid_AUC": "0.1"},
            {"expid": "A", "overrides": "", "valid_AUC": "0.2"},                           # the plain expid
            {"expid": "A", "overrides": '{"seed": 1, "embedding_variant": "V4"}', "valid_AUC": "0.3"},
            {"expid": "B", "overrides": '{"seed": 1}', "valid_AUC": "0.4"},
            {"expid": "A", "overrides": '{"seed": 1}', "valid_AUC": "0.5"},                # latest wins
            {"expid": "A", "overrides": '{"seed": 9}', "valid_AUC": "0.6"}]                # not in the study
    assert {s: r["valid_AUC"] for s, r in seed_rows(rows, "A", [1, 2]).items()} == {1: "0.5"}
    assert [j.label for j in seed_jobs(["A", "B"], [1, 2])] == ["A[seed=1]", "A[seed=2]", "B[seed=1]", "B[seed=2]"]


@pytest.mark.parametrize("cfg, match", [
    ({"expids": ["DIN_test"], "seed": [1, 2]}, r"unknown key 'seed' \(did you mean 'seeds'\?\)"),
    ({"expids": ["DIN_test"], "seeds": []}, r"'seeds' must be a non-empty list"),
    ({"expids": ["DIN_test"], "seeds": [1, 1]}, r"'seeds' must be distinct integers >= 0, got \[1, 1\]"),
    ({"expids": ["DIN_test"], "seeds": [1], "reference": "DMF_test"}, r"reference 'DMF_test' is not one of"),
    ({"expids": ["DIN_test"], "seeds": [1], "threads": 0}, r"'threads' must be an integer >= 1, got 0"),
])
def test_bad_seed_config(tmp_path, cfg, match):
    path = tmp_path / "seeds.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match=match):
        load_seed_config(path)


def test_shipped_seed_config_lists_known_expids():
    from model_zoo.config import list_expids

    cfg = load_seed_config("config/seeds.yaml")  # the shipped file, found from any cwd
    assert set(cfg["expids"]) <= set(list_expids()) and cfg["reference"] in cfg["expids"]


def test_unknown_expid_exits_2_before_anything_runs(tmp_path, capsys):
    path = tmp_path / "seeds.yaml"
    path.write_text(yaml.safe_dump({"expids": ["DIN_tset"], "seeds": [1]}))
    assert main(["--run", str(path), "--output-dir", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "DIN_tset" in err and "did you mean 'DIN_test'" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seeds.yaml"], "nothing run, nothing written"


# ---------------------------------------------------------------------------------------------------------------------
# Reports from an existing results file (--no-train)
# ---------------------------------------------------------------------------------------------------------------------
@pytest.fixture()
def study(tmp_path) -> Dict[str, Path]:
    """A study config and a results file holding its four rows (plus one unrelated row)."""
    cfg = tmp_path / "seeds.yaml"
    cfg.write_text(yaml.safe_dump({"expids": ["DIN_test", "DMF_test"], "seeds": [1, 2]}))
    results = tmp_path / "results" / "results.csv"
    aucs = {("DIN_test", 1): 0.70, ("DIN_test", 2): 0.72, ("DMF_test", 1): 0.75, ("DMF_test", 2): 0.74}
    for (expid, seed), auc in aucs.items():
        append_result(results, {"expid": expid, "model": expid.split("_")[0], "dataset_id": "MicroLens_synth_tiny",
                                "seed": seed, "valid_AUC": auc, "test_AUC": auc - 0.01, "oracle_valid_AUC": 0.87,
                                "valid_cold_AUC": 0.6, "device": "cpu", "overrides": {"seed": seed}})
    append_result(results, {"expid": "DIN_test", "valid_AUC": 0.99})  # no overrides: not a study row
    return {"cfg": cfg, "results": results, "out": tmp_path / "benchmarks" / "seeds"}


def _snapshot(out: Path) -> Dict[str, bytes]:
    return {ext: out.with_name(f"{out.name}.{ext}").read_bytes() for ext in ("md", "csv", "png")}


def test_report_from_results(study, capsys):
    assert main(["--run", str(study["cfg"]), "--results", str(study["results"]), "--out", str(study["out"]),
                 "--no-train"]) == 0
    with open(study["out"].with_name("seeds.csv"), newline="") as fh:
        summary = {r["expid"]: r for r in csv.DictReader(fh)}
    assert float(summary["DIN_test"]["valid_AUC_mean"]) == pytest.approx(0.71)   # the 0.99 plain row is not used
    assert float(summary["DMF_test"]["diff_valid_AUC_mean"]) == pytest.approx(0.035)
    assert (summary["DMF_test"]["wins_valid"], summary["DMF_test"]["devices"]) == ("2", "cpu")
    md = study["out"].with_name("seeds.md").read_text()
    assert "`MicroLens_synth_tiny` (synthetic world: not MicroLens results)" in md
    assert "| `DMF_test` | 2 | 0.7450 ± 0.0071 | 0.7400 - 0.7500 |" in md and "| 0.6000 | cpu |" in md


@pytest.mark.parametrize("case", ["typo", "unrelated", "no_study_rows"])
def test_bad_results_file_is_exit_2_and_leaves_existing_files_unchanged(study, tmp_path, capsys, case):
    base = ["--run", str(study["cfg"]), "--out", str(study["out"]), "--no-train"]
    assert main(base + ["--results", str(study["results"])]) == 0
    before = _snapshot(study["out"])
    other = tmp_path / "other.csv"
    if case == "unrelated":
        other.write_text("name,score\nx,1\n")
    elif case == "no_study_rows":
        append_result(other, {"expid": "DIN_test", "valid_AUC": 0.5})
    capsys.readouterr()
    results = str(tmp_path / "results" / "resluts.csv") if case == "typo" else str(other)
    assert main(base + ["--results", results]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: results "), err
    assert {"typo": "no such file", "unrelated": "not a zoo results header",
            "no_study_rows": "no row of the study"}[case] in err
    assert _snapshot(study["out"]) == before, "an existing report was overwritten"


def test_damaged_line_is_reported_with_its_line_number_and_other_rows_count(study, capsys):
    lines = study["results"].read_text().splitlines(keepends=True)
    lines.insert(2, "\x00garbage,\"unterminated\n")  # line 3
    study["results"].write_text("".join(lines))
    assert main(["--run", str(study["cfg"]), "--results", str(study["results"]), "--out", str(study["out"]),
                 "--no-train"]) == 0
    assert f"warning: {study['results']}:3: cannot be parsed" in capsys.readouterr().err
    with open(study["out"].with_name("seeds.csv"), newline="") as fh:
        assert [r["n"] for r in csv.DictReader(fh)] == ["2", "2"]


# ---------------------------------------------------------------------------------------------------------------------
# End to end (slow)
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_seed_study_end_to_end(tmp_path, capsys):
    """Two expids x two seeds on tiny: every run lands once, seeds change the result, a rerun trains nothing."""
    cfg = tmp_path / "seeds.yaml"
    cfg.write_text(yaml.safe_dump({"expids": ["DIN_test", "DMF_test"], "seeds": [1, 2], "gpus": [-1, -1]}))
    argv = ["--run", str(cfg), "--output-dir", str(tmp_path), "--quiet"]
    assert main(argv) == 0, capsys.readouterr().err[-3000:]
    results = tmp_path / "results" / "results.csv"
    rows = read_results(results, required=True).rows
    assert sorted((r["expid"], r["seed"], r["overrides"]) for r in rows) == [
        ("DIN_test", "1", '{"seed": 1}'), ("DIN_test", "2", '{"seed": 2}'),
        ("DMF_test", "1", '{"seed": 1}'), ("DMF_test", "2", '{"seed": 2}')]
    with open(tmp_path / "seeds.csv", newline="") as f:
        summary = {r["expid"]: r for r in csv.DictReader(f)}
    assert set(summary) == {"DIN_test", "DMF_test"}
    for row in summary.values():
        assert (row["n"], row["seeds"], row["paired_n"], row["devices"]) == ("2", "1 2", "2", "cpu")
        assert float(row["valid_AUC_min"]) < float(row["valid_AUC_max"])  # the seed matters
    assert float(summary["DIN_test"]["diff_valid_AUC_mean"]) == 0.0
    assert (tmp_path / "seeds.png").stat().st_size > 0 and "DMF_test" in (tmp_path / "seeds.md").read_text()
    assert [p for p in tmp_path.rglob("*.yaml") if "checkpoints" not in p.parts] == [cfg], "config files generated"
    md = (tmp_path / "seeds.md").read_text()
    capsys.readouterr()
    assert main(argv) == 0
    assert "4 runs: 0 ran, 4 skipped" in capsys.readouterr().out
    assert (tmp_path / "seeds.md").read_text() == md
    assert len(read_results(results).rows) == 4  # finished runs are skipped
