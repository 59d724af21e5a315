"""FuxiCTR-style entry point of the zoo's tuner: ``python run_param_tuner.py --config TUNER.yaml --gpu -1 -1``.

Same as ``python -m model_zoo.apps.tuner`` (``model_zoo.apps.tuner.cli``); see its ``--help``.
"""
import sys

from model_zoo.apps.tuner import main

if __name__ == "__main__":
    sys.exit(main())
