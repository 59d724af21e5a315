"""Immutable run records: every run writes into its own new directory and never touches another run's files.

``<model_root>/<dataset_id>/<expid>/<run_id>/`` holds ``params.yaml`` (the resolved, validated params: any row can be
re-run exactly), ``env.json`` (versions, device, git commit, command), ``train.log``, ``model.pt`` (the best checkpoint,
written through a temp file and a rename), ``metrics.json`` and ``status.json`` (``running``, ``finished`` with the
checkpoint's sha256, ``failed`` with the error, ``interrupted``). The run id (time, pid, random suffix) is created with
an exclusive ``mkdir``, so two runs of one expid, even at the same second, never share a file.
"""
from __future__ import annotations

import logging
import os
import platform
import secrets
import subprocess
import sys
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional

from model_zoo.config import PACKAGE_DIR, dump_params, read_yaml
from model_zoo.errors import ConfigError, DataError
from model_zoo.fileio import atomic_write_json, sha256_file

__all__ = ["RunRecord", "environment", "find_runs", "latest_finished_run"]

STATES = ("running", "finished", "failed", "interrupted")


def _git_commit() -> str:
    """The zoo's git commit when it runs from a checkout ("" for an installed wheel)."""
    root = PACKAGE_DIR.parent
    if not (root / ".git").exists():
        return ""
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    commit = out.stdout.strip()
    return commit + ("+dirty" if commit and dirty.stdout.strip() else "")


def environment(device: str, command: str) -> Dict[str, Any]:
    """Versions, device, threads, git commit and command of this process (the run's ``env.json``)."""
    import fuxictr
    import numpy
    import torch
    from importlib.metadata import PackageNotFoundError, version

    try:
        zoo_version = version("mmctr-zoo")
    except PackageNotFoundError:
        zoo_version = ""
    return {
        "python": platform.python_version(), "platform": platform.platform(), "torch": torch.__version__,
        "cuda": torch.version.cuda or "", "fuxictr": getattr(fuxictr, "__version__", ""), "numpy": numpy.__version__,
        "mmctr_zoo": zoo_version, "git_commit": _git_commit(), "device": device,
        "torch_threads": torch.get_num_threads(), "hostname": platform.node(), "pid": os.getpid(),
        "command": command, "argv": sys.argv,
    }


class RunRecord:
    """The directory of one run; see the module docstring."""

    def __init__(self, run_dir: Path) -> None:
        self.dir = Path(run_dir)
        self.run_id = self.dir.name

    @classmethod
    def create(cls, model_root: str | os.PathLike, dataset_id: str, expid: str) -> "RunRecord":
        parent = Path(model_root) / dataset_id / expid
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataError(f"model_root {model_root}: cannot create {parent} ({exc.strerror})") from None
        for _ in range(100):
            run_id = f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{secrets.token_hex(2)}"
            try:
                (parent / run_id).mkdir()  # exclusive: an existing id is never reused
            except FileExistsError:
                continue
            except OSError as exc:
                raise DataError(f"model_root {model_root}: cannot create a run directory in {parent} "
                                f"({exc.strerror})") from None
            return cls(parent / run_id)
        raise DataError(f"could not create a unique run directory in {parent}")

    @property
    def checkpoint(self) -> Path:
        return self.dir / "model.pt"

    @property
    def params_file(self) -> Path:
        return self.dir / "params.yaml"

    @property
    def log_file(self) -> Path:
        return self.dir / "train.log"

    def write_params(self, params: Mapping[str, Any]) -> Path:
        return dump_params(params, self.params_file)

    def read_params(self) -> Dict[str, Any]:
        if not self.params_file.is_file():
            raise DataError(f"run {self.dir}: no params.yaml (not a run directory?)")
        return read_yaml(self.params_file)

    def write_json(self, name: str, payload: Mapping[str, Any]) -> Path:
        return atomic_write_json(self.dir / name, payload)

    def set_status(self, state: str, **info: Any) -> None:
        if state not in STATES:
            raise ValueError(f"state={state!r}; expected one of {STATES}")
        self.write_json("status.json", {"state": state, "time": datetime.now().isoformat(timespec="seconds"),
                                        **info})

    def checkpoint_sha256(self) -> Optional[str]:
        """sha256 of ``model.pt`` (None when there is none), recorded in the finished status."""
        return sha256_file(self.checkpoint) if self.checkpoint.is_file() else None

    def verify_checkpoint(self) -> Path:
        """``model.pt`` if it is present and, where the finished status recorded its sha256, unchanged since.

        Raises DataError naming the file otherwise (missing, truncated, bit-flipped or replaced).
        """
        if not self.checkpoint.is_file():
            raise DataError(f"run {self.dir}: checkpoint {self.checkpoint.name} not found")
        recorded = self.status().get("checkpoint_sha256")
        if recorded and sha256_file(self.checkpoint) != recorded:
            raise DataError(f"sha256 differs from the one recorded when the run finished ({recorded[:12]}...): "
                            f"the checkpoint was damaged or replaced since; retrain or restore it",
                            path=str(self.checkpoint))
        return self.checkpoint

    def status(self) -> Dict[str, Any]:
        import json
        path = self.dir / "status.json"
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {"state": "unknown"}

    @contextmanager
    def logging_to_file(self, verbose: int) -> Iterator[None]:
        """Route the root logger (FuxiCTR logs there) to ``train.log`` and, when verbose, to stdout."""
        root = logging.getLogger()
        fmt = logging.Formatter("%(asctime)s P%(process)d %(levelname)s %(message)s")
        file_handler = logging.FileHandler(self.log_file, encoding="utf-8")
        file_handler.setFormatter(fmt)
        handlers: List[logging.Handler] = [file_handler]
        if verbose:
            console = logging.StreamHandler(sys.stdout)
            console.setFormatter(fmt)
            handlers.append(console)
        old_level = root.level
        root.setLevel(logging.INFO)
        for h in handlers:
            root.addHandler(h)
        try:
            yield
        finally:
            for h in handlers:
                root.removeHandler(h)
                h.close()
            root.setLevel(old_level)


def find_runs(model_root: str | os.PathLike, dataset_id: str, expid: str,
              state: Optional[str] = "finished") -> List[RunRecord]:
    """Run records of ``expid`` (oldest first), only those in ``state`` unless it is None."""
    parent = Path(model_root) / dataset_id / expid
    runs = [RunRecord(p) for p in sorted(parent.iterdir()) if p.is_dir() and (p / "params.yaml").is_file()] \
        if parent.is_dir() else []
    return [r for r in runs if state is None or r.status().get("state") == state]


def latest_finished_run(model_root: str | os.PathLike, dataset_id: str, expid: str) -> RunRecord:
    runs = find_runs(model_root, dataset_id, expid)
    if not runs:
        raise ConfigError(f"no finished run of '{expid}' under {Path(model_root) / dataset_id / expid}; train it "
                          f"first (mmctr-run --expid {expid})")
    return runs[-1]

