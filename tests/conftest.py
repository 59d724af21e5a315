"""Shared fixtures: the tiny synthetic world (generated once per session) and params pointing at it."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import pytest

from model_zoo.config import load_params


def params_in(expid: str, data_root: Path, model_root: Path) -> Dict[str, Any]:
    """Params of ``expid`` with data and checkpoints redirected to temp dirs (tests never write into the repo)."""
    params = load_params(expid)
    data_dir = data_root / params["dataset_id"]
    params["data_root"] = str(data_root)
    for key, name in (("train_data", "train"), ("valid_data", "valid"), ("test_data", "test"),
                      ("item_info", "item_info"), ("item_feature", "item_feature")):
        params[key] = str(data_dir / f"{name}.parquet")
    params["model_root"] = str(model_root)
    params["verbose"] = 0
    params["gpu"] = -1
    return params


@pytest.fixture(scope="session")
def data_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def tiny_world(data_root: Path) -> Dict[str, Any]:
    """The tiny synthetic world: files, feature map and loaders, built once."""
    from model_zoo.datasets import prepare

    params = params_in("DIN_test", data_root, data_root / "ckpt")
    files = prepare.locate_data(params, progress=False)
    return {"params": params, "files": files}


@pytest.fixture()
def model_params(tmp_path: Path, data_root: Path, tiny_world):
    """Factory: params of ``<Model>_test`` on the tiny world with a private model_root."""
    def make(expid: str) -> Dict[str, Any]:
        return params_in(expid, data_root, tmp_path / "ckpt")
    return make
