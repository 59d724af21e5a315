"""The tuner: expansion of every shipped tuner file and its traps, resume and stop logic, and sweeps end to end
(local pool with SIGTERM and resume, a failing expid, the Ray backend) on the tiny world under tmp dirs."""
from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

import pytest
import yaml

from model_zoo.apps.results import RESULT_FIELDS, append_result, read_results
from model_zoo.apps.run_record import RunRecord
from model_zoo.apps.tuner import expand, list_tuner_expids, main
from model_zoo.apps.tuner import run as tuner_run
from model_zoo.apps.tuner.run import Job, finished_runs, plan_jobs, run_jobs
from model_zoo.config import CONFIG_DIR, PATH_KEYS
from model_zoo.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
TUNER_FILES = sorted((CONFIG_DIR / "tuner").glob("*.yaml"))
DATASET = "MicroLens_synth_tiny"


def write_tuner_file(path: Path, space: Dict[str, Any], **extra: Any) -> Path:
    """A user tuner file varying DMF_test (base_config: the zoo's DMF folder)."""
    cfg = {"base_config": "model_zoo/DMF/", "base_expid": "DMF_test", "dataset_id": DATASET, **extra,
           "tuner_space": space}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def _grid_size(tuner_file: Path) -> int:
    space = yaml.safe_load(tuner_file.read_text())["tuner_space"]
    return len(list(itertools.product(*[v if isinstance(v, list) else [v] for v in space.values()])))


def _without_files(dataset_id: str) -> Dict[str, Any]:
    """The zoo's block of ``dataset_id`` without file keys (a synthetic world's files follow its data_root)."""
    block = yaml.safe_load((CONFIG_DIR / "dataset_config.yaml").read_text())[dataset_id]
    return {k: v for k, v in block.items() if k not in PATH_KEYS or k == "data_root"}


def _blocks(config_dir: Path, name: str) -> Dict[str, Dict[str, Any]]:
    return yaml.safe_load((config_dir / name).read_text())


# ---------------------------------------------------------------------------------------------------------------------
# Expansion (fast)
# ---------------------------------------------------------------------------------------------------------------------
def test_tuner_files_shipped_for_every_model():
    from model_zoo.registry import list_models
    names = {p.stem for p in TUNER_FILES}
    for model in list_models():
        for suffix in ("_synth_tiny_2x2", "_synth_small", "_microlens_1m_x1"):
            assert f"{model.lower()}{suffix}" in names, f"config/tuner/{model.lower()}{suffix}.yaml is missing"


@pytest.mark.parametrize("tuner_file", TUNER_FILES, ids=lambda p: p.stem)
def test_every_tuner_file_expands_into_a_runner_config_dir(tuner_file, tmp_path):
    expansion = expand(f"config/tuner/{tuner_file.name}", tmp_path)  # the shipped file, found from any cwd
    config_dir = expansion.config_dir
    assert config_dir == tmp_path / "tuner" / tuner_file.stem
    expids = list_tuner_expids(config_dir)
    assert expids == expansion.expids and len(expids) == len(set(expids)) == _grid_size(tuner_file)
    base_expid = yaml.safe_load(tuner_file.read_text())["base_expid"]
    assert all(expid.startswith(base_expid + "_") for expid in expids)
    datasets, models = _blocks(config_dir, "dataset_config.yaml"), _blocks(config_dir, "model_config.yaml")
    assert len(datasets) == 1 and all("dataset_id" not in block for block in datasets.values()), \
        "FuxiCTR trap: a carried dataset_id overwrites the hashed one"
    for block in list(models.values()) + list(datasets.values()):
        assert not {"model_id", "gpu", "debug_mode"} & set(block), sorted(block)
        for key in PATH_KEYS:
            if key in block:
                assert Path(block[key]).is_absolute() and Path(block[key]).is_relative_to(tmp_path), (key, block[key])
    # Every expid passes the runner's own checks (keys and values), before anything would run.
    planned = plan_jobs([Job(e) for e in expids], str(config_dir), tmp_path)
    assert [p.params["model_id"] for p in planned] == expids
    assert all(p.params["model_root"] == str(tmp_path / "checkpoints") for p in planned)
    if "_2x2" in tuner_file.stem:
        assert len(expids) == 4 and {p.params["dataset_id"] for p in planned} == {DATASET}


def test_published_din_search_space():
    space = yaml.safe_load((CONFIG_DIR / "tuner" / "din_microlens_1m_x1.yaml").read_text())["tuner_space"]
    assert space == {"embedding_regularizer": [1e-6, 1e-7], "net_regularizer": 0, "net_dropout": 0.1,
                     "learning_rate": 1e-3, "batch_size": 8192}


def test_key_absent_from_base_block_is_tunable_and_paths_are_relative_to_the_user_file(tmp_path):
    tuner = write_tuner_file(tmp_path / "sweeps" / "ok.yaml",
                             {"embedding_regularizer": [0, 1.0e-6], "model_root": "./ckpt"},  # not in DMF_test
                             dataset_config={DATASET: _without_files(DATASET)})
    expansion = expand(tuner, tmp_path / "work")
    blocks = _blocks(expansion.config_dir, "model_config.yaml")
    assert sorted(b["embedding_regularizer"] for b in blocks.values()) == [0, 1e-6]
    assert {b["model_root"] for b in blocks.values()} == {str(tmp_path / "sweeps" / "ckpt")}
    # The inline dataset block is a user block: its ./data/ is relative to the tuner file's folder.
    (dataset,) = _blocks(expansion.config_dir, "dataset_config.yaml").values()
    assert dataset["data_root"] == str(tmp_path / "sweeps" / "data")


def test_user_base_config_dir_with_its_own_base_block(tmp_path):
    """A FuxiCTR-style base_config dir: its Base sits on ours, its relative paths are relative to itself."""
    user = tmp_path / "my_config"
    user.mkdir()
    dmf_test = yaml.safe_load((CONFIG_DIR.parent / "model_zoo" / "DMF" / "model_config.yaml").read_text())["DMF_test"]
    (user / "model_config.yaml").write_text(yaml.safe_dump({
        "Base": {"model_root": "./ckpt/", "early_stop_patience": 1},
        "MyDMF": dict(dmf_test, dataset_id="my_tiny")}))
    (user / "dataset_config.yaml").write_text(yaml.safe_dump({"my_tiny": _without_files(DATASET)}))
    tuner = tmp_path / "t.yaml"
    tuner.write_text(yaml.safe_dump({"base_config": str(user), "base_expid": "MyDMF",
                                     "tuner_space": {"learning_rate": [1e-3, 2e-3]}}))
    expansion = expand(tuner, tmp_path / "work")
    blocks = _blocks(expansion.config_dir, "model_config.yaml")
    assert [e.split("_")[:2] for e in blocks] == [["MyDMF", "001"], ["MyDMF", "002"]]
    for block in blocks.values():
        assert block["model_root"] == str(user / "ckpt") and block["early_stop_patience"] == 1
        assert block["optimizer"] == "adam"                                    # from our Base
    (dataset,) = _blocks(expansion.config_dir, "dataset_config.yaml").values()
    assert dataset["data_root"] == str(user / "data")


def test_misspelt_tuner_key_fails_with_did_you_mean_before_anything_runs(tmp_path, capsys):
    typo = write_tuner_file(tmp_path / "typo.yaml", {"learning_rat": [1e-3, 2e-3], "cmm_mod": "gate"})
    with pytest.raises(ConfigError, match=r"'learning_rat' \(did you mean 'learning_rate'\?\).*"
                                          r"'cmm_mod' \(did you mean 'cmm_mode'\?\)"):
        expand(typo, tmp_path / "work")
    assert main(["--config", str(typo), "--gpu", "-1", "--output-dir", str(tmp_path / "cli"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "did you mean 'learning_rate'" in err
    assert not (tmp_path / "cli" / "results").exists() and not (tmp_path / "cli" / "checkpoints").exists()
    assert not (tmp_path / "cli" / "tuner" / "typo").exists(), "nothing expanded either"


def test_bad_value_in_one_grid_point_fails_before_anything_runs(tmp_path, capsys):
    bad = write_tuner_file(tmp_path / "bad.yaml", {"cmm_mode": ["concat", "avg"]})
    assert main(["--config", str(bad), "--output-dir", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "1 of 2 run(s) cannot start; nothing was run" in err and "cmm_mode='avg'" in err
    assert not (tmp_path / "results").exists() and not (tmp_path / "data").exists()


def test_expid_hash_has_no_anagram_collisions(tmp_path):
    # FuxiCTR hashes the sorted characters of the params JSON: (lr 0.003, num_heads 1) and (lr 0.001, num_heads 3)
    # at the same grid index would get the same expid, and a finished one would skip the other.
    a = write_tuner_file(tmp_path / "a.yaml", {"num_heads": 1, "learning_rate": [1.0e-3, 3.0e-3]})
    b = write_tuner_file(tmp_path / "b.yaml", {"num_heads": [1, 3], "learning_rate": 1.0e-3})
    expids_a = expand(a, tmp_path).expids
    expids_b = expand(b, tmp_path).expids
    assert expids_a[0] == expids_b[0], "the shared grid point keeps one name (so a rerun skips it)"
    assert expids_a[1] != expids_b[1] and expids_a[1][:-8] == expids_b[1][:-8]


def test_dataset_grid_on_pre_encoded_data_is_refused(tmp_path):
    bad = write_tuner_file(tmp_path / "ds.yaml", {"synthetic": [{"preset": "tiny", "seed": 1},
                                                                {"preset": "tiny", "seed": 2}]})
    with pytest.raises(ConfigError, match="share one data dir"):
        expand(bad, tmp_path)


def test_unknown_tuner_file_key_expid_and_file(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump({"base_expid": "DMF_test", "tuner_spac": {"learning_rate": 1e-3}}))
    with pytest.raises(ConfigError, match=r"'tuner_spac' \(did you mean 'tuner_space'\?\)"):
        expand(path, tmp_path)
    path.write_text(yaml.safe_dump({"base_config": "model_zoo/DMF/", "base_expid": "DMF_tset",
                                    "tuner_space": {"learning_rate": 1e-3}}))
    with pytest.raises(ConfigError, match=r"did you mean 'DMF_test'"):
        expand(path, tmp_path)
    with pytest.raises(ConfigError, match=r"config/tuner/dmf_synth_tiny_2x3.yaml: not found \(did you mean "
                                          r"'dmf_synth_tiny_2x2'\?\)"):
        expand("config/tuner/dmf_synth_tiny_2x3.yaml", tmp_path)


# ---------------------------------------------------------------------------------------------------------------------
# Resume and stop logic (fast)
# ---------------------------------------------------------------------------------------------------------------------
def _run_dir(root: Path, name: str, state: str | None) -> Path:
    run_dir = root / name
    run_dir.mkdir(parents=True)
    if state:
        RunRecord(run_dir).set_status(state)
    return run_dir


def test_finished_means_a_row_whose_run_dir_says_finished_and_damaged_lines_are_reported(tmp_path):
    results = tmp_path / "results.csv"
    append_result(results, {"expid": "A", "valid_AUC": 0.7, "run_dir": _run_dir(tmp_path, "a", "finished")})
    with open(results, "a", encoding="utf-8") as fh:  # line 3: a write cut off inside a quoted value
        fh.write('20260101-000000,"B,DMF\n')
    append_result(results, {"expid": "B", "valid_AUC": 0.6, "run_dir": _run_dir(tmp_path, "b", "failed")})
    append_result(results, {"expid": "C", "valid_AUC": 0.6})                               # no run record
    append_result(results, {"expid": "D", "valid_AUC": 0.6, "overrides": {"seed": 1},
                            "run_dir": _run_dir(tmp_path, "d", "finished")})
    append_result(results, {"expid": "E", "valid_AUC": 0.6, "run_dir": _run_dir(tmp_path, "e", None)})
    done, warnings = finished_runs(results)
    assert set(done) == {Job("A").key, Job.of("D", {"seed": 1}).key}
    assert Job("D").key not in done, "a run with overrides is not the plain expid"
    assert len(warnings) == 1 and warnings[0].startswith(f"{results}:3: ")
    assert finished_runs(tmp_path / "missing.csv") == ({}, [])


def test_job_overrides_label_and_runner_arguments():
    job = Job.of("DIN_test", {"seed": 3, "embedding_variant": "V4"})
    assert job.label == 'DIN_test[embedding_variant="V4",seed=3]'
    assert job.set_args() == ["--set", 'embedding_variant="V4"', "--set", "seed=3"]
    from model_zoo.config import parse_overrides
    assert parse_overrides(job.set_args()[1::2]) == {"embedding_variant": "V4", "seed": 3}


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def test_stop_signals_each_child_process_group(tmp_path):
    """A child and the grandchild it started (same group) are both gone after stop(SIGTERM)."""
    children = tuner_run._Children()
    script = "import subprocess, time; p = subprocess.Popen(['sleep', '60']); print(p.pid, flush=True); time.sleep(60)"
    proc = children.spawn("sleeper", [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                          start_new_session=True)
    grandchild = int(proc.stdout.readline())
    assert _alive(proc.pid) and _alive(grandchild) and os.getpgid(grandchild) == proc.pid
    started = time.monotonic()
    assert children.stop(signal.SIGTERM) == ["sleeper"]
    assert proc.returncode == -signal.SIGTERM and time.monotonic() - started < 10
    deadline = time.monotonic() + 10
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild)
    assert children.spawn("late", [sys.executable, "-c", "pass"]) is None, "no new child after stop"


def test_children_run_the_runner_module_and_a_silent_exit_0_fails(tmp_path, monkeypatch):
    calls: List[List[str]] = []

    def fake_child(argv, env_updates, stdout_path, stderr_path, spawn=None):
        calls.append(argv)
        Path(stdout_path).write_text("")
        Path(stderr_path).write_text("")
        return {"returncode": 0, "pid": 12345, "seconds": 0.1}

    monkeypatch.setattr(tuner_run, "run_child", fake_child)
    monkeypatch.setattr(tuner_run, "prepare_datasets", lambda *a, **k: 0)
    report = run_jobs([Job.of("DIN_test", {"seed": 2})], gpus=[-1], output_dir=tmp_path, progress=False)
    (argv,) = calls
    assert argv[:4] == ["-m", "model_zoo.apps.runner", "--expid", "DIN_test"]
    assert argv[argv.index("--output-dir") + 1] == str(tmp_path)
    assert argv[argv.index("--results") + 1] == str(tmp_path / "results" / "results.csv")
    assert argv[-4:] == ["--set", "seed=2", "--gpu", "-1"]
    assert report.exit_code == 1 and "exit code 0 but no result row" in report.failed[0].error
    assert "FAILED DIN_test[seed=2]: exit code 0 but no result row" in report.text()


def test_ctrl_c_during_the_runs_is_one_line_and_exit_130(tmp_path, monkeypatch, capsys):
    def interrupted(launches, gpus, env_updates, on_done):
        exc = KeyboardInterrupt()
        exc.stopped = [launches[0][0].job.label]  # what _run_local reports after stopping the children
        raise exc

    monkeypatch.setattr(tuner_run, "_run_local", interrupted)
    monkeypatch.setattr(tuner_run, "prepare_datasets", lambda *a, **k: 0)
    tuner = write_tuner_file(tmp_path / "t.yaml", {"learning_rate": 1e-3})
    assert main(["--config", str(tuner), "--output-dir", str(tmp_path), "--quiet"]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("interrupted: sweep t stopped by SIGINT (Ctrl-C); 1 running run(s) "
                                               "stopped (DMF_test_001_"), err


def test_run_child_uses_this_interpreter_in_its_own_session(tmp_path):
    script = "import os, sys; print(sys.executable, os.getsid(0) == os.getpid(), os.environ['OMP_NUM_THREADS'])"
    res = tuner_run.run_child(["-c", script], {"OMP_NUM_THREADS": "3"}, str(tmp_path / "o"), str(tmp_path / "e"))
    assert res["returncode"] == 0
    assert (tmp_path / "o").read_text().split() == [sys.executable, "True", "3"]


# ---------------------------------------------------------------------------------------------------------------------
# Sweeps end to end (slow): the shipped 2x2 DMF grid on the tiny world, outputs under a tmp work dir
# ---------------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("sweep")


def _tuner_cli(work: Path) -> List[str]:
    return [sys.executable, "-m", "model_zoo.apps.tuner", "--config", "config/tuner/dmf_synth_tiny_2x2.yaml",
            "--gpu", "-1", "-1", "--output-dir", str(work), "--quiet"]


def _env() -> Dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _children_of(pid: int) -> List[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _runners_in(work: Path) -> List[int]:
    """Live runner processes writing into ``work`` (whoever their parent is now)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"model_zoo.apps.runner" in args and str(work).encode() in args and _alive(int(cmdline.parent.name)):
            found.append(int(cmdline.parent.name))
    return found


@pytest.fixture(scope="module")
def interrupted_then_resumed(work) -> Dict[str, Any]:
    """SIGTERM to a running 2x2 sweep (after its first row), then the same command twice."""
    results = work / "results" / "results.csv"
    proc = subprocess.Popen(_tuner_cli(work), cwd=work, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 600
    while not (results.is_file() and read_results(results).rows) and proc.poll() is None:
        assert time.monotonic() < deadline, "no result row within 600 s"
        time.sleep(0.2)
    children = _children_of(proc.pid)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    state = {"returncode": proc.returncode, "stderr": stderr, "children": children,
             "runners_left": _runners_in(work), "rows_after_stop": read_results(results).rows,
             "finished_after_stop": set(finished_runs(results)[0])}
    started = time.perf_counter()
    state["resume"] = subprocess.run(_tuner_cli(work), cwd=work, env=_env(), capture_output=True, text=True,
                                     timeout=900)
    state["resume_seconds"] = time.perf_counter() - started
    state["rows_after_resume"] = read_results(results).rows
    state["again"] = subprocess.run(_tuner_cli(work), cwd=work, env=_env(), capture_output=True, text=True,
                                    timeout=300)
    state["rows_after_again"] = read_results(results).rows
    return state


@pytest.mark.slow
def test_sigterm_stops_every_child_and_exits_143(interrupted_then_resumed):
    state = interrupted_then_resumed
    assert state["returncode"] == 143, state["stderr"][-3000:]
    assert state["children"], "the sweep had running children when it was signalled"
    lines = [line for line in state["stderr"].splitlines() if line.startswith("interrupted:")]
    assert len(lines) == 1 and "sweep dmf_synth_tiny_2x2 stopped by SIGTERM" in lines[0], state["stderr"][-2000:]
    assert not [pid for pid in state["children"] if _alive(pid)], "a child outlived the sweep"
    assert state["runners_left"] == [], "a runner process is still writing into the work dir"
    assert 1 <= len(state["rows_after_stop"]) < 4


@pytest.mark.slow
def test_rerun_skips_finished_expids_and_adds_no_duplicate_rows(interrupted_then_resumed, work):
    state = interrupted_then_resumed
    resume = state["resume"]
    assert resume.returncode == 0, resume.stderr[-3000:]
    skipped = len(state["finished_after_stop"])
    assert f"4 runs: {4 - skipped} ran, {skipped} skipped" in resume.stdout, resume.stdout
    rows = state["rows_after_resume"]
    expids = [r["expid"] for r in rows]
    assert len(rows) == 4 and len(set(expids)) == 4, expids
    config_dir = work / "tuner" / "dmf_synth_tiny_2x2"
    assert sorted(expids) == list_tuner_expids(config_dir)
    assert all(0.5 < float(r["valid_AUC"]) < 1.0 and r["dataset_id"] == DATASET for r in rows)
    assert len({r["oracle_valid_AUC"] for r in rows}) == 1 and all(r["device"] == "cpu" for r in rows)
    assert all(RunRecord(Path(r["run_dir"])).status()["state"] == "finished" for r in rows)
    assert all(Path(r["run_dir"]).is_relative_to(work / "checkpoints" / DATASET) for r in rows)
    assert all((config_dir / "logs" / f"{e}.stderr").is_file() for e in expids)
    assert "best valid AUC" in resume.stdout
    again = state["again"]
    assert again.returncode == 0 and "4 runs: 0 ran, 4 skipped" in again.stdout, again.stdout + again.stderr
    assert state["rows_after_again"] == rows
    print(f"resumed 2x2 sweep ({4 - skipped} runs, --gpu -1 -1): {state['resume_seconds']:.1f} s")


def test_a_grid_point_the_model_refuses_stops_the_sweep_before_any_run(tmp_path, capsys):
    # num_heads=3 does not divide attention_dim=8: every point is validated before the first run starts.
    tuner = write_tuner_file(tmp_path / "dmf_tiny_heads.yaml", {"num_heads": [1, 3]})
    assert main(["--config", str(tuner), "--gpu", "-1", "-1", "--output-dir", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "1 of 2 run(s) cannot start; nothing was run" in err, err
    assert "num_heads=3 must divide attention_dim=8" in err and "dmf_tiny_heads/model_config.yaml (block " in err
    assert not (tmp_path / "results").exists() and not (tmp_path / "checkpoints").exists()


@pytest.mark.slow
def test_failed_expid_makes_the_sweep_fail_and_names_its_files(interrupted_then_resumed, work, capsys):
    # learning_rate=1e30 passes validation and diverges in the first batches: the run fails at run time.
    tuner = write_tuner_file(work / "dmf_tiny_lr.yaml", {"learning_rate": [1.e-3, 1.e30]})
    assert main(["--config", str(tuner), "--gpu", "-1", "-1", "--output-dir", str(work), "--quiet"]) == 1
    err = capsys.readouterr().err
    good, broken = list_tuner_expids(work / "tuner" / "dmf_tiny_lr")
    assert re.search(rf"FAILED {broken}: exit code 1 \(run status: failed\)", err), err[-3000:]
    assert "2 runs: 1 ran, 1 skipped" in err  # learning_rate=1e-3 is the 2x2 grid's first point: same expid, finished
    train_log = err.split("train.log: ")[1].split()[0]
    assert Path(train_log).is_file() and broken in train_log
    assert f"stderr:    {work / 'tuner' / 'dmf_tiny_lr' / 'logs' / broken}.stderr" in err
    assert "training diverged: predictions are NaN" in err              # the stderr tail shows the cause
    assert err.rstrip().splitlines()[-1] == f"failed: {broken}"
    done, _ = finished_runs(work / "results" / "results.csv")
    assert Job(good).key in done and Job(broken).key not in done


@pytest.mark.slow
def test_ray_backend_gives_the_same_rows(interrupted_then_resumed, work, tmp_path):
    ray = pytest.importorskip("ray")
    local = {r["expid"]: r for r in interrupted_then_resumed["rows_after_resume"]}
    started = time.perf_counter()
    tuner_run.init_local_ray(num_cpus=2, object_store_mb=256)  # bounded: 2 CPUs, 256 MB store, no dashboard
    startup = time.perf_counter() - started
    try:
        report = run_jobs([Job(e) for e in sorted(local)], config_dir=work / "tuner" / "dmf_synth_tiny_2x2",
                          gpus=[-1, -1], output_dir=work, results=tmp_path / "ray.csv", backend="ray",
                          log_dir=tmp_path / "logs", progress=False)
    finally:
        ray.shutdown()
    assert report.exit_code == 0, report.text()
    rows = {r["expid"]: r for r in read_results(tmp_path / "ray.csv").rows}
    assert set(rows) == set(local) and len(rows) == 4
    for expid, row in rows.items():  # same numbers, whatever order the runs finished in
        for key in ("valid_AUC", "valid_logloss", "test_AUC", "num_params"):
            assert row[key] == local[expid][key], (expid, key)
    print(f"ray 2x2 sweep: start-up {startup:.1f} s, total {time.perf_counter() - started:.1f} s")


def test_result_fields_used_by_resume_exist():
    assert {"expid", "run_dir", "overrides", "valid_AUC", "device", "valid_cold_AUC"} <= set(RESULT_FIELDS)
