"""Registry-parametrized model tests: registering a model and giving it a `<Model>_test` expid is enough.

Each model is built from its own `<Model>_test` params on the tiny synthetic world and checked for output shape and
range, NaNs, a gradient on every parameter, a state_dict round trip, seeded determinism and one learning step.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from model_zoo.registry import list_models


def build(experiment, name: str, seed: int = 0):
    exp = experiment(f"{name}_test", seed=seed)
    batch = exp.loader("valid").batch(slice(0, 64))
    return exp.model, batch, exp.params


@pytest.fixture(params=list_models())
def model_name(request) -> str:
    return request.param


def test_forward_shape_range_finite(experiment, model_name):
    model, batch, _ = build(experiment, model_name)
    model.eval()
    with torch.no_grad():
        y = model(batch)["y_pred"]
    assert y.shape == (64, 1)
    assert torch.isfinite(y).all()
    assert ((y >= 0) & (y <= 1)).all()


def test_every_parameter_gets_a_gradient(experiment, model_name):
    model, batch, _ = build(experiment, model_name)
    model.train()
    loss = model.compute_loss(model(batch), model.get_labels(batch))
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)]
    assert not missing, f"{model_name}: parameters without gradient: {missing}"


def test_state_dict_round_trip(experiment, model_name, tmp_path):
    model, batch, _ = build(experiment, model_name, seed=0)
    other, _, _ = build(experiment, model_name, seed=1)
    model.eval(), other.eval()
    with torch.no_grad():
        expected = model(batch)["y_pred"]
        assert not torch.allclose(expected, other(batch)["y_pred"]), "different seeds gave identical models"
        model.save_weights(tmp_path / "m.pt")
        other.load_weights(tmp_path / "m.pt")
        other.eval()
        assert torch.allclose(expected, other(batch)["y_pred"], atol=1e-6)


def test_same_seed_same_output(experiment, model_name):
    a, batch, _ = build(experiment, model_name, seed=7)
    b, _, _ = build(experiment, model_name, seed=7)
    a.eval(), b.eval()
    with torch.no_grad():
        assert torch.equal(a(batch)["y_pred"], b(batch)["y_pred"])


def test_training_steps_reduce_loss(experiment, model_name):
    model, batch, _ = build(experiment, model_name)
    model._batch_index, model._steps_per_epoch, model._max_gradient_norm = 0, 1, 10.0
    model.train()
    labels = model.get_labels(batch)
    before = model.add_loss(model(batch), labels).item()
    for _ in range(20):
        model.train_step(batch)
    after = model.add_loss(model(batch), labels).item()
    assert after < before, f"{model_name}: loss {before:.4f} -> {after:.4f} after 20 steps on one batch"


def test_skipping_padding_items_changes_nothing(experiment, model_name):
    """Embedding only real items (padding rows filled with zeros) equals embedding every joined row."""
    model, batch, _ = build(experiment, model_name)
    if not hasattr(model, "embed_items"):
        pytest.skip("model has no shared item embedding")
    model.eval()
    _, item_inputs, mask = model.get_inputs(batch)
    assert (item_inputs["item_id"] == 0).any(), "the batch should contain padding"
    with torch.no_grad():
        model.skip_padding_items = True
        fast = model.embed_items(item_inputs, mask.shape[0])
        model.skip_padding_items = False
        full = model.embed_items(item_inputs, mask.shape[0])
        model.skip_padding_items = True
        fast_pred = model(batch)["y_pred"]  # DIN-family heads: padding-free history (embed_valid_items)
        model.skip_padding_items = False
        full_pred = model(batch)["y_pred"]
    for a, b in zip(fast, full):
        assert torch.allclose(a, b, atol=1e-6)
    assert torch.allclose(fast_pred, full_pred, atol=1e-6)


# ---- golden values ------------------------------------------------------------------------------------------------
GOLDEN = Path(__file__).parent / "golden" / "model_outputs.json"
GOLDEN_ROWS = 8
GOLDEN_ATOL = 1e-5  # float32 outputs of a few hundred multiply-adds: MKL/OpenMP rounding stays far below this


def _golden_outputs(experiment, name: str) -> list:
    model, batch, _ = build(experiment, name, seed=0)
    model.eval()
    with torch.no_grad():
        return model(batch)["y_pred"][:GOLDEN_ROWS, 0].tolist()


def test_golden_outputs(experiment, model_name):
    """Seed 0, the first rows of the tiny world's valid split: the stored outputs (``MMCTR_UPDATE_GOLDEN=1`` rewrites
    them after an intended change; the diff then shows in review)."""
    stored = json.loads(GOLDEN.read_text()) if GOLDEN.is_file() else {}
    got = _golden_outputs(experiment, model_name)
    if os.environ.get("MMCTR_UPDATE_GOLDEN") == "1":
        stored[model_name] = got
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(stored, indent=1, sort_keys=True) + "\n")
    assert model_name in stored, f"no golden outputs for {model_name}: run with MMCTR_UPDATE_GOLDEN=1"
    assert torch.allclose(torch.tensor(got), torch.tensor(stored[model_name]), atol=GOLDEN_ATOL, rtol=0), (
        model_name, got, stored[model_name])


# ---- the options added for sampled-negatives data: off reproduces the stored outputs bit for bit -------------------
OFF_VALUES = {"position_encoding": "none", "item_id_dropout": 0.0, "unknown_item": False}


def test_new_options_off_reproduce_golden_outputs_bit_for_bit(experiment, model_name):
    """Recency positions, ID dropout and the unknown-item vector, given explicitly as off, build today's model: the
    stored golden outputs (recorded before these options existed) come out identical, not merely close."""
    stored = json.loads(GOLDEN.read_text())
    exp = experiment(f"{model_name}_test", seed=0, **OFF_VALUES)
    model = exp.model.eval()
    assert model.unknown_item_embedding is None
    assert not [n for n, _ in model.named_parameters() if "positions" in n]
    with torch.no_grad():
        got = model(exp.loader("valid").batch(slice(0, 64)))["y_pred"][:GOLDEN_ROWS, 0]
    assert torch.equal(got, torch.tensor(stored[model_name])), (model_name, got.tolist(), stored[model_name])


def test_new_options_off_leave_the_training_path_unchanged(experiment, model_name):
    """Five training steps (dropout and all) with the options given as off equal those without them, bit for bit."""
    outputs = []
    for overrides in ({}, OFF_VALUES):
        exp = experiment(f"{model_name}_test", seed=0, **overrides)
        model, batch = exp.model, exp.loader("valid").batch(slice(0, 64))
        model._batch_index, model._steps_per_epoch, model._max_gradient_norm = 0, 1, 10.0
        model.train()
        torch.manual_seed(11)
        for _ in range(5):
            model.train_step(batch)
        model.eval()
        with torch.no_grad():
            outputs.append(model(batch)["y_pred"])
    assert torch.equal(*outputs)


ON_VALUES = {"position_encoding": "learned", "num_positions": 4, "item_id_dropout": 0.3, "unknown_item": True}


def test_new_options_on_train_and_round_trip(experiment, model_name, tmp_path):
    """With every option on: finite outputs, a gradient on every parameter (the position table and the unknown-item
    vector included), and a state_dict round trip that restores the outputs."""
    exp = experiment(f"{model_name}_test", seed=0, **ON_VALUES)
    model, batch = exp.model, exp.loader("valid").batch(slice(0, 64))
    assert model.train_items is not None and model.train_items.dtype == torch.bool and not model.train_items[0]
    model.train()
    torch.manual_seed(0)
    model.compute_loss(model(batch), model.get_labels(batch)).backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)]
    assert not missing, f"{model_name}: parameters without gradient: {missing}"
    assert model.unknown_item_embedding.grad.abs().sum() > 0
    model.eval()
    other = experiment(f"{model_name}_test", seed=1, **ON_VALUES).model.eval()
    with torch.no_grad():
        expected = model(batch)["y_pred"]
        assert torch.isfinite(expected).all()
        model.save_weights(tmp_path / "m.pt")
        other.load_weights(tmp_path / "m.pt")
        other.eval()
        assert torch.allclose(other(batch)["y_pred"], expected, atol=1e-6)
    assert not any("train_items" in k for k in model.state_dict())  # reloaded from the data, not saved
