"""Packaging: pins resolve anywhere (no local build labels), the console scripts exist, and a wheel installed in a
fresh venv runs the flagship expid from an empty directory, writing only there."""
from __future__ import annotations

import configparser
import importlib
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from conftest import REPO_ROOT
from model_zoo.apps.results import read_results

LOCAL_LABEL = re.compile(r"==\s*[^\s;#]*\+")


def _entry_points() -> dict:
    cfg = configparser.ConfigParser()
    cfg.read(REPO_ROOT / "setup.cfg")
    lines = [line.strip() for line in cfg["options.entry_points"]["console_scripts"].splitlines() if line.strip()]
    return dict(tuple(part.strip() for part in line.split("=", 1)) for line in lines)


def test_pins_carry_no_local_build_label():
    for name in ("constraints.txt", "setup.cfg"):
        bad = [line for line in (REPO_ROOT / name).read_text().splitlines() if LOCAL_LABEL.search(line)]
        assert not bad, f"{name}: {bad} resolve only where that local build exists"
    assert "torch==2.13.0" in (REPO_ROOT / "constraints.txt").read_text().split()


def test_every_console_script_resolves():
    scripts = _entry_points()
    assert {"mmctr-run", "mmctr-tune", "mmctr-leaderboard", "mmctr-submit"} <= set(scripts)
    for name, target in scripts.items():
        module, _, func = target.partition(":")
        assert callable(getattr(importlib.import_module(module), func)), f"{name} -> {target}"


def test_wrappers_call_the_apps():
    """run_expid.py / run_param_tuner.py are thin FuxiCTR-style wrappers: the applications' main, nothing else."""
    for wrapper, module in (("run_expid.py", "model_zoo.apps.runner"), ("run_param_tuner.py", "model_zoo.apps.tuner")):
        text = (REPO_ROOT / wrapper).read_text()
        assert f"from {module} import main" in text and len(text.splitlines()) < 15, wrapper


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_runs_from_an_empty_directory(tmp_path):
    """``pip wheel .``, a new venv, ``mmctr-run --expid DMF_MicroLens_synth`` (one epoch) in an empty dir: everything it writes
    lands in that dir, and the package imported is the installed wheel, not this checkout.

    The venv's third-party packages come from the project's venv through a .pth line (installing torch and friends
    again would take minutes and a network); the zoo itself comes only from the wheel.
    """
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO_ROOT), "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(wheels)], check=True, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    (wheel,) = wheels.glob("mmctr_zoo-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "deps_from_project_venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
                   check=True, capture_output=True, text=True, timeout=600)
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(OMP_NUM_THREADS="2", MKL_NUM_THREADS="2", PYTHONNOUSERSITE="1")
    where = subprocess.run([str(python), "-c", "import model_zoo, model_zoo.config as c; print(model_zoo.__file__); "
                            "print(c.CONFIG_DIR)"], cwd=empty, env=env, capture_output=True, text=True, check=True)
    module_file, config_dir = where.stdout.split()
    assert Path(module_file).is_relative_to(site) and Path(config_dir) == site / "model_zoo" / "_config"
    out = subprocess.run([str(venv / "bin" / "mmctr-run"), "--expid", "DMF_MicroLens_synth", "--set", "verbose=0",
                          "--set", "epochs=1"],  # the demo's expid; one epoch is enough to show it trains
                         cwd=empty, env=env, capture_output=True, text=True, timeout=1200)
    assert out.returncode == 0, out.stderr[-3000:]
    assert sorted(p.name for p in empty.iterdir()) == ["cache", "checkpoints", "data", "results"]
    (row,) = read_results(empty / "results" / "results.csv", required=True).rows
    assert row["dataset_id"] == "MicroLens_synth_small" and float(row["valid_AUC"]) > 0.8
    assert Path(row["run_dir"]).is_relative_to(empty) and Path(row["checkpoint"]).is_file()
    assert not (REPO_ROOT / "checkpoints").exists() or not any((REPO_ROOT / "checkpoints").rglob("DMF_MicroLens_synth"))
