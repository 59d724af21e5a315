"""Data-path benchmark: our tensor join vs the challenge baseline's per-batch pandas join, side by side in one run.

The baseline data path is re-implemented from the behaviour of
``reczoo/WWW2025_MMCTR_Challenge:src/mmctr_dataloader.py`` (read at 4e0b2b4): the split is read with polars and
column-stacked into one numpy matrix (list columns exploded to one column per position) and served row by row through
a torch ``DataLoader``; a collate function stacks the rows, cuts ``item_seq[:, -max_len:]``, builds the mask, looks
up every history and target item with ``item_info.iloc[ids]`` in pandas and turns each joined column into a tensor
with ``np.stack`` over its per-row arrays. That re-implementation is the point of this benchmark (the reference path),
not a second copy of the zoo's data path.

Three data paths, same rows, same DIN:
* ``ours``: the zoo's loader (tensor ``index_select`` join);
* ``baseline``: the challenge's path as above;
* ``baseline_tolist``: the same with ``np.array(column.to_list())`` in place of ``np.stack`` (about 3x faster on
  list columns), a stricter reference than the challenge's own code.

The data and the model come from ``experiment_from_expid`` (``--expid`` run on ``MicroLens_<--world>_<--dataset>``,
generated on first use into ``--output-dir``); ours is the experiment's own train loader, and every path trains a copy
of the same freshly built model. Measured: loader only (batches/s over the first ``--batches`` batches of an epoch) and
end to end (training samples/s, forward + backward + Adam step, over the same batches); ``setup_s`` of ours is the
split read (the item table is read by the experiment build, ``experiment_build_s``).

    python benchmarks/bench_loader.py [--dataset small] [--world synth] [--batch-size 1024] [--batches 40]
                                      [--max-len 64] [--baseline-workers 3] [--output-dir DIR]

Prints a table and a final JSON line with the ratios.
"""
from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Union

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP (see bench_dmf_serving.py)

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import polars as pl  # noqa: E402
import torch  # noqa: E402
from benchlib import (BenchParser, non_negative_int, overrides, positive_int, print_result, ready_for_steps,
                      runner_process_settings, usage_error, work_dir)
from torch.utils.data import DataLoader, Dataset, default_collate  # noqa: E402

from model_zoo.datasets import prepare  # noqa: E402
from model_zoo.datasets.loader import MMCTRBatch  # noqa: E402
from model_zoo.errors import ZooError  # noqa: E402
from model_zoo.experiment import experiment_from_expid  # noqa: E402

PATHS = ("ours", "baseline", "baseline_tolist")
WORLDS = ("synth", "seqneg")


class _ColumnStackedSplit(Dataset):
    """The whole split as one matrix; list columns expand to one column per position (baseline layout)."""

    def __init__(self, path: Path) -> None:
        frame = pl.read_parquet(path)
        blocks, offset = [], 0
        column_index: Dict[str, Union[int, List[int]]] = {}
        for col in frame.columns:
            if isinstance(frame[col].dtype, (pl.List, pl.Array)):
                block = frame[col].explode().to_numpy().reshape(frame.height, -1)
                column_index[col] = list(range(offset, offset + block.shape[1]))
            else:
                block = frame[col].to_numpy().reshape(-1, 1)
                column_index[col] = offset
            offset += block.shape[1]
            blocks.append(block)
        self.column_index = column_index
        self.matrix = np.column_stack(blocks)

    def __len__(self) -> int:
        return len(self.matrix)

    def __getitem__(self, index: int) -> np.ndarray:
        return self.matrix[index]


class _PandasJoinCollate:
    """Stack rows, then join item_info rows per batch with ``DataFrame.iloc`` (the baseline's collate).

    ``to_tensor`` is how a joined object column (one numpy array per row) becomes one array: ``"stack"`` as the
    challenge does (``np.stack``), ``"tolist"`` through ``np.array(column.to_list())``.
    """

    def __init__(self, column_index, item_info: Path, item_columns: List[str], max_len: int,
                 to_tensor: str = "stack") -> None:
        self.column_index = column_index
        self.item_info = pd.read_parquet(item_info)[item_columns]
        self.max_len = max_len
        self.to_array = {"stack": lambda col: np.stack(col.to_numpy()),
                         "tolist": lambda col: np.array(col.to_list())}[to_tensor]

    def __call__(self, rows: List[np.ndarray]) -> MMCTRBatch:
        stacked = default_collate(rows)
        batch_dict = {col: stacked[:, idx] for col, idx in self.column_index.items()}
        seq = batch_dict.pop("item_seq")[:, -self.max_len:]
        mask = (seq > 0).float()
        target = batch_dict.pop("item_id").numpy().reshape(-1, 1)
        ids = np.hstack([seq.numpy(), target]).reshape(-1)
        joined = self.item_info.iloc[ids]
        item_dict = {col: torch.from_numpy(self.to_array(joined[col])) for col in joined.columns}
        return MMCTRBatch(batch_dict, item_dict, mask)


def baseline_loader(files, params, batch_size: int, to_tensor: str = "stack", num_workers: int = 0) -> DataLoader:
    dataset = _ColumnStackedSplit(files.train)
    item_cols = [spec.name for spec in prepare.item_columns(params)]
    collate = _PandasJoinCollate(dataset.column_index, files.item_info, item_cols, params["max_len"], to_tensor)
    gen = torch.Generator().manual_seed(0)
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=num_workers, collate_fn=collate,
                      generator=gen)


def take(loader: Iterable, n: int) -> Iterator:
    for i, batch in enumerate(loader):
        if i >= n:
            return
        yield batch


def time_loader(make: Callable[[], Iterable], n: int) -> float:
    started = time.perf_counter()
    count = sum(1 for _ in take(make(), n))
    return count / (time.perf_counter() - started)


def time_training(model, make: Callable[[], Iterable], n: int) -> float:
    model.train()
    model._steps_per_epoch = n
    started = time.perf_counter()
    rows = 0
    for i, batch in enumerate(take(make(), n)):
        model._batch_index = i
        model.train_step(batch)
        rows += len(batch.mask)
    return rows / (time.perf_counter() - started)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = BenchParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="small", choices=("tiny", "small", "full"), help="world size")
    parser.add_argument("--world", default="synth", choices=WORLDS, help="synthetic world: MicroLens_<world>_<size>")
    parser.add_argument("--expid", default="DIN_MicroLens_synth", help="the model every path feeds (run on --dataset)")
    parser.add_argument("--batch-size", type=positive_int, default=1024)
    parser.add_argument("--batches", type=positive_int, default=40)
    parser.add_argument("--repeats", type=positive_int, default=3)
    parser.add_argument("--max-len", type=positive_int, default=None,
                        help="history length kept (default: the expid's; the challenge baseline used 64)")
    parser.add_argument("--baseline-workers", type=non_negative_int, default=0,
                        help="DataLoader worker processes of the baseline paths (the challenge's Base used 3); "
                             "ours always runs in the training process")
    parser.add_argument("--threads", type=positive_int, default=2, help="torch threads (default 2)")
    parser.add_overrides()
    parser.add_output_dir("the synthetic world and feature map")
    args = parser.parse_args(argv)
    runner_process_settings(args.threads)  # as the runner does; process-wide, so every path gets it
    dataset_id = f"MicroLens_{args.world}_{args.dataset}"
    try:
        with work_dir(args.output_dir, "bench_loader_") as work:
            return _run(args, dataset_id, work)
    except ZooError as exc:
        return usage_error(exc)


def _run(args: argparse.Namespace, dataset_id: str, work: Path) -> int:
    started = time.perf_counter()
    exp = experiment_from_expid(args.expid, work_dir=work, progress=True, overrides=overrides(
        args.overrides, dataset_id=dataset_id, verbose=0, batch_size=args.batch_size, max_len=args.max_len))
    build_s = time.perf_counter() - started
    params, files = exp.params, exp.files
    pristine = copy.deepcopy(exp.model)  # every path trains its own copy of the same initial model and optimizer

    loaders, setup_s = {}, {}
    t0 = time.perf_counter()
    loaders["ours"] = exp.loader("train")  # the split read; the item table was read by the experiment build
    setup_s["ours"] = time.perf_counter() - t0
    for name, to_tensor in (("baseline", "stack"), ("baseline_tolist", "tolist")):
        t0 = time.perf_counter()
        loaders[name] = baseline_loader(files, params, args.batch_size, to_tensor, args.baseline_workers)
        setup_s[name] = time.perf_counter() - t0

    # Same batch contents from every path (sanity check before timing).
    probe = torch.arange(5)
    mine = loaders["ours"].batch(probe)
    for name in PATHS[1:]:
        ref = loaders[name].collate_fn([loaders[name].dataset[i] for i in probe.tolist()])
        same = [torch.equal(ref.item_dict[col].to(mine.item_dict[col].dtype), mine.item_dict[col])
                for col in mine.item_dict] + [torch.equal(ref.mask, mine.mask)]
        if not all(same):
            print(f"error: the {name} path gives other batches than ours for the same rows", file=sys.stderr)
            return 1

    results: Dict[str, Dict[str, float]] = {name: {"setup_s": setup_s[name]} for name in PATHS}
    for name in PATHS:
        results[name]["loader_batches_per_s"] = statistics.median(
            time_loader(lambda: loaders[name], args.batches) for _ in range(args.repeats))
    for name in PATHS:
        model = ready_for_steps(copy.deepcopy(pristine), params["max_gradient_norm"])
        results[name]["train_samples_per_s"] = statistics.median(
            time_training(model, lambda: loaders[name], args.batches) for _ in range(args.repeats))

    print(f"{'data path':<16} {'loader batches/s':>17} {'train samples/s':>16} {'setup s':>8}")
    for name in PATHS:
        r = results[name]
        print(f"{name:<16} {r['loader_batches_per_s']:>17.1f} {r['train_samples_per_s']:>16.0f} {r['setup_s']:>8.2f}")

    def ratio(metric: str, reference: str) -> float:
        return results["ours"][metric] / results[reference][metric]

    summary = {
        "benchmark": "loader", "dataset": dataset_id, "expid": args.expid, "batch_size": args.batch_size,
        "experiment_build_s": round(build_s, 2), "max_len": params["max_len"], "batches": args.batches,
        "repeats": args.repeats, "baseline_workers": args.baseline_workers, "threads": args.threads,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "loader_speedup": ratio("loader_batches_per_s", "baseline"),
        "train_speedup": ratio("train_samples_per_s", "baseline"),
        "loader_speedup_vs_tolist": ratio("loader_batches_per_s", "baseline_tolist"),
        "train_speedup_vs_tolist": ratio("train_samples_per_s", "baseline_tolist"),
        **results,
    }
    print_result(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
