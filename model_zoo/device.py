"""Which device a run really uses: ``--gpu N`` is honoured or refused, never silently replaced by the CPU.

FuxiCTR's ``get_device`` falls back to the CPU when CUDA is missing; the zoo checks first, so a run asked to use a GPU
either gets it or stops with exit code 2 naming what was asked and what exists.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
from typing import Iterator, Optional, Tuple

import torch

from model_zoo.errors import ConfigError

__all__ = ["resolve_device", "describe_devices", "blas_threads_in_this_thread", "deterministic_cpu"]


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


def _mkl_set_num_threads_local() -> Optional[ctypes._CFuncPtr]:
    """``mkl_set_num_threads_local`` of the MKL that torch bundles (Linux/Windows x86 wheels), or None (no MKL)."""
    if not torch.backends.mkl.is_available():
        return None
    for name in ("libtorch_cpu.so", "torch_cpu.dll"):
        path = os.path.join(os.path.dirname(torch.__file__), "lib", name)
        if not os.path.exists(path):
            continue
        try:
            library = ctypes.CDLL(path, mode=getattr(os, "RTLD_NOLOAD", 0))
            function = library.mkl_set_num_threads_local  # exported by its Fortran name: takes int *
        except (OSError, AttributeError):
            return None
        function.argtypes, function.restype = [ctypes.POINTER(ctypes.c_int)], ctypes.c_int
        return function
    return None


def blas_threads_in_this_thread(threads: int) -> Optional[int]:
    """Set MKL's thread count for GEMMs called from this thread (0 = back to the global setting); returns the
    previous thread-local value, or None when torch has no MKL to set (then nothing changes)."""
    function = _mkl_set_num_threads_local()
    return None if function is None else int(function(ctypes.byref(ctypes.c_int(threads))))


@contextlib.contextmanager
def deterministic_cpu(enabled: bool = True) -> Iterator[bool]:
    """Bit-identical CPU training for a given seed and ``torch.get_num_threads()``, also on a loaded machine.

    Cause (measured, see benchmarks/README.md "Determinism"): MKL's multi-threaded SGEMM rounds some weight-gradient
    products differently from call to call when other processes compete for the cores (``MKL_CBWR=AUTO,STRICT`` and
    ``MKL_DYNAMIC=FALSE`` do not prevent it); the gradients of the item embeddings and of the attention scorer's first
    layer, whose GEMMs reduce over the batch's n valid history items, drifted first. Torch's own parallel kernels are
    deterministic for a fixed thread count. Inside this context the calling thread's MKL calls run single-threaded
    (``mkl_set_num_threads_local(1)``; CPU autograd runs in the calling thread); torch's intra-op parallelism is kept.
    Yields whether the setting took effect (False without MKL, e.g. on ARM builds, where nothing changes).
    """
    previous = blas_threads_in_this_thread(1) if enabled else None
    try:
        yield previous is not None
    finally:
        if previous is not None:
            blas_threads_in_this_thread(previous)
