"""Grid search over expids: FuxiCTR's tuner file format and ``enumerate_params``, run through the zoo's runner.

    python -m model_zoo.apps.tuner --config config/tuner/dmf_synth_tiny_2x2.yaml --gpu -1 -1
    python run_param_tuner.py --config config/tuner/dmf_synth_tiny_2x2.yaml --gpu -1 -1      # FuxiCTR-style

Three modules, one job each:

* :mod:`~model_zoo.apps.tuner.expand`: read and check a tuner file, normalise it, expand it with FuxiCTR's own
  ``enumerate_params`` into a runner config dir (absolute paths, re-hashed expids);
* :mod:`~model_zoo.apps.tuner.run`: check every run, skip finished ones, prepare datasets once, run the rest as
  ``python -m model_zoo.apps.runner`` subprocesses (local pool or Ray), stop them all on Ctrl-C / SIGTERM;
* :mod:`~model_zoo.apps.tuner.report`: what happened, in words.

What differs from FuxiCTR's ``run_param_tuner.py`` (its traps, ``shared/reference/fuxictr_notes.md`` section 10):
children run with the sweep's own interpreter and their exit codes are checked (FuxiCTR's bare ``python`` died on
``ModuleNotFoundError`` and the tuner exited 0); a child that exits 0 without its result row counts as failed;
datasets are prepared before the parallel runs (FuxiCTR's jobs race to build them); the dataset block is always
inline (a carried ``dataset_id`` would overwrite the hashed one); expid hashes do not collide on anagrams; a tuner
key no model or runner reads fails with a did-you-mean before anything runs; finished runs are skipped on a rerun
(FuxiCTR needs ``enumerate_param_list.py --exclude``); Ctrl-C / SIGTERM stop every child.
"""
from model_zoo.apps.tuner.cli import main, sweep
from model_zoo.apps.tuner.expand import Expansion, expand, list_tuner_expids, load_tuner_file
from model_zoo.apps.tuner.report import RunOutcome, SweepReport
from model_zoo.apps.tuner.run import Job, SweepInterrupted, finished_runs, run_jobs

__all__ = ["main", "sweep", "expand", "Expansion", "list_tuner_expids", "load_tuner_file", "Job", "run_jobs",
           "finished_runs", "SweepInterrupted", "SweepReport", "RunOutcome"]
