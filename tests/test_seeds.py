"""Multi-seed comparison: golden statistics, pairing by seed, config errors, and an end-to-end study on tiny."""
from __future__ import annotations

import csv
import subprocess
import sys

import pytest
import yaml

from model_zoo.errors import ConfigError
from model_zoo.seeds import load_seed_config, summarize


def _rows(valid, test=None, oracle=0.9):
    test = test or valid
    return {seed: {"valid_AUC": str(v), "test_AUC": str(test[seed]), "model": "M", "dataset_id": "D",
                   "oracle_valid_AUC": str(oracle)} for seed, v in valid.items()}


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
    assert (a["wins_valid"], a["paired_n"]) == (2, 2)


def test_differences_use_shared_seeds_only():
    """Seed 3 ran only for A: it counts in A's mean but is not paired with the reference."""
    _, a = summarize({"R": _rows({1: 0.5, 2: 0.6}), "A": _rows({1: 0.4, 2: 0.7, 3: 0.9})}, "R")
    assert a["n"] == 3 and a["seeds"] == "1 2 3" and a["valid_AUC_mean"] == pytest.approx(2.0 / 3)
    assert a["paired_n"] == 2 and a["diff_valid_AUC_mean"] == pytest.approx(0.0) and a["wins_valid"] == 1


def test_single_seed_has_no_spread():
    (a,) = summarize({"A": _rows({7: 0.8})}, "A")
    assert a["valid_AUC_std"] is None and a["diff_valid_AUC_std"] is None


@pytest.mark.parametrize("cfg, match", [
    ({"expids": ["DIN_test"], "seed": [1, 2]}, r"unknown key 'seed' \(did you mean 'seeds'\?\)"),
    ({"expids": ["DIN_test"], "seeds": []}, r"'seeds' must be a non-empty list"),
    ({"expids": ["DIN_test"], "seeds": [1, 1]}, r"'seeds' must be distinct integers, got \[1, 1\]"),
    ({"expids": ["DIN_test"], "seeds": [1], "reference": "DMF_test"}, r"reference 'DMF_test' is not one of"),
    ({"expids": ["DIN_test"], "seeds": [1], "threads": 0}, r"'threads' must be an integer >= 1, got 0"),
])
def test_bad_seed_config(tmp_path, cfg, match):
    path = tmp_path / "seeds.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match=match):
        load_seed_config(path)


def test_unknown_expid_exits_2(tmp_path):
    path = tmp_path / "seeds.yaml"
    path.write_text(yaml.safe_dump({"expids": ["DIN_tset"], "seeds": [1]}))
    out = subprocess.run([sys.executable, "-m", "model_zoo.seeds", "--run", str(path), "--results",
                          str(tmp_path / "r.csv"), "--out", str(tmp_path / "seeds")], capture_output=True, text=True,
                         cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert "DIN_tset" in out.stderr and "did you mean 'DIN_test'" in out.stderr
    assert not (tmp_path / "seeds.md").exists()


@pytest.mark.slow
def test_seed_study_end_to_end(tiny_world, data_root, tmp_path, redirected_config):
    """Two expids x two seeds on tiny: every run lands once, seeds change the result, a rerun trains nothing."""
    config = redirected_config(tmp_path, "MicroLens_synth_tiny", ["DIN_test", "DMF_test"], data_root)
    path = tmp_path / "seeds.yaml"
    path.write_text(yaml.safe_dump({"expids": ["DIN_test", "DMF_test"], "seeds": [1, 2], "gpus": [-1],
                                    "config": str(config)}))
    cmd = [sys.executable, "-m", "model_zoo.seeds", "--run", str(path), "--results", str(tmp_path / "results.csv"),
           "--out", str(tmp_path / "seeds"), "--quiet"]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    with open(tmp_path / "seeds.csv", newline="") as f:
        summary = {r["expid"]: r for r in csv.DictReader(f)}
    assert set(summary) == {"DIN_test", "DMF_test"}
    for row in summary.values():
        assert (row["n"], row["seeds"], row["paired_n"]) == ("2", "1 2", "2")
        assert float(row["valid_AUC_min"]) < float(row["valid_AUC_max"])  # the seed matters
    assert float(summary["DIN_test"]["diff_valid_AUC_mean"]) == 0.0
    with open(tmp_path / "results.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 4
    assert (tmp_path / "seeds.png").stat().st_size > 0 and "DMF_test" in (tmp_path / "seeds.md").read_text()
    md = (tmp_path / "seeds.md").read_text()
    again = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert again.returncode == 0 and (tmp_path / "seeds.md").read_text() == md
    with open(tmp_path / "results.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 4  # finished runs are skipped
