"""DMF (Decoupled Multimodal Fusion): equivalences, edge cases and config errors (dmf_spec.md section 12)."""
from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Tuple

import pytest
import torch

from conftest import validated
from model_zoo.datasets import prepare
from model_zoo.datasets.loader import MMCTRBatch
from model_zoo.DMF.attention import masked_softmax as _masked_softmax
from model_zoo.DMF.DMF import DMF, DecoupledTargetAttention, EarlyFusionTargetAttention
from model_zoo.errors import DataError
from model_zoo.experiment import build_experiment
from model_zoo.layers import similarity
from model_zoo.layers.position import recency_index
from model_zoo.layers.similarity import (SimilarityBucketizer, SimilarityHistogram, equal_width_edges,
                                         quantile_edges, segment_cosines)


@pytest.fixture()
def model_params(work_dir):
    """Factory: validated params of an expid on the session's work dir."""
    return lambda expid: validated(expid, work_dir)


def build(model_params, seed: int = 0, attach: bool = True, **overrides) -> Tuple[DMF, MMCTRBatch, dict, object]:
    """DMF from ``DMF_test`` params plus ``overrides`` (model-level: not re-validated, so switched-off parts may keep
    their keys) on the tiny world, and its first 64 valid rows. ``attach=False`` builds it without its data."""
    params = {**model_params("DMF_test"), "seed": seed, **overrides}
    exp = build_experiment(params, cache_dir=Path(params["data_root"]).parent / "cache", progress=False)
    model = exp.model
    if not attach:
        torch.manual_seed(seed)
        model = DMF(exp.feature_map, **{k: v for k, v in params.items() if k in DMF.config_schema()},
                    model_root=params["model_root"], metrics=params["metrics"], verbose=0)
    return model, exp.loader("valid").batch(slice(0, 64)), exp.params, (exp.files, exp.item_table)


def randomize_new_parts(model: DMF, batch: MMCTRBatch) -> None:
    """Non-zero recency table and unknown-item vector (both start at zero), ID vectors large enough for the attention
    to be far from uniform (FuxiCTR's start at std 1e-4; uniform weights would hide where a position term lands),
    and a few of the batch's items marked unseen in train, so that the equivalences below exercise them."""
    with torch.no_grad():
        gen = torch.Generator().manual_seed(4)
        model.embedding_layer.embedding_layer.embedding_layers["item_id"].weight.normal_(0.0, 0.5, generator=gen)
        if model.positions is not None:
            model.positions.weight.normal_(0.0, 0.5, generator=gen)
        if model.unknown_item_embedding is not None:
            model.unknown_item_embedding.normal_(0.0, 0.5, generator=gen)
        if model.histogram_weights is not None:
            model.histogram_weights.weight.uniform_(0.0, 2.0, generator=gen)
    if model.unknown_item:
        seen = model.train_items.clone()
        seen[batch.item_dict["item_id"][5::7]] = False  # some targets and history items become "cold"
        seen[0] = False
        model.set_train_items(seen)


def randomize_buckets(module: torch.nn.Module) -> None:
    """Give every bucket/similarity table non-trivial values (their init is already random; make it larger)."""
    for name, param in module.named_parameters():
        if "bucket" in name or "similarity" in name:
            torch.nn.init.normal_(param, std=0.5)


# ---- serving path -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("overrides", [
    {},
    {"attention_mode": "early_fusion"},
    {"mm_source": "item_info"},
    {"num_heads": 2, "attention_output_dim": 6, "cmm_mode": "gate", "batch_norm": True},
    {"mm_in_keys": True, "sim_on_values": False, "normalize_histogram": True},
    {"use_dta": False},
    {"use_histogram": False, "cmm_mode": "weighted_sum"},
    {"bucket_edges": "quantile"},
    {"position_encoding": "learned", "num_positions": 4, "bucket_edges": "quantile"},
    {"position_encoding": "learned", "bucket_edges": "quantile", "mm_in_keys": True, "unknown_item": True,
     "item_id_dropout": 0.5, "attention_mode": "early_fusion"},
    {"position_encoding": "learned", "bucket_edges": "quantile", "num_heads": 2, "unknown_item": True,
     "item_id_dropout": 0.5, "mm_source": "item_info"},
    {"position_encoding": "learned", "num_positions": 3, "tier_edges": "quantile", "histogram_weighting": "recency",
     "normalize_histogram": True},
], ids=["default", "early_fusion", "item_info", "heads_gate_bn", "mm_in_keys", "no_dta", "no_hist", "quantile", "positions_quantile",
        "positions_mm_in_keys_unknown_ef", "positions_unknown_item_info",
        "positions_quantile_tiers_recency_histogram"])
def test_serving_path_equals_training_path(model_params, overrides):
    model, batch, _, _ = build(model_params, **overrides)
    randomize_new_parts(model, batch)
    model.eval()
    with torch.no_grad():
        expected = model(batch)["y_pred"]  # (64, 1)
        for row in range(0, 64, 4):  # row by row: each row's own target
            user, cands = model.serving_request(batch, row)
            torch.testing.assert_close(model.forward_serving(user, cands), expected[row:row + 1], atol=1e-5, rtol=0)
        # one user, 32 candidates: the serving path equals the training path on the expanded batch
        user, cands = model.serving_request(batch, row=3, candidate_rows=range(32))
        served = model.forward_serving(user, cands)
        assert served.shape == (32, 1)
        torch.testing.assert_close(served, model(model.request_to_batch(user, cands))["y_pred"], atol=1e-5, rtol=0)
        assert torch.allclose(served[3], expected[3], atol=1e-5)


# ---- attention equivalences -----------------------------------------------------------------------------------------
def _attention_inputs(shared: bool, rows: int = 5, length: int = 7, dim: int = 6, num_mod: int = 2,
                      num_buckets: int = 4, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    target = torch.randn(rows, dim, generator=gen)
    history = torch.randn(*(() if shared else (rows,)), length, dim, generator=gen)
    offsets = (torch.arange(num_mod) * num_buckets).view(1, num_mod, 1)
    bucket_ids = torch.randint(0, num_buckets, (rows, num_mod, length), generator=gen) + offsets
    mask = (torch.rand(*(() if shared else (rows,)), length, generator=gen) > 0.3).float()
    mask[..., -1] = 1.0
    return target, history, bucket_ids, mask


@pytest.mark.parametrize("shared", [False, True], ids=["per_row", "shared_history"])
@pytest.mark.parametrize("num_heads", [1, 2])
@pytest.mark.parametrize("sim_on_values", [True, False])
def test_dta_equals_linear_early_fusion(shared, num_heads, sim_on_values):
    dim, d_a, d_s, rows_bucket = 6, 8, 5, 8
    torch.manual_seed(0)
    ef = EarlyFusionTargetAttention(dim, d_a, rows_bucket, similarity_dim=d_s, num_heads=num_heads,
                                    sim_on_values=sim_on_values)
    dta = DecoupledTargetAttention(dim, d_a, rows_bucket, num_heads=num_heads, sim_on_values=sim_on_values)
    randomize_buckets(ef)
    with torch.no_grad():  # DTA := EF refactored: W^e for the ID part, P = E_s W^{zT}
        dta.query.load_state_dict(ef.query.state_dict())
        dta.key.weight.copy_(ef.key.weight[:, :dim])
        dta.key_buckets.weight.copy_(ef.similarity_embedding.weight @ ef.key.weight[:, dim:].T)
        dta.value.weight.copy_(ef.value.weight[:, :dim])
        dta.value.bias.copy_(ef.value.bias)
        if sim_on_values:
            dta.value_buckets.weight.copy_(ef.similarity_embedding.weight @ ef.value.weight[:, dim:].T)
    target, history, bucket_ids, mask = _attention_inputs(shared, dim=dim)
    expected = ef(target, ef.prepare_history(history), bucket_ids, mask)
    got = dta(target, dta.prepare_history(history), bucket_ids, mask)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def _materialised_dta(dta: DecoupledTargetAttention, target, history, bucket_ids, mask):
    """Reference: k_{t,j} = K^id_j + sum_k P_K[b_j^(k)], v likewise, as explicit (B, L, d_a) tensors."""
    rows = target.shape[0]
    if history.dim() == 2:
        history, mask = history.expand(rows, -1, -1), mask.expand(rows, -1)
    keys = dta.key(history) + dta.key_buckets(bucket_ids).sum(1)  # (B, L, d_a)
    values = dta.value(history)
    if dta.value_buckets is not None:
        values = values + dta.value_buckets(bucket_ids).sum(1)
    h, dh = dta.num_heads, dta.head_dim
    q = dta.query(target).view(rows, h, dh)
    scores = torch.einsum("bhd,blhd->bhl", q, keys.view(rows, -1, h, dh)) / dh ** 0.5
    alpha = torch.softmax(scores.masked_fill(mask.unsqueeze(1) == 0, float("-inf")), dim=-1)
    return torch.einsum("bhl,blhd->bhd", alpha, values.view(rows, -1, h, dh)).reshape(rows, -1)


@pytest.mark.parametrize("shared", [False, True], ids=["per_row", "shared_history"])
@pytest.mark.parametrize("num_heads", [1, 4])
def test_gather_scatter_equals_materialised_form(shared, num_heads):
    torch.manual_seed(1)
    dta = DecoupledTargetAttention(6, 8, 8, num_heads=num_heads)
    randomize_buckets(dta)
    target, history, bucket_ids, mask = _attention_inputs(shared)
    got = dta(target, dta.prepare_history(history), bucket_ids, mask)
    torch.testing.assert_close(got, _materialised_dta(dta, target, history, bucket_ids, mask), atol=1e-5, rtol=1e-5)


def test_zero_bucket_tables_reduce_to_dot_product_attention():
    torch.manual_seed(2)
    dta = DecoupledTargetAttention(6, 8, 8)
    with torch.no_grad():
        dta.key_buckets.weight.zero_()
        dta.value_buckets.weight.zero_()
    target, history, bucket_ids, mask = _attention_inputs(shared=False)
    q, keys, values = dta.query(target), dta.key(history), dta.value(history)  # (B, d_a), (B, L, d_a) x2
    scores = torch.einsum("bd,bld->bl", q, keys) / 8 ** 0.5
    alpha = torch.softmax(scores.masked_fill(mask == 0, float("-inf")), dim=-1)
    expected = torch.einsum("bl,bld->bd", alpha, values)
    torch.testing.assert_close(dta(target, dta.prepare_history(history), bucket_ids, mask), expected,
                               atol=1e-6, rtol=1e-5)


def test_all_padding_history_gives_zero_and_no_nan():
    torch.manual_seed(3)
    target, history, bucket_ids, _ = _attention_inputs(shared=False)
    mask = torch.zeros(history.shape[:2])
    mask[0, :2] = 1.0  # row 0 has history; rows 1.. have none
    history.requires_grad_(True)
    for module in (DecoupledTargetAttention(6, 8, 8), EarlyFusionTargetAttention(6, 8, 8, similarity_dim=4)):
        out = module(target, module.prepare_history(history), bucket_ids, mask)
        assert torch.isfinite(out).all()
        assert torch.equal(out[1:], torch.zeros_like(out[1:]))
        out.sum().backward()
        assert torch.isfinite(history.grad).all()
    sims = torch.rand(5, 2, history.shape[1]) * 2 - 1
    for normalize in (False, True):
        counts = SimilarityHistogram(10, normalize=normalize)(sims, mask)
        assert torch.equal(counts[1:], torch.zeros_like(counts[1:]))


def test_model_all_padding_rows_are_finite(model_params):
    model, batch, _, _ = build(model_params)
    batch_dict, item_dict, mask = batch
    mask = mask.clone()
    mask[:8] = 0.0  # rows 0..7 lose their history (ids stay: masking alone must cut them out)
    model.train()
    out = model(MMCTRBatch(batch_dict, item_dict, mask))["y_pred"]
    assert torch.isfinite(out).all()
    model.compute_loss({"y_pred": out}, model.get_labels(batch)).backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_permuting_valid_positions_leaves_outputs_unchanged(model_params):
    model, batch, _, _ = build(model_params)
    model.eval()
    batch_dict, item_dict, mask = batch
    rows, length = mask.shape
    gen = torch.Generator().manual_seed(0)
    perm = torch.cat([torch.randperm(length, generator=gen), torch.tensor([length])])  # target stays last
    permuted = {k: v.view(rows, length + 1, *v.shape[1:])[:, perm].reshape(v.shape) for k, v in item_dict.items()}
    with torch.no_grad():
        expected = model(batch)["y_pred"]
        got = model(MMCTRBatch(batch_dict, permuted, mask[:, perm[:-1]]))["y_pred"]
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)


# ---- similarity blocks ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("num_buckets", [2, 7, 32, 35])
def test_bucketize_exact_at_bounds_and_monotone(num_buckets):
    bucketizer = SimilarityBucketizer(num_modalities=2, num_buckets=num_buckets)
    s = torch.linspace(-1.0, 1.0, 20001)
    sims = torch.stack([s, s.flip(0)]).unsqueeze(0)  # (1, 2, 20001)
    ids = bucketizer(sims)
    assert ids[0, 0, 0] == 0 and ids[0, 0, -1] == num_buckets - 1
    assert ids[0, 1, 0] == num_buckets - 1 and ids[0, 1, -1] == 0
    assert (ids[0, 0].diff() >= 0).all() and set(ids[0, 0].tolist()) == set(range(num_buckets))
    offset = bucketizer(sims, offset_by_modality=True)
    assert torch.equal(offset[0, 1], ids[0, 1] + num_buckets)
    assert torch.equal(equal_width_edges(4), torch.tensor([-0.5, 0.0, 0.5]))


def test_quantile_edges_handle_ties_and_bounds():
    edges = quantile_edges(torch.tensor([0.5] * 50 + [-1.0, 1.0]), 8)
    assert (edges.diff() > 0).all() and edges[0] > -1.0
    bucketizer = SimilarityBucketizer(1, 8, mode="quantile")
    bucketizer.fit([torch.tensor([0.5] * 50 + [-1.0, 1.0])])
    ids = bucketizer(torch.tensor([[[-1.0, 1.0]]]))
    assert ids[0, 0, 0] == 0 and ids[0, 0, 1] == 7


def test_quantile_edges_cover_all_buckets_on_training_data(model_params):
    model, _, params, (files, item_table) = build(model_params, bucket_edges="quantile", num_buckets=16)
    edges = model.bucketizer.edges
    assert torch.isfinite(edges).all() and (edges.diff(dim=-1) > 0).all()
    counts = torch.zeros(model.bucketizer.num_modalities, 16, dtype=torch.long)
    for batch in prepare.make_loader(files.train, {**params, "shuffle": False}, item_table, train=False):
        rows, length = batch.mask.shape
        mm = model._mm_vectors(batch.item_dict).view(rows, length + 1, -1)
        ids = model.bucketizer(segment_cosines(mm[:, -1], mm[:, :-1], model.mm_dims))  # (B, K, L)
        for k in range(counts.shape[0]):
            counts[k] += torch.bincount(ids[:, k][batch.mask > 0], minlength=16)
    assert (counts > 0).all(), f"empty buckets: {counts.tolist()}"
    assert counts.min() > 0.25 * counts.float().mean()  # roughly balanced, unlike equal-width edges


def test_histogram_counts_sum_to_valid_length():
    gen = torch.Generator().manual_seed(0)
    sims = torch.rand(6, 2, 9, generator=gen) * 2 - 1
    sims[0, :, 0], sims[0, :, 1] = -1.0, 1.0  # bounds fall in the first and last tier
    mask = (torch.rand(6, 9, generator=gen) > 0.4).float()
    mask[0] = 1.0
    mask[5] = 0.0
    counts = SimilarityHistogram(20)(sims, mask)  # (6, 2, 20)
    torch.testing.assert_close(counts.sum(-1), mask.sum(-1, keepdim=True).expand(-1, 2))
    assert counts[0, :, 0].min() >= 1 and counts[0, :, -1].min() >= 1
    normalized = SimilarityHistogram(20, normalize=True)(sims, mask).sum(-1)
    torch.testing.assert_close(normalized[:5], torch.ones(5, 2))
    assert torch.equal(normalized[5], torch.zeros(2))


def test_segment_cosines_layouts_agree():
    gen = torch.Generator().manual_seed(0)
    target, history = torch.randn(3, 10, generator=gen), torch.randn(4, 10, generator=gen)
    dims = (4, 6)
    target_n = similarity.l2_normalize_segments(target, dims)
    history_n = similarity.l2_normalize_segments(history, dims)
    shared = segment_cosines(target_n, history_n, dims)  # (3, 2, 4)
    per_row = segment_cosines(target_n, history_n.expand(3, -1, -1), dims)
    torch.testing.assert_close(shared, per_row)
    expected = torch.nn.functional.cosine_similarity(target[:, None, 4:], history[None, :, 4:], dim=-1)
    torch.testing.assert_close(shared[:, 1], expected)


def test_gathered_cosines_equal_segment_cosines_on_valid_pairs():
    gen = torch.Generator().manual_seed(0)
    dims = (5, 7)
    table = similarity.l2_normalize_segments(torch.randn(30, 12, generator=gen), dims)
    table[0] = 0.0
    ids = torch.randint(1, 30, (9, 6), generator=gen)
    mask = (torch.rand(9, 5, generator=gen) > 0.4).float()
    ids[:, :-1] *= mask.long()  # padded positions hold id 0
    vectors = table[ids]  # (9, 6, 12)
    expected = segment_cosines(vectors[:, -1], vectors[:, :-1], dims) * mask.unsqueeze(1)
    for chunk_size in (1, 4, 4096):
        got = similarity.gathered_cosines(table, ids[:, -1], ids[:, :-1], mask, dims, chunk_size=chunk_size)
        torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("obj", [DecoupledTargetAttention, EarlyFusionTargetAttention, SimilarityBucketizer,
                                 SimilarityHistogram, segment_cosines, similarity.gathered_cosines])
def test_docstring_examples_run(obj):
    doc = inspect.getdoc(obj)
    code = inspect.cleandoc(doc.split("Example::", 1)[1])
    namespace = {"torch": torch, obj.__name__: obj, "l2_normalize_segments": similarity.l2_normalize_segments}
    exec(compile(code, f"<{obj.__name__} example>", "exec"), namespace)  # noqa: S102  (our own docstring)
    shapes = re.findall(r"^(\w+) = (?:[^#\n]|\n\s)*# \(([\d, ]+)\)", code, flags=re.MULTILINE)
    assert shapes, "the example documents its output shape"
    for name, shape in shapes:  # each documented shape is the real one
        assert tuple(namespace[name].shape) == tuple(int(x) for x in shape.split(",")), name


def test_masked_softmax_rows():
    alpha = _masked_softmax(torch.randn(2, 1, 3), torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]]))
    torch.testing.assert_close(alpha.sum(-1), torch.tensor([[1.0], [0.0]]))
    assert alpha[0, 0, 1] == 0


# ---- config, training, checkpoints ----------------------------------------------------------------------------------
@pytest.mark.parametrize("cmm_mode", ["concat", "weighted_sum", "gate"])
def test_each_cmm_mode_trains_one_step(model_params, cmm_mode):
    model, batch, _, _ = build(model_params, cmm_mode=cmm_mode)
    model._batch_index, model._steps_per_epoch, model._max_gradient_norm = 0, 1, 10.0
    model.train()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    loss = model.train_step(batch)
    assert torch.isfinite(loss)
    changed = [n for n, p in model.named_parameters() if not torch.equal(before[n], p)]
    assert any(n.startswith("cmm.") for n in changed) or cmm_mode == "concat"
    assert any(n.startswith("attention.") for n in changed) and any(n.startswith("histogram_mlp.") for n in changed)


@pytest.mark.parametrize("key, value, match", [
    ("cmm_mode", "avg", r"cmm_mode='avg'; expected one of \('concat', 'weighted_sum', 'gate'\)"),
    ("attention_mode", "late", r"attention_mode='late'; expected one of \('decoupled', 'early_fusion'\)"),
    ("bucket_edges", "log", r"bucket_edges='log'; expected one of \('equal_width', 'quantile'\)"),
    ("mm_source", "item_emb", r"mm_source='item_emb'; expected one of \('item_feature', 'item_info'\)"),
    ("num_heads", 3, r"num_heads=3; expected a divisor of attention_dim=8"),
    ("num_buckets", 1, r"DMF: num_buckets=1; expected an integer >= 2"),
    ("cmm_weight", 1.5, r"DMF: cmm_weight=1.5; expected a number >= 0 and <= 1"),
    ("mm_item_info_column", "item_emb_v9", r"mm_item_info_column='item_emb_v9' is not an item feature"),
])
def test_invalid_config_raises(model_params, key, value, match):
    with pytest.raises(ValueError, match=match):
        build(model_params, attach=False, **{key: value})


def test_at_least_one_pathway(model_params):
    with pytest.raises(ValueError, match="use_dta=False and use_histogram=False"):
        build(model_params, attach=False, use_dta=False, use_histogram=False)


def test_forward_without_its_data_raises(model_params):
    model, batch, _, _ = build(model_params, attach=False)
    with pytest.raises(RuntimeError, match=r"no multimodal tables; build the model with data=ModelData"):
        model(batch)
    model, batch, _, _ = build(model_params, attach=False, mm_source="item_info", bucket_edges="quantile")
    with pytest.raises(RuntimeError, match=r"never fitted; build the model with a train sample"):
        model(batch)


def test_data_requirements_follow_the_config(model_params):
    params = model_params("DMF_test")
    needs = DMF.data_requirements(params)
    assert needs.item_feature_columns == ("txt_emb_BERT", "img_emb_CLIPRN50") and needs.train_sample_rows == 0
    needs = DMF.data_requirements({**params, "bucket_edges": "quantile", "quantile_fit_rows": 99})
    assert needs.train_sample_rows == 99
    needs = DMF.data_requirements({**params, "mm_source": "item_info", "bucket_edges": "quantile"})
    assert needs.item_feature_columns == () and needs.item_info_columns == ("item_emb_d128",)
    assert not DMF.data_requirements({**params, "use_dta": False, "bucket_edges": "quantile"}).train_sample_rows


def test_missing_item_feature_file_is_a_data_error(model_params, tmp_path):
    params = {**model_params("DMF_test"), "item_feature": str(tmp_path / "nope.parquet")}
    with pytest.raises(DataError, match=r"no file at item_feature: .*nope.parquet.*mm_source: item_info"):
        build_experiment(params, cache_dir=tmp_path, progress=False)


def test_checkpoint_keeps_quantile_edges_not_mm_tables(model_params, tmp_path):
    model, batch, _, _ = build(model_params, bucket_edges="quantile")
    state = model.state_dict()
    assert model.mm_table is not None and model.mm_table.shape[1] == 768 + 1024
    assert not any("mm_table" in k for k in state), "the frozen MM tables must not be saved"
    assert "bucketizer.edges" in state and torch.isfinite(state["bucketizer.edges"]).all()
    assert not torch.equal(state["bucketizer.edges"][0], equal_width_edges(8))
    model.save_weights(tmp_path / "m.pt")
    saved = torch.load(tmp_path / "m.pt")
    assert sum(t.numel() for t in saved.values()) < 0.1 * model.mm_table.numel()
    other, _, _, _ = build(model_params, seed=1, attach=False, bucket_edges="quantile")
    other.load_weights(tmp_path / "m.pt")  # restores the fitted edges ...
    assert torch.equal(other.bucketizer.edges, model.bucketizer.edges) and other.bucketizer.fitted
    with pytest.raises(RuntimeError, match="no multimodal tables"):  # ... but the MM tables come from the data
        other(batch)
    other.attach_mm_vectors(model.mm_table.clone(), model.mm_dims)
    model.eval(), other.eval()
    with torch.no_grad():
        torch.testing.assert_close(other(batch)["y_pred"], model(batch)["y_pred"])


# ---- recency positions, quantile edges by default, unseen items --------------------------------------------------
def test_positions_are_cached_with_the_history_state(model_params):
    """The recency term depends on the history alone: the per-user state of the serving path (K^id, V^id with
    positions in them) is the training path's per-row state, and scoring new candidates reuses it unchanged."""
    model, batch, _, _ = build(model_params, position_encoding="learned", num_positions=4)
    randomize_new_parts(model, batch)
    model.eval()
    user, _ = model.serving_request(batch, row=5)
    with torch.no_grad():
        history = model._embed({k: v for k, v in user["history"].items()}, model.id_features)  # (L, d)
        keys, values = model._history_state(history, user["mask"].float())
        _, item_inputs, mask = model.get_inputs(batch)
        rows, length = mask.shape
        per_row = model._embed(item_inputs, model.id_features).view(rows, length + 1, -1)[:, :-1]
        row_keys, row_values = model._history_state(per_row, mask)
    num_mod_buckets = model.attention.key_buckets.num_embeddings
    torch.testing.assert_close(keys[:-num_mod_buckets], row_keys[5])  # serving appends [P_K] once per user
    torch.testing.assert_close(values[:-num_mod_buckets], row_values[5])
    assert not torch.allclose(keys[:-num_mod_buckets], model.attention.prepare_history(history)[0][:-num_mod_buckets])


def test_positions_make_dmf_order_aware(model_params):
    model, batch, _, _ = build(model_params, position_encoding="learned", num_positions=4)
    batch_dict, item_dict, mask = batch
    rows, length = mask.shape
    perm = torch.cat([torch.arange(length - 1, -1, -1), torch.tensor([length])])  # reversed history
    permuted = MMCTRBatch(batch_dict, {k: v.view(rows, length + 1, *v.shape[1:])[:, perm].reshape(v.shape)
                                       for k, v in item_dict.items()}, mask[:, perm[:-1]])
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(permuted)["y_pred"], model(batch)["y_pred"], atol=1e-6, rtol=1e-5)  # zero
        randomize_new_parts(model, batch)
        assert not torch.allclose(model(permuted)["y_pred"], model(batch)["y_pred"], atol=1e-4)


def test_positions_off_is_the_position_free_model(model_params):
    off, batch, _, _ = build(model_params, seed=2, position_encoding="none")
    learned, _, _, _ = build(model_params, seed=2, position_encoding="learned")
    plain, _, _, _ = build(model_params, seed=2)
    assert off.positions is None and learned.positions is not None
    off.eval(), learned.eval(), plain.eval()
    with torch.no_grad():
        expected = plain(batch)["y_pred"]
        assert torch.equal(off(batch)["y_pred"], expected)
        assert torch.equal(learned(batch)["y_pred"], expected)  # the table starts at zero, no random draws


def test_quantile_is_the_default_bucket_edge_mode(model_params):
    assert inspect.signature(DMF.__init__).parameters["bucket_edges"].default == "quantile"
    params = {k: v for k, v in model_params("DMF_test").items() if k != "bucket_edges"}
    assert DMF.data_requirements(params).train_sample_rows == 20_000
    model, _, _, _ = build(model_params, bucket_edges="quantile", quantile_fit_rows=500)
    assert model.bucketizer.mode == "quantile" and model.bucketizer.fitted


def test_dmf_unknown_item_uses_content_only_for_unseen_targets(model_params):
    """With ``unknown_item`` the prediction of a row whose target is unseen does not depend on that target's
    (untrained) item_id row; everything content-based (tags, MM similarities) still does."""
    model, batch, _, _ = build(model_params, unknown_item=True, item_id_dropout=0.2)
    assert DMF.data_requirements({**model_params("DMF_test"), "unknown_item": True}).train_item_mask
    model.eval()
    target_ids = batch.item_dict["item_id"].view(batch.mask.shape[0], -1)[:, -1]
    seen = model.train_items.clone()
    seen[target_ids[:4]] = False
    model.set_train_items(seen)
    table = model.embedding_layer.embedding_layer.embedding_layers["item_id"].weight
    with torch.no_grad():
        before = model(batch)["y_pred"]
        table[target_ids[:4]] += 1.0  # perturb the never-used rows of the unseen targets
        after = model(batch)["y_pred"]
        assert torch.equal(before, after)
        model.unknown_item = False  # the same weights reading the perturbed rows: the test is not vacuous
        changed = model(batch)["y_pred"]
    assert not torch.allclose(changed[:4], after[:4], atol=1e-4)


def test_recency_weighted_histogram_starts_as_the_count_histogram(model_params):
    plain, batch, _, _ = build(model_params, seed=4)
    weighted, _, _, _ = build(model_params, seed=4, histogram_weighting="recency", num_positions=3)
    plain.eval(), weighted.eval()
    with torch.no_grad():
        assert torch.equal(weighted(batch)["y_pred"], plain(batch)["y_pred"])  # weights start at 1, no random draws
        weighted.histogram_weights.weight.copy_(torch.tensor([2.0, 0.5, 0.0]))
        _, item_inputs, mask = weighted.get_inputs(batch)
        sims = weighted._batch_cosines(item_inputs, mask)
        counts = weighted.histogram(sims, mask, weighted.histogram_weights(mask))  # (B, K, n_t)
    rec = recency_index(mask)
    expected = (2.0 * (rec == 0) + 0.5 * (rec == 1)).float() * mask  # the most recent item x2, the next x0.5
    torch.testing.assert_close(counts.sum(-1), expected.sum(-1, keepdim=True).expand(-1, counts.shape[1]))


def test_quantile_tiers_fill_the_histogram_evenly(model_params):
    model, batch, _, _ = build(model_params, tier_edges="quantile", num_tiers=10)
    assert DMF.data_requirements({**model_params("DMF_test"), "tier_edges": "quantile"}).train_sample_rows == 20_000
    assert model.histogram.tiers.fitted and "histogram.tiers.edges" in model.state_dict()
    _, item_inputs, mask = model.get_inputs(batch)
    with torch.no_grad():
        counts = model.histogram(model._batch_cosines(item_inputs, mask), mask).sum(0)  # (K, n_t)
    equal = SimilarityHistogram(10)(model._batch_cosines(item_inputs, mask), mask).sum(0)
    assert (counts > 0).all() and (equal == 0).sum() > (counts == 0).sum()  # the band leaves equal tiers empty
