"""Data-parallel training of one experiment over several processes (``torch.distributed``: gloo on CPU, nccl on GPU).

The model stays a plain ``MMCTRModel`` (FuxiCTR's ``fit`` drives it): each rank trains on its shard of every epoch's
shuffled order (``MMCTRDataLoader.shard``), and before each optimiser step the gradients of all ranks are averaged in
one all-reduce, which is what ``DistributedDataParallel`` computes (the ranks' batches together are the global batch;
equal shard sizes make the average the global-batch mean). Only rank 0 evaluates, checkpoints and writes; its
validation metrics are broadcast so every rank takes the same early-stopping and learning-rate decisions.

Deviations from DDP: BatchNorm running statistics stay per rank (only rank 0's are used, for evaluation), and the
all-reduce is one flat tensor per step instead of overlapping buckets (the models are small; the step dominates).

Launch: ``mmctr-run --expid X --nproc N`` (``model_zoo.apps.runner``), ``torchrun --nproc-per-node N run_expid.py
--expid X``, or any launcher that initialises the default process group first (Ray Train's ``TorchTrainer``).
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any, Iterable, Optional

import torch
from torch import distributed as dist

__all__ = ["DataParallel", "data_parallel_from_env", "backend_for"]

ENV_KEYS = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def backend_for(device: torch.device) -> str:
    """The collective backend of ``device``: nccl for CUDA, gloo otherwise."""
    return "nccl" if device.type == "cuda" else "gloo"


@dataclass(frozen=True)
class DataParallel:
    """This process's place in a data-parallel run of ``world_size`` ranks (the default process group)."""

    rank: int
    world_size: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def average_gradients(self, parameters: Iterable[torch.nn.Parameter]) -> None:
        """Average ``.grad`` over the ranks in one all-reduce. A parameter without a gradient on every rank keeps
        ``None`` (the optimiser skips it, as in a single process); one with a gradient on some rank gets the
        average, missing ones counting as 0."""
        params = [p for p in parameters if p.requires_grad]
        if not params:
            return
        reference = next((p.grad for p in params if p.grad is not None), params[0])
        has_grad = torch.tensor([p.grad is not None for p in params], dtype=reference.dtype, device=reference.device)
        flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).to(reference.dtype)
                          for p in params] + [has_grad])
        dist.all_reduce(flat)
        flags = flat[-len(params):]
        offset = 0
        for param, flag in zip(params, flags.tolist()):
            size = param.numel()
            if flag > 0:
                param.grad = (flat[offset:offset + size] / self.world_size).view_as(param).to(param.dtype)
            offset += size

    def all_true(self, value: bool, device: torch.device) -> bool:
        """True when ``value`` is true on every rank (one tiny all-reduce)."""
        flag = torch.tensor([1.0 if value else 0.0], device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        return bool(flag.item() > 0)

    def barrier(self) -> None:
        """Wait until every rank reaches this point."""
        dist.barrier()

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (picklable objects; here metric dicts)."""
        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]


def data_parallel_from_env(device: torch.device, timeout_s: int = 1800) -> Optional[DataParallel]:
    """The run's ``DataParallel`` when this process is one of several ranks, else None.

    Uses the default process group when a launcher already made one (Ray Train); otherwise initialises it from the
    torchrun-style environment (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``) when ``WORLD_SIZE`` > 1.
    """
    if dist.is_available() and dist.is_initialized():
        world = dist.get_world_size()
        return DataParallel(dist.get_rank(), world) if world > 1 else None
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return None
    missing = [k for k in ENV_KEYS if not os.environ.get(k)]
    if missing:
        raise RuntimeError(f"WORLD_SIZE={world} but {', '.join(missing)} not set; launch with torchrun or "
                           f"mmctr-run --nproc N")
    dist.init_process_group(backend_for(device), timeout=datetime.timedelta(seconds=timeout_s))
    return DataParallel(dist.get_rank(), dist.get_world_size())
