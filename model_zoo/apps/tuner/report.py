"""What a sweep did, in words: one :class:`RunOutcome` per run started, a :class:`SweepReport` for the whole sweep.

The report names every failed run with its exit code, its run directory's ``train.log`` (when the run got as far as
creating its run record) and the captured stderr file, plus the stderr's last lines, so a failure can be read without
searching for files.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Tuple

__all__ = ["RunOutcome", "SweepReport", "STDERR_TAIL_LINES"]

STDERR_TAIL_LINES = 15


@dataclass
class RunOutcome:
    """How one run ended. ``label`` is the expid, plus its ``--set`` overrides when it has any."""

    label: str
    expid: str
    returncode: int
    seconds: float
    stdout_log: str = ""
    stderr_log: str = ""
    stderr_tail: str = ""
    summary: str = ""   # the runner's last stdout line, e.g. "[X] valid AUC 0.71 | ..."
    run_dir: str = ""   # <model_root>/<dataset_id>/<expid>/<run id>/ when the run created one
    state: str = ""     # its status.json state: finished | failed | interrupted | running
    error: str = ""     # why a zero exit code still counts as a failure

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.error

    @property
    def train_log(self) -> Optional[str]:
        if not self.run_dir:
            return None
        path = Path(self.run_dir) / "train.log"
        return str(path) if path.is_file() else None

    def failure_lines(self) -> List[str]:
        reason = self.error or f"exit code {self.returncode}"
        if self.state:
            reason += f" (run status: {self.state})"
        lines = [f"FAILED {self.label}: {reason}"]
        if self.train_log:
            lines.append(f"  train.log: {self.train_log}")
        lines.append(f"  stderr:    {self.stderr_log or '(not captured)'}")
        lines.extend("  | " + line for line in self.stderr_tail.splitlines()[-STDERR_TAIL_LINES:])
        return lines


@dataclass
class SweepReport:
    """The runs of a sweep: requested, skipped as already finished, and how each run that started ended."""

    name: str
    results: str
    labels: List[str]
    config_dir: Optional[str] = None
    skipped: List[str] = field(default_factory=list)
    outcomes: List[RunOutcome] = field(default_factory=list)
    seconds: float = 0.0
    best: Optional[Tuple[float, str]] = None   # (valid AUC, label) over the sweep's finished runs
    warnings: List[str] = field(default_factory=list)

    @property
    def failed(self) -> List[RunOutcome]:
        return [o for o in self.outcomes if not o.ok]

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def text(self) -> str:
        lines = [f"{self.name}: {len(self.labels)} runs: {len(self.outcomes)} ran, {len(self.skipped)} skipped "
                 f"(already finished in {self.results}), {len(self.failed)} failed, {self.seconds:.1f} s"]
        if self.config_dir:
            lines.append(f"config dir: {self.config_dir}")
        if self.best is not None:
            lines.append(f"best valid AUC: {self.best[0]:.6f} ({self.best[1]})")
        for outcome in self.failed:
            lines.extend(outcome.failure_lines())
        if self.failed:
            lines.append(f"failed: {' '.join(o.label for o in self.failed)}")
        return "\n".join(lines)
