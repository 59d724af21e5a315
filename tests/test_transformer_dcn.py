"""Transformer_DCN beyond the registry tests: the published (inverted) padding mask and its fix, the fully-ignored-row
guard, the published dimensions, and the config checks."""
from __future__ import annotations

from typing import Tuple

import pytest
import torch
from fuxictr.pytorch.layers import CrossNetV2

from model_zoo.datasets.loader import MMCTRBatch
from model_zoo.errors import ConfigError
from model_zoo.Transformer_DCN import SequenceTransformer, Transformer_DCN, key_padding_mask

PUBLISHED_CROSSNET_PARAMS = 3 * (9088 * 9088 + 9088)  # three 9088 x 9088 matrices and their biases: 247,802,496


def _model_and_batch(experiment, **overrides) -> Tuple[Transformer_DCN, MMCTRBatch]:
    exp = experiment("Transformer_DCN_test", **{"seed": 0, **overrides})
    return exp.model.eval(), exp.loader("valid").batch(slice(0, 64))


def _predict(model: Transformer_DCN, batch: MMCTRBatch) -> torch.Tensor:
    with torch.no_grad():
        return model(batch)["y_pred"][:, 0]


def _set_history_item(batch: MMCTRBatch, row: int, pos: int, source: int) -> MMCTRBatch:
    """A copy of ``batch`` whose history item (row, pos) is the item of joined row ``source`` (valid from then on)."""
    max_len = batch.mask.shape[1]
    target = row * (max_len + 1) + pos  # the item_dict holds L + 1 joined rows per batch row
    item_dict = {}
    for name, value in batch.item_dict.items():
        value = value.clone()
        value[target] = value[source]
        item_dict[name] = value
    mask = batch.mask.clone()
    mask[row, pos] = 1.0
    return MMCTRBatch(dict(batch.batch_dict), item_dict, mask)


def _rows_by_length(batch: MMCTRBatch, below: int) -> list:
    lengths = (batch.mask > 0).sum(dim=1)
    return [r for r in range(len(lengths)) if 1 <= lengths[r] < below]


def _other_item(batch: MMCTRBatch, row: int, pos: int) -> int:
    """A joined row holding a real item different from the one at (row, pos): another row's target."""
    max_len = batch.mask.shape[1]
    ids = batch.item_dict["item_id"]
    current = ids[row * (max_len + 1) + pos]
    for other in range(batch.mask.shape[0]):
        source = other * (max_len + 1) + max_len
        if ids[source] != current and ids[source] != 0:
            return source
    raise AssertionError("no other item in the batch")


# ---- the padding mask ---------------------------------------------------------------------------------------------
def test_key_padding_mask_docstring_example():
    got = key_padding_mask(torch.tensor([[0.0, 1.0, 1.0], [0.0, 0.0, 0.0]]))
    assert torch.equal(got, torch.tensor([[True, False, False], [True, True, False]]))


def test_key_padding_mask_modes_and_the_fully_ignored_guard():
    mask = torch.tensor([[0.0, 0.0, 1.0, 1.0],    # history of 2
                         [1.0, 1.0, 1.0, 1.0],    # full history
                         [0.0, 0.0, 0.0, 0.0]])   # empty history
    before = mask.clone()
    fixed, faithful = key_padding_mask(mask), key_padding_mask(mask, faithful=True)
    assert torch.equal(fixed, torch.tensor([[True, True, False, False], [False] * 4, [True, True, True, False]]))
    # published: the loader's mask itself (valid = ignored); a full history keeps its most recent item attended
    assert torch.equal(faithful, torch.tensor([[False, False, True, True], [True, True, True, False], [False] * 4]))
    assert not (fixed.all(dim=1) | faithful.all(dim=1)).any(), "no row may be fully ignored"
    assert torch.equal(mask, before), "the loader's mask must not be modified"


def test_faithful_mask_valid_items_change_nothing_but_the_length(experiment):
    """Published behaviour: attention sees only padding and the valid tokens' outputs are zeroed, so replacing a valid
    history item leaves the prediction unchanged, while one more valid item (a shorter padding run inside the last
    ``first_k_cols`` positions) changes it."""
    model, batch = _model_and_batch(experiment, faithful_padding_mask=True, first_k_cols=8)
    max_len = batch.mask.shape[1]
    rows = _rows_by_length(batch, below=8)
    assert rows, "the tiny world should have histories shorter than first_k_cols"
    base = _predict(model, batch)
    for row in rows[:4]:
        for pos in (max_len - 1, max_len - int((batch.mask[row] > 0).sum())):  # most recent and oldest valid item
            changed = _predict(model, _set_history_item(batch, row, pos, _other_item(batch, row, pos)))
            assert torch.allclose(changed, base, atol=1e-6, rtol=0), (row, pos)
        length = int((batch.mask[row] > 0).sum())
        longer = _predict(model, _set_history_item(batch, row, max_len - length - 1, _other_item(batch, row, 0)))
        assert (longer[row] - base[row]).abs() > 1e-6, "the history length must still show"
        others = [r for r in range(len(base)) if r != row]
        assert torch.allclose(longer[others], base[others], atol=1e-6, rtol=0)


def test_fixed_mask_valid_items_change_the_output(experiment):
    model, batch = _model_and_batch(experiment, first_k_cols=8)  # faithful_padding_mask: False (default)
    max_len = batch.mask.shape[1]
    base = _predict(model, batch)
    rows = _rows_by_length(batch, below=max_len)
    for row in rows[:4]:
        for pos in (max_len - 1, max_len - int((batch.mask[row] > 0).sum())):  # inside and outside the last k
            changed = _predict(model, _set_history_item(batch, row, pos, _other_item(batch, row, pos)))
            assert (changed[row] - base[row]).abs() > 1e-6, (row, pos)


def test_faithful_mask_full_history_lets_the_most_recent_item_through(experiment):
    """The published guard un-ignores the last position of a fully valid history: that item matters, older ones
    do not."""
    model, batch = _model_and_batch(experiment, faithful_padding_mask=True)
    max_len = batch.mask.shape[1]
    row = 0
    full = batch
    for pos in range(max_len):  # fill every position of row 0 with real items
        if full.mask[row, pos] == 0:
            full = _set_history_item(full, row, pos, _other_item(full, row, pos))
    base = _predict(model, full)
    older = _predict(model, _set_history_item(full, row, 0, _other_item(full, row, 0)))
    recent = _predict(model, _set_history_item(full, row, max_len - 1, _other_item(full, row, max_len - 1)))
    assert torch.allclose(older, base, atol=1e-6, rtol=0)
    assert (recent[row] - base[row]).abs() > 1e-6


@pytest.mark.parametrize("faithful", [False, True])
def test_shape_range_and_edge_histories_are_finite(experiment, faithful):
    """Both mask modes, including an empty and a full history (the rows the guard exists for)."""
    model, batch = _model_and_batch(experiment, faithful_padding_mask=faithful)
    mask = batch.mask.clone()
    mask[0] = 0.0  # empty history
    item_dict = {k: v.clone() for k, v in batch.item_dict.items()}
    max_len = mask.shape[1]
    for name, value in item_dict.items():
        value[:max_len] = 0  # row 0's history rows become padding
    edge = MMCTRBatch(batch.batch_dict, item_dict, mask)
    for pos in range(max_len):  # row 1: full history
        if edge.mask[1, pos] == 0:
            edge = _set_history_item(edge, 1, pos, _other_item(edge, 1, pos))
    model.train()
    torch.manual_seed(0)
    for out in (model(edge)["y_pred"], _predict(model.eval(), edge)):
        assert out.shape[0] == 64 and torch.isfinite(out).all() and ((out >= 0) & (out <= 1)).all()


def test_faithful_model_gets_gradients_and_round_trips(experiment, tmp_path):
    model, batch = _model_and_batch(experiment, faithful_padding_mask=True)
    model.train()
    model.compute_loss(model(batch), model.get_labels(batch)).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, missing
    model.eval()
    model.save_weights(tmp_path / "m.pt")
    other, _ = _model_and_batch(experiment, faithful_padding_mask=True, seed=1)
    other.load_weights(tmp_path / "m.pt")
    assert torch.allclose(_predict(other.eval(), batch), _predict(model, batch), atol=1e-6)


def test_history_shorter_than_first_k_cols_is_a_clear_error():
    branch = SequenceTransformer(8, num_heads=2, dim_feedforward=16, num_layers=1, first_k_cols=6)
    with pytest.raises(ValueError, match=r"first_k_cols=6 but the history has only 5 positions"):
        branch(torch.randn(2, 8), torch.randn(2, 5, 8), torch.ones(2, 5))


def test_sequence_transformer_docstring_example():
    branch = SequenceTransformer(8, num_heads=2, dim_feedforward=16, dropout=0.0, num_layers=1, first_k_cols=3)
    out = branch(torch.randn(2, 8), torch.randn(2, 5, 8), torch.ones(2, 5))
    assert out.shape == (2, (3 + 1) * 16) == (2, branch.output_dim)
    no_pool = SequenceTransformer(8, num_heads=1, first_k_cols=3, concat_max_pool=False)
    assert no_pool(torch.randn(2, 8), torch.randn(2, 5, 8), torch.ones(2, 5)).shape == (2, 3 * 16)


# ---- published dimensions -----------------------------------------------------------------------------------------
def test_published_dimensions_and_crossnet_size(tmp_path):
    """On the MicroLens_1M_x1 feature map (vocabularies only, no data files) with the published expid: D = 256,
    tokens 512, x0 = 128 + 256 + 17 * 512 = 9088, and the cross network holds 247,802,496 parameters (built on the
    meta device: no memory)."""
    from conftest import validated
    from model_zoo.datasets import prepare

    params = validated("Transformer_DCN_MicroLens", tmp_path)
    assert params["faithful_padding_mask"] is True and params["max_len"] == 100 and params["batch_size"] == 128
    feature_map = prepare.build_feature_map(params, tmp_path / "cache")
    dims = {f: spec.get("embedding_dim", params["embedding_dim"]) for f, spec in feature_map.features.items()
            if spec["type"] != "meta"}
    item_dim = sum(d for f, d in dims.items() if feature_map.features[f].get("source") == "item")
    row_dim = sum(d for f, d in dims.items() if feature_map.features[f].get("source") != "item")
    assert (item_dim, row_dim) == (256, 128)
    with torch.device("meta"):
        branch = SequenceTransformer(item_dim, num_heads=params["num_heads"],
                                     dim_feedforward=params["dim_feedforward"],
                                     num_layers=params["transformer_layers"], first_k_cols=params["first_k_cols"],
                                     concat_max_pool=params["concat_max_pool"])
        x0 = row_dim + item_dim + branch.output_dim
        crossnet = CrossNetV2(x0, params["dcn_cross_layers"])
    assert x0 == 9088
    assert sum(p.numel() for p in crossnet.parameters()) == PUBLISHED_CROSSNET_PARAMS == 247_802_496


PUBLISHED = {  # expid Transformer_DCN_MicroLens_1M_x1_001_820c435c of pinskyrobin/WWW2025_MMCTR (what run.sh trains)
    "learning_rate": 5e-4, "batch_size": 128, "embedding_dim": 64, "transformer_layers": 2, "num_heads": 1,
    "dim_feedforward": 256, "transformer_dropout": 0.2, "net_dropout": 0.2, "first_k_cols": 16,
    "concat_max_pool": True, "dcn_cross_layers": 3, "dcn_hidden_units": (1024, 512, 256),
    "mlp_hidden_units": (64, 32), "batch_norm": False, "early_stop_patience": 5, "seed": 20242025,
    "embedding_regularizer": 0.0, "net_regularizer": 0.0, "epochs": 100, "optimizer": "adam",
}


def test_published_expid_and_tuner_point(tmp_path):
    """The _MicroLens expid resolves to the published values (max_len 100 = the challenge loader's default, the
    inverted mask that scored 0.9839); the tuner file's single point is the same."""
    import yaml
    from conftest import validated
    from model_zoo.config import CONFIG_DIR

    params = validated("Transformer_DCN_MicroLens", tmp_path)
    assert {k: params[k] for k in PUBLISHED} == PUBLISHED
    assert params["max_len"] == 100 and params["faithful_padding_mask"] is True
    fixed = validated("Transformer_DCN_fixed_MicroLens", tmp_path)
    assert {k: fixed[k] for k in PUBLISHED} == PUBLISHED and fixed["faithful_padding_mask"] is False
    space = yaml.safe_load((CONFIG_DIR / "tuner" / "transformer_dcn_microlens_1m_x1.yaml").read_text())["tuner_space"]
    for key, value in space.items():
        assert not isinstance(value, list) or len(value) == 1, f"{key}: the published space is a single point"
        value = tuple(value[0]) if isinstance(value, list) else value
        assert value == PUBLISHED[key], key


# ---- config checks ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("overrides, message", [
    ({"num_heads": 3}, r"num_heads=3 must be >= 1 and divide the token size 2 \* D = 64"),
    ({"first_k_cols": 0}, r"first_k_cols=0; expected an integer >= 1"),
    ({"transformer_dropout": 1.0}, r"transformer_dropout=1.0; expected a number >= 0 and < 1"),
    ({"faithful_padding_mask": "yes"}, r"faithful_padding_mask='yes'; expected true or false"),
    ({"dcn_hidden_units": []}, r"dcn_hidden_units=\(\); expected at least one layer size"),
    ({"first_k_cols": 20}, r"first_k_cols=20 exceeds max_len=16"),
    ({"faithful_padding_mask": True, "position_encoding": "learned"}, r"'position_encoding: learned' has \(almost\) "
                                                                        r"no effect with faithful_padding_mask"),
    ({"num_positions": 8}, r"'num_positions' is read only with position_encoding: learned"),
    ({"first_k_col": 4}, r"unknown key 'first_k_col' for Transformer_DCN \(did you mean 'first_k_cols'\?\)"),
])
def test_invalid_config_is_named(experiment, overrides, message):
    with pytest.raises(ConfigError, match=message):
        experiment("Transformer_DCN_test", **overrides)
