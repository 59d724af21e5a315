"""Runs a user can trust: the CLI driven through bad input and faults.

Every case asserts the exit code, what the message says, and that nothing written earlier was lost or changed (an
earlier run's directory compared file by file by sha256, the results CSV's earlier bytes still its prefix, a data
dir unchanged). Categories: config, injection, run records, faults, results CSV, data, devices, outputs.

Cheap cases call the CLI entry points in-process (``runner.main(argv)``, ``submission.main(argv)``: the same argument
parsing, exit codes and one-line messages, without a new interpreter); signals, concurrency and resource limits use
real subprocesses. Every run shares the session's tiny world (``shared_data_args``).
"""
from __future__ import annotations

import errno
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import yaml

from conftest import REPO_ROOT, shared_data_args, validated
from model_zoo.apps import runner, submission
from model_zoo.apps.results import append_result, read_results
from model_zoo.apps.run_record import RunRecord
from model_zoo.config import CONFIG_DIR, SYNTHETIC_FILES
from model_zoo.datasets import prepare
from model_zoo.fileio import sha256_file

EXPID, DATASET = "DIN_test", "MicroLens_synth_tiny"
SPLITS = ("train.parquet", "valid.parquet", "test.parquet", "item_info.parquet")
# keys of DIN_test, for a user's own expid on a user's own dataset
DIN_KEYS = {"model": "DIN", "embedding_dim": 8, "feature_specs": [{"name": "item_emb_d128", "embedding_dim": 16}],
            "dnn_hidden_units": [32, 16], "attention_hidden_units": [16], "batch_size": 256, "epochs": 1,
            "max_len": 16, "verbose": 0}


# ---------------------------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------------------------
def snapshot(root: Path) -> Dict[str, str]:
    """relative path -> sha256 of every file under ``root`` (what "nothing changed" is checked against)."""
    return {str(p.relative_to(root)): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()}


def data_files(world_dir: Path) -> Dict[str, str]:
    """sha256 of a world's files, its manifest aside (which records the generation time)."""
    return {k: v for k, v in snapshot(world_dir).items() if k != "manifest.json"}


def cli(capsys, argv: Sequence[str], module: Callable[[List[str]], int] = runner.main):
    """Exit code, stdout and stderr of a CLI entry point called in-process."""
    capsys.readouterr()
    rc = module(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def error_line(err: str) -> str:
    """The message of a failed run: exactly one non-empty stderr line, starting with 'error:'."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err[-3000:]
    return lines[0]


def start_cli(args: Sequence[str], cwd: Path, **popen: Any) -> subprocess.Popen:
    """``python -m model_zoo.apps.runner`` as a background process (environment as ``conftest.run_cli``)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen([sys.executable, "-m", "model_zoo.apps.runner", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def tiny_block() -> Dict[str, Any]:
    return yaml.safe_load((CONFIG_DIR / "dataset_config.yaml").read_text())[DATASET]


def user_block(files: Mapping[str, str]) -> Dict[str, Any]:
    """A user's dataset block (not synthetic) with the tiny world's columns and ``files`` as its paths."""
    block = {k: v for k, v in tiny_block().items() if k not in ("synthetic", "data_root")}
    block.update(data_root="./", test_has_labels=True, **files)
    return block


def write_config(cfg: Path, *, datasets: Mapping[str, Any], expids: Mapping[str, Any]) -> Path:
    cfg.mkdir(parents=True, exist_ok=True)
    (cfg / "dataset_config.yaml").write_text(yaml.safe_dump(dict(datasets), sort_keys=False))
    (cfg / "model_config.yaml").write_text(yaml.safe_dump(dict(expids), sort_keys=False))
    return cfg


def make_user_dataset(root: Path, world: Path) -> Path:
    """``root/cfg`` with dataset ``my_data`` (a copy of the tiny world's files in ``root/cfg/files``, paths relative
    to the YAML file) and expid ``DIN_my``; returns the config dir."""
    files = root / "cfg" / "files"
    files.mkdir(parents=True, exist_ok=True)
    for name in SPLITS:
        shutil.copy(world / name, files / name)
    paths = {"train_data": "files/train.parquet", "valid_data": "files/valid.parquet",
             "test_data": "files/test.parquet", "item_info": "files/item_info.parquet"}
    return write_config(root / "cfg", datasets={"my_data": user_block(paths)},
                        expids={"DIN_my": {**DIN_KEYS, "dataset_id": "my_data"}})


def rewrite_parquet(path: Path, column: str, values: np.ndarray) -> None:
    table = pq.read_table(path)
    table = table.set_column(table.schema.get_field_index(column), column, pa.array(values))
    pq.write_table(table, path)


def touch_payload(marker: Path) -> str:
    """Python that creates ``marker`` when evaluated: what FuxiCTR's eval would run."""
    return f"__import__('pathlib').Path({str(marker)!r}).touch()"


def reached_no_eval(marker: Path, probe: Path, prove: Callable[[Path], None]) -> None:
    """The payload is live (``prove(probe)`` runs it through FuxiCTR's own sink and ``probe`` appears), yet the run
    never ran it (``marker`` absent)."""
    assert not probe.exists()
    prove(probe)
    assert probe.exists(), "the payload must be live for the check to mean anything"
    assert not marker.exists(), "a config string reached eval"


# ---------------------------------------------------------------------------------------------------------------------
# Session data: the tiny world, and one finished "earlier run" every later case must leave untouched
# ---------------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def world(work_dir: Path) -> Path:
    """The session's tiny world (generated once, verified)."""
    files = prepare.locate_data(validated(EXPID, work_dir), progress=False)
    return files.data_dir


@pytest.fixture(scope="module")
def lab(tmp_path_factory, world: Path) -> Dict[str, Any]:
    """An output dir holding one finished run of DIN_test (the earlier run), its results CSV and its snapshot."""
    out = tmp_path_factory.mktemp("lab")
    results = out / "results" / "results.csv"
    rc = runner.main(["--expid", EXPID, "--output-dir", str(out), *shared_data_args(world.parent.parent)])
    assert rc == 0
    (row,) = read_results(results, required=True).rows
    run_dir = Path(row["run_dir"])
    return {"out": out, "results": results, "run_dir": run_dir, "snapshot": snapshot(run_dir),
            "args": ["--expid", EXPID, "--output-dir", str(out), *shared_data_args(world.parent.parent)]}


def assert_earlier_run_intact(lab: Mapping[str, Any]) -> None:
    assert snapshot(lab["run_dir"]) == lab["snapshot"], "an earlier run's files changed"
    assert RunRecord(lab["run_dir"]).status()["state"] == "finished"


def runs_of(lab: Mapping[str, Any]) -> List[Path]:
    return sorted(p for p in lab["run_dir"].parent.iterdir() if p.is_dir())


# =====================================================================================================================
# Config: every key and value checked before anything is read or written (in-process CLI: exit 2, one line or one
# block listing every problem, the output dir never created)
# =====================================================================================================================
CONFIG_CASES = [
    # (id, --set overrides, expected message fragment)
    ("batch_size_string", ["batch_size=abc"], "batch_size='abc'; expected an integer >= 1"),
    ("batch_size_float", ["batch_size=2.5"], "batch_size=2.5; expected an integer >= 1"),
    ("learning_rate_negative", ["learning_rate=-1"], "learning_rate=-1; expected a number > 0"),
    ("embedding_dim_quoted", ["embedding_dim='8'"], "embedding_dim='8'; expected an integer >= 1"),
    ("epochs_zero", ["epochs=0"], "epochs=0; expected an integer >= 1"),
    ("metric_typo", ["metrics=[AUCC]"], "metrics=['AUCC']; expected a list of (one of ('AUC'"),
    ("metric_ndcg_name", ["metrics=[AUC, NDCGfoo]"], "metrics=['AUC', 'NDCGfoo']"),
    ("monitor_not_in_metrics", ["monitor=logloss", "metrics=[AUC]"], "monitor metric 'logloss' is not among"),
    ("attention_type_on_din", ["attention_type=multihead"], "unknown key 'attention_type' for DIN"),
    ("num_heads_on_din", ["num_heads=2"], "unknown key 'num_heads' for DIN"),
    ("unknown_key_did_you_mean", ["dnn_hiden_units=[8]"], "(did you mean 'dnn_hidden_units'?)"),
    ("unread_fuxictr_key", ["num_workers=4"], "key 'num_workers' is read by nothing in the zoo"),
    ("feature_specs_key_typo", ["feature_specs=[{name: item_emb_d128, embeding_dim: 8}]"],
     "unknown key 'embeding_dim' (did you mean 'embedding_dim'?)"),
    ("feature_specs_name_typo", ["feature_specs=[{name: item_emb_d12, embedding_dim: 8}]"],
     "name='item_emb_d12' is not a feature (did you mean 'item_emb_d128'?)"),
    ("use_features_name_typo", ["use_features=[likes_levle]"], "'likes_levle' is not a feature (did you mean"),
    ("group_id_name_typo", ["group_id=user"], "group_id='user' is not a feature (did you mean 'user_id'?)"),
    ("dropout_out_of_range", ["net_dropout=1.0"], "net_dropout=1.0; expected a number >= 0 and < 1"),
    ("derived_key_in_config", ["model_id=x"], "key 'model_id' is set from the expid, not in a config file"),
    ("expid_with_dotdot", None, "--expid '../DIN_test'"),
    ("dataset_id_with_slash", ["dataset_id=a/b"], "dataset_id='a/b'; expected a name"),
    ("dataset_id_typo", ["dataset_id=MicroLens_synth_tnyi"], "(did you mean 'MicroLens_synth_tiny'?)"),
    ("expid_typo", None, "unknown expid 'DIN_tset' (did you mean 'DIN_test'?)"),
    ("set_without_equals", ["batch_size"], "--set 'batch_size': expected key=value"),
    ("set_bad_yaml", ["metrics=[AUC"], "the value is not valid YAML"),
]


@pytest.mark.parametrize("case, overrides, message", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_config_value_refused_before_anything_is_written(capsys, tmp_path, case, overrides, message):
    out = tmp_path / "out"
    expid = {"expid_with_dotdot": "../DIN_test", "expid_typo": "DIN_tset"}.get(case, EXPID)
    argv = ["--expid", expid, "--output-dir", str(out)]
    for item in overrides or ():
        argv += ["--set", item]
    rc, stdout, err = cli(capsys, argv)
    assert rc == 2, err
    assert message in err, err
    assert err.startswith("error: ") and "Traceback" not in err
    assert not out.exists(), "a config error must write nothing"


def test_every_problem_listed_at_once(capsys, tmp_path):
    rc, _, err = cli(capsys, ["--expid", EXPID, "--output-dir", str(tmp_path / "o"), "--set", "batch_size=0",
                              "--set", "learning_rate=0", "--set", "embeding_dim=8", "--set", "metrics=[AUCC]"])
    assert rc == 2 and "5 problem(s) in the config of expid 'DIN_test' (DIN)" in err
    assert all(f in err for f in ("batch_size=0", "learning_rate=0", "did you mean 'embedding_dim'", "AUCC",
                                  "monitor metric 'AUC' is not among metrics ['AUCC']"))
    assert all(line.startswith(("error:", "  - ")) for line in err.strip().splitlines())


def test_dmf_keys_of_switched_off_parts_refused(capsys, tmp_path):
    rc, _, err = cli(capsys, ["--expid", "DMF_test", "--output-dir", str(tmp_path / "o"),
                              "--set", "use_histogram=false", "--set", "cmm_weight=0.5"])
    assert rc == 2
    assert "key 'num_tiers' is unused with use_histogram: False" in err
    assert "key 'histogram_hidden_units' is unused with use_histogram: False" in err
    assert "key 'cmm_weight' is read only with cmm_mode: weighted_sum" in err
    rc, _, err = cli(capsys, ["--expid", "DMF_test", "--output-dir", str(tmp_path / "o"), "--set", "use_dta=false"])
    assert rc == 2 and "key 'attention_dim' is unused with use_dta: False" in err


@pytest.mark.parametrize("change, message", [
    ({"likes_level": {"vocab_size": 0}}, "vocab_size=0; expected an integer >= 2"),
    ({"likes_level": {"vocab_size": None}}, "('likes_level'): missing key 'vocab_size'"),
    ({"likes_level": {"embeding_dim": 4}}, "unknown key 'embeding_dim' (did you mean 'embedding_dim'?)"),
    ({"likes_level": {"type": "numeric"}}, "type='numeric'; expected one of ('categorical', 'sequence'"),
    ({"item_tags": {"max_len": None}}, "missing key 'max_len' for a sequence feature"),
], ids=["vocab_size_zero", "vocab_size_missing", "feature_col_key_typo", "feature_type", "sequence_max_len"])
def test_feature_cols_checked(capsys, tmp_path, world, change, message):
    block = user_block({k: str(world / f) for k, f in SYNTHETIC_FILES.items() if k != "item_feature"})
    for col in block["feature_cols"]:
        for key, value in change.get(col["name"], {}).items():
            col.pop(key) if value is None else col.__setitem__(key, value)
    cfg = write_config(tmp_path / "cfg", datasets={"my_data": block},
                       expids={"DIN_my": {**DIN_KEYS, "dataset_id": "my_data"}})
    rc, _, err = cli(capsys, ["--config", str(cfg), "--expid", "DIN_my", "--output-dir", str(tmp_path / "o")])
    assert rc == 2 and message in err, err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("missing, message", [
    ("label_col", "missing key 'label_col'"),
    ("train_data", "missing key 'train_data'"),
    ("item_info", "missing key 'item_info'"),
], ids=["label_col", "train_data", "item_info"])
def test_missing_dataset_keys(capsys, tmp_path, world, missing, message):
    block = user_block({k: str(world / f) for k, f in SYNTHETIC_FILES.items() if k != "item_feature"})
    del block[missing]
    cfg = write_config(tmp_path / "cfg", datasets={"my_data": block},
                       expids={"DIN_my": {**DIN_KEYS, "dataset_id": "my_data"}})
    rc, _, err = cli(capsys, ["--config", str(cfg), "--expid", "DIN_my", "--output-dir", str(tmp_path / "o")])
    assert rc == 2 and message in err, err
    assert not (tmp_path / "o").exists()


def test_malformed_user_config_files(capsys, tmp_path):
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "model_config.yaml").write_text(f"DIN_scalar: 5\nDIN_bad_model: {{model: DINN, dataset_id: {DATASET}}}\n")
    rc, _, err = cli(capsys, ["--config", str(cfg), "--expid", "DIN_scalar"])
    assert rc == 2 and "block 'DIN_scalar'" in error_line(err) and "expected a mapping of key: value, found int" in err
    rc, _, err = cli(capsys, ["--config", str(cfg), "--expid", "DIN_bad_model"])
    assert rc == 2 and "unknown model 'DINN' (did you mean 'DIN'?)" in error_line(err)
    (cfg / "model_config.yaml").write_text("DIN_my: {model: DIN, dataset_id: [unclosed\n")
    rc, _, err = cli(capsys, ["--config", str(cfg), "--expid", "DIN_my"])
    assert rc == 2 and f"{cfg / 'model_config.yaml'}: not valid YAML" in error_line(err)
    (cfg / "model_config.yaml").write_bytes(b"DIN_my: {model: \xff\xfe}\n")
    rc, _, err = cli(capsys, ["--config", str(cfg), "--expid", "DIN_my"])
    assert rc == 2 and "cannot read" in error_line(err)
    (cfg / "model_config.yaml").write_text(yaml.safe_dump({"DIN_my": {**DIN_KEYS, "dataset_id": "MicroLens_synth_tiny",
                                                                     "gpu": 0}}))
    rc, _, err = cli(capsys, ["--config", str(cfg), "--expid", "DIN_my"])
    assert rc == 2 and "key 'gpu' is set from --gpu, not in a config file" in error_line(err)
    rc, _, err = cli(capsys, ["--config", str(cfg / "model_config.yaml"), "--expid", "DIN_my"])
    assert rc == 2 and "not a directory" in error_line(err)


def test_output_dir_that_is_a_file(capsys, tmp_path):
    target = tmp_path / "not_a_dir"
    target.write_text("mine\n")
    rc, _, err = cli(capsys, ["--expid", EXPID, "--output-dir", str(target)])
    assert rc == 2 and "--output-dir" in error_line(err) and "is not a directory" in err
    assert target.read_text() == "mine\n"


def test_model_root_not_creatable(capsys, tmp_path, world):
    blocker = tmp_path / "ckpt"
    blocker.write_text("a file where model_root should be\n")
    rc, _, err = cli(capsys, ["--expid", EXPID, "--output-dir", str(tmp_path / "o"), "--set", f"model_root={blocker}",
                              *shared_data_args(world.parent.parent)])
    assert rc == 2 and "model_root" in error_line(err) and "cannot create" in err
    assert blocker.read_text() == "a file where model_root should be\n"
    assert not (tmp_path / "o" / "results").exists()


# =====================================================================================================================
# Injection: no config string reaches eval. Each payload is proven live against FuxiCTR's own sink first.
# =====================================================================================================================
def prove_loss(payload: Callable[[Path], str]) -> Callable[[Path], None]:
    from fuxictr.pytorch.torch_utils import get_loss
    return lambda probe: get_loss(payload(probe))


def prove_feature_encoder(payload: Callable[[Path], str]) -> Callable[[Path], None]:
    from fuxictr.pytorch.layers.embeddings.feature_embedding import FeatureEmbeddingDict
    return lambda probe: FeatureEmbeddingDict.get_feature_encoder(None, payload(probe))


def prove_dtype(payload: Callable[[Path], str]) -> Callable[[Path], None]:
    from fuxictr.preprocess.feature_processor import FeatureProcessor

    def prove(probe: Path) -> None:
        FeatureProcessor(feature_cols=[{"name": "x", "dtype": payload(probe), "type": "categorical"}],
                         label_col={"name": "y", "dtype": "float"}, dataset_id="d", data_root=str(probe.parent))
    return prove


def prove_metric(payload: Callable[[Path], str]) -> Callable[[Path], None]:
    import fuxictr.metrics
    return lambda probe: eval(payload(probe), vars(fuxictr.metrics))  # what evaluate_metrics does with "NDCG..."


LOSS = (lambda m: f"binary_crossentropy if {touch_payload(m)} else 0")      # eval("losses." + loss)
ENCODER = (lambda m: f"[{touch_payload(m)}, nn.Identity()][1]")              # eval(feature_encoder)
DTYPE = (lambda m: f"[{touch_payload(m)}, int][1]")                         # eval(feat["dtype"])
METRIC = (lambda m: f"NDCG(k=[{touch_payload(m)}, 2][1])")                  # eval(metric)


def _with_col(block: Dict[str, Any], name: str, **change: Any) -> Dict[str, Any]:
    block["feature_cols"] = [dict(c, **change) if c["name"] == name else c for c in block["feature_cols"]]
    return block


INJECTIONS = [
    # (id, payload, prover, where it goes: "expid" keys or "dataset" block change, expected message)
    ("loss", LOSS, prove_loss, lambda m, b, e: e.update(loss=LOSS(m)), "loss="),
    ("feature_cols_feature_encoder", ENCODER, prove_feature_encoder,
     lambda m, b, e: _with_col(b, "item_tags", feature_encoder=ENCODER(m)), "accepts only null"),
    ("feature_specs_feature_encoder", ENCODER, prove_feature_encoder,
     lambda m, b, e: e.update(feature_specs=[{"name": "item_tags", "feature_encoder": ENCODER(m)}]),
     "accepts only null"),
    ("feature_cols_dtype", DTYPE, prove_dtype, lambda m, b, e: _with_col(b, "likes_level", dtype=DTYPE(m)),
     "expected one of ('int', 'float', 'str')"),
    ("label_col_dtype", DTYPE, prove_dtype, lambda m, b, e: b.update(label_col={"name": "label", "dtype": DTYPE(m)}),
     "label_col: dtype="),
    ("metric_ndcg_payload", METRIC, prove_metric, lambda m, b, e: e.update(metrics=["AUC", METRIC(m)]),
     "or NDCG(k=N)"),
    ("monitor_dict_payload", METRIC, prove_metric, lambda m, b, e: e.update(monitor={METRIC(m): 1}), "monitor="),
    ("embedding_initializer", ENCODER, prove_feature_encoder,
     lambda m, b, e: e.update(embedding_initializer=ENCODER(m)), "unknown key 'embedding_initializer'"),
    ("feature_cols_preprocess", DTYPE, prove_dtype,
     lambda m, b, e: _with_col(b, "likes_level", preprocess=DTYPE(m)), "unknown key 'preprocess'"),
]


@pytest.mark.parametrize("case, payload, prover, inject, message", INJECTIONS, ids=[c[0] for c in INJECTIONS])
def test_injection_never_reaches_eval(capsys, tmp_path, world, case, payload, prover, inject, message):
    marker, probe = tmp_path / "PWNED", tmp_path / "probe" / "PWNED"
    probe.parent.mkdir()
    block = user_block({k: str(world / f) for k, f in SYNTHETIC_FILES.items() if k != "item_feature"})
    expid = {**DIN_KEYS, "dataset_id": "my_data"}
    inject(marker, block, expid)
    cfg = write_config(tmp_path / "cfg", datasets={"my_data": block}, expids={"DIN_my": expid})
    rc, _, err = cli(capsys, ["--config", str(cfg), "--expid", "DIN_my", "--output-dir", str(tmp_path / "o")])
    assert rc == 2 and message in err, err
    assert not (tmp_path / "o").exists()
    reached_no_eval(marker, probe, prover(payload))


@pytest.mark.parametrize("where", ["config_file", "set"])
def test_yaml_python_tags_are_not_constructed(capsys, tmp_path, where):
    marker = tmp_path / "PWNED"
    tag = f"!!python/object/apply:os.mkdir [{str(marker)!r}]"
    argv = ["--expid", EXPID, "--output-dir", str(tmp_path / "o")]
    if where == "config_file":
        cfg = tmp_path / "cfg"
        cfg.mkdir()
        (cfg / "model_config.yaml").write_text(f"DIN_my:\n  model: DIN\n  dataset_id: {DATASET}\n  loss: {tag}\n")
        argv = ["--config", str(cfg), "--expid", "DIN_my", "--output-dir", str(tmp_path / "o")]
    else:
        argv += ["--set", f"loss={tag}"]
    rc, _, err = cli(capsys, argv)
    assert rc == 2 and "not valid YAML" in error_line(err) and "python/object/apply" in err
    assert not marker.exists() and not (tmp_path / "o").exists()
    yaml.unsafe_load(tag)  # the same text *is* live under an unsafe loader
    assert marker.exists()


# =====================================================================================================================
# Devices: --gpu honoured or refused (exit 2 naming what was asked and what exists), never silently the CPU
# =====================================================================================================================
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
@pytest.mark.parametrize("argv, message", [
    (["--gpu", "0"], "--gpu 0 asks for CUDA device 0, but no CUDA device is available"),
    (["--gpu", "7"], "--gpu 7 asks for CUDA device 7, but no CUDA device is available"),
    (["--gpu", "-2"], "--gpu -2: expected -1 (CPU) or a CUDA device index >= 0"),
    (["--set", "amp=fp16"], "amp: fp16 needs a CUDA device (--gpu N); on the CPU use amp: bf16 or amp: off"),
], ids=["gpu0", "gpu7", "gpu_negative", "amp_fp16_cpu"])
def test_device_refused(capsys, tmp_path, argv, message):
    rc, _, err = cli(capsys, ["--expid", EXPID, "--output-dir", str(tmp_path / "o"), *argv])
    assert rc == 2 and message in error_line(err)
    assert not (tmp_path / "o").exists()


def test_gpu_not_a_number(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        runner.main(["--expid", EXPID, "--gpu", "zero", "--output-dir", str(tmp_path / "o")])
    assert exit_info.value.code == 2 and "--gpu: invalid int value: 'zero'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


# =====================================================================================================================
# Data: user datasets (files, classes, ids), synthetic worlds (bit flips, leftovers, occupied dirs)
# =====================================================================================================================
def test_user_dataset_files_missing_message_is_about_their_files(capsys, tmp_path, world):
    cfg = make_user_dataset(tmp_path, world)
    (cfg / "files" / "valid.parquet").unlink()
    (cfg / "files" / "item_info.parquet").unlink()
    rc, _, err = cli(capsys, ["--config", str(cfg), "--expid", "DIN_my", "--output-dir", str(tmp_path / "o")])
    line = error_line(err)
    assert rc == 2 and "dataset 'my_data' is missing 2 file(s)" in line
    assert str(cfg / "files" / "valid.parquet") in line and str(cfg / "files" / "item_info.parquet") in line
    assert "relative paths are relative to its YAML file" in line
    assert "MicroLens" not in line and "Place" not in line, "a user's dataset is not the challenge's"
    assert not (tmp_path / "o").exists()


def test_valid_split_with_one_class_refused_before_training(capsys, tmp_path, world):
    cfg = make_user_dataset(tmp_path, world)
    valid = cfg / "files" / "valid.parquet"
    rewrite_parquet(valid, "label", np.zeros(pq.ParquetFile(valid).metadata.num_rows, dtype=np.int64))
    before = snapshot(cfg)
    rc, _, err = cli(capsys, ["--config", str(cfg), "--expid", "DIN_my", "--output-dir", str(tmp_path / "o")])
    line = error_line(err)
    assert rc == 2 and str(valid) in line and "column 'label'" in line
    assert "all with label=0; AUC needs both classes (checked before training)" in line
    assert not (tmp_path / "o").exists(), "no run record, no results, no cache"
    assert snapshot(cfg) == before


def test_truncated_parquet_refused_before_training(capsys, tmp_path, world):
    cfg = make_user_dataset(tmp_path, world)
    train = cfg / "files" / "train.parquet"
    train.write_bytes(train.read_bytes()[: train.stat().st_size // 2])
    rc, _, err = cli(capsys, ["--config", str(cfg), "--expid", "DIN_my", "--output-dir", str(tmp_path / "o")])
    line = error_line(err)
    assert rc == 2 and str(train) in line and "not a readable parquet file" in line
    assert not (tmp_path / "o").exists()


def test_label_outside_zero_one_refused(capsys, tmp_path, world):
    cfg = make_user_dataset(tmp_path, world)
    valid = cfg / "files" / "valid.parquet"
    labels = pq.read_table(valid, columns=["label"])["label"].to_numpy().copy()
    labels[7] = 2
    rewrite_parquet(valid, "label", labels)
    rc, _, err = cli(capsys, ["--config", str(cfg), "--expid", "DIN_my", "--output-dir", str(tmp_path / "o")])
    line = error_line(err)
    assert rc == 2 and str(valid) in line and "column 'label', row 7" in line and "expected 0 or 1" in line
    assert not (tmp_path / "o").exists()


def test_id_outside_vocab_named_with_row(capsys, tmp_path, world):
    cfg = make_user_dataset(tmp_path, world)
    train = cfg / "files" / "train.parquet"
    levels = pq.read_table(train, columns=["likes_level"])["likes_level"].to_numpy().copy()
    levels[42] = 11  # vocab_size 11: ids 0..10
    rewrite_parquet(train, "likes_level", levels)
    rc, _, err = cli(capsys, ["--config", str(cfg), "--expid", "DIN_my", "--output-dir", str(tmp_path / "o")])
    line = error_line(err)
    assert rc == 2 and str(train) in line and "column 'likes_level', row 42" in line and "11" in line
    assert not list((tmp_path / "o").rglob("model.pt")) and not (tmp_path / "o" / "results").exists()
    (run,) = [p for p in (tmp_path / "o" / "checkpoints").rglob("status.json")]
    assert json.loads(run.read_text())["state"] == "failed"


def test_read_only_user_dataset_with_relative_paths_trains(capsys, tmp_path, world):
    """Paths relative to the config file, from another cwd; derived files go to <output-dir>/cache, never into the
    user's data dir (made read-only; as root the mode is not enforced, so the dir is compared file by file)."""
    cfg = make_user_dataset(tmp_path, world)
    before = snapshot(cfg)
    for p in [cfg / "files", *(cfg / "files").iterdir()]:
        p.chmod(0o555 if p.is_dir() else 0o444)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cwd = os.getcwd()
    try:
        os.chdir(elsewhere)
        rc, stdout, err = cli(capsys, ["--config", "../cfg", "--expid", "DIN_my", "--output-dir", "../o"])
    finally:
        os.chdir(cwd)
        (cfg / "files").chmod(0o755)
    assert rc == 0, err
    assert "valid AUC" in stdout and "test AUC" in stdout
    assert snapshot(cfg) == before and sorted(p.name for p in (cfg / "files").iterdir()) == sorted(SPLITS)
    assert list((tmp_path / "o" / "cache" / "my_data" / "feature_maps").glob("*/feature_map.json"))
    assert not any(elsewhere.iterdir()), "nothing is written relative to the cwd"


def test_synthetic_bit_flip_regenerated_and_leftover_temp_removed(capsys, caplog, tmp_path, lab):
    """Through ``mmctr-submit`` on a copy of the earlier run pointed at a private copy of the world: a flipped bit in
    train.parquet is found by its sha256 and the world regenerated (one warning line); a dead generator's temp dir
    is removed; the prediction is byte-identical to the one made from the intact world."""
    from model_zoo.apps.submission import main as submit
    private = tmp_path / "data"
    shared = Path(yaml.safe_load((lab["run_dir"] / "params.yaml").read_text())["data_root"]) / DATASET
    shutil.copytree(shared, private / DATASET)
    intact = data_files(private / DATASET)
    train = private / DATASET / "train.parquet"
    data = bytearray(train.read_bytes())
    data[len(data) // 2] ^= 0x10
    train.write_bytes(bytes(data))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    leftover = private / f"{DATASET}.tmp-{dead.pid}-abcd"
    (leftover / "half").mkdir(parents=True)
    (leftover / "half" / "train.parquet").write_bytes(b"PAR1 half")

    run_copy = tmp_path / "run"
    shutil.copytree(lab["run_dir"], run_copy)
    params = yaml.safe_load((run_copy / "params.yaml").read_text())
    params["data_root"] = str(private)
    params.update({k: str(private / DATASET / f) for k, f in SYNTHETIC_FILES.items()})
    (run_copy / "params.yaml").write_text(yaml.safe_dump(params))
    caplog.set_level("WARNING")
    rc, stdout, err = cli(capsys, ["--run-dir", str(run_copy), "--output-dir", str(lab["out"]),
                                   "--out", str(tmp_path / "sub")], module=submit)
    assert rc == 0, err
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    (flip,) = [w for w in warnings if "does not verify" in w]
    assert "train.parquet: sha256 differs from the manifest" in flip and "regenerating it" in flip
    assert "\n" not in flip
    assert data_files(private / DATASET) == intact, "regenerated byte for byte"
    assert not leftover.exists(), "a dead generator's temp dir is removed"
    again = tmp_path / "sub2"
    rc, _, err = cli(capsys, ["--run-dir", str(lab["run_dir"]), "--output-dir", str(lab["out"]), "--out",
                              str(again)], module=submit)
    assert rc == 0, err
    assert (again / "prediction.csv").read_bytes() == (tmp_path / "sub" / "prediction.csv").read_bytes()
    assert_earlier_run_intact(lab)


def test_synthetic_world_never_overwrites_a_users_directory(capsys, tmp_path):
    occupied = tmp_path / "data" / DATASET
    occupied.mkdir(parents=True)
    (occupied / "my_notes.txt").write_text("precious\n")
    rc, _, err = cli(capsys, ["--expid", EXPID, "--output-dir", str(tmp_path / "o"), "--set",
                              f"data_root={tmp_path / 'data'}"])
    line = error_line(err)
    assert rc == 2 and str(occupied) in line and "refusing to overwrite" in line
    assert [p.name for p in occupied.iterdir()] == ["my_notes.txt"]
    assert (occupied / "my_notes.txt").read_text() == "precious\n"
    assert not (tmp_path / "o" / "checkpoints").exists()


def test_damaged_cached_feature_map_rebuilt(caplog, tmp_path, work_dir):
    params = validated(EXPID, work_dir)
    cache = tmp_path / "cache"
    prepare.build_feature_map(params, cache)
    (json_file,) = cache.glob("feature_maps/*/feature_map.json")
    good = json_file.read_bytes()
    json_file.write_bytes(good[: len(good) // 2])  # truncated
    caplog.set_level("WARNING")
    feature_map = prepare.build_feature_map(params, cache)
    assert json_file.read_bytes() == good and "item_id" in feature_map.features
    assert any("differs from its recorded sha256; rebuilding it" in r.getMessage() for r in caplog.records)
    edited = good.replace(b'"vocab_size": 401', b'"vocab_size": 409')  # same size, a wrong value
    assert edited != good and len(edited) == len(good)
    json_file.write_bytes(edited)
    assert prepare.build_feature_map(params, cache).features["item_id"]["vocab_size"] == 401
    assert not [p for p in json_file.parent.parent.iterdir() if p.name.startswith(".tmp-") or ".tmp-" in p.name]


# =====================================================================================================================
# Results CSV: append-only; damaged lines named (file:line) and never lost; wrong targets refused before training
# =====================================================================================================================
def test_results_target_is_a_directory_or_unrelated_csv(capsys, tmp_path, world):
    rc, _, err = cli(capsys, ["--expid", EXPID, "--output-dir", str(tmp_path / "o"), "--results", str(tmp_path),
                              *shared_data_args(world.parent.parent)])
    assert rc == 2 and f"--results {tmp_path}: is a directory" in error_line(err)
    other = tmp_path / "sales.csv"
    other.write_text("region,revenue\nnorth,10\n")
    rc, _, err = cli(capsys, ["--expid", EXPID, "--output-dir", str(tmp_path / "o"), "--results", str(other),
                              *shared_data_args(world.parent.parent)])
    assert rc == 2 and "is not a zoo results header" in error_line(err) and "refusing to append" in err
    assert other.read_text() == "region,revenue\nnorth,10\n"
    assert not (tmp_path / "o").exists(), "refused before any data, record or training"


def test_results_line_cut_by_a_killed_writer(tmp_path):
    path = tmp_path / "results.csv"
    append_result(path, {"expid": "a"})
    with open(path, "ab") as fh:
        fh.write(b"20260101-000000,half_a_ro")  # a writer killed mid-line
    before = path.read_bytes()
    append_result(path, {"expid": "b"})
    assert path.read_bytes().startswith(before)
    table = read_results(path)
    assert [r["expid"] for r in table.rows] == ["a", "b"] and [n for n, _ in table.damaged] == [3]


def test_damaged_results_lines_survive_a_rerun(capsys, tmp_path, lab):
    """An unbalanced quote and a non-UTF-8 byte in old lines: the rerun warns once naming file:line, appends its
    row, and every earlier byte (the damaged lines included) stays; the earlier run's files are untouched."""
    results = tmp_path / "results.csv"  # a copy: the lab's own file stays clean for the other cases
    shutil.copy(lab["results"], results)
    with open(results, "ab") as fh:
        fh.write(b'20260101-000000,"hand edit,DIN\n')
        fh.write(b"20260101-000001,DIN_test,DIN,\xff\xfe\n")
    before = results.read_bytes()
    rows_before = read_results(results).rows
    rc, stdout, err = cli(capsys, [*lab["args"], "--results", str(results)])
    assert rc == 0, err
    (warning,) = [line for line in err.splitlines() if line.strip()]
    assert warning.startswith("warning: 2 damaged line(s) in the results file")
    assert f"{results}:{len(before.splitlines()) - 1} (cannot be parsed" in warning
    assert f"{results}:{len(before.splitlines())} (bytes that are not UTF-8)" in warning
    after = results.read_bytes()
    assert after.startswith(before), "append-only: earlier bytes never rewritten"
    table = read_results(results)
    assert table.rows[: len(rows_before)] == rows_before and len(table.rows) == len(rows_before) + 1
    new = table.rows[-1]
    assert new["run_dir"] != str(lab["run_dir"]) and Path(new["run_dir"]).is_dir()
    assert_earlier_run_intact(lab)


# =====================================================================================================================
# Run records: reruns, signals, concurrency, disk full
# =====================================================================================================================
def wait_for_training(run_parent: Path, known: set, procs: Sequence[subprocess.Popen],
                      timeout: float = 120) -> List[Path]:
    """The new run dirs of ``procs`` once each has logged its parameter count (training is under way)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in procs:
            assert p.poll() is None, p.communicate()[1][-3000:]
        new = [d for d in run_parent.iterdir() if d.is_dir() and d not in known] if run_parent.is_dir() else []
        logs = [(d / "train.log").read_text() if (d / "train.log").is_file() else "" for d in new]
        if len(new) == len(procs) and all("trainable parameters" in log for log in logs):
            time.sleep(0.5)  # into fit
            return sorted(new)
        time.sleep(0.2)
    raise AssertionError("runs did not start training in time")


@pytest.mark.slow
def test_rerun_killed_by_sigterm_or_ctrl_c(tmp_path, lab):
    """Two reruns of the earlier expid, killed mid-training: SIGTERM exits 143, Ctrl-C (SIGINT) 130; each marks its
    own record 'interrupted', adds no result row and leaves the earlier run and the results file as they were."""
    csv_before = lab["results"].read_bytes()
    known = set(runs_of(lab))
    args = [*lab["args"], "--set", "epochs=200", "--set", "early_stop_patience=200"]
    procs = {"SIGTERM": start_cli(args, tmp_path), "SIGINT": start_cli(args, tmp_path)}
    try:
        new = wait_for_training(lab["run_dir"].parent, known, list(procs.values()))
        for name, proc in procs.items():
            proc.send_signal(getattr(signal, name))
        outcome = {name: (proc.wait(timeout=120), proc.communicate()[1]) for name, proc in procs.items()}
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
    assert outcome["SIGTERM"][0] == 143, outcome["SIGTERM"][1][-3000:]
    assert outcome["SIGINT"][0] == 130, outcome["SIGINT"][1][-3000:]
    assert outcome["SIGTERM"][1].strip() == (f"terminated: {EXPID} stopped by SIGTERM; earlier runs and results are "
                                             f"untouched")
    assert outcome["SIGINT"][1].strip() == (f"interrupted: {EXPID} stopped by Ctrl-C; earlier runs and results are "
                                            f"untouched")
    statuses = sorted((RunRecord(d).status()["state"], RunRecord(d).status()["signal"]) for d in new)
    assert statuses == [("interrupted", "SIGINT"), ("interrupted", "SIGTERM")]
    for d in new:
        assert not [p for p in d.iterdir() if ".tmp-" in p.name], "no half-written file left"
    assert lab["results"].read_bytes() == csv_before, "no row for an interrupted run"
    assert_earlier_run_intact(lab)


@pytest.mark.slow
def test_concurrent_runs_of_one_expid(tmp_path, lab):
    """Two runs of one expid at once, on a fresh data_root (both need the same world: it is generated once, under a
    lock on data_root): separate run dirs, clean logs (one process each, no NUL), two well-formed result rows."""
    data_root = tmp_path / "data"
    results = tmp_path / "results.csv"
    args = ["--expid", EXPID, "--output-dir", str(lab["out"]), "--results", str(results),
            "--set", f"data_root={data_root}"]
    procs = [start_cli(args, tmp_path) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-3000:] for o in outs]
    table = read_results(results, required=True)
    assert len(table.rows) == 2 and not table.damaged
    run_dirs = [Path(r["run_dir"]) for r in table.rows]
    assert run_dirs[0] != run_dirs[1]
    raw = results.read_bytes()
    assert b"\x00" not in raw and raw.count(b"\n") == 3
    for run_dir in run_dirs:
        log = (run_dir / "train.log").read_bytes()
        assert b"\x00" not in log
        pids = {line.split()[2] for line in log.decode().splitlines() if line[:2] == "20"}
        assert pids == {f"P{json.loads((run_dir / 'env.json').read_text())['pid']}"}, "one process per log"
        assert RunRecord(run_dir).status()["state"] == "finished"
    assert [p.name for p in data_root.iterdir()] == [DATASET], "one world, no temp dir left"
    assert_earlier_run_intact(lab)


def test_diverging_loss_stops_the_run_with_exit_1(capsys, lab):
    """A learning rate that blows the weights up: the run stops at the first non-finite prediction or loss (FuxiCTR
    would train on, or fail in BCE with an opaque error), its status says why, no result row, earlier run intact."""
    rows_before = len(read_results(lab["results"]).rows)
    runs_before = set(lab["run_dir"].parent.iterdir())
    assert runner.main([*lab["args"], "--set", "learning_rate=1e30"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: [{EXPID}] training diverged: ")
    assert "lower learning_rate" in err[0]
    (new_run,) = set(lab["run_dir"].parent.iterdir()) - runs_before
    status = RunRecord(new_run).status()
    assert status["state"] == "failed" and status["error"].startswith("TrainingDiverged: training diverged")
    assert len(read_results(lab["results"]).rows) == rows_before
    assert_earlier_run_intact(lab)


@pytest.mark.slow
def test_disk_full_while_saving_checkpoint(tmp_path, lab):
    """A rerun whose checkpoint write fails in the kernel (RLIMIT_FSIZE below the checkpoint's size: the write gets
    EFBIG like a full disk's ENOSPC, through torch's writer): exit 1 with one line naming the checkpoint, the run
    marked failed, no model.pt and no temp file in its dir, no result row, the earlier run and its checkpoint
    untouched."""
    limit = 32 * 1024
    assert (lab["run_dir"] / "model.pt").stat().st_size > limit
    csv_before = lab["results"].read_bytes()
    known = set(runs_of(lab))

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = start_cli(lab["args"], tmp_path, preexec_fn=limit_file_size)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err[-3000:]
    line = error_line(err)
    assert "cannot write the checkpoint: File too large" in line and line.endswith("/model.pt)")
    (new,) = set(runs_of(lab)) - known
    status = RunRecord(new).status()
    assert status["state"] == "failed" and "cannot write the checkpoint" in status["error"]
    assert sorted(p.name for p in new.iterdir()) == ["env.json", "params.yaml", "status.json", "train.log"]
    assert lab["results"].read_bytes() == csv_before
    assert_earlier_run_intact(lab)


def test_checkpoint_write_failure_keeps_the_previous_checkpoint(tmp_path, monkeypatch, experiment):
    """ENOSPC half-way through ``save_weights`` over an existing checkpoint: the old bytes stay, no temp file."""
    import model_zoo.layers.mmctr_base as base
    model = experiment(EXPID).model
    checkpoint = tmp_path / "model.pt"
    model.save_weights(str(checkpoint))
    before = checkpoint.read_bytes()

    def full_disk(obj, fh, *args, **kwargs):
        fh.write(b"PK\x03\x04 half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(base.torch, "save", full_disk)
    with pytest.raises(OSError) as exc_info:
        model.save_weights(str(checkpoint))
    assert exc_info.value.errno == errno.ENOSPC and exc_info.value.filename == str(checkpoint)
    assert "cannot write the checkpoint: No space left on device" in str(exc_info.value)
    assert checkpoint.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


def test_run_ids_never_collide(tmp_path):
    records = [RunRecord.create(tmp_path, DATASET, EXPID) for _ in range(30)]  # same second, same pid
    assert len({r.dir for r in records}) == 30 and all(r.dir.is_dir() for r in records)


# =====================================================================================================================
# Outputs: a submission only from a finished run whose files are what the run wrote
# =====================================================================================================================
@pytest.fixture()
def run_copy(tmp_path, lab) -> Path:
    """A copy of the earlier run's dir (the original is never touched)."""
    copy = tmp_path / "run"
    shutil.copytree(lab["run_dir"], copy)
    return copy


def submit(capsys, lab, run_dir: Path, tmp_path: Path):
    return cli(capsys, ["--run-dir", str(run_dir), "--output-dir", str(lab["out"]), "--out", str(tmp_path / "sub")],
               module=submission.main)


def test_submission_from_truncated_checkpoint(capsys, tmp_path, lab, run_copy):
    checkpoint = run_copy / "model.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    rc, _, err = submit(capsys, lab, run_copy, tmp_path)
    line = error_line(err)
    assert rc == 2 and str(checkpoint) in line and "sha256 differs from the one recorded" in line
    assert not (tmp_path / "sub").exists()
    assert_earlier_run_intact(lab)


def test_submission_from_bit_flipped_checkpoint(capsys, tmp_path, lab, run_copy):
    checkpoint = run_copy / "model.pt"
    data = bytearray(checkpoint.read_bytes())
    data[-2000] ^= 0x01  # inside a weight tensor: torch would load it silently
    checkpoint.write_bytes(bytes(data))
    rc, _, err = submit(capsys, lab, run_copy, tmp_path)
    assert rc == 2 and "sha256 differs" in error_line(err)
    assert not (tmp_path / "sub").exists()


def test_submission_from_damaged_checkpoint_without_recorded_hash(capsys, tmp_path, lab, run_copy):
    """A run recorded before checkpoint hashes (or a status edited with the file): torch's error becomes one line."""
    status = json.loads((run_copy / "status.json").read_text())
    status.pop("checkpoint_sha256")
    (run_copy / "status.json").write_text(json.dumps(status))
    checkpoint = run_copy / "model.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    rc, _, err = submit(capsys, lab, run_copy, tmp_path)
    line = error_line(err)
    assert rc == 2 and str(checkpoint) in line and "not a loadable checkpoint" in line


def test_submission_checkpoint_with_pickled_code(capsys, tmp_path, lab, run_copy):
    """A checkpoint replaced by one carrying a pickled call (and status.json edited to match): weights_only loading
    refuses it; the call never runs."""
    marker, probe = tmp_path / "PWNED", tmp_path / "PROBE"

    class Payload:
        def __init__(self, target: Path) -> None:
            self.target = target

        def __reduce__(self):
            return os.mkdir, (str(self.target),)

    checkpoint = run_copy / "model.pt"
    torch.save({"weight": Payload(marker)}, checkpoint)
    status = json.loads((run_copy / "status.json").read_text())
    status["checkpoint_sha256"] = sha256_file(checkpoint)
    (run_copy / "status.json").write_text(json.dumps(status))
    rc, _, err = submit(capsys, lab, run_copy, tmp_path)
    assert rc == 2 and "not a loadable checkpoint" in error_line(err)
    assert not marker.exists()
    torch.save({"weight": Payload(probe)}, tmp_path / "probe.pt")
    torch.load(tmp_path / "probe.pt", weights_only=False)  # live under an unsafe load
    assert probe.exists()


def test_submission_from_edited_params_yaml(capsys, tmp_path, lab, run_copy):
    """params.yaml is input too: a dtype payload written into it is refused like one in a config."""
    marker, probe = tmp_path / "PWNED", tmp_path / "probe" / "PWNED"
    probe.parent.mkdir()
    params = yaml.safe_load((run_copy / "params.yaml").read_text())
    params["feature_cols"] = [dict(c, dtype=DTYPE(marker)) if c["name"] == "likes_level" else c
                              for c in params["feature_cols"]]
    (run_copy / "params.yaml").write_text(yaml.safe_dump(params))
    rc, _, err = submit(capsys, lab, run_copy, tmp_path)
    assert rc == 2 and str(run_copy / "params.yaml") in err and "expected one of ('int', 'float', 'str')" in err
    reached_no_eval(marker, probe, prove_dtype(DTYPE))


@pytest.mark.parametrize("damage, message", [
    (lambda d: RunRecord(d).set_status("running"), "is 'running', not finished"),
    (lambda d: RunRecord(d).set_status("interrupted", signal="SIGTERM"), "is 'interrupted', not finished"),
    (lambda d: (d / "status.json").write_text("{trunc"), "is 'unknown', not finished"),
    (lambda d: (d / "params.yaml").unlink(), "no params.yaml (not a run directory?)"),
    (lambda d: (d / "params.yaml").write_text("model: [unclosed\n"), "params.yaml: not valid YAML"),
    (lambda d: (d / "model.pt").unlink(), "checkpoint model.pt not found"),
    (lambda d: shutil.rmtree(d), "not a directory"),
], ids=["running", "interrupted", "status_garbled", "params_missing", "params_garbled", "checkpoint_missing",
        "no_such_dir"])
def test_submission_refuses_unfinished_or_incomplete_runs(capsys, tmp_path, lab, run_copy, damage, message):
    damage(run_copy)
    rc, _, err = submit(capsys, lab, run_copy, tmp_path)
    assert rc == 2 and message in error_line(err)
    assert not (tmp_path / "sub").exists()


def test_submission_dir_that_is_a_file(capsys, tmp_path, world):
    target = tmp_path / "submission"
    target.write_text("mine\n")
    rc, _, err = cli(capsys, ["--expid", EXPID, "--output-dir", str(tmp_path / "o"), "--submission", str(target),
                              *shared_data_args(world.parent.parent)])
    assert rc == 2 and "exists and is not a directory" in error_line(err)
    assert target.read_text() == "mine\n" and not (tmp_path / "o").exists()


def test_rerun_never_replaces_earlier_runs(lab):
    """Checked after every other case of the module has rerun the expid (module order: this test runs last)."""
    assert_earlier_run_intact(lab)
    finished = [d for d in runs_of(lab) if RunRecord(d).status()["state"] == "finished"]
    assert lab["run_dir"] in finished
    rows = read_results(lab["results"]).rows
    assert [r["run_dir"] for r in rows].count(str(lab["run_dir"])) == 1
