"""FuxiCTR-style entry point of the zoo's runner: ``python run_expid.py --config DIR --expid ID --gpu N``.

Same as the ``mmctr-run`` console script (``model_zoo.apps.runner``); see its ``--help``.
"""
import sys

from model_zoo.apps.runner import main

if __name__ == "__main__":
    sys.exit(main())
