"""End to end through the CLI, from a different cwd: train + evaluate, determinism, exit code 2 on missing data."""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest
import yaml

from model_zoo.config import REPO_ROOT, CONFIG_DIR

RUNNER = str(REPO_ROOT / "run_expid.py")


def run_cli(args: List[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, RUNNER] + args, cwd=cwd, capture_output=True, text=True, timeout=600)


def rows(path: Path) -> List[Dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.slow
def test_train_evaluate_from_other_cwd_twice_identical(tmp_path, redirected_config):
    cfg = redirected_config(tmp_path, "MicroLens_synth_tiny", ["DIN_test"])
    results = tmp_path / "results.csv"
    for _ in range(2):
        out = run_cli(["--config", str(cfg), "--expid", "DIN_test", "--results", str(results)], cwd=tmp_path)
        assert out.returncode == 0, out.stderr[-3000:]
        assert "valid AUC" in out.stdout and "oracle valid AUC" in out.stdout
    first, second = rows(results)
    assert first["valid_AUC"] == second["valid_AUC"], "same seed, same data must give the same valid AUC"
    assert first["test_AUC"] == second["test_AUC"]
    assert 0.5 < float(first["valid_AUC"]) <= float(first["oracle_valid_AUC"]) + 0.05
    ckpt = tmp_path / "ckpt" / "MicroLens_synth_tiny"
    assert (ckpt / "DIN_test.model").is_file() and (ckpt / "DIN_test.log").is_file()
    assert yaml.safe_load((ckpt / "DIN_test.params.yaml").read_text())["model"] == "DIN"


@pytest.mark.slow
def test_missing_microlens_files_exit_2(tmp_path, redirected_config):
    cfg = redirected_config(tmp_path, "MicroLens_1M_x1", ["DIN_MicroLens"])
    out = run_cli(["--config", str(cfg), "--expid", "DIN_MicroLens", "--results", str(tmp_path / "r.csv")], cwd=tmp_path)
    assert out.returncode == 2, out.stderr[-2000:]
    assert "train.parquet" in out.stderr and "MicroLens_1M_x1" in out.stderr
    assert "DIN_MicroLens_synth" in out.stderr            # says how to run on the synthetic world instead
    assert not (tmp_path / "r.csv").exists()
    assert not (tmp_path / "data" / "MicroLens_1M_x1").exists(), "nothing may be created half-way"


def test_unknown_expid_exit_2(tmp_path):
    out = run_cli(["--expid", "DIN_tset"], cwd=tmp_path)
    assert out.returncode == 2
    assert "did you mean 'DIN_test'" in out.stderr
