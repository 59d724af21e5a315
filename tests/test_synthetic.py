"""Tests of the seeded synthetic MicroLens_1M_x1 world and the PCA helper (tiny preset, < 30 s in total)."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import roc_auc_score

from model_zoo.apps import generate as generate_app
from model_zoo.datasets import synthetic as synth
from model_zoo.datasets.synthetic import writers
from model_zoo.datasets.synthetic import (DATA_FILES, PRESETS, TRUTH_FILES, SynthConfig, config_hash,
                                          ensure_synthetic, generate, make_config, vocab_sizes)
from model_zoo.embeddings.pca import fit_pca, pca_variants
from model_zoo.errors import ConfigError, DataError

I64, LI64, LF32 = pa.int64(), pa.list_(pa.int64()), pa.list_(pa.float32())
EXPECTED: Dict[str, list] = {
    "train.parquet": [("user_id", I64), ("item_seq", LI64), ("item_id", I64), ("likes_level", I64),
                      ("views_level", I64), ("label", I64)],
    "item_info.parquet": [("item_id", I64), ("item_tags", LI64), ("item_emb_d128", LF32)],
    "item_feature.parquet": [("item_id", I64), ("item_title", pa.string()), ("item_tags", LI64),
                             ("likes_level", I64), ("views_level", I64), ("txt_emb_BERT", LF32),
                             ("img_emb_CLIPRN50", LF32)],
    "item_emb.parquet": [("item_id", I64), ("item_emb_d128_v1", LF32), ("item_emb_d128_v2", LF32),
                         ("item_emb_d128_v3", LF32), ("item_emb_d128_e4", LF32)],
    "oracle_valid.parquet": [("ID", I64), ("p_click", pa.float64())],
}
EXPECTED["valid.parquet"] = EXPECTED["test.parquet"] = EXPECTED["train.parquet"]
EXPECTED["oracle_test.parquet"] = EXPECTED["oracle_valid.parquet"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Dict:
    """One tiny world shared by the read-only tests."""
    out = tmp_path_factory.mktemp("synth") / "tiny"
    manifest = ensure_synthetic(out, "tiny", progress=False)
    return {"out": out, "manifest": manifest, "config": PRESETS["tiny"]}


def _matrix(table: pa.Table, column: str, width: int) -> np.ndarray:
    """A fixed-width list column as an (n, width) numpy array; asserts every list has that width."""
    col = table.column(column).combine_chunks()
    lengths = pc_lengths(col)
    assert (lengths == width).all(), f"{column}: list lengths {np.unique(lengths)} != {width}"
    return col.flatten().to_numpy(zero_copy_only=False).reshape(-1, width)


def pc_lengths(col: pa.ListArray) -> np.ndarray:
    """Per-row list lengths from the offsets."""
    offsets = col.offsets.to_numpy()
    return np.diff(offsets)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_schema_column_names_order_and_types(world: Dict) -> None:
    for name, fields in EXPECTED.items():
        schema = pq.read_schema(world["out"] / name)
        assert schema.names == [f for f, _ in fields], name
        for (field, typ), actual in zip(fields, schema.types):
            assert actual == typ, f"{name}.{field}: {actual} != {typ}"


def test_row_splits_content(world: Dict) -> None:
    cfg: SynthConfig = world["config"]
    vocab = vocab_sizes(cfg)
    assert vocab == {"item_id": cfg.num_items + 1, "item_tags": cfg.num_tags, "likes_level": 11,
                     "views_level": 11, "user_id": cfg.num_users + 1}
    info = pq.read_table(world["out"] / "item_info.parquet")
    feat = pq.read_table(world["out"] / "item_feature.parquet")
    for split, n in (("train", cfg.num_train), ("valid", cfg.num_valid), ("test", cfg.num_test)):
        t = pq.read_table(world["out"] / f"{split}.parquet")
        assert t.num_rows == n
        seq = _matrix(t, "item_seq", 100)
        nonzero = seq != 0
        # left padding: once a non-zero appears, everything after it (more recent) is non-zero
        assert (np.diff(nonzero.astype(np.int8), axis=1) >= 0).all(), f"{split}: item_seq not left-padded"
        assert (nonzero.sum(axis=1) >= 3).all()
        assert seq.min() >= 0 and seq.max() < vocab["item_id"]
        item = t.column("item_id").to_numpy()
        user = t.column("user_id").to_numpy()
        assert item.min() >= 1 and item.max() <= cfg.num_items
        assert user.min() >= 1 and user.max() < vocab["user_id"]
        for lvl in ("likes_level", "views_level"):
            values = t.column(lvl).to_numpy()
            assert values.min() >= 1 and values.max() <= 9 < vocab[lvl]
            # row levels are the target item's levels
            np.testing.assert_array_equal(values, feat.column(lvl).to_numpy()[item - 1])
        assert set(np.unique(t.column("label").to_numpy())) <= {0, 1}
    assert info.num_rows == cfg.num_items + 1


def test_item_files(world: Dict) -> None:
    cfg: SynthConfig = world["config"]
    n = cfg.num_items
    info = pq.read_table(world["out"] / "item_info.parquet")
    np.testing.assert_array_equal(info.column("item_id").to_numpy(), np.arange(n + 1))
    tags = _matrix(info, "item_tags", 5)
    emb = _matrix(info, "item_emb_d128", 128)
    assert emb.dtype == np.float32
    assert (tags[0] == 0).all() and (emb[0] == 0).all()
    assert (tags[1:] != 0).any(axis=1).all(), "every item has at least one tag"
    assert (np.diff((tags != 0).astype(np.int8), axis=1) >= 0).all(), "item_tags not left-padded"
    assert tags.max() < vocab_sizes(cfg)["item_tags"] - 1
    feat = pq.read_table(world["out"] / "item_feature.parquet")
    emb_t = pq.read_table(world["out"] / "item_emb.parquet")
    for t in (feat, emb_t):
        assert t.num_rows == n
        np.testing.assert_array_equal(t.column("item_id").to_numpy(), np.arange(1, n + 1))
    np.testing.assert_array_equal(_matrix(feat, "item_tags", 5), tags[1:])
    assert _matrix(feat, "txt_emb_BERT", 768).dtype == np.float32
    assert _matrix(feat, "img_emb_CLIPRN50", 1024).shape == (n, 1024)
    titles = feat.column("item_title").to_pylist()
    assert all(isinstance(s, str) and "#" in s and len(s.split()) >= 4 for s in titles)
    for col in ("item_emb_d128_v1", "item_emb_d128_v2", "item_emb_d128_v3", "item_emb_d128_e4"):
        assert _matrix(emb_t, col, 128).dtype == np.float32
    np.testing.assert_array_equal(_matrix(emb_t, "item_emb_d128_v3", 128), emb[1:])


def test_pca_variants_match_files(world: Dict) -> None:
    cfg: SynthConfig = world["config"]
    feat = pq.read_table(world["out"] / "item_feature.parquet")
    text = _matrix(feat, "txt_emb_BERT", 768)
    image = _matrix(feat, "img_emb_CLIPRN50", 1024)
    emb_t = pq.read_table(world["out"] / "item_emb.parquet")
    e4 = _matrix(emb_t, "item_emb_d128_e4", 128)
    t64, _ = fit_pca(text, 64, seed=cfg.seed)
    i64, _ = fit_pca(image, 64, seed=cfg.seed)
    np.testing.assert_allclose(e4, np.concatenate([t64, i64], axis=1), rtol=0, atol=1e-4)
    v1, _ = fit_pca(text, 128, seed=cfg.seed)
    np.testing.assert_allclose(_matrix(emb_t, "item_emb_d128_v1", 128), v1, rtol=0, atol=1e-4)
    v3, _ = fit_pca(np.concatenate([text, image], axis=1), 128, seed=cfg.seed)
    np.testing.assert_allclose(_matrix(emb_t, "item_emb_d128_v3", 128), v3, rtol=0, atol=1e-4)


def test_fit_pca_is_deterministic_and_sign_fixed() -> None:
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((300, 6)) @ rng.standard_normal((6, 40)) + 0.1 * rng.standard_normal((300, 40)))
    x = x.astype(np.float32)
    a, ratio = fit_pca(x, 5, seed=3)
    b, _ = fit_pca(x.copy(), 5, seed=3)
    assert a.dtype == np.float32 and a.shape == (300, 5)
    np.testing.assert_array_equal(a, b)
    assert np.all(np.diff(ratio) <= 1e-9) and 0.9 < ratio.sum() <= 1.0
    neg, _ = fit_pca(-x, 5, seed=3)           # negated data: same components, so negated scores
    np.testing.assert_allclose(neg, -a, atol=1e-3)
    white, _ = fit_pca(x, 5, seed=3, whiten=True)
    np.testing.assert_allclose(white.std(axis=0, ddof=1), 1.0, atol=1e-3)
    out = pca_variants(x[:, :20], x[:, 20:], dim=8, v4_split=(4, 4), seed=1)
    assert {k: v.shape for k, v in out.items() if not k.endswith("_evr")} == {
        "v1": (300, 8), "v2": (300, 8), "v3": (300, 8), "e4": (300, 8)}
    with pytest.raises(ConfigError):
        fit_pca(x, 41, seed=0)
    with pytest.raises(ConfigError):
        pca_variants(x[:, :20], x[:, 20:], dim=8, v4_split=(4, 3), seed=1)
    with pytest.raises(DataError):
        pca_variants(x[:, :20], x[:10, 20:], dim=8, seed=1)


def test_labels_rate_and_oracle(world: Dict) -> None:
    m = world["manifest"]
    out = world["out"]
    train = pq.read_table(out / "train.parquet").column("label").to_numpy()
    assert abs(train.mean() - 0.25) <= 0.03
    assert m["positive_rate"]["train"] == pytest.approx(train.mean(), abs=1e-6)
    for split in ("valid", "test"):
        labels = pq.read_table(out / f"{split}.parquet").column("label").to_numpy()
        oracle = pq.read_table(out / f"oracle_{split}.parquet")
        np.testing.assert_array_equal(oracle.column("ID").to_numpy(), np.arange(labels.shape[0]))
        p = oracle.column("p_click").to_numpy()
        assert ((p > 0) & (p < 1)).all()
        auc = roc_auc_score(labels, p)
        assert m["oracle_auc"][split] == pytest.approx(auc, abs=1e-12)
    assert 0.7 < m["oracle_auc"]["valid"] < 0.97


def test_ground_truth_matches_test_labels(world: Dict) -> None:
    lines = (world["out"] / "ground_truth.csv").read_text().splitlines()
    assert lines[0] == "ID,label"
    rows = np.array([line.split(",") for line in lines[1:]], dtype=np.int64)
    labels = pq.read_table(world["out"] / "test.parquet").column("label").to_numpy()
    np.testing.assert_array_equal(rows[:, 0], np.arange(labels.shape[0]))
    np.testing.assert_array_equal(rows[:, 1], labels)


def test_manifest_contents(world: Dict) -> None:
    m = world["manifest"]
    out = world["out"]
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk == m
    assert m["generator_version"] == synth.GENERATOR_VERSION
    assert m["config"] == PRESETS["tiny"].to_dict() and m["seed"] == PRESETS["tiny"].seed
    assert m["config_hash"] == config_hash(PRESETS["tiny"])
    assert set(m["files"]) == set(DATA_FILES + TRUTH_FILES)
    for name, entry in m["files"].items():
        assert entry["sha256"] == _sha(out / name), name
    assert m["rows"] == {"train": 4000, "valid": 1000, "test": 1000}
    h = m["hist_len"]["train"]
    assert h["min"] >= 3 and h["max"] <= 100 and 4 <= h["median"] <= 8 and 6 <= h["mean"] <= 10
    assert m["seconds"] > 0
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name], "temp dir left behind"


def test_determinism_same_and_different_seed(world: Dict, tmp_path: Path) -> None:
    same = generate(PRESETS["tiny"], tmp_path / "same", progress=False)
    for name in DATA_FILES + TRUTH_FILES:
        assert same["files"][name]["sha256"] == world["manifest"]["files"][name]["sha256"], name
        assert _sha(tmp_path / "same" / name) == _sha(world["out"] / name)
    other = generate(make_config("tiny", seed=7), tmp_path / "other", progress=False)
    for name in DATA_FILES + TRUTH_FILES:
        assert other["files"][name]["sha256"] != same["files"][name]["sha256"], name
    assert other["config_hash"] != same["config_hash"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other", "same"]


def test_ensure_synthetic_cache_and_regeneration(tmp_path: Path) -> None:
    out = tmp_path / "w"
    first = ensure_synthetic(out, "tiny", num_train=2000, progress=False)
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    again = ensure_synthetic(out, "tiny", num_train=2000, progress=False)
    assert again == first
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == mtimes
    changed = ensure_synthetic(out, "tiny", num_train=2500, progress=False)
    assert changed["rows"]["train"] == 2500
    assert changed["config_hash"] != first["config_hash"]
    assert pq.read_metadata(out / "train.parquet").num_rows == 2500
    # a missing file invalidates the cache
    (out / "valid.parquet").unlink()
    rebuilt = ensure_synthetic(out, "tiny", num_train=2500, progress=False)
    assert (out / "valid.parquet").is_file() and rebuilt["config_hash"] == changed["config_hash"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w"], "temp dir left behind"


def test_bad_preset_and_override_raise_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        ensure_synthetic(tmp_path / "x", "tinyy", progress=False)
    msg = str(exc.value)
    assert "tinyy" in msg and all(p in msg for p in PRESETS) and "did you mean 'tiny'" in msg
    with pytest.raises(ConfigError) as exc:
        ensure_synthetic(tmp_path / "x", "tiny", progress=False, num_item=10)
    assert "num_item" in str(exc.value) and "did you mean 'num_items'" in str(exc.value)
    with pytest.raises(ConfigError):
        make_config("tiny", num_items=0)
    with pytest.raises(ConfigError):
        make_config("tiny", num_items="400")
    with pytest.raises(ConfigError):
        make_config("tiny", click_rate=1.5)
    with pytest.raises(ConfigError):
        make_config("tiny", user_topic_probs=(0.5, 0.6))
    assert not (tmp_path / "x").exists()


def test_failed_generation_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(writers, "write_ground_truth", boom)
    with pytest.raises(RuntimeError):
        generate(PRESETS["tiny"], tmp_path / "broken", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_overwrite_foreign_directory(tmp_path: Path) -> None:
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    with pytest.raises(DataError):
        generate(PRESETS["tiny"], target, progress=False)
    assert (target / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def test_cli(world: Dict, capsys: pytest.CaptureFixture) -> None:
    assert generate_app.main(["--preset", "tiny", "--out", str(world["out"]), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "MicroLens_synth_tiny" in text and "cached" in text and "oracle AUC" in text
    assert generate_app.main(["--preset", "huge", "--out", str(world["out"])]) == 2
    assert "allowed presets" in capsys.readouterr().err


def test_presets_and_config() -> None:
    full = PRESETS["full"]
    assert (full.num_items, full.num_users, full.num_train, full.num_valid, full.num_test, full.num_tags) == (
        91_717, 1_000_000, 3_600_000, 10_000, 379_142, 11_740)
    assert PRESETS["small"].num_train == 200_000 and PRESETS["tiny"].num_items == 400
    with pytest.raises(TypeError):
        PRESETS["new"] = full  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        full.seed = 1  # type: ignore[misc]
    assert config_hash(full) == config_hash(make_config("full"))
    assert config_hash(make_config("full", seed=1)) != config_hash(full)


# ---------------------------------------------------------------------------------------------------------------------
# Caches that verify: bit flips, dead generators' temp dirs, interrupted regeneration
# ---------------------------------------------------------------------------------------------------------------------

def _flip_bit(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", ["item_feature.parquet", "ground_truth.csv"])
def test_bit_flip_is_detected_and_regenerated(tmp_path: Path, name: str, caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "w"
    first = ensure_synthetic(out, "tiny", progress=False)
    original = {n: (out / n).read_bytes() for n in DATA_FILES + TRUTH_FILES}
    size = (out / name).stat().st_size
    _flip_bit(out / name, size // 2)
    assert (out / name).stat().st_size == size and (out / name).read_bytes() != original[name]
    assert synth.verify_files(out, first) == [f"{name}: sha256 differs from the manifest"]
    with caplog.at_level("WARNING", logger="model_zoo.datasets.synthetic.cache"):
        again = ensure_synthetic(out, "tiny", progress=False)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and name in warnings[0] and "\n" not in warnings[0], warnings
    assert {n: (out / n).read_bytes() for n in DATA_FILES + TRUTH_FILES} == original
    assert again["files"] == first["files"] and synth.verify_files(out, again) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w"]


def test_cache_hit_does_not_warn(world: Dict, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="model_zoo.datasets.synthetic.cache"):
        assert ensure_synthetic(world["out"], "tiny", progress=False) == world["manifest"]
    assert not caplog.records


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temp_of_dead_generator_is_removed(tmp_path: Path) -> None:
    out = tmp_path / "w"
    ensure_synthetic(out, "tiny", progress=False)
    stale = tmp_path / f"w.tmp-{_dead_pid()}-abc123"
    stale.mkdir()
    (stale / "train.parquet").write_bytes(b"half a file")
    alive = tmp_path / f"w.tmp-{os.getppid()}-keep"      # a live process's temp dir is not touched
    alive.mkdir()
    ensure_synthetic(out, "tiny", progress=False)         # a cache hit still cleans up
    assert not stale.exists() and alive.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["w", alive.name])


def test_failed_forced_regeneration_keeps_old_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "w"
    first = ensure_synthetic(out, "tiny", progress=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def boom(*args: object, **kwargs: object) -> None:     # after split files and oracles are written
        raise RuntimeError("killed mid-way")

    monkeypatch.setattr(writers, "write_ground_truth", boom)
    with pytest.raises(RuntimeError, match="killed mid-way"):
        generate(make_config("tiny"), out, progress=False)  # what --force does
    with pytest.raises(RuntimeError, match="killed mid-way"):
        generate_app.main(["--preset", "tiny", "--out", str(out), "--force", "--quiet"])
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert synth.verify_files(out, first) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w"], "temp dir left behind"


def test_cli_force_set_and_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "w"
    args = ["--world", "microlens_synth", "--preset", "tiny", "--out", str(out), "--quiet"]
    assert generate_app.main(args + ["--set", "num_train=1500", "--set", "user_topic_probs=[0.6, 0.4]"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["world"] == "microlens_synth" and manifest["rows"]["train"] == 1500
    assert manifest["config"]["user_topic_probs"] == [0.6, 0.4]
    mtime = (out / "train.parquet").stat().st_mtime_ns
    assert generate_app.main(args + ["--set", "num_train=1500", "--set", "user_topic_probs=[0.6, 0.4]"]) == 0
    assert "cached and verified" in capsys.readouterr().out
    assert (out / "train.parquet").stat().st_mtime_ns == mtime
    assert generate_app.main(args + ["--set", "num_train=1500", "--set", "user_topic_probs=[0.6, 0.4]", "--force"]) == 0
    assert "cached" not in capsys.readouterr().out
    assert (out / "train.parquet").stat().st_mtime_ns != mtime
    for bad, expected in ((["--world", "seqnegg"], "allowed worlds"), (["--set", "num_trian=5"], "num_train"),
                          (["--set", "num_train=abc"], "must be an integer"), (["--set", "num_train"], "key=value"),
                          (["--seed", "x"], "invalid int value"), (["--bogus"], "unrecognized")):
        assert generate_app.main(args + bad) == 2, bad
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and expected in err, (bad, err)
