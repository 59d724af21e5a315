"""QIN: the ReLU target attention (no softmax), the quadratic layers, the published sizes, and bad config values.

The registry-parametrized checks (shape, range, gradients, round trip, seeds, golden outputs) are in test_models.py.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from model_zoo.config import CONFIG_DIR, resolve_params, validate_params
from model_zoo.datasets.prepare import build_feature_map
from model_zoo.errors import ConfigError
from model_zoo.experiment import model_kwargs
from model_zoo.QIN import QIN
from model_zoo.QIN.QIN import QuadraticLayer, QuadraticNetwork, ReLUTargetAttention


def validate(expid: str, tmp_path: Path, **overrides):
    resolved = resolve_params(expid, None, overrides={"verbose": 0, **overrides}, work_dir=tmp_path)
    return validate_params(resolved, QIN)


def identity_attention(dim: int, **kwargs) -> ReLUTargetAttention:
    attention = ReLUTargetAttention(dim, dim, **kwargs)
    with torch.no_grad():
        for linear in (attention.W_q, attention.W_k, attention.W_v, attention.W_o):
            linear.weight.copy_(torch.eye(dim))
    return attention


# ---- attention ----------------------------------------------------------------------------------------------------
def test_attention_golden_example_by_hand():
    """Identity projections, no scale: weights = relu(t·h_j · m_j) = [2, 1, 0, 0] (sum 3, not 1: no softmax);
    pooled = 2·[2, 0] + 1·[1, 1] = [5, 1]; output = pooled + t = [6, 1]. The padded item [5, 5] would score 5."""
    attention = identity_attention(2, use_scale=False)
    target = torch.tensor([[1.0, 0.0]])
    history = torch.tensor([[[2.0, 0.0], [1.0, 1.0], [-1.0, 0.0], [5.0, 5.0]]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    with torch.no_grad():
        assert torch.equal(attention.weights(target, history, mask), torch.tensor([[2.0, 1.0, 0.0, 0.0]]))
        assert torch.equal(attention(target, history, mask), torch.tensor([[6.0, 1.0]]))
        scaled = identity_attention(2, use_scale=True)
        assert torch.allclose(scaled.weights(target, history, mask), torch.tensor([[2.0, 1.0, 0.0, 0.0]]) / 2 ** 0.5)


def test_attention_weights_are_not_normalised():
    torch.manual_seed(0)
    attention = ReLUTargetAttention(6, 12)
    target, history, mask = torch.randn(16, 6), torch.randn(16, 5, 6), torch.ones(16, 5)
    with torch.no_grad():
        weights = attention.weights(target, history, mask)
        sums = weights.sum(dim=1)
        assert (weights >= 0).all() and not torch.allclose(sums, torch.ones_like(sums))
        assert (sums == 0).any() or (sums > 1).any()
        # positively homogeneous in the query: doubling the target doubles every weight (a softmax would sharpen)
        assert torch.allclose(attention.weights(2 * target, history, mask), 2 * weights, atol=1e-6)


def test_padding_contributes_nothing_and_empty_history_returns_the_target():
    torch.manual_seed(0)
    attention = ReLUTargetAttention(6, 12)
    target, history = torch.randn(4, 6), torch.randn(4, 5, 6)
    mask = torch.tensor([[0, 0, 1, 1, 1], [0, 0, 0, 0, 1], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]], dtype=torch.float)
    changed = torch.where(mask.unsqueeze(-1) > 0, history, torch.randn(4, 5, 6) * 100)
    with torch.no_grad():
        out = attention(target, history, mask)
        assert torch.equal(out, attention(target, changed, mask))
        assert torch.equal(out[3], target[3])  # no bias in W_o (the published run): nothing but the residual
        biased = ReLUTargetAttention(6, 12, output_bias=True)
        assert torch.allclose(biased(target, history, mask)[3], target[3] + biased.W_o.bias)


def test_padding_free_attention_equals_the_dense_one():
    torch.manual_seed(0)
    attention = ReLUTargetAttention(6, 12, output_bias=True)
    target, history = torch.randn(4, 6), torch.randn(4, 5, 6)
    mask = (torch.rand(4, 5) > 0.4).float()
    mask[3] = 0
    rows, cols = mask.nonzero(as_tuple=True)
    with torch.no_grad():
        assert torch.allclose(attention.forward_valid(target, rows, history[rows, cols]),
                              attention(target, history, mask), atol=1e-6)


# ---- quadratic layers ---------------------------------------------------------------------------------------------
def test_quadratic_layer_by_hand():
    """d = 2, R = 2: blocks W_1 x + b_1 = [x1, 2 x2] + [1, 0], W_2 x + b_2 = [x2, 0] + [0, 1];
    x = [1, 3] -> sum of blocks = [2 + 3, 6 + 1] = [5, 7]; output = x ⊙ [5, 7] = [5, 21]."""
    layer = QuadraticLayer(2, num_row=2)
    with torch.no_grad():
        layer.linear.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0], [0.0, 1.0], [0.0, 0.0]]))
        layer.linear.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 1.0]))
        assert torch.equal(layer(torch.tensor([[1.0, 3.0]])), torch.tensor([[5.0, 21.0]]))


def test_quadratic_layer_in_eval_equals_one_summed_linear():
    """The R blocks are summed after the product (as published): at evaluation, x ⊙ (W x + b) with W = Σ_r W_r."""
    torch.manual_seed(0)
    layer = QuadraticLayer(5, num_row=3, dropout=0.5).eval()
    x = torch.randn(7, 5)
    weight = layer.linear.weight.view(3, 5, 5).sum(dim=0)
    bias = layer.linear.bias.view(3, 5).sum(dim=0)
    with torch.no_grad():
        assert layer(x).shape == (7, 5)
        assert torch.allclose(layer(x), x * (x @ weight.T + bias), atol=1e-5)


def test_qnn_shapes_and_residual():
    torch.manual_seed(0)
    qnn = QuadraticNetwork(6, num_layers=3, num_row=2, dropout=0.1).eval()
    x = torch.randn(4, 6)
    with torch.no_grad():
        assert qnn(x).shape == (4, 1)
        assert [layer.linear.out_features for layer in qnn.layers] == [12, 12, 12]
        for layer in qnn.layers:  # quadratic terms 0: BN(0) = 0 in eval, PReLU(0) = 0, only the residual is left
            layer.linear.weight.zero_(), layer.linear.bias.zero_()
        assert torch.allclose(qnn(x), qnn.fc(x), atol=1e-6)
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in QuadraticNetwork(6, 2, batch_norm=False).modules())


# ---- the model ----------------------------------------------------------------------------------------------------
def test_published_parameter_count(tmp_path):
    """The published dims (embedding_dim 128, D 384, A 768, QNN 1024 x 4 rows x 4 layers) on the tiny world's
    vocabularies: the non-embedding part is vocab-free, the embedding part follows from MicroLens_1M_x1's vocab sizes.
    Together they give the published run's 31,244,293 (salmon1802/QIN log QIN_variety_v9_9701)."""
    params = validate("QIN_MicroLens", tmp_path, dataset_id="MicroLens_synth_tiny")
    model = QIN(build_feature_map(params, tmp_path / "cache"), **model_kwargs(params, QIN))
    non_embedding = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("embedding_layer"))
    assert model.item_info_dim == 384 and model.qnn_dim == 1024
    # attention: W_q, W_k, W_v 384x768 and W_o 768x384 without bias; QNN: 4 x (Linear 1024->4096, BN, PReLU) + fc
    assert non_embedding == 4 * 384 * 768 + 4 * (1024 * 4096 + 4096 + 2 * 1024 + 1) + 1024 + 1 == 17_982_469
    projection = model.embedding_layer.embedding_layer.feature_encoders["item_emb_d128"].weight.numel()
    assert projection == 128 * 128  # the multimodal vector's Linear(128, 128, bias=False), as in fuxictr 2.3.7
    real = yaml.safe_load((CONFIG_DIR / "dataset_config.yaml").read_text())["MicroLens_1M_x1"]["feature_cols"]
    table_rows = sum(col["vocab_size"] for col in real if col.get("type") in ("categorical", "sequence"))
    assert table_rows == 11 + 11 + 91718 + 11740
    assert non_embedding + projection + 128 * table_rows == 31_244_293


def test_lr_decay_factor_is_used_by_the_plateau_decay(experiment):
    model = experiment("QIN_test", seed=0, lr_decay_factor=0.5).model
    model.optimizer.param_groups[0]["lr"] = 2e-3
    assert model.lr_decay() == pytest.approx(1e-3)  # FuxiCTR's early-stopping loop calls it without a factor
    assert model.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3)


def test_published_search_space():
    space = yaml.safe_load((CONFIG_DIR / "tuner" / "qin_microlens_1m_x1.yaml").read_text())["tuner_space"]
    assert space == {"batch_size": [8192], "embedding_regularizer": [2e-4], "embedding_dim": [128],
                     "learning_rate": [2e-3], "net_dropout": [0.1], "batch_norm": True, "num_layers": [4],
                     "num_row": [3, 4]}


@pytest.mark.parametrize("overrides, message", [
    ({"num_row": 0}, r"num_row=0; expected an integer >= 1"),
    ({"num_layers": 2.5}, r"num_layers=2.5; expected an integer >= 1"),
    ({"net_dropout": 1.0}, r"net_dropout=1.0; expected a number >= 0 and < 1"),
    ({"attention_dim": 0}, r"attention_dim=0; expected an integer >= 1 or null"),
    ({"attention_output_bias": "no"}, r"attention_output_bias='no'; expected true or false"),
    ({"lr_decay_factor": 1.0}, r"lr_decay_factor=1.0; expected a number > 0 and < 1"),
    ({"lr_decay_factor": 0}, r"lr_decay_factor=0; expected a number > 0 and < 1"),
    ({"position_encoding": "sinusoid"}, r"position_encoding='sinusoid'; expected one of \('none', 'learned'\)"),
    ({"num_positions": 8}, r"'num_positions' is read only with position_encoding: learned"),
    ({"reduce_lr_on_plateau": False, "lr_decay_factor": 0.5}, r"'lr_decay_factor' is read only with reduce_lr_on"),
    ({"num_heads": 2}, r"unknown key 'num_heads' for QIN"),
    ({"num_rows": 2}, r"unknown key 'num_rows' for QIN \(did you mean 'num_row'\?\)"),
])
def test_bad_config_values_are_named(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        validate("QIN_test", tmp_path, **overrides)


@pytest.mark.parametrize("build, message", [
    (lambda: QuadraticLayer(4, num_row=0), r"QuadraticLayer: num_row=0; expected an integer >= 1"),
    (lambda: QuadraticNetwork(4, num_layers=0), r"QuadraticNetwork: num_layers=0; expected an integer >= 1"),
    (lambda: ReLUTargetAttention(8, 0), r"ReLUTargetAttention: attention_dim=0; expected an integer >= 1"),
])
def test_bad_block_arguments_are_named(build, message):
    with pytest.raises(ConfigError, match=message):
        build()
