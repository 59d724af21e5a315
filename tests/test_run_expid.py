"""End to end through the CLI, from another cwd: train + evaluate into run records, determinism, devices, exit 2."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from conftest import REPO_ROOT, run_cli, shared_data_args
from model_zoo.apps.results import read_results


@pytest.mark.slow
def test_train_evaluate_twice_identical_separate_records(tmp_path, work_dir):
    results = tmp_path / "results.csv"
    args = ["--expid", "DIN_test", "--output-dir", str(tmp_path), "--results", str(results),
            *shared_data_args(work_dir)]
    for _ in range(2):
        out = run_cli(args, cwd=tmp_path)
        assert out.returncode == 0, out.stderr[-3000:]
        assert "valid AUC" in out.stdout and "oracle valid AUC" in out.stdout and "cold valid AUC" in out.stdout
    first, second = read_results(results, required=True).rows
    assert first["valid_AUC"] == second["valid_AUC"], "same seed, same data must give the same valid AUC"
    assert first["test_AUC"] == second["test_AUC"]
    assert 0.5 < float(first["valid_AUC"]) <= float(first["oracle_valid_AUC"]) + 0.05
    assert first["device"] == "cpu" and first["embedding_variant"] == "dataset"
    assert first["run_dir"] != second["run_dir"], "every run gets its own record"
    for row in (first, second):
        run_dir = Path(row["run_dir"])
        assert {"model.pt", "params.yaml", "env.json", "train.log", "metrics.json", "status.json"} <= {
            p.name for p in run_dir.iterdir()}
        assert json.loads((run_dir / "status.json").read_text())["state"] == "finished"
        assert yaml.safe_load((run_dir / "params.yaml").read_text())["model"] == "DIN"
        assert json.loads((run_dir / "env.json").read_text())["device"] == "cpu"
    assert not (REPO_ROOT / "checkpoints").exists() or not any((REPO_ROOT / "checkpoints").rglob("DIN_test"))


def test_gpu_on_a_cpu_machine_exits_2(tmp_path):
    out = run_cli(["--expid", "DIN_test", "--gpu", "0", "--output-dir", str(tmp_path)], cwd=tmp_path)
    assert out.returncode == 2
    assert "--gpu 0 asks for CUDA device 0" in out.stderr and "--gpu -1" in out.stderr
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "data").exists()


@pytest.mark.slow
def test_missing_microlens_files_exit_2_nothing_created(tmp_path):
    out = run_cli(["--expid", "DIN_MicroLens", "--output-dir", str(tmp_path)], cwd=tmp_path)
    assert out.returncode == 2, out.stderr[-2000:]
    assert "train.parquet" in out.stderr and "MicroLens_1M_x1" in out.stderr
    assert "DIN_MicroLens_synth" in out.stderr            # says how to run on the synthetic world instead
    assert not (tmp_path / "results").exists() and not (tmp_path / "checkpoints").exists()
    assert not (tmp_path / "data" / "MicroLens_1M_x1").exists(), "nothing may be created half-way"


def test_unknown_expid_and_bad_value_exit_2(tmp_path):
    out = run_cli(["--expid", "DIN_tset", "--output-dir", str(tmp_path)], cwd=tmp_path)
    assert out.returncode == 2 and "did you mean 'DIN_test'" in out.stderr
    out = run_cli(["--expid", "DIN_test", "--set", "batch_size=abc", "--output-dir", str(tmp_path)], cwd=tmp_path)
    assert out.returncode == 2 and "batch_size='abc'; expected an integer >= 1" in out.stderr
    assert not any(tmp_path.iterdir()), "a config error writes nothing"


def test_list_expids(tmp_path):
    out = run_cli(["--list"], cwd=tmp_path)
    assert out.returncode == 0 and "DMF_MicroLens_synth" in out.stdout.split()
