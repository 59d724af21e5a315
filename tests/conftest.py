"""Shared fixtures: the tiny synthetic world (generated once per session) and params pointing at it."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence

import pytest
import yaml

from model_zoo.config import CONFIG_DIR, load_params

REPO_ROOT = Path(__file__).resolve().parents[1]  # model_zoo.config no longer exports it


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


def write_redirected_config(tmp: Path, dataset_id: str, expids: Sequence[str],
                            data_root: Optional[Path] = None) -> Path:
    """A ``--config`` dir (``tmp/config``): ``dataset_id`` re-declared with its files under ``data_root`` (default
    ``tmp/data``) and the repo's blocks of ``expids`` with checkpoints under ``tmp/ckpt``."""
    data_root = data_root or tmp / "data"
    cfg = tmp / "config"
    cfg.mkdir(exist_ok=True)
    block = dict(yaml.safe_load((CONFIG_DIR / "dataset_config.yaml").read_text())[dataset_id], data_root=str(data_root))
    for key in ("train_data", "valid_data", "test_data", "item_info", "item_feature"):
        if block.get(key):
            block[key] = str(data_root / dataset_id / Path(block[key]).name)
    (cfg / "dataset_config.yaml").write_text(yaml.safe_dump({dataset_id: block}))
    blocks = {}
    for expid in expids:
        own = yaml.safe_load((REPO_ROOT / "model_zoo" / load_params(expid)["model"] / "model_config.yaml").read_text())
        blocks[expid] = dict(own[expid], model_root=str(tmp / "ckpt"))
    (cfg / "model_config.yaml").write_text(yaml.safe_dump(blocks))
    return cfg


@pytest.fixture()
def redirected_config() -> Callable[..., Path]:
    """``write_redirected_config`` as a fixture (tests never write into the repo)."""
    return write_redirected_config
