"""Tests of the sampled-negatives world (``seqneg``): files, exact oracle, sampler, calibration, determinism, cache."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from sklearn.metrics import roc_auc_score

from model_zoo.config import CONFIG_DIR, dataset_params
from model_zoo.datasets import prepare
from model_zoo.datasets.microlens import (item_emb_specs, item_feature_specs, item_info_specs, read_item_info,
                                          read_optional_item_table, read_split, split_specs)
from model_zoo.datasets.synthetic import (DATA_FILES, SEQNEG_GENERATOR_VERSION, SEQNEG_PRESETS, TRUTH_FILES,
                                          SeqNegConfig, config_hash, ensure_synthetic, generate, make_config,
                                          verify_files, vocab_sizes)
from model_zoo.datasets.synthetic import seqneg
from model_zoo.errors import ConfigError
from model_zoo.schema import (ITEM_EMB_SCHEMA, ITEM_FEATURE_SCHEMA, ITEM_INFO_SCHEMA, SPLIT_SCHEMA, SPLITS,
                              feature_cols)

TINY: SeqNegConfig = SEQNEG_PRESETS["tiny"]
# Edge paths on purpose: 2 neighbours and few items at time 0 (neighbour lists with nothing available yet, so the
# topic fallback is used), a strong and short freshness boost, half the items late, uniform negatives.
STRESS: SeqNegConfig = dataclasses.replace(TINY, name="stress", num_neighbors=2, initial_item_share=0.02,
                                           late_item_share=0.5, freshness_boost=20.0, freshness_tau=0.005,
                                           recency_decay=0.7, negative_power=0.0, num_train=1203, num_valid=1001,
                                           num_test=1002)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Any]:
    """The tiny seqneg world on disk plus the generator's hidden state for the same config."""
    out = tmp_path_factory.mktemp("seqneg") / "tiny"
    manifest = ensure_synthetic(out, "tiny", world="seqneg", progress=False)
    return {"out": out, "manifest": manifest, "state": seqneg.simulate(TINY)}


def _seq_matrix(path: Path) -> np.ndarray:
    col = pq.read_table(path, columns=["item_seq"]).column("item_seq").combine_chunks()
    return col.flatten().to_numpy().reshape(-1, 100)


# ---------------------------------------------------------------------------------------------------------------------
# Files: schema, readers, layout
# ---------------------------------------------------------------------------------------------------------------------

def test_files_pass_the_zoo_readers(world: Dict[str, Any]) -> None:
    out, cfg = world["out"], TINY
    vocab = vocab_sizes(cfg)
    for split in SPLITS:
        assert pq.read_schema(out / f"{split}.parquet").remove_metadata() == SPLIT_SCHEMA.remove_metadata()
        arrays = read_split(out / f"{split}.parquet", split_specs(vocab, seq_length=100))
        rows = {"train": cfg.num_train, "valid": cfg.num_valid, "test": cfg.num_test}[split]
        assert arrays["label"].shape == (rows,) and arrays["label"].sum() == cfg.num_groups(split)
        assert ((arrays["item_seq"] != 0).sum(axis=1) >= 3).all()
    for name, schema in (("item_info", ITEM_INFO_SCHEMA), ("item_feature", ITEM_FEATURE_SCHEMA),
                         ("item_emb", ITEM_EMB_SCHEMA)):
        assert pq.read_schema(out / f"{name}.parquet").remove_metadata() == schema.remove_metadata(), name
    read_item_info(out / "item_info.parquet", item_info_specs(vocab), num_items=vocab["item_id"])
    feat = read_optional_item_table(out / "item_feature.parquet", item_feature_specs(vocab), has_padding_row=False,
                                    num_items=vocab["item_id"])
    read_optional_item_table(out / "item_emb.parquet", item_emb_specs(vocab), has_padding_row=False,
                             num_items=vocab["item_id"])
    assert all("#" in title for title in feat["item_title"])
    test = read_split(out / "test.parquet", split_specs(vocab))
    truth = np.loadtxt(out / "ground_truth.csv", delimiter=",", skiprows=1, dtype=np.int64)
    np.testing.assert_array_equal(truth[:, 0], np.arange(cfg.num_test))
    np.testing.assert_array_equal(truth[:, 1], test["label"].astype(np.int64))
    for split in ("valid", "test"):
        oracle = pq.read_table(out / f"oracle_{split}.parquet")
        np.testing.assert_array_equal(oracle.column("ID").to_numpy(), np.arange(oracle.num_rows))
        assert oracle.num_rows == cfg.num_valid and ((oracle.column("p_click").to_numpy() > 0).all())


def test_manifest(world: Dict[str, Any]) -> None:
    m, out = world["manifest"], world["out"]
    assert json.loads((out / "manifest.json").read_text()) == m
    assert m["world"] == "seqneg" and m["dataset_id"] == "MicroLens_seqneg_tiny"
    assert m["generator_version"] == SEQNEG_GENERATOR_VERSION and m["config_hash"] == config_hash(TINY)
    assert m["config"] == TINY.to_dict() and m["vocab_sizes"] == vocab_sizes(TINY)
    assert m["positive_rate"] == {"train": 0.25, "valid": 0.25, "test": 0.25}
    assert verify_files(out, m) == []
    for split in ("valid", "test"):
        labels = pq.read_table(out / f"{split}.parquet", columns=["label"]).column("label").to_numpy()
        p = pq.read_table(out / f"oracle_{split}.parquet").column("p_click").to_numpy()
        assert m["oracle_auc"][split] == pytest.approx(roc_auc_score(labels, p), abs=1e-12)
    h = m["hist_len"]["train"]
    assert h["min"] >= 3 and 4 <= h["median"] <= 8 and 6 <= h["mean"] <= 10 and h["max"] <= 100


def test_rows_match_the_generative_state(world: Dict[str, Any]) -> None:
    """The files are the state's rows; groups share history and user; everything was available at t_pos."""
    out, state, cfg = world["out"], world["state"], TINY
    cat = state.catalog
    feat = pq.read_table(out / "item_feature.parquet", columns=["likes_level", "views_level"])
    seen_users: List[np.ndarray] = []
    for split in SPLITS:
        d = state.splits[split]
        table = pq.read_table(out / f"{split}.parquet")
        item = table.column("item_id").to_numpy()
        np.testing.assert_array_equal(item, d.candidate)
        np.testing.assert_array_equal(table.column("label").to_numpy(), d.label)
        np.testing.assert_array_equal(table.column("likes_level").to_numpy(),
                                      feat.column("likes_level").to_numpy()[item - 1])
        user = table.column("user_id").to_numpy()
        np.testing.assert_array_equal(user, state.users.user_id[d.first_user + d.row_group] + 1)
        seq = _seq_matrix(out / f"{split}.parquet")
        grp = d.row_group
        for r in range(0, grp.shape[0], 97):            # a sample of rows: history as written, left-padded
            g = grp[r]
            hist = d.hist[d.hist_off[g]:d.hist_off[g + 1]]
            np.testing.assert_array_equal(seq[r, 100 - hist.shape[0]:], hist)
            assert (seq[r, :100 - hist.shape[0]] == 0).all()
        first_of_group = np.r_[True, grp[1:] != grp[:-1]]
        same = ~first_of_group                          # rows of one group are contiguous and share seq and user
        np.testing.assert_array_equal(seq[same], seq[np.flatnonzero(same) - 1])
        np.testing.assert_array_equal(user[same], user[np.flatnonzero(same) - 1])
        assert np.bincount(grp, weights=d.label).tolist() == [1.0] * d.hist_len.shape[0]
        assert (np.diff(d.t_pos) >= 0).all()
        assert (cat.arrival[d.candidate] <= d.t_pos[grp]).all()
        owner = np.repeat(np.arange(d.hist_len.shape[0]), d.hist_len)
        assert (cat.arrival[d.hist] <= d.t_pos[owner]).all()
        lo, hi = (cfg.start_time, cfg.split_time) if split == "train" else (cfg.split_time, 1.0)
        assert lo <= d.t_pos.min() and d.t_pos.max() < hi
        seen_users.append(np.unique(user))
    all_users = np.concatenate(seen_users)
    assert np.unique(all_users).shape[0] == all_users.shape[0] == cfg.num_users   # one split per user


def test_cold_targets(world: Dict[str, Any]) -> None:
    """Cold = never in train (candidate or history); recomputed from the files, it matches the manifest."""
    out, m = world["out"], world["manifest"]
    train = pq.read_table(out / "train.parquet")
    seen = set(np.unique(_seq_matrix(out / "train.parquet"))) | set(train.column("item_id").to_numpy().tolist())
    for split in ("valid", "test"):
        item = pq.read_table(out / f"{split}.parquet").column("item_id").to_numpy()
        cold = ~np.isin(item, list(seen))
        assert m["cold_target_share"][split]["rows"] == pytest.approx(cold.mean(), abs=1e-4)
        assert 0.1 < cold.mean() < 0.4
    late = world["state"].catalog.arrival[1:] >= TINY.split_time
    assert not (set(np.flatnonzero(late) + 1) & seen), "an item arriving after split_time occurs in train"


# ---------------------------------------------------------------------------------------------------------------------
# The oracle: exact formula, brute force, sampler, calibration
# ---------------------------------------------------------------------------------------------------------------------

def _brute_neighbors(cfg: SeqNegConfig, state: seqneg.SeqNegState) -> Dict[int, List[Tuple[int, float]]]:
    """Each item's neighbours from the definition: the top num_neighbors of its topic by latent cosine (float64)."""
    topic = state.content.topic
    unit = state.content.unit.astype(np.float64)
    pop = np.exp(state.content.log_pop)
    out: Dict[int, List[Tuple[int, float]]] = {}
    for j in range(1, cfg.num_items + 1):
        same = [i for i in np.flatnonzero(topic == topic[j - 1]) + 1 if i != j]
        cos = {i: float(unit[j] @ unit[i]) for i in same}
        top = sorted(same, key=lambda i: (-cos[i], i))[:cfg.num_neighbors]
        out[j] = [(i, np.exp(cfg.neighbor_temp * (cos[i] - 1.0)) * pop[i] ** cfg.pop_alpha) for i in top]
    return out


def _brute_next(cfg: SeqNegConfig, state: seqneg.SeqNegState, nbrs: Dict[int, List[Tuple[int, float]]],
                hist: np.ndarray, topics: np.ndarray, weights: np.ndarray, t: float) -> np.ndarray:
    """P(. | history, user, t) over all item ids (index 0 = padding, 0) by direct sums over every item."""
    arrival = state.catalog.arrival
    topic = np.r_[-1, state.content.topic]
    pop = np.exp(state.content.log_pop)
    avail = arrival <= t
    weight = np.zeros(cfg.num_items + 1)
    weight[avail] = pop[avail] ** cfg.pop_alpha * (1 + cfg.freshness_boost * np.exp(-(t - arrival[avail])
                                                                                    / cfg.freshness_tau))
    weight[0] = 0.0

    def in_topic(tp: int) -> np.ndarray:
        wt = np.where(topic == tp, weight, 0.0)
        return wt / wt.sum()

    pi_pop, pi_int, pi_seq = cfg.next_item_mix
    if len(hist) == 0:
        pi_pop, pi_int, pi_seq = pi_pop / (pi_pop + pi_int), pi_int / (pi_pop + pi_int), 0.0
    p = pi_pop * weight / weight.sum()
    for tp, w in zip(topics, weights):
        if w > 0:
            p += pi_int * w * in_topic(tp)
    recent = list(hist[::-1][:cfg.recent_k])
    rho = np.array([cfg.recency_decay ** k for k in range(len(recent))])
    for r, j in zip(rho / max(rho.sum(), 1e-300), recent):
        vec = np.zeros(cfg.num_items + 1)
        for i, wt in nbrs[int(j)]:
            if avail[i]:
                vec[i] = wt
        p += pi_seq * r * (vec / vec.sum() if vec.sum() > 0 else in_topic(topic[j]))
    return p


def _brute_q(cfg: SeqNegConfig, state: seqneg.SeqNegState, t: float) -> np.ndarray:
    q = np.where(state.catalog.arrival <= t, np.exp(cfg.negative_power * state.content.log_pop), 0.0)
    q[0] = 0.0
    return q / q.sum()


@pytest.mark.parametrize("cfg", [TINY, STRESS], ids=["tiny", "stress"])
def test_oracle_equals_brute_force(cfg: SeqNegConfig, world: Dict[str, Any]) -> None:
    state = world["state"] if cfg is TINY else seqneg.simulate(cfg)
    nbrs = _brute_neighbors(cfg, state)
    for j in range(1, cfg.num_items + 1):        # the neighbour lists themselves
        ids = [i for i, _ in nbrs[j]]
        np.testing.assert_array_equal(state.catalog.nbr[j, :len(ids)], ids)
        np.testing.assert_allclose(state.catalog.nbr_w[j, :len(ids)], [w for _, w in nbrs[j]], rtol=1e-9)
    fallbacks = 0
    for split in ("valid", "test"):
        d = state.splits[split]
        expected = np.empty(d.candidate.shape[0])
        for g in range(d.hist_len.shape[0]):
            u = d.first_user + g
            hist = d.hist[d.hist_off[g]:d.hist_off[g + 1]]
            t = d.t_pos[g]
            p = _brute_next(cfg, state, nbrs, hist, state.users.topics[u], state.users.weights[u], t)
            assert p.sum() == pytest.approx(1.0, abs=1e-12)
            q = _brute_q(cfg, state, t)
            rows = np.flatnonzero(d.row_group == g)
            c = d.candidate[rows]
            expected[rows] = p[c] / (p[c] + d.num_neg[g] * q[c])
            np.testing.assert_allclose(d.p_next[rows], p[c], rtol=1e-9, atol=1e-15)
            np.testing.assert_allclose(d.q[rows], q[c], rtol=1e-9, atol=1e-15)
            fallbacks += sum(not any(state.catalog.arrival[i] <= t for i, _ in nbrs[int(j)])
                             for j in hist[::-1][:cfg.recent_k])
        np.testing.assert_allclose(d.oracle, expected, rtol=1e-9, atol=1e-12)
        if cfg is TINY:   # the written oracle is this very computation
            written = pq.read_table(world["out"] / f"oracle_{split}.parquet").column("p_click").to_numpy()
            np.testing.assert_array_equal(written, d.oracle)
    if cfg is STRESS:
        assert fallbacks > 0, "the stress config should exercise the topic fallback of the neighbour component"
        assert (state.splits["test"].num_neg == [3] * (state.splits["test"].num_neg.shape[0] - 1) + [1]).all()


@pytest.mark.parametrize("cfg", [TINY, STRESS], ids=["tiny", "stress"])
def test_sampler_draws_from_the_evaluated_distribution(cfg: SeqNegConfig, world: Dict[str, Any]) -> None:
    """Monte-Carlo frequencies of sample_next / sample_negatives match next_item_prob / negative_prob.

    Tolerance: every item's frequency within 5 binomial standard errors (+ 1/N) of its probability, and the total
    variation distance at most 1.5 times its expected sampling value (0.5 sum sqrt(2 p (1 - p) / (pi N))) + 0.002,
    over 100,000 draws per context.
    """
    state = world["state"] if cfg is TINY else seqneg.simulate(cfg)
    cat, users = state.catalog, state.users
    rng = np.random.default_rng(0)
    n = 100_000
    items = np.arange(1, cfg.num_items + 1)
    d = state.splits["test"]
    contexts = [(g, hl) for g in (0, d.hist_len.shape[0] // 2, d.hist_len.shape[0] - 1) for hl in (None, 0, 1)]
    for g, cut in contexts:
        u = d.first_user + g
        full = d.hist[d.hist_off[g]:d.hist_off[g + 1]]
        hist = full if cut is None else full[:cut]
        t = d.t_pos[g] if cut is None else d.t_pos[g] - 0.5 * cfg.history_window
        recent = np.zeros(cfg.recent_k, dtype=np.int64)
        recent[:min(len(hist), cfg.recent_k)] = hist[::-1][:cfg.recent_k]
        rep = lambda a: np.repeat(np.asarray(a)[None], n, axis=0)  # noqa: E731
        draws = seqneg.sample_next(cat, cfg, rep(recent), np.full(n, len(hist)), rep(users.cum[u]),
                                   rep(users.topics[u]), np.full(n, t), rng)
        k = items.shape[0]
        p = seqneg.next_item_prob(cat, cfg, items, np.repeat(recent[None], k, 0), np.full(k, len(hist)),
                                  np.repeat(users.topics[u][None], k, 0), np.repeat(users.weights[u][None], k, 0),
                                  np.full(k, t))
        assert p.sum() == pytest.approx(1.0, abs=1e-9)
        for probs, sample in ((p, draws), (seqneg.negative_prob(cat, items, np.full(k, t)),
                                           seqneg.sample_negatives(cat, np.full(n, t), rng))):
            freq = np.bincount(sample, minlength=cfg.num_items + 1)[1:] / n
            assert (freq[probs == 0] == 0).all(), "drew an item that has zero probability (not yet arrived?)"
            bound = 5 * np.sqrt(probs * (1 - probs) / n) + 1.0 / n
            worst = int(np.argmax(np.abs(freq - probs) - bound))
            assert (np.abs(freq - probs) <= bound).all(), (g, cut, worst + 1, freq[worst], probs[worst])
            noise = 0.5 * np.sqrt(2 * probs * (1 - probs) / (np.pi * n)).sum()
            assert 0.5 * np.abs(freq - probs).sum() <= 1.5 * noise + 0.002


def test_oracle_is_calibrated() -> None:
    """Mean label within each oracle-probability decile equals the bin's mean probability.

    40,000 valid + test rows; tolerance per bin: 4 binomial standard errors sqrt(sum p(1-p)) / n plus 0.005.
    Also the oracle summed over a group is 1 on average (each group holds exactly one positive).
    """
    cfg = make_config("tiny", world="seqneg", num_train=400, num_valid=20_000, num_test=20_000)
    state = seqneg.simulate(cfg)
    p = np.concatenate([state.splits[s].oracle for s in ("valid", "test")])
    y = np.concatenate([state.splits[s].label for s in ("valid", "test")])
    edges = np.quantile(p, np.linspace(0, 1, 11))
    bins = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, 9)
    for b in range(10):
        sel = bins == b
        tol = 4 * np.sqrt((p[sel] * (1 - p[sel])).sum()) / sel.sum() + 0.005
        assert abs(y[sel].mean() - p[sel].mean()) <= tol, (b, y[sel].mean(), p[sel].mean(), tol)
    group_sums = np.concatenate([np.bincount(state.splits[s].row_group, weights=state.splits[s].oracle)
                                 for s in ("valid", "test")])
    assert abs(group_sums.mean() - 1.0) <= 4 * group_sums.std() / np.sqrt(group_sums.shape[0])
    assert 0.85 < roc_auc_score(y, p) < 0.99


# ---------------------------------------------------------------------------------------------------------------------
# Determinism, cache, configuration
# ---------------------------------------------------------------------------------------------------------------------

def test_determinism(world: Dict[str, Any], tmp_path: Path) -> None:
    same = generate(TINY, tmp_path / "same", progress=False)
    for name in DATA_FILES + TRUTH_FILES:
        assert same["files"][name] == world["manifest"]["files"][name], name
        assert (tmp_path / "same" / name).read_bytes() == (world["out"] / name).read_bytes(), name
    other = generate(make_config("tiny", seed=7, world="seqneg"), tmp_path / "other", progress=False)
    for name in DATA_FILES + TRUTH_FILES:
        assert other["files"][name]["sha256"] != same["files"][name]["sha256"], name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other", "same"]


def test_bit_flip_regenerates_seqneg_world(world: Dict[str, Any], tmp_path: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "w"
    first = ensure_synthetic(out, "tiny", world="seqneg", progress=False)
    path = out / "oracle_test.parquet"
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x10
    path.write_bytes(bytes(data))
    with caplog.at_level("WARNING", logger="model_zoo.datasets.synthetic.cache"):
        again = ensure_synthetic(out, "tiny", world="seqneg", progress=False)
    assert any("oracle_test.parquet" in r.getMessage() for r in caplog.records)
    assert path.read_bytes() == (world["out"] / "oracle_test.parquet").read_bytes()
    assert again["files"] == first["files"]
    # a world of the other kind in the same directory is replaced, not reused
    other = ensure_synthetic(out, "tiny", progress=False)
    assert other["world"] == "microlens_synth" and other["config_hash"] != first["config_hash"]


def test_config_validation() -> None:
    assert isinstance(make_config("small", world="seqneg"), SeqNegConfig)
    full = SEQNEG_PRESETS["full"]
    assert (full.num_items, full.num_train, full.num_valid, full.num_test, full.num_tags) == (
        91_717, 3_600_000, 10_000, 379_142, 11_740)
    assert full.num_groups("test") == 94_786 and full.num_users == 900_000 + 2_500 + 94_786
    small = SEQNEG_PRESETS["small"]
    assert (small.num_items, small.num_train, small.num_valid, small.num_test) == (8000, 200_000, 10_000, 10_000)
    bad: List[Dict[str, Any]] = [dict(num_negatives=0), dict(split_time=0.05), dict(start_time=0.95),
                                 dict(history_window=0.5), dict(freshness_tau=0.001), dict(next_item_mix=(0, 0, 1)),
                                 dict(next_item_mix=(0.5, 0.5)), dict(initial_item_share=0.8, late_item_share=0.3),
                                 dict(recency_decay=0.0), dict(negative_power=-1.0), dict(num_items=100)]
    for kwargs in bad:
        with pytest.raises(ConfigError):
            make_config("tiny", world="seqneg", **kwargs)
    with pytest.raises(ConfigError, match=r"did you mean 'num_negatives'"):
        make_config("tiny", world="seqneg", num_negative=2)
    with pytest.raises(ConfigError, match=r"allowed worlds: microlens_synth, seqneg"):
        make_config("tiny", world="seqnegative")
    with pytest.raises(ConfigError, match=r"allowed presets"):
        ensure_synthetic("/nonexistent/never-written", "huge", world="seqneg", progress=False)


def test_dataset_config_blocks_and_locate_data(tmp_path: Path) -> None:
    blocks = yaml.safe_load((CONFIG_DIR / "dataset_config.yaml").read_text())
    for preset in ("tiny", "small", "full"):
        block = blocks[f"MicroLens_seqneg_{preset}"]
        assert block["synthetic"] == {"world": "seqneg", "preset": preset, "seed": 2025}
        vocab = vocab_sizes(make_config(preset, world="seqneg"))
        assert block["feature_cols"] == feature_cols(vocab), preset
        assert block["label_col"] == blocks[f"MicroLens_synth_{preset}"]["label_col"]
    dataset_id = "MicroLens_seqneg_tiny"
    params = dict(dataset_params(dataset_id, work_dir=tmp_path), model="DIN")
    assert params["train_data"] == str(tmp_path / "data" / dataset_id / "train.parquet")  # derived from data_root
    files = prepare.locate_data(params, progress=False)
    assert files.synthetic_manifest["world"] == "seqneg"
    assert prepare.oracle_metrics(files)["oracle_valid_AUC"] == files.synthetic_manifest["oracle_auc"]["valid"]
    table = prepare.load_item_table(params, files)
    assert table is not None
    arrays = read_split(files.valid, prepare.split_columns(params))
    assert arrays["label"].shape == (TINY.num_valid,)


@pytest.mark.slow
def test_small_world_measurements(tmp_path: Path) -> None:
    """The small preset: oracle AUC about 0.96, about 20 % cold targets, MiniLM-like cosine band (~15 s)."""
    m = ensure_synthetic(tmp_path / "small", "small", world="seqneg", progress=False)
    for split in ("valid", "test"):
        assert 0.94 <= m["oracle_auc"][split] <= 0.98
        assert m["oracle_group_auc"][split] > m["oracle_auc"][split]
        assert 0.15 <= m["cold_target_share"][split]["rows"] <= 0.25
        assert m["baseline_auc"]["popularity"][split] < m["oracle_auc"][split] - 0.2
    for modality in ("text", "image"):
        band = m["cosine"][modality]["random_pairs"]
        assert 0.0 <= band["p5"] and 0.12 <= band["p50"] <= 0.22 and band["p95"] <= 0.4, band
        assert m["cosine"][modality]["positive_vs_history"]["p50"] > band["p50"] + 0.1


def test_cli_reuses_verified_world(world: Dict[str, Any], capsys: pytest.CaptureFixture) -> None:
    from model_zoo.apps import generate as generate_app
    assert generate_app.main(["--world", "seqneg", "--preset", "tiny", "--out", str(world["out"]), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "MicroLens_seqneg_tiny (seqneg)" in text and "cached and verified" in text and "cold targets" in text
    assert generate_app.main(["--world", "seqneg", "--out", str(world["out"]), "--set", "num_negatives=x"]) == 2
    assert "must be an integer" in capsys.readouterr().err
