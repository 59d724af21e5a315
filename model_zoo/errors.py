"""Errors that the CLI reports as a clear one-line message with exit code 2."""
from __future__ import annotations

import difflib
from typing import Iterable, Optional

__all__ = ["ZooError", "DataError", "ConfigError", "TrainingDiverged", "did_you_mean"]


class ZooError(ValueError):
    """Base class of user-facing errors: the runner prints the message and exits with code 2."""


class DataError(ZooError):
    """Bad or missing input data. The message names the file, column, row, value and what was expected."""

    def __init__(self, message: str, *, path: Optional[str] = None, column: Optional[str] = None,
                 row: Optional[int] = None) -> None:
        parts = []
        if path is not None:
            parts.append(f"{path}")
        if column is not None:
            parts.append(f"column '{column}'")
        if row is not None:
            parts.append(f"row {row}")
        prefix = ", ".join(parts)
        super().__init__(f"{prefix}: {message}" if prefix else message)
        self.path, self.column, self.row = path, column, row


class ConfigError(ZooError):
    """Bad configuration: unknown key, unknown model or expid, invalid value."""


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite: the run stops (exit 1) instead of training on garbage."""


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """Return " (did you mean 'x'?)" for the closest candidate, or "" when nothing is close."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
