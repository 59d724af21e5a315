"""What the benchmark scripts share: their command line (one-line usage errors, ``--output-dir``, ``--set``), the
process settings of the runner, interleaved timing and peak RSS. Not a benchmark itself.

Every script builds its experiments through the library (``model_zoo.experiment``, ``model_zoo.config``); this module
only holds the glue that would otherwise be copied from script to script. Scripts import it as a sibling module
(``python benchmarks/<script>.py`` puts ``benchmarks/`` first on ``sys.path``).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, NoReturn, Optional, Sequence

__all__ = ["BenchParser", "EXIT_USAGE", "work_dir", "overrides", "runner_process_settings", "step_experiment",
           "train_batches", "ready_for_steps", "interleaved_times", "peak_rss_gib", "print_result", "usage_error",
           "positive_int", "non_negative_int"]

EXIT_USAGE = 2


class BenchParser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors are one line on stderr and exit code 2; optional ``--output-dir`` and
    ``--set`` arguments with the runner's meaning."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"error: {message} (see --help)\n")

    def add_output_dir(self, what: str) -> None:
        self.add_argument("--output-dir", default=None, metavar="DIR",
                          help=f"work dir for {what} (the runner's --output-dir: data/ for synthetic worlds, cache/ "
                               f"for feature maps and variants); default: a temp dir, removed at the end")

    def add_step_timing(self, num_batches: int = 8, warmup: int = 3, repeats: int = 20, quick: int = 8) -> None:
        """``--num-batches`` (distinct pre-built batches), ``--warmup``, ``--repeats`` and ``--quick``; read the timed
        step count with :func:`timed_repeats`."""
        self.add_argument("--num-batches", type=positive_int, default=num_batches, help="distinct batches cycled "
                                                                                       "through")
        self.add_argument("--warmup", type=non_negative_int, default=warmup)
        self.add_argument("--repeats", type=positive_int, default=None,
                          help=f"timed steps (default {repeats}, quick {quick})")
        self.add_argument("--quick", action="store_true")
        self.set_defaults(_repeats=(repeats, quick))

    def add_overrides(self) -> None:
        self.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                          help="override a config key of every expid (YAML value, the runner's --set), e.g. "
                               "--set dataset_id=MicroLens_synth_tiny; repeatable")


def timed_repeats(args: argparse.Namespace) -> int:
    """The timed step count of :meth:`BenchParser.add_step_timing`'s arguments."""
    default, quick = args._repeats
    return args.repeats or (quick if args.quick else default)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return _int_at_least(text, 1)


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return _int_at_least(text, 0)


def _int_at_least(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"{value}; expected an integer >= {low}")
    return value


def usage_error(message: str) -> int:
    """Print ``error: message`` as one line on stderr; returns the usage exit code (2)."""
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
    return EXIT_USAGE


@contextlib.contextmanager
def work_dir(output_dir: Optional[str], prefix: str) -> Iterator[Path]:
    """``output_dir`` (created if missing), or a fresh temp dir removed on exit."""
    if output_dir:
        path = Path(output_dir).expanduser().resolve()
        if path.exists() and not path.is_dir():
            from model_zoo.errors import ConfigError
            raise ConfigError(f"--output-dir {output_dir}: exists and is not a directory")
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield Path(tmp)


def overrides(items: Sequence[str], **fixed: Any) -> Dict[str, Any]:
    """``--set`` items parsed like the runner's (``model_zoo.config.parse_overrides``), then ``fixed`` (not None)."""
    from model_zoo.config import parse_overrides

    out = parse_overrides(items)
    out.update({k: v for k, v in fixed.items() if v is not None})
    return out


def runner_process_settings(threads: Optional[int] = None) -> None:
    """The process settings of a training run (``model_zoo.apps.runner.prepare_process``: MKL strict mode, glibc
    keeping per-batch buffers on the heap) and ``torch.set_num_threads(threads)``."""
    from model_zoo.apps.runner import prepare_process

    prepare_process()
    if threads is not None:
        import torch
        torch.set_num_threads(threads)


def step_experiment(expid: str, work: Path, sets: Sequence[str] = (), *, gpu: int = -1, **fixed: Any):
    """``expid`` built by ``model_zoo.experiment.experiment_from_expid`` (outputs and caches under ``work``) with the
    ``--set`` items and ``fixed`` overrides, quiet, train rows in file order, on device ``gpu`` (-1 = CPU); its model
    ready for ``train_step``."""
    from model_zoo.experiment import experiment_from_expid

    exp = experiment_from_expid(expid, work_dir=work, overrides=overrides(sets, verbose=0, shuffle=False, **fixed),
                                gpu=gpu)
    ready_for_steps(exp.model, exp.params["max_gradient_norm"])
    return exp


def train_batches(exp: Any, count: int) -> List[Any]:
    """The first ``count`` full batches of the experiment's train split (fewer if the split is shorter)."""
    from model_zoo.errors import ConfigError

    loader = exp.loader("train")
    size = loader.batch_size
    count = min(count, loader.num_rows // size)
    if count < 1:
        raise ConfigError(f"dataset '{exp.params['dataset_id']}': train has {loader.num_rows} rows, fewer than one "
                          f"batch of batch_size={size} (--set batch_size=N)")
    return [loader.batch(slice(i * size, (i + 1) * size)) for i in range(count)]


def ready_for_steps(model: Any, max_gradient_norm: float) -> Any:
    """Set the state ``fit()`` sets before calling ``model.train_step`` (batch index, steps per epoch, clipping)."""
    model._batch_index, model._steps_per_epoch, model._max_gradient_norm = 0, 1, max_gradient_norm
    return model


def interleaved_times(fns: Mapping[str, Callable[[int], object]], repeats: int,
                      warmup: int) -> Dict[str, List[float]]:
    """Seconds of every timed call per function. ``fn(i)`` gets the round index (warm-up rounds first); the
    functions take turns in every round, so load changes on a shared machine hit all of them alike."""
    for i in range(warmup):
        for fn in fns.values():
            fn(i)
    times: Dict[str, List[float]] = {name: [] for name in fns}
    for i in range(warmup, warmup + repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn(i)
            times[name].append(time.perf_counter() - start)
    return times


def peak_rss_gib() -> float:
    """Peak resident set size of this process in GiB (Linux reports ru_maxrss in KiB, macOS in bytes)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1 << 30) if sys.platform == "darwin" else rss / (1 << 20)


def print_result(result: Mapping[str, Any]) -> None:
    """The benchmark's last stdout line: one JSON object."""
    print(json.dumps(result), flush=True)
