"""Helpers both synthetic worlds use: named random streams, chunking, progress and stage timing, summary statistics."""
from __future__ import annotations

import sys
import time
from typing import Any, Dict, Iterator, Optional, Sequence, Tuple

import numpy as np

__all__ = ["ROW_CHUNK", "Streams", "chunks", "sigmoid", "auc", "len_stats", "percentiles", "NullBar", "make_bar",
           "Stages"]

ROW_CHUNK = 200_000     # rows per drawing / scoring / writing chunk (part of the generators' determinism)


class Streams:
    """Named independent random generators spawned from one SeedSequence.

    Child ``k`` of ``SeedSequence(seed).spawn(n)`` depends only on ``seed`` and ``k``, so a stream's numbers are
    fixed by the seed and the name's position in ``names``.
    """

    def __init__(self, seed: int, names: Sequence[str]) -> None:
        children = np.random.SeedSequence(seed).spawn(len(names))
        self._rngs = {name: np.random.default_rng(ss) for name, ss in zip(names, children)}

    def __getitem__(self, name: str) -> np.random.Generator:
        return self._rngs[name]


def chunks(n: int, size: int = ROW_CHUNK) -> Iterator[Tuple[int, int]]:
    """Half-open [start, stop) ranges covering 0..n."""
    for start in range(0, n, size):
        yield start, min(n, start + size)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function."""
    out = np.empty_like(x, dtype=np.float64)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    ex = np.exp(x[~pos])
    out[~pos] = ex / (1.0 + ex)
    return out


def auc(labels: np.ndarray, p: np.ndarray) -> Optional[float]:
    """sklearn ROC AUC, or None when only one class is present."""
    from sklearn.metrics import roc_auc_score
    if labels.min() == labels.max():
        return None
    return float(roc_auc_score(labels, p))


def len_stats(lengths: np.ndarray) -> Dict[str, float]:
    """min / median / mean / max of non-zero history lengths."""
    return {"min": int(lengths.min()), "median": float(np.median(lengths)), "mean": round(float(lengths.mean()), 4),
            "max": int(lengths.max())}


def percentiles(values: np.ndarray, qs: Sequence[int] = (5, 25, 50, 75, 95)) -> Dict[str, float]:
    """{"p5": ..., "p50": ...} rounded to 4 decimals."""
    pct = np.percentile(values, qs)
    return {f"p{q}": round(float(v), 4) for q, v in zip(qs, pct)}


class NullBar:
    """Stand-in for tqdm when progress is off."""

    def update(self, n: int = 1) -> None:
        """Ignore."""

    def set_postfix_str(self, s: str) -> None:
        """Ignore."""

    def close(self) -> None:
        """Ignore."""


def make_bar(desc: str, total: int, progress: bool) -> Any:
    """One tqdm bar over every stage (or a silent stand-in)."""
    if not progress:
        return NullBar()
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, unit="step", file=sys.stderr, leave=False)


class Stages:
    """Progress-bar labels plus wall-clock seconds per stage (recorded in the manifest)."""

    def __init__(self, bar: Any, *, advance: bool = False) -> None:
        """``advance``: the bar counts stages (one step per closed stage) instead of the caller's own steps."""
        self.bar = bar
        self.advance = advance
        self.seconds: Dict[str, float] = {}
        self._name = ""
        self._t0 = time.perf_counter()

    def start(self, name: str) -> None:
        """Close the running stage and open ``name``."""
        self._close()
        self._name = name
        self.bar.set_postfix_str(name)

    def _close(self) -> None:
        now = time.perf_counter()
        if self._name:
            self.seconds[self._name] = round(self.seconds.get(self._name, 0.0) + now - self._t0, 3)
            if self.advance:
                self.bar.update(1)
        self._t0 = now

    def finish(self) -> Dict[str, float]:
        """Close the last stage (and a stage-counting bar, which belongs to this object) and return the timings."""
        self._close()
        self._name = ""
        if self.advance:
            self.bar.close()
        return self.seconds
