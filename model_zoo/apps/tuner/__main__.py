"""``python -m model_zoo.apps.tuner``: see :mod:`model_zoo.apps.tuner.cli`."""
import sys

from model_zoo.apps.tuner.cli import main

sys.exit(main())
