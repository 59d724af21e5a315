"""benchmarks/bench_gpu.py (the GPU-ready check) on the CPU: a smoke run of a few published models at a tiny batch,
and the up-front refusals (a missing CUDA device, fp16 on the CPU). Transformer_DCN_MicroLens (~261M parameters) is
left out of the smoke run: about 95 s and 6 GiB on the 2-core CPU for two steps in each of two precisions."""
from __future__ import annotations

import json

import pytest
import torch

from conftest import REPO_ROOT, run_cli, shared_data_args

BENCH_DIR = REPO_ROOT / "benchmarks"
NO_PYC = {"PYTHONDONTWRITEBYTECODE": "1"}  # nothing written into the checkout
SMOKE_EXPIDS = ["DIN_MicroLens", "DIN_DCN_MicroLens", "DMF_MicroLens"]


def bench_gpu(args, tmp_path):
    return run_cli([*args, "--output-dir", str(tmp_path)], BENCH_DIR, module="bench_gpu", env=NO_PYC)


@pytest.mark.slow
def test_cpu_smoke_run_reports_every_model_and_precision(tiny_params, work_dir, tmp_path):
    proc = bench_gpu(["--gpu", "-1", "--steps", "2", "--warmup", "0", "--dataset", "MicroLens_synth_tiny",
                      "--batch-size", "64", "--expids", *SMOKE_EXPIDS, *shared_data_args(work_dir)], tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    assert result["benchmark"] == "gpu_check" and result["device"] == "cpu" and result["failed"] == []
    assert result["amp"] == ["off", "bf16"]  # the CPU default: no fp16
    assert list(result["results"]) == SMOKE_EXPIDS
    for expid in SMOKE_EXPIDS:
        for precision in ("off", "bf16"):
            row = result["results"][expid][precision]
            assert row["samples_per_s"] > 0 and row["step_ms"] > 0 and row["batch_size"] == 64, (expid, precision)
            assert row["peak_rss_gib"] > 0 and row["params"] > 0
        assert any(line.startswith(expid) for line in lines[:-1])  # a progress line per model
    assert result["results"]["DIN_DCN_MicroLens"]["off"]["model"] == "DIN_CrossNet"


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device exists here")
def test_missing_cuda_device_is_refused(tmp_path):
    proc = bench_gpu(["--gpu", "0", "--expids", "DMF_MicroLens"], tmp_path)
    assert proc.returncode == 2
    assert "CUDA device 0" in proc.stderr and "no CUDA device is available" in proc.stderr
    assert proc.stdout == ""


def test_fp16_on_the_cpu_is_refused(tmp_path):
    proc = bench_gpu(["--gpu", "-1", "--amp", "off", "fp16", "--expids", "DMF_MicroLens"], tmp_path)
    assert proc.returncode == 2
    assert "fp16 needs a CUDA device" in proc.stderr and proc.stdout == ""


def test_unknown_expid_is_refused_before_anything_runs(tmp_path):
    proc = bench_gpu(["--gpu", "-1", "--expids", "DMF_MicroLens", "DMF_MicroLenz"], tmp_path)
    assert proc.returncode == 2 and "unknown expid 'DMF_MicroLenz'" in proc.stderr and proc.stdout == ""
