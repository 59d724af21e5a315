"""The tuner: FuxiCTR expansion of every shipped tuner file, its traps, and 2x2 sweeps (local and Ray) end to end."""
from __future__ import annotations

import csv
import itertools
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

import pytest
import yaml

from model_zoo.config import CONFIG_DIR, REPO_ROOT, load_params, validate_params
from model_zoo.errors import ConfigError
from model_zoo.registry import get_model
from model_zoo.results import RESULT_FIELDS
from model_zoo.tuner import expand, finished_expids, list_tuner_expids, read_result_rows

TUNER_CLI = str(REPO_ROOT / "run_param_tuner.py")
TUNER_FILES = sorted((CONFIG_DIR / "tuner").glob("*.yaml"))
DATASET = "MicroLens_synth_tiny"
GRID_2X2 = {"learning_rate": [1.0e-3, 3.0e-3], "cmm_mode": ["concat", "gate"]}


def tiny_dataset_block(data_root: Path) -> Dict[str, Any]:
    """The tiny world's dataset block with every file under ``data_root`` (tests never write into the repo)."""
    block = dict(yaml.safe_load((CONFIG_DIR / "dataset_config.yaml").read_text())[DATASET], data_root=str(data_root))
    for key in ("train_data", "valid_data", "test_data", "item_info", "item_feature"):
        block[key] = str(data_root / DATASET / Path(block[key]).name)
    return block


def write_tuner_file(path: Path, data_root: Path, model_root: Path, space: Dict[str, Any]) -> Path:
    """A DMF_test tuner file: base_config = the model folder, the dataset inline, checkpoints under ``model_root``."""
    cfg = {"base_config": "model_zoo/DMF/", "base_expid": "DMF_test", "dataset_id": DATASET,
           "dataset_config": {DATASET: tiny_dataset_block(data_root)},
           "tuner_space": {"model_root": str(model_root), **space}}
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def run_tuner(args: List[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, TUNER_CLI] + args, cwd=cwd, capture_output=True, text=True, timeout=600)


def _grid_size(tuner_file: Path) -> int:
    space = yaml.safe_load(tuner_file.read_text())["tuner_space"]
    return len(list(itertools.product(*[v if isinstance(v, list) else [v] for v in space.values()])))


# ---------------------------------------------------------------------------------------------------------------
# Expansion (fast)
# ---------------------------------------------------------------------------------------------------------------
def test_tuner_files_shipped_for_every_model():
    from model_zoo.registry import list_models
    names = {p.stem for p in TUNER_FILES}
    for model in list_models():
        for suffix in ("_synth_tiny_2x2", "_synth_small", "_microlens_1m_x1"):
            assert f"{model.lower()}{suffix}" in names, f"config/tuner/{model.lower()}{suffix}.yaml is missing"


@pytest.mark.parametrize("tuner_file", TUNER_FILES, ids=lambda p: p.stem)
def test_every_tuner_file_expands_into_a_runner_config_dir(tuner_file, tmp_path):
    config_dir = expand(tuner_file, tmp_path)
    assert config_dir == tmp_path / tuner_file.stem
    expids = list_tuner_expids(config_dir)
    assert len(expids) == len(set(expids)) == _grid_size(tuner_file)
    datasets = yaml.safe_load((config_dir / "dataset_config.yaml").read_text())
    assert all("dataset_id" not in block for block in datasets.values()), "FuxiCTR trap: carried dataset_id"
    base_expid = yaml.safe_load(tuner_file.read_text())["base_expid"]
    assert all(expid.startswith(base_expid + "_") for expid in expids)
    params = load_params(expids[-1], config_dir)        # what run_expid.py --config <dir> resolves
    validate_params(params, get_model(params["model"]))
    assert params["model_id"] == expids[-1] and params["dataset_id"] in datasets
    if "_2x2" in tuner_file.stem:
        assert len(expids) == 4 and yaml.safe_load(tuner_file.read_text())["dataset_id"] == DATASET


def test_published_din_search_space():
    space = yaml.safe_load((CONFIG_DIR / "tuner" / "din_microlens_1m_x1.yaml").read_text())["tuner_space"]
    assert space == {"embedding_regularizer": [1e-6, 1e-7], "net_regularizer": 0, "net_dropout": 0.1,
                     "learning_rate": 1e-3, "batch_size": 8192}


def test_key_absent_from_base_block_is_tunable_and_typo_fails(tmp_path, data_root):
    ok = write_tuner_file(tmp_path / "ok.yaml", data_root, tmp_path / "ckpt",
                          {"embedding_regularizer": [0, 1.0e-6]})           # a DMF key DMF_test leaves at default
    config_dir = expand(ok, tmp_path / "work")
    values = sorted(load_params(e, config_dir)["embedding_regularizer"] for e in list_tuner_expids(config_dir))
    assert values == [0, 1e-6]
    typo = write_tuner_file(tmp_path / "typo.yaml", data_root, tmp_path / "ckpt", {"learning_rat": [1e-3, 2e-3]})
    with pytest.raises(ConfigError, match=r"'learning_rat' \(did you mean 'learning_rate'\?\)"):
        expand(typo, tmp_path / "work")


def test_expid_hash_has_no_anagram_collisions(tmp_path, data_root):
    # FuxiCTR hashes the sorted characters of the params JSON: (lr 0.003, num_heads 1) and (lr 0.001, num_heads 3)
    # at the same grid index would get the same expid, and a finished one would skip the other.
    a = write_tuner_file(tmp_path / "a.yaml", data_root, tmp_path / "ckpt",
                         {"num_heads": 1, "learning_rate": [1.0e-3, 3.0e-3]})
    b = write_tuner_file(tmp_path / "b.yaml", data_root, tmp_path / "ckpt",
                         {"num_heads": [1, 3], "learning_rate": 1.0e-3})
    expids_a = list_tuner_expids(expand(a, tmp_path / "work"))
    expids_b = list_tuner_expids(expand(b, tmp_path / "work"))
    assert expids_a[0] == expids_b[0], "the shared grid point keeps one name (so a rerun skips it)"
    assert expids_a[1] != expids_b[1] and expids_a[1][:-8] == expids_b[1][:-8]


def test_dataset_grid_on_pre_encoded_data_is_refused(tmp_path, data_root):
    bad = write_tuner_file(tmp_path / "ds.yaml", data_root, tmp_path / "ckpt",
                           {"synthetic": [{"preset": "tiny", "seed": 1}, {"preset": "tiny", "seed": 2}]})
    with pytest.raises(ConfigError, match="share one data dir"):
        expand(bad, tmp_path / "work")


def test_unknown_tuner_key_and_expid(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump({"base_expid": "DMF_test", "tuner_spac": {"learning_rate": 1e-3}}))
    with pytest.raises(ConfigError, match=r"'tuner_spac' \(did you mean 'tuner_space'\?\)"):
        expand(path, tmp_path / "work")
    path.write_text(yaml.safe_dump({"base_config": "model_zoo/DMF/", "base_expid": "DMF_tset",
                                    "tuner_space": {"learning_rate": 1e-3}}))
    with pytest.raises(ConfigError, match=r"did you mean 'DMF_test'"):
        expand(path, tmp_path / "work")


def test_result_rows_tolerate_an_older_header(tmp_path):
    path = tmp_path / "r.csv"
    old_header = [f for f in RESULT_FIELDS if f != "embedding_variant"]
    row = {f: "" for f in RESULT_FIELDS}
    row.update(expid="A", valid_AUC="0.7", embedding_variant="V4")
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(old_header)
        writer.writerow([{**row, "expid": "B", "valid_AUC": "0.6"}[f] for f in old_header])  # old-style row
        writer.writerow([row[f] for f in RESULT_FIELDS])                                      # appended later
    rows = read_result_rows(path)
    assert [(r["expid"], r["valid_AUC"]) for r in rows] == [("B", "0.6"), ("A", "0.7")]
    assert rows[1]["embedding_variant"] == "V4"
    assert finished_expids(path) == {"A", "B"}


# ---------------------------------------------------------------------------------------------------------------
# Sweeps end to end (slow)
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory, data_root, tiny_world):
    """The 2x2 DMF sweep on the tiny world with two CPU workers, through the CLI from another cwd."""
    tmp = tmp_path_factory.mktemp("sweep")
    tuner = write_tuner_file(tmp / "dmf_tiny_2x2.yaml", data_root, tmp / "ckpt", GRID_2X2)
    results = tmp / "results" / "results.csv"
    started = time.perf_counter()
    out = run_tuner(["--config", str(tuner), "--gpu", "-1", "-1", "--results", str(results)], cwd=tmp)
    seconds = time.perf_counter() - started
    return {"tmp": tmp, "tuner": tuner, "results": results, "out": out, "seconds": seconds}


@pytest.mark.slow
def test_sweep_2x2_runs_four_expids_then_rerun_skips_them(local_sweep):
    out, results = local_sweep["out"], local_sweep["results"]
    assert out.returncode == 0, out.stderr[-3000:]
    rows = read_result_rows(results)
    expids = [r["expid"] for r in rows]
    assert len(rows) == 4 and len(set(expids)) == 4, expids
    assert all(e.startswith("DMF_test_00") for e in expids)
    assert all(0.5 < float(r["valid_AUC"]) < 1.0 and r["dataset_id"] == DATASET for r in rows)
    assert {float(r["oracle_valid_AUC"]) for r in rows}.__len__() == 1
    assert "4 run, 0 skipped" in out.stdout and "best valid AUC" in out.stdout
    config_dir = results.parent / "tuner" / "dmf_tiny_2x2"
    assert sorted(expids) == list_tuner_expids(config_dir)
    assert all((config_dir / "logs" / f"{e}.stderr").is_file() for e in expids)
    assert all((local_sweep["tmp"] / "ckpt" / DATASET / f"{e}.model").is_file() for e in expids)
    print(f"local 2x2 sweep (CLI, --gpu -1 -1): {local_sweep['seconds']:.1f} s")

    rerun = run_tuner(["--config", str(local_sweep["tuner"]), "--gpu", "-1", "-1", "--results", str(results)],
                      cwd=local_sweep["tmp"])
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "0 run, 4 skipped" in rerun.stdout
    assert len(read_result_rows(results)) == 4


@pytest.mark.slow
def test_broken_expid_makes_the_sweep_fail_and_names_it(local_sweep, data_root):
    # Same base point as the 2x2 grid's first expid (so that one is skipped: it is already in the results CSV),
    # plus num_heads=3, which does not divide attention_dim=8: the model constructor raises.
    tmp, results = local_sweep["tmp"], local_sweep["results"]
    tuner = write_tuner_file(tmp / "dmf_tiny_broken.yaml", data_root, tmp / "ckpt",
                             {"learning_rate": 1.0e-3, "cmm_mode": "concat", "num_heads": [1, 3]})
    out = run_tuner(["--config", str(tuner), "--gpu", "-1", "-1", "--results", str(results), "--quiet"], cwd=tmp)
    assert out.returncode == 1, (out.returncode, out.stdout[-2000:], out.stderr[-3000:])
    config_dir = results.parent / "tuner" / "dmf_tiny_broken"
    good, broken = list_tuner_expids(config_dir)
    assert good in finished_expids(results), "the unbroken point equals the 2x2 grid's first expid"
    assert "0 failed" not in out.stderr and "1 run, 1 skipped" in out.stderr and "1 failed" in out.stderr
    assert f"FAILED {broken}: exit code 1" in out.stderr
    assert "num_heads=3" in out.stderr                                # the stderr tail shows the cause
    assert str(config_dir / "logs" / f"{broken}.stderr") in out.stderr  # and where the whole log is
    assert broken not in finished_expids(results)


@pytest.mark.slow
def test_ray_backend_gives_the_same_rows(local_sweep, tmp_path):
    ray = pytest.importorskip("ray")
    from model_zoo.tuner import init_local_ray, sweep

    assert local_sweep["out"].returncode == 0, local_sweep["out"].stderr[-3000:]
    started = time.perf_counter()
    init_local_ray(num_cpus=2, object_store_mb=256)       # bounded: 2 CPUs, 256 MB store, no dashboard
    startup = time.perf_counter() - started
    try:
        results = tmp_path / "ray_results.csv"
        report = sweep(local_sweep["tuner"], [-1, -1], results=results, backend="ray", workdir=tmp_path / "work",
                       progress=False)
    finally:
        ray.shutdown()
    total = time.perf_counter() - started
    assert report.exit_code == 0, report.text()
    local_rows = {r["expid"]: r for r in read_result_rows(local_sweep["results"])}
    ray_rows = {r["expid"]: r for r in read_result_rows(results)}
    assert set(ray_rows) == set(local_rows) and len(ray_rows) == 4
    for expid, row in ray_rows.items():  # same numbers, whatever order the runs finished in
        for key in ("valid_AUC", "valid_logloss", "test_AUC", "num_params"):
            assert row[key] == local_rows[expid][key], (expid, key)
    print(f"ray 2x2 sweep: start-up {startup:.1f} s, total {total:.1f} s (local CLI {local_sweep['seconds']:.1f} s)")
