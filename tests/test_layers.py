"""Tests of the shared target-attention backbone (model_zoo/layers/target_attention.py) and of the heads built on it.

Layer tests use random tensors; model tests use a feature map built from the `<Model>_test` params (no data files)
and a hand-made MMCTRBatch whose first row has an all-padding history.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Dict

import pytest
import torch
from fuxictr.pytorch.layers import BilinearInteractionV2, CrossNetMix, CrossNetV2

from conftest import validated
from model_zoo.datasets import prepare
from model_zoo.experiment import model_kwargs
from model_zoo.datasets.loader import MMCTRBatch
from model_zoo.DIN_CrossNet import DIN_CrossNet, build_crossnet
from model_zoo.DIN_SENet import DIN_SENet
from model_zoo.FiBiNET_Bilinear import FiBiNET_Bilinear
from model_zoo.FiBiNET_Bilinear.FiBiNET_Bilinear import _bilinear
from model_zoo.layers import TargetAttention, TargetAttentionBackbone

B, L, D, d = 6, 5, 32, 8  # batch, history length, item vector size, field size (as in the `_test` expids)
ATTENTIONS = ({"attention_type": "din", "attention_hidden_units": (16,)},
              {"attention_type": "din", "attention_hidden_units": (16,), "din_use_softmax": True},
              {"attention_type": "multihead", "num_heads": 4},
              {"attention_type": "multihead", "num_heads": 2, "attention_dim": 16})


def _mask(seed: int = 0) -> torch.Tensor:
    """(B, L) mask, 1 = valid: row 0 all padding, row 1 all valid, the rest random with >= 1 valid item."""
    g = torch.Generator().manual_seed(seed)
    mask = (torch.rand(B, L, generator=g) > 0.4).float()
    mask[:, -1] = 1.0
    mask[0], mask[1] = 0.0, 1.0
    return mask


def _tensors(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, D, generator=g), torch.randn(B, L, D, generator=g), _mask(seed)


# ---- the attention pooling ----------------------------------------------------------------------------------------
def test_multihead_one_head_without_projections_equals_masked_softmax():
    pool = TargetAttention(D, attention_type="multihead", num_heads=1, use_qkvo=False).eval()
    target, history, mask = _tensors()
    scores = (history @ target.unsqueeze(-1)).squeeze(-1) / D ** 0.5  # (B, L)
    weights = scores.masked_fill(mask == 0, float("-inf")).softmax(dim=-1)[1:]  # row 0 has no valid item
    expected = (weights.unsqueeze(-1) * history[1:]).sum(dim=1)  # (B-1, D)
    assert torch.allclose(pool(target, history, mask)[1:], expected, atol=1e-6)


def test_din_without_softmax_equals_masked_weighted_sum():
    pool = TargetAttention(D, attention_type="din", attention_hidden_units=(16,)).eval()
    target, history, mask = _tensors()
    expanded = target.unsqueeze(1).expand(-1, L, -1)
    scorer_in = torch.cat([expanded, history, expanded - history, expanded * history], dim=-1)  # (B, L, 4D)
    weights = pool.attention.attention_layer(scorer_in.view(-1, 4 * D)).view(B, L) * mask
    expected = (weights.unsqueeze(-1) * history).sum(dim=1)
    assert torch.allclose(pool(target, history, mask), expected, atol=1e-6)


@pytest.mark.parametrize("kwargs", ATTENTIONS, ids=lambda k: "-".join(str(v) for v in k.values()))
def test_all_padding_history_gives_zero_not_nan(kwargs):
    pool = TargetAttention(D, **kwargs).eval()
    target, history, _ = _tensors()
    empty = torch.zeros(B, L)
    raw = pool.attention(target, history, empty)  # FuxiCTR's own layer: finite, but not 0 once softmax is involved
    assert torch.isfinite(raw).all()
    if kwargs["attention_type"] == "multihead" or kwargs.get("din_use_softmax"):
        assert raw.abs().sum() > 0  # the mean of the padding vectors: why TargetAttention zeroes these rows
    pooled = pool(target, history, empty)
    assert torch.isfinite(pooled).all() and torch.equal(pooled, torch.zeros(B, D))


@pytest.mark.parametrize("kwargs", ATTENTIONS, ids=lambda k: "-".join(str(v) for v in k.values()))
def test_permuting_history_with_its_mask_leaves_pooled_vector_unchanged(kwargs):
    pool = TargetAttention(D, **kwargs).eval()
    target, history, mask = _tensors()
    perm = torch.tensor([3, 0, 4, 1, 2])
    assert torch.allclose(pool(target, history, mask), pool(target, history[:, perm], mask[:, perm]), atol=1e-5)


def test_target_attention_example_runs():
    pool = TargetAttention(32, attention_type="multihead", num_heads=4)
    assert pool(torch.randn(2, 32), torch.randn(2, 5, 32), torch.ones(2, 5)).shape == (2, 32)


# ---- the fields -----------------------------------------------------------------------------------------------------
def _backbone(**kwargs) -> TargetAttentionBackbone:
    return TargetAttentionBackbone({"item_id": d, "item_tags": d, "item_emb_d128": 2 * d},
                                   {"likes_level": d, "views_level": d}, d, **kwargs).eval()


def test_stacked_fields_are_the_flat_vector_cut_into_chunks_of_d():
    backbone = _backbone(attention_type="multihead", num_heads=2)
    target, history, mask = _tensors()
    fields = backbone(torch.randn(B, 2, d), target, history, mask)
    stacked = backbone.stack(fields)  # (B, F, d)
    assert stacked.shape == (B, backbone.num_fields, d) and backbone.num_fields == 2 + 2 * D // d
    assert torch.equal(stacked.flatten(start_dim=1), backbone.flatten(fields))
    assert backbone.flatten(fields).shape == (B, backbone.flat_dim)
    assert torch.equal(stacked[:, 2:6].flatten(start_dim=1), target)  # target chunks follow the context fields
    assert torch.equal(stacked[:, 6:].flatten(start_dim=1), fields.pooled_history)
    assert backbone.field_names == (
        "likes_level", "views_level", "target.item_id", "target.item_tags", "target.item_emb_d128[0]",
        "target.item_emb_d128[1]", "history.item_id", "history.item_tags", "history.item_emb_d128[0]",
        "history.item_emb_d128[1]")


def test_backbone_without_context_fields():
    backbone = TargetAttentionBackbone({"item_id": d, "item_emb": 2 * d}, {}, d, attention_type="multihead")
    target, history, mask = _tensors()
    fields = backbone(None, target[:, :3 * d], history[..., :3 * d], mask)
    assert backbone.stack(fields).shape == (B, 6, d) and backbone.flatten(fields).shape == (B, 6 * d)


def test_backbone_example_runs():
    backbone = TargetAttentionBackbone({"item_id": 8, "item_emb": 16}, {"likes_level": 8}, 8,
                                       attention_type="multihead", num_heads=2)
    fields = backbone(torch.randn(2, 1, 8), torch.randn(2, 24), torch.randn(2, 5, 24), torch.ones(2, 5))
    assert backbone.stack(fields).shape == (2, 7, 8)


# ---- the models on the backbone ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def feature_map(work_dir):
    return prepare.build_feature_map(validated("DIN_SENet_test", work_dir), work_dir / "cache")


@pytest.fixture(scope="module")
def batch() -> MMCTRBatch:
    g = torch.Generator().manual_seed(0)
    mask = _mask()
    item_ids = torch.randint(1, 401, (B, L + 1), generator=g)
    item_ids[:, :L] *= mask.long()  # padding positions hold item 0
    rows = B * (L + 1)
    item_dict = {"item_id": item_ids.flatten(), "item_tags": torch.randint(0, 200, (rows, 5), generator=g),
                 "item_emb_d128": torch.randn(rows, 128, generator=g)}
    batch_dict = {"likes_level": torch.randint(1, 11, (B,), generator=g),
                  "views_level": torch.randint(1, 11, (B,), generator=g),
                  "label": torch.randint(0, 2, (B,), generator=g).float()}
    return MMCTRBatch(batch_dict, item_dict, mask)


def _row(batch: MMCTRBatch, i: int) -> MMCTRBatch:
    """Row ``i`` of ``batch`` as a batch of one (its L + 1 joined item rows)."""
    return MMCTRBatch({k: v[i:i + 1] for k, v in batch.batch_dict.items()},
                      {k: v[i * (L + 1):(i + 1) * (L + 1)] for k, v in batch.item_dict.items()}, batch.mask[i:i + 1])


def _params(expid: str, tmp_path: Path, **overrides: Any) -> Dict[str, Any]:
    """Validated params of ``expid`` plus model-level ``overrides`` (not re-validated)."""
    return {**validated(expid, tmp_path), **overrides}


def _build(model_cls, feature_map, tmp_path: Path, seed: int = 0, **overrides: Any):
    torch.manual_seed(seed)
    params = _params(f"{model_cls.__name__}_test", tmp_path, **overrides)
    injected = {k: v for k, v in overrides.items() if k not in model_cls.config_schema()}  # e.g. crossnet=Module
    return model_cls(feature_map, **model_kwargs(params, model_cls), **injected).eval()


def test_model_fields_follow_the_feature_map(feature_map, batch, tmp_path):
    model = _build(DIN_SENet, feature_map, tmp_path)
    assert model.backbone.num_fields == 10 and model.backbone.field_names[4] == "target.item_emb_d128[0]"
    with torch.no_grad():
        fields = model.embed_fields(batch)
        assert torch.equal(fields.pooled_history[0], torch.zeros(model.item_info_dim))  # row 0: no history
        assert torch.isfinite(model(batch)["y_pred"]).all()


def test_din_crossnet_stacked_and_parallel_wire_differently(feature_map, batch, tmp_path):
    seen: Dict[str, Dict[str, torch.Tensor]] = {}
    for structure in ("stacked", "parallel"):
        model = _build(DIN_CrossNet, feature_map, tmp_path, model_structure=structure)
        record = seen.setdefault(structure, {})
        model.crossnet.register_forward_hook(lambda m, i, o, r=record: r.update(cross_in=i[0], cross_out=o))
        model.dnn.register_forward_hook(lambda m, i, o, r=record: r.update(dnn_in=i[0]))
        with torch.no_grad():
            record["y"] = model(batch)["y_pred"]
        record["fc_in"] = torch.tensor(model.fc.in_features)
    stacked, parallel = seen["stacked"], seen["parallel"]
    assert stacked["y"].shape == parallel["y"].shape == (B, 1)
    assert torch.equal(stacked["dnn_in"], stacked["cross_out"])  # cross -> DNN
    assert torch.equal(parallel["dnn_in"], parallel["cross_in"])  # cross || DNN, both on the flat fields
    flat_dim = parallel["cross_in"].shape[1]
    assert int(stacked["fc_in"]) == 16 and int(parallel["fc_in"]) == flat_dim + 16
    assert not torch.allclose(stacked["y"], parallel["y"])


def test_din_crossnet_takes_its_cross_network_as_a_module(feature_map, batch, tmp_path):
    flat_dim = _build(DIN_CrossNet, feature_map, tmp_path).backbone.flat_dim
    crossnet = CrossNetV2(flat_dim, num_layers=1)
    model = _build(DIN_CrossNet, feature_map, tmp_path, crossnet=crossnet)
    assert model.crossnet is crossnet
    assert any(p is crossnet.cross_layers[0].weight for p in model.parameters())
    with torch.no_grad():
        assert model(_row(batch, 2))["y_pred"].shape == (1, 1)


def test_build_crossnet_picks_the_variant():
    assert isinstance(build_crossnet(64, 3), CrossNetV2)
    assert isinstance(build_crossnet(64, 3, low_rank=8), CrossNetMix)
    mix = build_crossnet(64, num_layers=3, low_rank=8, num_experts=2)  # the docstring example
    assert isinstance(mix, CrossNetMix) and mix.num_experts == 2 and mix(torch.randn(4, 64)).shape == (4, 64)


def test_crossnet_mix_keeps_the_batch_dim_for_one_row(feature_map, batch, tmp_path):
    model = _build(DIN_CrossNet, feature_map, tmp_path)  # the _test expid uses CrossNetMix
    assert isinstance(model.crossnet, CrossNetMix)
    with torch.no_grad():
        assert model(_row(batch, 1))["y_pred"].shape == (1, 1)


@pytest.mark.parametrize("bilinear_type", ("field_all", "field_each", "field_interaction"))
def test_fibinet_bilinear_types(feature_map, batch, tmp_path, bilinear_type):
    model = _build(FiBiNET_Bilinear, feature_map, tmp_path, bilinear_type=bilinear_type)
    with torch.no_grad():
        y = model(batch)["y_pred"]
    assert y.shape == (B, 1) and torch.isfinite(y).all()
    assert not any("triu_index" in n for n, _ in model.named_parameters())
    assert not any("triu_index" in k for k in model.state_dict())


@pytest.mark.parametrize("bilinear_type", ("field_all", "field_each", "field_interaction"))
def test_bilinear_with_buffer_index_equals_fuxictr_layer(bilinear_type):
    torch.manual_seed(0)
    ours, theirs = _bilinear(10, d, bilinear_type), BilinearInteractionV2(10, d, bilinear_type=bilinear_type)
    theirs.bilinear_W.data.copy_(ours.bilinear_W.data)
    fields = torch.randn(B, 10, d)
    assert torch.allclose(ours(fields), theirs(fields), atol=1e-6)


# ---- invalid configurations -----------------------------------------------------------------------------------------
def test_invalid_model_structure(feature_map, tmp_path):
    with pytest.raises(ValueError, match=r"model_structure='diagonal'.*\('stacked', 'parallel'\)"):
        _build(DIN_CrossNet, feature_map, tmp_path, model_structure="diagonal")


def test_invalid_bilinear_type(feature_map, tmp_path):
    with pytest.raises(ValueError, match=r"bilinear_type='field_pair'.*'field_all', 'field_each', 'field_interaction'"):
        _build(FiBiNET_Bilinear, feature_map, tmp_path, bilinear_type="field_pair")


def test_item_size_not_a_multiple_of_field_dim(feature_map, tmp_path):
    with pytest.raises(ValueError, match=r"'item_emb_d128' has embedding size 12, not a multiple of field_dim=8"):
        TargetAttentionBackbone({"item_id": 8, "item_tags": 8, "item_emb_d128": 12}, {}, 8)
    odd_map = copy.deepcopy(feature_map)
    odd_map.features["item_emb_d128"]["embedding_dim"] = 12  # D = 28, not a multiple of d = 8
    with pytest.raises(ValueError, match=r"D=28\) divisible by field_dim"):
        _build(DIN_SENet, odd_map, tmp_path)


@pytest.mark.parametrize("model_cls, key, value, match", [
    (DIN_SENet, "attention_type", "transformer", r"attention_type='transformer'.*\('din', 'multihead'\)"),
    (DIN_SENet, "num_heads", 3, r"num_heads=3 must be >= 1 and divide attention_dim=32"),
    (DIN_SENet, "excitation_activation", "Tanh", r"excitation_activation='Tanh'.*\('ReLU', 'Sigmoid'\)"),
    (FiBiNET_Bilinear, "reduction_ratio", 0, r"reduction_ratio=0"),
    (DIN_CrossNet, "crossnet", "CrossNetV2", r"crossnet='CrossNetV2'; expected an nn.Module"),
    (DIN_CrossNet, "num_cross_layers", 0, r"num_cross_layers=0; expected an integer >= 1"),
])
def test_invalid_values_name_key_value_and_allowed(feature_map, tmp_path, model_cls, key, value, match):
    with pytest.raises(ValueError, match=match):
        _build(model_cls, feature_map, tmp_path, **{key: value})


def test_context_field_of_another_size():
    with pytest.raises(ValueError, match=r"context feature 'likes_level' has embedding size 4"):
        TargetAttentionBackbone({"item_id": 8}, {"likes_level": 4}, 8)


@pytest.mark.parametrize("output_activation", [None, "Sigmoid"])
def test_packed_din_equals_fuxictr_din_attention(output_activation):
    """The packed scorer (valid positions only, first layer split by target / item terms) equals FuxiCTR's
    DIN_Attention over the padded history, in value and in every gradient."""
    torch.manual_seed(0)
    pool = TargetAttention(12, attention_type="din", attention_hidden_units=(16, 8),
                           attention_output_activation=output_activation).eval()
    assert pool.packed
    target, history = torch.randn(5, 12, requires_grad=True), torch.randn(5, 7, 12, requires_grad=True)
    mask = (torch.rand(5, 7) > 0.6).float()
    mask[2] = 0  # an all-padding row
    grads = {}
    for name, layer in (("fuxictr", pool.attention), ("packed", pool)):
        pool.zero_grad(), setattr(target, "grad", None), setattr(history, "grad", None)
        out = layer(target, history, mask)
        (out * torch.linspace(-1, 1, 12)).sum().backward()
        grads[name] = [out.detach(), target.grad, history.grad] + [p.grad.clone() for p in pool.parameters()]
    for expected, got in zip(grads["fuxictr"], grads["packed"]):
        assert torch.allclose(got, expected, atol=1e-5)
    assert torch.equal(grads["packed"][0][2], torch.zeros(12))


@pytest.mark.parametrize("num_heads, use_scale, use_qkvo", [(1, True, True), (4, True, True), (2, False, True),
                                                            (3, True, False)])
def test_packed_multihead_equals_fuxictr_multihead_target_attention(num_heads, use_scale, use_qkvo):
    """The segment-softmax path (valid items only) equals FuxiCTR's MultiHeadTargetAttention over the padded history
    (padding vectors 0, as the zoo's embedder gives them), in value and every gradient, all-padding row included."""
    torch.manual_seed(0)
    dim = 12
    pool = TargetAttention(dim, attention_type="multihead", num_heads=num_heads, attention_dim=24, use_scale=use_scale,
                           use_qkvo=use_qkvo).eval()
    assert pool.packed
    mask = (torch.rand(6, 9) > 0.6).float()
    mask[2], mask[4] = 0, 1  # an all-padding row and a full row
    target = torch.randn(6, dim, requires_grad=True)
    history = (torch.randn(6, 9, dim) * mask.unsqueeze(-1)).requires_grad_()
    grads = {}
    for name, layer in (("fuxictr", pool.attention), ("zoo_padded", pool.padded), ("packed", pool)):
        pool.zero_grad(), setattr(target, "grad", None), setattr(history, "grad", None)
        out = layer(target, history, mask)
        (out * torch.linspace(-1, 1, dim)).sum().backward()
        valid_history_grad = history.grad[mask > 0]
        grads[name] = [out.detach(), target.grad, valid_history_grad] + [p.grad.clone() for p in pool.parameters()]
    for reference in ("fuxictr", "zoo_padded"):
        for expected, got in zip(grads[reference], grads["packed"]):
            assert torch.allclose(got, expected, atol=1e-5), reference
    assert torch.equal(grads["packed"][0][2], torch.zeros(dim)), "an empty history pools to exactly 0"
    assert len(grads["packed"]) == 3 + len(list(pool.parameters()))


def test_packed_multihead_dropout_acts_on_attention_weights():
    torch.manual_seed(0)
    pool = TargetAttention(8, attention_type="multihead", num_heads=2, attention_dropout=0.5).train()
    target, history, mask = torch.randn(4, 8), torch.randn(4, 5, 8), torch.ones(4, 5)
    outs = [pool(target, history, mask) for _ in range(2)]
    assert not torch.equal(*outs), "training mode draws a new dropout mask"
    pool.eval()
    assert torch.allclose(pool(target, history, mask), pool.padded(target, history, mask), atol=1e-5)


def test_din_softmax_and_dice_keep_the_full_layer():
    assert not TargetAttention(8, attention_type="din", din_use_softmax=True).packed
    assert not TargetAttention(8, attention_type="din", attention_hidden_activations="Dice").packed


# ---- recency (position) information -----------------------------------------------------------------------------------
from model_zoo.DIN import DIN  # noqa: E402
from model_zoo.layers.position import (RecencyEmbedding, RecencyWeights, build_position_encoding,  # noqa: E402
                                       recency_index)

POSITION_MODELS = (DIN, DIN_SENet, DIN_CrossNet, FiBiNET_Bilinear)


def test_recency_index_counts_valid_items_after_each_position():
    mask = torch.tensor([[0.0, 0.0, 1.0, 1.0, 1.0],    # left-padded, most recent last: L - 1 - j
                         [1.0, 1.0, 1.0, 1.0, 1.0],
                         [0.0, 0.0, 0.0, 0.0, 0.0],
                         [1.0, 0.0, 1.0, 0.0, 1.0]])   # gaps: counts valid items, not positions
    assert recency_index(mask).tolist() == [[0, 0, 2, 1, 0], [4, 3, 2, 1, 0], [0] * 5, [2, 0, 1, 0, 0]]
    assert recency_index(mask[1]).tolist() == [4, 3, 2, 1, 0]  # one history (serving)


def test_recency_embedding_clips_masks_and_flattens_like_nonzero():
    positions = RecencyEmbedding(num_positions=3, dim=4)
    assert torch.equal(positions.weight, torch.zeros(3, 4))  # starts at zero, no random numbers drawn
    with torch.no_grad():
        positions.weight.copy_(torch.arange(12.0).view(3, 4))
    mask = _mask()
    emb = positions(mask)  # (B, L, 4)
    rec = recency_index(mask).clamp(max=2)
    assert torch.equal(emb[mask > 0], positions.weight[rec[mask > 0]])
    assert torch.equal(emb[mask == 0], torch.zeros(int((mask == 0).sum()), 4))
    assert torch.equal(positions.of_valid(mask), emb[mask > 0])
    assert build_position_encoding("none", 8, 4) is None
    with pytest.raises(ValueError, match=r"position_encoding='sinusoid'; expected one of \('none', 'learned'\)"):
        build_position_encoding("sinusoid", 8, 4)
    with pytest.raises(ValueError, match=r"num_positions=1; expected an integer >= 2"):
        RecencyEmbedding(1, 4)


def _randomize_positions(model) -> None:
    with torch.no_grad():
        model.backbone.positions.weight.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(5))


@pytest.mark.parametrize("model_cls", POSITION_MODELS, ids=lambda c: c.__name__)
def test_positions_off_equal_the_order_blind_model_and_zero_positions_too(feature_map, batch, tmp_path, model_cls):
    """``none`` builds exactly today's model; ``learned`` starts at zero and draws no random numbers, so at
    initialisation it computes the same outputs, bit for bit."""
    before = _build(model_cls, feature_map, tmp_path, seed=3)
    off = _build(model_cls, feature_map, tmp_path, seed=3, position_encoding="none")
    learned = _build(model_cls, feature_map, tmp_path, seed=3, position_encoding="learned", num_positions=4)
    assert off.backbone.positions is None and learned.backbone.positions is not None
    assert [n for n, _ in before.named_parameters()] == [n for n, _ in off.named_parameters()]
    with torch.no_grad():
        expected = before(batch)["y_pred"]
        assert torch.equal(off(batch)["y_pred"], expected)
        assert torch.equal(learned(batch)["y_pred"], expected)


@pytest.mark.parametrize("model_cls", POSITION_MODELS, ids=lambda c: c.__name__)
def test_positions_make_the_history_order_matter(feature_map, batch, tmp_path, model_cls):
    model = _build(model_cls, feature_map, tmp_path, position_encoding="learned", num_positions=4)
    _randomize_positions(model)
    one = _row(batch, 1)  # row 1: every position valid
    perm = torch.tensor([4, 3, 2, 1, 0, 5])  # reverse the history, the target stays last
    flipped = MMCTRBatch(one.batch_dict, {k: v[perm] for k, v in one.item_dict.items()}, one.mask)
    with torch.no_grad():
        assert not torch.allclose(model(one)["y_pred"], model(flipped)["y_pred"], atol=1e-6)
        model.backbone.positions.weight.zero_()
        torch.testing.assert_close(model(one)["y_pred"], model(flipped)["y_pred"], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("kwargs", ATTENTIONS, ids=lambda k: "-".join(str(v) for v in k.values()))
def test_positions_keep_empty_histories_at_zero(kwargs):
    backbone = _backbone(positions=RecencyEmbedding(4, D), **kwargs)
    torch.nn.init.normal_(backbone.positions.weight)
    target, history, _ = _tensors()
    fields = backbone(torch.randn(B, 2, d), target, history, torch.zeros(B, L))
    assert torch.equal(fields.pooled_history, torch.zeros(B, D))


@pytest.mark.parametrize("output_activation", [None, "Sigmoid"])
def test_padding_free_din_with_positions_equals_full_path(output_activation):
    """The packed scorer on valid items + ``of_valid`` positions equals FuxiCTR's DIN_Attention on the padded
    history + ``positions(mask)``: values and every gradient, the position table's included."""
    torch.manual_seed(0)
    backbone = TargetAttentionBackbone({"item_id": 6, "item_emb": 6}, {}, 6, positions=RecencyEmbedding(4, 12),
                                       attention_type="din", attention_hidden_units=(16, 8),
                                       attention_output_activation=output_activation).eval()
    torch.nn.init.normal_(backbone.positions.weight)
    assert backbone.attention.packed
    target, history = torch.randn(5, 12, requires_grad=True), torch.randn(5, 7, 12)
    mask = (torch.rand(5, 7) > 0.5).float()
    mask[2] = 0  # an all-padding row
    mask[3] = 1  # a full row: distances beyond the table share its last row
    rows, cols = mask.nonzero(as_tuple=True)
    seq = history[rows, cols].clone().requires_grad_(True)  # the valid items; the full path pads them again
    grads = {}
    for name in ("full", "packed"):
        backbone.zero_grad(), setattr(target, "grad", None), setattr(seq, "grad", None)
        if name == "full":
            fields = backbone(None, target, torch.zeros(5, 7, 12).index_put((rows, cols), seq), mask)
        else:
            fields = backbone.forward_valid(None, target, rows, seq, mask)
        (fields.pooled_history * torch.linspace(-1, 1, 12)).sum().backward()
        grads[name] = [fields.pooled_history.detach(), target.grad, seq.grad] + [
            p.grad.clone() for p in backbone.parameters()]
    for expected, got in zip(grads["full"], grads["packed"]):
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert grads["packed"][3 + [n for n, _ in backbone.named_parameters()].index("positions.weight")].abs().sum() > 0
    with pytest.raises(ValueError, match="needs the history mask"):
        backbone.forward_valid(None, target, rows, seq)


@pytest.mark.parametrize("model_cls", POSITION_MODELS, ids=lambda c: c.__name__)
def test_model_padding_free_path_equals_full_path_with_positions(feature_map, batch, tmp_path, model_cls):
    kwargs = {"attention_type": "din"} if model_cls is not DIN else {}
    model = _build(model_cls, feature_map, tmp_path, position_encoding="learned", num_positions=3, **kwargs)
    _randomize_positions(model)
    with torch.no_grad():
        model.skip_padding_items = True
        fast = model(batch)["y_pred"]
        model.skip_padding_items = False
        full = model(batch)["y_pred"]
    torch.testing.assert_close(fast, full, atol=1e-6, rtol=1e-5)


# ---- items unseen in train: the unknown-item vector and ID dropout -------------------------------------------------
def _id_model(feature_map, tmp_path, **overrides):
    model = _build(DIN, feature_map, tmp_path, **overrides)
    with torch.no_grad():
        model.unknown_item_embedding.normal_(generator=torch.Generator().manual_seed(1))
    return model


def test_unknown_item_vector_replaces_exactly_the_unseen_ids(feature_map, tmp_path):
    model = _id_model(feature_map, tmp_path, unknown_item=True, item_id_dropout=0.2).eval()
    seen = torch.ones(401, dtype=torch.bool)
    seen[0] = False  # padding, as prepare.train_item_mask marks it
    seen[[7, 8, 400]] = False  # cold items (400 is the last id, where FuxiCTR's identity vocab puts its OOV slot)
    model.set_train_items(seen)
    ids = torch.tensor([0, 1, 7, 8, 9, 400, 399, 0, 7])
    inputs = {"item_id": ids, "item_tags": torch.randint(0, 200, (9, 5)), "item_emb_d128": torch.randn(9, 128)}
    with torch.no_grad():
        got = model.embed_item_features(inputs)  # (9, D): item_id chunk first, in feature map order
        plain = model.embedding_layer(inputs, flatten_emb=True)
    id_dim = model._emb_dim("item_id")
    cold = torch.tensor([False, False, True, True, False, True, False, False, True])
    assert torch.equal(got[cold, :id_dim], model.unknown_item_embedding.expand(int(cold.sum()), -1))
    assert torch.equal(got[~cold], plain[~cold])  # seen ids and padding untouched
    assert torch.equal(got[:, id_dim:], plain[:, id_dim:])  # content features always kept
    assert torch.equal(got[0], plain[0]) and torch.equal(plain[0, :id_dim], torch.zeros(id_dim))
    assert model.unknown_item_rows(ids).tolist() == cold.tolist()


def test_id_dropout_only_in_training_mode_and_seeded(feature_map, tmp_path):
    model = _id_model(feature_map, tmp_path, item_id_dropout=0.25)
    ids = torch.randint(1, 401, (20000,))
    ids[:5000] = 0  # padding is never dropped
    model.eval()
    assert not model.unknown_item_rows(ids).any()  # evaluation: no dropout, and unknown_item is off
    model.train()
    torch.manual_seed(0)
    first = model.unknown_item_rows(ids)
    torch.manual_seed(0)
    assert torch.equal(model.unknown_item_rows(ids), first)  # seeded by the global torch RNG
    assert not first[:5000].any()
    assert abs(first[5000:].float().mean().item() - 0.25) < 0.02
    torch.manual_seed(1)
    assert not torch.equal(model.unknown_item_rows(ids), first)


def test_unknown_item_needs_the_train_item_mask(feature_map, batch, tmp_path):
    model = _build(DIN, feature_map, tmp_path, unknown_item=True, item_id_dropout=0.1)  # built without data
    with pytest.raises(RuntimeError, match=r"unknown_item=True: no train item mask"):
        model(batch)
    with pytest.raises(ValueError, match=r"train_items has 10 entries; expected the item_id vocab_size 401"):
        model.set_train_items(torch.ones(10, dtype=torch.bool))
    plain = _build(DIN, feature_map, tmp_path)
    assert plain.unknown_item_embedding is None and plain.unknown_item_rows(torch.tensor([1, 2])) is None


@pytest.mark.parametrize("obj", [RecencyEmbedding, RecencyWeights, recency_index], ids=lambda o: o.__name__)
def test_position_docstring_examples_run(obj):
    import inspect
    import re
    code = inspect.cleandoc(inspect.getdoc(obj).split("Example::", 1)[1])
    namespace = {"torch": torch, obj.__name__: obj}
    exec(compile(code, f"<{obj.__name__} example>", "exec"), namespace)  # noqa: S102  (our own docstring)
    shapes = re.findall(r"^(\w+) = [^#\n]*# \(([\d, ]+)\)", code, flags=re.MULTILINE)
    assert shapes, "the example documents its output shape"
    for name, shape in shapes:
        assert tuple(namespace[name].shape) == tuple(int(x) for x in shape.split(",")), name
    if obj is recency_index:
        assert namespace["r"].tolist() == [[0, 0, 2, 1, 0]]
    if obj is RecencyWeights:
        assert namespace["w"].tolist() == [[0.0, 1.0, 1.0]]
