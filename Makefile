# Two entry points, both idempotent: `make demo` (set up if needed, then train + evaluate the flagship model on the
# embedded synthetic world) and `make test` (set up if needed, then the whole test suite).
#
# torch 2.13.0 comes as the CUDA build where an NVIDIA driver answers (nvidia-smi), as the CPU build otherwise.
# Choose by hand with TORCH=cpu (no CUDA download, ~0.2 GB) or TORCH=cuda (~3 GB of CUDA libraries from PyPI).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_EXPID ?= DMF_MicroLens_synth
TORCH ?= auto
TORCH_VERSION := 2.13.0
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu

ifeq ($(TORCH),auto)
  TORCH_BUILD := $(shell nvidia-smi -L >/dev/null 2>&1 && echo cuda || echo cpu)
else
  TORCH_BUILD := $(TORCH)
endif
ifeq ($(TORCH_BUILD),cpu)
  # PyTorch's CPU index next to PyPI: its 2.13.0+cpu wins over PyPI's CUDA 2.13.0 (a local version sorts higher)
  TORCH_PIP_ARGS := --extra-index-url $(TORCH_CPU_INDEX)
else ifeq ($(TORCH_BUILD),cuda)
  TORCH_PIP_ARGS :=
else
  $(error TORCH=$(TORCH): expected auto, cpu or cuda)
endif

.PHONY: demo test setup clean
setup: $(STAMP)

$(STAMP): setup.cfg setup.py constraints.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing torch $(TORCH_VERSION) ($(TORCH_BUILD) build; TORCH=cpu|cuda to choose)"
	$(PY) -m pip install -q $(TORCH_PIP_ARGS) -c constraints.txt torch==$(TORCH_VERSION)
	$(PY) -m pip install -q -c constraints.txt -e '.[dev,encoders]' --config-settings editable_mode=compat
	touch $(STAMP)

demo: $(STAMP)
	$(PY) run_expid.py --expid $(DEMO_EXPID)

test: $(STAMP)
	$(PY) -m pytest

clean:
	rm -rf checkpoints results cache data/MicroLens_synth_* data/MicroLens_seqneg_*
