"""The tuner's command line: expand a tuner file, then run every expid through the runner.

    python -m model_zoo.apps.tuner --config config/tuner/dmf_synth_tiny_2x2.yaml --gpu -1 -1   # 2 CPU workers
    python -m model_zoo.apps.tuner --config config/tuner/din_microlens_1m_x1.yaml --gpu 0 1     # one run per GPU
    python -m model_zoo.apps.tuner --config ... --gpu -1 -1 --backend ray [--ray-address auto]  # as Ray tasks
    python run_param_tuner.py --config ... --gpu -1 -1                                         # the same, FuxiCTR-style

Outputs go under ``--output-dir`` (default: the current directory), as for the runner: the expanded config dir
``tuner/<tuner file stem>/`` (with ``logs/<expid>.{stdout,stderr}``), ``checkpoints/``, ``data/``, ``cache/`` and the
results CSV ``results/results.csv`` (``--results``). Expids already finished there are skipped, so rerunning the same
command resumes a sweep.

Exit codes: 0 every run finished; 1 some run failed (each named with its exit code, train.log, stderr file and
stderr tail); 2 a bad tuner file, config or data (nothing ran); 130 Ctrl-C; 143 SIGTERM (running children stopped).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional, Sequence

from model_zoo.apps.tuner.expand import BACKENDS, expand
from model_zoo.apps.tuner.report import SweepReport
from model_zoo.apps.tuner.run import Job, SweepInterrupted, Terminated, plan_jobs, run_jobs, sigterm_raises
from model_zoo.errors import ConfigError, ZooError

__all__ = ["sweep", "build_parser", "main"]


def sweep(tuner_file: str, gpus: Sequence[int] = (-1,), *, output_dir: Optional[str] = None,
          results: Optional[str] = None, backend: Optional[str] = None, ray_address: Optional[str] = None,
          tag: Optional[str] = None, threads: int = 1, progress: bool = True) -> SweepReport:
    """Expand ``tuner_file`` and run its expids (``tag``: only those containing it); see ``run.run_jobs``."""
    expansion = expand(tuner_file, output_dir)
    expids = expansion.expids
    if tag is not None:
        expids = [e for e in expids if str(tag) in e]
        if not expids:
            raise ConfigError(f"--tag {tag!r} matches none of the {len(expansion.expids)} expids in "
                              f"{expansion.config_dir}")
    return run_jobs([Job(e) for e in expids], config_dir=expansion.config_dir, gpus=gpus, output_dir=output_dir,
                    results=results, backend=backend or expansion.backend,
                    ray_address=ray_address or expansion.ray_address, threads=threads,
                    log_dir=expansion.config_dir / "logs", progress=progress,
                    name=f"sweep {expansion.tuner_file.stem}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m model_zoo.apps.tuner", description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="tuner YAML, e.g. config/tuner/dmf_synth_tiny_2x2.yaml")
    parser.add_argument("--gpu", type=int, nargs="+", default=[-1],
                        help="one parallel worker per entry; -1 = CPU (default: one CPU worker)")
    parser.add_argument("--tag", default=None, help="run only expids containing this string")
    parser.add_argument("--backend", choices=BACKENDS, default=None,
                        help="local subprocesses or Ray tasks (default: the tuner file's 'backend', else local)")
    parser.add_argument("--ray-address", default=None, help="Ray cluster address (default: a local bounded instance)")
    parser.add_argument("--cpus-per-run", type=int, default=1, help="CPU threads (and Ray num_cpus) per run")
    parser.add_argument("--output-dir", default=None,
                        help="work dir of the sweep and its runs: tuner/, checkpoints/, results/, data/, cache/ "
                             "(default: the current directory)")
    parser.add_argument("--results", default=None, help="results CSV (default <output-dir>/results/results.csv)")
    parser.add_argument("--expand-only", action="store_true", help="expand and check every expid; run nothing")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with sigterm_raises():
            if args.expand_only:
                expansion = expand(args.config, args.output_dir)
                work = Path(args.output_dir).expanduser().resolve() if args.output_dir else Path.cwd()
                plan_jobs([Job(e) for e in expansion.expids], str(expansion.config_dir), work)
                print(f"{expansion.config_dir}:\n" + "\n".join(expansion.expids))
                return 0
            report = sweep(args.config, args.gpu, output_dir=args.output_dir, results=args.results,
                           backend=args.backend, ray_address=args.ray_address, tag=args.tag,
                           threads=args.cpus_per_run, progress=not args.quiet)
    except ZooError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except SweepInterrupted as exc:
        print(exc.line(), file=sys.stderr, flush=True)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted: sweep stopped by SIGINT (Ctrl-C) before any run started", file=sys.stderr)
        return 130
    except Terminated:
        print("interrupted: sweep stopped by SIGTERM before any run started", file=sys.stderr)
        return 143
    print(report.text(), file=sys.stderr if report.failed else sys.stdout, flush=True)
    return report.exit_code
