"""Which device a run really uses: ``--gpu N`` is honoured or refused, never silently replaced by the CPU.

FuxiCTR's ``get_device`` falls back to the CPU when CUDA is missing; the zoo checks first, so a run asked to use a GPU
either gets it or stops with exit code 2 naming what was asked and what exists.
"""
from __future__ import annotations

from typing import Tuple

import torch

from model_zoo.errors import ConfigError

__all__ = ["resolve_device", "describe_devices"]


def describe_devices() -> str:
    """The CUDA devices this process sees, e.g. "cuda:0 (NVIDIA H200)", or why there are none."""
    if not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        return f"no CUDA device is available (torch {torch.__version__}, {build})"
    names = [f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())]
    return f"{len(names)} CUDA device(s): {', '.join(names)}"


def resolve_device(gpu: int, amp: str = "off") -> Tuple[torch.device, str]:
    """The device for ``--gpu gpu`` (-1 = CPU) and a description for logs and results ("cpu", "cuda:0 (name)").

    Raises ConfigError when the GPU does not exist, or when ``amp`` needs a device the run does not have
    (fp16 autocast needs CUDA; bf16 runs on both).
    """
    if not isinstance(gpu, int) or isinstance(gpu, bool) or gpu < -1:
        raise ConfigError(f"--gpu {gpu!r}: expected -1 (CPU) or a CUDA device index >= 0")
    if gpu == -1:
        if amp == "fp16":
            raise ConfigError("amp: fp16 needs a CUDA device (--gpu N); on the CPU use amp: bf16 or amp: off")
        return torch.device("cpu"), "cpu"
    if not torch.cuda.is_available() or gpu >= torch.cuda.device_count():
        raise ConfigError(f"--gpu {gpu} asks for CUDA device {gpu}, but {describe_devices()}; use --gpu -1 to run "
                          f"on the CPU" + ("" if torch.version.cuda else " or install the CUDA build of torch "
                                                                           "(make setup TORCH=cuda)"))
    return torch.device(f"cuda:{gpu}"), f"cuda:{gpu} ({torch.cuda.get_device_name(gpu)})"
