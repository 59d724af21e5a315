"""Grid search with FuxiCTR's tuner CLI: expand a tuner file, then run every expid through run_expid.py.

    python run_param_tuner.py --config config/tuner/dmf_synth_tiny_2x2.yaml --gpu -1 -1        # 2 CPU workers
    python run_param_tuner.py --config config/tuner/din_microlens_1m_x1.yaml --gpu 0 1          # one run per GPU
    python run_param_tuner.py --config ... --gpu -1 -1 --backend ray [--ray-address HOST:6379]  # as Ray tasks

One worker per ``--gpu`` entry (-1 = CPU). The expanded config dir, the normalised tuner file and per-run
stdout/stderr logs go to ``--workdir`` (default: ``tuner/`` next to the results CSV). Expids already in the results
CSV are skipped, so a rerun resumes. Exit code: 0 all runs passed, 1 some run failed (each named, with its exit code,
stderr tail and log paths), 2 bad tuner file or config. See model_zoo/tuner.py for what differs from FuxiCTR's tuner.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional

from model_zoo.errors import ZooError
from model_zoo.tuner import BACKENDS, DEFAULT_RESULTS, expand, list_tuner_expids, sweep


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="tuner YAML, e.g. config/tuner/dmf_synth_tiny_2x2.yaml")
    parser.add_argument("--gpu", type=int, nargs="+", default=[-1],
                        help="one parallel worker per entry; -1 = CPU (default: one CPU worker)")
    parser.add_argument("--tag", default=None, help="run only expids containing this string")
    parser.add_argument("--backend", choices=BACKENDS, default=None,
                        help="local subprocesses or Ray tasks (default: the tuner file's 'backend', else local)")
    parser.add_argument("--ray-address", default=None, help="Ray cluster address (default: a local bounded instance)")
    parser.add_argument("--cpus-per-run", type=int, default=1,
                        help="CPU threads (and Ray num_cpus) per run (default 1)")
    parser.add_argument("--results", default=str(DEFAULT_RESULTS), help="results CSV every run appends to")
    parser.add_argument("--workdir", default=None, help="expanded configs and run logs (default: <results dir>/tuner)")
    parser.add_argument("--expand-only", action="store_true", help="expand and list the expids; run nothing")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.cpus_per_run < 1:
            raise ZooError(f"--cpus-per-run {args.cpus_per_run}; expected >= 1")
        if args.expand_only:
            workdir = Path(args.workdir) if args.workdir else Path(args.results).resolve().parent / "tuner"
            config_dir = expand(args.config, workdir)
            print(f"{config_dir}:")
            print("\n".join(list_tuner_expids(config_dir)))
            return 0
        report = sweep(args.config, args.gpu, results=args.results, backend=args.backend,
                       ray_address=args.ray_address, tag=args.tag, workdir=args.workdir,
                       threads=args.cpus_per_run, progress=not args.quiet)
    except ZooError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report.text(), file=sys.stderr if report.failed else sys.stdout, flush=True)
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())
