"""Shared fixtures: one work dir per session (the tiny synthetic world is generated there once) and experiment
builders on it. Tests never write into the repository: every output goes to pytest's temp dirs."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import pytest

import model_zoo  # noqa: F401  (registers the models)
from model_zoo.config import PACKAGE_DIR
from model_zoo.experiment import Experiment, build_experiment, prepare_data, validated_params

REPO_ROOT = PACKAGE_DIR.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def work_dir(tmp_path_factory) -> Path:
    """The session's work dir: ``data/`` holds the synthetic worlds, ``cache/`` feature maps and variants."""
    return tmp_path_factory.mktemp("work")


def validated(expid: str, work: Path, overrides: Optional[Mapping[str, Any]] = None,
              config_dir: Optional[Path] = None) -> Dict[str, Any]:
    """Validated params of ``expid`` with outputs under ``work`` (quiet, CPU)."""
    return validated_params(expid, config_dir=config_dir, overrides={"verbose": 0, **(overrides or {})},
                            work_dir=work)


@pytest.fixture()
def experiment(work_dir: Path) -> Callable[..., Experiment]:
    """Factory: ``experiment("DMF_test", seed=0, **overrides)`` built on the session's work dir."""
    def make(expid: str, **overrides: Any) -> Experiment:
        return build_experiment(validated(expid, work_dir, overrides), cache_dir=work_dir / "cache", progress=False)
    return make


@pytest.fixture(scope="session")
def tiny_params(work_dir: Path) -> Dict[str, Any]:
    """Validated ``DIN_test`` params (the tiny world's dataset block) on the session's work dir, with the tiny world
    generated (its files exist whichever test asks first)."""
    params = validated("DIN_test", work_dir)
    prepare_data(params, cache_dir=work_dir / "cache", progress=False)
    return params


def run_cli(args: Sequence[str], cwd: Path, *, module: str = "model_zoo.apps.runner", timeout: int = 600,
            env: Optional[Mapping[str, str]] = None) -> subprocess.CompletedProcess:
    """``python -m <module> <args>`` in ``cwd`` (single-threaded, so results do not depend on machine load)."""
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT),
                **(env or {})}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=full_env)


def shared_data_args(work_dir: Path) -> List[str]:
    """Runner args that reuse the session's generated worlds instead of generating them again."""
    return ["--set", f"data_root={work_dir / 'data'}"]
