"""Data-parallel training (model_zoo.distributed, ``mmctr-run --nproc N``): sharding, gradient averaging, 2 ranks.

The pieces are tested against their single-process meaning: the ranks' shards of a batch are that batch of the
unsharded loader with the global batch size, and the averaged gradient of the shards equals the gradient of the
global batch. The end-to-end test trains the tiny world on 2 CPU processes (gloo) and compares with one process.
"""
from __future__ import annotations

import csv
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from torch import distributed as dist

from model_zoo.distributed import DataParallel

from conftest import run_cli, shared_data_args


def test_shards_of_a_batch_are_the_global_batch(experiment):
    exp = experiment("DIN_test", batch_size=64, shuffle=True)
    loader = exp.loader("train")
    full = [b.mask for b in loader]  # epoch 0, global batch 64
    shards = []
    for rank in range(2):
        loader.epoch, loader.batch_size = 0, 32
        loader.shard(rank, 2)
        shards.append([b.item_dict["item_id"] for b in loader])
    loader.shard(0, 1)
    loader.epoch, loader.batch_size = 0, 64
    full_ids = [b.item_dict["item_id"] for b in loader]
    assert len(shards[0]) == len(shards[1]) == len(full_ids) == len(full), "every rank runs as many steps"
    rows = lambda ids: {tuple(r) for r in ids.view(-1, exp.params["max_len"] + 1).tolist()}  # noqa: E731
    for step in range(len(full_ids) - 1):  # the last batch may lose num_rows % 2 rows
        assert rows(shards[0][step]) | rows(shards[1][step]) == rows(full_ids[step]), step
        assert not rows(shards[0][step]) & rows(shards[1][step]), "no row on two ranks"


def test_shard_refuses_a_bad_rank(experiment):
    loader = experiment("DIN_test").loader("train")
    with pytest.raises(ValueError, match="rank=2; expected 0 <= rank < num_shards=2"):
        loader.shard(2, 2)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _average_worker(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.manual_seed(0)
    layer, unused = torch.nn.Linear(5, 3), torch.nn.Linear(2, 2)
    x, y = torch.randn(8, 5), torch.randn(8, 3)
    own = slice(rank * 4, rank * 4 + 4)
    torch.nn.functional.mse_loss(layer(x[own]), y[own]).backward()
    params = list(layer.parameters()) + list(unused.parameters())
    DataParallel(rank, 2).average_gradients(params)
    if rank == 0:
        reference = torch.nn.Linear(5, 3)
        reference.load_state_dict(layer.state_dict())
        torch.nn.functional.mse_loss(reference(x), y).backward()
        torch.save({"averaged": [p.grad for p in layer.parameters()], "unused": [p.grad for p in unused.parameters()],
                    "global": [p.grad for p in reference.parameters()]}, out)
    dist.destroy_process_group()


@pytest.mark.slow
def test_averaged_shard_gradients_equal_the_global_batch_gradient(tmp_path: Path) -> None:
    out = tmp_path / "grads.pt"
    mp.start_processes(_average_worker, args=(_free_port(), str(out)), nprocs=2, start_method="spawn")
    grads = torch.load(out)
    for averaged, reference in zip(grads["averaged"], grads["global"]):
        assert torch.allclose(averaged, reference, atol=1e-6)
    assert grads["unused"] == [None, None], "a parameter without a gradient on every rank keeps None"


def _rows(results: Path):
    with open(results, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.slow
def test_two_cpu_processes_train_one_record_close_to_one_process(work_dir: Path, tmp_path: Path) -> None:
    args = ["--expid", "DIN_test", "--set", "verbose=0", "--set", "epochs=1", *shared_data_args(work_dir),
            "--output-dir", str(tmp_path)]
    two = run_cli([*args, "--nproc", "2"], tmp_path)
    assert two.returncode == 0, two.stderr[-3000:]
    one = run_cli(args, tmp_path)
    assert one.returncode == 0, one.stderr[-3000:]
    ddp, single = _rows(tmp_path / "results" / "results.csv")
    assert (ddp["nproc"], single["nproc"]) == ("2", "1")
    assert abs(float(ddp["valid_AUC"]) - float(single["valid_AUC"])) <= 0.005, (ddp["valid_AUC"], single["valid_AUC"])
    runs = list((tmp_path / "checkpoints" / "MicroLens_synth_tiny" / "DIN_test").iterdir())
    assert len(runs) == 2, "one run record per run, none from rank 1"
    log = (Path(ddp["run_dir"]) / "train.log").read_text()
    assert "batches/epoch" in log and "rank" not in two.stderr.lower()


def test_bad_nproc_and_indivisible_batch_exit_2_before_any_process(work_dir: Path, tmp_path: Path) -> None:
    base = ["--expid", "DIN_test", *shared_data_args(work_dir), "--output-dir", str(tmp_path)]
    zero = run_cli([*base, "--nproc", "0"], tmp_path)
    assert zero.returncode == 2 and "--nproc 0" in zero.stderr
    odd = run_cli([*base, "--nproc", "2", "--set", "batch_size=255"], tmp_path)
    assert odd.returncode == 2 and "batch_size=255" in odd.stderr and "divisible" in odd.stderr
    assert not (tmp_path / "checkpoints").exists(), "nothing written"


@pytest.mark.parametrize("argv, message", [
    (["--workers", "0", "--", "--expid", "DIN_test"], "--workers 0"),
    (["--workers", "2"], "give the runner's arguments after --"),
    (["--workers", "2", "--", "--expid", "DIN_test", "--nproc", "2"], "without --nproc"),
    (["--workers", "2", "--", "--expid", "DIN_test", "--set", "batch_size=255"], "divisible"),
    (["--workers", "2", "--", "--expid", "DIN_tset"], "DIN_test"),
])
def test_ray_train_launcher_refuses_bad_input_before_ray_starts(argv, message, capsys, tmp_path):
    from model_zoo.apps.ray_train import main
    assert main([*argv, *(["--output-dir", str(tmp_path)] if "--" in argv else [])]) == 2
    assert message in capsys.readouterr().err
