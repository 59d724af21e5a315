# Two entry points, both idempotent: `make demo` (set up if needed, then train + evaluate the flagship model on the
# embedded synthetic world) and `make test` (set up if needed, then the whole test suite).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_EXPID ?= DMF_MicroLens_synth

.PHONY: demo test setup clean
setup: $(STAMP)

$(STAMP): setup.cfg constraints.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c constraints.txt torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e '.[dev,encoders]' --config-settings editable_mode=compat
	touch $(STAMP)

demo: $(STAMP)
	$(PY) run_expid.py --expid $(DEMO_EXPID)

test: $(STAMP)
	$(PY) -m pytest

clean:
	rm -rf checkpoints results data/MicroLens_synth_*
