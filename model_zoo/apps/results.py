"""The results CSV: one line per run, appended under a lock, never rewritten.

Every value sits on the row's own physical line (newlines in values become spaces), so each line is parsed on its
own: a damaged line (an unbalanced quote, a stray byte, a truncated write) is reported with its file and line number
and never swallows the lines after it. Fields are only ever added at the end of ``RESULT_FIELDS``: a file started
under an older header keeps that header, and its longer newer rows are read with the current fields.

Readers that build tables from the file (leaderboard, seed study, tuner resume) call :func:`read_results` with
``required=True``: a missing, empty or unrelated file is an error (exit 2), never an empty table.
"""
from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Tuple

from model_zoo.errors import DataError
from model_zoo.fileio import append_line_locked, iter_lines

__all__ = ["RESULT_FIELDS", "ResultsTable", "append_result", "read_results", "check_results_target"]

RESULT_FIELDS: Tuple[str, ...] = (
    "timestamp", "expid", "model", "dataset_id", "embedding_variant", "seed", "valid_AUC", "valid_logloss",
    "test_AUC", "test_logloss", "oracle_valid_AUC", "oracle_test_AUC", "num_params", "train_seconds", "checkpoint",
    "params_file", "command",
    # added with run records (fields are only ever appended)
    "run_id", "run_dir", "device", "valid_cold_AUC", "test_cold_AUC", "valid_cold_rows", "test_cold_rows",
    "overrides",
    # cold = target never in train; new = target never a positive train target nor in a train history
    "valid_new_AUC", "test_new_AUC", "valid_new_rows", "test_new_rows",
    "nproc",  # data-parallel processes (1 = one process)
)
_FIRST_FIELDS = RESULT_FIELDS[:3]  # a header must start like this to be a zoo results file


@dataclass
class ResultsTable:
    """Rows of a results file, and the lines that could not be read (``(line number, reason)``)."""

    path: Path
    rows: List[Dict[str, str]] = field(default_factory=list)
    damaged: List[Tuple[int, str]] = field(default_factory=list)

    def warnings(self) -> List[str]:
        return [f"{self.path}:{line}: {reason}; line skipped" for line, reason in self.damaged]

    def summary(self, shown: int = 5) -> str:
        """One line naming every damaged line as ``file:line (reason)`` (the first ``shown``), or "" if none."""
        if not self.damaged:
            return ""
        listed = ", ".join(f"{self.path}:{line} ({reason})" for line, reason in self.damaged[:shown])
        more = f" and {len(self.damaged) - shown} more" if len(self.damaged) > shown else ""
        return (f"{len(self.damaged)} damaged line(s) in the results file, skipped by readers and left as they "
                f"are: {listed}{more}")


def _format_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, default=str)
    return " ".join(str(value).splitlines())


def _csv_line(values: List[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(values)
    return buf.getvalue()


def _parse_line(text: str) -> List[str]:
    """One CSV record that must end on this line (an unbalanced quote raises ValueError)."""
    reader = csv.reader([text], strict=True)
    values = next(reader, [])
    if text.count('"') % 2:
        raise ValueError("unbalanced quote")
    return values


def _header_problem(header: List[str]) -> str:
    if tuple(header[:len(_FIRST_FIELDS)]) != _FIRST_FIELDS or tuple(header) != RESULT_FIELDS[:len(header)]:
        return (f"header {','.join(header)[:80]!r} is not a zoo results header (expected it to start with "
                f"{','.join(RESULT_FIELDS[:6])},...)")
    return ""


def check_results_target(path: str | os.PathLike) -> Path:
    """Before any work: ``path`` can take a results row (not a directory, parent creatable, an existing file is a
    zoo results file). Raises DataError naming the problem."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"--results {path}: is a directory; expected a CSV file path, e.g. {path / 'results.csv'}")
    if path.exists():
        if not os.access(path, os.W_OK):
            raise DataError(f"--results {path}: not writable")
        first = next(iter_lines(path), None)
        if first is not None and first[1].strip():
            try:
                problem = _header_problem(_parse_line(first[1]))
            except (ValueError, csv.Error) as exc:
                problem = f"header line cannot be parsed ({exc})"
            if problem:
                raise DataError(f"--results {path}: {problem}; refusing to append to a file that is not a zoo "
                                f"results file")
    else:
        parent = path.parent
        while not parent.exists():
            parent = parent.parent
        if not os.access(parent, os.W_OK):
            raise DataError(f"--results {path}: cannot create it ({parent} is not writable)")
    return path


def append_result(path: str | os.PathLike, row: Mapping[str, Any]) -> Path:
    """Append ``row`` (keys from RESULT_FIELDS; missing ones left empty) as one locked, fsynced line.

    A new file gets the header first. A file with an older header gets the full current row (readers map the
    extra trailing values by RESULT_FIELDS).
    """
    unknown = set(row) - set(RESULT_FIELDS)
    if unknown:
        raise ValueError(f"result row has unknown fields {sorted(unknown)}; expected a subset of {RESULT_FIELDS}")
    check_results_target(path)
    line = _csv_line([_format_value(row.get(k)) for k in RESULT_FIELDS])
    return append_line_locked(path, line, header=_csv_line(list(RESULT_FIELDS)))


def read_results(path: str | os.PathLike, *, required: bool = False) -> ResultsTable:
    """Every readable row of the results file; damaged lines are listed in ``damaged`` (file line numbers).

    ``required``: a missing or empty file, or one whose header is not a zoo results header, raises DataError.
    Without it such a file reads as no rows (the runner's own resume checks use this).
    """
    path = Path(path)
    table = ResultsTable(path)
    if path.is_dir():
        raise DataError(f"results {path}: is a directory; expected a results CSV file")
    if not path.is_file():
        if required:
            raise DataError(f"results {path}: no such file (run an expid first, or pass --results with the right "
                            f"path)")
        return table
    lines = iter_lines(path)
    header: List[str] = []
    for number, text in lines:
        if text.strip():
            try:
                header = _parse_line(text)
            except (ValueError, csv.Error) as exc:
                raise DataError(f"{path}:{number}: the header cannot be parsed ({exc})") from None
            break
    problem = _header_problem(header) if header else "the file is empty"
    if problem:
        if required:
            raise DataError(f"results {path}: {problem}")
        return table
    for number, text in lines:
        if not text.strip():
            continue
        if "\ufffd" in text:
            table.damaged.append((number, "bytes that are not UTF-8"))
            continue
        try:
            values = _parse_line(text)
        except (ValueError, csv.Error) as exc:
            table.damaged.append((number, f"cannot be parsed ({exc})"))
            continue
        if len(values) == len(header):
            table.rows.append(dict(zip(header, values)))
        elif len(header) < len(values) <= len(RESULT_FIELDS):
            table.rows.append(dict(zip(RESULT_FIELDS, values)))
        else:
            table.damaged.append((number, f"{len(values)} values, the header has {len(header)}"))
    if required and not table.rows:
        raise DataError(f"results {path}: no readable result rows"
                        + (f" ({len(table.damaged)} damaged line(s), first at line {table.damaged[0][0]})"
                           if table.damaged else ""))
    return table
