"""Running many expids: check them all, prepare their data once, then one runner subprocess per run.

Every run is ``[sys.executable, "-m", "model_zoo.apps.runner", --expid, ..., --output-dir, ..., --results, ...]``
(plus ``--config`` and ``--set key=value`` overrides), started with the interpreter running the sweep (never a bare
``python`` from PATH) and this zoo's folder first on ``PYTHONPATH``, so the children import the same ``model_zoo``.

Order of work (nothing runs until every step before it passed):

1. every job is resolved and validated (``model_zoo.config``); all problems are reported at once (exit 2);
2. runs already finished are skipped: a row of the results CSV with the job's expid and overrides whose ``run_dir``
   has ``status.json`` saying ``finished`` (damaged CSV lines are reported as ``file:line`` warnings, the other rows
   still count), so a rerun resumes a sweep without duplicating rows;
3. each dataset (a synthetic world, an embedding variant, a feature map) is prepared once, serially, by
   ``model_zoo.experiment.prepare_data``: parallel runs never race to build the same files;
4. the runs: ``local`` = one worker thread per ``--gpu`` entry, each running its subprocess on that device; ``ray`` =
   one Ray task per run reserving ``threads`` CPUs (and a GPU share), the task itself only starting the subprocess.

Every child starts in its own process group. Ctrl-C (SIGINT) or SIGTERM stops the sweep: no new run starts, each
running child's group gets the same signal (the runner records its run as ``interrupted``; SIGKILL after
``STOP_GRACE_SECONDS``), and :class:`SweepInterrupted` carries the one-line message and the exit code (130 / 143).
A child that exits 0 without its result row counts as failed.
"""
from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from model_zoo.apps.tuner.report import STDERR_TAIL_LINES, RunOutcome, SweepReport
from model_zoo.apps.signals import Terminated, sigterm_raises
from model_zoo.errors import ConfigError, ZooError

__all__ = ["Job", "PlannedJob", "Terminated", "SweepInterrupted", "sigterm_raises", "plan_jobs", "finished_runs",
           "prepare_datasets", "run_child", "run_jobs", "init_local_ray", "BACKENDS", "RUNNER_MODULE"]

RUNNER_MODULE = "model_zoo.apps.runner"
BACKENDS = ("local", "ray")
STOP_GRACE_SECONDS = 20.0
EXIT_USAGE, EXIT_INTERRUPT, EXIT_TERMINATED = 2, 130, 143
# Params that decide what prepare_data builds (one preparation per distinct combination).
_DATA_KEYS = ("dataset_id", "data_root", "data_format", "train_data", "valid_data", "test_data", "item_info",
              "item_feature", "feature_cols", "label_col", "synthetic", "embedding_variant", "feature_specs",
              "use_features")


# ---------------------------------------------------------------------------------------------------------------------
# Signals
# ---------------------------------------------------------------------------------------------------------------------
class SweepInterrupted(BaseException):
    """A sweep stopped by Ctrl-C or SIGTERM after stopping its children; ``line()`` says what happened."""

    def __init__(self, name: str, signal_name: str, stopped: Sequence[str], finished: int) -> None:
        super().__init__(signal_name)
        self.name, self.signal_name, self.stopped, self.finished = name, signal_name, list(stopped), finished
        self.exit_code = EXIT_TERMINATED if signal_name == "SIGTERM" else EXIT_INTERRUPT

    def line(self) -> str:
        stopped = f"{len(self.stopped)} running run(s) stopped" + (f" ({', '.join(self.stopped)})" if self.stopped
                                                                    else "")
        return (f"interrupted: {self.name} stopped by {self.signal_name}; {stopped}; {self.finished} run(s) finished "
                f"in this session are kept; rerun the same command to resume")


APP_STOPS = (ZooError, SweepInterrupted, KeyboardInterrupt, Terminated)  # what an application turns into an exit code


def app_exit(exc: BaseException, name: str, note: str = "nothing written") -> int:
    """The one line and exit code of an application stopped by ``exc`` (one of ``APP_STOPS``): 2 for bad input,
    130 / 143 for Ctrl-C / SIGTERM (``note`` says what was kept); anything else is re-raised."""
    if isinstance(exc, ZooError):
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if isinstance(exc, SweepInterrupted):
        print(exc.line(), file=sys.stderr)
        return exc.exit_code
    if isinstance(exc, (KeyboardInterrupt, Terminated)):
        sigterm = isinstance(exc, Terminated)
        print(f"interrupted: {name} stopped by {'SIGTERM' if sigterm else 'SIGINT'}; {note}", file=sys.stderr)
        return EXIT_TERMINATED if sigterm else EXIT_INTERRUPT
    raise exc


# ---------------------------------------------------------------------------------------------------------------------
# Jobs
# ---------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Job:
    """One run: an expid and the ``--set`` overrides it runs with (the seed study sets ``seed``)."""

    expid: str
    overrides: Tuple[Tuple[str, Any], ...] = ()

    @classmethod
    def of(cls, expid: str, overrides: Optional[Mapping[str, Any]] = None) -> "Job":
        return cls(expid, tuple(sorted((overrides or {}).items())))

    @property
    def overrides_dict(self) -> Dict[str, Any]:
        return dict(self.overrides)

    @property
    def key(self) -> Tuple[str, str]:
        """(expid, canonical JSON of the overrides): how a results row is matched to this job."""
        return self.expid, json.dumps(self.overrides_dict, sort_keys=True)

    @property
    def label(self) -> str:
        sets = ",".join(f"{k}={json.dumps(v)}" for k, v in self.overrides)
        return f"{self.expid}[{sets}]" if sets else self.expid

    def set_args(self) -> List[str]:
        return [arg for k, v in self.overrides for arg in ("--set", f"{k}={json.dumps(v)}")]  # JSON is YAML


@dataclass
class PlannedJob:
    """A job with its validated params (where its run dir and data are)."""

    job: Job
    params: Dict[str, Any]


def plan_jobs(jobs: Sequence[Job], config_dir: Optional[str], work_dir: Path) -> List[PlannedJob]:
    """Resolve and validate every job, as the runner will; one ConfigError lists every problem."""
    import model_zoo  # noqa: F401  (registers the models)
    from model_zoo.experiment import validated_params

    planned: List[PlannedJob] = []
    problems: List[str] = []
    for job in jobs:
        try:
            planned.append(PlannedJob(job, validated_params(job.expid, config_dir=config_dir,
                                                            overrides=job.overrides_dict, work_dir=work_dir)))
        except ConfigError as exc:
            problems.append(f"{job.label}: {exc}")
    if problems:
        shown = problems[:5] + ([f"... and {len(problems) - 5} more"] if len(problems) > 5 else [])
        raise ConfigError(f"{len(problems)} of {len(jobs)} run(s) cannot start; nothing was run:\n  - "
                          + "\n  - ".join(shown))
    return planned


def _row_key(row: Mapping[str, str]) -> Optional[Tuple[str, str]]:
    try:
        overrides = json.loads(row.get("overrides") or "{}")
    except ValueError:
        return None
    return (row.get("expid", ""), json.dumps(overrides, sort_keys=True)) if isinstance(overrides, dict) else None


def finished_runs(results: Path) -> Tuple[Dict[Tuple[str, str], Dict[str, str]], List[str]]:
    """{job key: its latest finished row} and the results file's damaged-line warnings (``file:line: ...``).

    A row counts when its ``run_dir`` has ``status.json`` saying ``finished``; a missing file has no rows.
    """
    from model_zoo.apps.results import read_results
    from model_zoo.apps.run_record import RunRecord

    table = read_results(results)
    done: Dict[Tuple[str, str], Dict[str, str]] = {}
    for row in table.rows:
        key = _row_key(row)
        if key and key[0] and row.get("run_dir") and RunRecord(Path(row["run_dir"])).status().get("state") == \
                "finished":
            done[key] = row
    return done, table.warnings()


def prepare_datasets(planned: Sequence[PlannedJob], work_dir: Path, progress: bool = True) -> int:
    """Prepare each distinct dataset / variant / feature set once, serially; returns how many were prepared."""
    from model_zoo.experiment import prepare_data

    seen = set()
    for item in planned:
        key = json.dumps({k: item.params.get(k) for k in _DATA_KEYS}, sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            prepare_data(dict(item.params, gpu=-1), cache_dir=work_dir / "cache", progress=progress)
    return len(seen)


# ---------------------------------------------------------------------------------------------------------------------
# One child process (standard library only: shipped by value to Ray workers)
# ---------------------------------------------------------------------------------------------------------------------
def _stop_group(proc: "subprocess.Popen", sig: int, grace: float) -> None:
    """Signal the child's process group, then SIGKILL it if it is still there after ``grace`` seconds."""
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        return
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()


def run_child(argv: List[str], env_updates: Dict[str, str], stdout_path: str, stderr_path: str,
              spawn: Optional[Callable[..., Optional["subprocess.Popen"]]] = None) -> Dict[str, Any]:
    """Run ``sys.executable *argv`` in a new process group, stdout/stderr to files; plain data in and out.

    ``env_updates`` are added to this process's environment (``PYTHONPATH`` is prepended). ``spawn`` (the local
    pool's) starts the process or returns None when the sweep is stopping. An exception while waiting (Ctrl-C, a
    cancelled Ray task) stops the child's group before it propagates.
    """
    env = dict(os.environ)
    env.update({k: v for k, v in env_updates.items() if k != "PYTHONPATH"})
    if env_updates.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.pathsep.join(p for p in (env_updates["PYTHONPATH"], os.environ.get("PYTHONPATH"))
                                            if p)
    started = time.monotonic()
    with open(stdout_path, "w", encoding="utf-8") as out, open(stderr_path, "w", encoding="utf-8") as err:
        proc = (spawn or subprocess.Popen)([sys.executable, *argv], stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                           env=env, start_new_session=True)
        if proc is None:
            return {"returncode": None, "pid": None, "seconds": 0.0}
        try:
            returncode = proc.wait()
        except BaseException:
            _stop_group(proc, signal.SIGTERM, 20.0)
            raise
    return {"returncode": returncode, "pid": proc.pid, "seconds": time.monotonic() - started}


class _Children:
    """The local pool's live children; :meth:`stop` signals each one's group and refuses new starts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: Dict[int, Tuple["subprocess.Popen", str]] = {}
        self.stopping = False

    def spawn(self, label: str, cmd: List[str], **kwargs: Any) -> Optional["subprocess.Popen"]:
        with self._lock:
            if self.stopping:
                return None
            proc = subprocess.Popen(cmd, **kwargs)
            self._live[proc.pid] = (proc, label)
            return proc

    def forget(self, pid: Optional[int]) -> None:
        with self._lock:
            self._live.pop(pid, None)

    def stop(self, sig: int) -> List[str]:
        """Signal every running child's group with ``sig``, wait for them (SIGKILL after the grace period); returns
        the labels of the runs that were still running."""
        with self._lock:
            self.stopping = True
            running = [(proc, label) for proc, label in self._live.values() if proc.poll() is None]
        for proc, _ in running:
            try:
                os.killpg(proc.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for proc, _ in running:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _stop_group(proc, signal.SIGKILL, 5.0)
        return [label for _, label in running]


# ---------------------------------------------------------------------------------------------------------------------
# Backends
# ---------------------------------------------------------------------------------------------------------------------
_Launch = Tuple[PlannedJob, List[str], str, str]  # (job, argv without the gpu, stdout file, stderr file)


def _run_local(todo: Sequence[_Launch], gpus: Sequence[int], env_updates: Dict[str, str],
               on_done: Callable[[PlannedJob, Dict[str, Any]], None]) -> None:
    """One worker thread per ``--gpu`` entry. An exception (Ctrl-C, SIGTERM) stops the running children first; the
    labels of the runs it stopped ride on the exception as ``stopped``."""
    children = _Children()
    slots: "queue.Queue[int]" = queue.Queue()
    for gpu in gpus:
        slots.put(gpu)

    def work(launch: _Launch) -> Tuple[PlannedJob, Dict[str, Any]]:
        item, argv, out, err = launch
        gpu = slots.get()
        try:
            res = run_child(argv + ["--gpu", str(gpu)], env_updates, out, err,
                            spawn=lambda cmd, **kw: children.spawn(item.job.label, cmd, **kw))
            children.forget(res["pid"])
            return item, res
        finally:
            slots.put(gpu)

    pool = ThreadPoolExecutor(max_workers=len(gpus), thread_name_prefix="sweep")
    try:
        for future in as_completed([pool.submit(work, launch) for launch in todo]):
            item, res = future.result()
            if res["returncode"] is not None:
                on_done(item, res)
    except BaseException as exc:
        sig = signal.SIGINT if isinstance(exc, KeyboardInterrupt) else signal.SIGTERM
        exc.stopped = children.stop(sig)  # type: ignore[attr-defined]
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def init_local_ray(num_cpus: int = 2, num_gpus: int = 0, object_store_mb: int = 256) -> None:
    """A bounded local Ray instance (no dashboard, quiet workers)."""
    import ray

    ray.init(num_cpus=num_cpus, num_gpus=num_gpus, include_dashboard=False, log_to_driver=False,
             object_store_memory=object_store_mb * 1024 * 1024, configure_logging=False)


def _run_ray(todo: Sequence[_Launch], gpus: Sequence[int], env_updates: Dict[str, str], threads: int,
             address: Optional[str], on_done: Callable[[PlannedJob, Dict[str, Any]], None]) -> None:
    """Each run is a Ray task reserving ``threads`` CPUs (and a GPU share when GPUs are requested).

    On a cluster (``address``) this zoo, the data, the output dir and the results CSV must sit on a filesystem every
    node sees at the same path. Without an address a bounded local instance is started and shut down at the end; an
    instance the caller already started is used as is and left running.
    """
    import ray

    devices = [g for g in gpus if g >= 0]
    started_here = not ray.is_initialized()
    if started_here:
        if address:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        else:
            init_local_ray(num_cpus=max(1, len(gpus)) * threads, num_gpus=len(set(devices)))
    pending: Dict[Any, PlannedJob] = {}
    try:
        # --gpu 0 0: two runs share GPU 0 (0.5 each). Ray sets CUDA_VISIBLE_DEVICES, so a run sees its GPU as 0.
        gpu_share = 1.0 / max(devices.count(d) for d in set(devices)) if devices else 0.0
        task = ray.remote(run_child).options(num_cpus=threads, num_gpus=gpu_share, max_retries=0)
        # run_child needs only the standard library: shipped by value, a worker never imports model_zoo (whose
        # __init__ imports torch and every model) just to start a subprocess.
        this_module = sys.modules[__name__]
        ray.cloudpickle.register_pickle_by_value(this_module)
        try:
            for item, argv, out, err in todo:
                pending[task.remote(argv + ["--gpu", "0" if devices else "-1"], env_updates, out, err)] = item
        finally:
            ray.cloudpickle.unregister_pickle_by_value(this_module)
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            for ref in ready:
                item = pending.pop(ref)
                try:
                    res = ray.get(ref)
                except ray.exceptions.RayError as exc:  # the task itself died (worker lost, runtime env failed)
                    res = {"returncode": -1, "pid": None, "seconds": 0.0, "error": f"Ray task failed: {exc}"[:2000]}
                on_done(item, res)
    except BaseException as exc:
        for ref in pending:  # a running task gets KeyboardInterrupt: run_child stops its child's group
            ray.cancel(ref)
        if pending:
            ray.wait(list(pending), num_returns=len(pending), timeout=STOP_GRACE_SECONDS + 5)
        exc.stopped = [item.job.label for item in pending.values()]  # type: ignore[attr-defined]
        raise
    finally:
        if started_here:
            ray.shutdown()


# ---------------------------------------------------------------------------------------------------------------------
# A whole sweep
# ---------------------------------------------------------------------------------------------------------------------
def _tail(path: str, n: int = STDERR_TAIL_LINES) -> str:
    try:
        return "\n".join(Path(path).read_text(encoding="utf-8", errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def _run_dir(params: Mapping[str, Any], expid: str, pid: Optional[int]) -> str:
    """The run directory the child created (its run id carries the child's pid), or ""."""
    if pid is None:
        return ""
    found = sorted((Path(params["model_root"]) / params["dataset_id"] / expid).glob(f"*-{pid}-*"))
    return str(found[-1]) if found else ""


def _file_stem(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+=-]", "_", label)


def run_jobs(jobs: Sequence[Job], *, config_dir: Optional[str | os.PathLike] = None, gpus: Sequence[int] = (-1,),
             output_dir: Optional[str | os.PathLike] = None, results: Optional[str | os.PathLike] = None,
             backend: str = "local", ray_address: Optional[str] = None, threads: int = 1,
             log_dir: Optional[str | os.PathLike] = None, progress: bool = True, name: str = "sweep") -> SweepReport:
    """Run ``jobs`` (see the module docstring); returns the report, or raises ConfigError / DataError (exit 2) before
    anything ran, or :class:`SweepInterrupted` after stopping the children.

    Outputs follow the runner: ``output_dir`` (default: the current directory) is every child's ``--output-dir``;
    ``results`` defaults to ``<output_dir>/results/results.csv``; each run's stdout/stderr go to
    ``<log_dir>/<label>.{stdout,stderr}`` (default ``<output_dir>/logs``).
    """
    from tqdm import tqdm

    from model_zoo.apps.results import check_results_target
    from model_zoo.config import PACKAGE_DIR

    if backend not in BACKENDS:
        raise ConfigError(f"backend={backend!r}; expected one of {BACKENDS}")
    if not gpus or any(isinstance(g, bool) or not isinstance(g, int) or g < -1 for g in gpus):
        raise ConfigError(f"--gpu {' '.join(map(str, gpus))}: expected one or more device indices (-1 = a CPU worker)")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ConfigError(f"threads per run = {threads!r}; expected an integer >= 1")
    work = Path(output_dir).expanduser().resolve() if output_dir else Path.cwd()
    results_path = Path(results).expanduser().resolve() if results else work / "results" / "results.csv"
    check_results_target(results_path)
    cdir = str(Path(config_dir).expanduser().resolve()) if config_dir else None
    planned = plan_jobs(jobs, cdir, work)
    done, warnings = finished_runs(results_path)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    report = SweepReport(name=name, results=str(results_path), labels=[j.label for j in jobs], config_dir=cdir,
                         warnings=warnings)
    report.skipped = [p.job.label for p in planned if p.job.key in done]
    todo = [p for p in planned if p.job.key not in done]
    started = time.perf_counter()
    if todo:
        prepare_datasets(todo, work, progress=progress)
    logs = Path(log_dir).expanduser().resolve() if log_dir else work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    launches: List[_Launch] = []
    for item in todo:
        argv = ["-m", RUNNER_MODULE, "--expid", item.job.expid, "--output-dir", str(work), "--results",
                str(results_path)] + (["--config", cdir] if cdir else []) + item.job.set_args()
        stem = logs / _file_stem(item.job.label)
        launches.append((item, argv, f"{stem}.stdout", f"{stem}.stderr"))
    env_updates = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1",
                   "PYTHONPATH": str(PACKAGE_DIR.parent)}
    files = {id(item): (out, err) for item, _, out, err in launches}
    bar = tqdm(total=len(todo), desc=f"{name} ({backend})", unit="run", disable=not progress or not todo,
               file=sys.stderr, dynamic_ncols=True)

    def on_done(item: PlannedJob, res: Dict[str, Any]) -> None:
        out, err = files[id(item)]
        outcome = _outcome(item, res, out, err, results_path)
        report.outcomes.append(outcome)
        status = "ok" if outcome.ok else "FAILED"
        bar.write(f"[{status}] {outcome.label} ({outcome.seconds:.1f} s) {outcome.summary if outcome.ok else ''}"
                  .rstrip(), file=sys.stderr)
        bar.update(1)

    try:
        if todo and backend == "local":
            _run_local(launches, list(gpus), env_updates, on_done)
        elif todo:
            _run_ray(launches, list(gpus), env_updates, threads, ray_address, on_done)
    except (KeyboardInterrupt, Terminated) as exc:
        raise SweepInterrupted(name, "SIGTERM" if isinstance(exc, Terminated) else "SIGINT (Ctrl-C)",
                               getattr(exc, "stopped", []), sum(o.ok for o in report.outcomes)) from None
    finally:
        bar.close()
        report.seconds = time.perf_counter() - started
    after, _ = finished_runs(results_path)
    scored = [(float(after[p.job.key]["valid_AUC"]), p.job.label) for p in planned
              if p.job.key in after and after[p.job.key].get("valid_AUC")]
    report.best = max(scored) if scored else None
    return report


def _outcome(item: PlannedJob, res: Mapping[str, Any], out: str, err: str, results: Path) -> RunOutcome:
    from model_zoo.apps.results import read_results
    from model_zoo.apps.run_record import RunRecord

    run_dir = _run_dir(item.params, item.job.expid, res.get("pid"))
    stdout_lines = _tail(out, 1)
    outcome = RunOutcome(label=item.job.label, expid=item.job.expid, returncode=int(res["returncode"]),
                         seconds=float(res["seconds"]), stdout_log=out, stderr_log=err, stderr_tail=_tail(err),
                         summary=stdout_lines, run_dir=run_dir,
                         state=RunRecord(Path(run_dir)).status().get("state", "") if run_dir else "",
                         error=str(res.get("error", "")))
    if outcome.returncode == 0 and not outcome.error:
        rows = read_results(results).rows
        if not run_dir or not any(r.get("run_dir") == run_dir for r in rows):
            outcome.error = f"exit code 0 but no result row of this run in {results}"
    return outcome
