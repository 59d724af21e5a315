"""Config resolution: merge order, path resolution, unknown keys/expids/datasets fail with a did-you-mean."""
from __future__ import annotations

import pytest
import yaml

from model_zoo.config import REPO_ROOT, dump_params, list_expids, load_params, validate_params
from model_zoo.errors import ConfigError
from model_zoo.registry import get_model, list_models


def test_merge_order_base_expid_dataset():
    params = load_params("DIN_MicroLens")
    assert params["model_id"] == "DIN_MicroLens"
    assert params["metrics"] == ["AUC", "logloss"]          # from Base
    assert params["batch_size"] == 8192                     # from the expid block
    assert params["early_stop_patience"] == 3               # expid overrides Base
    assert params["item_info"] == str(REPO_ROOT / "data/MicroLens_1M_x1/item_info.parquet")  # dataset, made absolute


def test_every_expid_validates():
    for expid in list_expids():
        params = load_params(expid)
        validate_params(params, get_model(params["model"]))


def test_every_model_has_test_synth_and_microlens_expids():
    expids = set(list_expids())
    for name in list_models():
        for suffix in ("_test", "_MicroLens_synth", "_MicroLens"):
            assert f"{name}{suffix}" in expids, f"{name} lacks expid {name}{suffix}"


def test_unknown_key_did_you_mean():
    params = load_params("DIN_test")
    params["dnn_hiden_units"] = [8]
    with pytest.raises(ConfigError, match=r"unknown keys for DIN.*'dnn_hiden_units' \(did you mean 'dnn_hidden_units'\?\)"):
        validate_params(params, get_model("DIN"))


def test_unknown_expid_did_you_mean():
    with pytest.raises(ConfigError, match=r"unknown expid 'DIN_tset' \(did you mean 'DIN_test'\?\)"):
        load_params("DIN_tset")


def test_config_dir_shadows_and_unknown_dataset(tmp_path):
    (tmp_path / "model_config.yaml").write_text(yaml.safe_dump({
        "DIN_test": {"model": "DIN", "dataset_id": "MicroLens_synth_tiny", "batch_size": 7},
        "DIN_bad": {"model": "DIN", "dataset_id": "MicroLens_synth_tnyi"}}))
    assert load_params("DIN_test", tmp_path)["batch_size"] == 7
    assert load_params("DIN_test", tmp_path)["metrics"] == ["AUC", "logloss"]  # our Base underneath
    with pytest.raises(ConfigError, match=r"unknown dataset_id 'MicroLens_synth_tnyi' \(did you mean 'MicroLens_synth_tiny'\?\)"):
        load_params("DIN_bad", tmp_path)


def test_dump_params_round_trip(tmp_path):
    params = load_params("DIN_test")
    path = dump_params(params, tmp_path / "x" / "p.yaml")
    assert yaml.safe_load(path.read_text()) == params
    assert not list(path.parent.glob("*.tmp"))
