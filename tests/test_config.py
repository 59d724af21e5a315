"""Config resolution and validation: merge order, path resolution, overrides, every key and value checked."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from model_zoo.config import (CONFIG_DIR, PACKAGE_DIR, dump_params, list_expids, load_params, parse_overrides,
                              resolve_params, validate_params)
from model_zoo.errors import ConfigError
from model_zoo.registry import get_model, list_models


def validate(expid: str, tmp_path: Path, config_dir=None, **overrides):
    resolved = resolve_params(expid, config_dir, overrides=overrides, work_dir=tmp_path)
    return validate_params(resolved, get_model(resolved.params["model"]))


def test_merge_order_base_expid_dataset_override(tmp_path):
    params = load_params("DIN_MicroLens", work_dir=tmp_path, overrides={"seed": 7})
    assert params["model_id"] == "DIN_MicroLens"
    assert params["metrics"] == ["AUC", "logloss"]          # from Base
    assert params["batch_size"] == 8192                     # from the expid block
    assert params["early_stop_patience"] == 3               # expid overrides Base
    assert params["seed"] == 7                              # --set wins
    # shipped config: relative paths are relative to the work dir, never the package
    assert params["item_info"] == str(tmp_path / "data/MicroLens_1M_x1/item_info.parquet")
    assert params["model_root"] == str(tmp_path / "checkpoints")


def test_synthetic_world_files_follow_data_root(tmp_path):
    params = load_params("DIN_test", work_dir=tmp_path, overrides={"data_root": str(tmp_path / "elsewhere")})
    assert params["train_data"] == str(tmp_path / "elsewhere" / "MicroLens_synth_tiny" / "train.parquet")


def test_every_expid_validates(tmp_path):
    for expid in list_expids():
        validate(expid, tmp_path)


def test_every_model_has_test_synth_and_microlens_expids():
    expids = set(list_expids())
    for name in list_models():
        for suffix in ("_test", "_MicroLens_synth", "_MicroLens"):
            assert f"{name}{suffix}" in expids, f"{name} lacks expid {name}{suffix}"


@pytest.mark.parametrize("overrides, message", [
    ({"dnn_hiden_units": [8]}, r"unknown key 'dnn_hiden_units' for DIN \(did you mean 'dnn_hidden_units'\?\)"),
    ({"batch_size": "abc"}, r"batch_size='abc'; expected an integer >= 1"),
    ({"batch_size": 2.5}, r"batch_size=2.5; expected an integer >= 1"),
    ({"learning_rate": -1}, r"learning_rate=-1; expected a number > 0"),
    ({"embedding_dim": "8"}, r"embedding_dim='8'; expected an integer >= 1"),
    ({"epochs": 0}, r"epochs=0; expected an integer >= 1"),
    ({"metrics": ["AUCC"]}, r"metrics=\['AUCC'\]"),
    ({"num_heads": 2}, r"unknown key 'num_heads' for DIN"),               # DIN has no multi-head attention
    ({"attention_type": "multihead"}, r"unknown key 'attention_type' for DIN"),
    ({"skip_padding_items": False}, r"unknown key 'skip_padding_items'"),  # an implementation switch, not a key
    ({"num_workers": 3}, r"'num_workers' is read by nothing in the zoo"),
    ({"net_dropout": 1.0}, r"net_dropout=1.0; expected a number >= 0 and < 1"),
    ({"loss": "__import__('os').system('x')"}, r"loss=.*expected one of \('binary_crossentropy'"),
    ({"optimizer": "Module"}, r"optimizer='Module'; expected one of"),
    ({"dnn_activations": "Identity"}, r"dnn_activations='Identity'; expected one of"),
    ({"embedding_regularizer": "eval(1)"}, r"embedding_regularizer='eval\(1\)'"),
    ({"dataset_id": "../x"}, r"dataset_id='../x'; expected a name .* \(no path separators\)"),
    ({"dataset_id": "MicroLens_synth_tnyi"}, r"is not declared \(did you mean 'MicroLens_synth_tiny'\?\)"),
])
def test_bad_values_and_keys_are_named(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        validate("DIN_test", tmp_path, **overrides)


def test_every_problem_is_listed_at_once(tmp_path):
    with pytest.raises(ConfigError) as err:
        validate("DIN_test", tmp_path, batch_size=0, learning_rate=0, embeding_dim=8)
    text = str(err.value)
    assert "3 problem(s)" in text and "batch_size=0" in text and "learning_rate=0" in text
    assert "did you mean 'embedding_dim'" in text


def test_conditional_keys_rejected(tmp_path):
    with pytest.raises(ConfigError, match=r"'num_heads' applies to attention_type 'multihead' only"):
        validate("DIN_SENet_test", tmp_path, attention_type="din", num_heads=2)
    with pytest.raises(ConfigError, match=r"'num_tiers' is unused with use_histogram: False"):
        validate("DMF_test", tmp_path, use_histogram=False)
    validate("DIN_SENet_test", tmp_path, attention_type="multihead", num_heads=2)  # fine together


@pytest.mark.parametrize("expid, overrides, message", [
    ("DIN_test", {"num_positions": 8}, r"'num_positions' is read only with position_encoding: learned"),
    ("DIN_SENet_test", {"position_encoding": "none", "num_positions": 8}, r"'num_positions' is read only with"),
    ("DMF_test", {"num_positions": 8}, r"'num_positions' is read only with position_encoding: learned"),
    ("DMF_noDTA_MicroLens_synth", {"position_encoding": "learned"}, r"'position_encoding' is unused with use_dta"),
    ("FiBiNET_Bilinear_test", {"unknown_item": True}, r"'unknown_item: true' needs item_id_dropout > 0"),
    ("DMF_test", {"unknown_item": True, "item_id_dropout": 0.0}, r"'unknown_item: true' needs item_id_dropout > 0"),
    ("DMF_noDTA_MicroLens_synth", {"num_positions": 4}, r"'num_positions' is read only with position_encoding"),
    ("DMF_noHist_MicroLens_synth", {"tier_edges": "quantile"}, r"'tier_edges' is unused with use_histogram"),
    ("DMF_noHist_MicroLens_synth", {"histogram_weighting": "recency"}, r"'histogram_weighting' is unused with"),
    ("DMF_test", {"quantile_fit_rows": 100}, r"'quantile_fit_rows' is read only with bucket_edges: quantile"),
])
def test_new_option_conflicts(tmp_path, expid, overrides, message):
    with pytest.raises(ConfigError, match=message):
        validate(expid, tmp_path, **overrides)


@pytest.mark.parametrize("overrides, message", [
    ({"position_encoding": "sinusoid"}, r"position_encoding='sinusoid'; expected one of \('none', 'learned'\)"),
    ({"position_encoding": "learned", "num_positions": 1}, r"num_positions=1; expected an integer >= 2"),
    ({"position_encoding": "learned", "num_positions": 4.5}, r"num_positions=4.5; expected an integer >= 2"),
    ({"item_id_dropout": 1.0}, r"item_id_dropout=1.0; expected a number >= 0 and < 1"),
    ({"item_id_dropout": -0.1}, r"item_id_dropout=-0.1; expected a number >= 0 and < 1"),
    ({"unknown_item": "yes", "item_id_dropout": 0.1}, r"unknown_item='yes'; expected true or false"),
])
@pytest.mark.parametrize("expid", ["DIN_test", "DIN_CrossNet_test", "DMF_test"])
def test_new_option_values_checked(tmp_path, expid, overrides, message):
    with pytest.raises(ConfigError, match=message):
        validate(expid, tmp_path, **overrides)


@pytest.mark.parametrize("overrides, message", [
    ({"tier_edges": "log"}, r"tier_edges='log'; expected one of \('equal_width', 'quantile'\)"),
    ({"histogram_weighting": "time"}, r"histogram_weighting='time'; expected one of \('count', 'recency'\)"),
    ({"bucket_edges": "soft"}, r"bucket_edges='soft'; expected one of \('equal_width', 'quantile'\)"),
])
def test_dmf_histogram_option_values_checked(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        validate("DMF_test", tmp_path, **overrides)


def test_dmf_num_positions_serves_the_histogram_alone(tmp_path):
    params = validate("DMF_test", tmp_path, histogram_weighting="recency", num_positions=4)  # positions off
    assert params["num_positions"] == 4
    validate("DMF_test", tmp_path, tier_edges="quantile", quantile_fit_rows=100)


def test_new_options_validate_together(tmp_path):
    for expid in ("DIN_test", "DIN_SENet_test", "DIN_CrossNet_test", "FiBiNET_Bilinear_test", "DMF_test"):
        params = validate(expid, tmp_path, position_encoding="learned", num_positions=8, item_id_dropout=0.1,
                          unknown_item=True)
        assert params["num_positions"] == 8 and params["unknown_item"] is True


def test_every_model_has_a_seqneg_expid_on_the_small_world():
    expids = set(list_expids())
    for name in list_models():
        assert f"{name}_MicroLens_seqneg" in expids, f"{name} lacks expid {name}_MicroLens_seqneg"
        assert load_params(f"{name}_MicroLens_seqneg")["dataset_id"] == "MicroLens_seqneg_small"


# jzzx.NTU's DIN_DCN (3rd place): ZiaoGao/MMCTR DIN_DCN_default + config/din_dcn_config_tuner.yaml (best point _013),
# with FuxiCTR's MultiHeadTargetAttention defaults where their code passes nothing (attention_dim 64, scale, Q/K/V/O).
DIN_DCN_PUBLISHED = dict(
    model="DIN_CrossNet", dataset_id="MicroLens_1M_x1", embedding_dim=64, attention_type="multihead", num_heads=4,
    attention_dim=64, attention_use_scale=True, attention_use_qkvo=True, attention_dropout=0.1,
    model_structure="stacked", num_cross_layers=6, low_rank=32, num_experts=4, dnn_hidden_units=(1024, 1024),
    dnn_activations="ReLU", net_dropout=0.0, batch_norm=True, learning_rate=1e-4, batch_size=512,
    embedding_regularizer=1e-6, net_regularizer=5e-5, max_len=64, early_stop_patience=3, seed=20242025)


def test_din_dcn_expid_names_the_published_values(tmp_path):
    params = validate("DIN_DCN_MicroLens", tmp_path)
    assert {k: params[k] for k in DIN_DCN_PUBLISHED} == DIN_DCN_PUBLISHED
    alias = validate("DIN_CrossNet_MicroLens", tmp_path)  # one block, two names
    assert alias.pop("model_id") == "DIN_CrossNet_MicroLens" and params.pop("model_id") == "DIN_DCN_MicroLens"
    assert alias == params
    for world in ("synth", "seqneg"):  # CPU-sized: the published structure, widths scaled
        small = validate(f"DIN_DCN_MicroLens_{world}", tmp_path)
        assert (small["attention_type"], small["num_heads"], small["attention_dim"], small["attention_dropout"],
                small["model_structure"], small["num_cross_layers"], small["num_experts"], small["net_dropout"],
                small["batch_norm"]) == ("multihead", 4, 16, 0.1, "stacked", 6, 4, 0.0, True)


def test_din_dcn_attention_is_fuxictrs_default_multihead_layer():
    """attention_dim 64 on D = 256 is what jzzx.NTU's MultiHeadTargetAttention(input_dim=256, num_heads=4) builds."""
    import torch
    from fuxictr.pytorch.layers import MultiHeadTargetAttention

    from model_zoo.layers.target_attention import TargetAttention

    ours = TargetAttention(256, attention_type="multihead", num_heads=4, attention_dim=64, attention_dropout=0.1)
    theirs = MultiHeadTargetAttention(input_dim=256, num_heads=4, dropout_rate=0.1)
    assert {k: v.shape for k, v in ours.attention.state_dict().items()} == \
        {k: v.shape for k, v in theirs.state_dict().items()}
    theirs.load_state_dict(ours.attention.state_dict())
    ours.eval(), theirs.eval()
    torch.manual_seed(0)
    target, history = torch.randn(3, 256), torch.randn(3, 5, 256)
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1], [0, 0, 0, 0, 1]], dtype=torch.float)
    assert torch.allclose(ours(target, history, mask), theirs(target, history, mask), atol=1e-6)


def test_values_are_coerced(tmp_path):
    params = validate("DIN_test", tmp_path, net_regularizer=1, dnn_hidden_units=[4, 2])
    assert params["net_regularizer"] == 1.0 and isinstance(params["net_regularizer"], float)
    assert params["dnn_hidden_units"] == (4, 2)


@pytest.mark.parametrize("col, message", [
    ({"dtype": "__import__('os').getcwd()"}, r"dtype=.*expected one of \('int', 'float', 'str'\)"),
    ({"feature_encoder": "nn.Identity()"}, r"feature_encoder.*accepts only null"),
    ({"embeding_dim": 8}, r"unknown key 'embeding_dim'.*did you mean 'embedding_dim'"),
    ({"vocab_size": 0}, r"vocab_size=0; expected an integer >= 2"),
])
def test_feature_cols_checked(tmp_path, col, message):
    block = yaml.safe_load((CONFIG_DIR / "dataset_config.yaml").read_text())["MicroLens_synth_tiny"]
    cols = [dict(c, **col) if c["name"] == "likes_level" else c for c in block["feature_cols"]]
    with pytest.raises(ConfigError, match=message):
        validate("DIN_test", tmp_path, feature_cols=cols)


def test_feature_specs_and_label_checked(tmp_path):
    with pytest.raises(ConfigError, match=r"feature_specs\[0\].*unknown key 'embeding_dim'"):
        validate("DIN_test", tmp_path, feature_specs=[{"name": "item_emb_d128", "embeding_dim": 8}])
    with pytest.raises(ConfigError, match=r"feature_specs\[0\]: name='item_emb' is not a feature"):
        validate("DIN_test", tmp_path, feature_specs=[{"name": "item_emb", "embedding_dim": 8}])
    with pytest.raises(ConfigError, match=r"label_col: missing key 'name'"):
        validate("DIN_test", tmp_path, label_col={"dtype": "float"})


def test_unknown_expid_and_unsafe_expid(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown expid 'DIN_tset' \(did you mean 'DIN_test'\?\)"):
        load_params("DIN_tset")
    with pytest.raises(ConfigError, match=r"--expid '../DIN_test'.*no path separators"):
        load_params("../DIN_test")


def test_user_config_dir_shadows_paths_relative_to_its_file(tmp_path):
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "model_config.yaml").write_text(yaml.safe_dump({
        "DIN_test": {"model": "DIN", "dataset_id": "my_data", "batch_size": 7},
        "DIN_scalar": 5}))
    block = yaml.safe_load((CONFIG_DIR / "dataset_config.yaml").read_text())["MicroLens_1M_x1"]
    block.update(train_data="files/train.parquet", data_root="files")
    (cfg / "dataset_config.yaml").write_text(yaml.safe_dump({"my_data": block}))
    params = load_params("DIN_test", cfg, work_dir=tmp_path / "work")
    assert params["batch_size"] == 7 and params["metrics"] == ["AUC", "logloss"]  # our Base underneath
    assert params["train_data"] == str(cfg / "files" / "train.parquet")          # relative to the YAML file
    with pytest.raises(ConfigError, match=r"block 'DIN_scalar'.*expected a mapping of key: value, found int"):
        load_params("DIN_scalar", cfg)


def test_missing_dataset_and_derived_keys(tmp_path):
    (tmp_path / "model_config.yaml").write_text(yaml.safe_dump({
        "A": {"model": "DIN", "dataset_id": "MicroLens_synth_tnyi"},
        "B": {"model": "DIN", "dataset_id": "MicroLens_synth_tiny", "gpu": 0}}))
    with pytest.raises(ConfigError, match=r"dataset_id='MicroLens_synth_tnyi' is not declared \(did you mean"):
        load_params("A", tmp_path)
    with pytest.raises(ConfigError, match=r"key 'gpu' is set from --gpu"):
        load_params("B", tmp_path)


def test_parse_overrides():
    assert parse_overrides(["a=1", "b=[64, 32]", "c=V4", "d=null", "e="]) == {
        "a": 1, "b": [64, 32], "c": "V4", "d": None, "e": None}
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_overrides(["novalue"])


def test_dump_params_round_trip(tmp_path):
    params = validate("DIN_test", tmp_path)
    path = dump_params(params, tmp_path / "x" / "p.yaml")
    loaded = yaml.safe_load(path.read_text())
    assert loaded["dnn_hidden_units"] == list(params["dnn_hidden_units"])
    assert {k for k in loaded} == set(params)
    assert not [p for p in path.parent.iterdir() if p.name != "p.yaml"]


def test_shipped_config_found_in_the_package_or_checkout():
    assert (CONFIG_DIR / "model_config.yaml").is_file()
    assert CONFIG_DIR in (PACKAGE_DIR / "_config", PACKAGE_DIR.parent / "config")
